// Accounts at scale, with the stage threads running (ack policy memory, async policy):
//
// BM_CreateAccounts/N: N accounts created through Engine::CreateAccounts in batches of 8192,
// the path the wire's CreateAccounts takes; items/s is accounts created per second (CPU time of
// the calling thread; the wall time is the Time column).
//
// BM_ConfirmAfterHoldsAndExposure/N: first N distinct accounts are each put on hold (a late
// fraud failure: a blocked merchant) and released (Engine::ReleaseHold), and N distinct accounts
// each carry risk exposure (a risk cap is on, so every confirmed transaction adds exposure to
// its source account's record until it is verified). Then Submit is timed on transactions
// cycling over all N accounts. Before issue 13, holds and exposure lived in tables of 65,536
// slots that never freed one: past that many distinct accounts a hold was silently not placed,
// every Submit of an unheld account scanned the whole hold table (1 MiB), and the risk table
// refused (held) every new account. Now both are fields of the account's own record, found in
// O(1): p50/p99 of Submit (counters, ns) must not depend on the holds and exposure, only on N
// through the cache (BM_ConfirmFreshAccounts/N: the same loop on fresh accounts).
//
// Run: bazel run -c opt //bench/engine/accounts:accounts_benchmark (docs/BENCHMARKS.md).
// The accounts_benchmark_runs test runs the N = 1,000 cases once, in the default suite.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/engine.h"

