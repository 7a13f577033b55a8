// 100 seeds of the held-path simulation (held_simulator.h): hybrid and sync, every ack policy,
// the server's request handler stepped against an inline engine.
#include "gtest/gtest.h"
#include "tests/engine/simulation/held_simulator.h"
#include "tests/engine/simulation/simulator.h"

namespace vouch::simulation {
namespace {

TEST(HeldSimulationTest, HundredSeedsKeepTheHeldPathPromises) {
  uint64_t held_answers = 0;
  uint64_t lapped = 0;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    const HeldSeedResult result = RunHeldSeed(seed, DefaultWorkDir());
    ASSERT_TRUE(result.ok) << "seed " << seed << ": " << result.failure;
    held_answers += result.held_answers;
    lapped += result.lapped;
  }
  EXPECT_GT(held_answers, 500u) << "the seeds exercise the held path";
  EXPECT_GT(lapped, 0u) << "and the window's writer lapping the handler";
}

}  // namespace
}  // namespace vouch::simulation
