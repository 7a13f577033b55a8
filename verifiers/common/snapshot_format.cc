#include "verifiers/common/snapshot_format.h"

#include <algorithm>
#include <cassert>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/types/mix.h"

namespace vouch::verifiers::snapshot {
namespace {

// The first `count` (<= 8) bytes at `bytes` as a little-endian word.
uint64_t LoadWord(const char* bytes, size_t count) {
  uint64_t word = 0;
  std::memcpy(&word, bytes, count);
  return ToLittleEndian(word);
}

// Mix64 chained over 8-byte words. Mix64 is a bijection, so a change confined to one word
// always changes the result; other damage goes unnoticed with probability 2^-64. Four
// independent lanes, because one chain waits on Mix64's latency (two multiplies) per word and
// snapshots of a million accounts are near a hundred megabytes.
uint64_t Checksum(absl::string_view bytes) {
  uint64_t lane0 = Mix64(bytes.size()), lane1 = Mix64(1), lane2 = Mix64(2), lane3 = Mix64(3);
  const char* p = bytes.data();
  size_t left = bytes.size();
  for (; left >= 32; left -= 32, p += 32) {
    lane0 = Mix64(lane0 ^ LoadWord(p, 8));
    lane1 = Mix64(lane1 ^ LoadWord(p + 8, 8));
    lane2 = Mix64(lane2 ^ LoadWord(p + 16, 8));
    lane3 = Mix64(lane3 ^ LoadWord(p + 24, 8));
  }
  uint64_t hash = Mix64(Mix64(Mix64(lane0 ^ lane1) ^ lane2) ^ lane3);
  for (; left > 0; left -= std::min<size_t>(left, 8), p += 8) {
    hash = Mix64(hash ^ LoadWord(p, std::min<size_t>(left, 8)));
  }
  return hash;
}

}  // namespace

absl::Status Invalid(absl::string_view what, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", problem));
}

absl::Status WithContext(absl::string_view what, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

size_t BeginSnapshot(uint64_t magic, uint32_t version, std::string* out) {
  ByteWriter writer(out);
  writer.Put(magic);
  writer.Put(version);
  writer.Put(uint64_t{0});  // Payload length, filled in by FinishSnapshot.
  return out->size();
}

void FinishSnapshot(size_t payload_offset, std::string* out) {
  assert(payload_offset >= kHeaderBytes && payload_offset <= out->size());
  const size_t start = payload_offset - kHeaderBytes;
  std::string length;
  ByteWriter(&length).Put(uint64_t{out->size() - payload_offset});
  out->replace(payload_offset - length.size(), length.size(), length);
  ByteWriter(out).Put(Checksum(absl::string_view(*out).substr(start)));
}

absl::StatusOr<absl::string_view> OpenSnapshot(absl::string_view bytes, uint64_t magic,
                                               uint32_t version, absl::string_view what) {
  ByteReader header(bytes);
  const auto magic_found = header.Get<uint64_t>();
  const auto version_found = header.Get<uint32_t>();
  const auto payload_bytes = header.Get<uint64_t>();
  if (!header.ok()) {
    return Invalid(what, absl::StrFormat("truncated: %d bytes, the header alone needs %d",
                                         bytes.size(), kHeaderBytes));
  }
  if (magic_found != magic) {
    return Invalid(what, absl::StrFormat("wrong magic %#x (expected %#x): not this verifier's "
                                         "snapshot",
                                         magic_found, magic));
  }
  if (version_found != version) {
    return Invalid(what, absl::StrFormat("unsupported format version %d (this build reads %d)",
                                         version_found, version));
  }
  // Written as differences: a damaged length near 2^64 must not overflow a sum.
  if (header.remaining() < kTrailerBytes || header.remaining() - kTrailerBytes < payload_bytes) {
    return Invalid(what, absl::StrFormat("truncated: the header says %d payload bytes and an "
                                         "%d-byte checksum follow it, only %d do",
                                         payload_bytes, kTrailerBytes, header.remaining()));
  }
  if (header.remaining() - kTrailerBytes > payload_bytes) {
    return Invalid(what, absl::StrFormat("%d trailing bytes after the snapshot",
                                         header.remaining() - kTrailerBytes - payload_bytes));
  }
  const absl::string_view checked = bytes.substr(0, kHeaderBytes + payload_bytes);
  ByteReader trailer(bytes.substr(checked.size()));
  if (trailer.Get<uint64_t>() != Checksum(checked)) {
    return Invalid(what, "checksum mismatch: the snapshot is corrupted");
  }
  return bytes.substr(kHeaderBytes, payload_bytes);
}

}  // namespace vouch::verifiers::snapshot
