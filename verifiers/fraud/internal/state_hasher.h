// A deterministic 64-bit hash over a sequence of values, for FraudChecker::StateHash.
//
// Deliberately not absl::Hash: that one is seeded per process, and replay tests compare hashes
// across runs. Values are mixed in order, so the same sequence always gives the same hash.
#ifndef VOUCH_VERIFIERS_FRAUD_INTERNAL_STATE_HASHER_H_
#define VOUCH_VERIFIERS_FRAUD_INTERNAL_STATE_HASHER_H_

#include <bit>
#include <cstdint>

#include "engine/types/mix.h"

namespace vouch::fraud::internal {

// MurmurHash3's 64-bit finalizer: a bijection that spreads every input bit over the output.
class StateHasher {
 public:
  void Add(uint64_t value) { hash_ = Mix64(hash_ ^ value) + kStep; }
  void Add(int64_t value) { Add(static_cast<uint64_t>(value)); }
  // Bit pattern, not value: exact replay produces exactly the same doubles.
  void Add(double value) { Add(std::bit_cast<uint64_t>(value)); }
  uint64_t hash() const { return hash_; }

 private:
  // Golden-ratio step: keeps a run of zero values from collapsing onto a fixed point.
  static constexpr uint64_t kStep = 0x9e3779b97f4a7c15ULL;
  uint64_t hash_ = kStep;
};

}  // namespace vouch::fraud::internal

#endif  // VOUCH_VERIFIERS_FRAUD_INTERNAL_STATE_HASHER_H_
