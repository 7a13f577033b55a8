// End-to-end behaviour of the engine, mostly in the inline deterministic mode with a manual
// clock, so that deadlines, stalls and late verdicts happen at exact times and every assertion
// is about behaviour rather than timing. The threaded tests at the end check the same paths
// with real stage threads, with generous bounds.
#include "engine/engine.h"

#include <thread>
#include <vector>

#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::kBlockedMerchant;
using testing::kOpeningBalance;
using testing::kUsd;
using testing::StepUntilIdle;
using testing::Transfer;

constexpr int64_t kDeadlineNs = 50'000'000;

class InlineEngineTest : public ::testing::Test {
 protected:
  void StartEngine(Options options) {
    options.inline_mode = true;
    options.clock = &clock_;
    options.verification_deadline_ns = kDeadlineNs;
    auto engine = Engine::Create(std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    ASSERT_TRUE(engine_->Start().ok());
  }
  int64_t Balance(uint64_t account) {
    return EngineTestPeer::Ledger(*engine_).Find(account)->balance_minor;
  }

  ManualClock clock_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(InlineEngineTest, VerifiedTransferMovesMoneyOnce) {
  StartEngine(BankOptions(4));
  const Confirmation c = engine_->Submit(Transfer(1, 1, 2, 500));
  EXPECT_EQ(c.status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(c.seq, 1u);
  EXPECT_EQ(c.deadline_ns, clock_.NowNs() + kDeadlineNs);
  StepUntilIdle(*engine_);
  const auto outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kVerified);
  EXPECT_EQ(outcomes[0].id, 1u);
  EXPECT_EQ(Balance(1), kOpeningBalance - 500);
  EXPECT_EQ(Balance(2), kOpeningBalance + 500);
  EXPECT_EQ(EngineTestPeer::Ledger(*engine_).ClearingMinor(kUsd), 0);
}

TEST_F(InlineEngineTest, OriginComesBackInTheOutcome) {
  StartEngine(BankOptions(4));
  ASSERT_EQ(engine_->Submit(Transfer(1, 1, 2, 500), /*origin=*/41).status, ConfirmStatus::kConfirmed);
  ASSERT_EQ(engine_->Submit(Transfer(2, 2, 3, 500), /*origin=*/42).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  const auto outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].origin, 41u);
  EXPECT_EQ(outcomes[1].origin, 42u);
}

TEST_F(InlineEngineTest, ReloadedFraudRulesApplyFromTheRecordedSequenceOn) {
  StartEngine(BankOptions(8));
  constexpr uint64_t kNewlyBlocked = 4242;
  Transaction before = Transfer(1, 1, 2, 100);
  before.merchant_id = kNewlyBlocked;
  ASSERT_EQ(engine_->Submit(before).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  fraud::FraudRules bad;
  bad.velocity_window_ns = 0;
  EXPECT_EQ(engine_->ReplaceFraudRules(bad).status().code(), absl::StatusCode::kInvalidArgument)
      << "a bad rule set is refused";
  fraud::FraudRules rules = BankOptions(8).fraud_rules;
  rules.blocked_merchants.push_back(kNewlyBlocked);
  const absl::StatusOr<Sequence> from = engine_->ReplaceFraudRules(rules);
  ASSERT_TRUE(from.ok()) << from.status();
  EXPECT_EQ(*from, 2u) << "seq 1 was judged by the old rules";
  Transaction after = Transfer(2, 3, 4, 100);
  after.merchant_id = kNewlyBlocked;
  const Confirmation c = engine_->Submit(after);
  ASSERT_EQ(c.seq, *from);
  StepUntilIdle(*engine_);
  const auto outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kVerified) << "old rules";
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kLateFailed) << "new rules";
  EXPECT_EQ(outcomes[1].reason, Reason::kBlockedMerchant);
}

