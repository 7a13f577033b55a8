// Snapshot files and the replay state they hold, at the size where it matters:
//  - a file round-trips (format 2: the length after the state), and a file of the first format
//    (the length before it) is still read; damage of either kind is DataLoss, never skipped;
//  - a writer that fails or is abandoned leaves no file behind, and a commit removes older ones;
//  - Replayer::Save hands the state on in pieces of about 1 MiB (a snapshot of 10^8 answers is
//    never in memory whole), and the pieces put together restore a shadow that saves the same
//    bytes again;
//  - recovery's Restore puts every answer and refusal of a snapshot straight into the
//    idempotency table, and a held transaction still undecided only at FinishAnswers.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/accounts/account_directory.h"
#include "engine/ingest/idempotency_table.h"
#include "engine/journal/crc32c.h"
#include "engine/journal/records.h"
#include "engine/recovery/replayer.h"
#include "engine/recovery/snapshot.h"
#include "gtest/gtest.h"
#include "verifiers/fraud/fraud_verifier.h"
#include "engine/ledger/ledger.h"

namespace vouch {
namespace {

namespace fs = std::filesystem;

std::string EmptyDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void PutU64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

// A state larger than one write, with every byte value.
std::string BigState() {
  std::string state(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < state.size(); ++i) state[i] = static_cast<char>(i * 131 + i / 7);
  return state;
}

TEST(SnapshotFileTest, RoundTripsInTheSecondFormat) {
  const std::string dir = EmptyDir("snapshot_round_trip");
  const std::string state = BigState();
  ASSERT_TRUE(WriteSnapshot(dir, 42, state).ok());
  ASSERT_EQ(Files(dir), std::vector<std::string>{"snapshot-00000000000000000042.snap"});
  const std::string bytes = ReadFile(dir + "/snapshot-00000000000000000042.snap");
  EXPECT_EQ(bytes.substr(0, 8), "VOUCHSN2");
  EXPECT_EQ(bytes.size(), 8 + 8 + state.size() + 8 + 4);
  absl::StatusOr<std::optional<LoadedSnapshot>> loaded = LoadNewestSnapshot(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->covered_record_index, 42u);
  EXPECT_EQ((*loaded)->state, state);
}

// Golden bytes of the first format, as the code before format 2 wrote them: magic VOUCHSNP,
// covered index, state length, state, masked CRC32C of everything before.
TEST(SnapshotFileTest, TheFirstFormatIsStillRead) {
  const std::string dir = EmptyDir("snapshot_format1");
  const std::string state = "state of the first format";
  std::string bytes = "VOUCHSNP";
  PutU64(&bytes, 7);
  PutU64(&bytes, state.size());
  bytes += state;
  const uint32_t crc = journal::crc32c::Mask(journal::crc32c::Value(bytes.data(), bytes.size()));
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>(crc >> (8 * i)));
  WriteFile(dir + "/snapshot-00000000000000000007.snap", bytes);
  absl::StatusOr<std::optional<LoadedSnapshot>> loaded = LoadNewestSnapshot(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->covered_record_index, 7u);
  EXPECT_EQ((*loaded)->state, state);

  bytes[20] ^= 1;  // In the state: the CRC no longer matches.
  WriteFile(dir + "/snapshot-00000000000000000007.snap", bytes);
  EXPECT_EQ(LoadNewestSnapshot(dir).status().code(), absl::StatusCode::kDataLoss);
}

TEST(SnapshotFileTest, DamageIsDataLossNeverSkipped) {
  const std::string dir = EmptyDir("snapshot_damage");
  const std::string path = dir + "/snapshot-00000000000000000009.snap";
  ASSERT_TRUE(WriteSnapshot(dir, 9, BigState()).ok());
  const std::string good = ReadFile(path);
  std::vector<std::pair<const char*, std::string>> damaged = {
      {"a flipped state byte", good}, {"a flipped length", good}, {"truncated", good.substr(0, 100)},
      {"too short for a header", good.substr(0, 11)}, {"empty", ""}};
  damaged[0].second[1000] ^= 0x40;
  damaged[1].second[good.size() - 12] ^= 1;
  for (const auto& [what, bytes] : damaged) {
    WriteFile(path, bytes);
    const absl::Status status = LoadNewestSnapshot(dir).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << what << ": " << status;
  }
}

TEST(SnapshotFileTest, AnAbandonedOrFailedWriterLeavesNothingAndACommitRemovesOlderOnes) {
  const std::string dir = EmptyDir("snapshot_writer");
  ASSERT_TRUE(WriteSnapshot(dir, 5, "old").ok());
  {
    absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> writer = SnapshotFileWriter::Open(dir, 8);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append("part of a state").ok());
    EXPECT_EQ(*CountSnapshotTemporaries(dir), 1u);
  }  // Abandoned (the save failed half-way, say).
  EXPECT_EQ(Files(dir), std::vector<std::string>{"snapshot-00000000000000000005.snap"});

