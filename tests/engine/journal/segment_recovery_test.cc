// Recovery from damaged journals.
//
// Method: write a journal of random records once, then damage a copy of it the ways a crash
// can (cut the last segment at a random byte, append garbage or zeros as a partly persisted page
// would, flip the last record's CRC) and the ways only corruption can (flip a byte in a record
// that valid records follow, in an earlier segment, in a header; remove a segment). A crash must
// cost exactly the records at and after the damage and be repaired (a second scan is clean);
// corruption must be refused with DataLoss naming the file and offset, leaving the files alone.
// The "dropped unsynced tail" test then checks the end-to-end promise: every record the writer
// acknowledged as synced survives a crash that loses everything after the last Sync.
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "engine/journal/segment.h"
#include "engine/journal/segment_format.h"
#include "gtest/gtest.h"
#include "tests/engine/journal/journal_test_util.h"

namespace vouch::journal {
namespace {

using testing::FileSize;
using testing::FlipByte;
using testing::MakeTempDir;
using testing::RandomRecords;
using testing::ReadBytes;
using testing::RecordsOf;
using testing::ScanAll;
using testing::ScannedRecord;
using testing::SegmentPath;
using testing::TestRecord;
using testing::WriteBytes;
using testing::WriteJournal;

constexpr size_t kSegmentBytesMax = 4096;

// A journal of several segments, with every file's bytes kept for restoring between damages.
class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    std::mt19937_64 rng(11);
    records_ = RandomRecords(&rng, 300);
    JournalOptions options;
    options.dir = dir_;
    options.segment_bytes_max = kSegmentBytesMax;
    options.buffer_bytes = kRecordBytesMax;
    WriteJournal(options, 0, records_, 16);
    absl::StatusOr<RecoveryScan> scan = ScanAll(dir_, &clean_);
    ASSERT_TRUE(scan.ok()) << scan.status();
    ASSERT_GE(scan->segments, 4u);
    for (const ScannedRecord& s : clean_) {
      if (files_.empty() || files_.back() != s.file) files_.push_back(s.file);
    }
    for (const std::string& file : files_) saved_.push_back(ReadBytes(Path(file)));
    last_path_ = Path(files_.back());
    for (const ScannedRecord& s : clean_) {
      if (s.file == files_.back()) last_segment_records_.push_back(&s - clean_.data());
    }
    ASSERT_GE(last_segment_records_.size(), 3u);
  }

  std::string Path(const std::string& file) const { return dir_ + "/" + file; }

  void Restore() {
    for (size_t i = 0; i < files_.size(); ++i) WriteBytes(Path(files_[i]), saved_[i]);
  }

  // Where record i's framing ends.
  uint64_t EndOf(size_t i) const {
    return clean_[i].offset + kRecordHeaderBytes + clean_[i].record.payload.size();
  }

