// Snapshots bound recovery time: recovery is the newest snapshot plus the journal records after
// it, and the segments a snapshot covers are removed.
//
// A snapshot is the Replayer state (verifiers, holds, idempotency answers, undecided
// transactions) after every record below `covered_record_index`. It is produced off the hot path
// by the Snapshotter: a shadow Replayer, with verifiers of its own, follows the journal's closed
// segments (complete and synced: the writer syncs a segment before starting the next) and saves
// itself every `interval_records` records. The live stages are never paused or read.
//
// Files: `snapshot-<covered record index, 20 digits>.snap` in the journal directory, holding
// magic "VOUCHSN2", the covered index, the state, the state's length, and a masked CRC32C of
// everything before it. The length comes after the state so that the state can be written as it
// is produced (SnapshotFileWriter), never held in memory whole; files of the first format
// (magic "VOUCHSNP", the length before the state) are still read. A snapshot is loaded by
// mapping the file (the state is a view into the mapping, not a copy). A snapshot is written to
// a temporary name, synced, renamed and the directory synced, and only then are older snapshots
// and the covered segments removed, so a crash at any point leaves either the old snapshot with
// its segments or the new one (plus, if it came during the write, a temporary, which the next
// start removes).
//
// Thread safety: the Snapshotter is driven by one thread (the engine's snapshot thread).
#ifndef VOUCH_ENGINE_RECOVERY_SNAPSHOT_H_
#define VOUCH_ENGINE_RECOVERY_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/recovery/replayer.h"

namespace vouch {

struct LoadedSnapshot {
  std::string file;
  uint64_t covered_record_index = 0;
  absl::string_view state;  // Replayer::Save bytes, in `mapping`.
  std::shared_ptr<const char> mapping;  // The whole file, mapped read-only; unmapped when freed.
};

// The newest snapshot in `dir`, or nullopt if there is none. DataLoss, naming the file, if it is
// damaged (it is never skipped silently).
absl::StatusOr<std::optional<LoadedSnapshot>> LoadNewestSnapshot(const std::string& dir);

// Writes one snapshot file as its state is produced: Open creates the temporary, Append writes
// the state's bytes through it (extending the CRC), Commit adds the trailer, syncs, renames,
// syncs the directory and removes older snapshots (never segments). A writer destroyed without a
// successful Commit removes its temporary, and so does a failed Append or Commit: a failed
// snapshot (a full disk, say) leaves nothing behind. After a failure every call fails again.
//
// Thread safety: one thread uses a writer.
class SnapshotFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> Open(const std::string& dir,
                                                                  uint64_t covered_record_index);
  ~SnapshotFileWriter();
  SnapshotFileWriter(const SnapshotFileWriter&) = delete;
  SnapshotFileWriter& operator=(const SnapshotFileWriter&) = delete;

  absl::Status Append(absl::string_view bytes);
  absl::Status Commit();

 private:
  SnapshotFileWriter(std::string dir, uint64_t covered_record_index, std::string path, int fd);
  // Writes `bytes` and extends the CRC; the first failure removes the temporary.
  absl::Status Write(absl::string_view bytes);
  // Closes and removes the temporary, and remembers `status` for every later call.
  absl::Status Fail(absl::Status status);

  const std::string dir_;
  const uint64_t covered_record_index_;
  const std::string path_;       // The snapshot's name.
  const std::string temporary_;  // path_ + ".tmp", until Commit renames it.
  int fd_;                       // -1 once closed.
  uint32_t crc_ = 0;             // Of everything written so far.
  uint64_t state_bytes_ = 0;
  absl::Status failure_;
  bool committed_ = false;
};

// One whole snapshot from bytes in memory: SnapshotFileWriter's Open, Append, Commit.
absl::Status WriteSnapshot(const std::string& dir, uint64_t covered_record_index,
                           absl::string_view state);

// `snapshot-*.snap.tmp` files: what a snapshot write interrupted by a crash (kill -9, power loss)
// leaves. Remove them only while holding the directory's lock (DataDirLock), when no snapshot
// can be in progress. Count returns how many there are; Remove how many it removed (a directory
// by such a name is not the engine's: it is left alone).
absl::StatusOr<uint64_t> CountSnapshotTemporaries(const std::string& dir);
absl::StatusOr<uint64_t> RemoveSnapshotTemporaries(const std::string& dir);

class Snapshotter {
 public:
  // `shadow` replays onto verifiers the Snapshotter does not share with anyone; its state is the
  // journal's below `from_record_index`.
  Snapshotter(std::string dir, std::unique_ptr<Replayer> shadow, uint64_t from_record_index,
              uint64_t interval_records);

  // Replays the segments closed since the last call; snapshots (and removes the covered
  // segments) once interval_records records have been replayed since the last snapshot.
  // A failure to save, write (a full disk) or remove is retried by the next Poll. A failure to
  // read or replay the journal leaves the shadow part-way through a segment, so it cannot go on:
  // broken() is then true and every later Poll fails at once (recovery replays the journal).
  absl::Status Poll();
  bool broken() const { return broken_; }

  uint64_t snapshots() const { return snapshots_; }
  uint64_t covered_record_index() const { return covered_record_index_; }
  uint64_t replayed_record_index() const { return next_record_index_; }

 private:
  const std::string dir_;
  const std::unique_ptr<Replayer> shadow_;
  const uint64_t interval_records_;
  uint64_t next_record_index_;     // Records below this are in the shadow.
  uint64_t covered_record_index_;  // By the newest snapshot.
  uint64_t snapshots_ = 0;
  bool broken_ = false;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_RECOVERY_SNAPSHOT_H_
