// Writes the fuzz targets' seed corpora: make_corpus <dir> fills <dir>/<target>/ with seeds built
// from real data (wire frames from the protocol's messages, journals written by a real engine),
// so fuzzing starts from valid inputs and mutates outward. The corpus is committed; regenerate it
// after a format change with
//   bazel run //tests/fuzz:make_corpus -- "$PWD/tests/fuzz/corpus"
// Files are named by content, so regenerating is idempotent and regression inputs added by hand
// (named regression-*) are kept.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "engine/engine.h"
#include "engine/net/frame_codec.h"
#include "proto/vouch.pb.h"
#include "tests/engine/engine_test_util.h"
#include "tests/fuzz/journal_input.h"

namespace vouch::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr size_t kFrameMax = 64 * 1024;

void WriteSeed(const fs::path& dir, const std::string& bytes) {
  fs::create_directories(dir);
  uint64_t hash = 0xcbf29ce484222325;  // FNV-1a: a stable name per content.
  for (const char c : bytes) hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3;
  std::ofstream(dir / absl::StrFormat("seed-%016x", hash), std::ios::binary) << bytes;
}

v1::Transaction WireTransfer(uint64_t id, uint64_t from, uint64_t to, int64_t amount) {
  v1::Transaction txn;
  txn.set_id(id);
  txn.set_source_account(from);
  txn.set_destination_account(to);
  txn.set_amount(amount);
  txn.set_currency("USD");
  txn.set_merchant_id(id % 7 == 0 ? vouch::testing::kBlockedMerchant : 1);
  txn.set_merchant_category(5411);
  txn.set_country("GB");
  txn.set_device_id(77);
  return txn;
}

void AppendMessage(const v1::ClientMessage& message, std::string* out) {
  (void)net::AppendFrame(message, kFrameMax, out);
}

// Client streams: a Hello, then a mix of every request, as a client would send them.
std::vector<std::string> ClientStreams() {
  std::vector<std::string> streams;
  for (int variant = 0; variant < 12; ++variant) {
    std::string stream;
    v1::ClientMessage hello;
    if (variant % 3 != 0) hello.mutable_hello()->set_client_name(absl::StrFormat("c%d", variant));
    if (variant % 4 == 3) hello.mutable_hello()->set_resume_from_seq(1);
    if (variant != 11) AppendMessage(hello, &stream);  // 11: no Hello first.
    v1::ClientMessage submit;
    for (int i = 0; i <= variant % 5; ++i) {
      const uint64_t id = 1000 * variant + i + 1;
      *submit.mutable_submit()->add_transactions() =
          WireTransfer(id, 1 + id % 8, 1 + (id + 1) % 8, 100 + variant);
    }
    AppendMessage(submit, &stream);
    v1::ClientMessage query;
    query.mutable_query()->set_transaction_id(1000 * variant + 1);
    AppendMessage(query, &stream);
    v1::ClientMessage other;
    switch (variant % 4) {
      case 0: other.mutable_ping()->set_nonce(variant); break;
      case 1: other.mutable_subscribe()->set_include_verified(true); break;
      case 2: other.mutable_list_holds(); break;
      case 3: other.mutable_release_hold()->set_account(1 + variant % 8); break;
    }
    AppendMessage(other, &stream);
    if (variant % 2 == 0) {
      v1::ClientMessage balances;
      if (variant % 4 == 0) balances.mutable_read_balances()->add_accounts(1 + variant % 8);
      else balances.mutable_read_balances();  // All accounts.
      AppendMessage(balances, &stream);
    }
    if (variant == 10) stream.append("\xff\xff\xff\xff\x0f", 5);  // A length far too large.
    streams.push_back(stream);
  }
  return streams;
}

