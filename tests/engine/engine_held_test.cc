// The held path (hybrid and sync policy): what a held transaction produces, and when.
//
// Contract under test (engine.h, results.h): a held transaction gets one final answer, given
// only once its outcome record is kept as the ack policy promises; it is not a late failure (no
// LATE_FAILED counted, no account hold), and its Outcome, which has `held` set, is the answer.
//
// Method: the "answer only after the outcome is kept" tests run in both forms. The blocking form
// (HeldAnswer::kInSubmit) runs on real stage threads: when Submit returns, the journal must
// already have acked the outcome record (outcomes_acked_below > seq); before the fix it returned
// as soon as the outcome was decided, which, with a write and (durable) an fdatasync still to
// come, is nearly always earlier. The non-blocking form (HeldAnswer::kLater) runs inline, so the
// test itself interleaves the stages: the answer must not be visible (no Outcome, a resubmission
// is BUSY) until the journal stage has been stepped past the outcome.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::kBlockedMerchant;
using testing::Transfer;

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) { return testing::EmptyTestDir(name); }

Options HeldBank(PolicyMode mode, AckPolicy ack, const std::string& dir_name) {
  Options options = BankOptions(20);
  options.policy.mode = mode;
  options.policy.hold_amount_minor_min = 1000;  // Hybrid: these tests submit 5000: held.
  options.fraud_rules.velocity_enabled = false;
  options.fraud_rules.anomaly_enabled = false;
  options.durability.ack = ack;
  if (ack != AckPolicy::kMemory) options.durability.dir = FreshDir(dir_name);
  return options;
}

std::string Name(PolicyMode mode, AckPolicy ack) {
  return std::string(PolicyModeName(mode)) + "_" + std::string(AckPolicyName(ack));
}

// --- Item 2: a held answer goes out only once its outcome record is kept -------------------
class HeldAckTest : public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy>> {
 protected:
  PolicyMode mode() const { return std::get<0>(GetParam()); }
  AckPolicy ack() const { return std::get<1>(GetParam()); }
  std::string dir_name() const { return "held_ack_" + Name(mode(), ack()); }
};

