// IdempotencyTable: remembers the answer given to each recent transaction id, so that a
// resubmitted id gets the original answer back and is applied at most once.
//
// The window: the table holds the last `window` claims (every Submit that passed the
// well-formedness checks makes one claim, duplicates included, except one the engine refuses
// BUSY because its in-flight ring is full: under overload those would crowd out the window). A resubmission is recognised as
// a duplicate while the original is among the last `window` claims counting the resubmission
// itself, i.e. while at most window - 2 claims came in between; older ids are forgotten and a
// resubmission is treated as new. With the default window of 2^20 and 100k transactions/s that
// is about 10 seconds of history. The journal (a later issue) extends this across restarts.
//
// Design: `window` nodes form a ring, handed out in ticket order (ticket = claim number, from 1).
// A node is linked at the head of its bucket's chain with one CAS, newest link first. Claiming
// id X walks X's chain and, if X is not there, CASes the bucket head from the head it walked
// from to the new node. Two racing claims of X CAS the same bucket word, so the loser re-walks,
// finds the winner and reports a duplicate: at most one claim of X succeeds. A node is recycled
// when its ticket falls out of the window; walkers validate each node with its `stamp` (seqlock
// style) and stop at the first recycled node, because what follows it is older.
//
// "Older" is exact up to racing claimers: a claimer that took its ticket before another but
// lost the CAS to it links in front of it, so a chain's tickets decrease except across such
// inversions, which span at most the number of threads claiming at once. A walk that stops at a
// recycled node can therefore miss an id only within that many claims of the window's edge.
//
// Thread safety: every method may be called from any number of threads at once. No locks, no
// allocation after construction. Each node field is an atomic; stores are `release` and loads
// `acquire`, which keeps every node access in program order (free on x86) and is what the
// stamp validation relies on.
#ifndef VOUCH_ENGINE_INGEST_IDEMPOTENCY_TABLE_H_
#define VOUCH_ENGINE_INGEST_IDEMPOTENCY_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
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
  // Stores the final answer for a kNew claim. Returns false if the claim's node was already
  // recycled (the owner held it for more than a whole window); counted in overruns().
  bool Record(uint64_t ticket, const StoredAnswer& answer);
  // Forgets a kNew claim that was answered BUSY, so that a retry is admitted.
  void Release(uint64_t ticket);
  // The newest final answer for `id`, if it is still in the window.
  std::optional<StoredAnswer> Find(uint64_t id) const;

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
  bool SetFinalWord(uint64_t ticket, uint64_t word);

  const size_t window_;
  const uint64_t node_mask_;
  const uint64_t bucket_mask_;
  std::unique_ptr<Node[]> nodes_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // Ticket of the newest node; 0 = empty.
  alignas(64) std::atomic<uint64_t> last_ticket_{0};
  alignas(64) std::atomic<uint64_t> overruns_{0};
};

StoredAnswer UnpackAnswer(uint64_t word, int64_t received_ns);

}  // namespace vouch

#endif  // VOUCH_ENGINE_INGEST_IDEMPOTENCY_TABLE_H_
