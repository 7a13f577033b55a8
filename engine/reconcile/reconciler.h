// Reconciler: joins the verdicts of every confirmed transaction into exactly one Outcome.
//
// There is one verdict per verifier (ports.verifier_count: fraud, ledger and the embedder's,
// engine/verify/verifier.h). Per DoWork turn the reconciler (1) drains every verdict queue,
// (2) times out transactions whose deadline passed before their required verdicts, (3) emits
// outcomes in sequence order, and (4) retires entries in sequence order once every verifier,
// advisory ones included, has judged them: settles the ledger reservation (commit when
// VERIFIED, reverse otherwise) and frees the ring entry. Outcome rules (N-way join):
//   - a failing verdict of a required verifier decides at once: LATE_FAILED(verifier, reason,
//     code);
//   - passing verdicts of every required verifier: VERIFIED;
//   - deadline reached first: LATE_TIMEOUT(the first required verifier still missing);
//   - an advisory verifier's verdict is recorded and its failure counted; it decides nothing;
//   - a required verdict that arrives after the outcome is recorded as late and never makes a
//     second outcome;
//   - a failure that puts the source account on hold (fraud's, or a verifier's with
//     hold_account_on_failure) also fails every undecided transaction of that account:
//     LATE_FAILED(that verifier, kAccountHeldInFlight), at once for those in the ring
//     (FailInFlight), and LATE_FAILED(fraud, kAccountHeldInFlight) at their decision for any
//     published later, so that a held account is never VERIFIED
//     (ports.fail_in_flight_on_hold, on by default).
// Compensation: a transaction that is not VERIFIED leaves no money moved, and a fraud failure
// of a transaction that was confirmed before verification puts the source account on hold. A
// transaction decided before the ledger judged it is never reserved (LedgerGate); one the ledger
// had reserved is reversed when it retires, and its Outcome says so (kCompensationReversed)
// whenever the reversal happens: if the ledger took it but its verdict is still on the way, the
// outcome waits for that verdict before it is journaled, told or handed to a held submitter.
//
// Held transactions (hybrid/sync policy). Their outcome is their final answer, not a late
// failure: nothing was confirmed, so a fraud failure places no account hold, and they are counted
// in held_results, not in outcomes / failures_by_reason. Once the journal keeps the outcome (the
// same point at which it may be emitted) the reconciler records the final answer in the
// idempotency table (so a resubmission gets it) and hands it to a blocking submitter
// (HeldState::kReady); only then is the outcome emitted. No held answer is told before the ack
// policy keeps it.
//
// Thread safety: DoWork runs on the reconciler thread (or the inline stepping thread), which
// owns every ReconcileState in the ring, the history writes, the counters' writes and every
// change of the hold table (ReleaseHold posts to it; see kReleaseSlots). The
// counters may be read from any thread. An OutcomeSink is called on the reconciler thread and
// must not block.
#ifndef VOUCH_ENGINE_RECONCILE_RECONCILER_H_
#define VOUCH_ENGINE_RECONCILE_RECONCILER_H_

#include <atomic>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/agent/agent.h"
#include "engine/history/history_ring.h"
#include "engine/accounts/account_directory.h"
#include "engine/ingest/idempotency_table.h"
#include "engine/ingest/risk_table.h"
#include "engine/metrics/histogram.h"
#include "engine/ring/in_flight_ring.h"
#include "engine/types/clock.h"
#include "engine/types/currency_slots.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "engine/verify/queues.h"
#include "engine/verify/rules_handoff.h"

