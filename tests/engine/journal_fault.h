// Fault injection for journal tests: the journal's open segment starts failing every write as a
// full disk does (ENOSPC), without a special file system. The segment's descriptor, found in
// /proc/self/fd, is replaced with one open on /dev/full, which refuses every write with ENOSPC.
#ifndef VOUCH_TESTS_ENGINE_JOURNAL_FAULT_H_
#define VOUCH_TESTS_ENGINE_JOURNAL_FAULT_H_

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace vouch::testing {

// Returns how many descriptors of segments under `dir` now write to /dev/full (0: none open).
inline int FillDiskUnderJournal(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string prefix = fs::weakly_canonical(dir).string() + "/journal-";
  const int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (full < 0) return 0;
  int broken = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    const fs::path target = fs::read_symlink(entry.path(), error);
    if (error || target.string().rfind(prefix, 0) != 0) continue;
    const int fd = std::stoi(entry.path().filename().string());
    if (::dup2(full, fd) == fd) ++broken;
  }
  ::close(full);
  return broken;
}

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_ENGINE_JOURNAL_FAULT_H_
