// Recovery from the journal: the engine restarted on the same data directory has the state it
// had (balances, fraud state, holds, idempotency), and a transaction confirmed without an outcome
// when the process died is verified after the restart and gets exactly one outcome.
//
// Method: the engines run inline with a manual clock, so every step is deterministic. A crash is
// simulated by copying the data directory while the engine is live (under ack policy `written`
// the journal's records are in the files once write(2) returned, so the copy holds exactly what a
// kill -9 at that moment would leave) and recovering a new engine from the copy. The real
// kill -9 of a server at load is a separate test (tests/tools/crash).
#include <algorithm>
#include <filesystem>
#include <fstream>

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

namespace fs = std::filesystem;

class EngineRecoveryTest : public ::testing::Test {
 protected:
  std::string Dir(const std::string& name) {
    return testing::EmptyTestDir(name);
  }
  std::unique_ptr<Engine> Open(const std::string& dir, AckPolicy ack = AckPolicy::kWritten,
                               uint64_t snapshot_interval_records = 0) {
    Options options = BankOptions(20);
    options.durability.segment_bytes_max = 64 * 1024;  // ~600 records: many segments.
    options.durability.snapshot_interval_records = snapshot_interval_records;
    options.fraud_rules.velocity_enabled = false;  // Thousands of payments from 19 accounts.
    options.inline_mode = true;
    options.clock = &clock_;
    options.durability.ack = ack;
    options.durability.dir = dir;
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
  // Transfers among accounts 1..20, a few to a blocked merchant (fraud: account held).
  static Transaction Sent(uint64_t id) {
    Transaction txn = Transfer(id, 1 + id % 19, 2 + id % 19, 100 + id % 7);
    if (id % 50 == 0) txn.merchant_id = kBlockedMerchant;
    return txn;
  }
  void SubmitSome(Engine& engine, uint64_t first_id, int count) {
    for (int i = 0; i < count; ++i) {
      const uint64_t id = first_id + i;
      const Confirmation c = engine.Submit(Sent(id));
      if (c.status == ConfirmStatus::kConfirmed) confirmed_.push_back(c);
      clock_.AdvanceNs(1'000);
    }
  }

  ManualClock clock_;
  std::vector<Confirmation> confirmed_;
};

TEST_F(EngineRecoveryTest, RestartRebuildsBalancesFraudStateHoldsAndIdempotency) {
  const std::string dir = Dir("restart");
  uint64_t ledger_hash = 0, fraud_hash = 0;
  std::vector<uint64_t> holds;
  {
    auto engine = Open(dir);
    SubmitSome(*engine, 1, 400);
    StepUntilIdle(*engine);
    ASSERT_TRUE(engine->ReleaseHold(1 + 50 % 19).value_or(false));  // One of the held accounts, released.
    DrainOutcomes(*engine);
    EXPECT_TRUE(engine->Stop().drained);
    ledger_hash = EngineTestPeer::Ledger(*engine).StateHash();
    fraud_hash = EngineTestPeer::FraudChecker(*engine).StateHash();
    holds = engine->Holds();
  }
  ASSERT_FALSE(holds.empty());
  auto engine = Open(dir);
  const RecoveryReport& recovery = engine->recovery();
  EXPECT_EQ(recovery.confirmed, confirmed_.size());
  EXPECT_EQ(recovery.outcomes, confirmed_.size());
  EXPECT_EQ(recovery.reverified, 0u);
  EXPECT_EQ(recovery.releases, 1u);
  EXPECT_FALSE(recovery.truncated);
  EXPECT_EQ(EngineTestPeer::Ledger(*engine).StateHash(), ledger_hash);
  EXPECT_EQ(EngineTestPeer::FraudChecker(*engine).StateHash(), fraud_hash);
  std::vector<uint64_t> recovered_holds = engine->Holds();
  std::sort(holds.begin(), holds.end());
  std::sort(recovered_holds.begin(), recovered_holds.end());
  EXPECT_EQ(recovered_holds, holds);

  // A resubmitted id gets its original confirmation (with other fields, it is refused: the
  // fingerprint came back from the journal); numbering continues.
  const Confirmation& original = confirmed_[10];
  const Confirmation again = engine->Submit(Sent(original.id));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, original.seq);
  EXPECT_EQ(again.status, ConfirmStatus::kConfirmed);
  Transaction altered = Sent(original.id);
  altered.amount_minor += 1;
  const Confirmation reused = engine->Submit(altered);
  EXPECT_EQ(reused.status, ConfirmStatus::kRejected);
  EXPECT_EQ(reused.reason, Reason::kIdReusedWithDifferentFields);
  uint64_t source = 1;
  while (engine->IsOnHold(source)) ++source;
  const Confirmation next = engine->Submit(Transfer(100'000, source, source + 1, 100));
  ASSERT_EQ(next.status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(next.seq, confirmed_.back().seq + 1);
  // Query knows recovered transactions.
  const auto status = engine->Query(original.id);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->final);
}

TEST_F(EngineRecoveryTest, ConfirmedWithoutOutcomeAtTheCrashGetsExactlyOneOutcomeAfter) {
  const std::string dir = Dir("live");
  const std::string crashed = Dir("crashed");
  std::vector<Outcome> before;
  {
    auto engine = Open(dir);
    SubmitSome(*engine, 1, 200);
    StepUntilIdle(*engine);
    before = DrainOutcomes(*engine);
    ASSERT_EQ(before.size(), confirmed_.size());
    // The fraud verifier stalls: the next transactions are confirmed (and journaled: Submit
    // waits for it) but not decided when the process "dies".
    EngineTestPeer::StallVerifier(*engine, VerifierId::kFraud, 10'000'000'000);
    SubmitSome(*engine, 1'001, 60);
    for (int i = 0; i < 10; ++i) engine->Step();
    fs::copy(dir, crashed, fs::copy_options::recursive);
  }
  auto engine = Open(crashed);
  const RecoveryReport& recovery = engine->recovery();
  EXPECT_EQ(recovery.confirmed, confirmed_.size());
  EXPECT_EQ(recovery.outcomes, before.size());
  EXPECT_EQ(recovery.reverified, confirmed_.size() - before.size());
  StepUntilIdle(*engine);
  const std::vector<Outcome> after = DrainOutcomes(*engine);
  ASSERT_EQ(after.size(), recovery.reverified);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].seq, before.size() + 1 + i) << "original sequence numbers, in order";
  }
  EXPECT_TRUE(engine->Stop().drained);
  // Money is conserved and nothing is left in clearing.
  int64_t total = 0;
  EngineTestPeer::Ledger(*engine).ForEachAccount(
      [&](const ledger::AccountView& a) { total += a.balance_minor; });
  EXPECT_EQ(total, 20 * testing::kOpeningBalance);
  EXPECT_EQ(EngineTestPeer::Ledger(*engine).ClearingMinor(testing::kUsd), 0);
}

TEST_F(EngineRecoveryTest, ReplayingTheSameJournalTwiceGivesTheSameState) {
  const std::string dir = Dir("twice");
  {
    auto engine = Open(dir, AckPolicy::kDurable);
    SubmitSome(*engine, 1, 300);
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    EXPECT_TRUE(engine->Stop().drained);
  }
  const std::string copy = Dir("twice-copy");
  fs::copy(dir, copy, fs::copy_options::recursive);
  auto first = Open(dir);
  auto second = Open(copy);
  EXPECT_EQ(EngineTestPeer::Ledger(*first).StateHash(),
            EngineTestPeer::Ledger(*second).StateHash());
  EXPECT_EQ(EngineTestPeer::FraudChecker(*first).StateHash(),
            EngineTestPeer::FraudChecker(*second).StateHash());
  EXPECT_EQ(first->recovery().records, second->recovery().records);
}

size_t SegmentCount(const std::string& dir) {
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) count += entry.path().extension() == ".log";
  return count;
}

TEST_F(EngineRecoveryTest, SnapshotPlusTailRecoversAndCoveredSegmentsGo) {
  const std::string dir = Dir("snapshot");
  {
    auto engine = Open(dir, AckPolicy::kWritten, /*snapshot_interval_records=*/300);
    SubmitSome(*engine, 1, 1'500);
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    const size_t segments_before = SegmentCount(dir);
    ASSERT_TRUE(engine->PollSnapshot().ok());
    ASSERT_EQ(engine->Stats().snapshots, 1u);
    EXPECT_LT(SegmentCount(dir), segments_before) << "covered segments are removed";
    SubmitSome(*engine, 10'001, 200);  // A tail after the snapshot.
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    EXPECT_TRUE(engine->Stop().drained);
  }
  auto from_snapshot = Open(dir);
  EXPECT_FALSE(from_snapshot->recovery().snapshot_file.empty());
  EXPECT_GT(from_snapshot->recovery().snapshot_record_index, 0u);
  EXPECT_EQ(from_snapshot->recovery().confirmed, confirmed_.size());
  EXPECT_EQ(from_snapshot->recovery().outcomes, confirmed_.size());
  EXPECT_LT(from_snapshot->recovery().records, 2 * confirmed_.size()) << "only the tail replayed";
  // A recent id is still recognised, and numbering continues.
  const Confirmation& recent = confirmed_[confirmed_.size() - 5];
  const Confirmation again = from_snapshot->Submit(Sent(recent.id));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, recent.seq);
  // Its fingerprint too, through the snapshot (VOUCHR04) or the tail.
  Transaction altered = Sent(recent.id);
  altered.device_id += 1;
  EXPECT_EQ(from_snapshot->Submit(altered).reason, Reason::kIdReusedWithDifferentFields);
  const Confirmation& covered = confirmed_[3];  // Covered by the snapshot, not the tail.
  EXPECT_EQ(from_snapshot->Submit(Sent(covered.id)).seq, covered.seq);
  altered = Sent(covered.id);
  altered.merchant_category += 1;
  EXPECT_EQ(from_snapshot->Submit(altered).reason, Reason::kIdReusedWithDifferentFields);
}

// Found by the simulation (tests/engine/simulation): the snapshot carried the answers but not
// the outcomes, so after a restart Query and FinalOutcome no longer knew how a covered
// transaction ended, and a resuming client could not be sent it.
TEST_F(EngineRecoveryTest, OutcomesCoveredByTheSnapshotAreStillKnownAfterARestart) {
  const std::string dir = Dir("snapshot-outcomes");
  std::vector<Outcome> told;
  {
    auto engine = Open(dir, AckPolicy::kWritten, /*snapshot_interval_records=*/300);
    SubmitSome(*engine, 1, 1'500);
    StepUntilIdle(*engine);
    told = DrainOutcomes(*engine);
    ASSERT_TRUE(engine->PollSnapshot().ok());
    ASSERT_EQ(engine->Stats().snapshots, 1u);
    EXPECT_TRUE(engine->Stop().drained);
  }
  auto restarted = Open(dir);
  ASSERT_GT(restarted->recovery().snapshot_record_index, 0u);
  ASSERT_FALSE(told.empty());
  int failed = 0;
  for (const Outcome& outcome : told) {
    const std::optional<Outcome> kept = restarted->FinalOutcome(outcome.seq);
    ASSERT_TRUE(kept.has_value()) << "seq " << outcome.seq;
    EXPECT_EQ(kept->id, outcome.id);
    EXPECT_EQ(kept->kind, outcome.kind);
    EXPECT_EQ(kept->verifier, outcome.verifier);
    EXPECT_EQ(kept->reason, outcome.reason);
    EXPECT_EQ(kept->compensation, outcome.compensation);
    EXPECT_EQ(kept->decided_ns, outcome.decided_ns);
    EXPECT_EQ(kept->confirmed_ns, outcome.confirmed_ns);
    EXPECT_EQ(kept->source_account, outcome.source_account);
    EXPECT_EQ(kept->amount_minor, outcome.amount_minor);
    EXPECT_EQ(kept->currency, outcome.currency);
    EXPECT_EQ(kept->origin, outcome.origin);
    failed += outcome.kind != OutcomeKind::kVerified;
    const std::optional<TransactionStatus> status = restarted->Query(outcome.id);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->final) << "id " << outcome.id;
  }
  EXPECT_GT(failed, 0) << "the stream includes failures (blocked merchant)";
}

TEST_F(EngineRecoveryTest, SnapshotStateEqualsFullReplayState) {
  const std::string dir = Dir("snap-vs-full");
  const std::string full = Dir("snap-vs-full-copy");
  {
    auto engine = Open(dir, AckPolicy::kWritten, 300);
    SubmitSome(*engine, 1, 1'500);
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    EXPECT_TRUE(engine->Stop().drained);
  }
  fs::copy(dir, full, fs::copy_options::recursive);
  {
    // Snapshot the copy offline: open it with snapshots on and poll once.
    auto engine = Open(dir, AckPolicy::kWritten, 300);
    ASSERT_TRUE(engine->PollSnapshot().ok());
    ASSERT_EQ(engine->Stats().snapshots, 1u);
    EXPECT_TRUE(engine->Stop().drained);
  }
  auto from_snapshot = Open(dir);
  auto from_full = Open(full);
  ASSERT_FALSE(from_snapshot->recovery().snapshot_file.empty());
  EXPECT_TRUE(from_full->recovery().snapshot_file.empty());
  EXPECT_EQ(EngineTestPeer::Ledger(*from_snapshot).StateHash(),
            EngineTestPeer::Ledger(*from_full).StateHash());
  EXPECT_EQ(EngineTestPeer::FraudChecker(*from_snapshot).StateHash(),
            EngineTestPeer::FraudChecker(*from_full).StateHash());
  std::vector<uint64_t> a = from_snapshot->Holds(), b = from_full->Holds();
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
  EXPECT_EQ(from_snapshot->recovery().confirmed, from_full->recovery().confirmed);
  EXPECT_LT(from_snapshot->recovery().records, from_full->recovery().records);
}

TEST_F(EngineRecoveryTest, DamagedSnapshotRefusesToStartNamingIt) {
  const std::string dir = Dir("snap-damaged");
  {
    auto engine = Open(dir, AckPolicy::kWritten, 300);
    SubmitSome(*engine, 1, 1'500);
    StepUntilIdle(*engine);
    ASSERT_TRUE(engine->PollSnapshot().ok());
    EXPECT_TRUE(engine->Stop().drained);
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".snap") continue;
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('\x5a');
  }
  Options options = BankOptions(20);
  options.inline_mode = true;
  options.clock = &clock_;
  options.fraud_rules.velocity_enabled = false;
  options.durability.ack = AckPolicy::kWritten;
  options.durability.dir = dir;
  auto engine = Engine::Create(std::move(options));
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(engine.status().message().find("snapshot-"), std::string::npos)
      << engine.status().message();
}

}  // namespace
}  // namespace vouch
