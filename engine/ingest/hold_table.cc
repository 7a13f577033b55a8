#include "engine/ingest/hold_table.h"

#include <bit>
#include <cassert>

namespace vouch {

HoldTable::HoldTable(size_t capacity)
    : capacity_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)),
      mask_(capacity_ - 1),
      slots_(new Slot[capacity_]) {}

HoldTable::Slot* HoldTable::Find(uint64_t account, bool claim) const {
  uint64_t index = (account * 0x9e3779b97f4a7c15ULL) >> 20;  // Fibonacci hashing.
  for (size_t probe = 0; probe < capacity_; ++probe, ++index) {
    Slot& slot = slots_[index & mask_];
    // relaxed: the key is the only data a slot publishes; the held flag is read separately.
    uint64_t key = slot.account.load(std::memory_order_relaxed);
    if (key == account) return &slot;
    if (key != 0) continue;
    if (!claim) return nullptr;  // Keys are never removed, so an empty slot ends the chain.
    if (slot.account.compare_exchange_strong(key, account, std::memory_order_relaxed) ||
        key == account) {
      return &slot;
    }
    // Another account took this slot; keep probing.
  }
  return nullptr;
}

bool HoldTable::Hold(uint64_t account) {
  assert(account != 0);
  Slot* slot = Find(account, /*claim=*/true);
  if (slot == nullptr) return false;
  // relaxed: the flag carries no other data; ingest sees it within the cache-coherence delay.
  slot->held.store(true, std::memory_order_relaxed);
  return true;
}

bool HoldTable::Release(uint64_t account) {
  Slot* slot = Find(account, /*claim=*/false);
  // relaxed: as in Hold.
  return slot != nullptr && slot->held.exchange(false, std::memory_order_relaxed);
}

bool HoldTable::IsHeld(uint64_t account) const {
  const Slot* slot = Find(account, /*claim=*/false);
  return slot != nullptr && slot->held.load(std::memory_order_relaxed);  // relaxed: as in Hold.
}

std::vector<uint64_t> HoldTable::List() const {
  std::vector<uint64_t> accounts;
  for (size_t i = 0; i < capacity_; ++i) {
    // relaxed: a point-in-time listing for operators.
    if (slots_[i].held.load(std::memory_order_relaxed)) {
      accounts.push_back(slots_[i].account.load(std::memory_order_relaxed));
    }
  }
  return accounts;
}

}  // namespace vouch
