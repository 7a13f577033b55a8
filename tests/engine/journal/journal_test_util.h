// Helpers for the journal tests: temporary directories, raw file surgery (cut, flip, append)
// and a scan that collects every record.
#ifndef VOUCH_TESTS_ENGINE_JOURNAL_JOURNAL_TEST_UTIL_H_
#define VOUCH_TESTS_ENGINE_JOURNAL_JOURNAL_TEST_UTIL_H_

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/journal/records.h"
#include "engine/journal/segment.h"
#include "engine/journal/segment_format.h"
#include "gtest/gtest.h"

namespace vouch::journal::testing {

// A fresh, empty directory under $TEST_TMPDIR (or /tmp).
inline std::string MakeTempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string pattern = std::string(root != nullptr ? root : "/tmp") + "/journal_test_XXXXXX";
  EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
  return pattern;
}

struct TestRecord {
  RecordType type = RecordType::kConfirmed;
  uint64_t seq = 0;
  std::string payload;

  bool operator==(const TestRecord& other) const {
    return type == other.type && seq == other.seq && payload == other.payload;
  }
};

// Everything the visitor saw, with where it was.
struct ScannedRecord {
  TestRecord record;
  std::string file;
  uint64_t offset = 0;
  uint64_t record_index = 0;
};

inline absl::StatusOr<RecoveryScan> ScanAll(const std::string& dir,
                                            std::vector<ScannedRecord>* out) {
  out->clear();
  return ScanJournal(dir, [&](RecordType type, uint64_t seq, const char* payload, size_t size,
                              const RecordLocation& where) {
    out->push_back({{type, seq, std::string(payload, size)},
                    std::string(where.file.data(), where.file.size()),
                    where.offset,
                    where.record_index});
  });
}

inline std::vector<TestRecord> RecordsOf(const std::vector<ScannedRecord>& scanned) {
  std::vector<TestRecord> records;
  for (const ScannedRecord& s : scanned) records.push_back(s.record);
  return records;
}

// Random records of every type, payload sizes 0..200 bytes.
inline std::vector<TestRecord> RandomRecords(std::mt19937_64* rng, size_t count) {
  std::vector<TestRecord> records(count);
  for (TestRecord& record : records) {
    record.type = static_cast<RecordType>(1 + (*rng)() % 3);
    record.seq = (*rng)();
    record.payload.resize((*rng)() % 201);
    for (char& c : record.payload) c = static_cast<char>((*rng)());
  }
  return records;
}

// Writes `records`, Write()ing after every `batch` and Sync()ing at the end.
inline void WriteJournal(const JournalOptions& options, uint64_t first_index,
                         const std::vector<TestRecord>& records, size_t batch) {
  absl::StatusOr<std::unique_ptr<SegmentWriter>> writer = SegmentWriter::Open(options, first_index);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (size_t i = 0; i < records.size(); ++i) {
    const TestRecord& r = records[i];
    if (!(*writer)->Add(r.type, r.seq, r.payload.data(), r.payload.size())) {
      ASSERT_TRUE((*writer)->Write().ok());
      ASSERT_TRUE((*writer)->Add(r.type, r.seq, r.payload.data(), r.payload.size()));
    }
    if ((i + 1) % batch == 0) {
      ASSERT_TRUE((*writer)->Write().ok());
    }
  }
  ASSERT_TRUE((*writer)->Write().ok());
  ASSERT_TRUE((*writer)->Sync().ok());
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline uint64_t FileSize(const std::string& path) {
  struct stat info;
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return static_cast<uint64_t>(info.st_size);
}

inline void FlipByte(const std::string& path, uint64_t offset) {
  std::string bytes = ReadBytes(path);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5a);
  WriteBytes(path, bytes);
}

inline std::string SegmentPath(const std::string& dir, uint64_t first_index) {
  return dir + "/" + SegmentFileName(first_index);
}

}  // namespace vouch::journal::testing

#endif  // VOUCH_TESTS_ENGINE_JOURNAL_JOURNAL_TEST_UTIL_H_
