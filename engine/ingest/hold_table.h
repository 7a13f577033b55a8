// HoldTable: the set of accounts on hold. The reconciler puts a source account on hold after a
// late fraud failure; the ingest path then rejects that account's transactions synchronously
// (ACCOUNT_ON_HOLD) until an operator releases it.
//
// Design: fixed-capacity open addressing over account ids with linear probing. A slot's key is
// claimed once by CAS and never removed; releasing a hold clears the slot's flag, so the key
// stays and a later hold of the same account reuses the slot. Capacity therefore bounds the
// number of distinct accounts ever held in this process; Hold() reports when it is exhausted.
//
// Thread safety: all methods from any thread, lock-free. IsHeld is the ingest hot path: one hash
// and usually one or two loads.
#ifndef VOUCH_ENGINE_INGEST_HOLD_TABLE_H_
#define VOUCH_ENGINE_INGEST_HOLD_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace vouch {

class HoldTable {
 public:
  // `capacity` is rounded up to a power of two.
  explicit HoldTable(size_t capacity);
  HoldTable(const HoldTable&) = delete;
  HoldTable& operator=(const HoldTable&) = delete;

  // Puts `account` on hold. Returns false only if the table is full (the hold was not placed).
  // REQUIRES: account != 0.
  [[nodiscard]] bool Hold(uint64_t account);
  // Returns true if the account was on hold.
  bool Release(uint64_t account);
  bool IsHeld(uint64_t account) const;
  // Accounts currently on hold, in slot order. Allocates; not for the hot path.
  std::vector<uint64_t> List() const;

 private:
  struct Slot {
    std::atomic<uint64_t> account{0};  // 0 = empty; set once.
    std::atomic<bool> held{false};
  };
  // The slot holding `account`, or the empty slot where it would go, or nullptr when full.
  Slot* Find(uint64_t account, bool claim) const;

  const size_t capacity_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_INGEST_HOLD_TABLE_H_
