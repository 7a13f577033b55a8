// AccountActivity: the recent sequenced transactions of every account, newest first, so that a
// query by account reads one account's transactions in O(limit) rather than scanning.
//
// Design. A seq-indexed ring of compact entries (seq, id, both accounts, amount, currency,
// received time, held): the entry of `seq` lives at slot seq % capacity, so the ring keeps the
// last `capacity` sequence numbers, like the history ring beside it. Each entry carries two
// links, one per direction: the next older seq of its source account and of its destination
// account. An account's chain starts at its newest-seq word, which the caller owns and passes
// in: the engine keeps it in the account's own record (AccountRecord::newest_activity_seq), so
// every account has one, found by the lookup the confirm path makes anyway, and there is no
// table of heads to fill. The chain is a list sorted by seq, strictly descending, that only
// grows at insertion (entries are never unlinked; they age out when the ring overwrites them,
// and a walk ends where a link points to a seq the ring no longer holds). Inserting keeps the
// order even when two Submit threads admit transactions of one account at once and the higher
// seq links first: the lower one is inserted below it (a CAS on the link of its neighbour, as
// in an insertion-only lock-free sorted list). The entries it walks past are those of that
// account admitted while it was being admitted, so the walk is a few entries at most.
//
// Why not keep the chain in link order (an exchange on the newest-seq word): a lower seq linked
// after a higher one would then sit above it, and a page of `limit` could miss a newer entry
// deeper in the chain with no way for the reader to know. Sorted insertion costs one more CAS in
// that rare race and keeps every page exact.
//
// Why at admission, by the Submit thread, and not by a stage that sees seqs in order (which
// would need no CAS): a query must show a transaction from the moment it is confirmed, also
// while the verifiers are stalled, which is exactly when PENDING and HELD matter.
//
// Why a slot's entry is stable while it is linked into. The entry of `seq` is written by the
// Submit thread that claimed `seq` in the in-flight ring, before it publishes it. capacity >=
// in_flight_capacity and the in-flight ring frees in seq order, so seq + capacity cannot be
// claimed before `seq` is published (and freed): the writers of one slot are serialized by the
// in-flight ring, and every entry newer than a seq still being admitted keeps its slot until
// that admission is done. REQUIRES (Record): that protocol; the engine's Admit follows it.
//
// Memory: 80 bytes a ring slot (version, seven data words, two links), plus the 8-byte word
// per account that the caller keeps.
// Nothing is persisted: the index starts empty at each start (docs/JOURNAL.md, Replay).
//
// Thread safety. Record: any number of Submit threads, each for a seq it owns (see above);
// lock-free, no allocation (a few dozen stores and one CAS per direction). Read: any thread,
// lock-free; it validates each entry seqlock-style against a concurrent overwrite. Memory
// ordering: every word is an atomic; the data words of an entry are written between an odd and
// an even version (release stores, acquire loads, as in SeqlockRing); a link is stored with
// release after the entry's data and is made reachable by a release CAS (on the newest-seq word
// or on the neighbour's link), so a reader that follows a link (acquire) sees the entry whole.
#ifndef VOUCH_ENGINE_HISTORY_ACCOUNT_ACTIVITY_H_
#define VOUCH_ENGINE_HISTORY_ACCOUNT_ACTIVITY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "engine/types/results.h"
#include "engine/types/transaction.h"

namespace vouch {

// One sequenced transaction as the index keeps it. Trivially copyable, seven words.
struct ActivityEntry {
  Sequence seq = 0;  // Non-zero once written.
  uint64_t id = 0;
  uint64_t source_account = 0;
  uint64_t destination_account = 0;
  int64_t amount_minor = 0;
  int64_t received_ns = 0;  // Engine (monotonic) time Submit received it.
  CurrencyCode currency = 0;
  bool held = false;  // Held by the policy until verified (hybrid / sync).
};
static_assert(std::is_trivially_copyable_v<ActivityEntry>);

// What a Read asks for. Times are engine (monotonic) ns, inclusive; 0 leaves that end open.
struct ActivityQuery {
  uint64_t account = 0;
  int64_t since_ns = 0;
  int64_t until_ns = 0;
  Sequence before_seq = 0;  // Only entries with seq below this (0: no bound): the next page.
  size_t limit = 0;         // Capped at AccountActivity::kLimitMax.
};

struct ActivityHit {
  ActivityEntry entry;
  bool debit = false;  // The account is the source (money leaves it); else the destination.
};

struct ActivityReport {
  // More entries may match beyond those returned: the limit was reached, or the walk visited
  // kVisitMax entries (skipping newer ones outside the range). Ask again with before_seq set
  // to the last returned seq.
  bool more = false;
  Sequence next_before_seq = 0;  // With `more`: the before_seq of the next page.
};

class AccountActivity {
 public:
  static constexpr size_t kLimitMax = 500;    // Entries per Read.
  static constexpr size_t kVisitMax = 65536;  // Chain entries one Read visits at most.
  // Received times are read before the seq is claimed, so across Submit threads they are in
  // seq order only up to the time between the two (a preempted thread can take longer). The
  // walk ends at the first entry received this long before since_ns.
  static constexpr int64_t kReceivedSkewNs = 10'000'000;

  // `capacity` (rounded up to a power of two) must be >= the in-flight ring's capacity (see
  // the class comment).
  explicit AccountActivity(size_t capacity);
  AccountActivity(const AccountActivity&) = delete;
  AccountActivity& operator=(const AccountActivity&) = delete;

  // Links `entry` into both accounts' chains, whose newest-seq words are `source_newest_seq`
  // (entry.source_account's) and `destination_newest_seq`: one word per account, the same
  // word for every entry of it, 0 before its first. REQUIRES: the caller owns entry.seq (see
  // the class comment); entry.seq != 0, the two accounts non-zero and different.
  void Record(const ActivityEntry& entry, std::atomic<uint64_t>& source_newest_seq,
              std::atomic<uint64_t>& destination_newest_seq);

  // Appends up to query.limit (capped) entries of query.account, whose newest-seq word is
  // `newest_seq` (null: an unknown account, nothing found), to `out`, newest (highest seq)
  // first. Allocates only if `out` has no room.
  ActivityReport Read(const ActivityQuery& query, const std::atomic<uint64_t>* newest_seq,
                      std::vector<ActivityHit>* out) const;

  size_t capacity() const { return capacity_; }

 private:
  static constexpr size_t kWords = (sizeof(ActivityEntry) + 7) / 8;
  enum Direction { kSource = 0, kDestination = 1 };
  struct Slot {
    std::atomic<uint64_t> version{0};  // Odd while the entry's data is being written.
    std::atomic<uint64_t> words[kWords];
    std::atomic<uint64_t> link[2];  // By Direction: the next older seq of that account; 0: end.
  };
  struct Snapshot {
    ActivityEntry entry;
    uint64_t link[2];
  };

  Slot& SlotOf(Sequence seq) const { return slots_[seq & mask_]; }
  static constexpr size_t kSourceWord = offsetof(ActivityEntry, source_account) / 8;
  std::atomic<uint64_t>& LinkOf(Sequence seq, uint64_t account) const;
  void Link(std::atomic<uint64_t>& newest_seq, uint64_t account, Direction direction,
            Sequence seq);
  // The entry of `seq` and its links, or false if the slot holds another seq (overwritten or
  // never written).
  bool Load(Sequence seq, Snapshot* out) const;

  const size_t capacity_;
  const uint64_t mask_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_HISTORY_ACCOUNT_ACTIVITY_H_
