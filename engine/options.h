// Engine configuration. Every field has a working default; Validate() refuses bad values with
// an InvalidArgument status that names the field.
#ifndef VOUCH_ENGINE_OPTIONS_H_
#define VOUCH_ENGINE_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/agent/idle_config.h"
#include "engine/journal/stage/ack_policy.h"
#include "engine/types/balances.h"
#include "engine/types/clock.h"
#include "engine/types/results.h"
#include "engine/types/risk_limits.h"
#include "engine/verify/verifier.h"
#include "verifiers/fraud/fraud_rules.h"

namespace vouch {

class OutcomeSink;

// When Submit waits for verification before answering.
enum class PolicyMode {
  kAsync,   // Never: confirm at once, verify in the background (the default).
  kHybrid,  // For risky transactions: above hold_amount_minor_min, or from a watched account.
  kSync,    // Always: the baseline for benchmarks.
};
absl::StatusOr<PolicyMode> ParsePolicyMode(std::string_view name);  // async | hybrid | sync
std::string_view PolicyModeName(PolicyMode mode);

struct HybridPolicy {
  PolicyMode mode = PolicyMode::kAsync;
  int64_t hold_amount_minor_min = 100'000;  // Hybrid: amounts >= this wait (1,000.00).
  std::vector<uint64_t> watched_accounts;   // Hybrid: transactions from these accounts wait.
};

// Risk-exposure back-pressure: caps on what is confirmed but not yet verified (risk_table.h).
enum class RiskAction {
  kHold,  // Over a cap: hold the transaction until it is verified (as the hybrid policy does).
  kBusy,  // Over a cap: refuse it with BUSY / risk_limit.
};
struct RiskOptions {
  RiskLimits limits;              // All 0 (the default): no caps, no cost on the confirm path.
  RiskAction action = RiskAction::kHold;
  // Obsolete, ignored: an account's exposure is kept in its own record (Options::
  // account_capacity bounds the accounts). Kept so existing configurations still build.
  size_t account_capacity = 1 << 16;
};

struct StageCpus {
  // -1 leaves a stage unpinned. A CPU outside the process's affinity mask is not an error: the
  // stage runs unpinned and the runner reports why (this machine may have only 2 cores).
  int fraud = -1;
  int ledger = -1;
  int reconcile = -1;
};

// The journal (engine/journal): what is kept, where, and when a confirmation may be returned.
//
// The data directory belongs to one engine at a time: Engine::Create takes an exclusive flock on
// the directory itself and holds it for the engine's life; a second engine (in this process or
// another) is refused with FailedPrecondition naming the directory and the holder's pid. The
// journal pins the opening configuration (Options::accounts) on its first start; a restart with
// other accounts, currencies, opening balances or overdraft limits is refused (docs/JOURNAL.md).
struct DurabilityOptions {
  AckPolicy ack = AckPolicy::kMemory;  // kMemory: no journal; `dir` must then be empty.
  std::string dir;                     // Data directory; created if missing (not if read_only).
  size_t segment_bytes_max = 64 << 20;  // A new segment file starts past this size.
  // A snapshot is written once this many journal records have been closed into segments since
  // the last one (0: never); the segments it covers are then removed. Recovery replays only the
  // records after the newest snapshot. 4 M records is about 2 M transactions, ~2 s of replay.
  uint64_t snapshot_interval_records = 4'000'000;
  // Recover `dir` and decide what it left undecided in memory only, writing nothing: no segment,
  // no record, no snapshot, no repair of a torn tail (it is reported, not cut), no removal of
  // snapshot temporaries (counted only). The directory must exist, and is locked all the same.
  // Nothing new is confirmed (Submit answers BUSY / shutting_down) and ReleaseHold refuses,
  // since neither could be kept. For audits (vouchd --check) of a copy or a stopped server's
  // directory.
  bool read_only = false;
};

struct Options {
  // Capacities. Each bounds memory; overload is refused with BUSY and counted.
  size_t in_flight_capacity = 1 << 16;   // Confirmed, not yet retired (power of two).
  // Idempotency table size: the most ids remembered at once (64 bytes each; 2^22 = 256 MiB;
  // with a journal and snapshots the replay shadow keeps ~100 bytes more per id, DESIGN.md).
  // It bounds the memory; idempotency_retention_ns says how long each id is kept. It must hold
  // peak rate x retention ids, or new ids are refused BUSY idempotency_retention.
  size_t idempotency_window = 1 << 22;
  size_t history_capacity = 1 << 20;     // Recent sequence numbers kept for Query (and for
                                         // AccountTransactions: the account activity index).
  // Accounts ever created (Options::accounts included; closing keeps an account), the capacity
  // of the account directory (engine/accounts/account_directory.h): creating one more is
  // refused kTableFull and counted. Memory: see docs/DESIGN.md ("Accounts"), ~0.3 KB per account
  // of capacity once created (the snapshotter's shadow doubles it). In [1, 2^31).
  size_t account_capacity = 1 << 20;
  // Obsolete, ignored: a hold is a flag in the account's record. Kept so configurations build.
  size_t hold_capacity = 1 << 16;
  size_t outcome_queue_capacity = 1 << 16;  // Poll mode only.
  size_t fraud_account_capacity = 1 << 20;  // Per-account fraud state.
  // The ledger's table: max(this, account_capacity) accounts (every created account is opened
  // in the ledger).
  size_t ledger_account_capacity = 1 << 20;
  int stage_batch_max = 256;             // Work per DoWork turn, per step.