TEST_F(InlineEngineTest, AccountRiskCapRefusesWithBusyUntilVerificationCatchesUp) {
  Options options = BankOptions(8);
  options.risk.limits.account_count_max = 2;
  options.risk.action = RiskAction::kBusy;
  StartEngine(options);
  EXPECT_EQ(engine_->Submit(Transfer(1, 1, 2, 100)).status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(engine_->Submit(Transfer(2, 1, 3, 100)).status, ConfirmStatus::kConfirmed);
  const Confirmation third = engine_->Submit(Transfer(3, 1, 4, 100));
  EXPECT_EQ(third.status, ConfirmStatus::kBusy);
  EXPECT_EQ(third.reason, Reason::kRiskLimit);
  EXPECT_EQ(engine_->Submit(Transfer(4, 5, 6, 100)).status, ConfirmStatus::kConfirmed)
      << "another account has its own headroom";
  EXPECT_EQ(engine_->Stats().busy[static_cast<int>(Reason::kRiskLimit)], 1u) << "counted";
  StepUntilIdle(*engine_);  // Verified: the exposure is gone.
  EXPECT_EQ(engine_->Submit(Transfer(3, 1, 4, 100)).status, ConfirmStatus::kConfirmed)
      << "nothing was recorded for the refused id: the retry is admitted";
}

TEST_F(InlineEngineTest, TotalValueCapHoldsForVerificationWhenConfiguredTo) {
  Options options = BankOptions(8);
  options.risk.limits.total_minor_max = 1'000;
  options.risk.action = RiskAction::kHold;
  StartEngine(options);
  const Confirmation first = engine_->Submit(Transfer(1, 1, 2, 600));
  EXPECT_EQ(first.status, ConfirmStatus::kConfirmed);
  EXPECT_FALSE(first.held);
  const Confirmation second = engine_->Submit(Transfer(2, 3, 4, 600));
  EXPECT_EQ(second.status, ConfirmStatus::kConfirmed);
  EXPECT_TRUE(second.held) << "over the total cap: answered only once verified";
  EXPECT_EQ(engine_->Stats().risk_holds, 1u);
  StepUntilIdle(*engine_);
  EXPECT_EQ(DrainOutcomes(*engine_).size(), 2u) << "both still get their one outcome";
  const Confirmation third = engine_->Submit(Transfer(3, 5, 6, 600));
  EXPECT_FALSE(third.held) << "headroom is back once the first was verified";
}

TEST_F(InlineEngineTest, MalformedTransactionsAreRejectedWithTheirReason) {
  Options options = BankOptions(4);
  options.amount_minor_max = 10'000;
  StartEngine(std::move(options));
  struct Case {
    Transaction txn;
    Reason reason;
  } cases[] = {
      {Transfer(0, 1, 2, 5), Reason::kMalformedId},
      {Transfer(1, 1, 2, 0), Reason::kMalformedAmount},
      {Transfer(2, 1, 2, -5), Reason::kMalformedAmount},
      {Transfer(3, 1, 1, 5), Reason::kMalformedSameAccount},
      {Transfer(4, 0, 1, 5), Reason::kMalformedSameAccount},
      {Transfer(6, 1, 2, 10'001), Reason::kOverLimit},
  };
  Transaction bad_currency = Transfer(5, 1, 2, 5);
  bad_currency.currency = PackCurrency("XXX");
  for (const auto& [txn, reason] : cases) {
    const Confirmation c = engine_->Submit(txn);
    EXPECT_EQ(c.status, ConfirmStatus::kRejected) << ReasonName(reason);
    EXPECT_EQ(c.reason, reason);
  }
  EXPECT_EQ(engine_->Submit(bad_currency).reason, Reason::kUnknownCurrency);
  EXPECT_EQ(engine_->Submit(Transfer(7, 1, 2, 10'000)).status, ConfirmStatus::kConfirmed)
      << "exactly at the limit is allowed";
  EXPECT_EQ(engine_->Stats().rejected[static_cast<int>(Reason::kMalformedAmount)], 2u);
}

TEST_F(InlineEngineTest, LateFraudFailureIsFlaggedOnceCompensatedAndHoldsTheAccount) {
  StartEngine(BankOptions(4));
  Transaction fraud = Transfer(10, 1, 2, 700);
  fraud.merchant_id = kBlockedMerchant;
  const Confirmation c = engine_->Submit(fraud);
  ASSERT_EQ(c.status, ConfirmStatus::kConfirmed) << "confirmed before verification";
  StepUntilIdle(*engine_);

  const auto outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 1u);
  const Outcome& o = outcomes[0];
  EXPECT_EQ(o.kind, OutcomeKind::kLateFailed);
  EXPECT_EQ(o.verifier, VerifierId::kFraud);
  EXPECT_EQ(o.reason, Reason::kBlockedMerchant);
  EXPECT_TRUE(o.compensation & kCompensationReversed);
  EXPECT_TRUE(o.compensation & kCompensationAccountHeld);
  EXPECT_EQ(Balance(1), kOpeningBalance) << "reservation reversed";
  EXPECT_EQ(Balance(2), kOpeningBalance) << "destination never credited";

  EXPECT_TRUE(engine_->IsOnHold(1));
  const Confirmation next = engine_->Submit(Transfer(11, 1, 3, 5));
  EXPECT_EQ(next.status, ConfirmStatus::kRejected);
  EXPECT_EQ(next.reason, Reason::kAccountOnHold);

  StepUntilIdle(*engine_);
  EXPECT_TRUE(DrainOutcomes(*engine_).empty()) << "flagged exactly once";

  const auto status = engine_->Query(10);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->final);
  std::vector<StateKind> kinds;
  for (const StateChange& change : status->history) kinds.push_back(change.kind);
  EXPECT_EQ(kinds.front(), StateKind::kReceived);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), StateKind::kLateFailed), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), StateKind::kAccountHeld), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), StateKind::kCompensated), kinds.end());

  ASSERT_TRUE(engine_->ReleaseHold(1).value_or(false));
  EXPECT_EQ(engine_->Submit(Transfer(12, 1, 3, 5)).status, ConfirmStatus::kConfirmed);
}

