// Deterministic simulation of the engine with seeded fault injection, in the spirit of
// TigerBeetle's VOPR and FoundationDB's simulator.
//
// Method: one 64-bit seed decides everything: the configuration (ack policy, accounts,
// capacities, deadline, batch sizes, journal segment size, snapshot interval, fraud limits), the
// stream of transactions and every fault. The engine runs in inline mode on a ManualClock, so a
// run is a pure function of its seed. Each step the simulator may inject a fault, submits a few
// transactions, steps the stages one at a time in a seeded order (a paused verifier is not
// stepped, so verdicts arrive out of order between the verifiers), advances the clock, polls
// outcomes, and then checks the invariants of ARCHITECTURE.md against its own model of what the
// client was told:
//   1. money is conserved (per currency, balances plus clearing), no balance below its limit;
//   2. each id is applied at most once (a resubmitted id gets its original sequence number; at the
//      end the balances are exactly the opening balances moved by the VERIFIED outcomes), and a
//      refused id stays refused with the same reason, also across restarts once acknowledged;
//      a resubmission with one field changed is REJECTED id_reused_with_different_fields and
//      applies nothing, live and after a recovery (the fingerprints and first-seen times come
//      back from the journal or snapshot: the idempotency retention holds across crashes);
//   3. each confirmation gets exactly one outcome, within a bounded number of steps after its
//      deadline (the bound grows with the backlog ahead of it over the reconciler's batch size);
//   4. nothing acknowledged is lost across a crash (confirmations, told outcomes, refusals, and
//      the hold state of every account whose holds and releases were all journaled);
//   5. replay is identical (the journal of the finished run rebuilds the same ledger, fraud state,
//      holds and outcomes; and the same seed gives the same digest);
//   6. daily limits are exact: every new answer for a transaction is checked against the model's
//      charges of the one account it debits (its source) on the engine's UTC day, both ways
//      (admitted only within both limits, daily_amount_limit / daily_count_limit only past
//      them), across restarts too, where the replay recharges what the journal kept.
// The engine's UTC day comes from the ManualClock's Unix offset, fixed per seed, so a seed
// crosses midnight at the same step in every process.
//   7. the N-way join of the embedder's verifiers (Options::verifiers): a seed registers 0 to 6
//      of them (mixed from the seed: required or advisory, some holding the account on
//      failure), each failing a seeded subset of transactions with codes of its own, as a pure
//      function of the transaction, so the model knows every verdict. VERIFIED only if no
//      required verifier fails it; LATE_FAILED(custom, verifier_rejected) only by a required
//      one that fails it, with its code (kept across crashes and in replay); an advisory one
//      decides nothing and places no hold; LATE_TIMEOUT names the first required verifier that
//      had not judged it (checked against Query's verdicts); Query shows each custom verdict
//      with its code. About one in three is an AsyncVerifier, which the simulation answers at
//      its kCustom turns, a random number of pending transactions in a random order (so out of
//      seq order, and after the deadline when paused or stalled), and half of those never
//      answer about some transactions: the deadline decides those, and nothing wedges.
// The seed picks the ack policy: `memory` (no journal, so no crashes: the other invariants),
// `written` or `durable`. A crash is one of two kinds:
//   - kill -9: the data directory is copied as the process leaves it (what write(2) returned is
//     in the files), optionally with the journal write in progress torn;
//   - power loss: the copy keeps only what was fdatasync'ed, plus any prefix of the rest
//     (DiskModel, power_loss.h). Under `durable` invariant 4 holds as for kill -9. Under
//     `written` acknowledged work may be lost (that is the policy's documented difference): the
//     model drops what did not survive and counts it, and invariants 1, 2, 3 and 5 still hold.
// Then a new engine recovers from the copy.
// Retention mode (1 seed in 5): the idempotency table holds 1,024 ids and the retention is a few
// hundred steps of clock time, and bursts of new ids fill the table within the retention. Then
// new ids are answered BUSY idempotency_retention (counted by the engine, taking no room: a retry
// once every id has aged is answered), and an id first seen a retention ago or more may be
// forgotten and answered anew; one within the retention never is (invariant 2, also across
// restarts and power loss, with its first-seen time). Other faults: verifier pauses and stalls, clock
// jumps, snapshots, client retries (also of refused ids after a crash), hold releases (also right
// after the reconciler turn that placed the hold, racing its journal record) and fraud rule
// reloads. The embedder's verifiers are paused (InlineStage::kCustom not stepped) and stalled
// (StallVerifier of a custom VerifierId) as fraud and ledger are.
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
  uint64_t accounts_created = 0;  // Mid-stream (issue 13).
  uint64_t accounts_frozen = 0;   // Freezes and unfreezes.
  uint64_t limit_changes = 0;     // SetAccountLimits on a mid-stream account (daily limits).
  uint64_t day_crossings = 0;     // The clock moved past a UTC midnight (daily limits reset).
  uint64_t racing_releases = 0;  // Released right after the reconciler turn that held it.
  uint64_t rule_reloads = 0;     // Engine::ReplaceFraudRules with varied rules.
  uint64_t refused_retries = 0;  // Refused ids resubmitted right after a recovery.
  // Ids resubmitted with one field changed (live, and right after a recovery): each must be
  // REJECTED id_reused_with_different_fields (or BUSY), never applied.
  uint64_t altered_resubmissions = 0;
  uint64_t power_losses = 0;     // Crashes that kept only what was synced (and some of the rest).
  uint64_t power_losses_durable = 0;  // Of them, under ack policy durable.
  uint64_t files_cut = 0;        // Files that lost unsynced bytes in a power loss.
  uint64_t entries_vanished = 0;  // Files gone in a power loss (directory entry never synced).
  // Retention mode: the clock moved by a whole retention, so that every id could be forgotten,
  // and the ids refused BUSY idempotency_retention retried; and restarts recovery refused
  // because the table could not hold the ids within retention (then retried with a doubled
  // idempotency_window).
  uint64_t retention_ageings = 0;
  uint64_t retention_restart_refusals = 0;
  // The embedder's verifiers (Options::verifiers): InlineStage::kCustom not stepped for a few
  // steps, and one of them stalled (StallVerifier) past the deadline.
  uint64_t custom_pauses = 0;
  uint64_t custom_stalls = 0;

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
  // Ack policy `written` only: what power losses took that had been acknowledged (confirmations,
  // and told outcomes whose transaction then went back to the verifiers), and how many of the
  // power losses took any. Under `durable` these are failures.
  uint64_t written_lost_confirmations = 0;
  uint64_t written_lost_outcomes = 0;
  uint64_t written_lossy_power_losses = 0;
  uint64_t seeds_by_ack[3] = {};  // Indexed by AckPolicy: memory, written, durable.
  // Retention mode (a small idempotency table and a short retention, 1 seed in 5): its seeds,
  // new ids answered BUSY idempotency_retention, such ids retried once every id had aged and
  // then answered (not BUSY), and ids first seen a retention ago or more that were answered
  // anew (forgotten, as the engine may).
  uint64_t retention_seeds = 0;
  uint64_t retention_busy = 0;
  uint64_t retention_retries_answered = 0;
  uint64_t aged_reanswered = 0;
  // New answers REJECTED daily_amount_limit or daily_count_limit (each checked exactly against
  // the model's charges of its source account and day).
  uint64_t daily_limit_refusals = 0;
  // The embedder's verifiers: seeds with any, how many registered by policy; outcomes they
  // decided (LATE_FAILED verifier_rejected, of them with an account hold; LATE_FAILED
  // account_held_in_flight; LATE_TIMEOUT), each checked against the model; advisory failures
  // (the engine's count; they decided nothing); their verdicts checked in Query.
  uint64_t custom_verifier_seeds = 0;
  uint64_t custom_required = 0;
  uint64_t custom_advisory = 0;
  uint64_t custom_async = 0;    // AsyncVerifiers among them.
  uint64_t async_answers = 0;   // Answers they gave (out of order, some late).
  uint64_t async_dropped = 0;   // Transactions they never answered about.
  uint64_t attributes_queried = 0;  // Query returned a transaction's attributes (as submitted).
  uint64_t custom_rejections = 0;
  uint64_t custom_holds = 0;
  uint64_t custom_held_in_flight = 0;
  uint64_t custom_timeouts = 0;
  uint64_t advisory_failures = 0;
  uint64_t custom_verdicts_queried = 0;
  // Outcomes checked against the verdicts Query shows they joined (every verifier).
  uint64_t joins_checked = 0;

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
  // Checks that fail until a known bug is fixed can be switched off (vouch_sim flags of the same
  // name). Off, the fault they need is not injected either, so the rest still runs.
  // Refused answers are kept across restarts (issue 12 item 4).
  bool check_refused_answers = true;
  // Fraud rule reloads are journaled and replayed (item 13).
  bool check_rule_reloads = true;
  // Holds and releases reach the journal in memory's order (item 12): releases race late failures.
  bool check_hold_races = true;
};

SeedResult RunSeed(const SimulationOptions& options);

// A few lines for people: seeds run, failures, faults by kind, outcomes by kind.
std::string Summary(uint64_t seeds, uint64_t failures, const FaultCounts& faults,
                    const RunCounts& counts, double elapsed_s);

// The one command that replays `options.seed` on its own, verbosely, with the same checks.
std::string ReplayCommand(const SimulationOptions& options);

}  // namespace vouch::simulation

#endif  // VOUCH_TESTS_ENGINE_SIMULATION_SIMULATOR_H_
