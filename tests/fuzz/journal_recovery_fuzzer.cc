// Fuzz target: recovery (Engine::Create on a data directory) from arbitrary journal segments and
// snapshots.
//
// Method: each input is unpacked (journal_input.h) into up to six files, segments and
// snapshots, with some checksums made right again so that mutations get past the CRCs, and
// written to a fresh directory in /dev/shm. An inline engine with ack policy `written` then
// recovers from it. Recovery must either refuse with a clear status (DataLoss, InvalidArgument
// or FailedPrecondition, with a message), or produce an engine that starts, verifies every
// transaction it put back in flight, and stops drained, with its ledger consistent: per
// currency the total is the opened accounts' total (when no snapshot was loaded; a snapshot
// may legitimately hold other balances) and equals the sum of the balances, and nothing is
// left in clearing. ASan/UBSan catch bad reads and UB, libFuzzer's -timeout catches hangs and
// -malloc_limit_mb any allocation sized by an untrusted length.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "engine/engine.h"
#include "engine/testing/engine_test_peer.h"
#include "tests/engine/engine_test_util.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/journal_input.h"

namespace vouch::fuzz {
namespace {

namespace fs = std::filesystem;

const std::string& DataDir() {
  static const std::string dir = "/dev/shm/vouch-journal-fuzz-" + std::to_string(getpid());
  return dir;
}

void WriteFiles(const JournalInput& input) {
  fs::remove_all(DataDir());
  fs::create_directories(DataDir());
  for (const JournalFile& file : input.files) {
    std::ofstream out(fs::path(DataDir()) / JournalFileName(file), std::ios::binary);
    out.write(file.bytes.data(), static_cast<std::streamsize>(file.bytes.size()));
  }
}

void CheckLedger(const ledger::Ledger& ledger, bool from_snapshot) {
  std::map<CurrencyCode, int64_t> balances;
  ledger.ForEachAccount([&](const ledger::AccountView& account) {
    balances[account.currency] += account.balance_minor;
  });
  for (const auto& [currency, sum] : balances) {
    FUZZ_CHECK(ledger.ClearingMinor(currency) == 0);  // Every reservation settled.
    FUZZ_CHECK(ledger.TotalMinor(currency) == sum);
  }
  if (!from_snapshot) {
    FUZZ_CHECK(ledger.TotalMinor(vouch::testing::kUsd) ==
               kAccounts * vouch::testing::kOpeningBalance);
  }
}

void Recover(const JournalInput& input) {
  WriteFiles(input);
  ManualClock clock;
  absl::StatusOr<std::unique_ptr<Engine>> created =
      Engine::Create(RecoveryOptions(DataDir(), &clock));
  if (!created.ok()) {
    const absl::StatusCode code = created.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kDataLoss ||
               code == absl::StatusCode::kInvalidArgument ||
               code == absl::StatusCode::kFailedPrecondition);
    FUZZ_CHECK(!created.status().message().empty());
    return;
  }
  Engine& engine = **created;
  const RecoveryReport& recovery = engine.recovery();
  FUZZ_CHECK(recovery.outcomes <= recovery.confirmed);
  FUZZ_CHECK(recovery.reverified == recovery.confirmed - recovery.outcomes);
  FUZZ_CHECK(engine.Start().ok());
  // The put-back transactions' deadlines pass on the manual clock; each reaches one outcome.
  for (int step = 0; step < 64 && engine.Stats().unverified() > 0; ++step) {
    vouch::testing::StepUntilIdle(engine);
    vouch::testing::DrainOutcomes(engine);
    clock.AdvanceNs(engine.options().verification_deadline_ns);
  }
  FUZZ_CHECK(engine.Stop().drained);
  CheckLedger(EngineTestPeer::Ledger(engine), !recovery.snapshot_file.empty());
}

}  // namespace
}  // namespace vouch::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vouch::fuzz;
  JournalInput input = UnpackJournalInput(data, size);
  FixChecksums(&input);
  Recover(input);
  return 0;
}