  // Scans a journal whose last segment lost its tail at `cut`: expects exactly the records that
  // end at or before the cut, a reported truncation unless the cut is on a record boundary, and
  // a clean second scan.
  void ExpectTornTailRepaired(uint64_t cut, uint64_t size_before) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut, " of ", size_before));
    size_t survivors = clean_.size() - last_segment_records_.size();
    for (size_t i : last_segment_records_) survivors += EndOf(i) <= cut ? 1 : 0;
    const uint64_t kept = cut < kSegmentHeaderBytes ? 0
                          : survivors > last_segment_records_.front() ? EndOf(survivors - 1)
                                                                      : kSegmentHeaderBytes;
    std::vector<ScannedRecord> scanned;
    absl::StatusOr<RecoveryScan> scan = ScanAll(dir_, &scanned);
    ASSERT_TRUE(scan.ok()) << scan.status();
    ASSERT_EQ(scanned.size(), survivors);
    EXPECT_EQ(RecordsOf(scanned),
              std::vector<TestRecord>(records_.begin(), records_.begin() + survivors));
    EXPECT_EQ(scan->next_record_index, survivors);
    EXPECT_EQ(scan->truncated, size_before != kept);
    if (scan->truncated) {
      EXPECT_EQ(scan->truncated_file, last_path_);
      EXPECT_EQ(scan->truncated_offset, kept);
      EXPECT_EQ(scan->truncated_bytes, size_before - kept);
    }
    EXPECT_EQ(FileSize(last_path_), kept);

    std::vector<ScannedRecord> again;
    absl::StatusOr<RecoveryScan> second = ScanAll(dir_, &again);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_FALSE(second->truncated);
    EXPECT_EQ(RecordsOf(again), RecordsOf(scanned));
  }

  // Expects DataLoss naming `file` and `offset`, and no file changed.
  void ExpectDataLoss(const std::string& file, uint64_t offset) {
    std::vector<std::string> before;
    for (const std::string& f : files_) before.push_back(ReadBytes(Path(f)));
    std::vector<ScannedRecord> scanned;
    absl::StatusOr<RecoveryScan> scan = ScanAll(dir_, &scanned);
    ASSERT_EQ(scan.status().code(), absl::StatusCode::kDataLoss) << scan.status();
    const std::string expected = absl::StrCat(file, " offset ", offset, ":");
    EXPECT_NE(scan.status().message().find(expected), absl::string_view::npos)
        << scan.status() << " does not say " << expected;
    for (size_t i = 0; i < files_.size(); ++i) EXPECT_EQ(ReadBytes(Path(files_[i])), before[i]);
  }

  std::string dir_;
  std::vector<TestRecord> records_;
  std::vector<ScannedRecord> clean_;
  std::vector<std::string> files_;
  std::vector<std::string> saved_;
  std::string last_path_;
  std::vector<size_t> last_segment_records_;  // Indices into clean_.
};

TEST_F(RecoveryTest, TornTailAtEveryKindOfCutPoint) {
  const std::string last = saved_.back();
  std::mt19937_64 rng(12);
  std::vector<uint64_t> cuts = {0, 1, kSegmentHeaderBytes - 1, kSegmentHeaderBytes,
                                kSegmentHeaderBytes + 1, last.size() - 1};
  for (size_t i : last_segment_records_) {  // Both sides of every record boundary.
    cuts.push_back(EndOf(i) - 1);
    cuts.push_back(EndOf(i) + 1);
  }
  for (int i = 0; i < 150; ++i) cuts.push_back(rng() % last.size());
  for (uint64_t cut : cuts) {
    if (cut >= last.size()) continue;
    Restore();
    WriteBytes(last_path_, last.substr(0, cut));
    ExpectTornTailRepaired(cut, cut);
  }
}

TEST_F(RecoveryTest, TornTailWithGarbageOrZerosAfterTheCut) {
  const std::string last = saved_.back();
  std::mt19937_64 rng(13);
  for (int round = 0; round < 60; ++round) {
    Restore();
    const uint64_t cut = kSegmentHeaderBytes + rng() % (last.size() - kSegmentHeaderBytes);
    std::string tail(1 + rng() % 600, '\0');
    if (round % 2 == 0) {
      for (char& c : tail) c = static_cast<char>(rng());
    }
    WriteBytes(last_path_, last.substr(0, cut) + tail);
    // The garbage stands where a record would start; everything from the cut on goes. (A cut
    // inside a record loses that record, as in the plain cut.)
    ExpectTornTailRepaired(cut, cut + tail.size());
  }
}

