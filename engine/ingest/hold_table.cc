#include "engine/ingest/hold_table.h"

#include <bit>
#include <cassert>

#include "engine/ingest/internal/account_slots.h"

namespace vouch {

HoldTable::HoldTable(size_t capacity)
    : capacity_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)),
      slots_(new Slot[capacity_]) {}

HoldTable::Slot* HoldTable::Find(uint64_t account, bool claim) const {
  return internal::FindAccountSlot(slots_.get(), capacity_, account, claim);
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
