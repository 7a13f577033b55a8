// Resume and epochs (Hello / Welcome in proto/vouch.proto), under every ack policy.
//
// Method: a named session submits while the fraud verifier is stalled, reads its Confirmations
// and drops its connection before any Outcome can be decided; the outcomes are then decided
// with no connection holding the session. A second connection resumes, and the test counts
// what it is sent. A restart (same data directory with a journal, a fresh process state with
// ack memory) checks that the epoch a client compares tells it whether its saved position still
// means anything. Timing is never asserted; waits poll the engine's counters.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "engine/server/epoch.h"
#include "engine/testing/engine_test_peer.h"
#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

class ResumeTest : public ServerTest, public ::testing::WithParamInterface<AckPolicy> {
 protected:
  Options Engine() const {
    Options engine = vouch::testing::BankOptions(100);
    engine.durability.ack = GetParam();
    if (GetParam() != AckPolicy::kMemory) engine.durability.dir = dir_;
    return engine;
  }
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');  // "Name/param" is one directory.
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/resume-" + name;
    std::filesystem::remove_all(dir_);
  }
  void Restart() {
    ASSERT_TRUE(Shutdown().engine.drained);
    server_.reset();
    report_.reset();
    StartServer({}, Engine());
  }
  // Submits `count` transfers from `first_id` on a new connection of session `name` with the
  // fraud verifier stalled, reads their Confirmations, and drops the connection before any
  // Outcome is decided; then waits until the server has routed all `count` outcomes with no
  // connection holding the session. Returns the epoch the connection was welcomed with.
  uint64_t SubmitAndDrop(const std::string& name, uint64_t first_id, int count) {
    const uint64_t unrouted_before = server_->Stats().outcomes_unrouted;
    uint64_t epoch = 0;
    {
      TestClient client(port());
      EXPECT_TRUE(client.Hello(name));
      EngineTestPeer::StallVerifier(server_->engine(), VerifierId::kFraud, 300'000'000);
      v1::ClientMessage submit;
      for (int i = 0; i < count; ++i) {
        const uint64_t id = first_id + static_cast<uint64_t>(i);
        *submit.mutable_submit()->add_transactions() = WireTransfer(id, id % 50 + 1, id % 50 + 2, 1);
      }
      EXPECT_TRUE(client.Send(submit));
      v1::ServerMessage message;
      int confirmed = 0;
      while (confirmed < count && client.Read(&message)) {
        EXPECT_TRUE(message.has_confirmation()) << message.DebugString();
        confirmed += message.confirmation().status() == v1::CONFIRM_STATUS_CONFIRMED;
      }
      EXPECT_EQ(confirmed, count);
      EXPECT_EQ(client.welcomes(), 1);
      epoch = client.welcome().epoch();
    }
    const auto unrouted = [&] { return server_->Stats().outcomes_unrouted - unrouted_before; };
    for (int i = 0; i < 500 && unrouted() < static_cast<uint64_t>(count); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(unrouted(), static_cast<uint64_t>(count)) << "decided while disconnected";
    return epoch;
  }
  // Reads Outcomes until `timeout_ms` passes with none; returns how many came.
  static int DrainOutcomes(TestClient& client, int timeout_ms = 300) {
    int outcomes = 0;
    v1::ServerMessage message;
    while (client.Read(&message, timeout_ms)) {
      EXPECT_TRUE(message.has_outcome()) << message.DebugString();
      ++outcomes;
    }
    return outcomes;
  }

  std::string dir_;
};

TEST_P(ResumeTest, ResumeFromZeroResendsEverythingRetainedForTheSession) {
  StartServer({}, Engine());
  const uint64_t epoch = SubmitAndDrop("till", 1, 20);
  ASSERT_NE(epoch, 0u);
  TestClient resumed(port());
  ASSERT_TRUE(resumed.Resume("till", 0, epoch));
  EXPECT_EQ(DrainOutcomes(resumed), 20) << "a session that saw no Outcome gets all 20";
  EXPECT_TRUE(resumed.welcome().resuming());
  EXPECT_EQ(resumed.welcome().resume_from_seq(), 0u);
  EXPECT_EQ(resumed.welcome().epoch(), epoch);
  EXPECT_EQ(server_->Stats().outcomes_resent, 20u);
}

TEST_P(ResumeTest, HelloWithoutResumeStillResendsNothing) {
  StartServer({}, Engine());
  SubmitAndDrop("till", 1, 5);
  TestClient plain(port());
  ASSERT_TRUE(plain.Hello("till"));
  EXPECT_EQ(DrainOutcomes(plain), 0);
  EXPECT_FALSE(plain.welcome().resuming());
}

