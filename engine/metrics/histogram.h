// LatencyHistogram: a log-linear histogram of nanosecond latencies in fixed memory, in the
// manner of HdrHistogram. The one latency histogram of vouch: the tools' reports and the engine's
// Prometheus histograms (engine/reconcile ReconcileCounters, engine/server/metrics) both use it.
//
// Buckets: every value below 128 ns has its own bucket. Above that, each power of two
// [2^m, 2^(m+1)) is split into 64 equal buckets, so a bucket is at most 1/64 of its lower bound
// wide and any reported value is within 1.6% of a recorded one. Values 0..kMaxTrackableNs
// (2^42 - 1 ns, about 73 minutes) are tracked; a value outside that range is recorded as the
// nearest bound and counted in clamped_count(), never dropped silently.
//
// Export bounds: a Prometheus histogram has fixed `le` bounds (kExportBoundsNs, 10 us to 1 s),
// which do not fall on bucket edges. So that its counts are exact, not within a bucket, the
// histogram also counts, for each export bound, the values at or below it in the bucket that
// holds it; ReadExportCounts() adds them to the buckets below.
//
// Thread safety: one thread records (Record, Merge into, Reset, assignment); any thread may read
// at any time. Every counter is its own std::atomic, written by its one writer with a relaxed
// load and store (no read-modify-write: there is no other writer) and read with relaxed loads:
// the counters are statistics and publish no other data, so no reader needs an order, only an
// untorn value. On x86-64 a relaxed load and store are the plain moves an unsynchronised
// increment compiles to, so recording costs what it did with plain fields. A read while the
// writer records is not one snapshot: it may see some of the values being recorded and not
// others (a count a value ahead of its bucket). Percentile() and Summary() are for a histogram
// that is quiet or handed over (copied, or read after a join); ReadExportCounts() is made for
// reading while recording.
//
// Memory: about 22 KB, all inside the object. Nothing allocates except Summary(), which is for
// reporting, not for the hot path.
#ifndef VOUCH_ENGINE_METRICS_HISTOGRAM_H_
#define VOUCH_ENGINE_METRICS_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>

namespace vouch {

// The bucket layout, before the class so that its constexpr tables can be built from it.
namespace latency_buckets {

inline constexpr int kSubBucketBits = 6;
inline constexpr int kSubBucketCount = 1 << kSubBucketBits;  // Buckets per power of two.
inline constexpr int kMaxValueBits = 42;
inline constexpr int64_t kMaxTrackableNs = (int64_t{1} << kMaxValueBits) - 1;
// Powers of two below 2^(kSubBucketBits+1) share the first 2 * kSubBucketCount exact buckets;
// every power of two above gets kSubBucketCount more.
inline constexpr int kBucketCount = (kMaxValueBits - kSubBucketBits + 1) * kSubBucketCount;

// Values below 2^(kSubBucketBits+1) map to themselves. Above, the value is shifted right until
// it has kSubBucketBits+1 significant bits (the leading one and 64 sub-buckets), and each shift
// step moves up one block of kSubBucketCount buckets.
// REQUIRES: 0 <= value_ns <= kMaxTrackableNs.
constexpr int BucketIndex(int64_t value_ns) {
  const auto v = static_cast<uint64_t>(value_ns);
  const int shift = std::max(0, static_cast<int>(std::bit_width(v)) - (kSubBucketBits + 1));
  return shift * kSubBucketCount + static_cast<int>(v >> shift);
}

// The largest value that maps to bucket `index`.
constexpr int64_t BucketUpperNs(int index) {
  const int shift = std::max(0, index / kSubBucketCount - 1);
  const int64_t sub_bucket = index - shift * kSubBucketCount;
  return ((sub_bucket + 1) << shift) - 1;
}

// The `le` bounds of the engine's Prometheus histograms (inclusive); +Inf follows the last.
inline constexpr int64_t kExportBoundsNs[] = {10'000,      25'000,      50'000,       100'000,
                                              250'000,     500'000,     1'000'000,    2'500'000,
                                              5'000'000,   10'000'000,  25'000'000,   50'000'000,
                                              100'000'000, 250'000'000, 1'000'000'000};
inline constexpr int kExportBoundCount = static_cast<int>(std::size(kExportBoundsNs));
static_assert(kExportBoundCount <= std::numeric_limits<int8_t>::max());

// Strictly increasing bounds in distinct buckets, so that a bucket holds at most one bound.
constexpr bool ExportBoundsAreInDistinctBuckets() {
  for (int bound = 1; bound < kExportBoundCount; ++bound) {
    if (BucketIndex(kExportBoundsNs[bound - 1]) >= BucketIndex(kExportBoundsNs[bound])) {
      return false;
    }
  }
  return kExportBoundsNs[kExportBoundCount - 1] <= kMaxTrackableNs;
}
static_assert(ExportBoundsAreInDistinctBuckets());

// For each bucket, the export bound it holds, or -1: what Record checks to count a value at or
// below that bound. Built at compile time; 2.7 KB, of which a run touches the few lines its
// latencies fall in.
constexpr std::array<int8_t, kBucketCount> ExportBoundOfBucket() {
  std::array<int8_t, kBucketCount> bound_of_bucket{};
  bound_of_bucket.fill(-1);
  for (int bound = 0; bound < kExportBoundCount; ++bound) {
    bound_of_bucket[BucketIndex(kExportBoundsNs[bound])] = static_cast<int8_t>(bound);
  }
  return bound_of_bucket;
}
inline constexpr std::array<int8_t, kBucketCount> kExportBoundOfBucket = ExportBoundOfBucket();

}  // namespace latency_buckets

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = latency_buckets::kSubBucketBits;
  static constexpr int kSubBucketCount = latency_buckets::kSubBucketCount;
  static constexpr int kMaxValueBits = latency_buckets::kMaxValueBits;
  static constexpr int64_t kMaxTrackableNs = latency_buckets::kMaxTrackableNs;
  static constexpr int kBucketCount = latency_buckets::kBucketCount;
  static constexpr int kExportBoundCount = latency_buckets::kExportBoundCount;

