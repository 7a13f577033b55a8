// The data directory (issue 12, items 7-11): one engine per directory (an flock held for the
// engine's life), the opening configuration pinned in the journal and in snapshots, no journal
// silently ignored under ack policy memory, a read-only recovery that writes nothing, and no
// snapshot temporaries left behind. Every test runs under ack policy written and durable.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "engine/journal/segment.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::kBlockedMerchant;
using testing::StepUntilIdle;
using testing::Transfer;

namespace fs = std::filesystem;

class EngineDataDirTest : public ::testing::TestWithParam<AckPolicy> {
 protected:
  std::string Dir(const std::string& name) {
    return testing::EmptyTestDir(name + "-" + std::string(AckPolicyName(GetParam())));
  }
  Options DirOptions(const std::string& dir, uint64_t snapshot_interval_records = 0) {
    Options options = BankOptions(20);
    options.durability.segment_bytes_max = 64 * 1024;
    options.durability.snapshot_interval_records = snapshot_interval_records;
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = true;
    options.clock = &clock_;
    options.durability.ack = GetParam();
    options.durability.dir = dir;
    return options;
  }
  std::unique_ptr<Engine> Open(Options options) {
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
  void SubmitSome(Engine& engine, uint64_t first_id, int count) {
    for (int i = 0; i < count; ++i) {
      const uint64_t id = first_id + i;
      Transaction txn = Transfer(id, 1 + id % 19, 2 + id % 19, 100 + id % 7);
      if (id % 50 == 0) txn.merchant_id = kBlockedMerchant;
      (void)engine.Submit(txn);
      clock_.AdvanceNs(1'000);
    }
  }
  // A directory with a drained journal of `count` transactions (and a snapshot if asked).
  void Fill(const std::string& dir, int count, bool snapshot = false) {
    auto engine = Open(DirOptions(dir, snapshot ? 300 : 0));
    ASSERT_NE(engine, nullptr);
    SubmitSome(*engine, 1, count);
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    if (snapshot) {
      ASSERT_TRUE(engine->PollSnapshot().ok());
      ASSERT_EQ(engine->Stats().snapshots, 1u);
    }
    EXPECT_TRUE(engine->Stop().drained);
  }

  ManualClock clock_;
};

INSTANTIATE_TEST_SUITE_P(AckPolicies, EngineDataDirTest,
                         ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable),
                         [](const auto& info) { return std::string(AckPolicyName(info.param)); });

// Item 7: a second engine on a directory in use is refused, naming the directory and the pid.
TEST_P(EngineDataDirTest, SecondEngineOnTheSameDirectoryIsRefused) {
  const std::string dir = Dir("lock");
  auto first = Open(DirOptions(dir));
  ASSERT_NE(first, nullptr);
  auto second = Engine::Create(DirOptions(dir));
  ASSERT_FALSE(second.ok()) << "two engines would hand out the same sequence numbers";
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find(dir), std::string::npos) << second.status();
  EXPECT_NE(second.status().message().find(absl::StrCat("pid ", getpid())), std::string::npos)
      << second.status();
  // The lock lives as long as the engine: once it is gone, the directory opens again.
  EXPECT_TRUE(first->Stop().drained);
  first.reset();
  auto third = Open(DirOptions(dir));
  EXPECT_NE(third, nullptr);
}

// Item 9: a data directory with ack policy memory would be ignored; it is refused.
TEST_P(EngineDataDirTest, AckMemoryWithADirectoryIsRefused) {
  const std::string dir = Dir("memory");
  Fill(dir, 50);
  Options options = DirOptions(dir);
  options.durability.ack = AckPolicy::kMemory;
  auto engine = Engine::Create(std::move(options));
  ASSERT_FALSE(engine.ok()) << "the journal would be ignored and every id applied again";
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("durability.dir"), std::string::npos)
      << engine.status();
}

// Item 8: a restart with another opening configuration is refused, with or without snapshot.
struct Mismatch {
  const char* name;
  void (*change)(Options&);
  const char* field;  // Named in the message.
};

