#include "verifiers/fraud/fraud_verifier.h"

#include <cassert>
#include <string>

#include "absl/status/statusor.h"
#include "verifiers/fraud/rules_file.h"

namespace vouch::fraud {

absl::Status FraudVerifier::ValidateRules(absl::string_view text) const {
  absl::StatusOr<FraudRules> rules = ParseFraudRules(text);
  if (!rules.ok()) return rules.status();
  return rules->Validate();
}

void FraudVerifier::ApplyRules(absl::string_view text) {
  absl::StatusOr<FraudRules> rules = ParseFraudRules(text);
  assert(rules.ok() && "REQUIRES: ValidateRules(text) is OK");
  if (rules.ok()) checker_.ReplaceRules(*rules);
}

}  // namespace vouch::fraud