TEST_F(RecoveryTest, GarbageAppendedToACompleteJournalLosesNothing) {
  std::mt19937_64 rng(14);
  std::string garbage(4096 + 7, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  WriteBytes(last_path_, saved_.back() + garbage);
  ExpectTornTailRepaired(saved_.back().size(), saved_.back().size() + garbage.size());
}

TEST_F(RecoveryTest, LastRecordWithBadCrcIsTheTornTail) {
  const size_t last_record = last_segment_records_.back();
  for (uint64_t flip : {clean_[last_record].offset + kRecordCrcOffset,
                        clean_[last_record].offset + kRecordTypeOffset,
                        EndOf(last_record) - 1}) {
    Restore();
    FlipByte(last_path_, flip);
    ExpectTornTailRepaired(EndOf(last_record) - 1, saved_.back().size());
  }
}

TEST_F(RecoveryTest, CorruptRecordFollowedByValidRecordsIsDataLoss) {
  // Every byte of a record in the middle of the last segment: length, CRC, type, seq, payload.
  const size_t victim = last_segment_records_[last_segment_records_.size() / 2];
  for (uint64_t flip = clean_[victim].offset; flip < EndOf(victim); ++flip) {
    Restore();
    FlipByte(last_path_, flip);
    SCOPED_TRACE(absl::StrCat("flip at ", flip));
    ExpectDataLoss(files_.back(), clean_[victim].offset);
  }
}

TEST_F(RecoveryTest, DamageInAnEarlierSegmentIsDataLoss) {
  const std::string& file = files_[1];
  size_t victim = 0;
  while (clean_[victim].file != file) ++victim;
  victim += 2;
  FlipByte(Path(file), clean_[victim].offset + kRecordHeaderBytes);
  ExpectDataLoss(file, clean_[victim].offset);

  // Even at that segment's very end (a torn tail anywhere but the last segment is loss: the
  // writer synced it before starting the next).
  Restore();
  const uint64_t size = FileSize(Path(file));
  WriteBytes(Path(file), saved_[1].substr(0, size - 1));
  size_t last_in_file = victim;
  while (clean_[last_in_file + 1].file == file) ++last_in_file;
  ExpectDataLoss(file, clean_[last_in_file].offset);
}

TEST_F(RecoveryTest, BadHeaderInAnEarlierSegmentIsDataLoss) {
  FlipByte(Path(files_[1]), 9);
  std::vector<ScannedRecord> scanned;
  absl::StatusOr<RecoveryScan> scan = ScanAll(dir_, &scanned);
  ASSERT_EQ(scan.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(scan.status().message().find(files_[1] + ": bad segment header"),
            absl::string_view::npos)
      << scan.status();
}

// A power loss soon after a segment was created can leave its header unwritten (zeros).
TEST_F(RecoveryTest, ZeroedHeaderAloneInTheLastSegmentIsATornCreation) {
  WriteBytes(last_path_, std::string(kSegmentHeaderBytes + 100, '\0'));
  ExpectTornTailRepaired(0, kSegmentHeaderBytes + 100);
}

// A bad header in the last segment with records after it is not a torn creation.
TEST_F(RecoveryTest, BadHeaderInTheLastSegmentWithRecordsIsDataLoss) {
  FlipByte(last_path_, 0);
  ExpectDataLoss(files_.back(), 0);
}

TEST_F(RecoveryTest, MissingMiddleSegmentIsDataLoss) {
  ASSERT_EQ(::unlink(Path(files_[1]).c_str()), 0);
  std::vector<ScannedRecord> scanned;
  absl::StatusOr<RecoveryScan> scan = ScanAll(dir_, &scanned);
  ASSERT_EQ(scan.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(scan.status().message().find(files_[2] + ": starts at record index"),
            absl::string_view::npos)
      << scan.status();
  EXPECT_NE(scan.status().message().find("gap"), absl::string_view::npos);
}

TEST_F(RecoveryTest, HeaderThatDisagreesWithTheFileNameIsDataLoss) {
  std::string bytes = saved_.back();
  char header[kSegmentHeaderBytes];
  EncodeSegmentHeader(12345, header);
  bytes.replace(0, kSegmentHeaderBytes, header, kSegmentHeaderBytes);
  WriteBytes(last_path_, bytes);
  std::vector<ScannedRecord> scanned;
  absl::StatusOr<RecoveryScan> scan = ScanAll(dir_, &scanned);
  ASSERT_EQ(scan.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(scan.status().message().find("12345"), absl::string_view::npos) << scan.status();
}

TEST_F(RecoveryTest, UnknownRecordTypeIsRefusedNotSkipped) {
  // A well-formed record of a type from the future, appended after the last one.
  const char payload[] = "new";
  char header[kRecordHeaderBytes];
  EncodeRecordHeader(static_cast<RecordType>(9), 1, payload, 3, header);
  WriteBytes(last_path_, saved_.back() + std::string(header, sizeof(header)) + "new");
  std::vector<ScannedRecord> scanned;
  absl::StatusOr<RecoveryScan> scan = ScanAll(dir_, &scanned);
  EXPECT_EQ(scan.status().code(), absl::StatusCode::kFailedPrecondition) << scan.status();
}

TEST_F(RecoveryTest, ReplayIsDeterministic) {
  auto stream_hash = [&](uint64_t* records) {
    std::hash<std::string> hash;
    uint64_t h = 0;
    absl::StatusOr<RecoveryScan> scan =
        ScanJournal(dir_, [&](RecordType type, uint64_t seq, const char* payload, size_t size,
                              const RecordLocation& where) {
          const std::string item = absl::StrCat(static_cast<int>(type), "/", seq, "/",
                                                absl::string_view(payload, size), "/", where.file,
                                                "/", where.offset, "/", where.record_index);
          h = h * 1099511628211ull ^ hash(item);
        });
    EXPECT_TRUE(scan.ok()) << scan.status();
    *records = scan.ok() ? scan->records : 0;
    return h;
  };
  uint64_t first_records = 0, second_records = 0;
  const uint64_t first = stream_hash(&first_records);
  EXPECT_EQ(stream_hash(&second_records), first);
  EXPECT_EQ(first_records, records_.size());
  EXPECT_EQ(second_records, records_.size());
}

// Method: write in batches; after some batches call Sync() and note what the writer then
// acknowledges (synced_record_index) and how long the segment file was. Simulate a power loss
// that keeps nothing after that last Sync: later segments vanish, the synced segment is cut back
// to its synced length, and half the time a partly persisted page of garbage follows. Every
// acknowledged record must come back, in order, and nothing else.
TEST(DropUnsyncedTailTest, EveryAcknowledgedRecordSurvives) {
  std::mt19937_64 rng(21);
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string dir = MakeTempDir();
    JournalOptions options;
    options.dir = dir;
    options.segment_bytes_max = 1024 + rng() % 8192;
    options.buffer_bytes = kRecordBytesMax;
    absl::StatusOr<std::unique_ptr<SegmentWriter>> writer = SegmentWriter::Open(options, 0);
    ASSERT_TRUE(writer.ok()) << writer.status();
    const std::vector<TestRecord> records = RandomRecords(&rng, 200 + rng() % 300);
    uint64_t acknowledged = 0;
    std::string synced_path = (*writer)->segment_path();
    uint64_t synced_bytes = 0;
    size_t next = 0;
    while (next < records.size()) {
      const size_t batch = 1 + rng() % 20;
      for (size_t i = 0; i < batch && next < records.size(); ++i, ++next) {
        const TestRecord& r = records[next];
        if (!(*writer)->Add(r.type, r.seq, r.payload.data(), r.payload.size())) {
          ASSERT_TRUE((*writer)->Write().ok());
          ASSERT_TRUE((*writer)->Add(r.type, r.seq, r.payload.data(), r.payload.size()));
        }
      }
      ASSERT_TRUE((*writer)->Write().ok());
      if (rng() % 3 == 0) {
        ASSERT_TRUE((*writer)->Sync().ok());
        acknowledged = (*writer)->synced_record_index();
        synced_path = (*writer)->segment_path();
        synced_bytes = FileSize(synced_path);
      }
    }
    writer->reset();

    // The crash.
    std::vector<ScannedRecord> scanned;
    ASSERT_TRUE(ScanAll(dir, &scanned).ok());
    for (const ScannedRecord& s : scanned) {
      if (dir + "/" + s.file > synced_path) ::unlink((dir + "/" + s.file).c_str());
    }
    std::string bytes = ReadBytes(synced_path).substr(0, synced_bytes);
    if (round % 2 == 0) {
      std::string page(1 + rng() % 4096, '\0');
      for (char& c : page) c = static_cast<char>(rng());
      bytes += page;
    }
    WriteBytes(synced_path, bytes);

    absl::StatusOr<RecoveryScan> scan = ScanAll(dir, &scanned);
    ASSERT_TRUE(scan.ok()) << scan.status();
    ASSERT_EQ(scanned.size(), acknowledged);
    EXPECT_EQ(RecordsOf(scanned),
              std::vector<TestRecord>(records.begin(), records.begin() + acknowledged));
    EXPECT_EQ(scan->next_record_index, acknowledged);
    EXPECT_EQ(scan->truncated, round % 2 == 0);
  }
}

}  // namespace
}  // namespace vouch::journal
