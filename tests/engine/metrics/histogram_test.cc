#include "engine/metrics/histogram.h"

#include <cstdint>
#include <limits>
#include <string>

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
    const auto v = static_cast<int64_t>(state >> 40);  // Up to 2^24 ns.
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

}  // namespace
}  // namespace vouch
