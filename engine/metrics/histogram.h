// LatencyHistogram: a log-linear histogram of nanosecond latencies in fixed memory, in the
// manner of HdrHistogram.
//
// Buckets: every value below 128 ns has its own bucket. Above that, each power of two
// [2^m, 2^(m+1)) is split into 64 equal buckets, so a bucket is at most 1/64 of its lower bound
// wide and any reported value is within 1.6% of a recorded one. Values 0..kMaxTrackableNs
// (2^42 - 1 ns, about 73 minutes) are tracked; a value outside that range is recorded as the
// nearest bound and counted in clamped_count(), never dropped silently.
//
// Thread safety: not thread-safe. One thread records. Another thread may read or Merge() from a
// histogram only after a handoff that orders the writes before its reads (a mutex, a queue, a
// join); the usual pattern is that the writer hands off a copy, or Merge()s into one.
//
// Memory: about 19 KB, all inside the object. Nothing allocates except Summary(), which is for
// reporting, not for the hot path.
#ifndef VOUCH_ENGINE_METRICS_HISTOGRAM_H_
#define VOUCH_ENGINE_METRICS_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <string>

namespace vouch {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 6;
  static constexpr int kSubBucketCount = 1 << kSubBucketBits;  // Buckets per power of two.
  static constexpr int kMaxValueBits = 42;
  static constexpr int64_t kMaxTrackableNs = (int64_t{1} << kMaxValueBits) - 1;
  // Powers of two below 2^(kSubBucketBits+1) share the first 2 * kSubBucketCount exact
  // buckets; every power of two above gets kSubBucketCount more.
  static constexpr int kBucketCount = (kMaxValueBits - kSubBucketBits + 1) * kSubBucketCount;

  LatencyHistogram() { Reset(); }

  // Hot path: a few instructions and no allocation; the range check is the only branch, and
  // it is predicted (values are in range).
  void Record(int64_t value_ns) {
    if (value_ns < 0 || value_ns > kMaxTrackableNs) [[unlikely]] {
      value_ns = value_ns < 0 ? 0 : kMaxTrackableNs;
      ++clamped_count_;
    }
    ++counts_[BucketIndex(value_ns)];
    ++count_;
    sum_ns_ += static_cast<uint64_t>(value_ns);
    min_ns_ = value_ns < min_ns_ ? value_ns : min_ns_;
    max_ns_ = value_ns > max_ns_ ? value_ns : max_ns_;
  }

  // The value below or at which `percentile` percent of the recorded values lie, reported as
  // the upper bound of its bucket, clamped to [min_ns(), max_ns()]. So Percentile(100) is
  // max_ns() exactly. 0 when empty.
  // REQUIRES: 0 <= percentile <= 100.
  int64_t Percentile(double percentile) const;

  uint64_t count() const { return count_; }
  // Exact (after clamping into range); 0 when empty.
  int64_t min_ns() const { return count_ == 0 ? 0 : min_ns_; }
  int64_t max_ns() const { return max_ns_; }
  // Exact arithmetic mean; 0 when empty. The sum cannot overflow before 2^64 ns (584 years) of
  // recorded latency in total.
  double mean_ns() const;
  // Values recorded outside 0..kMaxTrackableNs.
  uint64_t clamped_count() const { return clamped_count_; }

  // Adds every value recorded in `other`, as if recorded here.
  void Merge(const LatencyHistogram& other);
  void Reset();

  // "n=1000 p50=1.2us p90=3.4us p99=12.0us p99.9=48.1us max=1.1ms"; for reports, allocates.
  std::string Summary() const;

 private:
  // Values below 2^(kSubBucketBits+1) map to themselves. Above, the value is shifted right
  // until it has kSubBucketBits+1 significant bits (the leading one and 64 sub-buckets), and
  // each shift step moves up one block of kSubBucketCount buckets.
  static constexpr int BucketIndex(int64_t value_ns) {
    const auto v = static_cast<uint64_t>(value_ns);
    const int shift = std::max(0, static_cast<int>(std::bit_width(v)) - (kSubBucketBits + 1));
    return shift * kSubBucketCount + static_cast<int>(v >> shift);
  }
  // The largest value that maps to bucket `index`.
  static constexpr int64_t BucketUpperNs(int index) {
    const int shift = std::max(0, index / kSubBucketCount - 1);
    const int64_t sub_bucket = index - shift * kSubBucketCount;
    return ((sub_bucket + 1) << shift) - 1;
  }

  std::array<uint64_t, kBucketCount> counts_;
  uint64_t count_;
  uint64_t sum_ns_;
  uint64_t clamped_count_;
  int64_t min_ns_;  // std::numeric_limits<int64_t>::max() when empty.
  int64_t max_ns_;  // 0 when empty.
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_METRICS_HISTOGRAM_H_
