// JournalStage: the agent that makes confirmations and outcomes durable.
//
// It reads the in-flight ring in sequence order, as the verifiers do, and journals each confirmed
// transaction; it takes the reconciler's outcomes (already in sequence order), operators' hold
// releases and ingest's stored refusals from queues. Refusals have no sequence number: ingest
// numbers them itself, in a bounded ring of its own read in number order (the in-flight ring's
// protocol), so that "refusals acknowledged up to n" is exact; a full ring is ingest's to refuse
// (BUSY) rather than wait. One turn gathers what is ready into the segment writer's buffer, writes
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
// Failure: an I/O error on the journal is fatal. The stage prints it and aborts the process
// rather than go on confirming what it cannot keep (TigerBeetle does the same); recovery on the
// next start finds every acknowledged record.
//
// Thread safety: DoWork runs on the stage's own thread. RecordOutcome is called by the
// reconciler thread only (single producer); RecordRelease and RecordRefusal by any thread. The
// *_below and refusals_* accessors and AwaitAcked may be called from any thread.
#ifndef VOUCH_ENGINE_JOURNAL_STAGE_JOURNAL_STAGE_H_
#define VOUCH_ENGINE_JOURNAL_STAGE_JOURNAL_STAGE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "concurrentqueue/concurrentqueue.h"
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
  JournalStage(std::unique_ptr<journal::SegmentWriter> writer, AckPolicy policy,
               InFlightRing* ring, Sequence confirmed_below, Sequence outcomes_below,
               int64_t mono_to_unix_offset_ns, size_t queue_capacity, int batch_max);

  int DoWork() override;
  std::string_view role_name() const override { return "vouch-journal"; }

  // OutcomeJournal (reconciler thread).
  bool RecordOutcome(const Outcome& outcome) override;
  Sequence outcomes_acked_below() const override {
    // acquire: pairs with the stage's release; the outcome is kept before it is told.
    return outcomes_acked_below_.load(std::memory_order_acquire);
  }
  Sequence read_below() const override {
    // acquire: pairs with the stage's release; its reads of those entries are done.
    return read_below_.load(std::memory_order_acquire);
  }

  // Any thread. False if the queue is full (the caller retries or reports it).
  bool RecordRelease(uint64_t account, int64_t now_ns);
  // Any thread: queues the refusal of `id` and returns its number (from 1), for an
  // AckPosition; 0 if the refusal ring is full (the caller answers BUSY). Never allocates.
  uint64_t RecordRefusal(uint64_t id, Reason reason, int64_t now_ns);
  // Refusals numbered up to this were queued (an answer that repeats a queued refusal waits for
  // at least this much).
  uint64_t refusals_queued() const {
    // acquire: a caller that read a stored refusal's answer sees at least its number.
    return refusal_head_.load(std::memory_order_acquire);
  }

  // Confirmed transactions below this are kept as the policy promises.
  Sequence confirmed_acked_below() const {
    // acquire: pairs with the stage's release.
    return confirmed_acked_below_.load(std::memory_order_acquire);
  }
  // Refusals numbered up to this are kept as the policy promises.
  uint64_t refusals_acked() const {
    // acquire: pairs with the stage's release.
    return refusals_acked_.load(std::memory_order_acquire);
  }
  bool IsAcked(const AckPosition& position) const {
    return confirmed_acked_below() > position.confirmed && refusals_acked() >= position.refused;
  }
  // Blocks until `position` is acknowledged. Any thread.
  void AwaitAcked(const AckPosition& position) const;

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
  struct Release {
    uint64_t account;
    int64_t released_ns;
  };
  // turn == pos: free for the producer of position pos (refusal number pos + 1); pos + 1:
  // published; pos + capacity: read by the stage, free for the next lap.
  struct RefusalSlot {
    std::atomic<uint64_t> turn{0};
    uint64_t id = 0;
    int64_t refused_ns = 0;
    Reason reason = Reason::kNone;
  };

  int Gather();
  int GatherRefusals(int gathered, char* record);
  void Commit(int gathered);
  [[noreturn]] void Fatal(const absl::Status& status);

  const std::unique_ptr<journal::SegmentWriter> writer_;
  const AckPolicy policy_;
  InFlightRing* const ring_;
  const int64_t mono_to_unix_offset_ns_;
  const int batch_max_;
  moodycamel::ReaderWriterQueue<Outcome> outcomes_;
  moodycamel::ConcurrentQueue<Release> releases_;
  const uint64_t refusal_mask_;
  const std::unique_ptr<RefusalSlot[]> refusals_;
  std::optional<Release> unadded_release_;  // Dequeued, refused by a full writer; stage thread.
  Parker* self_ = nullptr;
  Parker* downstream_ = nullptr;

  // Owned by the stage thread.
  Sequence next_confirmed_;    // Next ring entry to journal.
  Sequence outcomes_written_;  // One past the last outcome added to the writer.
  uint64_t next_refusal_pos_ = 0;  // Refusals below this position were added to the writer.

  alignas(64) std::atomic<Sequence> read_below_;
  std::atomic<Sequence> confirmed_acked_below_;
  std::atomic<Sequence> outcomes_acked_below_;
  std::atomic<uint64_t> refusals_acked_{0};
  alignas(64) std::atomic<uint64_t> refusal_head_{0};  // Producers: next position to claim.
  JournalStageCounters counters_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_JOURNAL_STAGE_JOURNAL_STAGE_H_
