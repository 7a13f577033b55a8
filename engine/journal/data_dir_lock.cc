#include "engine/journal/data_dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/journal/internal/file_util.h"

namespace vouch::journal {
namespace {

// The pid holding a flock on the inode open as `fd`, from /proc/locks lines such as
// "1: FLOCK  ADVISORY  WRITE 9697 fe:00:10960897 0 EOF" (device major:minor in hex, inode in
// decimal); 0 if there is none or /proc is not mounted. Lines for waiters ("1: -> FLOCK ...")
// have one more field and do not match.
long FlockHolderPid(int fd) {
  struct stat info;
  if (::fstat(fd, &info) != 0) return 0;
  const std::string inode = absl::StrFormat("%02x:%02x:%u", major(info.st_dev), minor(info.st_dev),
                                            static_cast<unsigned long long>(info.st_ino));
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    char kind[16], mode[16], access[16], where[64];
    long pid = 0;
    if (std::sscanf(line.c_str(), "%*d: %15s %15s %15s %ld %63s", kind, mode, access, &pid,
                    where) == 5 &&
        std::string(kind) == "FLOCK" && where == inode) {
      return pid;
    }
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& dir,
                                                                  Create create) {
  if (create == Create::kIfMissing) {
    if (absl::Status status = internal::CreateDirectories(dir); !status.ok()) return status;
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("data directory ", dir, " does not exist"));
    }
    return internal::ErrnoError(errno, "open", dir);
  }
  int result;
  do {
    result = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (result != 0 && errno == EINTR);
  if (result != 0) {
    const int error = errno;
    if (error != EWOULDBLOCK) {
      ::close(fd);
      return internal::ErrnoError(error, "flock", dir);
    }
    const long pid = FlockHolderPid(fd);
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "data directory ", dir, " is in use by another vouch engine",
        pid != 0 ? absl::StrCat(" (pid ", pid, ")") : std::string(),
        "; one server (or --check) per data directory"));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() { ::close(fd_); }

}  // namespace vouch::journal
