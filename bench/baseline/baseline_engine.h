// BaselineEngine: the straightforward design a user might write instead of vouch, for
// vouch-bench to measure vouch against. It does the same verification work with the same
// verifiers (the real fraud::FraudChecker and ledger::Ledger, two-phase: Reserve, then Commit
// or Void once the outcome is known) and keeps the same contract: Submit confirms synchronously
// after the well-formedness, idempotency, limit and hold checks, and every confirmed transaction
// gets exactly one Outcome.
//
// Design (the textbook one, written with care but without vouch's structures):
//
//   Submit (caller's thread: the ingest/confirm stage)
//     lock ingest_mu_: idempotency map, holds, sequence, in-flight map insert, push to both
//     verifier queues (pushing under the lock keeps the verifiers in sequence order)
//       ├── fraud thread:  BlockingQueue<Work>       -> FraudChecker::Check -> verdict queue
//       └── ledger thread: BlockingQueue<LedgerWork> -> Ledger::Reserve     -> verdict queue
//                                         (and Commit / Void settlements from the reconciler)
//   reconcile thread: BlockingQueue<Verdict> -> in-flight map (std::unordered_map, own mutex)
//     -> outcome when a verdict fails or both pass, LATE_TIMEOUT past the deadline (scanned
//     every millisecond); settlement to the ledger thread; hold on a fraud failure;
//     outcomes into a bounded std::deque polled by the embedder.
//
// Each BlockingQueue is a std::deque under a std::mutex with a std::condition_variable; a
// consumer takes the whole deque at once (swap under the lock, work outside it), the usual
// batching idiom, so a busy stage pays one lock per batch, not per item. The idempotency window
// is a std::unordered_map plus a FIFO of ids that forgets the oldest beyond the window.
// Outcomes leave in decision order, not sequence order (vouch emits in sequence order); the
// contract (one per confirmed transaction) is the same.
//
// What is deliberately not here (vouch has it): lock-free claims, a pre-allocated ring that
// carries the transaction to every stage without copying, SPSC queues, idle strategies, and
// allocation-free steady state (std::deque and std::unordered_map allocate per node/chunk).
//
// Thread safety: Submit, PollOutcomes and Stats may be called from any thread once Start()
// returned. Start and Stop are called once each by the owner.
//
// Invariants:
//  - in_flight_ counts confirmed transactions not yet retired; it never exceeds
//    in_flight_capacity (Submit answers BUSY/queue_full instead), so the ledger's pending table
//    (sized 2 x in_flight_capacity) can never fill.
//  - A transaction is retired once its outcome is queued, both verdicts are consumed and its
//    reservation (if the ledger made one) is committed or voided by the ledger thread.
#ifndef VOUCH_BENCH_BASELINE_BASELINE_ENGINE_H_
#define VOUCH_BENCH_BASELINE_BASELINE_ENGINE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/types/clock.h"
#include "engine/types/reason.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "verifiers/fraud/fraud_checker.h"
#include "verifiers/fraud/fraud_rules.h"
#include "engine/ledger/ledger.h"