  // Admission by time: refuse BUSY / queue_full while a verifier's oldest unchecked transaction
  // has waited longer than this (0: off, only in_flight_capacity bounds the backlog). The ring
  // bounds the backlog in transactions; this bounds it in time, so that a verifier running
  // slower than the load (a slow fraud service) makes the engine refuse rather than confirm
  // transactions that would only reach LATE_TIMEOUT. Keep it below the deadline.
  int64_t admission_backlog_max_ns = 0;

  // Every id, with its answer and the fingerprint of its fields, is remembered at least this
  // long after it was first seen, across restarts (journal or snapshot) for ack policies written
  // and durable. 24 h, the retention payment APIs promise for idempotency keys (a client's
  // retries of a failed call, even the next day's batch re-run, are caught). When the table
  // (idempotency_window) cannot hold this at the current rate, new ids are refused BUSY
  // idempotency_retention rather than forgetting an id early. 0: an id is kept until the table
  // needs its node (a plain window of idempotency_window claims).
  int64_t idempotency_retention_ns = 24LL * 3600 * 1'000'000'000;

  // Limits.
  int64_t verification_deadline_ns = 50'000'000;  // Confirm -> final outcome.
  int64_t amount_minor_max = 100'000'000;         // Per transaction (1,000,000.00).

  // When a fraud failure puts an account on hold, that account's transactions still undecided
  // are failed too: LATE_FAILED(fraud, kAccountHeldInFlight), reversed if reserved, so that a
  // compromised account cannot drain in flight what ingest now refuses. false: each is judged
  // on its own verdicts.
  bool fail_in_flight_on_hold = true;

  HybridPolicy policy;
  RiskOptions risk;
  fraud::FraudRules fraud_rules;
  // The embedder's own verifiers (engine/verify/verifier.h), after the built-in fraud and
  // ledger verifiers: at most kVerifiersMax - 2 (6). Each runs on its own stage thread and joins
  // the outcome as its policy says. Keep their order across restarts: the journal records a
  // failure by the verifier's number (VerifierId 3 + its index).
  std::vector<VerifierSpec> verifiers;
  // A candidate fraud rule set judged in shadow next to the live fraud_rules: a shadow verifier
  // named "fraud_shadow" after `verifiers` (it takes one of their six places), whose verdicts
  // are compared with the outcomes (docs/VERIFIERS.md, "Shadow"). Engine::
  // PromoteShadowFraudRules makes it the live rule set, journaled as a rule reload. Its
  // velocity and travel state starts empty at each start (it is not snapshotted).
  std::optional<fraud::FraudRules> shadow_fraud_rules;
  std::vector<ledger::AccountSpec> accounts;  // Opened before Start.

  // Threads.
  bool inline_mode = false;  // Step every stage on the caller's thread (Engine::Step).
  IdleConfig idle;
  StageCpus cpus;
  int64_t drain_timeout_ns = 5'000'000'000;  // Stop() waits this long for outcomes.

  DurabilityOptions durability;

  // Outcome delivery: a sink called on the reconciler thread, or (if null) a poll queue.
  OutcomeSink* outcome_sink = nullptr;
  // Time source; null means the monotonic clock. Inline tests pass a ManualClock.
  const Clock* clock = nullptr;
  // Called once if the journal fails (an I/O error: a full disk, a failing device), on the
  // journal's thread (inline: the stepping thread), before any waiter learns of the failure;
  // the status says why. From then on nothing
  // more is acknowledged: Submit answers BUSY / JOURNAL_FAILED, every AwaitAck returns false,
  // and Engine::health() returns the status. The engine keeps running and the process is the
  // embedder's: stop it (Engine::Stop does not wait for a drain then) and restart; recovery
  // finds every acknowledged record. Must not block or call back into the engine.
  std::function<void(const absl::Status&)> on_fatal;

  absl::Status Validate() const;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_OPTIONS_H_
