#include "verifiers/fraud/fraud_rules.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "verifiers/fraud/internal/sliding_window.h"

namespace vouch::fraud {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view requirement, auto value) {
  return absl::InvalidArgumentError(
      absl::StrCat("FraudRules.", field, " ", requirement, ", got ", value));
}

bool IsLetter(int c) { return c >= 'A' && c <= 'Z'; }

bool IsCountryCode(CountryCode code) { return IsLetter(code >> 8) && IsLetter(code & 0xFF); }

template <typename T>
absl::Status ValidateBlockList(absl::string_view field, const std::vector<T>& entries) {
  if (entries.size() > kBlockListEntriesMax) {
    return Invalid(field, absl::StrFormat("must hold at most %d entries", kBlockListEntriesMax),
                   entries.size());
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i] == 0) {
      // Zero means "none" in a Transaction: blocking it would block every such transaction.
      return Invalid(absl::StrFormat("%s[%d]", field, i), "must not be 0 (it means none)", 0);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateCountries(const std::vector<CountryCode>& countries) {
  if (absl::Status status = ValidateBlockList("blocked_countries", countries); !status.ok()) {
    return status;
  }
  for (size_t i = 0; i < countries.size(); ++i) {
    if (!IsCountryCode(countries[i])) {
      return Invalid(absl::StrFormat("blocked_countries[%d]", i),
                     "must be two packed letters A-Z (PackCountry)", countries[i]);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateVelocity(const FraudRules& rules) {
  // Each sub-bucket must be at least 1 ns wide.
  if (rules.velocity_window_ns < internal::kVelocityBucketCount) {
    return Invalid("velocity_window_ns",
                   absl::StrFormat("must be at least %d", internal::kVelocityBucketCount),
                   rules.velocity_window_ns);
  }
  if (rules.velocity_count_max == 0) {
    return Invalid("velocity_count_max", "must be > 0 (0 would fail every transaction)",
                   rules.velocity_count_max);
  }
  if (rules.velocity_amount_max_minor <= 0) {
    return Invalid("velocity_amount_max_minor", "must be > 0", rules.velocity_amount_max_minor);
  }
  return absl::OkStatus();
}

absl::Status ValidateAnomaly(const FraudRules& rules) {
  // `!(x > 0)` also refuses NaN.
  if (!(rules.anomaly_z_max > 0) || !std::isfinite(rules.anomaly_z_max)) {
    return Invalid("anomaly_z_max", "must be finite and > 0", rules.anomaly_z_max);
  }
  // A sample variance needs at least two samples.
  if (rules.anomaly_min_samples < 2) {
    return Invalid("anomaly_min_samples", "must be at least 2", rules.anomaly_min_samples);
  }
  return absl::OkStatus();
}

absl::Status ValidateTravel(const FraudRules& rules) {
  if (rules.travel_window_ns <= 0) {
    return Invalid("travel_window_ns", "must be > 0", rules.travel_window_ns);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FraudRules::Validate() const {
  for (absl::Status status : {
           ValidateVelocity(*this),
           ValidateAnomaly(*this),
           ValidateBlockList("blocked_merchants", blocked_merchants),
           ValidateCountries(blocked_countries),
           ValidateBlockList("blocked_devices", blocked_devices),
           ValidateTravel(*this),
       }) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace vouch::fraud
