// IdempotencyTable: remembers the answer given to each recent transaction id, so that a
// resubmitted id gets the original answer back and is applied at most once.
//
// The window: `window` nodes form a ring, handed out in ticket order (ticket = claim number, from
// 1). Every first claim of an id takes a ticket; a duplicate or an in-flight retry is found by a
// probe before any ticket is taken, so it takes none. A node is recycled by the claim whose
// ticket is a whole window after the node's own, so a stored answer is found while fewer than
// `window` tickets were taken after its own: normally window - 1 claims in between, fewer only
// when a claimer held between its ticket and its node (preempted) wrote the node late, or when an
// answer was recorded long after its claim (a held transaction verified while most of a window of
// claims went by: a pending claim is never recycled, but once recorded it is as old as its
// ticket). Claims the engine answered BUSY take a ticket too, so the engine refuses early under
// overload. With the
// default window of 2^20 and 100k transactions/s that is about 10 seconds of history; the
// journal (engine/journal) carries the answers across restarts.
//
// Design: a node is linked at the head of its bucket's chain with one CAS, newest link first.
// Claiming id X walks X's chain and, if X is not there, CASes the bucket head from the head it
// walked from to the new node. Two racing claims of X CAS the same bucket word, so the loser
// re-walks, finds the winner and reports a duplicate: at most one claim of X succeeds. Walkers
// validate each node with its `stamp` (seqlock style) and stop at the first recycled node.
//
// Recycling is checked, never blind. A claimer takes the node of its ticket with a CAS from the
// stamp of the node's current owner, and only if that owner is gone: its ticket is older than
// the claimer's (else a newer claimer already lapped this one), it is not being written, its
// answer is not pending (a claim still being answered, such as a held transaction under
// verification, is never forgotten), and the node it links to is recycled already (so a walk
// that stops at a recycled node misses no live one). Otherwise the claimer takes the next ticket.
// When no node of a whole window of tickets can be recycled, the claim is refused (kFull,
// counted): the window is smaller than the claims in flight.
//
// Thread safety: every method may be called from any number of threads at once, except Restore
// (recovery, before the table is shared). No locks, no allocation after construction. Each node
// field is an atomic; stores are `release` and loads `acquire`, which keeps every node access in
// program order (free on x86) and is what the stamp validation relies on.
#ifndef VOUCH_ENGINE_INGEST_IDEMPOTENCY_TABLE_H_
#define VOUCH_ENGINE_INGEST_IDEMPOTENCY_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "engine/types/results.h"

namespace vouch {

// The final answer stored for an id. The deadline is not stored: it is received_ns plus the
// engine's verification deadline.
struct StoredAnswer {
  ConfirmStatus status = ConfirmStatus::kRejected;
  Reason reason = Reason::kNone;
  bool held = false;
  Sequence seq = 0;
  int64_t received_ns = 0;
};

class IdempotencyTable {
 public:
  enum class ClaimKind {
    kNew,        // First claim of this id in the window: the caller owns `ticket`.
    kDuplicate,  // `answer` is the original answer.
    kInFlight,   // Another Submit of this id is still being answered.
    kFull,       // No node could be recycled: too many claims in flight. Counted.
  };
  struct Claim {
    ClaimKind kind;
    uint64_t ticket = 0;  // Set for kNew.
    StoredAnswer answer;  // Set for kDuplicate.
  };

  // `window` is rounded up to a power of two.
  explicit IdempotencyTable(size_t window);
  ~IdempotencyTable();
  IdempotencyTable(const IdempotencyTable&) = delete;
  IdempotencyTable& operator=(const IdempotencyTable&) = delete;

  size_t window() const { return window_; }

  // REQUIRES: id != 0.
  Claim ClaimId(uint64_t id, int64_t received_ns);
  // Stores the final answer for a kNew claim (a pending node is never recycled).
  void Record(uint64_t ticket, const StoredAnswer& answer);
  // Forgets a kNew claim that was answered BUSY, so that a retry is admitted.
  void Release(uint64_t ticket);
  // The newest final answer for `id`, if it is still in the window.
  std::optional<StoredAnswer> Find(uint64_t id) const;
  // Recovery: stores `answer` as the newest for `id`, without looking for an older one (the
  // journal's answers are replayed oldest first, and an id that the window had forgotten may
  // come back with a newer answer). False if no node could be recycled.
  // REQUIRES: id != 0; no other thread uses the table.
  [[nodiscard]] bool Restore(uint64_t id, const StoredAnswer& answer);

  // Test only: called by a claimer after it took `ticket` and before it writes the ticket's
  // node, so that a test can hold it there (forced preemption). Set before the table is shared.
  void SetClaimPauseForTest(std::function<void(uint64_t ticket)> pause) {
    claim_pause_for_test_ = std::move(pause);
  }

  // Claims refused kFull.
  uint64_t overruns() const {
    // relaxed: a statistic.
    return overruns_.load(std::memory_order_relaxed);
  }

 private:
  struct Node;
  struct Match {
    bool found = false;
    uint64_t answer_word = 0;
    int64_t received_ns = 0;
  };

  std::atomic<uint64_t>& BucketFor(uint64_t id) const;
  Node& NodeFor(uint64_t ticket) const;
  // Walks the chain from `from` (newest) down to, not including, `until`, looking for a live
  // (not released) node for `id`.
  Match Walk(uint64_t id, uint64_t from, uint64_t until) const;
  // Takes a ticket whose node's owner is gone and writes the node's id and a pending answer;
  // the node stays marked as being written (invisible to walkers) until the caller publishes
  // its stamp. 0 if a whole window of tickets found no such node.
  uint64_t TakeNode(uint64_t id, int64_t received_ns);
  bool OwnerGone(const Node& node, uint64_t stamp, uint64_t ticket) const;
  void SetFinalWord(uint64_t ticket, uint64_t word);

  const size_t window_;
  const uint64_t node_mask_;
  const uint64_t bucket_mask_;
  std::unique_ptr<Node[]> nodes_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // Ticket of the newest node; 0 = empty.
  std::function<void(uint64_t)> claim_pause_for_test_;
  alignas(64) std::atomic<uint64_t> last_ticket_{0};
  alignas(64) std::atomic<uint64_t> overruns_{0};
};

StoredAnswer UnpackAnswer(uint64_t word, int64_t received_ns);

}  // namespace vouch

#endif  // VOUCH_ENGINE_INGEST_IDEMPOTENCY_TABLE_H_
