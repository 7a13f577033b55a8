// A server on an ephemeral loopback port in front of a small threaded bank (accounts 1..N, USD,
// merchant kBlockedMerchant on the fraud block list).
#ifndef VOUCH_TESTS_ENGINE_SERVER_SERVER_FIXTURE_H_
#define VOUCH_TESTS_ENGINE_SERVER_SERVER_FIXTURE_H_

#include <memory>
#include <optional>

#include "engine/server/server.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/server/test_client.h"

namespace vouch::server::testing {

// The bank every server test starts with unless it passes its own. The deadline is long (10 s):
// these tests are about the server, not timeouts, and under TSan on a loaded 2-core machine a
// verdict can take longer than the engine's default 50 ms. A test about timeouts stalls a
// verifier or sets its own deadline.
inline Options ServerTestBank() {
  Options options = vouch::testing::BankOptions(100);
  options.verification_deadline_ns = 10'000'000'000;
  return options;
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}, Options engine = ServerTestBank()) {
    options.port = 0;
    auto created = Server::Create(options, std::move(engine));
    ASSERT_TRUE(created.ok()) << created.status();
    server_ = *std::move(created);
    ASSERT_TRUE(server_->Start().ok());
  }
  ShutdownReport Shutdown() {
    report_ = server_->Shutdown();
    return *report_;
  }
  void TearDown() override {
    if (server_ && !report_) Shutdown();
  }
  int port() const { return server_->port(); }

  std::unique_ptr<Server> server_;
  std::optional<ShutdownReport> report_;
};

}  // namespace vouch::server::testing

#endif  // VOUCH_TESTS_ENGINE_SERVER_SERVER_FIXTURE_H_
