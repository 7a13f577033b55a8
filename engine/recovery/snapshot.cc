#include "engine/recovery/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/common/byte_coding.h"
#include "engine/journal/crc32c.h"
#include "engine/journal/segment.h"
#include "engine/journal/sync_hook.h"

namespace vouch {
namespace {

constexpr char kMagic[8] = {'V', 'O', 'U', 'C', 'H', 'S', 'N', 'P'};
constexpr size_t kHeaderBytes = 8 + 8 + 8;

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
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  auto damaged = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("snapshot ", path, ": ", why));
  };
  if (bytes.size() < kHeaderBytes + 4 || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    return damaged("bad header");
  }
  ByteReader header(absl::string_view(bytes).substr(8, kHeaderBytes - 8));
  loaded.covered_record_index = header.Get<uint64_t>();
  const uint64_t size = header.Get<uint64_t>();
  if (size != bytes.size() - kHeaderBytes - 4) return damaged("length does not match the file");
  if (loaded.covered_record_index != snapshots->back().first) {
    return damaged("covered index does not match the file name");
  }
  const uint32_t stored =
      ByteReader(absl::string_view(bytes).substr(bytes.size() - 4)).Get<uint32_t>();
  if (journal::crc32c::Unmask(stored) !=
      journal::crc32c::Value(bytes.data(), bytes.size() - 4)) {
    return damaged("CRC mismatch");
  }
  loaded.state = bytes.substr(kHeaderBytes, size);
  return std::optional<LoadedSnapshot>(std::move(loaded));
}

absl::Status WriteSnapshot(const std::string& dir, uint64_t covered_record_index,
                           absl::string_view state) {
  std::string bytes(kMagic, 8);
  ByteWriter writer(&bytes);
  writer.Put<uint64_t>(covered_record_index);
  writer.PutBytes(state);  // Length, then the state.
  writer.Put<uint32_t>(
      journal::crc32c::Mask(journal::crc32c::Value(bytes.data(), bytes.size())));

  const std::string name = SnapshotName(covered_record_index);
  const std::string path = absl::StrCat(dir, "/", name);
  const std::string temporary = absl::StrCat(path, ".tmp");
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open", temporary);
  // A failure below leaves a partial temporary (a full disk, typically): remove it, or every
  // failed attempt would leave one more file behind. The error is the first failure's.
  auto fail = [&](absl::string_view what) {
    const absl::Status status = Errno(what, temporary);
    close(fd);
    std::remove(temporary.c_str());
    return status;
  };
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    if (n == 0) {
      errno = EIO;  // write(2) of a non-empty buffer wrote nothing: no errno to report.
      return fail("write");
    }
    written += static_cast<size_t>(n);
  }
  if (journal::DataSync(fd, temporary) != 0) return fail("fdatasync");
  if (close(fd) != 0) {
    const absl::Status status = Errno("close", temporary);
    std::remove(temporary.c_str());
    return status;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const absl::Status status = Errno("rename", temporary);
    std::remove(temporary.c_str());
    return status;
  }
  if (absl::Status status = SyncDirectory(dir); !status.ok()) return status;
  absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> snapshots = ListSnapshots(dir);
  if (!snapshots.ok()) return snapshots.status();
  for (const auto& [index, older] : *snapshots) {
    if (index < covered_record_index) std::remove(absl::StrCat(dir, "/", older).c_str());
  }
  return absl::OkStatus();
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
  std::string state;
  if (absl::Status status = shadow_->Save(&state); !status.ok()) return status;
  if (absl::Status status = WriteSnapshot(dir_, next_record_index_, state); !status.ok()) {
    return status;
  }
  covered_record_index_ = next_record_index_;
  ++snapshots_;
  return journal::RemoveSegmentsBelow(dir_, covered_record_index_);
}

}  // namespace vouch
