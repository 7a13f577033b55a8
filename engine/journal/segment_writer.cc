#include "engine/journal/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/journal/internal/file_util.h"
#include "engine/journal/segment_format.h"
#include "engine/journal/sync_hook.h"

namespace vouch::journal {

using internal::ErrnoError;

absl::StatusOr<std::unique_ptr<SegmentWriter>> SegmentWriter::Open(const JournalOptions& options,
                                                                   uint64_t next_record_index) {
  if (options.dir.empty()) return absl::InvalidArgumentError("journal dir is empty");
  if (options.segment_bytes_max <= kSegmentHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment_bytes_max ", options.segment_bytes_max,
                     " must exceed the segment header (", kSegmentHeaderBytes, " bytes)"));
  }
  if (options.buffer_bytes < kRecordBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("buffer_bytes ", options.buffer_bytes,
                                                   " must hold the largest record (",
                                                   kRecordBytesMax, " bytes)"));
  }
  if (absl::Status status = internal::CreateDirectories(options.dir); !status.ok()) {
    return status;
  }
  absl::StatusOr<std::vector<internal::SegmentFile>> segments =
      internal::ListSegments(options.dir);
  if (!segments.ok()) return segments.status();
  if (!segments->empty() && segments->back().first_record_index > next_record_index) {
    return absl::FailedPreconditionError(
        absl::StrCat(internal::JoinPath(options.dir, segments->back().name),
                     " starts beyond the requested next record index ", next_record_index,
                     "; open the writer at ScanJournal's next_record_index"));
  }
  const int dir_fd = ::open(options.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError(errno, "open", options.dir);
  std::unique_ptr<SegmentWriter> writer(new SegmentWriter(options, next_record_index, dir_fd));
  if (absl::Status status = writer->StartSegment(); !status.ok()) return status;
  return writer;
}

SegmentWriter::SegmentWriter(const JournalOptions& options, uint64_t next_record_index,
                             int dir_fd)
    : options_(options),
      buffer_(new char[options.buffer_bytes]),
      dir_fd_(dir_fd),
      next_record_index_(next_record_index),
      written_record_index_(next_record_index),
      synced_record_index_(next_record_index) {}

SegmentWriter::~SegmentWriter() {
  if (fd_ >= 0) ::close(fd_);
  ::close(dir_fd_);
}

absl::Status SegmentWriter::StartSegment() {
  assert(fd_ < 0);
  assert(buffered_bytes_ == 0);
  segment_path_ =
      internal::JoinPath(options_.dir, SegmentFileName(written_record_index_));
  int fd = ::open(segment_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    // Left by a crash between creating a segment and writing its first record. Overwriting it
    // in place (rather than unlinking it) keeps a file that names the next record index in the
    // directory at every moment, so the index survives even if every older segment was
    // compacted away.
    struct stat info;
    if (::stat(segment_path_.c_str(), &info) != 0) return ErrnoError(errno, "stat", segment_path_);
    if (static_cast<uint64_t>(info.st_size) > kSegmentHeaderBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(segment_path_, " already holds records; open the writer at ScanJournal's",
                       " next_record_index"));
    }
    fd = ::open(segment_path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  }
  if (fd < 0) return ErrnoError(errno, "create", segment_path_);
  fd_ = fd;
  char header[kSegmentHeaderBytes];
  EncodeSegmentHeader(written_record_index_, header);
  if (absl::Status status = internal::WriteFully(fd_, header, sizeof(header), segment_path_);
      !status.ok()) {
    return status;
  }
  segment_bytes_ = kSegmentHeaderBytes;
  dir_sync_pending_ = true;
  return absl::OkStatus();
}

bool SegmentWriter::Add(RecordType type, uint64_t seq, const char* payload, size_t size) {
  assert(size <= kRecordPayloadBytesMax);
  const size_t framed_bytes = kRecordHeaderBytes + size;
  if (!error_.ok() || buffered_bytes_ + framed_bytes > options_.buffer_bytes ||
      segment_bytes_ >= options_.segment_bytes_max) {
    return false;
  }
  char* out = buffer_.get() + buffered_bytes_;
  EncodeRecordHeader(type, seq, payload, size, out);
  std::memcpy(out + kRecordHeaderBytes, payload, size);
  buffered_bytes_ += framed_bytes;
  segment_bytes_ += framed_bytes;
  ++next_record_index_;
  return true;
}

absl::Status SegmentWriter::Write() {
  if (!error_.ok()) return error_;
  if (buffered_bytes_ > 0) {
    if (absl::Status status =
            internal::WriteFully(fd_, buffer_.get(), buffered_bytes_, segment_path_);
        !status.ok()) {
      return Fail(status);
    }
    counters_.records += next_record_index_ - written_record_index_;
    counters_.bytes += buffered_bytes_;
    ++counters_.writes;
    written_record_index_ = next_record_index_;
    buffered_bytes_ = 0;
  }
  if (segment_bytes_ >= options_.segment_bytes_max) return Rotate();
  return absl::OkStatus();
}

absl::Status SegmentWriter::Rotate() {
  // The full segment must be complete on disk before a successor exists (see the header).
  if (DataSync(fd_, segment_path_) != 0) {
    return Fail(ErrnoError(errno, "fdatasync", segment_path_));
  }
  if (dir_sync_pending_) {
    if (DirectorySync(dir_fd_, options_.dir) != 0) {
      return Fail(ErrnoError(errno, "fsync", options_.dir));
    }
    dir_sync_pending_ = false;
  }
  synced_record_index_ = written_record_index_;
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Fail(ErrnoError(errno, "close", segment_path_));
  }
  fd_ = -1;
  ++counters_.rotations;
  if (absl::Status status = StartSegment(); !status.ok()) return Fail(status);
  return absl::OkStatus();
}

absl::Status SegmentWriter::Sync() {
  if (!error_.ok()) return error_;
  if (synced_record_index_ == written_record_index_ && !dir_sync_pending_) {
    return absl::OkStatus();
  }
  if (DataSync(fd_, segment_path_) != 0) {
    return Fail(ErrnoError(errno, "fdatasync", segment_path_));
  }
  if (dir_sync_pending_) {
    if (DirectorySync(dir_fd_, options_.dir) != 0) {
      return Fail(ErrnoError(errno, "fsync", options_.dir));
    }
    dir_sync_pending_ = false;
  }
  synced_record_index_ = written_record_index_;
  ++counters_.syncs;
  return absl::OkStatus();
}

absl::Status SegmentWriter::Fail(absl::Status status) {
  assert(!status.ok());
  if (error_.ok()) error_ = status;
  return error_;
}

}  // namespace vouch::journal
