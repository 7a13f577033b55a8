// The held path (hybrid and sync) over real loopback sockets.
//
// Method: each test drives one server with one I/O thread, so that everything the server does
// for a connection happens on the thread a blocked Submit would block. A test that deadlocks
// would hang the suite, so every read has a timeout and the deadlock test runs the exchange on
// a thread of its own under a watchdog: it fails (and abandons the server) instead of hanging.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

using vouch::testing::kBlockedMerchant;

Options HybridBank(PolicyMode mode) {
  Options engine = vouch::testing::BankOptions(100);
  engine.policy.mode = mode;
  engine.policy.hold_amount_minor_min = 100'000;  // 1,000.00 and above are held.
  engine.fraud_rules.velocity_enabled = false;  // Bursts from a few accounts are the point here.
  engine.fraud_rules.anomaly_enabled = false;
  return engine;
}

// Reads until the Confirmation of `id` arrives; counts the Outcomes of `id` seen on the way and
// fails on any other Confirmation out of order.
struct Answers {
  int confirmations = 0;
  int outcomes_of_held = 0;
  v1::Confirmation held;
};

// Issue 12 item 1: 2,000 small transactions and one held one in a single write, one I/O thread,
// a window of 1,024 outcomes. Before the fix the I/O thread waited in Submit for the held
// transaction while the reconciler waited in OutcomeWindow::OnOutcome for that same thread to
// route the 2,000 outcomes: neither ever moved again.
TEST_F(ServerTest, HeldTransactionBehindABurstDoesNotDeadlockTheIoThread) {
  ServerOptions options;
  options.io_threads = 1;
  options.retained_outcomes = 1024;
  StartServer(options, HybridBank(PolicyMode::kHybrid));
  constexpr int kSmall = 2000;
  auto exchange = std::async(std::launch::async, [port = port()] {
    Answers answers;
    TestClient client(port);
    if (!client.Hello("burst")) return answers;
    std::string bytes;
    v1::ClientMessage submit;
    for (int i = 0; i < kSmall; ++i) {
      submit.mutable_submit()->clear_transactions();
      *submit.mutable_submit()->add_transactions() =
          WireTransfer(1 + i, i % 50 + 1, i % 50 + 51, 10);
      net::AppendFrame(submit, kTestFrameMax, &bytes);
    }
    submit.mutable_submit()->clear_transactions();
    *submit.mutable_submit()->add_transactions() = WireTransfer(9'999, 7, 8, 200'000);
    net::AppendFrame(submit, kTestFrameMax, &bytes);
    if (!client.SendRaw(bytes)) return answers;
    v1::ServerMessage message;
    while (answers.confirmations <= kSmall && client.Read(&message, 20'000)) {
      if (message.has_confirmation()) {
        ++answers.confirmations;
        if (message.confirmation().transaction_id() == 9'999) answers.held = message.confirmation();
      }
    }
    return answers;
  });
  if (exchange.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    // The server cannot be stopped either (its I/O thread is stuck): fail the binary now.
    std::fprintf(stderr, "deadlock: the held transaction's answer never came\n");
    std::_Exit(1);
  }
  const Answers answers = exchange.get();
  EXPECT_EQ(answers.confirmations, kSmall + 1);
  EXPECT_EQ(answers.held.status(), v1::CONFIRM_STATUS_CONFIRMED) << answers.held.DebugString();
  EXPECT_TRUE(answers.held.held());
}

}  // namespace
}  // namespace vouch::server::testing
