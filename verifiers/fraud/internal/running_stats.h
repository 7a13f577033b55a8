// Welford's online mean and variance of one account's amounts.
//
// One pass, O(1) state, and numerically stable: it never subtracts two large sums of squares,
// so the variance of large, similar amounts does not cancel to garbage.
#ifndef VOUCH_VERIFIERS_FRAUD_INTERNAL_RUNNING_STATS_H_
#define VOUCH_VERIFIERS_FRAUD_INTERNAL_RUNNING_STATS_H_

#include <cassert>
#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "engine/common/snapshot_format.h"
#include "verifiers/fraud/internal/state_hasher.h"

namespace vouch::fraud::internal {

class RunningStats {
 public:
  void Add(double sample) {
    ++samples_;
    const double delta = sample - mean_;
    mean_ += delta / static_cast<double>(samples_);
    m2_ += delta * (sample - mean_);
  }

  uint64_t samples() const { return samples_; }
  double mean() const { return mean_; }

  // Sample (n - 1) standard deviation. REQUIRES: samples() >= 2.
  double SampleStddev() const {
    assert(samples_ >= 2);
    return std::sqrt(m2_ / static_cast<double>(samples_ - 1));
  }

  void Save(verifiers::snapshot::ByteWriter& out) const {
    out.Put(samples_);
    out.PutDouble(mean_);
    out.PutDouble(m2_);
  }

  // Replaces these statistics with ones written by Save. The caller checks `in.ok()` first.
  absl::Status Restore(verifiers::snapshot::ByteReader& in) {
    samples_ = in.Get<uint64_t>();
    mean_ = in.GetDouble();
    m2_ = in.GetDouble();
    // `!(m2_ >= 0)` also refuses NaN; an infinite mean would pass every anomaly check.
    if (!std::isfinite(mean_) || !std::isfinite(m2_) || !(m2_ >= 0)) {
      return absl::InvalidArgumentError("amount statistics are not finite or have m2 < 0");
    }
    return absl::OkStatus();
  }

  void HashInto(StateHasher& hasher) const {
    hasher.Add(samples_);
    hasher.Add(mean_);
    hasher.Add(m2_);
  }

 private:
  uint64_t samples_ = 0;
  double mean_ = 0;
  double m2_ = 0;  // Sum of squared deviations from the running mean.
};

}  // namespace vouch::fraud::internal

#endif  // VOUCH_VERIFIERS_FRAUD_INTERNAL_RUNNING_STATS_H_
