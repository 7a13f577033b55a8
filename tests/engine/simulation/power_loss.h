// DiskModel: what a disk keeps of one data directory through a power loss, for the simulation.
//
// Installed as the storage layer's SyncHook (engine/journal/sync_hook.h), it sees every fdatasync
// and directory fsync the engine makes, and records instead of syncing (the simulated disk is
// this model, so a real sync would only cost time):
//   - per file (by inode, so a rename keeps it): how many bytes the last sync covered;
//   - for the tracked directory: its entries (name and inode) at its last fsync.
// A power loss (PowerLoss) then turns a copy of the directory into what the disk may hold after
// it, the way POSIX allows and ext4 and XFS do:
//   - a file whose directory entry was created after the directory's last fsync may be gone;
//   - every file is cut back to its synced length, or to any byte between that and its written
//     length (the page cache reached the disk in part), and the unsynced bytes kept may end in a
//     few bytes of zeros or garbage (a torn sector).
// The power may also fail inside a stage's turn, at one of its sync calls (ArmPowerCut): between
// a write(2) and its fdatasync, between a segment's sync and its directory's. Synced bytes are
// never touched. Not modelled: a file removed since the directory's last fsync
// coming back (the engine syncs the directory right after each unlink or rename it relies on, and
// the simulator crashes only between stage turns, never inside those calls).
//
// Thread safety: none; the simulation drives an inline engine from one thread.
#ifndef VOUCH_TESTS_ENGINE_SIMULATION_POWER_LOSS_H_
#define VOUCH_TESTS_ENGINE_SIMULATION_POWER_LOSS_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "engine/journal/sync_hook.h"

namespace vouch::simulation {

struct PowerLossReport {
  uint64_t files_cut = 0;       // Files that lost unsynced bytes.
  uint64_t bytes_dropped = 0;   // Unsynced bytes lost, over all files.
  uint64_t files_garbled = 0;   // Files whose kept unsynced tail ends in zeros or garbage.
  uint64_t files_vanished = 0;  // Files whose directory entry was never synced, gone.
  std::string Describe() const;
};

class DiskModel final : public journal::SyncHook {
 public:
  // Tracks `dir` from now on: what it holds now is on disk (it is what the last crash left, or a
  // new directory). Forgets the previous directory.
  void Track(const std::filesystem::path& dir);

  int SyncFile(int fd, const std::string& path) override;
  int SyncDirectory(int dir_fd, const std::string& path) override;

  // The power fails during the `skip`-th sync call from now (0: the next one), before it takes
  // effect: `cut` runs then (it takes the crash image: the copy, then PowerLoss), and the sync
  // returns OK to an engine that is as good as dead. Disarm() if no sync came.
  void ArmPowerCut(int skip, std::function<void()> cut);
  void Disarm() { cut_ = nullptr; }

  // Turns `copy`, a byte-for-byte copy of the tracked directory taken just now, into what a power
  // loss at this moment may leave on disk, choosing with `rng`.
  PowerLossReport PowerLoss(const std::filesystem::path& copy, std::mt19937_64& rng) const;

 private:
  void RecordEntries();
  void MaybeCut();

  std::filesystem::path dir_;
  std::map<std::string, ino_t> durable_entries_;    // Name -> inode, at the last directory fsync.
  absl::flat_hash_map<ino_t, uint64_t> synced_bytes_;  // Inode -> bytes covered by its last sync.
  int syncs_before_cut_ = 0;
  std::function<void()> cut_;
};

}  // namespace vouch::simulation

#endif  // VOUCH_TESTS_ENGINE_SIMULATION_POWER_LOSS_H_
