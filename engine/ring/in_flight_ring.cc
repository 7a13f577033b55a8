#include "engine/ring/in_flight_ring.h"

namespace vouch {

InFlightRing::InFlightRing(size_t capacity)
    : capacity_(capacity), mask_(capacity - 1), entries_(new InFlightEntry[capacity]) {
  assert(capacity >= 2 && (capacity & (capacity - 1)) == 0);
  for (size_t pos = 0; pos < capacity; ++pos) {
    // relaxed: construction happens-before any thread is handed the ring.
    entries_[pos].turn.store(pos, std::memory_order_relaxed);
  }
}

void InFlightRing::StartAt(Sequence first_seq) {
  // relaxed: called before any thread is handed the ring.
  assert(first_seq >= 1 && head_.load(std::memory_order_relaxed) == 0);
  const uint64_t first_pos = first_seq - 1;
  for (uint64_t pos = first_pos; pos < first_pos + capacity_; ++pos) {
    // relaxed: called before any thread is handed the ring.
    entries_[pos & mask_].turn.store(pos, std::memory_order_relaxed);
  }
  head_.store(first_pos, std::memory_order_relaxed);
}

InFlightEntry* InFlightRing::Claim(Sequence* seq) {
  // relaxed: head_ is only a hint of where to try; the CAS below decides.
  uint64_t pos = head_.load(std::memory_order_relaxed);
  for (;;) {
    InFlightEntry& entry = entries_[pos & mask_];
    // acquire: pairs with Free, so the reconciler is done with the previous use of the entry.
    const uint64_t turn = entry.turn.load(std::memory_order_acquire);
    const int64_t lag = static_cast<int64_t>(turn - pos);
    if (lag == 0) {
      // relaxed: the position is the only thing decided here; the entry's data is ordered by
      // its own turn (acquired above, released again by Publish).
      if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        *seq = pos + 1;
        return &entry;
      }
      // pos now holds the current head; try again.
    } else if (lag < 0) {
      return nullptr;  // The entry at pos still holds pos - capacity: full.
    } else {
      pos = head_.load(std::memory_order_relaxed);  // Another producer took pos.
    }
  }
}

}  // namespace vouch