TEST_F(InlineEngineTest, LateInsufficientFundsFailsWithoutHold) {
  StartEngine(BankOptions(4));
  const Confirmation c = engine_->Submit(Transfer(20, 1, 2, kOpeningBalance + 1));
  ASSERT_EQ(c.status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  const auto outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kLateFailed);
  EXPECT_EQ(outcomes[0].verifier, VerifierId::kLedger);
  EXPECT_EQ(outcomes[0].reason, Reason::kInsufficientFunds);
  EXPECT_EQ(outcomes[0].compensation, kCompensationNone) << "nothing was reserved, no hold";
  EXPECT_FALSE(engine_->IsOnHold(1));
  EXPECT_EQ(Balance(1), kOpeningBalance);
}

TEST_F(InlineEngineTest, StalledVerifierTimesOutAtTheDeadlineAndItsLateVerdictIsOnlyRecorded) {
  StartEngine(BankOptions(4));
  EngineTestPeer::StallVerifier(*engine_, VerifierId::kFraud, 10 * kDeadlineNs);
  const Confirmation c = engine_->Submit(Transfer(30, 1, 2, 100));
  ASSERT_EQ(c.status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  clock_.AdvanceNs(kDeadlineNs - 1);
  StepUntilIdle(*engine_);
  EXPECT_TRUE(DrainOutcomes(*engine_).empty()) << "1 ns before the deadline";

  clock_.AdvanceNs(1);
  StepUntilIdle(*engine_);
  auto outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kLateTimeout);
  EXPECT_EQ(outcomes[0].verifier, VerifierId::kFraud);
  EXPECT_EQ(outcomes[0].reason, Reason::kDeadlineExceeded);
  EXPECT_EQ(outcomes[0].decided_ns - outcomes[0].confirmed_ns, kDeadlineNs) << "no slack inline";
  EXPECT_TRUE(outcomes[0].compensation & kCompensationReversed) << "the ledger had reserved";

  clock_.AdvanceNs(10 * kDeadlineNs);  // The stall ends; the fraud verdict arrives late.
  StepUntilIdle(*engine_);
  EXPECT_TRUE(DrainOutcomes(*engine_).empty()) << "a late verdict never makes a second outcome";
  const EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.late_verdicts, 1u);
  EXPECT_EQ(stats.outcomes_total(), 1u);
  EXPECT_EQ(Balance(1), kOpeningBalance) << "a timed-out transfer moves no money";
  const auto status = engine_->Query(30);
  ASSERT_TRUE(status.has_value());
  bool saw_late_verdict = false;
  for (const StateChange& change : status->history) {
    saw_late_verdict |= change.kind == StateKind::kLateVerdict;
  }
  EXPECT_TRUE(saw_late_verdict);
}

