// What the engine reports of itself: Engine::Stats, Engine::Stop's drain, and what recovery
// found (Engine::recovery). Plain values, read at one moment.
#ifndef VOUCH_ENGINE_ENGINE_STATS_H_
#define VOUCH_ENGINE_ENGINE_STATS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/metrics/histogram.h"
#include "engine/types/currency_slots.h"
#include "engine/types/reason.h"
#include "engine/types/results.h"

namespace vouch {

struct DrainReport {
  bool drained = false;         // Every confirmed transaction reached its outcome and settled.
  uint64_t confirmed = 0;       // Sequence numbers handed out over the engine's life.
  uint64_t not_drained = 0;     // Confirmed but not retired when the drain timeout passed.
  int64_t elapsed_ns = 0;
};

struct EngineStats {
  uint64_t confirmed = 0;  // Sequenced (async confirmations and held transactions).
  uint64_t held = 0;
  // Inter-stage queue depths right now (approximate: read while the stages run); the verdict
  // queues are verdict_queue[], by VerifierSlot.
  uint64_t settlement_queue = 0;
  uint64_t risk_holds = 0;       // Held because a risk cap was reached (RiskAction::kHold).
  // Refused because the risk totals had no room for the currency: 0 in practice (exposure per
  // account lives in the account's record; the totals have room for every currency).
  uint64_t risk_table_full = 0;
  uint64_t duplicates = 0;
  uint64_t rejected[kReasonCount] = {};
  uint64_t busy[kReasonCount] = {};
  uint64_t outcomes[4] = {};  // By OutcomeKind; transactions confirmed before verification.
  uint64_t held_results[4] = {};  // By OutcomeKind; held transactions' final answers.
  uint64_t failures_by_reason[kReasonCount] = {};
  uint64_t late_verdicts = 0;
  uint64_t holds_placed = 0;
  uint64_t hold_table_full = 0;  // Obsolete: always 0 (a hold is a flag in the account record).
  uint64_t accounts = 0;             // Accounts created and kept (account_count()).
  uint64_t account_table_full = 0;   // Creations refused kTableFull (Options::account_capacity).
  uint64_t reversals = 0;
  uint64_t outcome_queue_stalls = 0;
  uint64_t idempotency_overruns = 0;
  // How far back duplicates are detected right now: the age of the oldest id the idempotency
  // table remembers (IdempotencyTable::OldestReceivedNs), 0 while it remembers none. Once the
  // table holds a full retention it stays at or above Options::idempotency_retention_ns; below
  // it only while the engine has not run that long (or, after a restart, while the journal
  // holds less), never because an id was forgotten early (new ids are refused BUSY
  // idempotency_retention instead).
  int64_t idempotency_retention_ns = 0;
  uint64_t retired = 0;
  // Snapshots written, snapshot attempts that failed (each logged; retried with a back-off), and
  // whether snapshots stopped for good (the shadow could not follow the journal).
  uint64_t snapshots = 0;
  uint64_t snapshot_failures = 0;
  bool snapshots_stopped = false;
  bool journal_failed = false;  // See Options::on_fatal.
  // The journal (ack policy written / durable; all 0 with memory): records written, write(2)
  // calls, fdatasync calls (durable), the most records one fdatasync made durable, the slowest
  // fdatasync. `journal` and `snapshots_enabled` say whether there is a journal and whether it
  // is snapshotted (snapshot_interval_records > 0).
  bool journal = false;
  bool snapshots_enabled = false;
  uint64_t journal_records = 0;
  uint64_t journal_writes = 0;
  uint64_t journal_syncs = 0;
  uint64_t journal_group_commit_records_max = 0;
  int64_t journal_sync_ns_max = 0;
  // Value at risk: transactions answered CONFIRMED before verification (not held; after a
  // restart, also those sent back to the verifiers) whose outcome is not decided yet, and their
  // amounts in minor units by currency slot (SlotCurrency(slot) names it). Counters are read one
  // by one, not as a snapshot, so under load a value may be off by a few transactions (never
  // negative); it is exact when the engine is quiet.
  uint64_t at_risk = 0;
  int64_t value_at_risk_minor[kCurrencySlotCount] = {};
  // Confirm -> outcome decided, at the Prometheus export bounds (cumulative, exact), with the
  // count and the sum.
  LatencyHistogram::ExportCounts confirm_to_outcome;
  // Per verifier, at VerifierSlot (the first verifier_count are used): confirm -> its verdict,
  // likewise, and its failing verdicts (an advisory verifier's decide nothing).
  int verifier_count = kBuiltinVerifierCount;
  LatencyHistogram::ExportCounts confirm_to_verdict[kVerifiersMax];
  uint64_t verdict_failures[kVerifiersMax] = {};
  // Asynchronous verifiers' answers ignored: a second answer for a seq, or one for a seq never
  // handed out (VerdictSink::Answer).
  uint64_t ignored_answers = 0;
  // Shadow verifiers' verdicts compared with the outcome, by ShadowComparison (reconciler.h).
  uint64_t shadow_verdicts[kVerifiersMax][kShadowComparisonCount] = {};
  size_t verdict_queue[kVerifiersMax] = {};  // Verdicts waiting for the reconciler (approximate).
  // Each stage thread (none in inline mode): its role and its longest DoWork() turn.
  struct AgentStats {
    std::string_view role;
    int64_t duty_cycle_max_ns = 0;
    uint64_t work_total = 0;
  };
  // Fraud, ledger, reconcile, journal, then the embedder's verifiers.
  static constexpr int kAgentsMax = 4 + kVerifiersMax - kBuiltinVerifierCount;
  AgentStats agents[kAgentsMax] = {};
  int agent_count = 0;
  uint64_t unverified() const;  // Sequenced, no outcome (or held answer) yet.
  uint64_t held_results_total() const;
  uint64_t rejected_total() const;
  uint64_t busy_total() const;
  uint64_t outcomes_total() const;
};

// What recovery found in the journal when the engine was created.
struct RecoveryReport {
  bool journal = false;          // A journal was configured (ack policy other than memory).
  uint64_t records = 0;          // Valid records replayed.
  Sequence confirmed = 0;        // Highest confirmed sequence number in the journal.
  Sequence outcomes = 0;         // Highest sequence number with a journaled outcome.
  uint64_t reverified = 0;       // Confirmed without an outcome: sent back to the verifiers.
  uint64_t releases = 0;         // Hold releases replayed.
  uint64_t refused = 0;          // Stored refusals replayed (after the snapshot, if any).
  uint64_t next_record_index = 0;  // Where the journal continues.
  std::string snapshot_file;       // The snapshot recovery started from; empty if none.
  uint64_t snapshot_record_index = 0;  // Records below this came from the snapshot.
  bool truncated = false;        // A torn tail was cut off (it was never acknowledged); read
                                 // only: found, and left as it is.
  std::string truncated_file;
  uint64_t truncated_offset = 0;
  uint64_t truncated_bytes = 0;
  // The opening configuration (Options::accounts) was pinned at this start: a new journal, or
  // one written before the configuration was pinned (engine/recovery/opening.h). Read only: it
  // would have been.
  bool opening_recorded = false;
  // snapshot-*.snap.tmp files a crash during a snapshot write left: removed (read only: found).
  uint64_t snapshot_temporaries = 0;
  int64_t elapsed_ns = 0;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_ENGINE_STATS_H_
