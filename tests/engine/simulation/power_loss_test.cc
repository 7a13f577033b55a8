// DiskModel, the simulation's power loss: what a sync covered always survives, what it did not
// may not, and the storage layer's syncs all reach it through the sync hook.
#include "tests/engine/simulation/power_loss.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "engine/journal/segment.h"
#include "engine/journal/sync_hook.h"
#include "gtest/gtest.h"
#include "tests/engine/simulation/simulator.h"

namespace vouch::simulation {
namespace {

namespace fs = std::filesystem;

class PowerLossTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(DefaultWorkDir()) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    dir_ = root_ / "data";
    fs::create_directories(dir_);
    disk_.Track(dir_);
    journal::InstallSyncHook(&disk_);
  }
  void TearDown() override {
    journal::InstallSyncHook(nullptr);
    fs::remove_all(root_);
  }

  std::unique_ptr<journal::SegmentWriter> OpenWriter() {
    journal::JournalOptions options;
    options.dir = dir_.string();
    absl::StatusOr<std::unique_ptr<journal::SegmentWriter>> writer =
        journal::SegmentWriter::Open(options, 0);
    EXPECT_TRUE(writer.ok()) << writer.status();
    return writer.ok() ? *std::move(writer) : nullptr;
  }

  static void AddRecords(journal::SegmentWriter& writer, int count) {
    const std::string payload(100, 'p');
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(writer.Add(journal::RecordType::kConfirmed, writer.next_record_index() + 1,
                             payload.data(), payload.size()));
    }
    ASSERT_TRUE(writer.Write().ok());
  }

  // The records a power loss chosen by `seed` leaves; -1 if recovery refuses the journal.
  int64_t RecordsAfterPowerLoss(uint64_t seed, PowerLossReport* report) {
    const fs::path copy = root_ / absl::StrCat("copy-", seed);
    fs::copy(dir_, copy, fs::copy_options::recursive);
    std::mt19937_64 rng(seed);
    *report = disk_.PowerLoss(copy, rng);
    absl::StatusOr<journal::RecoveryScan> scan = journal::ScanJournal(
        copy.string(), [](journal::RecordType, uint64_t, const char*, size_t,
                          const journal::RecordLocation&) {});
    fs::remove_all(copy);
    return scan.ok() ? static_cast<int64_t>(scan->records) : -1;
  }

  fs::path root_;
  fs::path dir_;
  DiskModel disk_;
};

// The writer's Sync reaches the model: if it bypassed the hook, the model would count nothing as
// synced and cut into the first ten records.
TEST_F(PowerLossTest, SyncedRecordsSurviveAndUnsyncedOnesMayNot) {
  std::unique_ptr<journal::SegmentWriter> writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  AddRecords(*writer, 10);
  ASSERT_TRUE(writer->Sync().ok());
  AddRecords(*writer, 10);  // Written, not synced: what `written` acknowledges.
  bool lost_some = false;
  bool kept_all = false;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    PowerLossReport report;
    const int64_t records = RecordsAfterPowerLoss(seed, &report);
    ASSERT_GE(records, 10) << "seed " << seed << ": " << report.Describe();
    ASSERT_LE(records, 20);
    EXPECT_EQ(report.files_vanished, 0u);  // Sync also synced the new segment's entry.
    lost_some |= records < 20;
    kept_all |= records == 20;
  }
  EXPECT_TRUE(lost_some);
  EXPECT_TRUE(kept_all);
}

// A segment whose directory entry was never synced may be gone: an empty journal, not an error.
TEST_F(PowerLossTest, UnsyncedDirectoryEntryMayVanish) {
  std::unique_ptr<journal::SegmentWriter> writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  AddRecords(*writer, 5);
  uint64_t vanished = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    PowerLossReport report;
    const int64_t records = RecordsAfterPowerLoss(seed, &report);
    ASSERT_GE(records, 0) << "seed " << seed << ": " << report.Describe();
    vanished += report.files_vanished;
  }
  EXPECT_GT(vanished, 0u);
}

// What a sync covered survives a rename (the snapshot writer's temporary file): it is the inode
// that was synced. DataSync and DirectorySync are the hook's entry points.
TEST_F(PowerLossTest, RenameKeepsWhatWasSynced) {
  const fs::path temporary = dir_ / "state.tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  const std::string bytes(4096, 's');
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ASSERT_EQ(journal::DataSync(fd, temporary.string()), 0);
  ::close(fd);
  fs::rename(temporary, dir_ / "state");
  const int dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_EQ(journal::DirectorySync(dir_fd, dir_.string()), 0);
  ::close(dir_fd);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const fs::path copy = root_ / absl::StrCat("copy-", seed);
    fs::copy(dir_, copy, fs::copy_options::recursive);
    std::mt19937_64 rng(seed);
    const PowerLossReport report = disk_.PowerLoss(copy, rng);
    EXPECT_EQ(report.files_cut + report.files_vanished + report.files_garbled, 0u);
    EXPECT_EQ(fs::file_size(copy / "state"), bytes.size());
    fs::remove_all(copy);
  }
}

}  // namespace
}  // namespace vouch::simulation
