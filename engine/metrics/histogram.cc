#include "engine/metrics/histogram.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "absl/strings/str_format.h"

namespace vouch {
namespace {

std::string HumanNs(int64_t ns) {
  // Each unit ends where "%.1f" would round up to "1000.0".
  if (ns < 1'000) return absl::StrFormat("%dns", ns);
  if (ns < 999'950) return absl::StrFormat("%.1fus", ns / 1e3);
  if (ns < 999'950'000) return absl::StrFormat("%.1fms", ns / 1e6);
  return absl::StrFormat("%.2fs", ns / 1e9);
}

}  // namespace

void LatencyHistogram::Reset() {
  // Here rather than in the class body, where the constexpr helpers are not yet complete.
  static_assert(BucketIndex(kMaxTrackableNs) == kBucketCount - 1);
  static_assert(BucketUpperNs(kBucketCount - 1) == kMaxTrackableNs);
  static_assert(BucketIndex(BucketUpperNs(200)) == 200 &&
                BucketIndex(BucketUpperNs(200) + 1) == 201);
  counts_.fill(0);
  count_ = 0;
  sum_ns_ = 0;
  clamped_count_ = 0;
  min_ns_ = std::numeric_limits<int64_t>::max();
  max_ns_ = 0;
}

int64_t LatencyHistogram::Percentile(double percentile) const {
  assert(percentile >= 0 && percentile <= 100);
  if (count_ == 0) return 0;
  // The rank of the value asked for, 1-based: the smallest value with at least this many
  // values at or below it. A rank within a relative 1e-9 of an integer is that integer, so
  // rounding error (99.9% of 1000 computes as 999.0000000000001) cannot move it up a value.
  const double exact_rank = percentile / 100.0 * static_cast<double>(count_);
  const auto rank = std::clamp<uint64_t>(
      static_cast<uint64_t>(std::ceil(exact_rank * (1.0 - 1e-9))), 1, count_);
  uint64_t seen = 0;
  for (int index = 0; index < kBucketCount; ++index) {
    seen += counts_[index];
    if (seen >= rank) return std::clamp(BucketUpperNs(index), min_ns_, max_ns_);
  }
  return max_ns_;
}

double LatencyHistogram::mean_ns() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ns_) / static_cast<double>(count_);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int index = 0; index < kBucketCount; ++index) counts_[index] += other.counts_[index];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  clamped_count_ += other.clamped_count_;
  min_ns_ = std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

std::string LatencyHistogram::Summary() const {
  return absl::StrFormat("n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s", count_,
                         HumanNs(Percentile(50)), HumanNs(Percentile(90)),
                         HumanNs(Percentile(99)), HumanNs(Percentile(99.9)), HumanNs(max_ns()));
}

}  // namespace vouch
