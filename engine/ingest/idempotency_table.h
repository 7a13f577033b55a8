// IdempotencyTable: remembers the answer given to each transaction id, with a fingerprint of the
// transaction's fields, for at least `retention_ns` after the id was first seen, so that a
// resubmitted id gets the original answer back (or, with other fields, is told so) and is
// applied at most once.
//
// Retention is a duration, and the table size only bounds it. `capacity` nodes form a ring,
// handed out in ticket order (ticket = claim number, from 1); the ring's cursor is the last
// ticket taken. A new claim looks at the node of the next ticket and recycles it only if its
// owner is gone: released (it holds no answer), never used, or final and first seen at least
// `retention_ns` ago (received_ns is stored per node). A node whose answer is final and younger
// than that is never recycled: the claim is refused (kRetention, counted, BUSY
// idempotency_retention in the engine) and the cursor is not moved, so the refusal takes no
// capacity and the next claim looks at the same, oldest node again. The table therefore holds
// rate x retention ids; when the rate is higher than capacity / retention, new ids are refused
// until the oldest ages out, and no id is ever forgotten early. A node that cannot be recycled
// for another reason (its answer is pending: a held transaction under verification; or the node
// it links to is still live, see below) is skipped: the cursor moves past it and it survives
// another lap. When a whole ring of nodes is skipped, the claim is refused kFull (counted).
// With retention_ns 0, an id is kept until its node comes round again (the old "window").
//
// Memory: one node is 48 bytes (six 8-byte atomics) plus two 8-byte bucket heads, 64 bytes per
// remembered id; holding `retention` at a rate of R ids/s needs R x retention x 64 bytes (24 h
// at 100 ids/s: 553 MB; 100 M ids: 6.4 GB).
//
// Capacity taken: a duplicate or an in-flight retry is found by a probe before any ticket is
// taken, so it takes none. A claim the engine answers BUSY after claiming (the ring filled in the
// meantime, a risk cap, the journal's refusal queue) is Released: its node stays linked in its
// id's chain, marked released, and the retry of the same id finds it there and revives it in
// place (one CAS, released -> pending, same ticket, new received_ns and fingerprint), so any
// number of BUSY retries of one id take one node between them, and a node released for good is
// recyclable as soon as the cursor reaches it (no retention: it holds no answer). Only a claim
// that lost a race with a concurrent claim of the same id (it took a node, then found the other
// claim while linking) takes a node that it releases at once, unlinked.
//
// Content check: every node stores a 64-bit fingerprint of the transaction's fields
// (ContentFingerprint, engine/types/transaction.h); a duplicate returns the original's, and the
// caller compares. Two different field sets collide with probability 2^-64 per resubmission
// with other fields: such a resubmission would get the original answer (the behaviour before
// fingerprints), never a second application.
//
// Design: a node is linked at the head of its bucket's chain with one CAS, newest link first.
// Claiming id X walks X's chain and, if X is not there, CASes the bucket head from the head it
// walked from to the new node. Two racing claims of X CAS the same bucket word, so the loser
// re-walks, finds the winner and reports a duplicate: at most one claim of X succeeds. Reviving
// a released node of X is a CAS of its answer word from "released under ticket t" to "pending
// under ticket t": two racing revivers, or a reviver and a fresh claimer (whose walk saw the
// same released node, and so tries to revive it rather than link a new one), are decided by
// that CAS. Walkers validate each node with its `stamp` (seqlock style) and stop at the first
// recycled node.
//
// Recycling is checked, never blind. A claimer takes the node of its ticket only if its owner is
// gone as above, its ticket is older than the claimer's (else a newer claimer already lapped
// this one), it is not being written, and the node it links to is recycled already (so a walk
// that stops at a recycled node misses no live one). The commit point is a CAS of the node's
// answer word, from the word the checks saw to "pending under the claimer's ticket"; the same
// word is what a reviver CASes, so a node is either revived or recycled, never both. Answer
// words are unique per owner (a confirmed answer carries its seq; every other word carries the
// owner's ticket), so that CAS cannot succeed on a word an intervening owner happened to
// repeat. Between that CAS and the new stamp, walkers see a pending word of another ticket than
// the node's stamp, and treat the node as recycled.
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
  int64_t received_ns = 0;   // When the id was first seen (the engine's monotonic clock).
  uint64_t fingerprint = 0;  // ContentFingerprint of the first submission's fields.
};

class IdempotencyTable {
 public:
  enum class ClaimKind {
    kNew,        // First claim of this id: the caller owns `ticket`.
    kDuplicate,  // `answer` is the original answer (with its fingerprint).
    kInFlight,   // Another Submit of this id is still being answered.
    kFull,       // No node could be recycled: too many claims in flight. Counted.
    kRetention,  // The oldest node is younger than the retention: refused, counted.
  };
  struct Claim {
    ClaimKind kind;
    uint64_t ticket = 0;  // Set for kNew.
    StoredAnswer answer;  // Set for kDuplicate.
  };