namespace vouch {

// Receives every outcome, on the reconciler thread. Must be fast and must not block.
class OutcomeSink {
 public:
  virtual ~OutcomeSink() = default;
  virtual void OnOutcome(const Outcome& outcome) = 0;
};



// Single writer (the reconciler thread); any thread may read. relaxed everywhere: these are
// statistics and publish no other data.
struct ReconcileCounters {
  std::atomic<uint64_t> outcomes[4] = {};  // Not held, indexed by OutcomeKind.
  std::atomic<uint64_t> held_results[4] = {};  // Held (final answers), indexed by OutcomeKind.
  std::atomic<uint64_t> failures_by_reason[kReasonCount] = {};  // Late (not held) failures.
  std::atomic<uint64_t> late_verdicts{0};  // Required verifiers' verdicts after the outcome.
  // Asynchronous verifiers' second answers for a seq: ignored.
  std::atomic<uint64_t> ignored_verdicts{0};
  // Failing verdicts per verifier slot, whatever they decided (advisory ones decide nothing).
  std::atomic<uint64_t> verdict_failures[kVerifiersMax] = {};
  // Shadow verifiers' verdicts, once both the verdict and the outcome are known, per verifier
  // slot and ShadowComparison.
  std::atomic<uint64_t> shadow_verdicts[kVerifiersMax][kShadowComparisonCount] = {};
  std::atomic<uint64_t> holds_placed{0};
  // Always 0: holds are a flag in the account's own record (no table to fill). Kept for the
  // metric vouch_hold_table_full_total, which is documented as obsolete.
  std::atomic<uint64_t> hold_table_full{0};
  std::atomic<uint64_t> reversals{0};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> emit_stalls{0};  // Turns the outcome queue was full.
  std::atomic<uint64_t> journal_stalls{0};  // Turns the journal's outcome queue was full.
  std::atomic<uint64_t> retired{0};      // Entries freed: their outcomes are final and settled.
  // Outcomes of transactions confirmed before verification (not held), and their amounts by
  // currency slot: the engine subtracts them from what ingest confirmed to get the value at risk.
  std::atomic<uint64_t> decided_unheld{0};
  std::atomic<int64_t> decided_unheld_minor[kCurrencySlotCount] = {};
  // Confirm -> outcome decided, and confirm -> each verdict (at VerifierSlot): what
  // the Prometheus histograms export (LatencyHistogram::ReadExportCounts, made to be read while
  // the reconciler records).
  LatencyHistogram confirm_to_outcome;
  LatencyHistogram confirm_to_verdict[kVerifiersMax];

