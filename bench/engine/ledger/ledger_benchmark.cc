// Ledger hot path: Reserve followed by Commit (a verified transfer) or Void (a reversal).
//
// The argument is the settlement lag: each iteration reserves a new sequence number and settles
// the one reserved `lag` iterations earlier, so `lag` reservations stay open in the pending table
// as they do while reconciliation waits for the fraud verdict. Lag 0 settles at once.
//
// Then SaveState and RestoreState of a ledger of 100,000 and 1,000,000 accounts with 4,096
// reservations open.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/types/transaction.h"
#include "engine/ledger/ledger.h"

namespace vouch::ledger {
namespace {

constexpr size_t kAccounts = 100'000;
constexpr size_t kTransfers = 1 << 16;  // Pre-generated so the loop measures only the ledger.
// Large enough that no transfer is refused whatever order the money moves in.
constexpr int64_t kOpeningBalanceMinor = int64_t{1} << 40;

enum class Settle { kCommit, kVoid };

std::vector<Transaction> MakeTransfers(CurrencyCode currency) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> account(1, kAccounts);
  std::uniform_int_distribution<int64_t> amount_minor(1, 100'000);
  std::vector<Transaction> transfers(kTransfers);
  for (Transaction& txn : transfers) {
    txn.source_account = account(rng);
    txn.destination_account = account(rng);
    txn.amount_minor = amount_minor(rng);
    txn.currency = currency;
  }
  return transfers;
}

void BM_Reserve(benchmark::State& state, Settle settle) {
  const auto lag = static_cast<Sequence>(state.range(0));
  const CurrencyCode usd = PackCurrency("USD");
  Ledger ledger(kAccounts, /*pending_capacity=*/lag + 1);
  for (uint64_t id = 1; id <= kAccounts; ++id) {
    if (!ledger.OpenAccount({.id = id, .currency = usd, .balance_minor = kOpeningBalanceMinor})
             .ok()) {
      state.SkipWithError("OpenAccount failed");
      return;
    }
  }
  const std::vector<Transaction> transfers = MakeTransfers(usd);

  Sequence seq = 0;
  for (auto _ : state) {
    ++seq;
    if (ledger.Reserve(seq, transfers[seq & (kTransfers - 1)]) != Reason::kNone) {
      state.SkipWithError("Reserve refused a transfer");
      break;
    }
    if (seq > lag) {
      if (settle == Settle::kCommit) {
        ledger.Commit(seq - lag);
      } else {
        ledger.Void(seq - lag);
      }
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["pending"] = static_cast<double>(ledger.pending_count());
}

BENCHMARK_CAPTURE(BM_Reserve, commit, Settle::kCommit)->Arg(0)->Arg(64)->Arg(4096);
BENCHMARK_CAPTURE(BM_Reserve, void, Settle::kVoid)->Arg(0)->Arg(64)->Arg(4096);

constexpr size_t kSnapshotPending = 4'096;

// `accounts` accounts, and kSnapshotPending transfers reserved between them and left open.
std::unique_ptr<Ledger> LedgerWith(size_t accounts) {
  const CurrencyCode usd = PackCurrency("USD");
  auto ledger = std::make_unique<Ledger>(accounts, 2 * kSnapshotPending);
  for (uint64_t id = 1; id <= accounts; ++id) {
    if (!ledger->OpenAccount({.id = id, .currency = usd, .balance_minor = kOpeningBalanceMinor})
             .ok()) {
      return nullptr;
    }
  }
  std::mt19937_64 rng(7);
  for (Sequence seq = 1; seq <= kSnapshotPending; ++seq) {
    Transaction txn;
    txn.source_account = 1 + rng() % accounts;
    txn.destination_account = 1 + rng() % accounts;
    txn.amount_minor = 1 + static_cast<int64_t>(rng() % 100'000);
    txn.currency = usd;
    if (ledger->Reserve(seq, txn) != Reason::kNone) return nullptr;
  }
  return ledger;
}

void SetSnapshotCounters(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["snapshot_MiB"] = static_cast<double>(bytes) / (1 << 20);
  state.counters["ns_per_account"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(state.range(0)),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_SaveState(benchmark::State& state) {
  const std::unique_ptr<Ledger> ledger = LedgerWith(state.range(0));
  if (ledger == nullptr) {
    state.SkipWithError("building the ledger failed");
    return;
  }
  std::string bytes;
  for (auto _ : state) {
    if (!ledger->SaveState(&bytes).ok()) state.SkipWithError("SaveState failed");
  }
  SetSnapshotCounters(state, bytes.size());
}
BENCHMARK(BM_SaveState)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_RestoreState(benchmark::State& state) {
  std::string bytes;
  const std::unique_ptr<Ledger> saved = LedgerWith(state.range(0));
  if (saved == nullptr || !saved->SaveState(&bytes).ok()) {
    state.SkipWithError("building the snapshot failed");
    return;
  }
  Ledger ledger(state.range(0), 2 * kSnapshotPending);
  for (auto _ : state) {
    if (!ledger.RestoreState(bytes).ok()) state.SkipWithError("RestoreState failed");
  }
  SetSnapshotCounters(state, bytes.size());
}
BENCHMARK(BM_RestoreState)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vouch::ledger
