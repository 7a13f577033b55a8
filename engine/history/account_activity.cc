#include "engine/history/account_activity.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

namespace vouch {

AccountHeads::AccountHeads(size_t capacity)
    : capacity_(std::bit_ceil(std::max(capacity, kProbesMax))),
      mask_(capacity_ - 1),
      slots_(new Slot[capacity_]) {}

size_t AccountHeads::Home(uint64_t account) const {
  // Fibonacci hashing: every bit of the id moves the home slot (ids that differ only in high
  // bits spread as well as sequential ones).
  return static_cast<size_t>((account * 0x9E3779B97F4A7C15ull) >> 17) & mask_;
}

std::atomic<uint64_t>* AccountHeads::NewestSeqWord(uint64_t account) {
  assert(account != 0);
  const size_t home = Home(account);
  for (size_t probe = 0; probe < kProbesMax; ++probe) {
    Slot& slot = slots_[(home + probe) & mask_];
    // acquire: a slot claimed by another thread is seen with its key (the word is atomic on its
    // own, so nothing else needs ordering).
    uint64_t key = slot.account.load(std::memory_order_acquire);
    if (key == 0 &&
        slot.account.compare_exchange_strong(key, account, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
      return &slot.newest_seq;
    }
    if (key == account) return &slot.newest_seq;  // Ours, or another thread claimed it for us.
  }
  return nullptr;
}

const std::atomic<uint64_t>* AccountHeads::FindNewestSeqWord(uint64_t account) const {
  const size_t home = Home(account);
  for (size_t probe = 0; probe < kProbesMax; ++probe) {
    const Slot& slot = slots_[(home + probe) & mask_];
    const uint64_t key = slot.account.load(std::memory_order_acquire);  // acquire: as above.
    if (key == account) return &slot.newest_seq;
    if (key == 0) return nullptr;  // Keys are never removed: the account would be here.
  }
  return nullptr;
}

AccountActivity::AccountActivity(size_t capacity, size_t accounts_max)
    : capacity_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)),
      mask_(capacity_ - 1),
      slots_(new Slot[capacity_]),
      heads_(accounts_max) {
  for (size_t i = 0; i < capacity_; ++i) {
    // relaxed: construction happens-before the index is shared.
    for (auto& word : slots_[i].words) word.store(0, std::memory_order_relaxed);
    for (auto& link : slots_[i].link) link.store(0, std::memory_order_relaxed);
  }
}

void AccountActivity::Record(const ActivityEntry& entry) {
  assert(entry.seq != 0 && entry.source_account != 0 && entry.destination_account != 0);
  assert(entry.source_account != entry.destination_account);
  // Both heads are likely cache misses with many accounts: overlap them with each other and
  // with the entry's own writes.
  heads_.Prefetch(entry.source_account);
  heads_.Prefetch(entry.destination_account);
  uint64_t words[kWords] = {};
  std::memcpy(words, &entry, sizeof(entry));
  Slot& slot = SlotOf(entry.seq);
  // relaxed: the slot's writers are serialized by the in-flight ring (class comment); the
  // release stores below order this odd version before the data.
  const uint64_t version = slot.version.load(std::memory_order_relaxed);
  slot.version.store(version + 1, std::memory_order_relaxed);
  for (size_t i = 0; i < kWords; ++i) {
    slot.words[i].store(words[i], std::memory_order_release);  // release: see Read.
  }
  // release: a reader that sees the even version sees every word written before it.
  slot.version.store(version + 2, std::memory_order_release);
  Link(entry.source_account, kSource, entry.seq);
  Link(entry.destination_account, kDestination, entry.seq);
}

// The link of `seq`'s entry that continues `account`'s chain. REQUIRES: the entry is whole
// and names `account`.
std::atomic<uint64_t>& AccountActivity::LinkOf(Sequence seq, uint64_t account) const {
  Slot& slot = SlotOf(seq);
  // relaxed: the caller saw the entry whole already (an acquire of the link that named it).
  const uint64_t source = slot.words[kSourceWord].load(std::memory_order_relaxed);
  return slot.link[source == account ? kSource : kDestination];
}

// Inserts `seq` into `account`'s chain, keeping it sorted by seq, descending. Usually the
// first CAS makes it the newest; if a higher seq of the account linked first, `seq` goes below
// it. Every entry the loop reads has a seq above `seq`, so its slot is stable (class comment).
void AccountActivity::Link(uint64_t account, Direction direction, Sequence seq) {
  std::atomic<uint64_t>& mine = SlotOf(seq).link[direction];
  std::atomic<uint64_t>* newest = heads_.NewestSeqWord(account);
  if (newest == nullptr) {
    mine.store(kUnchained, std::memory_order_release);  // release: after the data (see Read).
    unchained_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic.
    return;
  }
  std::atomic<uint64_t>* at = newest;
  // acquire: the entry a link names is whole (its data and its own link were released first).
  uint64_t next = at->load(std::memory_order_acquire);
  for (;;) {
    if (next > seq) {  // A newer entry of the account is already linked: go below it.
      at = &LinkOf(next, account);
      next = at->load(std::memory_order_acquire);  // acquire: as above.
      continue;
    }
    assert(next != seq);
    // release: a reader that loads our link after a concurrent overwrite of this slot sees
    // the overwriter's odd version (see Read); the CAS below publishes it to the chain.
    mine.store(next, std::memory_order_release);
    // release: whoever follows the new link sees our entry and our link; acquire on failure:
    // the entry the new value names is whole, as above.
    if (at->compare_exchange_weak(next, seq, std::memory_order_release,
                                  std::memory_order_acquire)) {
      return;
    }
  }
}

