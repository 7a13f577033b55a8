// The journal replays to the state memory had: holds and releases in the order they happened,
// and fraud rules switched by a reload at the sequence number where the live engine switched.
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
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::kBlockedMerchant;
using testing::StepUntilIdle;
using testing::Transfer;


class EngineJournalOrderTest : public ::testing::TestWithParam<AckPolicy> {
 public:
  std::string Dir(const std::string& name) {
    return testing::EmptyTestDir(name + "-" + std::string(AckPolicyName(GetParam())));
  }
  std::unique_ptr<Engine> Open(const std::string& dir, uint64_t snapshot_interval_records = 0,
                               const fraud::FraudRules* rules = nullptr) {
    Options options = BankOptions(20);
    options.fraud_rules.velocity_enabled = false;
    if (rules != nullptr) options.fraud_rules = *rules;
    options.durability.segment_bytes_max = 64 * 1024;  // ~600 records: closed segments.
    options.durability.snapshot_interval_records = snapshot_interval_records;
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

// Rules A (no velocity rule) judge the first transactions, a reload to B (a velocity rule that
// keeps per-account state, with a shorter window) the rest. A restart with B on the command line
// (the reloaded file) must rebuild the fraud state exactly: replayed under B alone, the first
// transactions would leave velocity state the live engine never had. With snapshots, the
// shadow must switch rules at the same place, so a restart from the snapshot agrees too.
void ReloadMidStreamAndRestart(EngineJournalOrderTest& test, const std::string& dir,
                               uint64_t snapshot_interval_records, ManualClock& clock) {
  auto engine = test.Open(dir, snapshot_interval_records);
  fraud::FraudRules reloaded = engine->options().fraud_rules;
  reloaded.velocity_enabled = true;
  reloaded.velocity_window_ns = 10'000'000'000;
  reloaded.velocity_count_max = 1'000'000;
  reloaded.velocity_amount_max_minor = 1'000'000'000;
  constexpr uint64_t kTransactions = 1'500;
  Sequence from = 0;
  for (uint64_t id = 1; id <= kTransactions; ++id) {
    if (id == 700) {
      const absl::StatusOr<Sequence> applied = engine->ReplaceFraudRules(reloaded);
      ASSERT_TRUE(applied.ok()) << applied.status();
      from = *applied;
    }
    ASSERT_EQ(engine->Submit(Transfer(id, 1 + id % 19, 2 + id % 19, 100)).status,
              ConfirmStatus::kConfirmed);
    clock.AdvanceNs(1'000);
  }
  EXPECT_EQ(from, 700u) << "every earlier transaction was decided";
  StepUntilIdle(*engine);
  DrainOutcomes(*engine);
  if (snapshot_interval_records > 0) {
    ASSERT_TRUE(engine->PollSnapshot().ok());
    ASSERT_GE(engine->Stats().snapshots, 1u);
  }
  ASSERT_TRUE(engine->Stop().drained);
  const uint64_t fraud_hash = EngineTestPeer::FraudChecker(*engine).StateHash();
  const uint64_t ledger_hash = EngineTestPeer::Ledger(*engine).StateHash();
  engine.reset();
  auto recovered = test.Open(dir, snapshot_interval_records, &reloaded);
  ASSERT_NE(recovered, nullptr);
  EXPECT_EQ(recovered->recovery().snapshot_file.empty(), snapshot_interval_records == 0);
  EXPECT_EQ(EngineTestPeer::FraudChecker(*recovered).StateHash(), fraud_hash);
  EXPECT_EQ(EngineTestPeer::Ledger(*recovered).StateHash(), ledger_hash);
}

TEST_P(EngineJournalOrderTest, AReloadIsReplayedWhereItApplied) {
  ReloadMidStreamAndRestart(*this, Dir("reload"), 0, clock_);
}

TEST_P(EngineJournalOrderTest, AReloadReachesTheSnapshotShadow) {
  ReloadMidStreamAndRestart(*this, Dir("reload-snapshot"), 500, clock_);
}

// Rules with a velocity rule (per-account state) over `window_ns`.
fraud::FraudRules VelocityRules(const Engine& engine, int64_t window_ns, uint32_t count_max) {
  fraud::FraudRules rules = engine.options().fraud_rules;
  rules.velocity_enabled = true;
  rules.velocity_window_ns = window_ns;
  rules.velocity_count_max = count_max;
  rules.velocity_amount_max_minor = 1'000'000'000;
  return rules;
}

void SubmitTransfers(Engine& engine, uint64_t first_id, uint64_t count, ManualClock& clock) {
  for (uint64_t id = first_id; id < first_id + count; ++id) {
    ASSERT_EQ(engine.Submit(Transfer(id, 1 + id % 3, 10 + id % 3, 100)).status,
              ConfirmStatus::kConfirmed);
    clock.AdvanceNs(1'000);
  }
  StepUntilIdle(engine);
  DrainOutcomes(engine);
}

// Two reloads before any transaction is judged under the first apply from the same F. A switch
// of rules depends on the rules it leaves (a new velocity window clears the counts): the live
// stage passed through the first reload's window and cleared the counts, while the replay, in
// which the second record replaces the first, switched straight to the second (the window the
// counts were kept under) and kept them. The restarted engine then judged velocity by counts the
// live one no longer had.
TEST_P(EngineJournalOrderTest, TwoReloadsAtOneSequenceReplayAsTheLiveStageSwitched) {
  const std::string dir = Dir("two-reloads");
  fraud::FraudRules opening;
  {
    auto probe = Open(Dir("two-reloads-probe"));
    ASSERT_NE(probe, nullptr);
    opening = VelocityRules(*probe, 10'000'000'000, 1'000'000);
  }
  auto engine = Open(dir, 0, &opening);
  ASSERT_NE(engine, nullptr);
  SubmitTransfers(*engine, 1, 60, clock_);
  fraud::FraudRules passing = opening;
  passing.velocity_window_ns = 4'000'000'000;
  const absl::StatusOr<Sequence> first = engine->ReplaceFraudRules(passing);
  ASSERT_TRUE(first.ok()) << first.status();
  fraud::FraudRules last = opening;  // The opening window, another amount limit.
  last.velocity_amount_max_minor = 900'000'000;
  const absl::StatusOr<Sequence> second = engine->ReplaceFraudRules(last);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, 61u);
  EXPECT_EQ(*second, 61u) << "nothing was judged in between";
  SubmitTransfers(*engine, 61, 30, clock_);
  ASSERT_TRUE(engine->Stop().drained);
  const uint64_t fraud_hash = EngineTestPeer::FraudChecker(*engine).StateHash();
  engine.reset();
  auto recovered = Open(dir, 0, &last);
  ASSERT_NE(recovered, nullptr);
  EXPECT_EQ(EngineTestPeer::FraudChecker(*recovered).StateHash(), fraud_hash);
}

// A restart whose rules file is not the last reload's (the operator reverted it): the start-up
// rules judge from the first sequence number this process decides, and not before. They used
// to be switched to at once, which cleared the velocity counts (another window) before replay's
// place for the switch: the recovered state was not the one the journal gives (the simulation's
// replay check), and a snapshot or a replay of the new journal switched elsewhere.
TEST_P(EngineJournalOrderTest, StartupRulesSwitchWhereTheJournalSays) {
  const std::string dir = Dir("startup-rules");
  fraud::FraudRules opening;
  {
    auto probe = Open(Dir("startup-rules-probe"));
    ASSERT_NE(probe, nullptr);
    opening = VelocityRules(*probe, 10'000'000'000, 1'000'000);
  }
  auto engine = Open(dir, 0, &opening);
  ASSERT_NE(engine, nullptr);
  SubmitTransfers(*engine, 1, 30, clock_);
  fraud::FraudRules reloaded = opening;
  reloaded.velocity_window_ns = 4'000'000'000;
  const absl::StatusOr<Sequence> from = engine->ReplaceFraudRules(reloaded);
  ASSERT_TRUE(from.ok()) << from.status();
  EXPECT_EQ(*from, 31u);
  SubmitTransfers(*engine, 31, 30, clock_);
  ASSERT_TRUE(engine->Stop().drained);
  const uint64_t fraud_hash = EngineTestPeer::FraudChecker(*engine).StateHash();
  engine.reset();
  auto recovered = Open(dir, 0, &opening);  // The opening rules again.
  ASSERT_NE(recovered, nullptr);
  EXPECT_EQ(EngineTestPeer::FraudChecker(*recovered).StateHash(), fraud_hash);
  // And once they have judged, a replay of the new journal switches where this process did.
  SubmitTransfers(*recovered, 61, 30, clock_);
  ASSERT_TRUE(recovered->Stop().drained);
  const uint64_t after_hash = EngineTestPeer::FraudChecker(*recovered).StateHash();
  recovered.reset();
  auto again = Open(dir, 0, &opening);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(EngineTestPeer::FraudChecker(*again).StateHash(), after_hash);
}

// At once after the start the start-up rules' own record is still on its way to the journal;
// a reload used to be refused then as "an earlier reload still under way", though the caller
// had none. It waits for that record instead.
TEST_P(EngineJournalOrderTest, AReloadAtOnceAfterTheStartIsTaken) {
  const std::string dir = Dir("reload-at-start");
  auto engine = Open(dir);
  ASSERT_NE(engine, nullptr);
  const fraud::FraudRules reloaded = VelocityRules(*engine, 4'000'000'000, 1'000'000);
  const absl::StatusOr<Sequence> from = engine->ReplaceFraudRules(reloaded);
  ASSERT_TRUE(from.ok()) << from.status();
  EXPECT_EQ(*from, 1u);
  SubmitTransfers(*engine, 1, 30, clock_);
  ASSERT_TRUE(engine->Stop().drained);
  const uint64_t fraud_hash = EngineTestPeer::FraudChecker(*engine).StateHash();
  engine.reset();
  auto recovered = Open(dir, 0, &reloaded);
  ASSERT_NE(recovered, nullptr);
  EXPECT_EQ(EngineTestPeer::FraudChecker(*recovered).StateHash(), fraud_hash);
}

INSTANTIATE_TEST_SUITE_P(AckPolicies, EngineJournalOrderTest,
                         ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable),
                         [](const ::testing::TestParamInfo<AckPolicy>& info) {
                           return std::string(AckPolicyName(info.param));
                         });

}  // namespace
}  // namespace vouch
