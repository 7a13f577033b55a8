// The journal's segment files: SegmentWriter appends records to them, ScanJournal reads them
// back at start-up and repairs a torn tail. The byte layout is in segment_format.h; the design
// (durability promises, the torn-tail rule, why) in docs/JOURNAL.md.
//
// SegmentWriter works by group commit: the caller Adds many records to an in-memory buffer,
// then one Write() hands them all to the kernel and one Sync() makes them durable.
//
// Durability contract:
//   - After Write() returns OK, every record Added before it survives a crash of this process
//     (kill -9): the bytes are in the kernel's page cache.
//   - After Sync() returns OK, every record Written before it survives a power loss or OS crash:
//     the segment's data is fdatasync'ed and, if the segment is new, the directory entry that
//     names it is fsync'ed too.
//   - Records only Added (still buffered) are lost by any crash, and by destroying the writer.
// written_record_index() and synced_record_index() say how far each promise reaches.
//
// Segments: Open starts a new segment named for next_record_index and never appends to a file
// that holds records (recovery has validated or truncated those; a leftover file holding no
// records, from a crash right after creating it, is reused). Write() rotates to a new segment
// once the current one has reached segment_bytes_max, so rotation happens only between records
// and a segment exceeds the limit by at most one record. Before the new segment is created, the
// full one is fdatasync'ed (and the directory fsync'ed if its entry is new): every segment but
// the last is therefore complete on disk, which is what lets recovery treat damage anywhere but
// the last segment's tail as data loss. That sync makes the rotating Write() slower, once per
// segment.
//
// Errors are sticky: after a failed write(2) or fsync the file's state is unknown (a partial
// record, or dirty pages the kernel has already dropped), so every later call returns the first
// error. The caller stops journalling; recovery (ScanJournal) repairs the tail on restart.
//
// Thread safety: not thread-safe. Owned and used by one thread (the journal stage).
// Add does not allocate or make system calls; Write, Sync and rotation do not allocate either,
// except for the segment name at rotation.
//
// ScanJournal reads every segment in index order and calls the visitor for each valid record,
// in file order. What counts as damage, and what is done about it (docs/JOURNAL.md explains
// why):
//
//   - Torn tail, repaired. A crash can leave the last segment ending in a record that was only
//     partly written: a short header, a length that runs past the end of the file, or a CRC
//     that does not match. If no valid record follows it anywhere in the file, everything from
//     that record's first byte on is unacknowledged residue: the file is truncated there
//     (ftruncate, then fsync) and the result reports the file, offset and bytes dropped. The
//     same rule covers a last segment whose header is short or bad: it is truncated to zero
//     bytes (a zero-byte last segment is a valid, empty segment).
//   - Corruption, refused. A bad record followed by a valid one in the last segment, any bad or
//     incomplete record in an earlier segment (the writer syncs a segment before starting the
//     next, so earlier segments are always complete), a bad header in an earlier segment, a
//     header whose index disagrees with its file name, or segments that do not chain (a gap or
//     an overlap in record indices) return absl::DataLossError naming the file and byte offset
//     ("journal-...log offset 12345: CRC mismatch; a valid record follows at offset 12400").
//     Nothing is skipped silently and nothing is modified.
//   - A record with a valid CRC but a type this build does not know is FailedPrecondition (it
//     was written by a newer version).
//
// A missing or empty directory is a valid empty journal. Files not named like segments are
// ignored. Each segment is read whole into one buffer that is reused for the next, so memory is
// bounded by the largest segment (segment_bytes_max plus one record).
//
// Thread safety: call while no SegmentWriter has the directory open (at start-up, before the
// writer). The visitor runs on the calling thread. On an error return the visitor may already
// have seen some records; the caller discards what it built from them. A visitor that finds a
// payload it cannot use keeps the first such problem (with its RecordLocation) and returns it
// after the scan.
#ifndef VOUCH_ENGINE_JOURNAL_SEGMENT_H_
#define VOUCH_ENGINE_JOURNAL_SEGMENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/journal/records.h"

namespace vouch::journal {

struct JournalOptions {
  std::string dir;  // Created (with parents) if missing.
  // A segment is closed once it holds this many bytes. Must exceed the segment header.
  size_t segment_bytes_max = 64 * 1024 * 1024;
  // Capacity of the Add buffer, i.e. the most bytes one Write() hands to the kernel.
  // Must hold the largest record (kRecordBytesMax).
  size_t buffer_bytes = 4 * 1024 * 1024;
};

// Single-writer counters (read them on the writer's thread, or after it stops).
struct SegmentWriterCounters {
  uint64_t records = 0;    // Records handed to the kernel by Write().
  uint64_t bytes = 0;      // Their framed bytes (segment headers not included).
  uint64_t writes = 0;     // Write() calls that wrote something.
  uint64_t syncs = 0;      // Sync() calls that synced something.
  uint64_t rotations = 0;  // Segments closed because they were full.
};

class SegmentWriter {
 public:
  // Starts a new segment whose first record index is `next_record_index`.
  // REQUIRES: next_record_index is ScanJournal(dir).next_record_index (or 0 for a new journal);
  // a segment named above it, or holding records at it, is refused (FailedPrecondition).
  // InvalidArgument for bad options; I/O errors as ErrnoToStatus, naming the path.
  static absl::StatusOr<std::unique_ptr<SegmentWriter>> Open(const JournalOptions& options,
                                                             uint64_t next_record_index);

  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;
  ~SegmentWriter();  // Closes files. Does not Write or Sync: buffered records are dropped.

