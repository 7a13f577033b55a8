// The engine under overload: refusals must not cost it its memory of what it confirmed, and
// with admission by time it refuses rather than confirm what its verifiers cannot check before
// the deadline.
//
// Method (window): an inline engine (nothing moves unless the test steps it) with an in-flight
// ring of 64 and an idempotency window of 1,024 claims. 64 transfers fill the ring; then 10x
// the window in further Submits are all refused BUSY, as a flood at several times capacity is.
// Every confirmed id must still be known afterwards: Query finds it, and resubmitting it returns the original
// answer (duplicate) rather than applying it a second time, both while the ring is still full
// and after it drains. Money is conserved throughout. Before the fix each refused Submit took
// a slot of the window, so the flood pushed the confirmed ids out of it.
//
// Method (admission by time): an inline engine on a manual clock with
// admission_backlog_max_ns = 10 ms and the fraud verifier stalled for 15 ms. One transfer is
// confirmed and waits in the stalled stage; 11 ms later another is refused BUSY / queue_full
// (the ring is nearly empty: only time refuses it), a resubmission of the first still gets its
// answer, and once the stall ends and the backlog is checked the refused one is admitted. The
// same steps with the option off confirm it at once. Then the tail: with the fraud verifier
// slowed to 100 us per transaction (SlowVerifier), 1,000 transfers are confirmed at once, and
// the stage is stepped every 2 ms until it has measured its pace. Its oldest unchecked
// transaction has waited only 8 ms, under the 10 ms bound, but a new one would wait behind
// ~660 others (~66 ms): it is refused.
#include <memory>
#include <vector>

#include "engine/engine.h"
#include "engine/fault_injection.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch::testing {
namespace {

constexpr size_t kRing = 64;
constexpr size_t kWindow = 1024;
constexpr uint64_t kFlood = 10 * kWindow;

TEST(EngineOverloadTest, RefusedSubmitsDoNotPushConfirmedIdsOutOfTheIdempotencyWindow) {
  ManualClock clock;
  Options options = BankOptions(4);
  options.in_flight_capacity = kRing;
  options.idempotency_window = kWindow;
  options.inline_mode = true;
  options.clock = &clock;
  options.fraud_rules.velocity_enabled = false;  // Many transfers from few accounts is the point.
  absl::StatusOr<std::unique_ptr<Engine>> created = Engine::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status();
  Engine& engine = **created;
  ASSERT_TRUE(engine.Start().ok());
  auto transfer = [](uint64_t id) { return Transfer(id, 1 + id % 4, 1 + (id + 1) % 4, 10); };

  for (uint64_t id = 1; id <= kRing; ++id) {
    ASSERT_EQ(engine.Submit(transfer(id)).status, ConfirmStatus::kConfirmed) << id;
  }
  for (uint64_t id = kRing + 1; id <= kRing + kFlood; ++id) {
    const Confirmation refused = engine.Submit(transfer(id));
    ASSERT_EQ(refused.status, ConfirmStatus::kBusy) << id;
    ASSERT_EQ(refused.reason, Reason::kQueueFull);
  }
  EXPECT_EQ(engine.Stats().busy[static_cast<int>(Reason::kQueueFull)], kFlood);

  // Still full: a resubmitted confirmed id gets its original answer, not BUSY.
  const Confirmation again = engine.Submit(transfer(1));
  EXPECT_EQ(again.status, ConfirmStatus::kConfirmed);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, 1u);

  StepUntilIdle(engine);
  EXPECT_EQ(DrainOutcomes(engine).size(), kRing);
  for (uint64_t id = 1; id <= kRing; ++id) {
    const std::optional<TransactionStatus> status = engine.Query(id);
    ASSERT_TRUE(status.has_value()) << "confirmed id " << id << " forgotten";
    EXPECT_EQ(status->seq, id);
    EXPECT_TRUE(status->final);
    const Confirmation resubmitted = engine.Submit(transfer(id));
    EXPECT_TRUE(resubmitted.duplicate) << "confirmed id " << id << " would be applied twice";
    EXPECT_EQ(resubmitted.seq, id);
  }
  StepUntilIdle(engine);
  EXPECT_TRUE(DrainOutcomes(engine).empty()) << "a duplicate got a second outcome";
  const DrainReport report = engine.Stop();
  EXPECT_TRUE(report.drained);
  EXPECT_EQ(report.confirmed, kRing);
  EXPECT_EQ(EngineTestPeer::Ledger(engine).TotalMinor(kUsd), 4 * kOpeningBalance);
}

