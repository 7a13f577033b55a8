// A per-account sliding-window count and amount sum, kept in kVelocityBucketCount sub-buckets.
//
// The engine timeline is cut into buckets `bucket_ns` wide (the caller picks window_ns / 8,
// rounded down). Totals cover the current bucket and the 7 before it, so a transaction
// counts for at least 7/8 of the window and never longer than the window. The error is one
// sided: a burst can be under-counted by the transactions of one bucket (those between 7/8 and
// 8/8 of the window old), but nothing older than the window is ever counted. We prefer a miss
// to a false failure because a fraud failure puts the customer's account on hold.
#ifndef VOUCH_VERIFIERS_FRAUD_INTERNAL_SLIDING_WINDOW_H_
#define VOUCH_VERIFIERS_FRAUD_INTERNAL_SLIDING_WINDOW_H_

#include <array>
#include <cassert>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "engine/common/snapshot_format.h"
#include "verifiers/fraud/internal/state_hasher.h"

namespace vouch::fraud::internal {

inline constexpr int kVelocityBucketCount = 8;
// A power of two, so the slot of a bucket is a mask, not a division.
static_assert((kVelocityBucketCount & (kVelocityBucketCount - 1)) == 0);
// Save marks the used slots in one byte.
static_assert(kVelocityBucketCount <= 8);

class SlidingWindow {
 public:
  struct Totals {
    uint64_t count = 0;
    int64_t amount_minor = 0;  // Saturates at INT64_MAX instead of overflowing.
  };

  // Adds one transaction to bucket `epoch` (engine time / bucket_ns) and returns the totals of
  // the window ending there, this transaction included.
  // REQUIRES: epoch >= 0 and >= every epoch added before (the account clock never goes back).
  Totals Add(int64_t epoch, int64_t amount_minor) {
    assert(epoch >= 0);
    const int slot = static_cast<int>(epoch & (kVelocityBucketCount - 1));
    if (epochs_[slot] != epoch) {  // The slot still holds a bucket that has left the window.
      assert(epochs_[slot] < epoch);
      epochs_[slot] = epoch;
      counts_[slot] = 0;
      amounts_minor_[slot] = 0;
    }
    counts_[slot] = counts_[slot] == kCountMax ? kCountMax : counts_[slot] + 1;
    amounts_minor_[slot] = SaturatingAdd(amounts_minor_[slot], amount_minor);
    return TotalsSince(epoch - kVelocityBucketCount + 1);
  }

  // Forgets every transaction (the bucket width changed, so the epochs mean nothing now).
  void Clear() { *this = SlidingWindow{}; }

  // Writes a mask of the used slots, then only those: most accounts are active in a few
  // buckets, and an unused slot is all zeros.
  void Save(verifiers::snapshot::ByteWriter& out) const {
    uint8_t used = 0;
    for (int slot = 0; slot < kVelocityBucketCount; ++slot) {
      if (epochs_[slot] != 0 || counts_[slot] != 0 || amounts_minor_[slot] != 0) {
        used |= uint8_t{1} << slot;
      }
    }
    out.Put(used);
    for (int slot = 0; slot < kVelocityBucketCount; ++slot) {
      if ((used >> slot & 1) == 0) continue;
      out.Put(epochs_[slot]);
      out.Put(counts_[slot]);
      out.Put(amounts_minor_[slot]);
    }
  }

  // Replaces this window with one written by Save. InvalidArgument when the saved window breaks
  // what Add relies on; `epoch_max` is the epoch of the account's clock, which no bucket can be
  // ahead of. The caller checks `in.ok()` first: after a short read the values are zeros.
  absl::Status Restore(verifiers::snapshot::ByteReader& in, int64_t epoch_max) {
    *this = SlidingWindow{};
    const auto used = in.Get<uint8_t>();
    for (int slot = 0; slot < kVelocityBucketCount; ++slot) {
      if ((used >> slot & 1) == 0) continue;
      epochs_[slot] = in.Get<int64_t>();
      counts_[slot] = in.Get<uint32_t>();
      amounts_minor_[slot] = in.Get<int64_t>();
      if (epochs_[slot] < 0 || epochs_[slot] > epoch_max ||
          (epochs_[slot] & (kVelocityBucketCount - 1)) != slot || amounts_minor_[slot] < 0) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "velocity slot %d holds epoch %d and amount %d (the account clock is at epoch %d)",
            slot, epochs_[slot], amounts_minor_[slot], epoch_max));
      }
    }
    return absl::OkStatus();
  }

  void HashInto(StateHasher& hasher) const {
    for (int slot = 0; slot < kVelocityBucketCount; ++slot) {
      hasher.Add(epochs_[slot]);
      hasher.Add(uint64_t{counts_[slot]});
      hasher.Add(amounts_minor_[slot]);
    }
  }

 private:
  static constexpr uint32_t kCountMax = std::numeric_limits<uint32_t>::max();

  static int64_t SaturatingAdd(int64_t sum, int64_t amount) {
    assert(sum >= 0 && amount >= 0);
    const int64_t room = std::numeric_limits<int64_t>::max() - sum;
    return amount > room ? std::numeric_limits<int64_t>::max() : sum + amount;
  }

  Totals TotalsSince(int64_t epoch_first) const {
    Totals totals;
    for (int slot = 0; slot < kVelocityBucketCount; ++slot) {
      if (epochs_[slot] < epoch_first) continue;
      totals.count += counts_[slot];
      totals.amount_minor = SaturatingAdd(totals.amount_minor, amounts_minor_[slot]);
    }
    return totals;
  }

  // Slot i holds the bucket whose epoch is ≡ i (mod kVelocityBucketCount). Counts of a never
  // used slot are 0, so its epoch of 0 adds nothing to any total.
  std::array<int64_t, kVelocityBucketCount> epochs_{};
  std::array<uint32_t, kVelocityBucketCount> counts_{};
  std::array<int64_t, kVelocityBucketCount> amounts_minor_{};
};

}  // namespace vouch::fraud::internal

#endif  // VOUCH_VERIFIERS_FRAUD_INTERNAL_SLIDING_WINDOW_H_
