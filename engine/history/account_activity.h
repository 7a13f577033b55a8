// AccountActivity: the recent sequenced transactions of every account, newest first, so that a
// query by account reads one account's transactions in O(limit) rather than scanning.
//
// Design. A seq-indexed ring of compact entries (seq, id, both accounts, amount, currency,
// received time, held): the entry of `seq` lives at slot seq % capacity, so the ring keeps the
// last `capacity` sequence numbers, like the history ring beside it. Each entry carries two
// links, one per direction: the next older seq of its source account and of its destination
// account. An account's chain starts at its newest-seq word (AccountHeads) and is a list sorted
// by seq, strictly descending, that only grows at insertion (entries are never unlinked; they
// age out when the ring overwrites them, and a walk ends where a link points to a seq the ring
// no longer holds). Inserting keeps the order even when two Submit threads admit transactions
// of one account at once and the higher seq links first: the lower one is inserted below it
// (a CAS on the link of its neighbour, as in an insertion-only lock-free sorted list). The
// entries it walks past are those of that account admitted while it was being admitted, so the
// walk is a few entries at most.
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
// When an account cannot get a newest-seq word (AccountHeads is full: more distinct accounts
// than its capacity ever transacted), its entries are written unchained and counted
// (unchained()). A query for an account with no word then falls back to a newest-first scan
// of at most kScanSlotsMax slots of the ring, and says so (ActivityReport::scanned, and
// scan_complete when the scan covered the whole ring). Nothing is lost silently.
//
// Memory: 80 bytes a ring slot (version, seven data words, two links) and 16 a head slot.
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

// Per-account newest linked seq: a bounded, lock-free open-addressing table of account ->
// word. Slots are claimed once (CAS on the key) and never freed. It moves into the account
// record of the account directory (engine/accounts) when that lands: the index needs only
// NewestSeqWord / FindNewestSeqWord of it.
//
// Thread safety: any thread, lock-free. Invariant: an account, once it has a slot, finds the
// same slot forever (its probe sequence is fixed and keys are never removed), so an account is
// either always chained or never.
class AccountHeads {
 public:
  // Probes per lookup before the table counts as full for an account.
  static constexpr size_t kProbesMax = 64;

  // `capacity` is rounded up to a power of two (at least kProbesMax).
  explicit AccountHeads(size_t capacity);
  AccountHeads(const AccountHeads&) = delete;
  AccountHeads& operator=(const AccountHeads&) = delete;

  // `account`'s newest-seq word (0: no entry yet), claiming a slot if it has none; null when
  // none of its kProbesMax slots is free. REQUIRES: account != 0.
  std::atomic<uint64_t>* NewestSeqWord(uint64_t account);
  // A hint: starts loading `account`'s home slot, so that two lookups overlap their misses.
  void Prefetch(uint64_t account) const { __builtin_prefetch(&slots_[Home(account)], 1); }
  // The word, if `account` has a slot. Never claims one.
  const std::atomic<uint64_t>* FindNewestSeqWord(uint64_t account) const;
  size_t capacity() const { return capacity_; }

 private:
  struct Slot {
    std::atomic<uint64_t> account{0};  // 0: free. Written once, by the CAS that claims it.
    std::atomic<uint64_t> newest_seq{0};
  };
  size_t Home(uint64_t account) const;

  const size_t capacity_;
  const size_t mask_;
  std::unique_ptr<Slot[]> slots_;
};

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
  bool scanned = false;          // The account has no chain (see the class comment).
  bool scan_complete = false;    // With `scanned`: the scan covered the whole ring.
};

class AccountActivity {
 public:
  static constexpr size_t kLimitMax = 500;    // Entries per Read.
  static constexpr size_t kVisitMax = 65536;  // Chain entries one Read visits at most.
  static constexpr size_t kScanSlotsMax = 1 << 16;  // Ring slots one fallback scan reads.
  // Received times are read before the seq is claimed, so across Submit threads they are in
  // seq order only up to the time between the two (a preempted thread can take longer). The
  // walk ends at the first entry received this long before since_ns.
  static constexpr int64_t kReceivedSkewNs = 10'000'000;

  // `capacity` (rounded up to a power of two) must be >= the in-flight ring's capacity (see
  // the class comment); `accounts_max` sizes AccountHeads.
  AccountActivity(size_t capacity, size_t accounts_max);
  AccountActivity(const AccountActivity&) = delete;
  AccountActivity& operator=(const AccountActivity&) = delete;

  // REQUIRES: the caller owns entry.seq (see the class comment); entry.seq != 0, the two
  // accounts non-zero and different.
  void Record(const ActivityEntry& entry);

  // Appends up to query.limit (capped) entries of query.account to `out`, newest (highest
  // seq) first. `newest_seq` is the newest seq that may have been recorded (for the fallback
  // scan). Allocates only if `out` has no room.
  ActivityReport Read(const ActivityQuery& query, Sequence newest_seq,
                      std::vector<ActivityHit>* out) const;

  size_t capacity() const { return capacity_; }
  // Directions (one per account of an entry) that got no newest-seq word. relaxed: statistic.
  uint64_t unchained() const { return unchained_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kWords = (sizeof(ActivityEntry) + 7) / 8;
  static constexpr uint64_t kUnchained = ~uint64_t{0};  // Link of an entry with no chain.
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
  void Link(uint64_t account, Direction direction, Sequence seq);
  // The entry of `seq` and its links, or false if the slot holds another seq (overwritten or
  // never written).
  bool Load(Sequence seq, Snapshot* out) const;
  ActivityReport Scan(const ActivityQuery& query, Sequence newest_seq,
                      std::vector<ActivityHit>* out) const;

  const size_t capacity_;
  const uint64_t mask_;
  std::unique_ptr<Slot[]> slots_;
  AccountHeads heads_;
  std::atomic<uint64_t> unchained_{0};
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_HISTORY_ACCOUNT_ACTIVITY_H_
