#include "engine/journal/segment.h"

#include <errno.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/common/byte_coding.h"
#include "engine/journal/internal/file_util.h"
#include "engine/journal/segment_format.h"

namespace vouch::journal {
namespace {

enum class RecordCheck { kValid, kIncomplete, kBadLength, kBadCrc };

const char* CheckName(RecordCheck check) {
  switch (check) {
    case RecordCheck::kValid:
      return "valid";
    case RecordCheck::kIncomplete:
      return "incomplete record";
    case RecordCheck::kBadLength:
      return "bad record length";
    case RecordCheck::kBadCrc:
      return "CRC mismatch";
  }
  return "?";
}

// Checks the record framed at data[offset]; on kValid sets *payload_bytes.
RecordCheck CheckRecord(const std::string& data, size_t offset, size_t* payload_bytes) {
  const size_t left = data.size() - offset;
  if (left < kRecordHeaderBytes) return RecordCheck::kIncomplete;
  const char* record = data.data() + offset;
  const size_t length = DecodeFixed32(record + kRecordLengthOffset);
  if (length > kRecordPayloadBytesMax) return RecordCheck::kBadLength;
  if (length > left - kRecordHeaderBytes) return RecordCheck::kIncomplete;
  const uint8_t type = static_cast<uint8_t>(record[kRecordTypeOffset]);
  const uint64_t seq = DecodeFixed64(record + kRecordTypeOffset + 1);
  if (RecordCrc(type, seq, record + kRecordHeaderBytes, length) !=
      DecodeFixed32(record + kRecordCrcOffset)) {
    return RecordCheck::kBadCrc;
  }
  *payload_bytes = length;
  return RecordCheck::kValid;
}

// The first offset at or after `from` where a valid record starts, or data.size().
// This tells a torn tail (nothing valid after the damage) from corruption in the middle.
// A random 4-byte length rarely fits, so most offsets cost one load.
size_t FindValidRecord(const std::string& data, size_t from) {
  size_t payload_bytes;
  for (size_t offset = from; offset + kRecordHeaderBytes <= data.size(); ++offset) {
    if (CheckRecord(data, offset, &payload_bytes) == RecordCheck::kValid) return offset;
  }
  return data.size();
}

class Scanner {
 public:
  // closed_only: read-only, every segment but the newest (which the writer may be appending to),
  // skipping records below from_record_index; any damage is corruption there.
  // torn_tail: kReport finds a torn tail in the last segment as kCut does but leaves the file.
  Scanner(const std::string& dir, RecordVisitor visitor, bool closed_only,
          uint64_t from_record_index, TornTail torn_tail)
      : dir_(dir),
        visitor_(visitor),
        closed_only_(closed_only),
        from_record_index_(from_record_index),
        torn_tail_(torn_tail) {}

  absl::StatusOr<RecoveryScan> Run() {
    absl::StatusOr<std::vector<internal::SegmentFile>> segments = internal::ListSegments(dir_);
    if (!segments.ok()) return segments.status();
    const size_t count = segments->size() - (closed_only_ && !segments->empty() ? 1 : 0);
    for (size_t i = 0; i < count; ++i) {
      const internal::SegmentFile& segment = (*segments)[i];
      const bool before_from = i + 1 < segments->size() &&
                               (*segments)[i + 1].first_record_index <= from_record_index_;
      if (before_from) continue;  // Wholly below from_record_index: not even read.
      if (result_.segments == 0) {
        result_.next_record_index = segment.first_record_index;
      } else if (segment.first_record_index != result_.next_record_index) {
        return absl::DataLossError(absl::StrCat(
            segment.name, ": starts at record index ", segment.first_record_index,
            " but the previous segment ends at ", result_.next_record_index, " (",
            segment.first_record_index > result_.next_record_index ? "gap" : "overlap", ")"));
      }
      const bool last = !closed_only_ && i + 1 == segments->size();
      if (absl::Status status = ScanSegment(segment, last); !status.ok()) return status;
      ++result_.segments;
    }
    return result_;
  }

