// Fixed-width little-endian encoding, byte by byte, so the on-disk layout does not depend on
// the host's byte order, struct padding or compiler. Shared by the record codecs and the
// segment framing.
//
// Thread safety: pure functions.
#ifndef VOUCH_ENGINE_JOURNAL_INTERNAL_CODING_H_
#define VOUCH_ENGINE_JOURNAL_INTERNAL_CODING_H_

#include <cstddef>
#include <cstdint>

namespace vouch::journal::internal {

template <typename T>
inline char* PutFixed(char* out, T value) {
  static_assert(sizeof(T) <= 8);
  auto bits = static_cast<uint64_t>(value);
  for (size_t i = 0; i < sizeof(T); ++i) out[i] = static_cast<char>((bits >> (8 * i)) & 0xff);
  return out + sizeof(T);
}

template <typename T>
inline const char* GetFixed(const char* in, T* value) {
  static_assert(sizeof(T) <= 8);
  uint64_t bits = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    bits |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  }
  *value = static_cast<T>(bits);
  return in + sizeof(T);
}

inline uint32_t DecodeFixed32(const char* in) {
  uint32_t value;
  GetFixed(in, &value);
  return value;
}

inline uint64_t DecodeFixed64(const char* in) {
  uint64_t value;
  GetFixed(in, &value);
  return value;
}

}  // namespace vouch::journal::internal

#endif  // VOUCH_ENGINE_JOURNAL_INTERNAL_CODING_H_