  // A directory by the temporary's name: Open fails and nothing is left.
  fs::create_directory(dir + "/snapshot-00000000000000000009.snap.tmp");
  EXPECT_FALSE(SnapshotFileWriter::Open(dir, 9).ok());
  fs::remove(dir + "/snapshot-00000000000000000009.snap.tmp");

  absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> writer = SnapshotFileWriter::Open(dir, 10);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("new ").ok());
  ASSERT_TRUE((*writer)->Append("state").ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ(Files(dir), std::vector<std::string>{"snapshot-00000000000000000010.snap"});
  EXPECT_EQ((*LoadNewestSnapshot(dir))->state, "new state");
}

// The state a Replayer replays into, with two funded accounts.
struct Targets {
  Targets() : fraud(fraud::FraudRules{}, 1024), ledger(16, 4096), accounts(16) {}
  fraud::FraudVerifier fraud;
  ledger::Ledger ledger;
  AccountDirectory accounts;
  Replayer::Targets Of(IdempotencyTable* table = nullptr) {
    return {&fraud, &ledger, &accounts, nullptr, table, 0};
  }
};

constexpr uint64_t kTransactions = 15'000;  // 15,000 x 88 bytes of answers: 1.3 MB.
constexpr size_t kWindow = 1 << 15;
constexpr uint64_t kHeldId = 999'999;

