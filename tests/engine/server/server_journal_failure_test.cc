// A server whose journal fails (a full disk) tells every client why before it stops.
//
// Method: a real server on loopback under ack policy written or durable; once a client has a
// kept confirmation, the journal's open segment is pointed at /dev/full (ENOSPC on every write,
// tests/engine/journal_fault.h) and the client submits again. Every connection, the idle one
// too, must get ERROR_CODE_JOURNAL_FAILED naming the I/O error, and never a confirmation that
// was not kept; the embedder's on_fatal is called, and Shutdown does not wait for a drain.
#include <atomic>
#include <filesystem>

#include "tests/engine/journal_fault.h"
#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

class ServerJournalFailureTest : public ServerTest,
                                 public ::testing::WithParamInterface<AckPolicy> {};

TEST_P(ServerJournalFailureTest, EveryClientGetsJournalFailedAndNothingUnkeptIsConfirmed) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/server-journal-" +
                          std::string(AckPolicyName(GetParam()));
  std::filesystem::remove_all(dir);
  Options engine = vouch::testing::BankOptions(100);
  engine.durability.ack = GetParam();
  engine.durability.dir = dir;
  std::atomic<int> fatal_calls{0};
  // relaxed: a count the test reads after the Error frames arrived.
  engine.on_fatal = [&](const absl::Status&) { fatal_calls.fetch_add(1, std::memory_order_relaxed); };
  StartServer({}, std::move(engine));

  TestClient submitter(port());
  ASSERT_TRUE(submitter.Hello("submitter"));
  TestClient idle(port());
  ASSERT_TRUE(idle.Hello("idle"));
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() = WireTransfer(1, 1, 2, 100);
  ASSERT_TRUE(submitter.Send(submit));
  v1::ServerMessage message;
  ASSERT_TRUE(submitter.Read(&message));
  ASSERT_TRUE(message.has_confirmation());
  ASSERT_EQ(message.confirmation().status(), v1::CONFIRM_STATUS_CONFIRMED);

  ASSERT_GE(vouch::testing::FillDiskUnderJournal(dir), 1);
  submit.mutable_submit()->clear_transactions();
  *submit.mutable_submit()->add_transactions() = WireTransfer(2, 3, 4, 100);
  ASSERT_TRUE(submitter.Send(submit));
  bool error = false;
  while (!error && submitter.Read(&message)) {
    if (message.has_confirmation() && message.confirmation().transaction_id() == 2) {
      EXPECT_NE(message.confirmation().status(), v1::CONFIRM_STATUS_CONFIRMED)
          << "a confirmation the journal never kept";
    }
    if (message.has_error()) {
      error = true;
      EXPECT_EQ(message.error().code(), v1::ERROR_CODE_JOURNAL_FAILED);
      EXPECT_NE(message.error().message().find("No space left"), std::string::npos)
          << message.error().message();
    }
  }
  EXPECT_TRUE(error) << "the submitter was told why";
  EXPECT_EQ(idle.ReadError(), v1::ERROR_CODE_JOURNAL_FAILED);
  EXPECT_TRUE(submitter.ClosedByPeer());
  EXPECT_EQ(fatal_calls.load(std::memory_order_relaxed), 1);
  EXPECT_FALSE(Shutdown().engine.drained);
  EXPECT_GE(server_->Stats().errors[v1::ERROR_CODE_JOURNAL_FAILED], 2u);
}

INSTANTIATE_TEST_SUITE_P(AckPolicies, ServerJournalFailureTest,
                         ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable),
                         [](const ::testing::TestParamInfo<AckPolicy>& info) {
                           return std::string(AckPolicyName(info.param));
                         });

}  // namespace
}  // namespace vouch::server::testing
