// The one door through which the data directory is made durable (segment writer, recovery's tail
// repair, segment removal, snapshots, the server's epoch file): every fdatasync of a file and
// every fsync of a directory goes through DataSync / DirectorySync.
//
// Why a door: a power loss keeps exactly what was synced, and the deterministic simulation
// (tests/engine/simulation, docs/RELIABILITY.md) models a power loss. It installs a SyncHook
// that records, instead of syncing, how many bytes of each file and which directory entries were
// made durable, and then cuts a copy of the data directory back to that at the simulated power
// loss. That is what tells ack policy `written` from `durable` in a test.
//
// Production installs nothing: DataSync is fdatasync(2), DirectorySync is fsync(2), and the cost
// is one atomic load per sync. A file that is made durable any other way is invisible to
// the simulation's model (it would cut it as if never synced): new sync calls must come here.
//
// Thread safety: InstallSyncHook is for a test's set-up and tear-down, while no engine runs; the
// hook is then called from whichever thread syncs (the journal stage, the snapshot thread, the
// thread that creates the engine), so it must be thread-safe or used with an inline engine.
#ifndef VOUCH_ENGINE_JOURNAL_SYNC_HOOK_H_
#define VOUCH_ENGINE_JOURNAL_SYNC_HOOK_H_

#include <string>

namespace vouch::journal {

class SyncHook {
 public:
  virtual ~SyncHook() = default;
  // Called instead of fdatasync(fd) of the file at `path`. Returns 0, or -1 with errno set.
  virtual int SyncFile(int fd, const std::string& path) = 0;
  // Called instead of fsync(dir_fd) of the directory at `path`. Returns 0, or -1 with errno set.
  virtual int SyncDirectory(int dir_fd, const std::string& path) = 0;
};

// nullptr: the system calls again. The hook must outlive every sync made while it is installed.
void InstallSyncHook(SyncHook* hook);

// fdatasync(fd), or the installed hook's SyncFile. 0, or -1 with errno set.
int DataSync(int fd, const std::string& path);
// fsync(dir_fd), or the installed hook's SyncDirectory. 0, or -1 with errno set.
int DirectorySync(int dir_fd, const std::string& path);

}  // namespace vouch::journal

#endif  // VOUCH_ENGINE_JOURNAL_SYNC_HOOK_H_
