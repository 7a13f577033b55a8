// The fraud rules as a text file, so operators can change thresholds and block lists and reload
// them without a restart. One `key = value` per line; `#` starts a comment; list values are
// comma-separated. Every key is optional (a missing one keeps FraudRules' default):
//
//   velocity_enabled = true            anomaly_enabled = true        travel_enabled = true
//   velocity_window_ms = 60000         anomaly_z_max = 6.0           travel_window_ms = 300000
//   velocity_count_max = 20            anomaly_min_samples = 20
//   velocity_amount_max_minor = 10000000
//   blocked_merchants = 9900001, 9900002
//   blocked_countries = KP, IR         (ISO 3166 alpha-2)
//   blocked_devices = 123456789
//
// A file with an unknown key, a malformed value or rules that fail FraudRules::Validate() is
// refused with InvalidArgument naming the line (or the rule); nothing is half-applied.
#ifndef VOUCH_VERIFIERS_FRAUD_RULES_FILE_H_
#define VOUCH_VERIFIERS_FRAUD_RULES_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "verifiers/fraud/fraud_rules.h"

namespace vouch::fraud {

absl::StatusOr<FraudRules> ParseFraudRules(absl::string_view text);
absl::StatusOr<FraudRules> LoadFraudRulesFile(const std::string& path);
// The rules in the file format (block lists sorted), so that Parse(Format(r)) == r.
std::string FormatFraudRules(const FraudRules& rules);

}  // namespace vouch::fraud

#endif  // VOUCH_VERIFIERS_FRAUD_RULES_FILE_H_
