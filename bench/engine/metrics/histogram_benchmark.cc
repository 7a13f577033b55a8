// Cost of LatencyHistogram::Record on the hot path, and of reading percentiles for a report.
//
// BM_RecordSame repeats one value, so each increment of the one counter waits for the last
// (store forwarding). BM_RecordSpread cycles through 4096 latencies spread log-uniformly over
// 100 ns..10 ms, which land in about a thousand buckets, as a live latency stream does.
#include <array>
#include <cmath>
#include <cstdint>

#include "benchmark/benchmark.h"
#include "engine/metrics/histogram.h"

namespace vouch {
namespace {

constexpr int kSpreadCount = 4096;  // Power of two, for the index mask.
static_assert((kSpreadCount & (kSpreadCount - 1)) == 0);

std::array<int64_t, kSpreadCount> SpreadLatencies() {
  std::array<int64_t, kSpreadCount> values;
  uint64_t state = 1;
  for (int64_t& v : values) {
    state = state * 6364136223846793005u + 1442695040888963407u;  // LCG: deterministic.
    const double unit = static_cast<double>(state >> 11) / static_cast<double>(uint64_t{1} << 53);
    v = static_cast<int64_t>(100.0 * std::pow(1e5, unit));  // 100 ns .. 10 ms.
  }
  return values;
}

void BM_RecordSame(benchmark::State& state) {
  LatencyHistogram histogram;
  int64_t value_ns = 1'234;
  for (auto _ : state) {
    benchmark::DoNotOptimize(value_ns);
    histogram.Record(value_ns);
  }
  benchmark::DoNotOptimize(histogram.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordSame);

void BM_RecordSpread(benchmark::State& state) {
  const std::array<int64_t, kSpreadCount> values = SpreadLatencies();
  LatencyHistogram histogram;
  uint32_t i = 0;
  for (auto _ : state) {
    histogram.Record(values[i++ & (kSpreadCount - 1)]);
  }
  benchmark::DoNotOptimize(histogram.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordSpread);

void BM_Percentile99(benchmark::State& state) {
  LatencyHistogram histogram;
  for (int64_t v : SpreadLatencies()) histogram.Record(v);
  for (auto _ : state) benchmark::DoNotOptimize(histogram.Percentile(99));
}
BENCHMARK(BM_Percentile99);

void BM_Merge(benchmark::State& state) {
  LatencyHistogram from, into;
  for (int64_t v : SpreadLatencies()) from.Record(v);
  for (auto _ : state) {
    into.Merge(from);
    benchmark::DoNotOptimize(into.count());
  }
}
BENCHMARK(BM_Merge);

}  // namespace
}  // namespace vouch
