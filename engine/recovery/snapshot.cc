#include "engine/recovery/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/common/byte_coding.h"
#include "engine/journal/crc32c.h"
#include "engine/journal/segment.h"
#include "engine/journal/sync_hook.h"

namespace vouch {
namespace {

// Format 2: magic, covered index, state, state length, CRC. Format 1: magic, covered index,
// state length, state, CRC.
constexpr char kMagic[8] = {'V', 'O', 'U', 'C', 'H', 'S', 'N', '2'};
constexpr char kMagicFormat1[8] = {'V', 'O', 'U', 'C', 'H', 'S', 'N', 'P'};
constexpr size_t kHeaderBytes = 8 + 8;       // Magic, covered index.
constexpr size_t kTrailerBytes = 8 + 4;      // State length, CRC.
constexpr size_t kFormat1HeaderBytes = 8 + 8 + 8;

std::string SnapshotName(uint64_t covered_record_index) {
  return absl::StrFormat("snapshot-%020u.snap", covered_record_index);
}

bool ParseSnapshotName(const std::string& name, uint64_t* covered_record_index) {
  unsigned long long index = 0;
  char tail = 0;
  if (name.size() != 34 || std::sscanf(name.c_str(), "snapshot-%20llu.sna%c", &index, &tail) != 2 ||
      tail != 'p') {
    return false;
  }
  *covered_record_index = index;
  return true;
}

// A snapshot's temporary name: SnapshotName + ".tmp".
bool IsSnapshotTemporary(const std::string& name) {
  uint64_t index = 0;
  return name.size() == 38 && name.compare(34, 4, ".tmp") == 0 &&
         ParseSnapshotName(name.substr(0, 34), &index);
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> ListSnapshots(const std::string& dir) {
  std::vector<std::pair<uint64_t, std::string>> snapshots;
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) {
    if (errno == ENOENT) return snapshots;
    return Errno("opendir", dir);
  }
  while (const dirent* entry = readdir(handle)) {
    uint64_t index = 0;
    if (ParseSnapshotName(entry->d_name, &index)) snapshots.emplace_back(index, entry->d_name);
  }
  closedir(handle);
  std::sort(snapshots.begin(), snapshots.end());
  return snapshots;
}

absl::StatusOr<std::vector<std::string>> ListSnapshotTemporaries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) {
    if (errno == ENOENT) return names;
    return Errno("opendir", dir);
  }
  while (const dirent* entry = readdir(handle)) {
    if (IsSnapshotTemporary(entry->d_name)) names.emplace_back(entry->d_name);
  }
  closedir(handle);
  return names;
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir);
  const int result = journal::DirectorySync(fd, dir);
  close(fd);
  if (result != 0) return Errno("fsync", dir);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<LoadedSnapshot>> LoadNewestSnapshot(const std::string& dir) {
  absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> snapshots = ListSnapshots(dir);
  if (!snapshots.ok()) return snapshots.status();
  if (snapshots->empty()) return std::optional<LoadedSnapshot>();
  LoadedSnapshot loaded;
  loaded.file = snapshots->back().second;
  const std::string path = absl::StrCat(dir, "/", loaded.file);
  auto damaged = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("snapshot ", path, ": ", why));
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  struct stat file_stat;
  if (fstat(fd, &file_stat) != 0) {
    const absl::Status status = Errno("fstat", path);
    close(fd);
    return status;
  }
  const size_t file_bytes = static_cast<size_t>(file_stat.st_size);
  if (file_bytes < kHeaderBytes + kTrailerBytes) {
    close(fd);
    return damaged("bad header");
  }
  void* mapped = mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  const absl::Status map_status = mapped == MAP_FAILED ? Errno("mmap", path) : absl::OkStatus();
  close(fd);  // The mapping keeps the file.
  if (!map_status.ok()) return map_status;
  madvise(mapped, file_bytes, MADV_SEQUENTIAL);  // Read once, front to back; a hint only.
  loaded.mapping = std::shared_ptr<const char>(
      static_cast<const char*>(mapped),
      [file_bytes](const char* p) { munmap(const_cast<char*>(p), file_bytes); });
  const absl::string_view bytes(loaded.mapping.get(), file_bytes);
  const bool format1 = std::memcmp(bytes.data(), kMagicFormat1, 8) == 0;
  if (!format1 && std::memcmp(bytes.data(), kMagic, 8) != 0) return damaged("bad header");
  ByteReader header(bytes.substr(8, 8));
  loaded.covered_record_index = header.Get<uint64_t>();
  const size_t state_offset = format1 ? kFormat1HeaderBytes : kHeaderBytes;
  const uint64_t size = format1
      ? ByteReader(bytes.substr(16, 8)).Get<uint64_t>()
      : ByteReader(bytes.substr(bytes.size() - kTrailerBytes, 8)).Get<uint64_t>();
  const size_t framing_bytes = format1 ? kFormat1HeaderBytes + 4 : kHeaderBytes + kTrailerBytes;
  if (bytes.size() < framing_bytes || size != bytes.size() - framing_bytes) {
    return damaged("length does not match the file");
  }
  if (loaded.covered_record_index != snapshots->back().first) {
    return damaged("covered index does not match the file name");
  }
  const uint32_t stored = ByteReader(bytes.substr(bytes.size() - 4)).Get<uint32_t>();
  if (journal::crc32c::Unmask(stored) !=
      journal::crc32c::Value(bytes.data(), bytes.size() - 4)) {
    return damaged("CRC mismatch");
  }
  loaded.state = bytes.substr(state_offset, size);
  return std::optional<LoadedSnapshot>(std::move(loaded));
}

absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> SnapshotFileWriter::Open(
    const std::string& dir, uint64_t covered_record_index) {
  std::string path = absl::StrCat(dir, "/", SnapshotName(covered_record_index));
  const std::string temporary = absl::StrCat(path, ".tmp");
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open", temporary);
  std::unique_ptr<SnapshotFileWriter> writer(
      new SnapshotFileWriter(dir, covered_record_index, std::move(path), fd));
  std::string header(kMagic, 8);
  ByteWriter(&header).Put<uint64_t>(covered_record_index);
  if (absl::Status status = writer->Write(header); !status.ok()) return status;
  return writer;
}

SnapshotFileWriter::SnapshotFileWriter(std::string dir, uint64_t covered_record_index,
                                       std::string path, int fd)
    : dir_(std::move(dir)),
      covered_record_index_(covered_record_index),
      path_(std::move(path)),
      temporary_(absl::StrCat(path_, ".tmp")),
      fd_(fd) {}

SnapshotFileWriter::~SnapshotFileWriter() {
  if (!committed_ && failure_.ok()) (void)Fail(absl::AbortedError("snapshot abandoned"));
}

absl::Status SnapshotFileWriter::Fail(absl::Status status) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  std::remove(temporary_.c_str());
  failure_ = status;
  return status;
}

absl::Status SnapshotFileWriter::Write(absl::string_view bytes) {
  if (!failure_.ok()) return failure_;
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(Errno("write", temporary_));
    if (n == 0) {
      errno = EIO;  // write(2) of a non-empty buffer wrote nothing: no errno to report.
      return Fail(Errno("write", temporary_));
    }
    written += static_cast<size_t>(n);
  }
  crc_ = journal::crc32c::Extend(crc_, bytes.data(), bytes.size());
  return absl::OkStatus();
}

absl::Status SnapshotFileWriter::Append(absl::string_view bytes) {
  state_bytes_ += bytes.size();
  return Write(bytes);
}