  // `capacity` is rounded up to a power of two. `retention_ns` >= 0.
  explicit IdempotencyTable(size_t capacity, int64_t retention_ns = 0);
  ~IdempotencyTable();
  IdempotencyTable(const IdempotencyTable&) = delete;
  IdempotencyTable& operator=(const IdempotencyTable&) = delete;

  size_t capacity() const { return capacity_; }
  size_t window() const { return capacity_; }  // The former name.
  int64_t retention_ns() const { return retention_ns_; }

  // `now_ns` is the id's first-seen time if it is new, and the clock the retention is measured
  // against. REQUIRES: id != 0.
  Claim ClaimId(uint64_t id, uint64_t fingerprint, int64_t now_ns);
  // Stores the final answer for a kNew claim (a pending node is never recycled). The answer's
  // received_ns and fingerprint are the claim's; those of `answer` are ignored.
  void Record(uint64_t ticket, const StoredAnswer& answer);
  // Gives a kNew claim back, answered BUSY: a retry of the same id revives the node (see the
  // class comment), and otherwise it is recyclable at once.
  void Release(uint64_t ticket);
  // The newest final answer for `id`, if it is still remembered.
  std::optional<StoredAnswer> Find(uint64_t id) const;
  // Recovery: stores `answer` as the newest for `id`, without looking for an older one (the
  // journal's answers are replayed oldest first, and an id that was forgotten may come back
  // with a newer answer). False if no node could be recycled: the table cannot hold the
  // retention of what is restored (a node younger than `retention_ns` at `now_ns` is never
  // recycled). REQUIRES: id != 0; no other thread uses the table.
  [[nodiscard]] bool Restore(uint64_t id, const StoredAnswer& answer, int64_t now_ns);

  // First-seen time of the oldest id still remembered, as far as the ring's order tells (the
  // node the cursor reaches next; a skipped node may be older): duplicates of every id first
  // seen since are detected. nullopt while the table is empty. Approximate while claims run.
  std::optional<int64_t> OldestReceivedNs() const;

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
  // Claims refused kRetention.
  uint64_t retention_refusals() const {
    // relaxed: a statistic.
    return retention_refusals_.load(std::memory_order_relaxed);
  }

 private:
  struct Node;
  struct Match {
    bool found = false;
    uint64_t answer_word = 0;
    int64_t received_ns = 0;
    uint64_t fingerprint = 0;
    uint64_t released_ticket = 0;  // A released node for the id, newer than any live one.
  };
  enum class Verdict { kRecycle, kSkip, kTooYoung };

  std::atomic<uint64_t>& BucketFor(uint64_t id) const;
  Node& NodeFor(uint64_t ticket) const;
  // Walks the chain from `from` (newest) down to, not including, `until`, looking for a live
  // (not released) node for `id`.
  Match Walk(uint64_t id, uint64_t from, uint64_t until) const;
  // Takes a ticket whose node's owner is gone and writes the node's id, fingerprint and a
  // pending answer; the node stays marked as being written (invisible to walkers) until the
  // caller publishes its stamp. 0 if it found no such node; `*kind` then says why.
  uint64_t TakeNode(uint64_t id, uint64_t fingerprint, int64_t received_ns, int64_t now_ns,
                    ClaimKind* kind);
  // Whether the owner of `node` (stamp `stamp`, answer `word`) is gone, for `ticket`.
  Verdict Judge(const Node& node, uint64_t stamp, uint64_t word, uint64_t ticket,
                int64_t now_ns) const;
  // Revives the released node of `ticket` for a retry of its id; false if it is not released.
  bool Revive(uint64_t ticket, uint64_t fingerprint, int64_t received_ns);
  void SetFinalWord(uint64_t ticket, uint64_t word);

  const size_t capacity_;
  const int64_t retention_ns_;
  const uint64_t node_mask_;
  const uint64_t bucket_mask_;
  std::unique_ptr<Node[]> nodes_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // Ticket of the newest node; 0 = empty.
  std::function<void(uint64_t)> claim_pause_for_test_;
  alignas(64) std::atomic<uint64_t> last_ticket_{0};  // The cursor: the last ticket taken.
  alignas(64) std::atomic<uint64_t> overruns_{0};
  std::atomic<uint64_t> retention_refusals_{0};
};

StoredAnswer UnpackAnswer(uint64_t word, int64_t received_ns, uint64_t fingerprint);

}  // namespace vouch

#endif  // VOUCH_ENGINE_INGEST_IDEMPOTENCY_TABLE_H_
