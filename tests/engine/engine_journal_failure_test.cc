// A journal that fails (a full disk) stops the engine's promises, not the embedder's process.
//
// Method: the journal's open segment is made to fail every write with ENOSPC by pointing its
// descriptor at /dev/full (tests/engine/journal_fault.h). The engine must then report the
// failure (Options::on_fatal once, Engine::health), refuse what it can no longer keep (Submit
// answers BUSY / journal_failed, counted), release every waiter (AwaitAck returns false), and
// stop without waiting for a drain; a restart recovers what was acknowledged before. Snapshot
// failures are forced by a non-empty directory at every name a snapshot's temporary file could
// take: they are counted and retried until the directories go. Each test runs under every ack
// policy with a journal.
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/journal_fault.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::FillDiskUnderJournal;
using testing::Transfer;

namespace fs = std::filesystem;

class EngineJournalFailureTest : public ::testing::TestWithParam<AckPolicy> {
 protected:
  std::string Dir(const std::string& name) {
    return testing::EmptyTestDir(name + "-" + std::string(AckPolicyName(GetParam())));
  }
  Options MakeOptions(const std::string& dir, bool inline_mode) {
    Options options = BankOptions(20);
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = inline_mode;
    if (inline_mode) options.clock = &clock_;
    options.durability.ack = GetParam();
    options.durability.dir = dir;
    options.on_fatal = [this](const absl::Status& status) {
      absl::MutexLock lock(&mu_);
      ++fatal_calls_;
      fatal_ = status;
    };
    return options;
  }
  std::unique_ptr<Engine> Open(Options options) {
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
  int fatal_calls() {
    absl::MutexLock lock(&mu_);
    return fatal_calls_;
  }

  ManualClock clock_;
  absl::Mutex mu_;
  int fatal_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
};

TEST_P(EngineJournalFailureTest, AFullDiskIsReportedAndRefusedNotAborted) {
  const std::string dir = Dir("full-inline");
  auto engine = Open(MakeOptions(dir, /*inline_mode=*/true));
  const Confirmation kept = engine->Submit(Transfer(1, 1, 2, 100));
  ASSERT_EQ(kept.status, ConfirmStatus::kConfirmed);
  ASSERT_GE(FillDiskUnderJournal(dir), 1);

  const Confirmation unkept = engine->Submit(Transfer(2, 3, 4, 100));
  EXPECT_EQ(unkept.status, ConfirmStatus::kBusy) << "confirmed but never kept";
  EXPECT_EQ(unkept.reason, Reason::kJournalFailed);
  EXPECT_EQ(fatal_calls(), 1);
  EXPECT_FALSE(engine->health().ok());
  {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(fatal_, engine->health());
    EXPECT_NE(fatal_.message().find("No space left"), std::string::npos) << fatal_;
  }
  EXPECT_FALSE(engine->AwaitAck({2, 0})) << "seq 2 was never kept";
  const Confirmation later = engine->Submit(Transfer(3, 5, 6, 100));
  EXPECT_EQ(later.status, ConfirmStatus::kBusy);
  EXPECT_EQ(later.reason, Reason::kJournalFailed);
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.busy[static_cast<int>(Reason::kJournalFailed)], 2u);
  EXPECT_TRUE(stats.journal_failed);
  EXPECT_FALSE(engine->Stop().drained);
  EXPECT_EQ(fatal_calls(), 1) << "once";
  engine.reset();

  // The restart keeps what was acknowledged.
  auto recovered = Open(MakeOptions(dir, /*inline_mode=*/true));
  ASSERT_NE(recovered, nullptr);
  EXPECT_GE(recovered->recovery().confirmed, kept.seq);
  const Confirmation again = recovered->Submit(Transfer(1, 1, 2, 100));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, kept.seq);
}

// A thread waiting for an acknowledgement that will never come is released, not left blocked.
TEST_P(EngineJournalFailureTest, EveryWaiterReturnsWhenTheJournalFails) {
  const std::string dir = Dir("full-threaded");
  auto engine = Open(MakeOptions(dir, /*inline_mode=*/false));
  const Confirmation kept = engine->Submit(Transfer(1, 1, 2, 100));
  ASSERT_EQ(kept.status, ConfirmStatus::kConfirmed);
  bool waiter_kept = true;
  std::thread waiter([&] { waiter_kept = engine->AwaitAck({1'000, 0}); });  // Never confirmed.
  ASSERT_GE(FillDiskUnderJournal(dir), 1);
  const Confirmation unkept = engine->Submit(Transfer(2, 3, 4, 100), 0, AckWait::kCaller);
  ASSERT_EQ(unkept.status, ConfirmStatus::kConfirmed) << "the caller acknowledges";
  EXPECT_FALSE(engine->AwaitAck(unkept.ack));
  waiter.join();
  EXPECT_FALSE(waiter_kept);
  EXPECT_EQ(fatal_calls(), 1);
  EXPECT_FALSE(engine->Stop().drained);
}

TEST_P(EngineJournalFailureTest, AFailedSnapshotIsCountedAndTriedAgain) {
  const std::string dir = Dir("snapshot");
  Options options = MakeOptions(dir, /*inline_mode=*/false);
  options.durability.segment_bytes_max = 64 * 1024;  // ~600 records: closed segments.
  options.durability.snapshot_interval_records = 500;
  constexpr uint64_t kTransactions = 1'500;
  // Every name a snapshot's temporary file can take (records <= 2 per transaction), made a
  // directory that cannot be opened for writing or removed.
  fs::create_directories(dir);
  for (uint64_t index = 0; index <= 2 * kTransactions + 1; ++index) {
    const fs::path blocker =
        fs::path(dir) / absl::StrCat("snapshot-", std::string(20 - std::to_string(index).size(), '0'),
                                     index, ".snap.tmp");
    fs::create_directory(blocker);
    std::ofstream(blocker / "keep") << "x";
  }
  auto engine = Open(std::move(options));
  Sequence last = 0;
  for (uint64_t id = 1; id <= kTransactions; ++id) {
    // One acknowledgement for all: under `durable`, a sync each would make the test slow.
    const Confirmation c = engine->Submit(Transfer(id, 1 + id % 19, 2 + id % 19, 100), 0,
                                          AckWait::kCaller);
    ASSERT_EQ(c.status, ConfirmStatus::kConfirmed);
    last = c.seq;
  }
  ASSERT_TRUE(engine->AwaitAck({last, 0}));
  auto wait_for = [&](auto done) {
    for (int i = 0; i < 3'000 && !done(engine->Stats()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done(engine->Stats());
  };
  ASSERT_TRUE(wait_for([](const EngineStats& s) { return s.snapshot_failures >= 2; }))
      << "a failed snapshot is tried again";
  EXPECT_EQ(engine->Stats().snapshots, 0u);
  EXPECT_FALSE(engine->Stats().snapshots_stopped);
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) fs::remove_all(entry.path());
  }
  EXPECT_TRUE(wait_for([](const EngineStats& s) { return s.snapshots >= 1; }))
      << "snapshots resume once the disk has room";
  EXPECT_TRUE(engine->Stop().drained);
}

INSTANTIATE_TEST_SUITE_P(AckPolicies, EngineJournalFailureTest,
                         ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable),
                         [](const ::testing::TestParamInfo<AckPolicy>& info) {
                           return std::string(AckPolicyName(info.param));
                         });

}  // namespace
}  // namespace vouch