  // Appends one framed record to the buffer. Returns false, adding nothing, if the buffer has no
  // room or the current segment is full (or the writer has failed): call Write() and retry.
  // After a successful Write() an empty buffer always takes one record.
  // REQUIRES: size <= kRecordPayloadBytesMax.
  [[nodiscard]] bool Add(RecordType type, uint64_t seq, const char* payload, size_t size);

  // Hands the buffered records to the kernel with one write(2) (looping on partial writes), then
  // rotates if the segment is full.
  [[nodiscard]] absl::Status Write();

  // fdatasync of the current segment (plus the directory after a new segment was created).
  // Covers what Write() has written, not what is still buffered.
  [[nodiscard]] absl::Status Sync();

  // Index the next Added record gets.
  uint64_t next_record_index() const { return next_record_index_; }
  // Records below this index survive a process crash.
  uint64_t written_record_index() const { return written_record_index_; }
  // Records below this index survive a power loss.
  uint64_t synced_record_index() const { return synced_record_index_; }
  size_t buffered_bytes() const { return buffered_bytes_; }
  const std::string& segment_path() const { return segment_path_; }
  const SegmentWriterCounters& counters() const { return counters_; }

 private:
  SegmentWriter(const JournalOptions& options, uint64_t next_record_index, int dir_fd);

  // Creates the segment file for written_record_index_ and writes its header.
  absl::Status StartSegment();
  absl::Status Rotate();
  // Records the first error; every later call returns it.
  absl::Status Fail(absl::Status status);

  // Constant after construction.
  const JournalOptions options_;
  const std::unique_ptr<char[]> buffer_;  // options_.buffer_bytes.
  const int dir_fd_;

  size_t buffered_bytes_ = 0;
  int fd_ = -1;
  std::string segment_path_;
  uint64_t segment_bytes_ = 0;  // Written plus buffered bytes of the current segment.
  bool dir_sync_pending_ = false;  // A segment was created since the last directory fsync.
  uint64_t next_record_index_;
  uint64_t written_record_index_;
  uint64_t synced_record_index_;
  absl::Status error_;
  SegmentWriterCounters counters_;
};

struct RecordLocation {
  absl::string_view file;  // Segment base name; valid during the visitor call only.
  uint64_t offset = 0;     // Of the record's first header byte in that file.
  uint64_t record_index = 0;
};

using RecordVisitor = absl::FunctionRef<void(
    RecordType type, uint64_t seq, const char* payload, size_t size,
    const RecordLocation& where)>;

struct RecoveryScan {
  uint64_t segments = 0;
  uint64_t records = 0;            // Records passed to the visitor.
  uint64_t next_record_index = 0;  // Open the SegmentWriter here.
  bool truncated = false;          // A torn tail was found (and cut off, under TornTail::kCut).
  std::string truncated_file;      // Its path.
  uint64_t truncated_offset = 0;   // Where the file ends once cut.
  uint64_t truncated_bytes = 0;    // How many bytes are dropped.
};

// What ScanJournal does with a torn tail: cut it off (recovery before the writer opens), or only
// report it and modify nothing (a read-only audit; the records before it are visited the same).
enum class TornTail { kCut, kReport };

// Records below `from_record_index` (those a snapshot covers) are checked but not visited.
[[nodiscard]] absl::StatusOr<RecoveryScan> ScanJournal(const std::string& dir,
                                                       RecordVisitor visitor,
                                                       uint64_t from_record_index = 0,
                                                       TornTail torn_tail = TornTail::kCut);

// Read-only, for the snapshotter while the writer runs: visits the records at and above
// `from_record_index` in every segment except the newest. Those are closed, complete and synced
// (the writer syncs a segment before it creates the next), so any damage is DataLoss; nothing is
// truncated. `next_record_index` in the result is where the closed segments end.
[[nodiscard]] absl::StatusOr<RecoveryScan> ScanClosedSegments(const std::string& dir,
                                                              uint64_t from_record_index,
                                                              RecordVisitor visitor);

// Removes, oldest first, every segment whose records all have indices below `record_index`
// (those a snapshot has made redundant), then fsyncs the directory. The last segment is never
// removed: its name carries the next record index.
[[nodiscard]] absl::Status RemoveSegmentsBelow(const std::string& dir, uint64_t record_index);

}  // namespace vouch::journal

#endif  // VOUCH_ENGINE_JOURNAL_SEGMENT_H_
