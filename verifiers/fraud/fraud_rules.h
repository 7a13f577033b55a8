// The fraud verifier's configuration: which rules run and their thresholds.
//
// Thread safety: a plain value. FraudChecker copies what it needs at construction and in
// ReplaceRules, so a FraudRules may be built, validated and discarded on any thread.
#ifndef VOUCH_VERIFIERS_FRAUD_FRAUD_RULES_H_
#define VOUCH_VERIFIERS_FRAUD_FRAUD_RULES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "engine/types/transaction.h"

namespace vouch::fraud {

// Each block list holds at most this many entries, so building the sets stays bounded.
inline constexpr size_t kBlockListEntriesMax = size_t{1} << 20;

struct FraudRules {
  // Velocity: per source account, in a sliding window over engine time (now_ns).
  bool velocity_enabled = true;
  int64_t velocity_window_ns = 60'000'000'000;     // 60 s.
  uint32_t velocity_count_max = 20;                // More than this many in the window fails.
  int64_t velocity_amount_max_minor = 10'000'000;  // A window sum above this fails.

  // Amount anomaly: running mean/variance (Welford) of amounts per source account.
  bool anomaly_enabled = true;
  double anomaly_z_max = 6.0;         // A z-score above this fails.
  uint32_t anomaly_min_samples = 20;  // No verdict until this many samples.

  // Block lists. Zero is not a valid entry: it means "none" / "unknown" in a Transaction.
  std::vector<uint64_t> blocked_merchants;
  std::vector<CountryCode> blocked_countries;  // Packed ISO 3166 alpha-2 (PackCountry).
  std::vector<uint64_t> blocked_devices;

  // Impossible travel: the country of a source account changes within this window.
  bool travel_enabled = true;
  int64_t travel_window_ns = 300'000'000'000;  // 5 min.

  // InvalidArgument naming the first bad field. Fields of disabled rules are checked too, so
  // enabling a rule later can never expose a bad value.
  absl::Status Validate() const;
};

}  // namespace vouch::fraud

#endif  // VOUCH_VERIFIERS_FRAUD_FRAUD_RULES_H_
