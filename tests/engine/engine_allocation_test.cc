// The confirm path and every stage allocate nothing at steady state.
//
// Method: this binary replaces the global operator new with one that counts calls while a flag
// is set. The engine runs inline (every stage on this thread), is warmed up so that one-time
// allocations (thread-local producer state, first use of each queue block) are done, then
// 20,000 transactions are submitted, stepped through fraud, ledger and reconciliation, and
// their outcomes polled, with counting on. The count must be zero.
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "tests/testing/allocation_counter.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::Transfer;

TEST(EngineAllocationTest, SteadyStateSubmitAndStagesDoNotAllocate) {
  ManualClock clock;
  Options options = BankOptions(100);
  options.inline_mode = true;
  options.clock = &clock;
  options.fraud_rules.velocity_enabled = false;
  auto engine = std::move(*Engine::Create(options));
  ASSERT_TRUE(engine->Start().ok());
  Outcome batch[256];
  uint64_t id = 0, outcomes = 0;
  auto run = [&](int count) {
    for (int i = 0; i < count; ++i) {
      ++id;
      const Confirmation c = engine->Submit(Transfer(id, 1 + id % 100, 1 + (id + 7) % 100, 10));
      ASSERT_EQ(c.status, ConfirmStatus::kConfirmed);
      if (id % 64 == 0) {
        while (engine->Step() > 0) {}
        outcomes += engine->PollOutcomes(batch, 256);
      }
      clock.AdvanceNs(1000);
    }
  };
  run(20'000);  // Warm-up.
  testing::StartCountingAllocations();
  run(20'000);
  EXPECT_EQ(testing::StopCountingAllocations(), 0u);
  EXPECT_GT(outcomes, 30'000u) << "the stages really ran";
}

}  // namespace
}  // namespace vouch
