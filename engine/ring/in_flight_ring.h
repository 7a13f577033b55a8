// InFlightRing: the sequencer of the confirm path and the store of every confirmed transaction
// until reconciliation is done with it.
//
// Design (LMAX Disruptor with a Vyukov-style multi-producer claim): a power-of-two array of
// entries. The ring position of an entry *is* its sequence number (seq = position + 1), so
// numbering is gap-free and claiming a position is the only synchronisation on the ingest path.
// Consumers do not dequeue; each one walks the positions in order with its own cursor:
//
//   producers (any thread) --Claim/Publish--> [entry] <--Read-- fraud stage, ledger stage,
//                                                      <--Read/Free-- reconciler
//
// Thread safety:
//   - Claim/Publish: any number of producer threads, lock-free (one CAS per claim).
//   - IsPublished/At: any consumer thread. An entry's `payload` is written only by the producer
//     that claimed it and is read-only from Publish until Free.
//   - Free: the reconciler thread only, in position order. It frees an entry only after both
//     verifiers have returned their verdicts for it, which is how it knows no consumer still
//     reads it.
// Invariants:
//   - entry.turn == pos             : free for the producer that claims position pos.
//   - entry.turn == pos + 1         : published (readable) for position pos.
//   - entry.turn == pos + capacity  : freed; free for position pos + capacity.
//   - Positions are freed in order, so "full" is exactly head - freed == capacity.
#ifndef VOUCH_ENGINE_RING_IN_FLIGHT_RING_H_
#define VOUCH_ENGINE_RING_IN_FLIGHT_RING_H_

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/common/check.h"

#include "engine/types/history_record.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"

namespace vouch {

// Hand-off between a blocking held Submit (hybrid/sync policy, HeldAnswer::kInSubmit) and the
// reconciler. A transaction held with HeldAnswer::kLater stays kNotHeld: nobody waits on the
// entry, and its answer leaves with its Outcome.
enum class HeldState : uint32_t {
  kNotHeld = 0,
  kWaiting = 1,  // The submitter waits for the outcome.
  kReady = 2,    // The outcome is kept (ack policy) and in `held_outcome`; the submitter may read it.
  kDone = 3,     // The submitter has read it; the entry may be freed.
};

// What the producer writes and every consumer reads.
struct InFlightPayload {
  Transaction txn;
  int64_t confirmed_ns = 0;
  int64_t deadline_ns = 0;
  bool held = false;
  uint64_t origin = 0;  // The submitter's routing tag, copied into the Outcome.
  bool at_risk = false;  // Counted in the RiskTable until its outcome is decided.
  // Held: the IdempotencyTable claim the reconciler records the final answer under once the
  // outcome is kept. 0 when not held (the answer was recorded at Submit).
  uint64_t idempotency_ticket = 0;
};

// Whether the ledger may still reserve a transaction. The ledger stage takes the gate
// (kOpen -> kTaken) before it reserves; the reconciler closes it (kOpen -> kClosed) when it
// decides a transaction the ledger has not judged yet. One CAS each on the same word, so exactly
// one of them wins: a transaction decided first is never reserved (it moves no money), and one
// the ledger took first is reserved, and its outcome waits for the ledger's verdict to say
// whether that reservation is reversed.
enum class LedgerGate : uint32_t { kOpen = 0, kTaken = 1, kClosed = 2 };

// Reconciler-owned working state; only the reconciler thread touches it. The producer resets it
// before Publish, which happens-before the reconciler's first read.
struct ReconcileState {
  HistoryRecord record;       // Verdicts and outcome so far; mirrored to the history ring.
  bool emitted = false;       // The outcome went to the sink or the poll queue.
  bool settle_owed = false;   // The ledger reserved funds and still needs Commit or Void.
  // Decided after the ledger took the gate but before its verdict came: the outcome is neither
  // journaled nor told until that verdict says whether a reservation is to be reversed.
  bool awaiting_ledger = false;
};

struct alignas(64) InFlightEntry {
  std::atomic<uint64_t> turn{0};
  InFlightPayload payload;
  ReconcileState reconcile;
  // Written by the reconciler (kReady) and the submitter (kDone); see HeldState.
  std::atomic<HeldState> held_state{HeldState::kNotHeld};
  Outcome held_outcome;  // Written before kReady is released; read after it is acquired.
  // Taken by the ledger stage or closed by the reconciler; reset to kOpen by the reconciler
  // before Free (published to the next lap by Free's release and that producer's Publish).
  std::atomic<LedgerGate> ledger_gate{LedgerGate::kOpen};
};

class InFlightRing {
 public:
  // REQUIRES: capacity is a power of two >= 2.
  explicit InFlightRing(size_t capacity);
  InFlightRing(const InFlightRing&) = delete;
  InFlightRing& operator=(const InFlightRing&) = delete;

