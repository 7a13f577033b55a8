// The byte format of verifier state snapshots, shared by FraudChecker and Ledger.
//
// Thread safety: the free functions are pure.
//
// A snapshot is
//
//   magic u64 | format version u32 | payload length u64 | payload | checksum u64
//
// All integers are little-endian and written one field at a time: never a struct memcpy, so
// padding, byte order and compiler never reach the bytes. Doubles are stored as their
// IEEE-754 bit pattern, so a restored double is the same double, not a nearby one. The magic
// says which verifier wrote the snapshot; the version says how to read its payload; the checksum
// (over everything before it) refuses a damaged snapshot instead of restoring wrong balances or
// wrong fraud baselines.
//
// Lives in verifiers/common, so that neither verifier reaches into the other's internals; it is
// visible to the verifiers and to their tests.
#ifndef VOUCH_VERIFIERS_COMMON_SNAPSHOT_FORMAT_H_
#define VOUCH_VERIFIERS_COMMON_SNAPSHOT_FORMAT_H_

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
using ::vouch::ToLittleEndian;

// The fixed part around the payload.
inline constexpr size_t kHeaderBytes = 8 + 4 + 8;
inline constexpr size_t kTrailerBytes = 8;

// Appends a header to `out` and returns the offset of the payload, for FinishSnapshot.
size_t BeginSnapshot(uint64_t magic, uint32_t version, std::string* out);
// Fills in the payload length and appends the checksum.
void FinishSnapshot(size_t payload_offset, std::string* out);

// Checks the framing of `bytes` and returns its payload. InvalidArgument, with a message that
// starts with `what` ("fraud snapshot"), when the bytes are truncated or carry trailing bytes,
// the magic is not `magic` (another verifier's snapshot, or not a snapshot at all), the version
// is not `version`, or the checksum does not match.
absl::StatusOr<absl::string_view> OpenSnapshot(absl::string_view bytes, uint64_t magic,
                                               uint32_t version, absl::string_view what);

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

#endif  // VOUCH_VERIFIERS_COMMON_SNAPSHOT_FORMAT_H_
