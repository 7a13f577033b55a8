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

using latency_buckets::BucketIndex;
using latency_buckets::BucketUpperNs;

LatencyHistogram& LatencyHistogram::operator=(const LatencyHistogram& other) {
  if (this == &other) return *this;
  for (int index = 0; index < kBucketCount; ++index) Set(counts_[index], Get(other.counts_[index]));
  for (int bound = 0; bound < kExportBoundCount; ++bound) {
    Set(at_or_below_bound_in_bucket_[bound], Get(other.at_or_below_bound_in_bucket_[bound]));
  }
  Set(count_, Get(other.count_));
  Set(sum_ns_, Get(other.sum_ns_));
  Set(clamped_count_, Get(other.clamped_count_));
  Set(min_ns_, Get(other.min_ns_));
  Set(max_ns_, Get(other.max_ns_));
  return *this;
}

void LatencyHistogram::Reset() {
  static_assert(BucketIndex(kMaxTrackableNs) == kBucketCount - 1);
  static_assert(BucketUpperNs(kBucketCount - 1) == kMaxTrackableNs);
  static_assert(BucketIndex(BucketUpperNs(200)) == 200 &&
                BucketIndex(BucketUpperNs(200) + 1) == 201);
  for (std::atomic<uint64_t>& counter : counts_) Set(counter, uint64_t{0});
  for (std::atomic<uint64_t>& counter : at_or_below_bound_in_bucket_) Set(counter, uint64_t{0});
  Set(count_, uint64_t{0});
  Set(sum_ns_, uint64_t{0});
  Set(clamped_count_, uint64_t{0});
  Set(min_ns_, std::numeric_limits<int64_t>::max());
  Set(max_ns_, int64_t{0});
}

int64_t LatencyHistogram::Percentile(double percentile) const {
  assert(percentile >= 0 && percentile <= 100);
  const uint64_t count = Get(count_);
  if (count == 0) return 0;
  // The rank of the value asked for, 1-based: the smallest value with at least this many
  // values at or below it. A rank within a relative 1e-9 of an integer is that integer, so
  // rounding error (99.9% of 1000 computes as 999.0000000000001) cannot move it up a value.
  const double exact_rank = percentile / 100.0 * static_cast<double>(count);
  const auto rank =
      std::clamp<uint64_t>(static_cast<uint64_t>(std::ceil(exact_rank * (1.0 - 1e-9))), 1, count);
  const int64_t min_ns = Get(min_ns_), max_ns = Get(max_ns_);
  uint64_t seen = 0;
  for (int index = 0; index < kBucketCount; ++index) {
    seen += Get(counts_[index]);
    if (seen >= rank) return std::clamp(BucketUpperNs(index), min_ns, max_ns);
  }
  return max_ns;
}

double LatencyHistogram::mean_ns() const {
  const uint64_t count = Get(count_);
  return count == 0 ? 0.0 : static_cast<double>(Get(sum_ns_)) / static_cast<double>(count);
}

LatencyHistogram::ExportCounts LatencyHistogram::ReadExportCounts() const {
  ExportCounts out;
  uint64_t below_bucket = 0;  // The values in the buckets before `index`, as read.
  for (int index = 0; index < kBucketCount; ++index) {
    const uint64_t in_bucket = Get(counts_[index]);
    const int bound = latency_buckets::kExportBoundOfBucket[index];
    if (bound >= 0) {
      // Read apart from in_bucket, so it may run ahead of it during a write; never count more
      // than the bucket as read, so that the next bound's count is not below this one's.
      out.at_or_below[bound] =
          below_bucket + std::min(in_bucket, Get(at_or_below_bound_in_bucket_[bound]));
    }
    below_bucket += in_bucket;
  }
  out.count = below_bucket;
  out.sum_ns = Get(sum_ns_);
  return out;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int index = 0; index < kBucketCount; ++index) Add(counts_[index], Get(other.counts_[index]));
  for (int bound = 0; bound < kExportBoundCount; ++bound) {
    Add(at_or_below_bound_in_bucket_[bound], Get(other.at_or_below_bound_in_bucket_[bound]));
  }
  Add(count_, Get(other.count_));
  Add(sum_ns_, Get(other.sum_ns_));
  Add(clamped_count_, Get(other.clamped_count_));
  Set(min_ns_, std::min(Get(min_ns_), Get(other.min_ns_)));
  Set(max_ns_, std::max(Get(max_ns_), Get(other.max_ns_)));
}

std::string LatencyHistogram::Summary() const {
  return absl::StrFormat("n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s", count(),
                         HumanNs(Percentile(50)), HumanNs(Percentile(90)), HumanNs(Percentile(99)),
                         HumanNs(Percentile(99.9)), HumanNs(max_ns()));
}

}  // namespace vouch