TEST_F(InlineEngineTest, DuplicateIdGetsTheOriginalConfirmationAndIsAppliedOnce) {
  StartEngine(BankOptions(4));
  const Confirmation first = engine_->Submit(Transfer(40, 1, 2, 100));
  const Confirmation again = engine_->Submit(Transfer(40, 1, 2, 100));
  EXPECT_EQ(again.status, ConfirmStatus::kConfirmed);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(again.deadline_ns, first.deadline_ns);
  StepUntilIdle(*engine_);
  EXPECT_EQ(DrainOutcomes(*engine_).size(), 1u);
  // The id is the key, and its first fields are kept with it: other fields are refused, not
  // applied, and not stored (the original answer stays).
  const Confirmation reused = engine_->Submit(Transfer(40, 3, 4, 999));
  EXPECT_EQ(reused.status, ConfirmStatus::kRejected);
  EXPECT_EQ(reused.reason, Reason::kIdReusedWithDifferentFields);
  EXPECT_FALSE(reused.duplicate);
  EXPECT_EQ(reused.seq, 0u);
  EXPECT_EQ(engine_->Submit(Transfer(40, 1, 2, 100)).seq, first.seq) << "the original stays";
  EXPECT_EQ(Balance(1), kOpeningBalance - 100);

  const Confirmation rejected = engine_->Submit(Transfer(41, 1, 2, 999'999'999));
  ASSERT_EQ(rejected.status, ConfirmStatus::kRejected);
  const Confirmation rejected_again = engine_->Submit(Transfer(41, 1, 2, 999'999'999));
  EXPECT_TRUE(rejected_again.duplicate);
  EXPECT_EQ(rejected_again.reason, rejected.reason);
  EXPECT_EQ(engine_->Stats().duplicates, 3u);
  EXPECT_EQ(engine_->Stats().rejected[static_cast<int>(Reason::kIdReusedWithDifferentFields)], 1u);
}

TEST_F(InlineEngineTest, FullPipelineAnswersBusyAndLosesNothing) {
  Options options = BankOptions(4);
  options.in_flight_capacity = 64;
  options.idempotency_window = 1024;
  StartEngine(std::move(options));
  std::vector<uint64_t> busy_ids;
  int confirmed = 0;
  for (uint64_t id = 1; id <= 100; ++id) {
    const Confirmation c = engine_->Submit(Transfer(id, 1 + id % 4, 1 + (id + 1) % 4, 10));
    if (c.status == ConfirmStatus::kConfirmed) ++confirmed;
    if (c.status == ConfirmStatus::kBusy) {
      EXPECT_EQ(c.reason, Reason::kQueueFull);
      busy_ids.push_back(id);
    }
  }
  EXPECT_EQ(confirmed, 64);
  EXPECT_EQ(busy_ids.size(), 36u);
  EXPECT_EQ(engine_->Stats().busy[static_cast<int>(Reason::kQueueFull)], 36u);
  StepUntilIdle(*engine_);
  EXPECT_EQ(DrainOutcomes(*engine_).size(), 64u);
  for (uint64_t id : busy_ids) {  // A BUSY answer recorded nothing: the retry is admitted.
    EXPECT_EQ(engine_->Submit(Transfer(id, 1 + id % 4, 1 + (id + 1) % 4, 10)).status,
              ConfirmStatus::kConfirmed);
  }
  StepUntilIdle(*engine_);
  EXPECT_EQ(DrainOutcomes(*engine_).size(), 36u);
  const DrainReport report = engine_->Stop();
  EXPECT_TRUE(report.drained);
  EXPECT_EQ(report.confirmed, 100u);
  EXPECT_EQ(EngineTestPeer::Ledger(*engine_).TotalMinor(kUsd), 4 * kOpeningBalance);
}

TEST_F(InlineEngineTest, UnpolledOutcomesBackUpIntoBusyInsteadOfBeingDropped) {
  Options options = BankOptions(4);
  options.in_flight_capacity = 64;
  options.outcome_queue_capacity = 64;
  options.idempotency_window = 4096;
  options.fraud_rules.velocity_enabled = false;  // 1000 transfers from one account is the point.
  StartEngine(std::move(options));
  uint64_t confirmed = 0, busy = 0;
  for (uint64_t id = 1; id <= 1000; ++id) {
    const Confirmation c = engine_->Submit(Transfer(id, 1, 2, 1));
    confirmed += c.status == ConfirmStatus::kConfirmed;
    busy += c.status == ConfirmStatus::kBusy;
    StepUntilIdle(*engine_);
  }
  EXPECT_GT(busy, 0u) << "confirmed=" << confirmed << " stalls="
                      << engine_->Stats().outcome_queue_stalls;
  uint64_t outcomes = 0;
  for (int round = 0; round < 100; ++round) {
    outcomes += DrainOutcomes(*engine_).size();
    StepUntilIdle(*engine_);
  }
  EXPECT_EQ(outcomes, confirmed) << "every confirmed transaction's outcome is delivered";
}