namespace vouch {
namespace {

const CurrencyCode kUsd = PackCurrency("USD");
constexpr uint64_t kMerchant = 1;
constexpr uint64_t kBlockedMerchant = 666;
constexpr uint64_t kSink = 1;  // A configured account every transfer pays into.

std::unique_ptr<Engine> StartEngine(size_t accounts) {
  Options options;
  options.in_flight_capacity = 1 << 16;
  options.idempotency_window = 1 << 22;
  options.history_capacity = 1 << 16;
  options.account_capacity = accounts + 16;
  options.ledger_account_capacity = accounts + 16;
  options.fraud_account_capacity = 1 << 16;
  options.fraud_rules.velocity_enabled = false;
  options.fraud_rules.anomaly_enabled = false;
  options.fraud_rules.blocked_merchants = {kBlockedMerchant};
  options.risk.limits.account_count_max = 1'000;  // On: exposure is tracked per account.
  // Each hold would otherwise scan the in-flight window for the account's other transactions
  // (Reconciler::FailInFlight, sized for rare fraud failures): a million of them in a burst
  // would cost minutes of reconciler time, none of it on the confirm path measured here.
  options.fail_in_flight_on_hold = false;
  // A burst of a million fraud failures must fail on fraud (and hold), not time out.
  options.verification_deadline_ns = 60'000'000'000;
  options.accounts.push_back({kSink, kUsd, 0, 0});
  auto engine = Engine::Create(options);
  if (!engine.ok() || !(*engine)->Start().ok()) std::abort();
  return std::move(*engine);
}

uint64_t AccountId(uint64_t i) { return 1'000 + i; }

void CreateAccounts(Engine& engine, size_t n) {
  std::vector<NewAccount> batch;
  std::vector<CreateResult> results;
  for (size_t first = 0; first < n; first += batch.size()) {
    batch.clear();
    for (size_t i = first; i < std::min(n, first + 8192); ++i) {
      NewAccount a;
      a.id = AccountId(i);
      a.currency = kUsd;
      a.opening_balance_minor = int64_t{1} << 30;
      batch.push_back(a);
    }
    if (!engine.CreateAccounts(batch, &results, absl::Seconds(60)).ok()) std::abort();
    for (CreateResult r : results) {
      if (r != CreateResult::kCreated) std::abort();
    }
  }
}

void Drain(Engine& engine) {
  Outcome batch[256];
  while (engine.PollOutcomes(batch, 256) > 0) {}
}

Transaction Txn(uint64_t id, uint64_t source, uint64_t merchant) {
  Transaction txn;
  txn.id = id;
  txn.source_account = source;
  txn.destination_account = kSink;
  txn.amount_minor = 100;
  txn.currency = kUsd;
  txn.country = PackCountry("GB");
  txn.merchant_id = merchant;
  return txn;
}

Confirmation SubmitRetrying(Engine& engine, const Transaction& txn) {
  for (;;) {
    const Confirmation c = engine.Submit(txn);
    if (c.status != ConfirmStatus::kBusy) return c;
    Drain(engine);
    std::this_thread::yield();
  }
}

// Waits until every transaction submitted so far has its outcome.
void Settle(Engine& engine) {
  while (engine.Stats().unverified() != 0) {
    Drain(engine);
    std::this_thread::yield();
  }
  Drain(engine);
}

void BM_CreateAccounts(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<Engine> engine = StartEngine(n);
    state.ResumeTiming();
    CreateAccounts(*engine, n);
    state.PauseTiming();
    if (engine->account_count() != n + 1) std::abort();
    engine.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
// 10 million: Options::account_capacity at the scale docs/DESIGN.md sizes (memory per account).
BENCHMARK(BM_CreateAccounts)->Arg(1'000)->Arg(1'000'000)->Arg(10'000'000)
    ->Unit(benchmark::kMillisecond)->Iterations(1);

// Times Submit over transactions cycling through the n accounts; p50/p99 as counters.
void TimeConfirms(benchmark::State& state, Engine& engine, size_t n, uint64_t& id) {
  std::vector<int64_t> latencies_ns;
  latencies_ns.reserve(1 << 20);
  uint64_t refused = 0, i = 0;
  for (auto _ : state) {
    const Transaction txn = Txn(++id, AccountId(i++ % n), kMerchant);
    const auto start = std::chrono::steady_clock::now();
    const Confirmation c = engine.Submit(txn);
    const auto end = std::chrono::steady_clock::now();
    if (c.status != ConfirmStatus::kConfirmed) {
      ++refused;  // BUSY (a full ring) or held by the risk cap: not a confirm.
      state.PauseTiming();
      Drain(engine);
      state.ResumeTiming();
      continue;
    }
    if (latencies_ns.size() < latencies_ns.capacity()) {
      latencies_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start)
                                 .count());
    }
    if ((id & 255) == 0) {
      state.PauseTiming();
      Drain(engine);
      state.ResumeTiming();
    }
  }
  std::sort(latencies_ns.begin(), latencies_ns.end());
  auto at = [&](double q) {
    return latencies_ns.empty()
               ? 0.0
               : static_cast<double>(latencies_ns[static_cast<size_t>(q * (latencies_ns.size() - 1))]);
  };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["not_confirmed"] = static_cast<double>(refused);
  state.counters["hold_table_full"] = static_cast<double>(engine.Stats().hold_table_full);
  state.counters["risk_table_full"] = static_cast<double>(engine.Stats().risk_table_full);
}

void BM_ConfirmAfterHoldsAndExposure(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::unique_ptr<Engine> engine = StartEngine(n);
  CreateAccounts(*engine, n);
  uint64_t id = 0;
  // N distinct accounts held (a late fraud failure each), then released.
  for (size_t i = 0; i < n; ++i) (void)SubmitRetrying(*engine, Txn(++id, AccountId(i), kBlockedMerchant));
  Settle(*engine);
  size_t held = engine->Holds().size();
  for (size_t i = 0; i < n; ++i) {
    for (;;) {
      absl::StatusOr<bool> released = engine->ReleaseHold(AccountId(i));
      if (released.ok()) break;
    }
  }
  if (held != n || !engine->Holds().empty()) {
    std::fprintf(stderr, "held %zu of %zu, %zu left on hold\n", held, n, engine->Holds().size());
    std::abort();
  }
  // N distinct accounts with exposure (each confirmed transaction adds to its source's record).
  for (size_t i = 0; i < n; ++i) (void)SubmitRetrying(*engine, Txn(++id, AccountId(i), kMerchant));
  Settle(*engine);

  TimeConfirms(state, *engine, n, id);
  state.counters["held_then_released"] = static_cast<double>(held);
  (void)engine->Stop();  // A benchmark's end: what it measured is done.
}
BENCHMARK(BM_ConfirmAfterHoldsAndExposure)->Arg(1'000)->Arg(1'000'000);

// The same timed loop over N fresh accounts (no holds, no earlier exposure): what touching N
// accounts' records costs by itself (cache misses), to compare with the case above.
void BM_ConfirmFreshAccounts(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::unique_ptr<Engine> engine = StartEngine(n);
  CreateAccounts(*engine, n);
  uint64_t id = 0;
  TimeConfirms(state, *engine, n, id);
  (void)engine->Stop();  // A benchmark's end: what it measured is done.
}
BENCHMARK(BM_ConfirmFreshAccounts)->Arg(1'000)->Arg(1'000'000);

}  // namespace
}  // namespace vouch