  // A load and a store rather than a read-modify-write: there is one writer.
  void Add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void AddMinor(std::atomic<int64_t>& sum, int64_t amount_minor) {
    sum.store(sum.load(std::memory_order_relaxed) + amount_minor, std::memory_order_relaxed);
  }
};

// A change of the hold table, as the journal records it. Engine time (at_ns).
struct HoldChange {
  bool placed = false;  // Placed by a fraud failure; else released by an operator.
  uint64_t account = 0;
  Sequence seq = 0;     // Placed: the transaction that failed. Released: 0.
  int64_t at_ns = 0;
};

// The journal as the reconciler sees it (engine/journal/stage implements it). With a journal, an
// outcome is recorded in it, in sequence order, before it is emitted, and a ring entry is freed
// only once the journal has copied it: after a crash, nothing a client was told is unknown to
// recovery. Outcomes and hold changes go into one queue, which the journal writes in the order
// it was filled: each hold change in the order the hold table saw it, and a hold placed by a
// failure before that failure's outcome (an outcome that survives a crash brings its hold).
class OutcomeJournal {
 public:
  virtual ~OutcomeJournal() = default;
  // Reconciler thread. False if the journal's queue is full (try again next turn).
  virtual bool RecordOutcome(const Outcome& outcome) = 0;
  // Reconciler thread. False if the queue is full. The queue has room for a hold per live ring
  // entry on top of its outcomes and of kOperatorEntriesQueuedMax releases and rule reloads
  // (see Reconciler).
  virtual bool RecordHoldChange(const HoldChange& change) = 0;
  // Hold releases and rule reloads the journal has taken from its queue so far.
  virtual uint64_t operator_entries_taken() const = 0;
  // Reconciler thread. A rule reload: `text` (the rules file
  // format) judges every transaction from `from` on. Queued before any outcome from `from` on
  // (rules_handoff.h). False if the queue is full (try again next turn).
  virtual bool RecordRules(Sequence from, const std::string& text) = 0;
  // Outcomes below this sequence number are kept as the ack policy promises; they may be emitted.
  virtual Sequence outcomes_acked_below() const = 0;
  // Ring entries below this sequence number have been copied into the journal; they may be freed.
  virtual Sequence read_below() const = 0;
};

// What a verifier's verdict does in the join (Verifier policies, engine/verify/verifier.h).
struct VerifierRole {
  bool required = true;        // A failure decides; VERIFIED waits for its pass. Else advisory.
  bool holds_account = false;  // A deciding failure puts the source account on hold.
  bool shadow = false;         // Not required, and each verdict is compared with the outcome.
  // Set for an asynchronous verifier (AsyncVerifier): a decided entry the stage has handed out
  // retires without its answer, and an answer may come after the entry retired.
  const HandOffCursor* async = nullptr;
};


struct ReconcilerPorts {
  InFlightRing* ring = nullptr;
  // One queue per verifier, at VerifierSlot: fraud, ledger, then the embedder's in order.
  int verifier_count = kBuiltinVerifierCount;
  VerdictQueue* verdicts[kVerifiersMax] = {};
  // The built-in fraud and ledger verifiers are required, and a fraud failure holds the account.
  VerifierRole roles[kVerifiersMax] = {{true, true}, {true, false}};
  SettlementQueue* settlements = nullptr;
  // Accounts: the hold flag (placed here, released by operators), the exposure released when
  // decided, and the in-flight count released when an entry retires.
  AccountDirectory* accounts = nullptr;
  HistoryRing* history = nullptr;
  OutcomeSink* sink = nullptr;          // Either a sink...
  OutcomeQueue* poll_queue = nullptr;   // ...or a queue the embedder polls.
  const Clock* clock = nullptr;
  OutcomeJournal* journal = nullptr;    // Optional (ack policy "memory" has none).
  RiskTable* risk = nullptr;            // Optional: exposure is released when decided.
  bool fail_in_flight_on_hold = true;   // Options::fail_in_flight_on_hold.
  // Where held answers are recorded; required when any transaction may be held.
  IdempotencyTable* idempotency = nullptr;
  RulesHandoff* rules = nullptr;        // Rule reloads (rules_handoff.h); optional.
};

// Hold releases: the reconciler is the one writer of the hold table. It places holds (a fraud
// failure, in Resolve) and applies operators' releases, and hands each change to the journal
// as it makes it, so the journal keeps the order memory saw (a release and a hold journaled the
// other way round would undo a hold, or restore a released one, at the next restart). Any thread
// posts a release (ReleaseHold) into one of kReleaseSlots mutex-guarded slots and waits; the
// reconciler serves every posted release at the start of its turn. The turn pays one atomic
// load for it (releases_posted_, seq_cst: the Parker protocol's look for work, paired with the
// poster's seq_cst store before it wakes the reconciler). A caller that times out takes its
// request back under the mutex, so a release either happened and was answered, or did not.
inline constexpr int kReleaseSlots = 8;
// Releases and rule reloads queued in the journal and not yet taken by it; the reconciler serves
// no more, so that a flood of them can never leave a fraud failure's hold without room in the
// queue.
inline constexpr uint64_t kOperatorEntriesQueuedMax = 1024;

class Reconciler final : public Agent {
 public:
  Reconciler(const ReconcilerPorts& ports, int batch_max);

  int DoWork() override;
  std::string_view role_name() const override { return "vouch-reconcile"; }

  // Any thread. Releases the hold on `account` on the reconciler's turn and returns whether it
  // was on hold. `kick` runs after the post, outside the lock: it wakes the reconciler
  // (threaded) or steps it (inline). kUnavailable when kReleaseSlots releases already wait
  // (retry); kDeadlineExceeded when the reconciler did not serve it within `timeout` (nothing
  // changed).
  absl::StatusOr<bool> ReleaseHold(uint64_t account, absl::Duration timeout,
                                   absl::FunctionRef<void()> kick) ABSL_LOCKS_EXCLUDED(mu_);

