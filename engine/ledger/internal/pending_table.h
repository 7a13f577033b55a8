// Fixed-capacity table of the ledger's pending reservations, keyed by sequence number.
//
// Thread safety: none; owned by the Ledger that owns it (the ledger agent thread).
//
// Invariants:
//  - size() <= capacity(); the slot array is at least twice the capacity (a power of two), so the
//    load factor never exceeds 1/2 and probes stay short.
//  - Open addressing with linear probing. Erase shifts later entries of the cluster back instead of
//    leaving tombstones, so every empty slot really ends a probe and the table never needs a
//    rehash: after construction it never allocates.
//  - A slot is empty iff its seq is 0 (sequence numbers start at 1).
//
// Sequence numbers arrive in increasing order and are mostly settled in order; Fibonacci hashing
// spreads such runs (and strided ones) evenly over the slots.
#ifndef VOUCH_ENGINE_LEDGER_INTERNAL_PENDING_TABLE_H_
#define VOUCH_ENGINE_LEDGER_INTERNAL_PENDING_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/types/results.h"

namespace vouch::ledger::internal {

// One reserved transfer: its amount sits in the clearing account until it is settled.
struct Reservation {
  Sequence seq = 0;
  int64_t amount_minor = 0;
  uint32_t source_index = 0;       // Index into the Ledger's account array.
  uint32_t destination_index = 0;  // Index into the Ledger's account array.
};

class PendingTable {
 public:
  explicit PendingTable(size_t capacity);

  PendingTable(const PendingTable&) = delete;
  PendingTable& operator=(const PendingTable&) = delete;
  // Moves, so that Ledger::RestoreState can build a whole new state aside and then take it. A
  // moved-from table may only be destroyed or assigned to.
  PendingTable(PendingTable&&) = default;
  PendingTable& operator=(PendingTable&&) = default;

  bool HasRoom() const { return size_ < capacity_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

  // REQUIRES: HasRoom(); reservation.seq != 0 and not already present.
  void Insert(const Reservation& reservation);

  // nullptr when `seq` is not pending.
  const Reservation* Find(Sequence seq) const;

  // Removes the reservation for `seq` and returns it.
  // REQUIRES: `seq` is pending.
  Reservation Take(Sequence seq);

  // Visits every reservation in slot order: deterministic for a given history, but callers that
  // compare tables with different histories must not depend on it.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Reservation& slot : slots_) {
      if (slot.seq != 0) fn(slot);
    }
  }

 private:
  size_t Home(Sequence seq) const;
  size_t Next(size_t slot) const { return (slot + 1) & mask_; }
  // Index of the slot holding `seq`, or slots_.size() when absent.
  size_t SlotOf(Sequence seq) const;
  void EraseSlot(size_t slot);

  // Constant after construction.
  size_t capacity_;
  size_t mask_;
  int shift_;  // 64 - log2(slot count): Fibonacci hashing keeps the top bits.

  std::vector<Reservation> slots_;  // Sized once in the constructor.
  size_t size_ = 0;
};

}  // namespace vouch::ledger::internal

#endif  // VOUCH_ENGINE_LEDGER_INTERNAL_PENDING_TABLE_H_