  size_t capacity() const { return capacity_; }

  // Makes `first_seq` the next sequence number claimed (recovery resumes numbering where the
  // journal left off). REQUIRES: nothing claimed yet; before the ring is shared.
  void StartAt(Sequence first_seq);

  // Claims the next position. Returns nullptr when the ring is full (the caller answers BUSY).
  // On success *seq is the claimed sequence number and the caller must fill the payload and
  // reconcile state, then Publish. Never blocks.
  InFlightEntry* Claim(Sequence* seq);
  // A hint, for refusing early: true when the next position still holds an entry of the
  // previous lap. Racing producers and the reconciler can make the next Claim disagree.
  bool LooksFull() const {
    // relaxed: a hint; Claim decides with its own acquire.
    const uint64_t pos = head_.load(std::memory_order_relaxed);
    return static_cast<int64_t>(entries_[pos & mask_].turn.load(std::memory_order_relaxed) -
                                pos) < 0;
  }
  // Makes a claimed entry visible to the consumers.
  void Publish(InFlightEntry* entry, Sequence seq) {
    // release: a consumer that acquires turn sees the payload. The producer then wakes the
    // stages (Parker::Unpark), whose fence orders this store before its read of the park state.
    entry->turn.store(seq, std::memory_order_release);  // seq == pos + 1
  }

  InFlightEntry& At(Sequence seq) { return entries_[(seq - 1) & mask_]; }
  const InFlightEntry& At(Sequence seq) const { return entries_[(seq - 1) & mask_]; }

  // True once the producer of `seq` published it (and it has not been freed since).
  bool IsPublished(Sequence seq) const {
    // acquire: pairs with Publish, so the payload is fully written when this returns true. A
    // stage's last look for work before parking is ordered by the Parker's fence.
    return At(seq).turn.load(std::memory_order_acquire) == seq;
  }

  // The reconciler returns `seq` to the producers. REQUIRES: seq == oldest unfreed sequence.
  void Free(Sequence seq) {
    InFlightEntry& entry = At(seq);
    // Freeing out of order would hand a live transaction's entry to a new one.
    VOUCH_CHECK(entry.turn.load(std::memory_order_relaxed) == seq,
                "entries are freed in sequence order, once, after they were published");
    // release: every read of this entry by the consumers happens-before the next producer's writes.
    entry.turn.store(seq - 1 + capacity_, std::memory_order_release);
  }

  // The next sequence a producer will claim, minus one: the number of sequences handed out.
  Sequence claimed() const {
    // relaxed: a statistic; callers needing the entries themselves go through IsPublished.
    return head_.load(std::memory_order_relaxed);
  }

 private:
  const size_t capacity_;
  const uint64_t mask_;
  std::unique_ptr<InFlightEntry[]> entries_;
  // Producers contend on head_; keep it away from the read-mostly fields above.
  alignas(64) std::atomic<uint64_t> head_{0};
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_RING_IN_FLIGHT_RING_H_
