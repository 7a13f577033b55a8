// What an Outcome says about money matches what was done with it, when verdicts race.
//
// Method: inline engines on a manual clock, stepped one stage at a time (Engine::StepStage), so
// that the order in which the fraud verifier, the ledger verifier and the reconciler see a
// transaction is chosen by the test: a decision before the ledger has judged, a decision while
// its verdict is on the way, and a hold placed while more of the account's transactions are in
// flight. The threaded suite at the end runs the in-flight hold under every policy mode with real
// stage threads, holding the race still with a stalled fraud verifier.
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "engine/engine.h"
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

std::vector<StateKind> Kinds(const Engine& engine, uint64_t id) {
  std::vector<StateKind> kinds;
  const std::optional<TransactionStatus> status = engine.Query(id);
  if (!status.has_value()) return kinds;
  for (const StateChange& change : status->history) kinds.push_back(change.kind);
  return kinds;
}

bool Has(const std::vector<StateKind>& kinds, StateKind kind) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

Transaction Fraudulent(uint64_t id, uint64_t from, uint64_t to, int64_t amount_minor) {
  Transaction txn = Transfer(id, from, to, amount_minor);
  txn.merchant_id = kBlockedMerchant;
  return txn;
}

class OutcomeTest : public ::testing::Test {
 protected:
  void StartEngine(bool fail_in_flight_on_hold = true) {
    Options options = BankOptions(4);
    options.inline_mode = true;
    options.clock = &clock_;
    options.verification_deadline_ns = kDeadlineNs;
    options.fail_in_flight_on_hold = fail_in_flight_on_hold;
    auto engine = Engine::Create(std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    ASSERT_TRUE(engine_->Start().ok());
  }
  int64_t Balance(uint64_t account) {
    return EngineTestPeer::Ledger(*engine_).Find(account)->balance_minor;
  }
  void ExpectNoMoneyMoved() {
    for (uint64_t account = 1; account <= 4; ++account) {
      EXPECT_EQ(Balance(account), kOpeningBalance) << "account " << account;
    }
    EXPECT_EQ(EngineTestPeer::Ledger(*engine_).ClearingMinor(kUsd), 0);
  }
  // The outcome of `id` among `outcomes`.
  static const Outcome* Find(const std::vector<Outcome>& outcomes, uint64_t id) {
    for (const Outcome& outcome : outcomes) {
      if (outcome.id == id) return &outcome;
    }
    return nullptr;
  }

  ManualClock clock_;
  std::unique_ptr<Engine> engine_;
};

// Item 15: fraud fails it and the reconciler decides before the ledger has looked at it. The
// ledger then never reserves it: the outcome says "not reversed" and nothing was.
TEST_F(OutcomeTest, ATransactionDecidedBeforeTheLedgerIsNeverReserved) {
  StartEngine();
  ASSERT_EQ(engine_->Submit(Fraudulent(1, 1, 2, 700)).status, ConfirmStatus::kConfirmed);
  engine_->StepStage(InlineStage::kFraud);
  engine_->StepStage(InlineStage::kReconcile);
  std::vector<Outcome> outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kLateFailed);
  EXPECT_EQ(outcomes[0].reason, Reason::kBlockedMerchant);
  EXPECT_EQ(outcomes[0].compensation, kCompensationAccountHeld) << "nothing to reverse";

  engine_->StepStage(InlineStage::kLedger);  // The ledger reaches it only now.
  StepUntilIdle(*engine_);
  EXPECT_TRUE(DrainOutcomes(*engine_).empty());
  const std::vector<StateKind> kinds = Kinds(*engine_, 1);
  EXPECT_FALSE(Has(kinds, StateKind::kCompensated)) << "the outcome said nothing was reversed";
  EXPECT_TRUE(Has(kinds, StateKind::kLateVerdict));
  const std::optional<TransactionStatus> status = engine_->Query(1);
  ASSERT_TRUE(status.has_value());
  for (const StateChange& change : status->history) {
    if (change.kind != StateKind::kLateVerdict) continue;
    EXPECT_EQ(change.verifier, VerifierId::kLedger);
    EXPECT_FALSE(change.pass);
    EXPECT_EQ(change.reason, Reason::kDecidedBeforeLedger);
  }
  const EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.reversals, 0u);
  EXPECT_EQ(stats.late_verdicts, 1u);
  ExpectNoMoneyMoved();
}

