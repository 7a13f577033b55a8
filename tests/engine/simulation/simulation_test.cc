// The deterministic simulation (simulator.h) over a few hundred seeds, plus the check that a seed
// is a complete description of its run: the same seed twice gives the same digest of every answer
// and outcome. The soak (thousands of seeds) is the vouch_sim binary; see docs/RELIABILITY.md.
#include <chrono>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "tests/engine/simulation/simulator.h"

namespace vouch::simulation {
namespace {

constexpr uint64_t kSeeds = 300;

SimulationOptions OptionsFor(uint64_t seed) {
  SimulationOptions options;
  options.seed = seed;
  return options;
}

TEST(SimulationTest, EverySeedKeepsEveryInvariant) {
  FaultCounts faults;
  RunCounts counts;
  uint64_t failures = 0;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const SeedResult result = RunSeed(OptionsFor(seed));
    faults.Add(result.faults);
    counts.Add(result.counts);
    if (!result.ok) {
      ++failures;
      ADD_FAILURE() << result.failure;
    }
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  std::printf("%s", Summary(kSeeds, failures, faults, counts, elapsed.count()).c_str());
  // The faults did happen: a simulation that injects nothing proves nothing.
  EXPECT_GT(faults.crashes, kSeeds);
  EXPECT_GT(faults.torn_tails, kSeeds / 10);
  EXPECT_GT(faults.verifier_pauses, kSeeds);
  EXPECT_GT(counts.late_timeout, 0u);
  EXPECT_GT(counts.late_failed, 0u);
  EXPECT_GT(counts.late_verdicts, 0u);
  EXPECT_GT(counts.recovered_pending, 0u);
  EXPECT_GT(counts.busy, 0u);
}

TEST(SimulationTest, SameSeedSameRun) {
  for (uint64_t seed : {7u, 77u, 777u}) {
    const SeedResult a = RunSeed(OptionsFor(seed));
    const SeedResult b = RunSeed(OptionsFor(seed));
    ASSERT_TRUE(a.ok) << a.failure;
    EXPECT_EQ(a.digest, b.digest) << "seed " << seed;
    EXPECT_EQ(a.counts.confirmed, b.counts.confirmed);
    EXPECT_EQ(a.faults.crashes, b.faults.crashes);
  }
  EXPECT_NE(RunSeed(OptionsFor(8)).digest, RunSeed(OptionsFor(9)).digest);
}

}  // namespace
}  // namespace vouch::simulation