TEST_P(EngineDataDirTest, AnotherOpeningConfigurationIsRefusedBeforeAndAfterASnapshot) {
  const Mismatch mismatches[] = {
      {"balance", [](Options& o) { for (auto& a : o.accounts) a.balance_minor *= 2; },
       "opening balances"},
      {"fewer", [](Options& o) { o.accounts.resize(10); }, "accounts"},
      {"more",
       [](Options& o) {
         o.ledger_account_capacity = 30;
         for (uint64_t id = 21; id <= 30; ++id) {
           o.accounts.push_back({id, testing::kUsd, testing::kOpeningBalance, 0});
         }
       },
       "accounts"},
      {"overdraft", [](Options& o) { o.accounts[3].overdraft_limit_minor = 500; },
       "overdraft limits"},
      {"currency",
       [](Options& o) { o.accounts[3].currency = PackCurrency("EUR"); }, "currencies"},
      {"moved",  // Same totals, money moved from one account to another.
       [](Options& o) {
         o.accounts[1].balance_minor += 7;
         o.accounts[2].balance_minor -= 7;
       },
       "accounts"},
  };
  for (const bool snapshot : {false, true}) {
    const std::string dir = Dir(snapshot ? "pinned-snapshot" : "pinned");
    Fill(dir, 1'500, snapshot);
    if (snapshot) {
      ASSERT_FALSE(fs::exists(fs::path(dir) / "journal-00000000000000000000.log"))
          << "the segment holding the opening record is gone: the snapshot must carry it";
    }
    for (const Mismatch& mismatch : mismatches) {
      SCOPED_TRACE(absl::StrCat(mismatch.name, snapshot ? " after a snapshot" : ""));
      Options options = DirOptions(dir);
      mismatch.change(options);
      auto engine = Engine::Create(std::move(options));
      ASSERT_FALSE(engine.ok()) << "a different opening configuration was accepted";
      EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition) << engine.status();
      EXPECT_NE(engine.status().message().find(mismatch.field), std::string::npos)
          << engine.status();
    }
    // The configuration it was created with still opens, with its money intact.
    auto engine = Open(DirOptions(dir));
    ASSERT_NE(engine, nullptr);
    int64_t total = 0;
    EngineTestPeer::Ledger(*engine).ForEachAccount(
        [&](const ledger::AccountView& a) { total += a.balance_minor; });
    EXPECT_EQ(total, 20 * testing::kOpeningBalance);
  }
}

std::vector<std::string> Temporaries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") names.push_back(name);
  }
  return names;
}

// Item 11: a temporary left by a kill during a snapshot write is removed at start.
TEST_P(EngineDataDirTest, SnapshotTemporariesLeftByACrashAreRemovedAtStart) {
  const std::string dir = Dir("tmp-start");
  Fill(dir, 100);
  for (const char* name : {"snapshot-00000000000000000150.snap.tmp",
                           "snapshot-00000000000000099999.snap.tmp"}) {
    std::ofstream(fs::path(dir) / name) << "half a snapshot";
  }
  std::ofstream(fs::path(dir) / "notes.tmp") << "not ours";
  auto engine = Open(DirOptions(dir));
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(Temporaries(dir), std::vector<std::string>{"notes.tmp"});
}

// Item 11: a snapshot that fails to write (the file size limit stands in for a full disk)
// leaves no temporary behind, and the next attempt succeeds.
TEST_P(EngineDataDirTest, AFailedSnapshotWriteLeavesNoTemporary) {
  const std::string dir = Dir("tmp-failed");
  auto engine = Open(DirOptions(dir, 300));
  ASSERT_NE(engine, nullptr);
  SubmitSome(*engine, 1, 1'500);
  StepUntilIdle(*engine);
  DrainOutcomes(*engine);
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, SIG_IGN);  // write(2) then fails with EFBIG instead of killing the process.
  rlimit small = saved;
  small.rlim_cur = 16 * 1024;  // Below the snapshot, above nothing else written meanwhile.
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status failed = engine->PollSnapshot();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  EXPECT_FALSE(failed.ok());
  EXPECT_TRUE(Temporaries(dir).empty()) << Temporaries(dir)[0];
  EXPECT_TRUE(engine->PollSnapshot().ok());
  EXPECT_EQ(engine->Stats().snapshots, 1u);
  EXPECT_TRUE(Temporaries(dir).empty());
  EXPECT_TRUE(engine->Stop().drained);
}

// Every file in `dir`, by name, with its bytes.
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    files[entry.path().filename().string()] = bytes.str();
  }
  return files;
}

std::string NewestSegment(const std::string& dir) {
  std::string newest;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") newest = std::max(newest, entry.path().string());
  }
  return newest;
}

