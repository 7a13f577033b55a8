// Deterministic simulation of the engine with seeded fault injection, in the spirit of
// TigerBeetle's VOPR and FoundationDB's simulator.
//
// Method: one 64-bit seed decides everything: the configuration (accounts, capacities, deadline,
// batch sizes, journal segment size, snapshot interval, fraud limits), the stream of transactions
// and every fault. The engine runs in inline mode on a ManualClock, so a run is a pure function of
// its seed. Each step the simulator may inject a fault, submits a few transactions, steps the
// stages one at a time in a seeded order (a paused verifier is not stepped, so verdicts arrive out
// of order between the verifiers), advances the clock, polls outcomes, and then checks the
// invariants of ARCHITECTURE.md against its own model of what the client was told:
//   1. money is conserved (per currency, balances plus clearing), no balance below its limit;
//   2. each id is applied at most once (a resubmitted id gets its original sequence number; at the
//      end the balances are exactly the opening balances moved by the VERIFIED outcomes);
//   3. each confirmation gets exactly one outcome, within a bounded number of steps after its
//      deadline (the bound grows with the backlog ahead of it over the reconciler's batch size);
//   4. nothing acknowledged is lost across a crash (confirmations and told outcomes);
//   5. replay is identical (the journal of the finished run rebuilds the same ledger, fraud state
//      and outcomes; and the same seed gives the same digest).
// A crash copies the data directory as a kill -9 at that point would leave it (ack policy
// `written`: what write(2) returned is in the files), optionally tears the journal write that was
// in progress, and recovers a new engine from the copy.
#ifndef VOUCH_TESTS_ENGINE_SIMULATION_SIMULATOR_H_
#define VOUCH_TESTS_ENGINE_SIMULATION_SIMULATOR_H_

#include <cstdint>
#include <string>

namespace vouch::simulation {

// $TEST_TMPDIR under Bazel, else /tmp/vouch-sim.
std::string DefaultWorkDir();

// Faults injected, by kind.
struct FaultCounts {
  uint64_t verifier_pauses = 0;  // A verifier not stepped for a few steps: verdicts out of order.
  uint64_t verifier_stalls = 0;  // StallVerifier: the verifier idles for clock time.
  uint64_t clock_jumps = 0;      // The clock leaps past deadlines: timeouts, then late verdicts.
  uint64_t crashes = 0;          // kill -9 between two stage turns, then recovery.
  uint64_t torn_tails = 0;       // kill -9 during a journal write, whose tail is torn.
  uint64_t snapshots = 0;        // Snapshot polls (they write a snapshot when segments closed).
  uint64_t duplicates = 0;       // Ids submitted again.
  uint64_t hold_releases = 0;

  void Add(const FaultCounts& other);
};

// What the run produced, for the report.
struct RunCounts {
  uint64_t steps = 0;
  uint64_t confirmed = 0;
  uint64_t rejected = 0;
  uint64_t busy = 0;
  uint64_t verified = 0;
  uint64_t late_failed = 0;
  uint64_t late_timeout = 0;
  uint64_t late_verdicts = 0;       // Verdicts after the outcome (engine stats, summed per life).
  uint64_t recovered_pending = 0;   // Confirmed, undecided at a crash, decided after recovery.
  uint64_t recovered_outcomes = 0;  // Decided before a crash but not yet told: told on recovery.
  uint64_t lost_unacknowledged = 0;  // Confirmed but never acknowledged, gone after a crash.

  void Add(const RunCounts& other);
};

struct SeedResult {
  uint64_t seed = 0;
  bool ok = true;
  std::string failure;  // The broken invariant, the step, the details.
  uint64_t digest = 0;  // Over every answer and outcome: equal seeds give equal digests.
  FaultCounts faults;
  RunCounts counts;
};

struct SimulationOptions {
  uint64_t seed = 1;
  int steps = 0;         // 0: the seed chooses (300 to 600).
  // Journals go in <work_dir>/seed-<seed>/, removed after a passing run.
  std::string work_dir = DefaultWorkDir();
  bool verbose = false;  // Print every fault and recovery to stderr.
};

SeedResult RunSeed(const SimulationOptions& options);

// A few lines for people: seeds run, failures, faults by kind, outcomes by kind.
std::string Summary(uint64_t seeds, uint64_t failures, const FaultCounts& faults,
                    const RunCounts& counts, double elapsed_s);

// The one command that replays `seed` on its own, verbosely.
std::string ReplayCommand(uint64_t seed, int steps);

}  // namespace vouch::simulation

#endif  // VOUCH_TESTS_ENGINE_SIMULATION_SIMULATOR_H_
