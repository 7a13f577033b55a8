#include "engine/journal/segment_format.h"

#include <cstdio>
#include <cstring>

#include "engine/common/byte_coding.h"
#include "engine/journal/crc32c.h"

namespace vouch::journal {
namespace {

constexpr absl::string_view kPrefix = "journal-";
constexpr absl::string_view kSuffix = ".log";
constexpr size_t kIndexDigits = 20;  // Enough for any uint64_t, so names sort like indices.

}  // namespace

std::string SegmentFileName(uint64_t first_record_index) {
  char name[kPrefix.size() + kIndexDigits + kSuffix.size() + 1];
  std::snprintf(name, sizeof(name), "journal-%020llu.log",
                static_cast<unsigned long long>(first_record_index));
  return name;
}

bool ParseSegmentFileName(absl::string_view name, uint64_t* first_record_index) {
  if (name.size() != kPrefix.size() + kIndexDigits + kSuffix.size()) return false;
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  uint64_t value = 0;
  for (char c : name.substr(kPrefix.size(), kIndexDigits)) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;  // 20 digits can exceed 2^64.
    value = value * 10 + digit;
  }
  *first_record_index = value;
  return true;
}

void EncodeSegmentHeader(uint64_t first_record_index, char* out) {
  std::memcpy(out, kSegmentMagic, sizeof(kSegmentMagic));
  char* p = PutFixed(out + sizeof(kSegmentMagic), kSegmentFormatVersion);
  p = PutFixed(p, first_record_index);
  const size_t covered_bytes = static_cast<size_t>(p - out);
  PutFixed(p, crc32c::Mask(crc32c::Value(out, covered_bytes)));
}

bool DecodeSegmentHeader(const char* data, uint64_t* first_record_index) {
  constexpr size_t kCrcOffset = kSegmentHeaderBytes - 4;
  if (std::memcmp(data, kSegmentMagic, sizeof(kSegmentMagic)) != 0) return false;
  if (crc32c::Unmask(DecodeFixed32(data + kCrcOffset)) != crc32c::Value(data, kCrcOffset)) {
    return false;
  }
  if (DecodeFixed32(data + sizeof(kSegmentMagic)) != kSegmentFormatVersion) return false;
  *first_record_index = DecodeFixed64(data + sizeof(kSegmentMagic) + 4);
  return true;
}

uint32_t RecordCrc(uint8_t type, uint64_t seq, const char* payload, size_t size) {
  char covered[1 + 8];
  PutFixed(PutFixed(covered, type), seq);
  return crc32c::Mask(crc32c::Extend(crc32c::Value(covered, sizeof(covered)), payload, size));
}

void EncodeRecordHeader(RecordType type, uint64_t seq, const char* payload, size_t size,
                        char* out) {
  const auto type_byte = static_cast<uint8_t>(type);
  char* p = PutFixed(out, static_cast<uint32_t>(size));
  p = PutFixed(p, RecordCrc(type_byte, seq, payload, size));
  p = PutFixed(p, type_byte);
  PutFixed(p, seq);
}

}  // namespace vouch::journal
