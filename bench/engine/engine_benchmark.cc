// Submit on the confirm path, with the stage threads running. Ids are unique per iteration, so
// each Submit does the full synchronous work: checks, idempotency claim, hold lookup, ring
// claim and publish, stage wake-up. BUSY answers (a full ring) are retried and counted, so the
// figure is the sustained confirm rate, not the cost of refusing.
#include <atomic>

#include "benchmark/benchmark.h"
#include "engine/engine.h"

namespace vouch {
namespace {

constexpr uint64_t kAccounts = 10'000;

std::unique_ptr<Engine> StartEngine(PolicyMode mode) {
  Options options;
  options.in_flight_capacity = 1 << 16;
  options.idempotency_window = 1 << 22;
  // Millions of iterations within seconds: with a retention in time the table would refuse new
  // ids (BUSY idempotency_retention) past 2^22. The plain window measures the confirm path;
  // bench/engine/ingest measures the table at a given number of remembered ids.
  options.idempotency_retention_ns = 0;
  options.history_capacity = 1 << 16;
  options.ledger_account_capacity = kAccounts;
  options.fraud_rules.velocity_enabled = false;
  options.fraud_rules.anomaly_enabled = false;
  options.policy.mode = mode;
  for (uint64_t id = 1; id <= kAccounts; ++id) {
    options.accounts.push_back({id, PackCurrency("USD"), int64_t{1} << 40, 0});
  }
  auto engine = Engine::Create(options);
  if (!engine.ok() || !(*engine)->Start().ok()) std::abort();
  return std::move(*engine);
}

void DrainOutcomes(Engine& engine) {
  Outcome batch[256];
  while (engine.PollOutcomes(batch, 256) > 0) {}
}

void BM_Submit(benchmark::State& state) {
  const auto mode = static_cast<PolicyMode>(state.range(0));
  std::unique_ptr<Engine> engine = StartEngine(mode);
  Transaction txn;
  txn.currency = PackCurrency("USD");
  txn.country = PackCountry("GB");
  txn.merchant_id = 1;
  uint64_t id = 0, busy = 0;
  for (auto _ : state) {
    ++id;
    txn.id = id;
    txn.source_account = 1 + id % kAccounts;
    txn.destination_account = 1 + (id + 1) % kAccounts;
    txn.amount_minor = 100 + id % 1000;
    for (;;) {
      const Confirmation c = engine->Submit(txn);
      if (c.status != ConfirmStatus::kBusy) break;
      ++busy;
      state.PauseTiming();
      DrainOutcomes(*engine);
      state.ResumeTiming();
    }
    if ((id & 255) == 0) {
      state.PauseTiming();
      DrainOutcomes(*engine);
      state.ResumeTiming();
    }
  }
  state.counters["busy_retries"] = static_cast<double>(busy);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(PolicyModeName(mode)));
  (void)engine->Stop();
  DrainOutcomes(*engine);
}
BENCHMARK(BM_Submit)
    ->Arg(static_cast<int>(PolicyMode::kAsync))
    ->Arg(static_cast<int>(PolicyMode::kSync))
    ->UseRealTime();

}  // namespace
}  // namespace vouch

BENCHMARK_MAIN();