TEST_F(InlineEngineTest, HybridHoldsLargeAndWatchedTransactionsUntilVerified) {
  Options options = BankOptions(4);
  options.policy.mode = PolicyMode::kHybrid;
  options.policy.hold_amount_minor_min = 1000;
  options.policy.watched_accounts = {3};
  StartEngine(std::move(options));
  const Confirmation small = engine_->Submit(Transfer(1, 1, 2, 999));
  EXPECT_FALSE(small.held);
  EXPECT_EQ(small.status, ConfirmStatus::kConfirmed);
  const Confirmation large = engine_->Submit(Transfer(2, 1, 2, 1000));
  EXPECT_TRUE(large.held);
  EXPECT_EQ(large.status, ConfirmStatus::kConfirmed) << "held, then verified";
  EXPECT_EQ(engine_->Submit(Transfer(3, 3, 2, 5)).held, true) << "watched account";
  Transaction risky = Transfer(4, 2, 1, 5000);
  risky.merchant_id = kBlockedMerchant;
  const Confirmation refused = engine_->Submit(risky);
  EXPECT_TRUE(refused.held);
  EXPECT_EQ(refused.status, ConfirmStatus::kRejected) << "a held failure is refused in time";
  EXPECT_EQ(refused.reason, Reason::kBlockedMerchant);
  const Confirmation poor = engine_->Submit(Transfer(5, 4, 1, kOpeningBalance * 2));
  EXPECT_EQ(poor.status, ConfirmStatus::kRejected);
  EXPECT_EQ(poor.reason, Reason::kInsufficientFunds);
  StepUntilIdle(*engine_);
  const auto outcomes = DrainOutcomes(*engine_);
  EXPECT_EQ(outcomes.size(), 5u) << "held transactions still get their one outcome";
  const Confirmation dup = engine_->Submit(risky);
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.status, ConfirmStatus::kRejected);
}

TEST(EngineOptionsTest, InvalidOptionsAreRefusedWithTheFieldNamed) {
  Options options = BankOptions(2);
  options.in_flight_capacity = 1000;  // Not a power of two.
  auto engine = Engine::Create(options);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("in_flight_capacity"), std::string_view::npos);

  options = BankOptions(2);
  options.verification_deadline_ns = 0;
  EXPECT_FALSE(Engine::Create(options).ok());

  options = BankOptions(2);
  options.accounts.push_back({1, kUsd, 5, 0});  // Duplicate account id.
  options.ledger_account_capacity = 3;
  auto duplicate = Engine::Create(options);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.status().message().find("account 1"), std::string_view::npos);

  EXPECT_FALSE(ParsePolicyMode("sometimes").ok());
  EXPECT_EQ(*ParsePolicyMode("hybrid"), PolicyMode::kHybrid);
}

// Threaded: real stage threads, real clock.

TEST(ThreadedEngineTest, HybridAndSyncModesReturnFinalAnswers) {
  for (PolicyMode mode : {PolicyMode::kHybrid, PolicyMode::kSync}) {
    Options options = BankOptions(4);
    options.policy.mode = mode;
    options.policy.hold_amount_minor_min = 1000;
    auto engine = Engine::Create(options);
    ASSERT_TRUE(engine.ok());
    ASSERT_TRUE((*engine)->Start().ok());
    const Confirmation small = (*engine)->Submit(Transfer(1, 1, 2, 10));
    EXPECT_EQ(small.held, mode == PolicyMode::kSync);
    const Confirmation big = (*engine)->Submit(Transfer(2, 1, 2, 5000));
    EXPECT_TRUE(big.held);
    EXPECT_EQ(big.status, ConfirmStatus::kConfirmed);
    Transaction risky = Transfer(3, 2, 1, 5000);
    risky.merchant_id = kBlockedMerchant;
    const Confirmation refused = (*engine)->Submit(risky);
    EXPECT_EQ(refused.status, ConfirmStatus::kRejected);
    EXPECT_EQ(refused.reason, Reason::kBlockedMerchant);
    const DrainReport report = (*engine)->Stop();
    EXPECT_TRUE(report.drained);
    EXPECT_EQ(DrainOutcomes(**engine).size(), 3u);
  }
}