 private:
  absl::Status ScanSegment(const internal::SegmentFile& segment, bool last) {
    const std::string path = internal::JoinPath(dir_, segment.name);
    if (absl::Status status = internal::ReadFile(path, &data_); !status.ok()) return status;
    // A crash right after creating the last segment leaves it empty: nothing was acknowledged.
    if (last && data_.empty()) return absl::OkStatus();
    uint64_t header_index = 0;
    if (data_.size() < kSegmentHeaderBytes || !DecodeSegmentHeader(data_.data(), &header_index)) {
      if (!last) return absl::DataLossError(absl::StrCat(segment.name, ": bad segment header"));
      return Damaged(segment.name, path, 0, "bad segment header", kSegmentHeaderBytes);
    }
    if (header_index != segment.first_record_index) {
      return absl::DataLossError(absl::StrCat(segment.name, ": header says first record index ",
                                              header_index, ", the file name says ",
                                              segment.first_record_index));
    }
    size_t offset = kSegmentHeaderBytes;
    while (offset < data_.size()) {
      size_t payload_bytes = 0;
      const RecordCheck check = CheckRecord(data_, offset, &payload_bytes);
      if (check != RecordCheck::kValid) {
        if (!last) return DataLossAt(segment.name, offset, CheckName(check));
        return Damaged(segment.name, path, offset, CheckName(check), offset + 1);
      }
      const char* record = data_.data() + offset;
      const uint8_t type = static_cast<uint8_t>(record[kRecordTypeOffset]);
      if (!IsKnownRecordType(type)) {
        return absl::FailedPreconditionError(
            absl::StrCat(segment.name, " offset ", offset, ": unknown record type ", type,
                         " (written by a newer version?)"));
      }
      const RecordLocation where{segment.name, offset, result_.next_record_index};
      if (result_.next_record_index >= from_record_index_) {
        visitor_(static_cast<RecordType>(type), DecodeFixed64(record + kRecordTypeOffset + 1),
                 record + kRecordHeaderBytes, payload_bytes, where);
        ++result_.records;
      }
      ++result_.next_record_index;
      offset += kRecordHeaderBytes + payload_bytes;
    }
    return absl::OkStatus();
  }

  // Damage at `offset` in the last segment: a torn tail if no valid record starts at or after
  // `search_from`, corruption otherwise.
  absl::Status Damaged(const std::string& name, const std::string& path, size_t offset,
                       const char* what, size_t search_from) {
    const size_t valid_offset = FindValidRecord(data_, search_from);
    if (valid_offset < data_.size()) {
      return DataLossAt(name, offset,
                        absl::StrCat(what, "; a valid record follows at offset ", valid_offset));
    }
    if (torn_tail_ == TornTail::kCut) {
      if (absl::Status status = internal::TruncateFile(path, offset); !status.ok()) return status;
    }
    result_.truncated = true;
    result_.truncated_file = path;
    result_.truncated_offset = offset;
    result_.truncated_bytes = data_.size() - offset;
    return absl::OkStatus();
  }

  static absl::Status DataLossAt(absl::string_view name, size_t offset, absl::string_view what) {
    return absl::DataLossError(absl::StrCat(name, " offset ", offset, ": ", what));
  }

  const std::string& dir_;
  const RecordVisitor visitor_;
  const bool closed_only_;
  const uint64_t from_record_index_;
  const TornTail torn_tail_;
  std::string data_;  // The current segment, reused across segments.
  RecoveryScan result_;
};

}  // namespace

absl::StatusOr<RecoveryScan> ScanJournal(const std::string& dir, RecordVisitor visitor,
                                         uint64_t from_record_index, TornTail torn_tail) {
  return Scanner(dir, visitor, /*closed_only=*/false, from_record_index, torn_tail).Run();
}

absl::StatusOr<RecoveryScan> ScanClosedSegments(const std::string& dir,
                                                uint64_t from_record_index,
                                                RecordVisitor visitor) {
  return Scanner(dir, visitor, /*closed_only=*/true, from_record_index, TornTail::kReport).Run();
}

absl::Status RemoveSegmentsBelow(const std::string& dir, uint64_t record_index) {
  absl::StatusOr<std::vector<internal::SegmentFile>> segments = internal::ListSegments(dir);
  if (!segments.ok()) return segments.status();
  bool removed = false;
  // Segment i holds indices [first_i, first_{i+1}); oldest first, so a crash midway leaves a
  // journal that still chains.
  for (size_t i = 0; i + 1 < segments->size(); ++i) {
    if ((*segments)[i + 1].first_record_index > record_index) break;
    const std::string path = internal::JoinPath(dir, (*segments)[i].name);
    if (::unlink(path.c_str()) != 0) return internal::ErrnoError(errno, "unlink", path);
    removed = true;
  }
  return removed ? internal::SyncDirectory(dir) : absl::OkStatus();
}

}  // namespace vouch::journal
