// Submit with N remembered ids: the engine (async, ack memory, stage threads running, the real
// clock, the default 24 h retention) first confirms N transactions, so that its idempotency
// table remembers N ids, all within the retention. Then, with the table still holding them:
//  - the confirm latency of new transactions (one Submit each, timed one by one): p50, p99,
//    p99.9, max;
//  - every one of a sample of the N ids (the first one, the last one, and random ones in
//    between) resubmitted: each must come back as a duplicate of its original seq (a retry that
//    arrives after up to N other transactions);
//  - resident memory (VmRSS) before the engine, after creating it, and after the N ids, and the
//    table's own 64 bytes per id.
// The table is sized to N plus the probes (rounded up to a power of two), as an operator would
// size it for rate x retention.
//
//   VOUCH_IDEMPOTENCY_IDS=100000000 bazel run -c opt //bench/engine/ingest:idempotency_retention_benchmark
//
// N defaults to 65,536, so that the suite's run (the _runs test) stays tiny. Not a Google
// Benchmark (per-call percentiles need the calls timed one by one); it ignores --benchmark_*.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"

namespace vouch {
namespace {

constexpr uint64_t kAccounts = 10'000;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

// VmRSS in bytes.
uint64_t RssBytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      uint64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    std::getline(status, key);
  }
  return 0;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

Transaction Txn(uint64_t id) {
  Transaction txn;
  txn.id = id;
  txn.source_account = 1 + id % kAccounts;
  txn.destination_account = 1 + (id + 1) % kAccounts;
  txn.amount_minor = 100 + static_cast<int64_t>(id % 1000);
  txn.currency = PackCurrency("USD");
  txn.country = PackCountry("GB");
  txn.merchant_id = 1;
  txn.merchant_category = 5411;
  return txn;
}

void Drain(Engine& engine) {
  Outcome batch[256];
  while (engine.PollOutcomes(batch, 256) > 0) {}
}

// Submits until not BUSY (a full ring: the verifiers catch up); the answer.
Confirmation SubmitRetrying(Engine& engine, const Transaction& txn) {
  for (;;) {
    const Confirmation c = engine.Submit(txn);
    if (c.status != ConfirmStatus::kBusy) return c;
    if (c.reason == Reason::kIdempotencyRetention) {
      std::fprintf(stderr, "BUSY idempotency_retention at id %llu: the table is too small\n",
                   static_cast<unsigned long long>(txn.id));
      std::abort();
    }
    Drain(engine);
    std::this_thread::yield();
  }
}

int Run() {
  const uint64_t ids = std::max<uint64_t>(EnvOr("VOUCH_IDEMPOTENCY_IDS", 1 << 16), 1);
  const uint64_t probes = std::max<uint64_t>(EnvOr("VOUCH_IDEMPOTENCY_PROBES", 100'000), 1);
  const uint64_t duplicates = std::min<uint64_t>(ids, 10'000);
  const uint64_t rss_start = RssBytes();

  Options options;
  options.in_flight_capacity = 1 << 16;
  options.idempotency_window = std::bit_ceil(ids + probes + options.in_flight_capacity);
  options.history_capacity = 1 << 16;
  options.ledger_account_capacity = kAccounts;
  options.fraud_rules.velocity_enabled = false;
  options.fraud_rules.anomaly_enabled = false;
  for (uint64_t id = 1; id <= kAccounts; ++id) {
    options.accounts.push_back({id, PackCurrency("USD"), int64_t{1} << 40, 0});
  }
  const size_t table_ids = options.idempotency_window;
  auto created = Engine::Create(options);
  if (!created.ok() || !(*created)->Start().ok()) {
    std::fprintf(stderr, "engine: %s\n", created.status().ToString().c_str());
    return 1;
  }
  Engine& engine = **created;
  const uint64_t rss_created = RssBytes();

  std::mt19937_64 rng(42);
  std::vector<uint64_t> sample;  // Ids whose seq is kept for the duplicate check.
  sample.push_back(1);
  sample.push_back(ids);
  while (sample.size() < duplicates) sample.push_back(1 + rng() % ids);
  std::sort(sample.begin(), sample.end());
  sample.erase(std::unique(sample.begin(), sample.end()), sample.end());
  std::vector<Sequence> sample_seq(sample.size());

  const auto fill_start = std::chrono::steady_clock::now();
  size_t next_sample = 0;
  for (uint64_t id = 1; id <= ids; ++id) {
    const Confirmation c = SubmitRetrying(engine, Txn(id));
    while (next_sample < sample.size() && sample[next_sample] == id) {
      sample_seq[next_sample++] = c.seq;
    }
    if ((id & 1023) == 0) Drain(engine);
  }
  const double fill_s = Seconds(std::chrono::steady_clock::now() - fill_start);
  const uint64_t rss_filled = RssBytes();

  // New transactions, each timed, with N ids remembered.
  std::vector<int64_t> latency_ns;
  latency_ns.reserve(probes);
  uint64_t busy = 0;
  for (uint64_t i = 1; i <= probes; ++i) {
    const Transaction txn = Txn(ids + i);
    for (;;) {
      const auto start = std::chrono::steady_clock::now();
      const Confirmation c = engine.Submit(txn);
      const auto end = std::chrono::steady_clock::now();
      if (c.status != ConfirmStatus::kBusy) {
        latency_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
        break;
      }
      ++busy;
      Drain(engine);
      std::this_thread::yield();
    }
    if ((i & 1023) == 0) Drain(engine);
  }
  std::sort(latency_ns.begin(), latency_ns.end());
  auto pct = [&](double p) {
    return latency_ns[std::min(latency_ns.size() - 1, static_cast<size_t>(p * latency_ns.size()))];
  };

  // Retries of remembered ids: each a duplicate of its original.
  uint64_t not_duplicate = 0;
  for (size_t i = 0; i < sample.size(); ++i) {
    const Confirmation c = SubmitRetrying(engine, Txn(sample[i]));
    if (!c.duplicate || c.seq != sample_seq[i]) ++not_duplicate;
  }
  const EngineStats stats = engine.Stats();
  std::printf(
      "remembered ids %llu (table %zu ids, %.2f GiB at 64 B/id), filled in %.1f s (%.2f M/s)\n"
      "confirm latency of %zu new Submits with them remembered: p50 %lld ns, p99 %lld ns, "
      "p99.9 %lld ns, max %lld ns (BUSY retried %llu)\n"
      "retries of %zu remembered ids (the first, after %llu other transactions; the last; random "
      "ones): %llu not duplicates\n"
      "RSS: %.2f GiB at start, %.2f GiB after Create (the table is allocated and written then), "
      "%.2f GiB with the ids (%.1f B per table slot from start, all engine memory)\n"
      "current retention (age of the oldest remembered id): %.1f s\n",
      static_cast<unsigned long long>(ids), table_ids, table_ids * 64.0 / (1 << 30), fill_s,
      ids / fill_s / 1e6, latency_ns.size(), static_cast<long long>(pct(0.5)),
      static_cast<long long>(pct(0.99)), static_cast<long long>(pct(0.999)),
      static_cast<long long>(latency_ns.back()), static_cast<unsigned long long>(busy),
      sample.size(), static_cast<unsigned long long>(ids + probes - 1),
      static_cast<unsigned long long>(not_duplicate), rss_start / double(1 << 30),
      rss_created / double(1 << 30), rss_filled / double(1 << 30),
      double(rss_filled - rss_start) / double(table_ids), stats.idempotency_retention_ns / 1e9);
  (void)engine.Stop();  // A benchmark's end: what it measured is done.
  return not_duplicate == 0 ? 0 : 1;
}

}  // namespace
}  // namespace vouch

int main() { return vouch::Run(); }
