#include "tests/fuzz/journal_input.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "engine/journal/crc32c.h"
#include "engine/journal/segment_format.h"
#include "tests/engine/engine_test_util.h"

namespace vouch::fuzz {
namespace {

constexpr size_t kEntryHeaderBytes = 1 + 4 + 2;
constexpr size_t kSnapshotHeaderBytes = 8 + 8 + 8;  // Magic, covered index, state length.

uint64_t GetLittleEndian(const char* p, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return value;
}

void PutLittleEndian(uint64_t value, size_t bytes, char* p) {
  for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<char>(value >> (8 * i));
}

void FixSegment(uint8_t flags, std::string& bytes) {
  using namespace journal;
  if (bytes.size() < kSegmentHeaderBytes) return;
  if (flags & kFixSegmentHeaders) {
    constexpr size_t kCrcOffset = kSegmentHeaderBytes - 4;
    PutLittleEndian(crc32c::Mask(crc32c::Value(bytes.data(), kCrcOffset)), 4,
                    bytes.data() + kCrcOffset);
  }
  if ((flags & kFixRecordCrcs) == 0) return;
  for (size_t at = kSegmentHeaderBytes; bytes.size() - at >= kRecordHeaderBytes;) {
    char* record = bytes.data() + at;
    const size_t length = GetLittleEndian(record + kRecordLengthOffset, 4);
    if (length > bytes.size() - at - kRecordHeaderBytes) return;
    const uint32_t crc =
        RecordCrc(static_cast<uint8_t>(record[kRecordTypeOffset]),
                  GetLittleEndian(record + kRecordTypeOffset + 1, 8), record + kRecordHeaderBytes,
                  length);
    PutLittleEndian(crc, 4, record + kRecordCrcOffset);
    at += kRecordHeaderBytes + length;
  }
}

void FixSnapshot(std::string& bytes) {
  if (bytes.size() < kSnapshotHeaderBytes + 4) return;
  PutLittleEndian(bytes.size() - kSnapshotHeaderBytes - 4, 8, bytes.data() + 16);
  const size_t covered = bytes.size() - 4;
  PutLittleEndian(journal::crc32c::Mask(journal::crc32c::Value(bytes.data(), covered)), 4,
                  bytes.data() + covered);
}

}  // namespace

JournalInput UnpackJournalInput(const uint8_t* data, size_t size) {
  JournalInput input;
  if (size == 0) return input;
  input.flags = data[0];
  const char* at = reinterpret_cast<const char*>(data) + 1;
  size_t left = size - 1;
  while (left >= kEntryHeaderBytes && input.files.size() < kFilesMax) {
    JournalFile file;
    file.snapshot = (at[0] & 1) != 0;
    file.index = static_cast<uint32_t>(GetLittleEndian(at + 1, 4));
    const size_t length = std::min<size_t>(GetLittleEndian(at + 5, 2), left - kEntryHeaderBytes);
    file.bytes.assign(at + kEntryHeaderBytes, length);
    at += kEntryHeaderBytes + length;
    left -= kEntryHeaderBytes + length;
    input.files.push_back(std::move(file));
  }
  return input;
}

std::string PackJournalInput(const JournalInput& input) {
  std::string out(1, static_cast<char>(input.flags));
  for (const JournalFile& file : input.files) {
    char header[kEntryHeaderBytes];
    header[0] = file.snapshot ? 1 : 0;
    PutLittleEndian(file.index, 4, header + 1);
    PutLittleEndian(std::min<size_t>(file.bytes.size(), UINT16_MAX), 2, header + 5);
    out.append(header, sizeof(header));
    out.append(file.bytes, 0, UINT16_MAX);
  }
  return out;
}

void FixChecksums(JournalInput* input) {
  for (JournalFile& file : input->files) {
    if (!file.snapshot) {
      FixSegment(input->flags, file.bytes);
    } else if (input->flags & kFixSnapshots) {
      FixSnapshot(file.bytes);
    }
  }
}

std::string JournalFileName(const JournalFile& file) {
  if (file.snapshot) return absl::StrFormat("snapshot-%020u.snap", file.index);
  return journal::SegmentFileName(file.index);
}

Options RecoveryOptions(const std::string& dir, const Clock* clock) {
  Options options = vouch::testing::BankOptions(kAccounts);
  options.in_flight_capacity = 64;
  options.idempotency_window = 1024;
  options.history_capacity = 64;
  options.hold_capacity = 16;
  options.outcome_queue_capacity = 64;
  options.fraud_account_capacity = 64;
  options.inline_mode = true;
  options.clock = clock;
  options.durability.ack = AckPolicy::kWritten;
  options.durability.dir = dir;
  options.durability.segment_bytes_max = 64 * 1024;  // The smallest allowed: ~650 records.
  options.durability.snapshot_interval_records = 0;
  return options;
}

}  // namespace vouch::fuzz