// Item 15, the other order: the ledger reserved it before the decision, so the outcome says
// "reversed", and the history shows the reversal.
TEST_F(OutcomeTest, ATransactionReservedBeforeTheDecisionIsReversedAndSaysSo) {
  StartEngine();
  ASSERT_EQ(engine_->Submit(Fraudulent(1, 1, 2, 700)).status, ConfirmStatus::kConfirmed);
  engine_->StepStage(InlineStage::kLedger);
  engine_->StepStage(InlineStage::kFraud);
  StepUntilIdle(*engine_);
  const std::vector<Outcome> outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].compensation, kCompensationReversed | kCompensationAccountHeld);
  EXPECT_TRUE(Has(Kinds(*engine_, 1), StateKind::kCompensated));
  EXPECT_EQ(engine_->Stats().reversals, 1u);
  ExpectNoMoneyMoved();
}

// Item 15 with a timeout: the ledger is stalled past the deadline, so the transaction times out
// unjudged by it, and the ledger, once it resumes, does not reserve it.
TEST_F(OutcomeTest, ATransactionTimedOutBeforeTheLedgerIsNeverReserved) {
  StartEngine();
  EngineTestPeer::StallVerifier(*engine_, VerifierId::kLedger, 10 * kDeadlineNs);
  ASSERT_EQ(engine_->Submit(Transfer(1, 1, 2, 700)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  clock_.AdvanceNs(kDeadlineNs);
  StepUntilIdle(*engine_);
  std::vector<Outcome> outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kLateTimeout);
  EXPECT_EQ(outcomes[0].verifier, VerifierId::kLedger);
  EXPECT_EQ(outcomes[0].compensation, kCompensationNone);
  clock_.AdvanceNs(10 * kDeadlineNs);
  StepUntilIdle(*engine_);
  EXPECT_FALSE(Has(Kinds(*engine_, 1), StateKind::kCompensated));
  EXPECT_EQ(engine_->Stats().reversals, 0u);
  ExpectNoMoneyMoved();
  EXPECT_TRUE(engine_->Stop().drained);
}

// Item 17: a fraud failure holds account 1 while two more of its transactions are in flight, one
// reserved by the ledger already and one not: both fail with their own reason, neither moves
// money, and account 2's transaction, in flight alongside, is verified.
TEST_F(OutcomeTest, AHoldFailsTheAccountsTransactionsInFlight) {
  StartEngine();
  ASSERT_EQ(engine_->Submit(Fraudulent(1, 1, 3, 100)).status, ConfirmStatus::kConfirmed);
  ASSERT_EQ(engine_->Submit(Transfer(2, 1, 3, 200)).status, ConfirmStatus::kConfirmed);
  engine_->StepStage(InlineStage::kLedger);  // Reserves 1 and 2.
  ASSERT_EQ(engine_->Submit(Transfer(3, 1, 3, 300)).status, ConfirmStatus::kConfirmed);
  ASSERT_EQ(engine_->Submit(Transfer(4, 2, 3, 400)).status, ConfirmStatus::kConfirmed);
  engine_->StepStage(InlineStage::kFraud);      // Fails 1; passes 2, 3 and 4.
  engine_->StepStage(InlineStage::kReconcile);  // The hold on 1 fails 2 and 3 as well.
  StepUntilIdle(*engine_);
  const std::vector<Outcome> outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(Find(outcomes, 1)->reason, Reason::kBlockedMerchant);
  EXPECT_EQ(Find(outcomes, 1)->compensation, kCompensationReversed | kCompensationAccountHeld);
  for (const uint64_t id : {2, 3}) {
    const Outcome& outcome = *Find(outcomes, id);
    EXPECT_EQ(outcome.kind, OutcomeKind::kLateFailed) << id;
    EXPECT_EQ(outcome.verifier, VerifierId::kFraud) << id;
    EXPECT_EQ(outcome.reason, Reason::kAccountHeldInFlight) << id;
    EXPECT_TRUE(Has(Kinds(*engine_, id), StateKind::kLateVerdict)) << id;
  }
  EXPECT_EQ(Find(outcomes, 2)->compensation, kCompensationReversed) << "it was reserved";
  EXPECT_EQ(Find(outcomes, 3)->compensation, kCompensationNone) << "it was never reserved";
  EXPECT_TRUE(Has(Kinds(*engine_, 2), StateKind::kCompensated));
  EXPECT_FALSE(Has(Kinds(*engine_, 3), StateKind::kCompensated));
  EXPECT_EQ(Find(outcomes, 4)->kind, OutcomeKind::kVerified);
  EXPECT_EQ(Balance(1), kOpeningBalance) << "a held account drains nothing in flight";
  EXPECT_EQ(Balance(2), kOpeningBalance - 400);
  EXPECT_EQ(engine_->Stats().failures_by_reason[static_cast<int>(Reason::kAccountHeldInFlight)],
            2u);
}

// Item 17, a transaction the hold's scan could not see (published after it): it is failed at
// its decision, because a held account's transaction is never VERIFIED.
TEST_F(OutcomeTest, ATransactionPublishedAfterTheHoldIsFailedAtItsDecision) {
  StartEngine();
  ASSERT_EQ(engine_->Submit(Fraudulent(1, 1, 3, 100)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  ASSERT_TRUE(engine_->IsOnHold(1));
  const absl::StatusOr<bool> released = engine_->ReleaseHold(1);
  ASSERT_TRUE(released.ok()) << released.status();
  ASSERT_TRUE(*released);
  ASSERT_EQ(engine_->Submit(Transfer(2, 1, 3, 200)).status, ConfirmStatus::kConfirmed);
  // Held again while 2 is in flight, as by a fraud failure the scan of the ring did not reach.
  ASSERT_EQ(engine_->Submit(Fraudulent(3, 1, 3, 100)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  const std::vector<Outcome> outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(Find(outcomes, 2)->reason, Reason::kAccountHeldInFlight);
  EXPECT_EQ(Balance(1), kOpeningBalance);
}

// A transaction published after the reconciler's turn read the clock, then failed by that
// turn's hold (the threaded race seen in engine_history_test): its outcome is still stamped at
// or after its confirmation. The clock is stepped back to stand in for the turn's early read.
TEST_F(OutcomeTest, AnInFlightFailureIsNeverStampedBeforeItsConfirmation) {
  StartEngine();
  ASSERT_EQ(engine_->Submit(Fraudulent(1, 1, 3, 100)).status, ConfirmStatus::kConfirmed);
  engine_->StepStage(InlineStage::kFraud);  // Fails 1, stamped now.
  clock_.AdvanceNs(1'000);
  ASSERT_EQ(engine_->Submit(Transfer(2, 1, 3, 200)).status, ConfirmStatus::kConfirmed);
  clock_.AdvanceNs(-1'000);  // The reconciler's turn read the clock before 2 was confirmed.
  engine_->StepStage(InlineStage::kReconcile);  // The hold on 1 fails 2.
  StepUntilIdle(*engine_);
  const std::vector<Outcome> outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 2u);
  const Outcome& second = *Find(outcomes, 2);
  EXPECT_EQ(second.reason, Reason::kAccountHeldInFlight);
  EXPECT_GE(second.decided_ns, second.confirmed_ns);
}

// The policy is configurable: off, each transaction is judged on its own verdicts.
TEST_F(OutcomeTest, WithThePolicyOffInFlightTransactionsAreJudgedOnTheirOwn) {
  StartEngine(/*fail_in_flight_on_hold=*/false);
  ASSERT_EQ(engine_->Submit(Fraudulent(1, 1, 3, 100)).status, ConfirmStatus::kConfirmed);
  ASSERT_EQ(engine_->Submit(Transfer(2, 1, 3, 200)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  const std::vector<Outcome> outcomes = DrainOutcomes(*engine_);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(Find(outcomes, 2)->kind, OutcomeKind::kVerified);
  EXPECT_TRUE(engine_->IsOnHold(1));
  EXPECT_EQ(Balance(1), kOpeningBalance - 200);
}

// Item 17 in every policy mode, over real stage threads. The fraud verifier is stalled while
// account 1's fraudulent transaction and then two more of its transactions are confirmed (held
// ones wait in Submit on threads of their own); the stall is lifted once all are in the ring,
// so the fraud failure comes first in sequence order and its hold finds the other two in flight.
// In sync mode nothing is confirmed before it is verified: the fraud failure is the refusal of
// a held transaction, which places no hold (DESIGN.md, "Held transactions"), so the account's
// other transactions are judged on their own verdicts and nothing can drain in flight.
class InFlightHoldTest : public ::testing::TestWithParam<PolicyMode> {};

TEST_P(InFlightHoldTest, TheAccountsTransactionsInFlightFailInEveryMode) {
  Options options = BankOptions(4);
  options.policy.mode = GetParam();
  options.policy.hold_amount_minor_min = 250;  // Hybrid: 300 waits in Submit, 200 does not.
  options.verification_deadline_ns = 10'000'000'000;
  auto created = Engine::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status();
  Engine& engine = **created;
  ASSERT_TRUE(engine.Start().ok());
  EngineTestPeer::StallVerifier(engine, VerifierId::kFraud, 10'000'000'000);
  const std::vector<Transaction> txns = {Fraudulent(1, 1, 3, 100), Transfer(2, 1, 3, 200),
                                         Transfer(3, 1, 3, 300), Transfer(4, 2, 3, 400)};
  std::vector<Confirmation> answers(txns.size());
  std::vector<std::thread> submitters;
  for (size_t i = 0; i < txns.size(); ++i) {
    submitters.emplace_back([&, i] { answers[i] = engine.Submit(txns[i]); });
    // In sequence order: each is in the ring before the next is submitted.
    for (int wait = 0; engine.Stats().confirmed < i + 1 && wait < 5000; ++wait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(engine.Stats().confirmed, i + 1);
  }
  EngineTestPeer::StallVerifier(engine, VerifierId::kFraud, 0);  // The stall ends now.
  for (std::thread& submitter : submitters) submitter.join();
  ASSERT_TRUE(engine.Stop().drained);
  const std::vector<Outcome> outcomes = DrainOutcomes(engine);
  ASSERT_EQ(outcomes.size(), 4u);
  if (GetParam() == PolicyMode::kSync) {
    for (const Outcome& outcome : outcomes) {
      EXPECT_EQ(outcome.kind, outcome.id == 1 ? OutcomeKind::kLateFailed : OutcomeKind::kVerified)
          << outcome.id;
      EXPECT_FALSE(outcome.compensation & kCompensationAccountHeld) << outcome.id;
    }
    EXPECT_EQ(answers[0].status, ConfirmStatus::kRejected);
    EXPECT_EQ(answers[0].reason, Reason::kBlockedMerchant);
    EXPECT_FALSE(engine.IsOnHold(1));
    EXPECT_EQ(EngineTestPeer::Ledger(engine).Find(1)->balance_minor, kOpeningBalance - 500);
    EXPECT_EQ(EngineTestPeer::Ledger(engine).ClearingMinor(kUsd), 0);
    return;
  }
  for (const Outcome& outcome : outcomes) {
    switch (outcome.id) {
      case 1:
        EXPECT_EQ(outcome.reason, Reason::kBlockedMerchant);
        EXPECT_TRUE(outcome.compensation & kCompensationAccountHeld);
        break;
      case 2:
      case 3:
        EXPECT_EQ(outcome.kind, OutcomeKind::kLateFailed) << outcome.id;
        EXPECT_EQ(outcome.reason, Reason::kAccountHeldInFlight) << outcome.id;
        EXPECT_EQ(outcome.compensation, kCompensationReversed) << "the ledger had reserved it";
        break;
      default:
        EXPECT_EQ(outcome.kind, OutcomeKind::kVerified);
    }
  }
  for (size_t i = 1; i <= 2; ++i) {  // Ids 2 and 3; a held Submit is answered with the outcome.
    if (!answers[i].held) continue;
    EXPECT_EQ(answers[i].status, ConfirmStatus::kRejected);
    EXPECT_EQ(answers[i].reason, Reason::kAccountHeldInFlight);
  }
  EXPECT_EQ(EngineTestPeer::Ledger(engine).Find(1)->balance_minor, kOpeningBalance);
  EXPECT_EQ(EngineTestPeer::Ledger(engine).Find(2)->balance_minor, kOpeningBalance - 400);
  EXPECT_EQ(EngineTestPeer::Ledger(engine).ClearingMinor(kUsd), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, InFlightHoldTest,
                         ::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                           PolicyMode::kSync));

}  // namespace
}  // namespace vouch
