#include "engine/history/account_activity.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

namespace vouch {

AccountActivity::AccountActivity(size_t capacity)
    : capacity_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)),
      mask_(capacity_ - 1),
      slots_(new Slot[capacity_]) {
  for (size_t i = 0; i < capacity_; ++i) {
    // relaxed: construction happens-before the index is shared.
    for (auto& word : slots_[i].words) word.store(0, std::memory_order_relaxed);
    for (auto& link : slots_[i].link) link.store(0, std::memory_order_relaxed);
  }
}

void AccountActivity::Record(const ActivityEntry& entry, std::atomic<uint64_t>& source_newest_seq,
                             std::atomic<uint64_t>& destination_newest_seq) {
  assert(entry.seq != 0 && entry.source_account != 0 && entry.destination_account != 0);
  assert(entry.source_account != entry.destination_account);
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
  Link(source_newest_seq, entry.source_account, kSource, entry.seq);
  Link(destination_newest_seq, entry.destination_account, kDestination, entry.seq);
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
void AccountActivity::Link(std::atomic<uint64_t>& newest_seq, uint64_t account,
                           Direction direction, Sequence seq) {
  std::atomic<uint64_t>& mine = SlotOf(seq).link[direction];
  std::atomic<uint64_t>* at = &newest_seq;
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

ActivityReport AccountActivity::Read(const ActivityQuery& query,
                                     const std::atomic<uint64_t>* newest_seq,
                                     std::vector<ActivityHit>* out) const {
  const size_t limit = std::min(query.limit, kLimitMax);
  if (limit == 0 || newest_seq == nullptr) return {};
  ActivityReport report;
  // acquire: the entry it names is whole (Link).
  Sequence seq = newest_seq->load(std::memory_order_acquire);
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

}  // namespace vouch
