// The byte format of verifier state snapshots, shared by FraudChecker and Ledger.
//
// Thread safety: ByteWriter and ByteReader are plain values, used by one thread at a time; the
// free functions are pure.
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
// Lives in verifiers/fraud/internal only because the ledger needs the same format and the
// verifiers have no shared package; it is visible to those two packages and to their tests.
#ifndef VOUCH_VERIFIERS_FRAUD_INTERNAL_SNAPSHOT_FORMAT_H_
#define VOUCH_VERIFIERS_FRAUD_INTERNAL_SNAPSHOT_FORMAT_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch::verifiers::snapshot {

// Swaps a word's bytes on a big-endian host, so that memcpy of the result gives (and of the
// argument, read back, took) the bytes in little-endian order. One 8-byte move instead of a loop
// of byte shifts that compilers do not always merge.
inline uint64_t ToLittleEndian(uint64_t word) {
  if constexpr (std::endian::native == std::endian::big) return __builtin_bswap64(word);
  return word;
}

// Appends fields to a string.
class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  template <typename T>
  void Put(T value) {
    static_assert(std::is_integral_v<T> && sizeof(T) <= 8);
    const uint64_t bits = ToLittleEndian(static_cast<uint64_t>(value));
    // The low sizeof(T) bytes of a little-endian word are its first ones.
    out_->append(reinterpret_cast<const char*>(&bits), sizeof(T));
  }
  void PutDouble(double value) { Put(std::bit_cast<uint64_t>(value)); }

  size_t size() const { return out_->size(); }

 private:
  std::string* out_;
};

// Reads fields back. Errors are sticky: a read past the end yields 0, and so does every read
// after it, and ok() turns false. So a decoder reads a whole record, then checks ok() once.
class ByteReader {
 public:
  explicit ByteReader(absl::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  T Get() {
    static_assert(std::is_integral_v<T> && sizeof(T) <= 8);
    if (!ok_ || bytes_.size() < sizeof(T)) {
      ok_ = false;
      return 0;
    }
    uint64_t bits = 0;
    std::memcpy(&bits, bytes_.data(), sizeof(T));
    bits = ToLittleEndian(bits);
    bytes_.remove_prefix(sizeof(T));
    return static_cast<T>(bits);
  }
  double GetDouble() { return std::bit_cast<double>(Get<uint64_t>()); }

  bool ok() const { return ok_; }
  size_t remaining() const { return bytes_.size(); }

 private:
  absl::string_view bytes_;
  bool ok_ = true;
};

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

#endif  // VOUCH_VERIFIERS_FRAUD_INTERNAL_SNAPSHOT_FORMAT_H_
