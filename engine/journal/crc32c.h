// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of every journal record
// and segment header.
//
// Hand-written because the build has nothing to borrow: Debian bookworm ships no C/C++ crc32c
// package (there is no libcrc32c-dev) and its Abseil (20220623) predates absl/crc. The SSE4.2
// CRC32 instruction computes exactly this polynomial, 8 bytes per instruction; a byte-wise table
// serves CPUs without it. Both are checked against the RFC 3720 vectors in the tests.
//
// Mask/Unmask follow LevelDB's crc32c::Mask: a CRC computed over data that itself embeds CRCs
// (a record holding a checksummed payload) is weak, so the stored value is rotated and offset.
//
// Thread safety: pure functions; the implementation is chosen once, on first use.
#ifndef VOUCH_ENGINE_JOURNAL_CRC32C_H_
#define VOUCH_ENGINE_JOURNAL_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace vouch::journal::crc32c {

// Returns the CRC32C of data[0, size) appended to the data whose CRC32C is `crc`
// (Extend(Value(a), b) == Value(a + b)).
uint32_t Extend(uint32_t crc, const char* data, size_t size);

inline uint32_t Value(const char* data, size_t size) { return Extend(0, data, size); }

// The portable table implementation, exposed so tests can compare it with the dispatched one.
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t size);

// True when Extend uses the SSE4.2 instruction on this CPU.
bool HardwareAccelerated();

inline constexpr uint32_t kMaskDelta = 0xa282ead8u;

inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }

inline uint32_t Unmask(uint32_t masked_crc) {
  const uint32_t rotated = masked_crc - kMaskDelta;
  return (rotated >> 17) | (rotated << 15);
}

}  // namespace vouch::journal::crc32c

#endif  // VOUCH_ENGINE_JOURNAL_CRC32C_H_