namespace vouch::baseline {

struct BaselineOptions {
  std::vector<ledger::AccountSpec> accounts;
  fraud::FraudRules fraud_rules;
  size_t in_flight_capacity = 1 << 16;      // Confirmed, not yet retired.
  size_t idempotency_window = 1 << 20;      // Recent ids remembered.
  size_t account_capacity = 1 << 20;        // Fraud and ledger per-account tables.
  size_t hold_capacity = 1 << 16;           // Accounts that can be held.
  size_t outcome_queue_capacity = 1 << 16;  // Full: the reconciler waits for PollOutcomes.
  int64_t verification_deadline_ns = 50'000'000;
  int64_t amount_minor_max = 100'000'000;
  int64_t drain_timeout_ns = 5'000'000'000;
};

// An Outcome plus when each verdict was decided (0: no verdict before the outcome), so the
// harness can time the stages without a Query.
struct BaselineOutcome {
  Outcome outcome;
  int64_t fraud_decided_ns = 0;
  int64_t ledger_decided_ns = 0;
};

struct BaselineStats {
  uint64_t confirmed = 0;
  uint64_t rejected = 0;  // First answers only; duplicates are not counted again.
  uint64_t busy = 0;
  uint64_t duplicates = 0;
  uint64_t outcomes = 0;
  uint64_t retired = 0;
};

struct BaselineDrainReport {
  bool drained = false;
  uint64_t confirmed = 0;
  uint64_t not_drained = 0;
};

// A std::deque under a std::mutex with a std::condition_variable.
// Thread safety: any number of pushers; one consumer calls TakeAll.
template <typename T>
class BlockingQueue {
 public:
  // Only a push into an empty queue notifies: the consumer waits only on an empty queue, and
  // a notify on every push would cost a futex call per item while the consumer is busy.
  void Push(const T& item) {
    bool was_empty;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_empty = items_.empty();
      items_.push_back(item);
    }
    if (was_empty) ready_.notify_one();
  }
  // One lock for a batch (a stage hands on its verdicts this way).
  void PushAll(const std::vector<T>& items) {
    if (items.empty()) return;
    bool was_empty;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_empty = items_.empty();
      items_.insert(items_.end(), items.begin(), items.end());
    }
    if (was_empty) ready_.notify_one();
  }
  // Waits up to `timeout` for an item (or Close), then swaps every queued item into *out.
  // REQUIRES: out is empty.
  void TakeAll(std::deque<T>* out, std::chrono::nanoseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    ready_.wait_for(lock, timeout, [this] { return !items_.empty() || closed_; });
    out->swap(items_);
  }
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    ready_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<T> items_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class BaselineEngine {
 public:
  // Opens the accounts; InvalidArgument for bad options or an account the ledger refuses.
  static absl::StatusOr<std::unique_ptr<BaselineEngine>> Create(BaselineOptions options);
  ~BaselineEngine();
  BaselineEngine(const BaselineEngine&) = delete;
  BaselineEngine& operator=(const BaselineEngine&) = delete;

  void Start();
  // Stops accepting, waits up to drain_timeout_ns for every confirmed transaction to retire
  // (the embedder must keep polling outcomes meanwhile, or the reconciler waits for room),
  // then stops the threads. Outcomes still queued stay pollable.
  BaselineDrainReport Stop();

  Confirmation Submit(const Transaction& txn);
  size_t PollOutcomes(BaselineOutcome* out, size_t max);
  BaselineStats Stats() const;
  // REQUIRES: Stop() returned.
  const ledger::Ledger& ledger() const { return ledger_; }

 private:
  struct StoredAnswer {
    ConfirmStatus status = ConfirmStatus::kRejected;
    Reason reason = Reason::kNone;
    Sequence seq = 0;
    int64_t received_ns = 0;
  };
  struct Work {  // To the fraud thread.
    Sequence seq = 0;
    Transaction txn;
    int64_t confirmed_ns = 0;
  };
  enum class LedgerOp : uint8_t { kReserve, kCommit, kVoid };
  struct LedgerWork {  // To the ledger thread.
    LedgerOp op = LedgerOp::kReserve;
    Sequence seq = 0;
    Transaction txn;  // kReserve only.
  };
  struct InFlight {  // Reconciler state of one confirmed transaction.
    uint64_t id = 0;
    uint64_t source_account = 0;
    int64_t amount_minor = 0;
    CurrencyCode currency = 0;
    int64_t confirmed_ns = 0;
    int64_t deadline_ns = 0;
    Verdict verdicts[kBuiltinVerifierCount];  // At VerifierSlot; seq 0 until received.
    bool decided = false;
    OutcomeKind kind = OutcomeKind::kVerified;  // Once decided.
  };

  explicit BaselineEngine(BaselineOptions options);
  Reason CheckWellFormed(const Transaction& txn) const;
  Confirmation Confirm(const Transaction& txn, int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ingest_mu_);
  void RememberAnswer(uint64_t id, const StoredAnswer& answer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ingest_mu_);
  void RunFraud();
  void RunLedger();
  void RunReconciler();
  // Reconciler thread: decides `entry` if its verdicts or the deadline allow, appending the
  // outcome to *decided.
  void Decide(Sequence seq, InFlight& entry, int64_t now_ns,
              std::vector<BaselineOutcome>* decided) const;
  // Reconciler thread: true once `entry` is decided and both verdicts are in; then appends its
  // settlement (when the ledger reserved) or counts it in *retire_now.
  static bool Finished(Sequence seq, const InFlight& entry, std::vector<LedgerWork>* settlements,
                       uint64_t* retire_now);
  // Reconciler thread: queues the outcomes (waiting for room) and places fraud holds.
  void Emit(const std::vector<BaselineOutcome>& outcomes);
  void Retire(uint64_t count);

  // Constant after construction.
  const BaselineOptions options_;
  const Clock& clock_;

  // The ingest stage: every Submit takes ingest_mu_.
  mutable std::mutex ingest_mu_;
  std::unordered_map<uint64_t, StoredAnswer> answers_ ABSL_GUARDED_BY(ingest_mu_);
  std::deque<uint64_t> answer_order_ ABSL_GUARDED_BY(ingest_mu_);  // Oldest id first.
  std::unordered_set<uint64_t> holds_ ABSL_GUARDED_BY(ingest_mu_);
  Sequence last_seq_ ABSL_GUARDED_BY(ingest_mu_) = 0;
  BaselineStats ingest_stats_ ABSL_GUARDED_BY(ingest_mu_);

  // In-flight state: Submit inserts, the reconciler updates and erases.
  std::mutex in_flight_mu_;
  std::unordered_map<Sequence, InFlight> in_flight_map_ ABSL_GUARDED_BY(in_flight_mu_);
  // Confirmed and not retired. relaxed everywhere: a bound and a drain test, it publishes no data.
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<uint64_t> retired_{0};
  bool accepting_ ABSL_GUARDED_BY(ingest_mu_) = false;

  BlockingQueue<Work> fraud_queue_;
  BlockingQueue<LedgerWork> ledger_queue_;
  BlockingQueue<Verdict> verdict_queue_;

  // Written only by the fraud thread (the ledger thread for ledger_), until Stop joins them.
  fraud::FraudChecker fraud_;
  ledger::Ledger ledger_;

  mutable std::mutex outcome_mu_;
  std::condition_variable outcome_room_;
  std::deque<BaselineOutcome> outcomes_ ABSL_GUARDED_BY(outcome_mu_);
  uint64_t outcomes_queued_ ABSL_GUARDED_BY(outcome_mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(outcome_mu_) = false;

  std::atomic<bool> stop_threads_{false};
  std::vector<std::thread> threads_;
};

}  // namespace vouch::baseline

#endif  // VOUCH_BENCH_BASELINE_BASELINE_ENGINE_H_