TEST_P(HeldAckTest, BlockingSubmitReturnsOnlyAfterTheOutcomeRecordIsAcked) {
  auto engine = Engine::Create(HeldBank(mode(), ack(), dir_name()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_TRUE((*engine)->Start().ok());
  for (uint64_t id = 1; id <= 20; ++id) {
    Transaction txn = Transfer(id, 1 + id % 10, 11 + id % 10, 5000);
    if (id % 4 == 0) txn.merchant_id = kBlockedMerchant;  // Some are REJECTED.
    const Confirmation answer = (*engine)->Submit(txn);
    ASSERT_TRUE(answer.held);
    ASSERT_NE(answer.seq, 0u);
    EXPECT_GT(EngineTestPeer::Journal(**engine)->outcomes_acked_below(), answer.seq)
        << "id " << id << " was answered " << ConfirmStatusName(answer.status)
        << " before its outcome record was kept";
  }
  EXPECT_TRUE((*engine)->Stop().drained);
}

TEST_P(HeldAckTest, LaterAnswerIsInvisibleUntilTheJournalKeepsTheOutcome) {
  Options options = HeldBank(mode(), ack(), dir_name() + "_inline");
  options.inline_mode = true;
  auto created = Engine::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status();
  Engine& engine = **created;
  ASSERT_TRUE(engine.Start().ok());
  Transaction txn = Transfer(7, 1, 2, 5000);
  txn.merchant_id = kBlockedMerchant;
  const Confirmation pending = engine.Submit(txn, 0, AckWait::kInSubmit, HeldAnswer::kLater);
  ASSERT_EQ(pending.status, ConfirmStatus::kPending);
  ASSERT_TRUE(pending.held);
  ASSERT_NE(pending.seq, 0u);
  // Decide it, but do not let the journal keep the outcome.
  for (int i = 0; i < 3; ++i) {
    (void)engine.StepStage(InlineStage::kFraud);
    (void)engine.StepStage(InlineStage::kLedger);
    (void)engine.StepStage(InlineStage::kReconcile);
  }
  EXPECT_TRUE(DrainOutcomes(engine).empty()) << "told before the outcome record was kept";
  const Confirmation early = engine.Submit(txn, 0, AckWait::kInSubmit, HeldAnswer::kLater);
  EXPECT_EQ(early.status, ConfirmStatus::kBusy);
  EXPECT_EQ(early.reason, Reason::kDuplicateInFlight) << "no answer may leak through a duplicate";
  // Now keep it.
  std::vector<Outcome> outcomes;
  for (int i = 0; i < 10 && outcomes.empty(); ++i) {
    (void)engine.StepStage(InlineStage::kJournal);
    (void)engine.StepStage(InlineStage::kReconcile);
    outcomes = DrainOutcomes(engine);
  }
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_GT(EngineTestPeer::Journal(engine)->outcomes_acked_below(), pending.seq);
  EXPECT_TRUE(outcomes[0].held);
  const Confirmation final_answer = Engine::FinalHeldAnswer(pending, outcomes[0]);
  EXPECT_EQ(final_answer.status, ConfirmStatus::kRejected);
  EXPECT_EQ(final_answer.reason, Reason::kBlockedMerchant);
  const Confirmation again = engine.Submit(txn, 0, AckWait::kInSubmit, HeldAnswer::kLater);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.status, ConfirmStatus::kRejected);
  EXPECT_EQ(again.reason, Reason::kBlockedMerchant);
  EXPECT_EQ(again.seq, pending.seq);
  EXPECT_TRUE(engine.Stop().drained);
}

INSTANTIATE_TEST_SUITE_P(
    WrittenDurableHybridSync, HeldAckTest,
    ::testing::Combine(::testing::Values(PolicyMode::kHybrid, PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable)),
    [](const auto& info) { return Name(std::get<0>(info.param), std::get<1>(info.param)); });

// --- Item 3: one transaction, one story ----------------------------------------------------
class HeldStoryTest : public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy>> {};

TEST_P(HeldStoryTest, HeldFraudFailureIsOneRejectionAndNoLateFailureOrHold) {
  const auto [mode, ack] = GetParam();
  Options options = HeldBank(mode, ack, "held_story_" + Name(mode, ack));
  options.inline_mode = true;
  auto created = Engine::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status();
  Engine& engine = **created;
  ASSERT_TRUE(engine.Start().ok());
  Transaction risky = Transfer(1, 3, 4, 5000);
  risky.merchant_id = kBlockedMerchant;
  const Confirmation refused = engine.Submit(risky);
  EXPECT_TRUE(refused.held);
  EXPECT_EQ(refused.status, ConfirmStatus::kRejected);
  EXPECT_EQ(refused.reason, Reason::kBlockedMerchant);
  testing::StepUntilIdle(engine);
  EXPECT_FALSE(engine.IsOnHold(3)) << "nothing was confirmed: no account hold";
  const Confirmation next = engine.Submit(Transfer(2, 3, 4, 5000));
  EXPECT_EQ(next.status, ConfirmStatus::kConfirmed) << "the account was not put on hold";
  testing::StepUntilIdle(engine);
  const EngineStats stats = engine.Stats();
  EXPECT_EQ(stats.outcomes[static_cast<int>(OutcomeKind::kLateFailed)], 0u)
      << "a held failure is no late failure";
  EXPECT_EQ(stats.holds_placed, 0u);
  EXPECT_EQ(stats.failures_by_reason[static_cast<int>(Reason::kBlockedMerchant)], 0u);
  EXPECT_EQ(stats.unverified(), 0u);
  const std::optional<TransactionStatus> status = engine.Query(1);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->final);
  int rejections = 0;
  for (const StateChange& change : status->history) {
    EXPECT_NE(change.kind, StateKind::kLateFailed) << "its story is REJECTED, not LATE_FAILED";
    EXPECT_NE(change.kind, StateKind::kAccountHeld);
    if (change.kind == StateKind::kRejected) ++rejections;
  }
  EXPECT_EQ(rejections, 1);
  const std::vector<Outcome> outcomes = DrainOutcomes(engine);
  ASSERT_EQ(outcomes.size(), 2u) << "one Outcome each: the held answer's carrier";
  EXPECT_TRUE(outcomes[0].held);
  EXPECT_EQ(outcomes[0].compensation & kCompensationAccountHeld, 0);
}

TEST_P(HeldStoryTest, HeldResultsAreCountedByKind) {
  const auto [mode, ack] = GetParam();
  Options options = HeldBank(mode, ack, "held_count_" + Name(mode, ack));
  options.inline_mode = true;
  auto created = Engine::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status();
  Engine& engine = **created;
  ASSERT_TRUE(engine.Start().ok());
  Transaction risky = Transfer(1, 3, 4, 5000);
  risky.merchant_id = kBlockedMerchant;
  (void)engine.Submit(risky);
  (void)engine.Submit(Transfer(2, 5, 6, 5000));
  testing::StepUntilIdle(engine);
  const EngineStats stats = engine.Stats();
  EXPECT_EQ(stats.held_results[static_cast<int>(OutcomeKind::kLateFailed)], 1u);
  EXPECT_EQ(stats.held_results[static_cast<int>(OutcomeKind::kVerified)], 1u);
  EXPECT_EQ(stats.outcomes_total(), 0u);
  EXPECT_EQ(stats.unverified(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    HybridSync, HeldStoryTest,
    ::testing::Combine(::testing::Values(PolicyMode::kHybrid, PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten)),
    [](const auto& info) { return Name(std::get<0>(info.param), std::get<1>(info.param)); });

}  // namespace
}  // namespace vouch
