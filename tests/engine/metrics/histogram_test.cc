#include "engine/metrics/histogram.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vouch {
namespace {

TEST(LatencyHistogramTest, PercentilesOfAUniformDistributionAreWithinBucketPrecision) {
  LatencyHistogram histogram;
  for (int64_t v = 1; v <= 100'000; ++v) histogram.Record(v);
  EXPECT_EQ(histogram.count(), 100'000u);
  EXPECT_NEAR(histogram.Percentile(50), 50'000, 50'000 * 0.02);
  EXPECT_NEAR(histogram.Percentile(99), 99'000, 99'000 * 0.02);
  EXPECT_EQ(histogram.Percentile(100), 100'000) << "max is exact";
  EXPECT_EQ(histogram.min_ns(), 1);
  EXPECT_NEAR(histogram.mean_ns(), 50'000.5, 1e-6);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (int64_t v : {0, 1, 2, 3, 100}) histogram.Record(v);
  EXPECT_EQ(histogram.Percentile(20), 0);
  EXPECT_EQ(histogram.Percentile(60), 2);
  EXPECT_EQ(histogram.Percentile(100), 100);
}

TEST(LatencyHistogramTest, OutOfRangeValuesAreClampedAndCounted) {
  LatencyHistogram histogram;
  histogram.Record(-5);
  histogram.Record(LatencyHistogram::kMaxTrackableNs + 10);
  EXPECT_EQ(histogram.clamped_count(), 2u);
  EXPECT_EQ(histogram.min_ns(), 0);
  EXPECT_EQ(histogram.max_ns(), LatencyHistogram::kMaxTrackableNs);
}

TEST(LatencyHistogramTest, MergeAndReset) {
  LatencyHistogram a, b;
  for (int v = 0; v < 1000; ++v) a.Record(1000 + v);
  for (int v = 0; v < 1000; ++v) b.Record(1'000'000 + v);
  a.Merge(b);
  EXPECT_EQ(a.count(), 2000u);
  EXPECT_EQ(a.max_ns(), 1'000'999);
  EXPECT_EQ(a.min_ns(), 1000);
  EXPECT_LT(a.Percentile(50), 2000);
  EXPECT_GT(a.Percentile(51), 900'000);
  EXPECT_NE(a.Summary().find("p99.9="), std::string::npos);
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.Percentile(50), 0);
}

TEST(LatencyHistogramTest, PercentileRankIsNotPushedUpByFloatingPointError) {
  // 99.9 / 100 * 1000 is 999.0000000000001 in doubles; the rank must still be 999. (999 is the
  // top of its bucket [992, 999], so the bucket bound does not blur the answer.)
  LatencyHistogram histogram;
  for (int64_t v = 1; v <= 1000; ++v) histogram.Record(v);
  EXPECT_EQ(histogram.Percentile(99.9), 999);
  EXPECT_EQ(histogram.Percentile(100), 1000);
}

TEST(LatencyHistogramTest, EmptyHistogramReportsZeros) {
  const LatencyHistogram histogram;
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.Percentile(0), 0);
  EXPECT_EQ(histogram.Percentile(99), 0);
  EXPECT_EQ(histogram.min_ns(), 0);
  EXPECT_EQ(histogram.max_ns(), 0);
  EXPECT_EQ(histogram.mean_ns(), 0.0);
}

TEST(LatencyHistogramTest, ZeroIsARecordedValue) {
  LatencyHistogram histogram;
  histogram.Record(0);
  EXPECT_EQ(histogram.count(), 1u);
  EXPECT_EQ(histogram.Percentile(50), 0);
  EXPECT_EQ(histogram.Percentile(100), 0);
  EXPECT_EQ(histogram.min_ns(), 0);
  EXPECT_EQ(histogram.max_ns(), 0);
}

TEST(LatencyHistogramTest, MaxIsExactNotTheBucketBound) {
  LatencyHistogram histogram;
  histogram.Record(1'000);
  histogram.Record(123'456'789);  // Bucket width here is 2^20 ns.
  EXPECT_EQ(histogram.max_ns(), 123'456'789);
  EXPECT_EQ(histogram.Percentile(100), 123'456'789);
  EXPECT_EQ(histogram.Percentile(99.99), 123'456'789);
}

TEST(LatencyHistogramTest, HugeValuesLandInTheTopBucket) {
  LatencyHistogram histogram;
  histogram.Record(std::numeric_limits<int64_t>::max());
  histogram.Record(LatencyHistogram::kMaxTrackableNs);
  EXPECT_EQ(histogram.clamped_count(), 1u);
  EXPECT_EQ(histogram.Percentile(0), LatencyHistogram::kMaxTrackableNs);
  EXPECT_EQ(histogram.Percentile(100), LatencyHistogram::kMaxTrackableNs);
  EXPECT_EQ(histogram.mean_ns(), static_cast<double>(LatencyHistogram::kMaxTrackableNs));
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  uint64_t state = 12345;
  for (int i = 0; i < 20'000; ++i) {
    state = state * 6364136223846793005u + 1442695040888963407u;  // LCG: deterministic.
    const auto v = static_cast<int64_t>(state >> 40);             // Up to 2^24 ns.
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min_ns(), all.min_ns());
  EXPECT_EQ(a.max_ns(), all.max_ns());
  EXPECT_EQ(a.mean_ns(), all.mean_ns());
  for (double p : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(a.Percentile(p), all.Percentile(p)) << p;
  }
}

TEST(LatencyHistogramTest, MergingAnEmptyHistogramChangesNothing) {
  LatencyHistogram a;
  a.Record(500);
  a.Merge(LatencyHistogram());
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(a.min_ns(), 500);
  EXPECT_EQ(a.max_ns(), 500);
  LatencyHistogram empty;
  empty.Merge(a);
  EXPECT_EQ(empty.min_ns(), 500);
}

TEST(LatencyHistogramTest, RecordingAfterResetStartsAfresh) {
  LatencyHistogram histogram;
  histogram.Record(1'000'000);
  histogram.Record(-1);
  histogram.Reset();
  histogram.Record(42);
  EXPECT_EQ(histogram.count(), 1u);
  EXPECT_EQ(histogram.min_ns(), 42);
  EXPECT_EQ(histogram.max_ns(), 42);
  EXPECT_EQ(histogram.clamped_count(), 0u);
}

TEST(LatencyHistogramTest, SummaryUsesHumanUnits) {
  LatencyHistogram histogram;
  histogram.Record(500);
  EXPECT_EQ(histogram.Summary(), "n=1 p50=500ns p90=500ns p99=500ns p99.9=500ns max=500ns");
  histogram.Reset();
  histogram.Record(1'250);
  histogram.Record(2'500'000'000);
  EXPECT_EQ(histogram.Summary(), "n=2 p50=1.3us p90=2.50s p99=2.50s p99.9=2.50s max=2.50s");
  histogram.Reset();
  histogram.Record(999'960);  // Would print as "1000.0us".
  EXPECT_EQ(histogram.Summary().substr(histogram.Summary().rfind("max=")), "max=1.0ms");
}

TEST(LatencyHistogramTest, RelativeErrorIsBoundedAcrossMagnitudes) {
  for (int64_t v = 1; v < (int64_t{1} << 40); v = v * 3 + 7) {
    LatencyHistogram histogram;
    histogram.Record(1);  // So the clamp to max does not hide the bucket bound.
    histogram.Record(v);
    histogram.Record(int64_t{1} << 41);
    const int64_t reported = histogram.Percentile(66);
    ASSERT_GE(reported, v);
    ASSERT_LE(static_cast<double>(reported - v), v / 64.0 + 1) << v;
  }
}

// ---- Export counts (the Prometheus histograms) ------------------------------------------------

constexpr int kBounds = LatencyHistogram::kExportBoundCount;

// The values recorded at or below each export bound, counted one by one.
LatencyHistogram::ExportCounts CountedByHand(const std::vector<int64_t>& values) {
  LatencyHistogram::ExportCounts counts;
  for (int64_t v : values) {
    const int64_t clamped = std::max<int64_t>(v, 0);
    for (int b = 0; b < kBounds; ++b)
      counts.at_or_below[b] += clamped <= LatencyHistogram::ExportBoundNs(b);
    ++counts.count;
    counts.sum_ns += static_cast<uint64_t>(clamped);
  }
  return counts;
}

void ExpectSameCounts(const LatencyHistogram::ExportCounts& got,
                      const LatencyHistogram::ExportCounts& want) {
  for (int b = 0; b < kBounds; ++b) {
    EXPECT_EQ(got.at_or_below[b], want.at_or_below[b])
        << "le " << LatencyHistogram::ExportBoundNs(b);
  }
  EXPECT_EQ(got.count, want.count);
  EXPECT_EQ(got.sum_ns, want.sum_ns);
}

// Each bound shares its bucket with the value just above it, so the buckets alone cannot tell
// the two apart: the counts must still be exact. Fails on counts taken from whole buckets.
TEST(LatencyHistogramExportTest, CountsAreExactAtEveryBound) {
  std::vector<int64_t> values;
  for (int b = 0; b < kBounds; ++b) {
    const int64_t bound = LatencyHistogram::ExportBoundNs(b);
    ASSERT_EQ(latency_buckets::BucketIndex(bound), latency_buckets::BucketIndex(bound + 1))
        << "the test needs bounds inside buckets";
    for (int64_t v : {bound - 1, bound, bound, bound + 1}) values.push_back(v);
  }
  LatencyHistogram histogram;
  for (int64_t v : values) histogram.Record(v);
  const LatencyHistogram::ExportCounts counts = histogram.ReadExportCounts();
  for (int b = 0; b < kBounds; ++b) EXPECT_EQ(counts.at_or_below[b], 4u * b + 3) << b;
  ExpectSameCounts(counts, CountedByHand(values));
}

// Negative latencies (a clock step) count as 0, in the first bucket, as the engine's histogram
// always did; values past 1 s only in the count.
TEST(LatencyHistogramExportTest, MatchCountingByHandOverAllMagnitudes) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> values = {-5, 0, 3'000'000'000};
  for (int i = 0; i < 20'000; ++i) {
    values.push_back(
        static_cast<int64_t>(std::pow(10.0, std::uniform_real_distribution<>(2, 9.5)(rng))));
  }
  LatencyHistogram histogram;
  for (int64_t v : values) histogram.Record(v);
  ExpectSameCounts(histogram.ReadExportCounts(), CountedByHand(values));

  LatencyHistogram copy = histogram;
  ExpectSameCounts(copy.ReadExportCounts(), CountedByHand(values));
  LatencyHistogram merged;
  merged.Merge(histogram);
  merged.Merge(histogram);
  std::vector<int64_t> twice = values;
  twice.insert(twice.end(), values.begin(), values.end());
  ExpectSameCounts(merged.ReadExportCounts(), CountedByHand(twice));
}

// Method: one thread records a stream of latencies while another reads the export counts as
// fast as it can. Every read must be a valid Prometheus histogram (counts never decrease from
// bound to bound, none above the total) and no count may go down from one read to the next.
// The writer's stream is bounded (200,000 values), so the test ends by itself; run it under
// TSAN to check that reading while recording is free of data races.
TEST(LatencyHistogramExportTest, ReadingWhileRecordingGivesConsistentGrowingCounts) {
  LatencyHistogram histogram;
  std::atomic<bool> done{false};  // release/acquire: the final read sees every value.
  std::thread writer([&] {
    for (int64_t i = 0; i < 200'000; ++i) histogram.Record((i * 7919) % 2'000'000);
    done.store(true, std::memory_order_release);
  });
  LatencyHistogram::ExportCounts last;
  int reads = 0;
  for (bool finished = false; !finished; ++reads) {
    finished = done.load(std::memory_order_acquire);
    const LatencyHistogram::ExportCounts now = histogram.ReadExportCounts();
    for (int b = 0; b < kBounds; ++b) {
      ASSERT_GE(now.at_or_below[b], last.at_or_below[b]) << "read " << reads;
      ASSERT_LE(now.at_or_below[b], b + 1 < kBounds ? now.at_or_below[b + 1] : now.count);
    }
    ASSERT_GE(now.count, last.count);
    last = now;
  }
  writer.join();
  EXPECT_EQ(last.count, 200'000u);
}

}  // namespace
}  // namespace vouch