struct BacklogRun {
  Confirmation during_backlog;
  Confirmation resubmitted;
  Confirmation after_backlog;
};

BacklogRun RunWithStalledFraudVerifier(int64_t admission_backlog_max_ns) {
  ManualClock clock;
  Options options = BankOptions(4);
  options.inline_mode = true;
  options.clock = &clock;
  options.verification_deadline_ns = 50'000'000;
  options.admission_backlog_max_ns = admission_backlog_max_ns;
  std::unique_ptr<Engine> engine = *Engine::Create(std::move(options));
  EXPECT_TRUE(engine->Start().ok());
  BacklogRun run;
  EngineTestPeer::StallVerifier(*engine, VerifierId::kFraud, 15'000'000);
  EXPECT_EQ(engine->Submit(Transfer(1, 1, 2, 10)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine);  // The stalled stage publishes its backlog.
  clock.AdvanceNs(11'000'000);
  run.during_backlog = engine->Submit(Transfer(2, 2, 3, 10));
  run.resubmitted = engine->Submit(Transfer(1, 1, 2, 10));
  clock.AdvanceNs(5'000'000);  // The stall is over.
  StepUntilIdle(*engine);
  run.after_backlog = engine->Submit(Transfer(2, 2, 3, 10));
  StepUntilIdle(*engine);
  const std::vector<Outcome> outcomes = DrainOutcomes(*engine);
  for (const Outcome& outcome : outcomes) EXPECT_EQ(outcome.kind, OutcomeKind::kVerified);
  EXPECT_TRUE(engine->Stop().drained);
  return run;
}

TEST(EngineOverloadTest, AVerifierBacklogOlderThanTheBoundIsRefusedByTime) {
  const BacklogRun run = RunWithStalledFraudVerifier(10'000'000);
  EXPECT_EQ(run.during_backlog.status, ConfirmStatus::kBusy);
  EXPECT_EQ(run.during_backlog.reason, Reason::kQueueFull);
  EXPECT_EQ(run.resubmitted.status, ConfirmStatus::kConfirmed);
  EXPECT_TRUE(run.resubmitted.duplicate);
  EXPECT_EQ(run.after_backlog.status, ConfirmStatus::kConfirmed);
  EXPECT_FALSE(run.after_backlog.duplicate) << "the BUSY answer recorded nothing";
}

TEST(EngineOverloadTest, WithoutTheBoundOnlyTheRingRefuses) {
  const BacklogRun run = RunWithStalledFraudVerifier(0);
  EXPECT_EQ(run.during_backlog.status, ConfirmStatus::kConfirmed);
  EXPECT_TRUE(run.after_backlog.duplicate);
}

TEST(EngineOverloadTest, ANewTransactionThatWouldWaitLongerThanTheBoundIsRefused) {
  ManualClock clock;
  Options options = BankOptions(4);
  options.inline_mode = true;
  options.clock = &clock;
  options.verification_deadline_ns = 50'000'000;
  options.admission_backlog_max_ns = 10'000'000;
  options.fraud_rules.velocity_enabled = false;
  std::unique_ptr<Engine> engine = *Engine::Create(std::move(options));
  ASSERT_TRUE(engine->Start().ok());
  SlowVerifier(*engine, VerifierId::kFraud, 100'000);
  constexpr uint64_t kBacklog = 1'000;
  for (uint64_t id = 1; id <= kBacklog; ++id) {
    ASSERT_EQ(engine->Submit(Transfer(id, 1 + id % 4, 1 + (id + 1) % 4, 1)).status,
              ConfirmStatus::kConfirmed);
  }
  for (int turn = 0; turn < 4; ++turn) {  // 20 checks per 2 ms after the first burst.
    engine->Step();
    clock.AdvanceNs(2'000'000);
  }
  engine->Step();
  const Confirmation refused = engine->Submit(Transfer(kBacklog + 1, 1, 2, 1));
  EXPECT_EQ(refused.status, ConfirmStatus::kBusy);
  EXPECT_EQ(refused.reason, Reason::kQueueFull);

  SlowVerifier(*engine, VerifierId::kFraud, 0);
  StepUntilIdle(*engine);
  EXPECT_EQ(engine->Submit(Transfer(kBacklog + 1, 1, 2, 1)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine);
  EXPECT_EQ(DrainOutcomes(*engine).size(), kBacklog + 1);
  EXPECT_TRUE(engine->Stop().drained);
}

}  // namespace
}  // namespace vouch::testing
