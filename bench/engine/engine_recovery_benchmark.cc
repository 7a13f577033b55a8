// Recovery time: Engine::Create on a data directory whose journal holds N transactions, each
// confirmed and VERIFIED (two records each), as a long-running server leaves it. Replay runs every
// transaction through the fraud rules again, posts it to the ledger and rebuilds the
// idempotency table and Query history, so this is the restart time of a real deployment.
//
// BM_RecoverFromSnapshot: the same journal after a snapshot covered all but its newest segment.
//
// Every id goes back into the idempotency table with its first-seen time and fingerprint: the
// journal's times end now, 3 µs apart, so every id is within the 24 h retention, and the table is
// sized to hold them all (recovery refuses to forget one early).
//
// N defaults to 100,000 (the suite runs this binary once); set VOUCH_RECOVERY_TRANSACTIONS for
// the documented figures (docs/BENCHMARKS.md):
//   VOUCH_RECOVERY_TRANSACTIONS=10000000 bazel run -c opt //bench/engine:engine_recovery_benchmark
//   VOUCH_RECOVERY_TRANSACTIONS=100000000 bazel-bin/bench/engine/engine_recovery_benchmark \
//       --benchmark_filter=BM_RecoverJournal
// The journals are written once per run under $TEST_TMPDIR or /tmp (about 2 GB each for 10 M
// transactions, 20 GB for 100 M), replacing the previous run's. 10^8 ids need a table of 2^27
// (8 GiB); the snapshot case does not fit this 24 GiB machine at that size (the snapshotter's
// shadow keeps its own copy of every answer, and the snapshot is built in memory).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <filesystem>

#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "engine/engine.h"
#include "engine/journal/records.h"
#include "engine/journal/segment.h"
#include "tools/workload/workload.h"

namespace vouch {
namespace {

namespace fs = std::filesystem;

workload::WorkloadConfig Bank() {
  workload::WorkloadConfig config;
  config.accounts = 10'000;
  config.opening_balance_minor = 100'000'000;  // No verified transfer runs short on replay.
  config.fraud_share = 0;
  config.insufficient_funds_share = 0;
  return config;
}

// Writes n confirmed transactions and their outcomes, outcomes trailing by up to 1,000 as the
// reconciler's do behind the journal's reads of the ring.
std::string WriteJournal(uint64_t n, const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp") / name;
  fs::remove_all(dir);
  auto writer = journal::SegmentWriter::Open({dir.string()}, 0);
  if (!writer.ok()) std::abort();
  workload::WorkloadGenerator generator(Bank());
  const int64_t unix_start_ns = absl::ToUnixNanos(absl::Now()) - static_cast<int64_t>(n) * 3'000;
  std::deque<journal::ConfirmedRecord> undecided;
  char payload[256];
  auto add = [&](journal::RecordType type, uint64_t seq, size_t size) {
    while (!(*writer)->Add(type, seq, payload, size)) {
      if (!(*writer)->Write().ok()) std::abort();
    }
  };
  auto decide = [&] {
    const journal::ConfirmedRecord& c = undecided.front();
    journal::OutcomeRecord outcome;
    outcome.outcome.id = c.txn.id;
    outcome.outcome.seq = c.seq;
    outcome.outcome.source_account = c.txn.source_account;
    outcome.outcome.amount_minor = c.txn.amount_minor;
    outcome.outcome.currency = c.txn.currency;
    outcome.confirmed_unix_ns = c.confirmed_unix_ns;
    outcome.decided_unix_ns = c.confirmed_unix_ns + 50'000;
    add(journal::RecordType::kOutcome, c.seq, journal::EncodeOutcomeRecord(outcome, payload));
    undecided.pop_front();
  };
  for (uint64_t seq = 1; seq <= n; ++seq) {
    journal::ConfirmedRecord c;
    c.seq = seq;
    c.txn = generator.Next();
    c.confirmed_unix_ns = unix_start_ns + static_cast<int64_t>(seq) * 3'000;
    add(journal::RecordType::kConfirmed, seq, journal::EncodeConfirmedRecord(c, payload));
    undecided.push_back(c);
    if (undecided.size() > 1'000) decide();
  }
  while (!undecided.empty()) decide();
  if (!(*writer)->Write().ok() || !(*writer)->Sync().ok()) std::abort();
  return dir.string();
}

uint64_t Transactions() {
  const char* env = std::getenv("VOUCH_RECOVERY_TRANSACTIONS");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 100'000;
}

Options RecoveryOptions(const std::string& dir, uint64_t snapshot_interval_records) {
  Options options;
  options.accounts = workload::Accounts(Bank());
  options.fraud_rules = workload::DemoFraudRules();
  options.durability.ack = AckPolicy::kWritten;
  options.durability.dir = dir;
  options.durability.snapshot_interval_records = snapshot_interval_records;
  // Every transaction is within the retention (the journal's times are recent), so the table
  // must hold them all: recovery refuses to forget one early. 64 bytes each.
  options.idempotency_window = std::max<size_t>(options.idempotency_window, Transactions());
  return options;
}

// The same journal with a snapshot covering all of it but the newest segment: what a running
// server leaves behind with the default snapshot interval.
std::string SnapshottedJournal(uint64_t n) {
  const std::string dir = WriteJournal(n, "vouch-recovery-benchmark-snapshotted");
  auto engine = Engine::Create(RecoveryOptions(dir, 1));
  if (!engine.ok() || !(*engine)->PollSnapshot().ok()) std::abort();
  return dir;
}

void BM_RecoverFromSnapshot(benchmark::State& state) {
  const uint64_t n = Transactions();
  static const std::string dir = SnapshottedJournal(n);
  for (auto _ : state) {
    auto engine = Engine::Create(RecoveryOptions(dir, 0));
    if (!engine.ok() || (*engine)->recovery().outcomes != n ||
        (*engine)->recovery().snapshot_file.empty()) {
      state.SkipWithError("recovery from the snapshot failed");
      break;
    }
    state.counters["tail_records"] = static_cast<double>((*engine)->recovery().records);
    state.counters["recovery_ms"] = (*engine)->recovery().elapsed_ns / 1e6;
  }
  state.counters["transactions"] = static_cast<double>(n);
}
BENCHMARK(BM_RecoverFromSnapshot)->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_RecoverJournal(benchmark::State& state) {
  const uint64_t n = Transactions();
  static const std::string dir = WriteJournal(n, "vouch-recovery-benchmark");
  for (auto _ : state) {
    auto engine = Engine::Create(RecoveryOptions(dir, 0));
    if (!engine.ok() || (*engine)->recovery().outcomes != n) {
      state.SkipWithError("recovery failed");
      break;
    }
    state.counters["records"] = static_cast<double>((*engine)->recovery().records);
    state.counters["recovery_ms"] = (*engine)->recovery().elapsed_ns / 1e6;
  }
  state.counters["transactions"] = static_cast<double>(n);
  state.counters["transactions_per_s"] =
      benchmark::Counter(static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RecoverJournal)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace vouch

BENCHMARK_MAIN();
