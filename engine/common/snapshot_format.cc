#include "engine/common/snapshot_format.h"

#include <cassert>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vouch::verifiers::snapshot {

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
  // The length is the header's last field, just before the payload.
  PutFixed(&(*out)[payload_offset - sizeof(uint64_t)], uint64_t{out->size() - payload_offset});
}

absl::StatusOr<OpenedSnapshot> OpenSnapshot(absl::string_view bytes, uint64_t magic,
                                            const Versions& versions, absl::string_view what) {
  assert(versions.oldest <= versions.current &&
         versions.first_without_trailer <= versions.current);
  ByteReader header(bytes);
  const auto magic_found = header.Get<uint64_t>();
  const auto version = header.Get<uint32_t>();
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
  if (version < versions.oldest || version > versions.current) {
    return Invalid(what, absl::StrFormat("unsupported format version %d (this build reads %d to "
                                         "%d)",
                                         version, versions.oldest, versions.current));
  }
  const size_t trailer_bytes = version < versions.first_without_trailer ? kOldTrailerBytes : 0;
  // Written as differences: a damaged length near 2^64 must not overflow a sum.
  if (header.remaining() < trailer_bytes || header.remaining() - trailer_bytes < payload_bytes) {
    return Invalid(what, absl::StrFormat("truncated: the header says %d payload bytes and %d "
                                         "bytes of trailer follow it, only %d do",
                                         payload_bytes, trailer_bytes, header.remaining()));
  }
  if (header.remaining() - trailer_bytes > payload_bytes) {
    return Invalid(what, absl::StrFormat("%d trailing bytes after the snapshot",
                                         header.remaining() - trailer_bytes - payload_bytes));
  }
  // An old trailer is not verified: see the header comment.
  return OpenedSnapshot{version, bytes.substr(kHeaderBytes, payload_bytes)};
}

}  // namespace vouch::verifiers::snapshot
