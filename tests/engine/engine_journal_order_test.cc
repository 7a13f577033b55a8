// The journal replays to the state memory had: holds and releases in the order they happened.
//
// Method: the engines run inline with a manual clock, and each stage is stepped by hand, so a
// test can stop the pipeline between "decided in memory" and "journaled". The scenario is
// built so that a hold and a release are made in one order in memory while the journal's old
// gathering order (outcomes before releases, outcomes in sequence order) would write them in
// the other. After the stages drain, the engine is stopped and a new one recovers from the
// same directory; it must agree with the old one on every account's hold. Each test runs
// under every ack policy that has a journal.
#include <filesystem>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::kBlockedMerchant;
using testing::StepUntilIdle;
using testing::Transfer;

namespace fs = std::filesystem;

class EngineJournalOrderTest : public ::testing::TestWithParam<AckPolicy> {
 protected:
  std::string Dir(const std::string& name) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp") /
                         (name + "-" + std::string(AckPolicyName(GetParam())));
    fs::remove_all(dir);
    return dir.string();
  }
  std::unique_ptr<Engine> Open(const std::string& dir) {
    Options options = BankOptions(20);
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = true;
    options.clock = &clock_;
    options.durability.ack = GetParam();
    options.durability.dir = dir;
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
  // Confirms without stepping the pipeline (the caller acknowledges), so the test decides when
  // each stage runs.
  Sequence Confirm(Engine& engine, Transaction txn) {
    const Confirmation c = engine.Submit(txn, 0, AckWait::kCaller);
    EXPECT_EQ(c.status, ConfirmStatus::kConfirmed);
    clock_.AdvanceNs(1'000);
    return c.seq;
  }
  static Transaction Fraudulent(uint64_t id, uint64_t source) {
    Transaction txn = Transfer(id, source, source + 1, 100);
    txn.merchant_id = kBlockedMerchant;
    return txn;
  }
  // Drains and stops `engine`, recovers a new engine from `dir`, and expects it to agree on the
  // hold of every account 1..20.
  void ExpectRestartAgrees(std::unique_ptr<Engine> engine, const std::string& dir) {
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    ASSERT_TRUE(engine->Stop().drained);
    std::vector<bool> held;
    for (uint64_t account = 1; account <= 20; ++account) held.push_back(engine->IsOnHold(account));
    engine.reset();
    auto recovered = Open(dir);
    ASSERT_NE(recovered, nullptr);
    for (uint64_t account = 1; account <= 20; ++account) {
      EXPECT_EQ(recovered->IsOnHold(account), held[account - 1]) << "account " << account;
    }
  }

  ManualClock clock_;
};

// Memory: the fraud failure of seq 2 holds account 3, then the operator releases it. Its outcome
// waits for seq 1's (outcomes are journaled in sequence order), so a release journaled at once
// would come first in the file, and a restart would put account 3 back on hold.
TEST_P(EngineJournalOrderTest, AReleaseAfterAnUnjournaledHoldStaysReleased) {
  const std::string dir = Dir("release-after-hold");
  auto engine = Open(dir);
  Confirm(*engine, Transfer(1, 5, 6, 100));  // Waits for the ledger, which is not stepped.
  Confirm(*engine, Fraudulent(2, 3));
  engine->StepStage(InlineStage::kFraud);
  engine->StepStage(InlineStage::kReconcile);
  ASSERT_TRUE(engine->IsOnHold(3));
  const absl::StatusOr<bool> released = engine->ReleaseHold(3);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(*released);
  EXPECT_FALSE(engine->IsOnHold(3));
  engine->StepStage(InlineStage::kJournal);  // Seq 1 is still undecided.
  ExpectRestartAgrees(std::move(engine), dir);
}

// Memory: account 3 is released, then a new fraud failure holds it again. The journal stage
// used to write one turn's outcomes before its releases, so a restart lifted the new hold.
TEST_P(EngineJournalOrderTest, AHoldAfterAReleaseStaysHeld) {
  const std::string dir = Dir("hold-after-release");
  auto engine = Open(dir);
  Confirm(*engine, Fraudulent(1, 3));
  StepUntilIdle(*engine);
  ASSERT_TRUE(engine->IsOnHold(3));
  const absl::StatusOr<bool> released = engine->ReleaseHold(3);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(*released);
  Confirm(*engine, Fraudulent(2, 3));
  engine->StepStage(InlineStage::kFraud);
  engine->StepStage(InlineStage::kLedger);
  engine->StepStage(InlineStage::kReconcile);
  EXPECT_TRUE(engine->IsOnHold(3));
  ExpectRestartAgrees(std::move(engine), dir);
}

TEST_P(EngineJournalOrderTest, ReleasingAnAccountNotOnHoldChangesNothing) {
  const std::string dir = Dir("not-held");
  auto engine = Open(dir);
  const absl::StatusOr<bool> released = engine->ReleaseHold(7);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_FALSE(*released);
  EXPECT_EQ(engine->Stop().confirmed, 0u);
  engine.reset();
  EXPECT_EQ(Open(dir)->recovery().releases, 0u);
}

INSTANTIATE_TEST_SUITE_P(AckPolicies, EngineJournalOrderTest,
                         ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable),
                         [](const ::testing::TestParamInfo<AckPolicy>& info) {
                           return std::string(AckPolicyName(info.param));
                         });

}  // namespace
}  // namespace vouch