TEST(ThreadedEngineTest, StalledVerifierTimesOutWithinDeadlinePlusSlack) {
  Options options = BankOptions(4);
  options.verification_deadline_ns = 20'000'000;
  auto engine = Engine::Create(options);
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->Start().ok());
  EngineTestPeer::StallVerifier(**engine, VerifierId::kLedger, 300'000'000);
  ASSERT_EQ((*engine)->Submit(Transfer(1, 1, 2, 10)).status, ConfirmStatus::kConfirmed);
  std::vector<Outcome> outcomes;
  for (int i = 0; i < 2000 && outcomes.empty(); ++i) {
    outcomes = DrainOutcomes(**engine);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kLateTimeout);
  EXPECT_EQ(outcomes[0].verifier, VerifierId::kLedger);
  const int64_t latency_ns = outcomes[0].decided_ns - outcomes[0].confirmed_ns;
  EXPECT_GE(latency_ns, 20'000'000);
  // Slack: one park period (1 ms) plus scheduling on a loaded 2-core machine; 250 ms is
  // generous and still far below the stall, so it proves the timeout fired, not the verdict.
  EXPECT_LT(latency_ns, 20'000'000 + 250'000'000);
  const DrainReport report = (*engine)->Stop();
  EXPECT_TRUE(report.drained) << "the late ledger verdict arrives and is reversed";
  EXPECT_TRUE(DrainOutcomes(**engine).empty());
  EXPECT_EQ(EngineTestPeer::Ledger(**engine).TotalMinor(kUsd), 4 * kOpeningBalance);
  EXPECT_EQ(EngineTestPeer::Ledger(**engine).ClearingMinor(kUsd), 0);
  EXPECT_EQ(EngineTestPeer::Ledger(**engine).Find(1)->balance_minor, kOpeningBalance);
}

TEST(ThreadedEngineTest, SubmitAfterStopIsBusyShuttingDown) {
  auto engine = Engine::Create(BankOptions(2));
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->Start().ok());
  (void)(*engine)->Stop();
  const Confirmation c = (*engine)->Submit(Transfer(1, 1, 2, 10));
  EXPECT_EQ(c.status, ConfirmStatus::kBusy);
  EXPECT_EQ(c.reason, Reason::kShuttingDown);
}


// Once Stop() returned no stage runs, and ReadBalances reads the final ledger on the caller's
// thread (what vouchd --check does); before Start it refuses (kUnavailable). Inline and threaded,
// since the two stop differently (Stop steps the stages, or joins their threads).
class StoppedBalanceReadTest : public ::testing::TestWithParam<bool> {};  // inline_mode

TEST_P(StoppedBalanceReadTest, AStoppedEngineReadsItsFinalLedger) {
  Options options = BankOptions(4);
  options.inline_mode = GetParam();
  auto engine = Engine::Create(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  BalanceSnapshot snapshot;
  EXPECT_EQ((*engine)->ReadBalances({}, &snapshot, absl::ZeroDuration()).code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE((*engine)->Start().ok());
  ASSERT_EQ((*engine)->Submit(Transfer(1, 1, 2, 300)).status, ConfirmStatus::kConfirmed);
  ASSERT_TRUE((*engine)->Stop().drained);
  const std::vector<uint64_t> ids = {1, 2, 99};
  ASSERT_TRUE((*engine)->ReadBalances(ids, &snapshot, absl::ZeroDuration()).ok());
  ASSERT_EQ(snapshot.accounts.size(), 2u) << "99 is unknown: left out";
  EXPECT_EQ(snapshot.accounts[0].id, 1u);
  EXPECT_EQ(snapshot.accounts[0].balance_minor, kOpeningBalance - 300);
  EXPECT_EQ(snapshot.accounts[1].balance_minor, kOpeningBalance + 300);
  EXPECT_EQ(snapshot.accounts[1].pending_count, 0u);
  ASSERT_EQ(snapshot.currencies.size(), 1u);
  EXPECT_EQ(snapshot.currencies[0].total_minor, 4 * kOpeningBalance);
  EXPECT_EQ(snapshot.currencies[0].clearing_minor, 0);
  EXPECT_EQ(snapshot.postings, EngineTestPeer::Ledger(**engine).postings());
  ASSERT_TRUE((*engine)->ReadBalances({}, &snapshot, absl::ZeroDuration()).ok());
  EXPECT_EQ(snapshot.accounts.size(), 4u);
  EXPECT_EQ((*engine)->balance_read_counters().served, 2u);
}

INSTANTIATE_TEST_SUITE_P(Modes, StoppedBalanceReadTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Inline" : "Threaded";
                         });

}  // namespace
}  // namespace vouch
