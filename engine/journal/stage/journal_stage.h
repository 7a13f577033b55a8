// JournalStage: the agent that makes confirmations and outcomes durable.
//
// It reads the in-flight ring in sequence order, as the verifiers do, and journals each confirmed
// transaction; it takes the reconciler's outcomes (already in sequence order), hold changes
// (fraud holds and operators' releases, in the order the hold table saw them) and rule reloads
// from one queue, and writes them in the order they were queued; and it takes ingest's stored
// refusals from a ring of their own. Refusals have no sequence number: ingest numbers them
// itself, in a bounded ring read in number order (the in-flight ring's protocol), so that
// "refusals acknowledged up to n" is exact; a full ring is ingest's to refuse (BUSY) rather than
// wait. One turn gathers what is ready into the segment writer's buffer, writes
// it with one write(2) and, under the `durable` policy, one fdatasync: every confirmation
// waiting in that window shares the sync (group commit). Then it publishes how far each kind is
// acknowledged; submitters waiting for their sequence number, and the reconciler waiting to emit
// outcomes, proceed. Nothing on the ingest path takes a lock or waits for another producer: a
// producer publishes into the ring as before and then, if its caller asked, waits for the
// acknowledged sequence number to pass its own.
//
// File order: a confirmed transaction is journaled before its outcome (an outcome is taken from
// the queue only once its transaction has been read from the ring), and both kinds are in
// sequence order, so recovery sees confirmations as a gap-free run 1..C and outcomes as 1..O with
// O <= C; the transactions O+1..C were confirmed without a known outcome and go back to the
// verifiers.
//
// Failure: an I/O error on the journal (a full disk, a failing device) is fatal to the stage,
// not to the process it is embedded in. The stage keeps the error, stops writing and never
// acknowledges anything again (it cannot keep what it would confirm), wakes every waiter
// (AwaitAcked returns false) and calls the on_fatal callback once; the embedder decides how
// to stop. Recovery on the next start finds every acknowledged record.
//
// Thread safety: DoWork runs on the stage's own thread. RecordOutcome, RecordHoldChange and
// RecordRules are called by the reconciler thread only (single producer); RecordRefusal by any
// thread. The *_below and refusals_* accessors, operator_entries_taken, IsAcked and AwaitAcked
// may be called from any thread.
#ifndef VOUCH_ENGINE_JOURNAL_STAGE_JOURNAL_STAGE_H_
#define VOUCH_ENGINE_JOURNAL_STAGE_JOURNAL_STAGE_H_

#include <atomic>
#include <deque>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/journal/records.h"
#include "engine/agent/agent.h"
#include "engine/agent/parker.h"
#include "engine/journal/stage/ack_policy.h"
#include "engine/journal/segment.h"
#include "engine/reconcile/reconciler.h"
#include "engine/ring/in_flight_ring.h"
#include "readerwriterqueue/readerwriterqueue.h"

namespace vouch {

struct JournalStageCounters {
  // Single writer (the stage thread); relaxed: statistics.
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> syncs{0};
  std::atomic<uint64_t> synced_records_max{0};  // Largest group commit.
  std::atomic<uint64_t> sync_ns_max{0};
};

class JournalStage final : public Agent, public OutcomeJournal {
 public:
  // `confirmed_below`: transactions below it are already in the journal (recovery); the stage
  // reads the ring from there. `outcomes_below`: likewise for outcomes.
  // REQUIRES: policy != kMemory.
  // `ring_capacity`: the in-flight ring's; the reconciler's queue is sized from it (see
  // OutcomeJournal::RecordHoldChange).
  JournalStage(std::unique_ptr<journal::SegmentWriter> writer, AckPolicy policy,
               InFlightRing* ring, Sequence confirmed_below, Sequence outcomes_below,
               int64_t mono_to_unix_offset_ns, size_t ring_capacity, int batch_max);

  int DoWork() override;
  std::string_view role_name() const override { return "vouch-journal"; }