// Item 10: a read-only recovery (vouchd --check) decides what was left undecided in memory and
// writes nothing: no segment, no outcome record, no cut of a torn tail, no removal of a
// temporary. A normal start afterwards finds exactly what it would have found without it.
TEST_P(EngineDataDirTest, ReadOnlyRecoveryDecidesInMemoryAndWritesNothing) {
  const std::string live = Dir("read-only-live");
  const std::string dir = Dir("read-only");
  {
    auto engine = Open(DirOptions(live));
    ASSERT_NE(engine, nullptr);
    SubmitSome(*engine, 1, 200);
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    EngineTestPeer::StallVerifier(*engine, VerifierId::kFraud, 10'000'000'000);
    SubmitSome(*engine, 1'001, 60);  // Confirmed and journaled, undecided at the "crash".
    for (int i = 0; i < 10; ++i) engine->Step();
    fs::copy(live, dir, fs::copy_options::recursive);  // What a kill -9 leaves.
  }
  std::ofstream(NewestSegment(dir), std::ios::app | std::ios::binary) << "torn";
  std::ofstream(fs::path(dir) / "snapshot-00000000000000000100.snap.tmp") << "half";
  const std::map<std::string, std::string> before = Files(dir);

  Options read_only = DirOptions(dir);
  read_only.durability.read_only = true;
  uint64_t reverified = 0;
  {
    auto engine = Open(read_only);
    ASSERT_NE(engine, nullptr);
    const RecoveryReport& recovery = engine->recovery();
    reverified = recovery.reverified;
    EXPECT_GT(reverified, 0u);
    EXPECT_TRUE(recovery.truncated) << "the torn tail is found";
    EXPECT_EQ(recovery.snapshot_temporaries, 1u);
    EXPECT_FALSE(engine->Stats().journal);
    auto writer = Engine::Create(DirOptions(dir));
    ASSERT_FALSE(writer.ok()) << "a server must not start while the audit runs";
    EXPECT_EQ(writer.status().code(), absl::StatusCode::kFailedPrecondition);
    StepUntilIdle(*engine);
    EXPECT_EQ(DrainOutcomes(*engine).size(), reverified) << "decided in memory";
    const Confirmation refused = engine->Submit(Transfer(99'999, 1, 2, 100));
    EXPECT_EQ(refused.status, ConfirmStatus::kBusy) << "nothing new could be kept";
    EXPECT_EQ(refused.reason, Reason::kShuttingDown);
    const std::vector<uint64_t> holds = engine->Holds();
    ASSERT_FALSE(holds.empty());
    EXPECT_EQ(engine->ReleaseHold(holds[0]).status().code(), absl::StatusCode::kFailedPrecondition)
        << "a release could not be kept";
    EXPECT_TRUE(engine->Stop().drained);
  }
  EXPECT_EQ(Files(dir), before) << "the read-only recovery changed the directory";

  auto engine = Open(DirOptions(dir));
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->recovery().reverified, reverified);
  EXPECT_TRUE(engine->recovery().truncated);
  EXPECT_EQ(engine->recovery().snapshot_temporaries, 1u);
  EXPECT_TRUE(Temporaries(dir).empty());
  // And the other way round: no audit while a server runs.
  auto audit = Engine::Create(read_only);
  ASSERT_FALSE(audit.ok());
  EXPECT_EQ(audit.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(EngineDataDirTest, ReadOnlyRecoveryOfAMissingDirectoryIsNotFound) {
  Options options = DirOptions(Dir("missing"));
  options.durability.read_only = true;
  auto engine = Engine::Create(std::move(options));
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kNotFound) << engine.status();
  EXPECT_FALSE(fs::exists(options.durability.dir)) << "read-only creates nothing";
}

// A journal written before the opening configuration was pinned: the first start pins the
// configuration it is given, and later starts compare with it.
TEST_P(EngineDataDirTest, AJournalWithoutAnOpeningRecordIsPinnedAtItsFirstStart) {
  const std::string dir = Dir("legacy");
  Fill(dir, 300);
  // Rewrite the journal without its opening record, as an older version wrote it.
  std::vector<std::tuple<journal::RecordType, uint64_t, std::string>> records;
  auto keep = [&](journal::RecordType type, uint64_t seq, const char* payload, size_t size,
                  const journal::RecordLocation&) {
    if (type != journal::RecordType::kOpening) records.emplace_back(type, seq, std::string(payload, size));
  };
  ASSERT_TRUE(journal::ScanJournal(dir, keep).ok());
  const uint64_t confirmed = std::count_if(records.begin(), records.end(), [](const auto& r) {
    return std::get<0>(r) == journal::RecordType::kConfirmed;
  });
  ASSERT_GT(confirmed, 0u);
  fs::remove_all(dir);
  {
    auto writer = journal::SegmentWriter::Open({dir, 1 << 20}, 0);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (const auto& [type, seq, payload] : records) {
      ASSERT_TRUE((*writer)->Add(type, seq, payload.data(), payload.size()));
    }
    ASSERT_TRUE((*writer)->Write().ok());
  }
  {
    auto engine = Open(DirOptions(dir));
    ASSERT_NE(engine, nullptr);
    EXPECT_TRUE(engine->recovery().opening_recorded);
    EXPECT_EQ(engine->recovery().confirmed, confirmed);
  }
  Options doubled = DirOptions(dir);
  for (auto& account : doubled.accounts) account.balance_minor *= 2;
  auto refused = Engine::Create(std::move(doubled));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  auto engine = Open(DirOptions(dir));
  ASSERT_NE(engine, nullptr);
  EXPECT_FALSE(engine->recovery().opening_recorded) << "pinned once";
}

}  // namespace
}  // namespace vouch
