// SegmentWriter and ScanJournal on undamaged journals: round trips across rotations, reopening,
// refusals, counters and compaction.
#include <sys/stat.h>

#include <random>

#include "engine/journal/segment.h"
#include "engine/journal/segment_format.h"
#include "gtest/gtest.h"
#include "tests/engine/journal/journal_test_util.h"

namespace vouch::journal {
namespace {

using testing::FileSize;
using testing::MakeTempDir;
using testing::RandomRecords;
using testing::RecordsOf;
using testing::ScanAll;
using testing::ScannedRecord;
using testing::SegmentPath;
using testing::TestRecord;
using testing::WriteJournal;

JournalOptions SmallSegments(const std::string& dir) {
  JournalOptions options;
  options.dir = dir;
  options.segment_bytes_max = 2048;
  options.buffer_bytes = kRecordBytesMax;
  return options;
}

TEST(SegmentWriterTest, MissingAndEmptyDirectoriesAreEmptyJournals) {
  const std::string dir = MakeTempDir();
  std::vector<ScannedRecord> scanned;
  for (const std::string& path : {dir + "/missing", dir}) {
    absl::StatusOr<RecoveryScan> scan = ScanAll(path, &scanned);
    ASSERT_TRUE(scan.ok()) << scan.status();
    EXPECT_EQ(scan->records, 0u);
    EXPECT_EQ(scan->segments, 0u);
    EXPECT_EQ(scan->next_record_index, 0u);
    EXPECT_FALSE(scan->truncated);
  }
}

TEST(SegmentWriterTest, RoundTripAcrossRotations) {
  const std::string dir = MakeTempDir();
  std::mt19937_64 rng(1);
  const std::vector<TestRecord> records = RandomRecords(&rng, 3000);
  WriteJournal(SmallSegments(dir), 0, records, 37);

  std::vector<ScannedRecord> scanned;
  absl::StatusOr<RecoveryScan> scan = ScanAll(dir, &scanned);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(RecordsOf(scanned), records);
  EXPECT_EQ(scan->records, records.size());
  EXPECT_EQ(scan->next_record_index, records.size());
  EXPECT_GT(scan->segments, 20u);
  EXPECT_FALSE(scan->truncated);
  // Locations: indices count up, each segment is named for its first record, the first record
  // of a segment sits right after the header, and no segment passes the limit by more than one
  // record.
  for (size_t i = 0; i < scanned.size(); ++i) {
    EXPECT_EQ(scanned[i].record_index, i);
    if (i == 0 || scanned[i].file != scanned[i - 1].file) {
      EXPECT_EQ(scanned[i].file, SegmentFileName(i));
      EXPECT_EQ(scanned[i].offset, kSegmentHeaderBytes);
      if (i > 0) {
        EXPECT_LE(FileSize(dir + "/" + scanned[i - 1].file), 2048 + kRecordHeaderBytes + 200);
      }
    }
  }
}

TEST(SegmentWriterTest, ReopenContinuesInANewSegment) {
  const std::string dir = MakeTempDir();
  std::mt19937_64 rng(2);
  const std::vector<TestRecord> first = RandomRecords(&rng, 10);
  const std::vector<TestRecord> second = RandomRecords(&rng, 10);
  JournalOptions options;
  options.dir = dir;
  WriteJournal(options, 0, first, 3);
  std::vector<ScannedRecord> scanned;
  absl::StatusOr<RecoveryScan> scan = ScanAll(dir, &scanned);
  ASSERT_TRUE(scan.ok());
  WriteJournal(options, scan->next_record_index, second, 4);

  scan = ScanAll(dir, &scanned);
  ASSERT_TRUE(scan.ok()) << scan.status();
  std::vector<TestRecord> all = first;
  all.insert(all.end(), second.begin(), second.end());
  EXPECT_EQ(RecordsOf(scanned), all);
  EXPECT_EQ(scan->segments, 2u);
  EXPECT_EQ(scanned[10].file, SegmentFileName(10));
}

TEST(SegmentWriterTest, OpenRefusesToOverwriteRecords) {
  const std::string dir = MakeTempDir();
  std::mt19937_64 rng(3);
  JournalOptions options;
  options.dir = dir;
  WriteJournal(options, 0, RandomRecords(&rng, 5), 5);
  absl::StatusOr<std::unique_ptr<SegmentWriter>> writer = SegmentWriter::Open(options, 0);
  EXPECT_EQ(writer.status().code(), absl::StatusCode::kFailedPrecondition) << writer.status();
  EXPECT_NE(writer.status().message().find(SegmentFileName(0)), absl::string_view::npos);
}

TEST(SegmentWriterTest, OpenRefusesAStaleIndex) {
  const std::string dir = MakeTempDir();
  std::mt19937_64 rng(4);
  JournalOptions options;
  options.dir = dir;
  WriteJournal(options, 100, RandomRecords(&rng, 5), 5);
  EXPECT_EQ(SegmentWriter::Open(options, 50).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A crash right after a segment was created leaves a file with a header and no records (or
// less). The next writer at the same index reuses that name.
TEST(SegmentWriterTest, OpenReusesASegmentWithoutRecords) {
  const std::string dir = MakeTempDir();
  JournalOptions options;
  options.dir = dir;
  {
    absl::StatusOr<std::unique_ptr<SegmentWriter>> writer = SegmentWriter::Open(options, 7);
    ASSERT_TRUE(writer.ok()) << writer.status();
  }
  EXPECT_EQ(FileSize(SegmentPath(dir, 7)), kSegmentHeaderBytes);
  std::vector<ScannedRecord> scanned;
  absl::StatusOr<RecoveryScan> scan = ScanAll(dir, &scanned);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(scan->next_record_index, 7u);

  std::mt19937_64 rng(5);
  const std::vector<TestRecord> records = RandomRecords(&rng, 3);
  WriteJournal(options, 7, records, 1);
  scan = ScanAll(dir, &scanned);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(RecordsOf(scanned), records);
  EXPECT_EQ(scan->next_record_index, 10u);
}

TEST(SegmentWriterTest, AddRefusesWhenTheBufferIsFullAndWriteMakesRoom) {
  const std::string dir = MakeTempDir();
  JournalOptions options;
  options.dir = dir;
  options.buffer_bytes = kRecordBytesMax;
  absl::StatusOr<std::unique_ptr<SegmentWriter>> writer = SegmentWriter::Open(options, 0);
  ASSERT_TRUE(writer.ok());
  const std::string payload(1000, 'x');
  size_t added = 0;
  while ((*writer)->Add(RecordType::kOutcome, added, payload.data(), payload.size())) ++added;
  EXPECT_EQ(added, kRecordBytesMax / (kRecordHeaderBytes + payload.size()));
  EXPECT_EQ((*writer)->written_record_index(), 0u);
  ASSERT_TRUE((*writer)->Write().ok());
  EXPECT_EQ((*writer)->written_record_index(), added);
  EXPECT_EQ((*writer)->synced_record_index(), 0u);
  EXPECT_TRUE((*writer)->Add(RecordType::kOutcome, added, payload.data(), payload.size()));
  ASSERT_TRUE((*writer)->Write().ok());
  ASSERT_TRUE((*writer)->Sync().ok());
  EXPECT_EQ((*writer)->synced_record_index(), added + 1);

  const SegmentWriterCounters& counters = (*writer)->counters();
  EXPECT_EQ(counters.records, added + 1);
  EXPECT_EQ(counters.bytes, (added + 1) * (kRecordHeaderBytes + payload.size()));
  EXPECT_EQ(counters.writes, 2u);
  EXPECT_EQ(counters.syncs, 1u);
  EXPECT_EQ(counters.rotations, 0u);
  // Nothing new: no system call, no count.
  ASSERT_TRUE((*writer)->Write().ok());
  ASSERT_TRUE((*writer)->Sync().ok());
  EXPECT_EQ(counters.writes, 2u);
  EXPECT_EQ(counters.syncs, 1u);
}

TEST(SegmentWriterTest, AddRefusesWhenTheSegmentIsFullUntilWriteRotates) {
  const std::string dir = MakeTempDir();
  JournalOptions options = SmallSegments(dir);
  options.segment_bytes_max = kSegmentHeaderBytes + 1;  // One record per segment.
  absl::StatusOr<std::unique_ptr<SegmentWriter>> writer = SegmentWriter::Open(options, 0);
  ASSERT_TRUE(writer.ok());
  EXPECT_TRUE((*writer)->Add(RecordType::kConfirmed, 1, "a", 1));
  EXPECT_FALSE((*writer)->Add(RecordType::kConfirmed, 2, "b", 1));
  ASSERT_TRUE((*writer)->Write().ok());
  EXPECT_EQ((*writer)->segment_path(), SegmentPath(dir, 1));
  // Rotation synced the full segment before starting the next.
  EXPECT_EQ((*writer)->synced_record_index(), 1u);
  EXPECT_TRUE((*writer)->Add(RecordType::kConfirmed, 2, "b", 1));
  ASSERT_TRUE((*writer)->Write().ok());
  EXPECT_EQ((*writer)->counters().rotations, 2u);
}

TEST(SegmentWriterTest, OpenChecksOptions) {
  const std::string dir = MakeTempDir();
  JournalOptions options;
  EXPECT_EQ(SegmentWriter::Open(options, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.dir = dir;
  options.segment_bytes_max = kSegmentHeaderBytes;
  EXPECT_EQ(SegmentWriter::Open(options, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.segment_bytes_max = 1 << 20;
  options.buffer_bytes = kRecordBytesMax - 1;
  EXPECT_EQ(SegmentWriter::Open(options, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SegmentWriterTest, OpenCreatesParentsAndNamesThePathInErrors) {
  const std::string dir = MakeTempDir();
  JournalOptions options;
  options.dir = dir + "/a/b/journal";
  ASSERT_TRUE(SegmentWriter::Open(options, 0).ok());
  EXPECT_EQ(FileSize(options.dir + "/" + SegmentFileName(0)), kSegmentHeaderBytes);

  testing::WriteBytes(dir + "/file", "not a directory");
  options.dir = dir + "/file";
  absl::Status status = SegmentWriter::Open(options, 0).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(options.dir), absl::string_view::npos) << status;
}

TEST(SegmentWriterTest, RemoveSegmentsBelowKeepsTheLastAndStillChains) {
  const std::string dir = MakeTempDir();
  std::mt19937_64 rng(6);
  const std::vector<TestRecord> records = RandomRecords(&rng, 400);
  WriteJournal(SmallSegments(dir), 0, records, 10);
  std::vector<ScannedRecord> scanned;
  absl::StatusOr<RecoveryScan> scan = ScanAll(dir, &scanned);
  ASSERT_TRUE(scan.ok());
  const uint64_t segments = scan->segments;
  // The segment holding record 200 and every later one stay.
  const std::string keep_from = scanned[200].file;
  ASSERT_TRUE(RemoveSegmentsBelow(dir, 200).ok());
  scan = ScanAll(dir, &scanned);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_LT(scan->segments, segments);
  EXPECT_EQ(scanned.front().file, keep_from);
  EXPECT_LE(scanned.front().record_index, 200u);
  EXPECT_EQ(scan->next_record_index, records.size());
  EXPECT_EQ(scanned.back().record, records.back());

  // Even asked to remove everything, the last segment stays: its name holds the next index.
  ASSERT_TRUE(RemoveSegmentsBelow(dir, UINT64_MAX).ok());
  scan = ScanAll(dir, &scanned);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->segments, 1u);
  EXPECT_EQ(scan->next_record_index, records.size());
}

TEST(SegmentWriterTest, FileNames) {
  EXPECT_EQ(SegmentFileName(42), "journal-00000000000000000042.log");
  uint64_t index = 0;
  EXPECT_TRUE(ParseSegmentFileName(SegmentFileName(UINT64_MAX), &index));
  EXPECT_EQ(index, UINT64_MAX);
  EXPECT_FALSE(ParseSegmentFileName("journal-99999999999999999999.log", &index));  // > 2^64.
  EXPECT_FALSE(ParseSegmentFileName("journal-0000000000000000004x.log", &index));
  EXPECT_FALSE(ParseSegmentFileName("journal-42.log", &index));
  EXPECT_FALSE(ParseSegmentFileName("snapshot-00000000000000000042.log", &index));
}

}  // namespace
}  // namespace vouch::journal
