// The byte format of verifier state snapshots, shared by FraudChecker and Ledger.
//
// Thread safety: the free functions are pure.
//
// A snapshot is
//
//   magic u64 | format version u32 | payload length u64 | payload
//
// All integers are little-endian and written one field at a time: never a struct memcpy, so
// padding, byte order and compiler never reach the bytes. Doubles are stored as their
// IEEE-754 bit pattern, so a restored double is the same double, not a nearby one. The magic
// says which verifier wrote the snapshot; the version says how to read its payload; the length
// refuses a truncated snapshot or one with bytes after it.
//
// No checksum of its own: a verifier snapshot is only ever stored inside the engine's snapshot
// file (engine/recovery/snapshot.cc), whose CRC32C covers every byte of it, and the file is
// checked before any part is restored. Damage inside the payload is that CRC's to catch; what
// the verifiers check is that the bytes decode into a valid state.
//
// Older versions ended with an 8-byte checksum (a Mix64 lane sum) after the payload: each
// verifier's Versions names the first version without it. Such a trailer is skipped, not
// verified, when an old snapshot is read: it sits inside the same CRC32C'd file as the bytes it
// covered, so it can catch nothing that CRC has not already refused.
//
// Lives in engine/common, so that neither the fraud checker nor the ledger reaches into the
// other's internals, and so that the engine's own ledger depends on nothing under verifiers/.
#ifndef VOUCH_ENGINE_COMMON_SNAPSHOT_FORMAT_H_
#define VOUCH_ENGINE_COMMON_SNAPSHOT_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/common/byte_coding.h"

namespace vouch::verifiers::snapshot {

// The field coding is the engine's shared one (engine/common/byte_coding.h).
using ::vouch::ByteReader;
using ::vouch::ByteWriter;

// The fixed part before the payload.
inline constexpr size_t kHeaderBytes = 8 + 4 + 8;
// The checksum after the payload in versions before Versions::first_without_trailer.
inline constexpr size_t kOldTrailerBytes = 8;

// The format versions one verifier reads.
struct Versions {
  uint32_t oldest = 0;                  // The oldest version this build still reads.
  uint32_t current = 0;                 // What SaveState writes.
  uint32_t first_without_trailer = 0;  // Versions below it end with kOldTrailerBytes.
};

// Appends a header to `out` and returns the offset of the payload, for FinishSnapshot.
size_t BeginSnapshot(uint64_t magic, uint32_t version, std::string* out);
// Fills in the payload length.
void FinishSnapshot(size_t payload_offset, std::string* out);

struct OpenedSnapshot {
  uint32_t version = 0;  // In [versions.oldest, versions.current].
  absl::string_view payload;
};

// Checks the framing of `bytes` and returns its version and payload. InvalidArgument, with a
// message that starts with `what` ("fraud snapshot"), when the bytes are truncated or carry
// trailing bytes, the magic is not `magic` (another verifier's snapshot, or not a snapshot at
// all), or the version is not one of `versions`.
absl::StatusOr<OpenedSnapshot> OpenSnapshot(absl::string_view bytes, uint64_t magic,
                                            const Versions& versions, absl::string_view what);

// InvalidArgument "<what>: <problem>".
absl::Status Invalid(absl::string_view what, absl::string_view problem);
// `status` with "<what>: " before its message, keeping its code.
absl::Status WithContext(absl::string_view what, const absl::Status& status);

// A magic from eight ASCII characters, first character in the lowest byte, so the file reads
// as the string in a hex dump.
constexpr uint64_t Magic(const char (&text)[9]) {
  uint64_t magic = 0;
  for (int i = 7; i >= 0; --i) magic = (magic << 8) | static_cast<uint8_t>(text[i]);
  return magic;
}

}  // namespace vouch::verifiers::snapshot

#endif  // VOUCH_ENGINE_COMMON_SNAPSHOT_FORMAT_H_