// A journal written by a real engine, read as a crash would leave it. The last `undecided`
// transactions are confirmed but never stepped to their outcome. With `snapshot`, enough is
// journaled to close the first segment (64 KiB), which a snapshot then replaces.
JournalInput WriteJournal(int transactions, int undecided, bool snapshot, bool release_hold) {
  const std::string dir = absl::StrFormat("/dev/shm/vouch-make-corpus-%d", getpid());
  fs::remove_all(dir);
  ManualClock clock;
  Options options = RecoveryOptions(dir, &clock);
  options.durability.snapshot_interval_records = snapshot ? 1 : 0;
  auto engine = *Engine::Create(std::move(options));
  (void)engine->Start();
  for (int i = 1; i <= transactions; ++i) {
    Transaction txn = vouch::testing::Transfer(i, 1 + i % kAccounts, 1 + (i + 3) % kAccounts,
                                               50 + i % 100);
    if (i % 50 == 9) txn.merchant_id = vouch::testing::kBlockedMerchant;  // Fails: account held.
    (void)engine->Submit(txn);
    clock.AdvanceNs(1'000'000'000);  // 1 s apart: below the fraud velocity limits.
    if (i <= transactions - undecided) {
      vouch::testing::StepUntilIdle(*engine);
      (void)vouch::testing::DrainOutcomes(*engine);  // The poll queue is small (64).
    }
    // Late failures hold accounts (fraud rules); releasing them keeps the journal growing.
    if (release_hold) {
      for (const uint64_t account : engine->Holds()) (void)engine->ReleaseHold(account);
    }
  }
  if (snapshot) (void)engine->PollSnapshot();
  JournalInput input;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    JournalFile file;
    unsigned long long index = 0;
    if (std::sscanf(name.c_str(), "journal-%llu.log", &index) == 1) {
      file.snapshot = false;
    } else if (std::sscanf(name.c_str(), "snapshot-%llu.snap", &index) == 1) {
      file.snapshot = true;
    } else {
      continue;
    }
    file.index = static_cast<uint32_t>(index);
    std::ifstream in(entry.path(), std::ios::binary);
    file.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    input.files.push_back(std::move(file));
  }
  engine.reset();  // No Stop: the directory is read as a crash left it.
  fs::remove_all(dir);
  std::sort(input.files.begin(), input.files.end(), [](const auto& a, const auto& b) {
    return std::make_pair(!a.snapshot, a.index) < std::make_pair(!b.snapshot, b.index);
  });
  if (input.files.size() > kFilesMax) input.files.resize(kFilesMax);  // Snapshot first, then the oldest segments.
  return input;
}

}  // namespace
}  // namespace vouch::fuzz

int main(int argc, char** argv) {
  using namespace vouch::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <corpus dir>\n");
    return 2;
  }
  const fs::path root = argv[1];

  const std::vector<std::string> streams = ClientStreams();
  for (const std::string& stream : streams) WriteSeed(root / "message_handler_fuzzer", stream);
  // The frame decoder's input: frame maximum byte, 8 chunk-size bytes, then the stream.
  for (size_t i = 0; i < streams.size(); ++i) {
    std::string input(1, static_cast<char>(i % 3 == 0 ? 255 : 16 * i));
    for (int c = 0; c < 8; ++c) input.push_back(static_cast<char>(i * 13 + c * 7));
    WriteSeed(root / "frame_decoder_fuzzer", input + streams[i]);
  }

  struct Journal {
    int transactions, undecided;
    bool snapshot, release_hold;
  };
  const Journal journals[] = {{0, 0, false, false},   {1, 1, false, false},
                              {3, 0, false, false},   {20, 5, false, false},
                              {20, 0, false, true},   {40, 10, false, true},
                              {60, 0, false, false},  {700, 0, true, true},
                              {700, 20, true, true}};
  for (const Journal& j : journals) {
    JournalInput input = WriteJournal(j.transactions, j.undecided, j.snapshot, j.release_hold);
    for (const uint8_t flags : {0, kFixRecordCrcs | kFixSegmentHeaders | kFixSnapshots}) {
      input.flags = flags;
      WriteSeed(root / "journal_recovery_fuzzer", PackJournalInput(input));
    }
  }
  return 0;
}