  // OutcomeJournal (reconciler thread).
  bool RecordOutcome(const Outcome& outcome) override;
  bool RecordHoldChange(const HoldChange& change) override;
  bool RecordRules(Sequence from, const std::string& text) override;
  uint64_t operator_entries_taken() const override {
    // acquire: pairs with the stage's release after its pop; the queue has that room again.
    return operator_entries_taken_.load(std::memory_order_acquire);
  }
  Sequence outcomes_acked_below() const override {
    // acquire: pairs with the stage's release; the outcome is kept before it is told.
    return outcomes_acked_below_.load(std::memory_order_acquire);
  }
  Sequence read_below() const override {
    // acquire: pairs with the stage's release; its reads of those entries are done.
    return read_below_.load(std::memory_order_acquire);
  }

  // Confirmed transactions below this are kept as the policy promises.
  Sequence confirmed_acked_below() const {
    // acquire: pairs with the stage's release.
    return confirmed_acked_below_.load(std::memory_order_acquire);
  }
  // Account records (journal::RecordType kAccountCreated..kAccountLimits), from the engine's
  // account calls: not a hot path, so a mutex-guarded queue of at most kAccountRecordsQueuedMax
  // encoded records. Queues one and returns its number (from 1, in queue order, which is file
  // order); 0 when the queue is full (the caller waits for the stage and retries). Any thread;
  // callers serialize themselves (the engine's account mutex) to fix the order.
  static constexpr size_t kAccountRecordsQueuedMax = 4096;
  uint64_t RecordAccount(journal::RecordType type, const char* payload, size_t size)
      ABSL_LOCKS_EXCLUDED(account_mu_);
  // Account records numbered up to this are kept as the policy promises.
  uint64_t account_records_acked() const {
    // acquire: pairs with the stage's release after the write (and sync).
    return account_records_acked_.load(std::memory_order_acquire);
  }
  // Waits up to `timeout` for account record `number` to be kept: true once kept, false on
  // timeout or failure (failed() tells which). Polls: account calls are not a hot path.
  [[nodiscard]] bool AwaitAccountRecord(uint64_t number, absl::Duration timeout) const;

  // Any thread: queues the refusal of `id` and returns its number (from 1), for an
  // AckPosition; 0 if the refusal ring is full (the caller answers BUSY). Never allocates.
  // `fingerprint`: the refused fields' ContentFingerprint, journaled with the refusal
  // (kRefusedWithFingerprint) so that the content check holds across a restart.
  uint64_t RecordRefusal(uint64_t id, Reason reason, int64_t now_ns, uint64_t fingerprint = 0);
  // Refusals numbered up to this were queued (an answer that repeats a queued refusal waits for
  // at least this much).
  uint64_t refusals_queued() const {
    // acquire: a caller that read a stored refusal's answer sees at least its number.
    return refusal_head_.load(std::memory_order_acquire);
  }
  // Refusals numbered up to this are kept as the policy promises.
  uint64_t refusals_acked() const {
    // acquire: pairs with the stage's release.
    return refusals_acked_.load(std::memory_order_acquire);
  }
  bool IsAcked(const AckPosition& position) const {
    return confirmed_acked_below() > position.confirmed && refusals_acked() >= position.refused;
  }
  // Blocks until `position` is acknowledged (true) or the journal has failed (false: it never
  // will be). Any thread.
  [[nodiscard]] bool AwaitAcked(const AckPosition& position) const;

  // Any thread. True once an I/O error stopped the journal; status() then says which.
  bool failed() const {
    // acquire: pairs with Fail's release; the status written before it is visible.
    return failed_.load(std::memory_order_acquire);
  }
  // OK, or the I/O error that stopped the journal.
  absl::Status status() const;
  // Called once, on the stage's thread, when the journal fails. Set before the stage runs.
  void SetOnFatal(std::function<void(const absl::Status&)> on_fatal) {
    on_fatal_ = std::move(on_fatal);
  }