absl::Status SnapshotFileWriter::Commit() {
  if (!failure_.ok()) return failure_;
  assert(!committed_);
  std::string trailer;
  ByteWriter(&trailer).Put<uint64_t>(state_bytes_);
  if (absl::Status status = Write(trailer); !status.ok()) return status;
  trailer.clear();
  ByteWriter(&trailer).Put<uint32_t>(journal::crc32c::Mask(crc_));
  if (absl::Status status = Write(trailer); !status.ok()) return status;
  if (journal::DataSync(fd_, temporary_) != 0) return Fail(Errno("fdatasync", temporary_));
  const int fd = fd_;
  fd_ = -1;
  if (close(fd) != 0) return Fail(Errno("close", temporary_));
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0) {
    return Fail(Errno("rename", temporary_));
  }
  committed_ = true;
  if (absl::Status status = SyncDirectory(dir_); !status.ok()) return status;
  absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> snapshots = ListSnapshots(dir_);
  if (!snapshots.ok()) return snapshots.status();
  for (const auto& [index, older] : *snapshots) {
    if (index < covered_record_index_) std::remove(absl::StrCat(dir_, "/", older).c_str());
  }
  return absl::OkStatus();
}

absl::Status WriteSnapshot(const std::string& dir, uint64_t covered_record_index,
                           absl::string_view state) {
  absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> writer =
      SnapshotFileWriter::Open(dir, covered_record_index);
  if (!writer.ok()) return writer.status();
  if (absl::Status status = (*writer)->Append(state); !status.ok()) return status;
  return (*writer)->Commit();
}

absl::StatusOr<uint64_t> CountSnapshotTemporaries(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = ListSnapshotTemporaries(dir);
  if (!names.ok()) return names.status();
  return names->size();
}

absl::StatusOr<uint64_t> RemoveSnapshotTemporaries(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = ListSnapshotTemporaries(dir);
  if (!names.ok()) return names.status();
  uint64_t removed = 0;
  for (const std::string& name : *names) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (unlink(path.c_str()) == 0) {
      ++removed;
    } else if (errno != ENOENT && errno != EISDIR) {
      // A directory by that name is not a temporary the engine wrote: it is left alone (and a
      // snapshot that needs its name fails, counted, until an operator removes it).
      return Errno("unlink", path);
    }
  }
  return removed;
}

Snapshotter::Snapshotter(std::string dir, std::unique_ptr<Replayer> shadow,
                         uint64_t from_record_index, uint64_t interval_records)
    : dir_(std::move(dir)),
      shadow_(std::move(shadow)),
      interval_records_(interval_records),
      next_record_index_(from_record_index),
      covered_record_index_(from_record_index) {}

absl::Status Snapshotter::Poll() {
  if (broken_) {
    return absl::FailedPreconditionError(
        "snapshots stopped: an earlier journal read or replay failed");
  }
  absl::Status failure;
  auto visit = [&](journal::RecordType type, uint64_t seq, const char* payload, size_t size,
                   const journal::RecordLocation& where) {
    if (failure.ok()) failure = shadow_->Apply(type, seq, payload, size, where);
  };
  absl::StatusOr<journal::RecoveryScan> scan =
      journal::ScanClosedSegments(dir_, next_record_index_, visit);
  if (!scan.ok() || !failure.ok()) {
    broken_ = true;
    return !scan.ok() ? scan.status() : failure;
  }
  if (scan->segments > 0 && scan->next_record_index > next_record_index_) {
    next_record_index_ = scan->next_record_index;
  }
  if (next_record_index_ - covered_record_index_ < interval_records_) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> file =
      SnapshotFileWriter::Open(dir_, next_record_index_);
  if (!file.ok()) return file.status();
  if (absl::Status status =
          shadow_->Save([&](absl::string_view bytes) { return (*file)->Append(bytes); });
      !status.ok()) {
    return status;  // The writer removes its temporary.
  }
  if (absl::Status status = (*file)->Commit(); !status.ok()) return status;
  covered_record_index_ = next_record_index_;
  ++snapshots_;
  return journal::RemoveSegmentsBelow(dir_, covered_record_index_);
}

}  // namespace vouch
