// Mix64: the splitmix64 finaliser, a fixed 64-bit mixing function.
//
// One function serves every place that needs a stable hash: spreading client ids over hash
// buckets, and the state hashes that replay tests compare across runs and processes (absl::Hash
// is salted per process, so it cannot serve those).
#ifndef VOUCH_ENGINE_TYPES_MIX_H_
#define VOUCH_ENGINE_TYPES_MIX_H_

#include <cstdint>

namespace vouch {

constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_MIX_H_