  // Parkers to wake: `self` is this stage's own (producers wake it after publishing into the
  // ring), `downstream` the reconciler's (woken when outcomes are acknowledged).
  void SetParkers(Parker* self, Parker* downstream) {
    self_ = self;
    downstream_ = downstream;
  }
  Parker* parker() const { return self_; }
  // Writes and syncs whatever is buffered. REQUIRES: the stage thread has stopped.
  void Flush();

  const JournalStageCounters& counters() const { return counters_; }

 private:
  // What the reconciler queues: an outcome, a hold change or a rule reload.
  struct Entry {
    enum class Kind : uint8_t { kOutcome, kHold, kRules };
    Kind kind = Kind::kOutcome;
    Outcome outcome;
    HoldChange hold;
    Sequence rules_from = 0;
    std::string rules_text;  // Empty (no allocation) except for a reload.
  };
  // turn == pos: free for the producer of position pos (refusal number pos + 1); pos + 1:
  // published; pos + capacity: read by the stage, free for the next lap.
  struct RefusalSlot {
    std::atomic<uint64_t> turn{0};
    uint64_t id = 0;
    int64_t refused_ns = 0;
    uint64_t fingerprint = 0;
    Reason reason = Reason::kNone;
  };

  int Gather();
  int GatherAccountRecords(int gathered) ABSL_LOCKS_EXCLUDED(account_mu_);
  int GatherRefusals(int gathered, char* record);
  void Commit(int gathered);
  void Fail(const absl::Status& status);
  // Publishes a change waiters must see (an acknowledgement or the failure) and wakes them.
  void WakeWaiters();

  const std::unique_ptr<journal::SegmentWriter> writer_;
  const AckPolicy policy_;
  InFlightRing* const ring_;
  const int64_t mono_to_unix_offset_ns_;
  const int batch_max_;
  moodycamel::ReaderWriterQueue<Entry> entries_;  // From the reconciler, in its order.
  const uint64_t refusal_mask_;
  const std::unique_ptr<RefusalSlot[]> refusals_;  // ring_capacity slots.
  Parker* self_ = nullptr;
  Parker* downstream_ = nullptr;
  std::function<void(const absl::Status&)> on_fatal_;

  // Owned by the stage thread.
  Sequence next_confirmed_;    // Next ring entry to journal.
  Sequence outcomes_written_;  // One past the last outcome added to the writer.
  uint64_t next_refusal_pos_ = 0;  // Refusals below this position were added to the writer.

  alignas(64) std::atomic<Sequence> read_below_;
  std::atomic<Sequence> confirmed_acked_below_;
  std::atomic<Sequence> outcomes_acked_below_;
  std::atomic<uint64_t> refusals_acked_{0};
  alignas(64) std::atomic<uint64_t> refusal_head_{0};  // Producers: next position to claim.
  std::atomic<uint64_t> operator_entries_taken_{0};
  // Bumped after every change of confirmed_acked_below_, refusals_acked_ or failed_: what
  // AwaitAcked waits on.
  std::atomic<uint32_t> wake_epoch_{0};
  std::atomic<bool> failed_{false};
  // Account records: queued under the mutex; numbers below account_records_posted_ were
  // queued (release: the stage's acquire load sees the queue's growth, read under the mutex).
  struct AccountRecordEntry {
    journal::RecordType type;
    uint8_t size = 0;
    char payload[journal::kAccountRecordBytesMax];
  };
  mutable absl::Mutex account_mu_;
  std::deque<AccountRecordEntry> account_records_ ABSL_GUARDED_BY(account_mu_);
  uint64_t account_records_queued_ ABSL_GUARDED_BY(account_mu_) = 0;
  std::atomic<uint64_t> account_records_posted_{0};
  uint64_t account_records_written_ = 0;  // Stage thread: added to the writer.
  std::atomic<uint64_t> account_records_acked_{0};
  absl::Status status_;  // Written once, before failed_ is released; then read-only.
  JournalStageCounters counters_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_JOURNAL_STAGE_JOURNAL_STAGE_H_
