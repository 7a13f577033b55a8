#include "engine/metrics/histogram.h"

#include <cstdlib>

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