  const ReconcileCounters& counters() const { return counters_; }
  // The first sequence number to reconcile (after recovery). REQUIRES: before the stage runs.
  void StartAt(Sequence first_seq);
  // Sequence numbers below this are retired (their outcome is final and the ledger settled).
  Sequence retired_below() const {
    // acquire: pairs with the release in RetireInOrder, so a caller that sees seq retired also
    // sees everything the reconciler did for it (used by Stop to know the drain is complete).
    return retired_below_.load(std::memory_order_acquire);
  }

 private:
  // Both may move now_ns on, to no earlier than the verdicts taken.
  int DrainVerdicts(VerdictQueue* queue, int64_t& now_ns);
  void OnVerdict(const Verdict& verdict, int64_t& now_ns);
  // The record of a verdict, late if a required verifier's and `decided` (the outcome came
  // first); counts it among the failures and the late verdicts.
  VerdictRecord TakeVerdict(const Verdict& verdict, bool decided);
  // An asynchronous verifier's answer after its entry retired: recorded in the history only.
  void OnRetiredVerdict(const Verdict& verdict);
  // Every verifier judged it, or (asynchronous ones) it is decided and handed out: no stage
  // reads the entry, and no verdict is owed to it.
  bool Judged(const HistoryRecord& record) const;
  void TryResolve(InFlightEntry& entry, int64_t now_ns);
  // Counts a shadow verifier's verdict against the decided outcome. REQUIRES: both known.
  void CompareShadow(int slot, const VerdictRecord& verdict, const Outcome& outcome);
  void Resolve(InFlightEntry& entry, OutcomeKind kind, VerifierId verifier, Reason reason,
               int64_t now_ns, uint16_t verifier_code = 0);
  // Decided before the ledger's verdict: stops the ledger from reserving it, or, if the ledger
  // took it first, marks the outcome to wait for that verdict (see LedgerGate).
  void CloseLedgerGate(InFlightEntry& entry);
  // A failure of `verifier` (fraud, or one that holds accounts) put `account` on hold: fails
  // its undecided transactions in the ring, LATE_FAILED(verifier, kAccountHeldInFlight).
  void FailInFlight(uint64_t account, VerifierId verifier, int64_t now_ns);
  int ExpireDeadlines(int64_t now_ns);
  int JournalInOrder();
  int EmitInOrder();
  bool Emit(const Outcome& outcome);
  // At emit time (the outcome is kept): records a held transaction's final answer for its id and
  // hands it to a blocking submitter.
  void AnswerHeld(InFlightEntry& entry);
  int RetireInOrder(int64_t now_ns);
  void ReleaseInFlight(const Transaction& txn);
  int ServeReleases(int64_t now_ns) ABSL_LOCKS_EXCLUDED(mu_);
  // Claims [next_journal_, end) for this turn and completes a decided rule reload; false while
  // a posted reload is not decided yet, or its record finds the journal's queue full.
  bool ClaimJournalTurn(Sequence end);
  // Puts the account on hold and journals the hold; false for an account not in the directory
  // (only a transaction recovered from a journal older than the directory).
  bool PlaceHold(const Transaction& txn, Sequence seq, Outcome& outcome, int64_t now_ns);

  struct ReleaseSlot {
    uint64_t account = 0;  // 0: the slot is free.
    bool done = false;
    bool was_held = false;
  };

  const ReconcilerPorts ports_;
  const int batch_max_;
  std::unique_ptr<moodycamel::ProducerToken> poll_token_;
  // Owned by the reconciler thread: next_expire_ >= next_journal_ >= next_emit_ >= next_retire_
  // after each turn (next_journal_ is used only with a journal).
  Sequence next_expire_ = 1;
  Sequence next_journal_ = 1;
  Sequence next_emit_ = 1;
  Sequence next_retire_ = 1;
  std::atomic<Sequence> retired_below_{1};
  // Reconciler thread: releases and rule reloads handed to the journal.
  uint64_t operator_entries_queued_ = 0;
  bool OperatorEntryRoom() const;
  ReconcileCounters counters_;

  std::atomic<bool> releases_posted_{false};
  absl::Mutex mu_;
  ReleaseSlot release_slots_[kReleaseSlots] ABSL_GUARDED_BY(mu_);
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_RECONCILE_RECONCILER_H_
