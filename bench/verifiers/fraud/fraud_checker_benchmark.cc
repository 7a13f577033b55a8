// FraudChecker::Check per rule (every other rule off) and with the whole rule set, over 100,000
// accounts so that per-account state misses the cache the way it does under real load. Then
// SaveState and RestoreState of a checker holding 100,000 and 1,000,000 accounts.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "verifiers/fraud/fraud_checker.h"

namespace vouch::fraud {
namespace {

constexpr uint64_t kAccounts = 100'000;

enum Rule : int { kBlockLists, kVelocity, kAnomaly, kTravel, kAll };

FraudRules RulesFor(int rule) {
  FraudRules rules;
  rules.blocked_merchants = {13, 666, 1001};
  rules.blocked_countries = {PackCountry("KP")};
  rules.blocked_devices = {4242};
  if (rule == kAll) return rules;
  rules.velocity_enabled = rule == kVelocity;
  rules.anomaly_enabled = rule == kAnomaly;
  rules.travel_enabled = rule == kTravel;
  if (rule != kBlockLists) {
    rules.blocked_merchants.clear();
    rules.blocked_countries.clear();
    rules.blocked_devices.clear();
  }
  return rules;
}

std::vector<Transaction> Stream(size_t count) {
  std::mt19937_64 rng(7);
  const CountryCode countries[] = {PackCountry("GB"), PackCountry("FR"), PackCountry("DE")};
  std::vector<Transaction> stream(count);
  for (Transaction& txn : stream) {
    txn.id = rng();
    txn.source_account = 1 + rng() % kAccounts;
    txn.destination_account = 1 + rng() % kAccounts;
    txn.amount_minor = 100 + static_cast<int64_t>(rng() % 5000);
    txn.currency = PackCurrency("USD");
    txn.merchant_id = 100 + rng() % 5000;
    txn.country = countries[rng() % 64 == 0 ? 1 + rng() % 2 : 0];
    txn.device_id = rng() % 100'000;
  }
  return stream;
}

void BM_Check(benchmark::State& state) {
  FraudChecker checker(RulesFor(static_cast<int>(state.range(0))), 2 * kAccounts);
  const std::vector<Transaction> stream = Stream(1 << 16);
  int64_t now_ns = 1'000'000'000;
  size_t i = 0;
  for (auto _ : state) {
    now_ns += 1'000;  // 1 M transactions per second of engine time.
    benchmark::DoNotOptimize(checker.Check(stream[i], now_ns));
    i = (i + 1) & (stream.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  static const char* const kNames[] = {"block_lists", "velocity", "anomaly", "travel", "all"};
  state.SetLabel(kNames[state.range(0)]);
}
BENCHMARK(BM_Check)->DenseRange(kBlockLists, kAll);

// A checker with `accounts` accounts (table twice that, as sized above), each seen three times
// a few seconds apart, so their velocity windows hold several buckets as they do under load.
std::unique_ptr<FraudChecker> CheckerWith(size_t accounts) {
  auto checker = std::make_unique<FraudChecker>(RulesFor(kAll), 2 * accounts);
  std::mt19937_64 rng(11);
  for (int round = 0; round < 3; ++round) {
    const int64_t round_ns = 1'000'000'000 + round * 5'000'000'000;
    for (uint64_t account = 1; account <= accounts; ++account) {
      Transaction txn;
      txn.source_account = account;
      txn.destination_account = 1 + rng() % accounts;
      txn.amount_minor = 100 + static_cast<int64_t>(rng() % 5000);
      txn.country = PackCountry("GB");
      (void)checker->Check(txn, round_ns + static_cast<int64_t>(account));
    }
  }
  return checker;
}

void SetSnapshotCounters(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["snapshot_MiB"] = static_cast<double>(bytes) / (1 << 20);
  state.counters["ns_per_account"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(state.range(0)),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_SaveState(benchmark::State& state) {
  const std::unique_ptr<FraudChecker> checker = CheckerWith(state.range(0));
  std::string bytes;
  for (auto _ : state) {
    if (!checker->SaveState(&bytes).ok()) state.SkipWithError("SaveState failed");
  }
  SetSnapshotCounters(state, bytes.size());
}
BENCHMARK(BM_SaveState)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_RestoreState(benchmark::State& state) {
  std::string bytes;
  if (!CheckerWith(state.range(0))->SaveState(&bytes).ok()) state.SkipWithError("SaveState failed");
  FraudChecker checker(RulesFor(kAll), 2 * state.range(0));
  for (auto _ : state) {
    if (!checker.RestoreState(bytes).ok()) state.SkipWithError("RestoreState failed");
  }
  SetSnapshotCounters(state, bytes.size());
}
BENCHMARK(BM_RestoreState)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vouch::fraud

BENCHMARK_MAIN();