  LatencyHistogram() { Reset(); }
  // Copies read `other` with relaxed loads: exact when `other` is quiet.
  LatencyHistogram(const LatencyHistogram& other) { *this = other; }
  LatencyHistogram& operator=(const LatencyHistogram& other);

  // Hot path: a few instructions and no allocation. The range check and the export-bound check
  // are the only branches, and both are predicted (values are in range, and few fall in one of
  // the kExportBoundCount buckets that hold a bound).
  void Record(int64_t value_ns) {
    if (value_ns < 0 || value_ns > kMaxTrackableNs) [[unlikely]] {
      value_ns = value_ns < 0 ? 0 : kMaxTrackableNs;
      Add(clamped_count_, 1);
    }
    const int index = latency_buckets::BucketIndex(value_ns);
    Add(counts_[index], 1);
    const int bound = latency_buckets::kExportBoundOfBucket[index];
    if (bound >= 0 && value_ns <= latency_buckets::kExportBoundsNs[bound]) [[unlikely]] {
      Add(at_or_below_bound_in_bucket_[bound], 1);
    }
    Add(count_, 1);
    Add(sum_ns_, static_cast<uint64_t>(value_ns));
    Set(min_ns_, std::min(value_ns, Get(min_ns_)));
    Set(max_ns_, std::max(value_ns, Get(max_ns_)));
  }

  // The value below or at which `percentile` percent of the recorded values lie, reported as
  // the upper bound of its bucket, clamped to [min_ns(), max_ns()]. So Percentile(100) is
  // max_ns() exactly. 0 when empty.
  // REQUIRES: 0 <= percentile <= 100.
  int64_t Percentile(double percentile) const;

  uint64_t count() const { return Get(count_); }
  // Exact (after clamping into range); 0 when empty.
  int64_t min_ns() const { return count() == 0 ? 0 : Get(min_ns_); }
  int64_t max_ns() const { return Get(max_ns_); }
  // Exact arithmetic mean; 0 when empty. The sum cannot overflow before 2^64 ns (584 years) of
  // recorded latency in total.
  double mean_ns() const;
  uint64_t sum_ns() const { return Get(sum_ns_); }
  // Values recorded outside 0..kMaxTrackableNs.
  uint64_t clamped_count() const { return Get(clamped_count_); }

  // What a histogram with the kExportBoundsNs buckets (Prometheus) shows: for each bound, the
  // values recorded at or below it, exactly (cumulative); then all values and their sum.
  struct ExportCounts {
    uint64_t at_or_below[kExportBoundCount] = {};
    // The sum of the buckets as read, so never below at_or_below[kExportBoundCount - 1].
    uint64_t count = 0;
    uint64_t sum_ns = 0;
  };
  // Safe while the writer records (see Thread safety): then the counts are not one snapshot, but
  // each only grows from one read to the next and they never decrease from bound to bound.
  ExportCounts ReadExportCounts() const;
  // The upper bound of export bucket `bound`, inclusive.
  // REQUIRES: 0 <= bound < kExportBoundCount.
  static constexpr int64_t ExportBoundNs(int bound) {
    return latency_buckets::kExportBoundsNs[bound];
  }

  // Adds every value recorded in `other`, as if recorded here.
  void Merge(const LatencyHistogram& other);
  void Reset();

  // "n=1000 p50=1.2us p90=3.4us p99=12.0us p99.9=48.1us max=1.1ms"; for reports, allocates.
  std::string Summary() const;

 private:
  // relaxed: see Thread safety. Add is a load and a store, not a fetch_add: there is one writer.
  template <typename T>
  static T Get(const std::atomic<T>& counter) {
    return counter.load(std::memory_order_relaxed);
  }
  template <typename T>
  static void Set(std::atomic<T>& counter, T value) {
    counter.store(value, std::memory_order_relaxed);
  }
  static void Add(std::atomic<uint64_t>& counter, uint64_t n) { Set(counter, Get(counter) + n); }

  std::array<std::atomic<uint64_t>, kBucketCount> counts_;
  // [bound]: the values in the bucket holding kExportBoundsNs[bound] that are at or below it.
  std::array<std::atomic<uint64_t>, kExportBoundCount> at_or_below_bound_in_bucket_;
  std::atomic<uint64_t> count_;
  std::atomic<uint64_t> sum_ns_;
  std::atomic<uint64_t> clamped_count_;
  std::atomic<int64_t> min_ns_;  // std::numeric_limits<int64_t>::max() when empty.
  std::atomic<int64_t> max_ns_;  // 0 when empty.
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_METRICS_HISTOGRAM_H_
