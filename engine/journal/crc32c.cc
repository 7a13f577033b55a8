#include "engine/journal/crc32c.h"

#include <nmmintrin.h>

#include <array>
#include <cstring>

namespace vouch::journal::crc32c {
namespace {

constexpr uint32_t kPolynomialReflected = 0x82f63b78u;

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomialReflected : 0);
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = MakeTable();

__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* data,
                                                        size_t size) {
  uint64_t state = ~crc;
  // Byte steps up to 8-byte alignment, so the word loads below are aligned.
  while (size > 0 && (reinterpret_cast<uintptr_t>(data) & 7) != 0) {
    state = _mm_crc32_u8(static_cast<uint32_t>(state), static_cast<uint8_t>(*data));
    ++data;
    --size;
  }
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, data, sizeof(word));
    state = _mm_crc32_u64(state, word);
    data += 8;
    size -= 8;
  }
  while (size > 0) {
    state = _mm_crc32_u8(static_cast<uint32_t>(state), static_cast<uint8_t>(*data));
    ++data;
    --size;
  }
  return ~static_cast<uint32_t>(state);
}

using ExtendFunction = uint32_t (*)(uint32_t, const char*, size_t);

ExtendFunction Choose() {
  return __builtin_cpu_supports("sse4.2") ? ExtendSse42 : ExtendPortable;
}

}  // namespace

uint32_t ExtendPortable(uint32_t crc, const char* data, size_t size) {
  uint32_t state = ~crc;
  for (size_t i = 0; i < size; ++i) {
    state = kTable[(state ^ static_cast<uint8_t>(data[i])) & 0xff] ^ (state >> 8);
  }
  return ~state;
}

bool HardwareAccelerated() { return Choose() == ExtendSse42; }

uint32_t Extend(uint32_t crc, const char* data, size_t size) {
  // A function-local static: initialised once, thread-safely, on first use.
  static const ExtendFunction extend = Choose();
  return extend(crc, data, size);
}

}  // namespace vouch::journal::crc32c
