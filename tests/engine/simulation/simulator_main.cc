// vouch_sim: runs the deterministic simulation (simulator.h) over a range of seeds, or replays one.
//
//   bazel run //tests/engine/simulation:vouch_sim -- --seed=42 --verbose   replay one seed
//   bazel run -c opt //tests/engine/simulation:vouch_sim -- --seeds=10000  soak: seeds 1..10000
//
// Prints one line per failing seed (with its replay command) and a summary of the faults injected
// and what the runs produced. Exits 1 if any seed failed.
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "tests/engine/simulation/simulator.h"

ABSL_FLAG(uint64_t, seed, 0, "Run this one seed (0: run --seeds seeds from --seed_first).");
ABSL_FLAG(uint64_t, seeds, 200, "How many seeds to run.");
ABSL_FLAG(uint64_t, seed_first, 1, "The first seed of the range.");
ABSL_FLAG(int, steps, 0, "Steps per seed (0: the seed chooses, 300 to 600).");
ABSL_FLAG(bool, verbose, false, "Print every fault and crash.");
ABSL_FLAG(bool, check_refused_answers, true,
          "Refused ids are resubmitted across restarts and must stay refused (issue 12 item 4).");
ABSL_FLAG(bool, check_rule_reloads, true,
          "Reload the fraud rules at random steps; replay must follow them (item 13).");
ABSL_FLAG(bool, check_hold_races, true,
          "Release holds racing their late failure's journal record; holds must survive restarts "
          "and replay as they were in memory (item 12).");
ABSL_FLAG(std::string, work_dir, "",
          "Scratch directory (default: $TEST_TMPDIR or /tmp/vouch-sim).");

namespace vouch::simulation {
namespace {

int Main() {
  SimulationOptions options;
  options.steps = absl::GetFlag(FLAGS_steps);
  options.verbose = absl::GetFlag(FLAGS_verbose);
  options.check_refused_answers = absl::GetFlag(FLAGS_check_refused_answers);
  options.check_rule_reloads = absl::GetFlag(FLAGS_check_rule_reloads);
  options.check_hold_races = absl::GetFlag(FLAGS_check_hold_races);
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  if (options.work_dir.empty()) options.work_dir = DefaultWorkDir();
  std::filesystem::create_directories(options.work_dir);
  uint64_t first = absl::GetFlag(FLAGS_seed_first);
  uint64_t count = absl::GetFlag(FLAGS_seeds);
  if (absl::GetFlag(FLAGS_seed) != 0) {
    first = absl::GetFlag(FLAGS_seed);
    count = 1;
  }
  FaultCounts faults;
  RunCounts counts;
  uint64_t failures = 0;
  const absl::Time start = absl::Now();
  for (uint64_t seed = first; seed < first + count; ++seed) {
    options.seed = seed;
    const SeedResult result = RunSeed(options);
    faults.Add(result.faults);
    counts.Add(result.counts);
    if (!result.ok) {
      ++failures;
      std::printf("FAIL %s\n", result.failure.c_str());
    }
  }
  std::printf("%s", Summary(count, failures, faults, counts,
                            absl::ToDoubleSeconds(absl::Now() - start)).c_str());
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace vouch::simulation

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return vouch::simulation::Main();
}
