#include "engine/ledger/internal/pending_table.h"

#include <bit>
#include <cassert>

#include "engine/common/check.h"

namespace vouch::ledger::internal {
namespace {

// 2^64 / golden ratio: consecutive keys land far apart, so ordered runs do not form clusters.
constexpr uint64_t kFibonacciMultiplier = 0x9E3779B97F4A7C15ull;

// Keeps 2 * capacity from overflowing and the slot array addressable.
constexpr size_t kCapacityMax = size_t{1} << 40;

size_t SlotCount(size_t capacity) {
  assert(capacity <= kCapacityMax);
  return std::bit_ceil(capacity < 1 ? size_t{2} : 2 * capacity);
}

}  // namespace

PendingTable::PendingTable(size_t capacity)
    : capacity_(capacity),
      mask_(SlotCount(capacity) - 1),
      shift_(64 - std::countr_zero(SlotCount(capacity))),
      slots_(SlotCount(capacity)) {}

size_t PendingTable::Home(Sequence seq) const {
  return static_cast<size_t>((seq * kFibonacciMultiplier) >> shift_);
}

size_t PendingTable::SlotOf(Sequence seq) const {
  assert(seq != 0);
  // Terminates: the load factor is at most 1/2, so an empty slot always ends the probe.
  for (size_t slot = Home(seq);; slot = Next(slot)) {
    if (slots_[slot].seq == seq) return slot;
    if (slots_[slot].seq == 0) return slots_.size();
  }
}

void PendingTable::Insert(const Reservation& reservation) {
  VOUCH_CHECK(reservation.seq != 0, "seq 0 marks an empty slot");
  VOUCH_CHECK(HasRoom(), "a reservation is inserted only while there is room");
  size_t slot = Home(reservation.seq);
  for (; slots_[slot].seq != 0; slot = Next(slot)) {
    VOUCH_CHECK(slots_[slot].seq != reservation.seq, "a transaction is reserved once");
  }
  slots_[slot] = reservation;
  ++size_;
}

const Reservation* PendingTable::Find(Sequence seq) const {
  const size_t slot = SlotOf(seq);
  return slot == slots_.size() ? nullptr : &slots_[slot];
}

Reservation PendingTable::Take(Sequence seq) {
  const size_t slot = SlotOf(seq);
  VOUCH_CHECK(slot != slots_.size(), "only a pending reservation is settled, and only once");
  const Reservation taken = slots_[slot];
  EraseSlot(slot);
  --size_;
  return taken;
}

// Backward-shift deletion: walk the rest of the cluster and move back every entry whose home
// does not lie between the hole and its slot, so no probe for it ever stops early at the hole.
void PendingTable::EraseSlot(size_t hole) {
  for (size_t slot = Next(hole); slots_[slot].seq != 0; slot = Next(slot)) {
    const size_t home_distance = (slot - Home(slots_[slot].seq)) & mask_;
    const size_t hole_distance = (slot - hole) & mask_;
    if (home_distance >= hole_distance) {
      slots_[hole] = slots_[slot];
      hole = slot;
    }
  }
  slots_[hole] = Reservation{};
}

}  // namespace vouch::ledger::internal