bool AccountActivity::Load(Sequence seq, Snapshot* out) const {
  const Slot& slot = SlotOf(seq);
  uint64_t words[kWords];
  for (;;) {
    const uint64_t before = slot.version.load(std::memory_order_acquire);  // acquire: Record.
    if (before & 1) continue;  // A write is in progress; it is a few stores long.
    for (size_t i = 0; i < kWords; ++i) {
      words[i] = slot.words[i].load(std::memory_order_acquire);  // acquire: keeps loads in order.
    }
    for (int d = 0; d < 2; ++d) {
      // acquire: a link stored by a newer writer of the slot carries its odd version with it,
      // so the check below fails rather than pair this entry with the newer entry's link.
      out->link[d] = slot.link[d].load(std::memory_order_acquire);
    }
    if (slot.version.load(std::memory_order_acquire) == before) break;
  }
  std::memcpy(&out->entry, words, sizeof(out->entry));
  return out->entry.seq == seq;
}

namespace {

bool InRange(const ActivityQuery& query, const ActivityEntry& entry) {
  return (query.since_ns == 0 || entry.received_ns >= query.since_ns) &&
         (query.until_ns == 0 || entry.received_ns <= query.until_ns) &&
         (query.before_seq == 0 || entry.seq < query.before_seq);
}

bool PastSince(const ActivityQuery& query, const ActivityEntry& entry) {
  return query.since_ns != 0 &&
         entry.received_ns < query.since_ns - AccountActivity::kReceivedSkewNs;
}

}  // namespace

ActivityReport AccountActivity::Read(const ActivityQuery& query, Sequence newest_seq,
                                     std::vector<ActivityHit>* out) const {
  const size_t limit = std::min(query.limit, kLimitMax);
  if (limit == 0) return {};
  const std::atomic<uint64_t>* newest = heads_.FindNewestSeqWord(query.account);
  if (newest == nullptr) {
    // Never transacted, or unchained: only the latter needs the scan.
    if (unchained() == 0) return {};
    return Scan(query, newest_seq, out);
  }
  ActivityReport report;
  // acquire: the entry it names is whole (Link).
  Sequence seq = newest->load(std::memory_order_acquire);
  size_t found = 0;
  Snapshot snapshot;
  for (size_t visited = 0; seq != 0; ++visited) {
    if (visited == kVisitMax) {
      report.more = true;
      report.next_before_seq = seq + 1;
      break;
    }
    if (!Load(seq, &snapshot)) break;  // Overwritten: everything older is gone too.
    const ActivityEntry& entry = snapshot.entry;
    const bool debit = entry.source_account == query.account;
    assert(debit || entry.destination_account == query.account);
    if (PastSince(query, entry)) break;
    if (InRange(query, entry)) {
      if (found == limit) {
        report.more = true;
        report.next_before_seq = out->back().entry.seq;
        break;
      }
      out->push_back({entry, debit});
      ++found;
    }
    const uint64_t next = snapshot.link[debit ? kSource : kDestination];
    assert(next < seq);  // The chain is sorted, descending.
    seq = next;
  }
  return report;
}

ActivityReport AccountActivity::Scan(const ActivityQuery& query, Sequence newest_seq,
                                     std::vector<ActivityHit>* out) const {
  const size_t limit = std::min(query.limit, kLimitMax);
  ActivityReport report;
  report.scanned = true;
  if (limit == 0) return report;
  const Sequence oldest_kept = newest_seq >= capacity_ ? newest_seq - capacity_ + 1 : 1;
  Sequence seq = newest_seq;
  if (query.before_seq != 0 && query.before_seq <= seq) seq = query.before_seq - 1;
  size_t found = 0;
  size_t read = 0;
  Snapshot snapshot;
  for (; seq >= oldest_kept && seq != 0; --seq, ++read) {
    if (read == kScanSlotsMax) {
      report.more = true;
      report.next_before_seq = seq + 1;
      return report;
    }
    if (!Load(seq, &snapshot)) continue;  // Not written yet, or overwritten.
    const ActivityEntry& entry = snapshot.entry;
    if (entry.source_account != query.account && entry.destination_account != query.account) {
      continue;
    }
    if (PastSince(query, entry)) break;
    if (!InRange(query, entry)) continue;
    if (found == limit) {
      report.more = true;
      report.next_before_seq = out->back().entry.seq;
      return report;
    }
    out->push_back({entry, entry.source_account == query.account});
    ++found;
  }
  report.scan_complete = true;
  return report;
}

}  // namespace vouch
