// The open addressing shared by the account-keyed tables (HoldTable, RiskTable): a
// power-of-two array of slots, each with an `std::atomic<uint64_t> account` key (0: free),
// probed linearly from a Fibonacci hash. A key is claimed with one CAS and never removed, so an
// empty slot ends a chain.
//
// Thread safety: any number of threads at once. relaxed: the key is the only data a slot
// publishes here; each table orders the rest of its slot itself.
#ifndef VOUCH_ENGINE_INGEST_INTERNAL_ACCOUNT_SLOTS_H_
#define VOUCH_ENGINE_INGEST_INTERNAL_ACCOUNT_SLOTS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace vouch::internal {

// `account`'s slot; if absent, a free slot claimed for it when `claim`. nullptr if absent and
// not claiming, or if the table is full. REQUIRES: capacity is a power of two; account != 0.
template <typename Slot>
Slot* FindAccountSlot(Slot* slots, size_t capacity, uint64_t account, bool claim) {
  const uint64_t mask = capacity - 1;
  uint64_t index = (account * 0x9e3779b97f4a7c15ULL) >> 20;  // Fibonacci hashing.
  for (size_t probe = 0; probe < capacity; ++probe, ++index) {
    Slot& slot = slots[index & mask];
    uint64_t key = slot.account.load(std::memory_order_relaxed);  // relaxed: see above.
    if (key == account) return &slot;
    if (key != 0) continue;
    if (!claim) return nullptr;
    if (slot.account.compare_exchange_strong(key, account, std::memory_order_relaxed) ||
        key == account) {
      return &slot;
    }
    // Another account took this slot; keep probing.
  }
  return nullptr;
}

}  // namespace vouch::internal

#endif  // VOUCH_ENGINE_INGEST_INTERNAL_ACCOUNT_SLOTS_H_
