#include "engine/history/history_ring.h"

#include <bit>
#include <cassert>
#include <cstring>

namespace vouch {

HistoryRing::HistoryRing(size_t capacity)
    : capacity_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)),
      mask_(capacity_ - 1),
      slots_(new Slot[capacity_]) {
  for (size_t i = 0; i < capacity_; ++i) {
    // relaxed: construction happens-before the ring is shared.
    for (auto& word : slots_[i].words) word.store(0, std::memory_order_relaxed);
  }
}

void HistoryRing::Write(const HistoryRecord& record) {
  assert(record.seq != 0);
  uint64_t words[kWords] = {};
  std::memcpy(words, &record, sizeof(record));
  Slot& slot = slots_[record.seq & mask_];
  // relaxed: single writer; the release stores below order this odd version before the data.
  const uint64_t version = slot.version.load(std::memory_order_relaxed);
  slot.version.store(version + 1, std::memory_order_relaxed);
  for (size_t i = 0; i < kWords; ++i) {
    slot.words[i].store(words[i], std::memory_order_release);  // release: see the class comment.
  }
  // release: a reader that sees the even version sees every word written before it.
  slot.version.store(version + 2, std::memory_order_release);
}

std::optional<HistoryRecord> HistoryRing::Read(Sequence seq) const {
  const Slot& slot = slots_[seq & mask_];
  uint64_t words[kWords];
  for (;;) {
    const uint64_t before = slot.version.load(std::memory_order_acquire);  // acquire: see Write.
    if (before & 1) continue;  // A write is in progress; it is a few dozen stores long.
    for (size_t i = 0; i < kWords; ++i) {
      words[i] = slot.words[i].load(std::memory_order_acquire);  // acquire: keeps loads in order.
    }
    if (slot.version.load(std::memory_order_acquire) == before) break;
  }
  HistoryRecord record;
  std::memcpy(&record, words, sizeof(record));
  if (record.seq != seq) return std::nullopt;  // Never written, or overwritten by a newer seq.
  return record;
}

}  // namespace vouch