uint64_t IdOf(uint64_t seq) { return 1'000 + seq; }
uint64_t RefusedIdOf(uint64_t seq) { return 5'000'000 + seq; }

Transaction TransferOf(uint64_t id) {
  Transaction txn;
  txn.id = id;
  txn.source_account = 1;
  txn.destination_account = 2;
  txn.amount_minor = 1;
  txn.currency = PackCurrency("USD");
  return txn;
}

// Accounts 1 and 2, kTransactions confirmed and verified with a refusal after every 100th, then
// one held transaction (kHeldId) still undecided.
void ReplayJournal(Replayer& replayer) {
  const journal::RecordLocation where{"test", 0, 0};
  char payload[256];
  for (uint64_t account : {1, 2}) {
    journal::AccountCreatedRecord created;
    created.account = {account, PackCurrency("USD"), 1'000'000'000, 0, 0, {}, 0};
    const size_t size = journal::EncodeAccountCreatedRecord(created, payload);
    ASSERT_TRUE(replayer.Apply(journal::RecordType::kAccountCreated, 0, payload, size, where).ok());
  }
  const int64_t start_unix_ns = 1'700'000'000'000'000'000;
  for (uint64_t seq = 1; seq <= kTransactions + 1; ++seq) {
    journal::ConfirmedRecord confirmed;
    confirmed.seq = seq;
    confirmed.txn = TransferOf(seq <= kTransactions ? IdOf(seq) : kHeldId);
    confirmed.confirmed_unix_ns = start_unix_ns + static_cast<int64_t>(seq) * 1'000;
    confirmed.held = seq > kTransactions;
    size_t size = journal::EncodeConfirmedRecord(confirmed, payload);
    ASSERT_TRUE(replayer.Apply(journal::RecordType::kConfirmed, seq, payload, size, where).ok());
    if (seq > kTransactions) break;
    journal::OutcomeRecord outcome;
    outcome.outcome.id = confirmed.txn.id;
    outcome.outcome.seq = seq;
    outcome.outcome.source_account = 1;
    outcome.outcome.amount_minor = 1;
    outcome.outcome.currency = confirmed.txn.currency;
    outcome.confirmed_unix_ns = confirmed.confirmed_unix_ns;
    outcome.decided_unix_ns = confirmed.confirmed_unix_ns + 500;
    size = journal::EncodeOutcomeRecord(outcome, payload);
    ASSERT_TRUE(replayer.Apply(journal::RecordType::kOutcome, seq, payload, size, where).ok());
    if (seq % 100 == 0) {
      journal::RefusedRecord refused{RefusedIdOf(seq), Reason::kOverLimit,
                                     confirmed.confirmed_unix_ns, 0};
      size = journal::EncodeRefusedRecord(refused, payload);
      ASSERT_TRUE(replayer.Apply(journal::RecordType::kRefused, 0, payload, size, where).ok());
    }
  }
}

TEST(ReplayerSnapshotTest, SaveHandsTheStateOnInPiecesThatRestoreWhole) {
  Targets original_targets;
  Replayer shadow(original_targets.Of(), 1024, kWindow, 0);
  ASSERT_NO_FATAL_FAILURE(ReplayJournal(shadow));
  std::vector<std::string> pieces;
  ASSERT_TRUE(shadow
                  .Save([&](absl::string_view piece) {
                    pieces.emplace_back(piece);
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_GE(pieces.size(), 2u) << "1.3 MB of answers in one piece";
  std::string whole;
  for (const std::string& piece : pieces) {
    EXPECT_LE(piece.size(), (1u << 20) + 88) << "a piece larger than about 1 MiB";
    EXPECT_FALSE(piece.empty());
    whole += piece;
  }

  Targets copy_targets;
  Replayer copy(copy_targets.Of(), 1024, kWindow, 0);
  ASSERT_TRUE(copy.Restore(whole).ok());
  std::string again;
  ASSERT_TRUE(copy
                  .Save([&](absl::string_view piece) {
                    again.append(piece.data(), piece.size());
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(again, whole) << "the restored shadow saves other bytes";

  // A failing sink stops the save with its status.
  int calls = 0;
  const absl::Status failed = shadow.Save([&](absl::string_view) {
    ++calls;
    return absl::ResourceExhaustedError("disk full");
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(calls, 1);

  // Recovery: every answer and refusal straight into the table; the held one only at the end.
  Targets recovery_targets;
  IdempotencyTable table(kWindow);
  Replayer recovery(recovery_targets.Of(&table), 1024, kWindow, 0);
  ASSERT_TRUE(recovery.Restore(whole).ok());
  for (uint64_t seq = 1; seq <= kTransactions; ++seq) {
    const std::optional<StoredAnswer> answer = table.Find(IdOf(seq));
    ASSERT_TRUE(answer.has_value()) << "seq " << seq;
    EXPECT_EQ(answer->seq, seq);
    EXPECT_EQ(answer->status, ConfirmStatus::kConfirmed);
    EXPECT_EQ(answer->fingerprint, ContentFingerprint(TransferOf(IdOf(seq))));
    if (seq % 100 == 0) {
      const std::optional<StoredAnswer> refused = table.Find(RefusedIdOf(seq));
      ASSERT_TRUE(refused.has_value()) << "refusal after seq " << seq;
      EXPECT_EQ(refused->status, ConfirmStatus::kRejected);
      EXPECT_EQ(refused->reason, Reason::kOverLimit);
    }
  }
  EXPECT_FALSE(table.Find(kHeldId).has_value()) << "an undecided held answer before its outcome";
  ASSERT_TRUE(recovery.FinishAnswers().ok());
  const std::optional<StoredAnswer> held = table.Find(kHeldId);
  ASSERT_TRUE(held.has_value());
  EXPECT_TRUE(held->held);
  EXPECT_EQ(held->seq, kTransactions + 1);
}

// Recovery into a table too small for what it restores: the replay stops, and says so.
TEST(ReplayerSnapshotTest, RecoveryIntoATableTooSmallForTheRetentionStops) {
  Targets shadow_targets;
  Replayer shadow(shadow_targets.Of(), 1024, kWindow, 0);
  ASSERT_NO_FATAL_FAILURE(ReplayJournal(shadow));
  std::string whole;
  ASSERT_TRUE(shadow
                  .Save([&](absl::string_view piece) {
                    whole.append(piece.data(), piece.size());
                    return absl::OkStatus();
                  })
                  .ok());
  Targets recovery_targets;
  // Every id is within a retention of 10^18 ns of time 0 (the unix_to_mono offset is 0).
  IdempotencyTable table(1024, int64_t{1} << 62);
  Replayer recovery(recovery_targets.Of(&table), 1024, kWindow, 0);
  const absl::Status status = recovery.Restore(whole);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_TRUE(recovery.idempotency_overflowed());
}

}  // namespace
}  // namespace vouch
