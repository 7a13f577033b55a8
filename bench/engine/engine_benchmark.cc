// Submit on the confirm path, with the stage threads running. Ids are unique per iteration, so
// each Submit does the full synchronous work: checks, idempotency claim, hold lookup, ring
// claim and publish, stage wake-up. BUSY answers (a full ring) are retried and counted, so the
// figure is the sustained confirm rate, not the cost of refusing.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <string>

#include "benchmark/benchmark.h"
#include "engine/engine.h"
#include "engine/metrics/histogram.h"
#include "engine/reconcile/reconciler.h"
#include "engine/verify/verifier.h"

namespace vouch {
namespace {

constexpr uint64_t kAccounts = 10'000;

Options BenchOptions(PolicyMode mode) {
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
  return options;
}

std::unique_ptr<Engine> StartEngine(PolicyMode mode) {
  auto engine = Engine::Create(BenchOptions(mode));
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

// An embedder's verifier that does the least a real check does: reads the transaction.
class ReadsTheTransaction final : public Verifier {
 public:
  uint16_t Check(const Transaction& txn, int64_t) override {
    return txn.amount_minor < 0 ? 1 : 0;  // Never: amounts are positive.
  }
};

// Records confirm -> outcome decided on the reconciler thread (its one writer).
class LatencySink final : public OutcomeSink {
 public:
  void OnOutcome(const Outcome& outcome) override {
    latency.Record(outcome.decided_ns - outcome.confirmed_ns);
    if (outcome.kind == OutcomeKind::kLateTimeout) {
      // relaxed: as `decided`.
      timeouts.store(timeouts.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    // relaxed: read after Stop, which joins the reconciler thread.
    decided.store(decided.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  LatencyHistogram latency;
  std::atomic<uint64_t> decided{0};
  std::atomic<uint64_t> timeouts{0};
};

// The whole pipeline with 2 (fraud and ledger), 4 or 8 verifiers, async policy, then a wait for
// every outcome. Rate 0: Submit as fast as the pipeline takes transactions (BUSY is retried), so
// items/s is the pipeline's capacity and the latency is mostly queueing. Rate r: r transactions
// per second, open loop (paced by the clock in bursts of 64, not by answers), so the latency is
// the pipeline's at that load. p50/p99 are confirm -> outcome decided; timeouts count LATE_TIMEOUT outcomes.
void BM_Verifiers(benchmark::State& state) {
  const int verifier_count = static_cast<int>(state.range(0));
  const int64_t rate_per_s = state.range(1);
  for (auto _ : state) {
    LatencySink sink;
    Options options = BenchOptions(PolicyMode::kAsync);
    options.outcome_sink = &sink;
    for (int i = 0; i < verifier_count - kBuiltinVerifierCount; ++i) {
      options.verifiers.push_back({"check_" + std::to_string(i), VerifierPolicy::kRequired,
                                   false, -1, std::make_shared<ReadsTheTransaction>()});
    }
    auto engine = Engine::Create(options);
    if (!engine.ok() || !(*engine)->Start().ok()) std::abort();
    const uint64_t kTransactions = rate_per_s == 0 ? 200'000 : static_cast<uint64_t>(rate_per_s);
    const MonotonicClock& clock = *MonotonicClock::Default();
    const int64_t start_ns = clock.NowNs();
    Transaction txn;
    txn.currency = PackCurrency("USD");
    txn.country = PackCountry("GB");
    txn.merchant_id = 1;
    uint64_t busy = 0;
    for (uint64_t id = 1; id <= kTransactions; ++id) {
      txn.id = id;
      txn.source_account = 1 + id % kAccounts;
      txn.destination_account = 1 + (id + 1) % kAccounts;
      txn.amount_minor = 100 + id % 1000;
      // Paced in bursts of kBurst, sleeping until each burst is due: a spinning submitter would
      // take one of the machine's two cores from the stages.
      constexpr uint64_t kBurst = 64;
      if (rate_per_s > 0 && id % kBurst == 1) {
        const int64_t due_ns = start_ns + static_cast<int64_t>(id) * 1'000'000'000 / rate_per_s;
        const int64_t wait_ns = due_ns - clock.NowNs();
        if (wait_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait_ns));
      }
      while ((*engine)->Submit(txn).status == ConfirmStatus::kBusy) ++busy;
    }
    const DrainReport drained = (*engine)->Stop();
    // From the first Submit to the last outcome: creating the engine is not counted.
    state.SetIterationTime(static_cast<double>(clock.NowNs() - start_ns) / 1e9);
    if (!drained.drained || sink.decided.load(std::memory_order_relaxed) != kTransactions) {
      state.SkipWithError("not every transaction was decided");
    }
    state.counters["p99_us"] = static_cast<double>(sink.latency.Percentile(99)) / 1e3;
    state.counters["p50_us"] = static_cast<double>(sink.latency.Percentile(50)) / 1e3;
    state.counters["busy_retries"] = static_cast<double>(busy);
    state.counters["timeouts"] = static_cast<double>(sink.timeouts.load(std::memory_order_relaxed));
    state.SetItemsProcessed(static_cast<int64_t>(kTransactions));
  }
  state.SetLabel(std::to_string(verifier_count) + " verifiers, " +
                 (rate_per_s == 0 ? std::string("flood") : std::to_string(rate_per_s) + "/s"));
}
BENCHMARK(BM_Verifiers)
    ->ArgsProduct({{2, 4, 8}, {0, 50'000}})
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

}  // namespace
}  // namespace vouch

BENCHMARK_MAIN();
