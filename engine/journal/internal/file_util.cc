#include "engine/journal/internal/file_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/journal/segment_format.h"
#include "engine/journal/sync_hook.h"

namespace vouch::journal::internal {
namespace {

// Closes a file descriptor on every return path.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  const int fd_;
};

}  // namespace

absl::Status ErrnoError(int error_number, absl::string_view operation, absl::string_view path) {
  return absl::ErrnoToStatus(error_number,
                             absl::StrCat(operation, " ", path, ": ", strerror(error_number)));
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty() || dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

absl::StatusOr<std::vector<SegmentFile>> ListSegments(const std::string& dir) {
  std::vector<SegmentFile> segments;
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) {
    if (errno == ENOENT) return segments;
    return ErrnoError(errno, "opendir", dir);
  }
  errno = 0;
  while (const dirent* entry = ::readdir(handle)) {
    SegmentFile segment;
    if (ParseSegmentFileName(entry->d_name, &segment.first_record_index)) {
      segment.name = entry->d_name;
      segments.push_back(std::move(segment));
    }
  }
  const int read_error = errno;
  ::closedir(handle);
  if (read_error != 0) return ErrnoError(read_error, "readdir", dir);
  std::sort(segments.begin(), segments.end(), [](const SegmentFile& a, const SegmentFile& b) {
    return a.first_record_index < b.first_record_index;
  });
  return segments;
}

absl::Status CreateDirectories(const std::string& dir) {
  struct stat info;
  if (::stat(dir.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(dir, " exists and is not a directory"));
  }
  if (errno != ENOENT) return ErrnoError(errno, "stat", dir);
  const size_t slash = dir.find_last_of('/', dir.size() > 1 ? dir.size() - 2 : 0);
  const std::string parent =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : dir.substr(0, slash));
  if (absl::Status status = CreateDirectories(parent); !status.ok()) return status;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError(errno, "mkdir", dir);
  return SyncDirectory(parent);
}

absl::Status SyncDirectory(const std::string& dir) {
  ScopedFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "open", dir);
  if (DirectorySync(fd.get(), dir) != 0) return ErrnoError(errno, "fsync", dir);
  return absl::OkStatus();
}

absl::Status WriteFully(int fd, const char* data, size_t size, absl::string_view path) {
  while (size > 0) {
    const ssize_t written = ::write(fd, data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path);
    }
    data += written;
    size -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

absl::Status ReadFile(const std::string& path, std::string* contents) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "open", path);
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) return ErrnoError(errno, "fstat", path);
  contents->resize(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < contents->size()) {
    const ssize_t got = ::pread(fd.get(), contents->data() + done, contents->size() - done,
                                static_cast<off_t>(done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read", path);
    }
    if (got == 0) break;  // Shrunk since fstat; nobody else should be writing it.
    done += static_cast<size_t>(got);
  }
  contents->resize(done);
  return absl::OkStatus();
}

absl::Status TruncateFile(const std::string& path, uint64_t size) {
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "open", path);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoError(errno, "ftruncate", path);
  }
  if (DataSync(fd.get(), path) != 0) return ErrnoError(errno, "fsync", path);
  return absl::OkStatus();
}

}  // namespace vouch::journal::internal
