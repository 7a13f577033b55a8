// VerifierStage fault injection, driven by hand: a ManualClock and DoWork() on the test's thread,
// so that how much clock time the stage charges per transaction is exact.
#include <cstdint>

#include "engine/ring/in_flight_ring.h"
#include "engine/types/clock.h"
#include "engine/verify/queues.h"
#include "engine/verify/verifier_stage.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "engine/ledger/ledger.h"

namespace vouch {
namespace {

using vouch::testing::kOpeningBalance;
using vouch::testing::kUsd;

constexpr int kBatchMax = 16;

class VerifierStageTest : public ::testing::Test {
 protected:
  VerifierStageTest()
      : ledger_(8, 64),
        ring_(64),
        verdicts_(64),
        settlements_(64),
        stage_(&ledger_, &settlements_, &ring_, &verdicts_, &clock_, kBatchMax) {
    for (uint64_t id = 1; id <= 2; ++id) {
      EXPECT_TRUE(ledger_.OpenAccount({id, kUsd, kOpeningBalance, 0}).ok());
    }
  }

  void Confirm(uint64_t id) {
    Sequence seq = 0;
    InFlightEntry* entry = ring_.Claim(&seq);
    ASSERT_NE(entry, nullptr);
    entry->payload = {testing::Transfer(id, 1, 2, 10), clock_.NowNs(),
                      clock_.NowNs() + 60'000'000'000, false, 0, false};
    ring_.Publish(entry, seq);
  }

  // Verdicts sent so far, each taken off the queue.
  int TakeVerdicts() {
    int taken = 0;
    Verdict verdict;
    while (verdicts_.try_dequeue(verdict)) ++taken;
    return taken;
  }

  ManualClock clock_;
  ledger::Ledger ledger_;
  InFlightRing ring_;
  VerdictQueue verdicts_;
  SettlementQueue settlements_;
  LedgerStage stage_;
};

// A slow service answers no faster for having been idle: a burst after a long quiet spell is
// charged its full cost, one transaction at a time.
TEST_F(VerifierStageTest, ABurstAfterIdlingIsChargedItsFullCost) {
  constexpr int64_t kCostNs = 20'000'000;
  constexpr int kBurst = 10;
  stage_.SetCostPerTransaction(kCostNs);
  EXPECT_EQ(stage_.DoWork(), 0);
  clock_.AdvanceNs(10'000'000'000);  // Idle for 10 s.
  EXPECT_EQ(stage_.DoWork(), 0);
  const int64_t burst_ns = clock_.NowNs();
  for (int i = 1; i <= kBurst; ++i) Confirm(static_cast<uint64_t>(i));
  int verdicts = 0;
  while (verdicts < kBurst) {
    stage_.DoWork();
    const int64_t elapsed_ns = clock_.NowNs() - burst_ns;
    verdicts += TakeVerdicts();
    // The n-th verdict is due n costs after the burst arrived, and not before.
    EXPECT_LE(verdicts, elapsed_ns / kCostNs) << "after " << elapsed_ns << " ns";
    ASSERT_LT(elapsed_ns, 2 * kBurst * kCostNs) << "the stage stopped checking";
    clock_.AdvanceNs(1'000'000);
  }
  EXPECT_GE(clock_.NowNs() - burst_ns, kBurst * kCostNs - 1'000'000);
}

// A stall is no rest either: after it, the backlog is checked at the cost per transaction.
TEST_F(VerifierStageTest, ABacklogAfterAStallIsChargedItsFullCost) {
  constexpr int64_t kCostNs = 1'000'000;
  stage_.SetCostPerTransaction(kCostNs);
  stage_.StallFor(1'000'000'000);
  for (int i = 1; i <= 40; ++i) Confirm(static_cast<uint64_t>(i));
  for (int turn = 0; turn < 999; ++turn) {  // The last one 1 ms before the stall ends.
    clock_.AdvanceNs(kCostNs);
    stage_.DoWork();
  }
  EXPECT_EQ(TakeVerdicts(), 0) << "stalled";
  clock_.AdvanceNs(3 * kCostNs);  // 3 costs after the last stalled turn.
  stage_.DoWork();
  EXPECT_EQ(TakeVerdicts(), 3);
}

// A service kept busy runs at its cost: it neither loses time between turns nor gains any.
TEST_F(VerifierStageTest, ABacklogIsCheckedAtTheCostPerTransaction) {
  constexpr int64_t kCostNs = 1'000'000;
  stage_.SetCostPerTransaction(kCostNs);
  for (int i = 1; i <= 40; ++i) Confirm(static_cast<uint64_t>(i));
  clock_.AdvanceNs(7 * kCostNs + kCostNs / 2);
  stage_.DoWork();
  EXPECT_EQ(TakeVerdicts(), 7);
  clock_.AdvanceNs(kCostNs / 2);
  stage_.DoWork();
  EXPECT_EQ(TakeVerdicts(), 1);
}

}  // namespace
}  // namespace vouch
