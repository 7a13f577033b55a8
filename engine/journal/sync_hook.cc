#include "engine/journal/sync_hook.h"

#include <unistd.h>

#include <atomic>

namespace vouch::journal {
namespace {

std::atomic<SyncHook*> installed_hook{nullptr};

}  // namespace

void InstallSyncHook(SyncHook* hook) {
  // release: the hook's state, built before installing it, is visible to the syncing thread.
  installed_hook.store(hook, std::memory_order_release);
}

int DataSync(int fd, const std::string& path) {
  // acquire: pairs with InstallSyncHook's release.
  SyncHook* const hook = installed_hook.load(std::memory_order_acquire);
  return hook != nullptr ? hook->SyncFile(fd, path) : ::fdatasync(fd);
}

int DirectorySync(int dir_fd, const std::string& path) {
  // acquire: pairs with InstallSyncHook's release.
  SyncHook* const hook = installed_hook.load(std::memory_order_acquire);
  return hook != nullptr ? hook->SyncDirectory(dir_fd, path) : ::fsync(dir_fd);
}

}  // namespace vouch::journal
