// DataDirLock: one engine per data directory. Two engines on one directory would hand out the
// same sequence numbers and each would overwrite what the other acknowledged, so the engine takes
// an exclusive flock(2) on the directory itself before it reads or writes anything in it, and
// holds it for its whole life.
//
// The lock is on the directory, not on a lock file, so that taking it writes nothing (a
// read-only audit must leave the directory byte-identical). flock locks belong to the open file
// description: a second open of the same directory conflicts even inside one process (two
// engines embedded side by side are refused too), and the kernel releases the lock when the
// process dies, however it dies, so there is never a stale lock to clean up. The descriptor is
// close-on-exec. flock is not reliable on network file systems (NFS emulates it with byte-range
// locks); a data directory belongs on a local disk.
//
// Thread safety: Acquire is safe from any thread; a DataDirLock is immutable until destroyed.
#ifndef VOUCH_ENGINE_JOURNAL_DATA_DIR_LOCK_H_
#define VOUCH_ENGINE_JOURNAL_DATA_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace vouch::journal {

class DataDirLock {
 public:
  enum class Create { kIfMissing, kNever };
  // Locks `dir`, creating it (and its parents) first with Create::kIfMissing. NotFound for a
  // missing directory under kNever; FailedPrecondition if another holder has it ("data directory
  // D is in use by another vouch engine (pid N)"; the pid is read from /proc/locks and left out
  // if it cannot be found); I/O errors name the path.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir,
                                                              Create create);
  ~DataDirLock();  // Releases the lock.
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  const int fd_;
};

}  // namespace vouch::journal

#endif  // VOUCH_ENGINE_JOURNAL_DATA_DIR_LOCK_H_