TEST_P(ResumeTest, APositionFromTheFutureIsRefused) {
  StartServer({}, Engine());
  const uint64_t epoch = SubmitAndDrop("till", 1, 5);
  {
    TestClient ahead(port());
    ASSERT_TRUE(ahead.Resume("till", 6, epoch));  // Seqs 1..5 are all this server issued.
    EXPECT_EQ(ahead.ReadError(), v1::ERROR_CODE_RESUME_AHEAD);
  }
  {
    TestClient legacy(port());  // An older client: resume_from_seq alone, no epoch.
    ASSERT_TRUE(legacy.Hello("till", 1000));
    EXPECT_EQ(legacy.ReadError(), v1::ERROR_CODE_RESUME_AHEAD);
  }
  EXPECT_EQ(server_->Stats().errors[v1::ERROR_CODE_RESUME_AHEAD], 2u);
  TestClient edge(port());
  ASSERT_TRUE(edge.Resume("till", 5, epoch));  // The highest issued seq itself is fine.
  EXPECT_EQ(DrainOutcomes(edge), 0);
  EXPECT_EQ(edge.welcomes(), 1);
}

TEST_P(ResumeTest, EpochStaysAcrossAJournalRestartAndChangesWithoutOne) {
  StartServer({}, Engine());
  const uint64_t first = SubmitAndDrop("till", 1, 10);
  Restart();
  EXPECT_NE(server_->epoch(), 0u);
  if (GetParam() == AckPolicy::kMemory) {
    EXPECT_NE(server_->epoch(), first) << "ack memory numbers from 1 again: a new epoch";
  } else {
    EXPECT_EQ(server_->epoch(), first) << "the journal continues the sequence space";
    // And a saved position still means what it meant: seqs 6..10 come again, nothing else.
    TestClient resumed(port());
    ASSERT_TRUE(resumed.Resume("till", 5, first));
    EXPECT_EQ(DrainOutcomes(resumed), 5);
    EXPECT_EQ(resumed.welcome().resume_from_seq(), 5u);
  }
}

TEST_P(ResumeTest, ADamagedEpochFileStopsTheStart) {
  if (GetParam() == AckPolicy::kMemory) GTEST_SKIP() << "no data directory, no epoch file";
  StartServer({}, Engine());
  SubmitAndDrop("till", 1, 3);
  ASSERT_TRUE(Shutdown().engine.drained);
  server_.reset();
  report_.reset();
  { std::ofstream(dir_ + "/" + kEpochFileName, std::ios::trunc) << "vouch epoch zz\n"; }
  auto created = Server::Create({}, Engine());
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(absl::IsDataLoss(created.status())) << created.status();
  EXPECT_NE(created.status().message().find(kEpochFileName), absl::string_view::npos);
}

// The case: with ack memory, a restarted server numbers from 1 again, so a position
// saved under the old epoch would skip the new outcomes. The epoch tells the server (and the
// client, from Welcome) that the position means nothing here.
TEST_P(ResumeTest, APositionFromAnotherEpochResendsEverythingRetained) {
  StartServer({}, Engine());
  const uint64_t old_epoch = SubmitAndDrop("till", 1, 30);
  const uint64_t old_position = 30;  // The client saw every Outcome of the old epoch.
  Restart();
  const uint64_t first_seq = GetParam() == AckPolicy::kMemory ? 1 : 31;
  SubmitAndDrop("till", 1000, 10);
  TestClient resumed(port());
  ASSERT_TRUE(resumed.Resume("till", old_position,
                             GetParam() == AckPolicy::kMemory ? old_epoch : NewEpoch()));
  v1::ServerMessage message;
  int outcomes = 0;
  while (resumed.Read(&message, 300)) {
    ASSERT_TRUE(message.has_outcome()) << message.DebugString();
    EXPECT_GE(message.outcome().seq(), GetParam() == AckPolicy::kMemory ? first_seq : 1u);
    outcomes += message.outcome().transaction_id() >= 1000;
  }
  EXPECT_EQ(outcomes, 10) << "the new epoch's outcomes are not skipped";
  EXPECT_EQ(resumed.welcome().resume_from_seq(), 0u) << "reset: the client must save 0";
  EXPECT_EQ(resumed.welcome().epoch(), server_->epoch());
  EXPECT_EQ(server_->Stats().resume_epoch_changes, 1u);
}

INSTANTIATE_TEST_SUITE_P(AckPolicies, ResumeTest,
                         ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                           AckPolicy::kDurable),
                         [](const ::testing::TestParamInfo<AckPolicy>& info) {
                           return std::string(AckPolicyName(info.param));
                         });

}  // namespace
}  // namespace vouch::server::testing
