#include "engine/options.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vouch {
namespace {

bool IsPowerOfTwo(size_t n) { return n >= 2 && (n & (n - 1)) == 0; }

absl::Status Invalid(std::string_view field, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("option ", std::string(field), ": ", std::string(why)));
}

}  // namespace

absl::StatusOr<PolicyMode> ParsePolicyMode(std::string_view name) {
  if (name == "async") return PolicyMode::kAsync;
  if (name == "hybrid") return PolicyMode::kHybrid;
  if (name == "sync") return PolicyMode::kSync;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown policy mode '", std::string(name), "' (expected async, hybrid or sync)"));
}

std::string_view PolicyModeName(PolicyMode mode) {
  switch (mode) {
    case PolicyMode::kAsync: return "async";
    case PolicyMode::kHybrid: return "hybrid";
    case PolicyMode::kSync: return "sync";
  }
  return "unknown";
}

absl::Status Options::Validate() const {
  const size_t verifier_count = verifiers.size() + (shadow_fraud_rules.has_value() ? 1 : 0);
  if (verifier_count > static_cast<size_t>(kVerifiersMax - kBuiltinVerifierCount)) {
    return Invalid("verifiers", absl::StrCat("at most ", kVerifiersMax - kBuiltinVerifierCount,
                                             " with shadow_fraud_rules (with fraud and ledger, ",
                                             kVerifiersMax, ")"));
  }
  if (shadow_fraud_rules.has_value()) {
    if (absl::Status status = shadow_fraud_rules->Validate(); !status.ok()) {
      return Invalid("shadow_fraud_rules", std::string(status.message()));
    }
  }
  for (size_t i = 0; i < verifiers.size(); ++i) {
    const VerifierSpec& spec = verifiers[i];
    const std::string& name = spec.name;
    const bool name_ok =
        !name.empty() && name.size() <= 32 && name[0] >= 'a' && name[0] <= 'z' &&
        std::all_of(name.begin(), name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        });
    if (!name_ok || name == "fraud" || name == "ledger" || name == "none" ||
        name == "fraud_shadow") {
      return Invalid("verifiers", absl::StrCat("name \"", name, "\" must be 1 to 32 characters of ",
                                               "[a-z0-9_] starting with a letter, and not fraud, ",
                                               "ledger, none or fraud_shadow"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (verifiers[j].name == name) {
        return Invalid("verifiers", absl::StrCat("name \"", name, "\" is used twice"));
      }
    }
    if ((spec.verifier == nullptr) == (spec.async_verifier == nullptr)) {
      return Invalid("verifiers", absl::StrCat("\"", name, "\" needs exactly one of verifier ",
                                               "and async_verifier"));
    }
    if (spec.policy != VerifierPolicy::kRequired && spec.policy != VerifierPolicy::kAdvisory &&
        spec.policy != VerifierPolicy::kShadow) {
      return Invalid("verifiers", absl::StrCat("\"", name, "\" has an unknown policy"));
    }
    if (spec.hold_account_on_failure && spec.policy != VerifierPolicy::kRequired) {
      return Invalid("verifiers", absl::StrCat("\"", name, "\" holds accounts but decides ",
                                               "nothing: hold_account_on_failure needs kRequired"));
    }
  }
  if (!IsPowerOfTwo(in_flight_capacity) || in_flight_capacity > (size_t{1} << 24)) {
    return Invalid("in_flight_capacity", "must be a power of two in [2, 2^24]");
  }
  if (idempotency_window < 1024) return Invalid("idempotency_window", "must be >= 1024");
  if (idempotency_window < in_flight_capacity) {
    return Invalid("idempotency_window", "must be >= in_flight_capacity");
  }
  if (idempotency_retention_ns < 0) {
    return Invalid("idempotency_retention_ns", "must be >= 0");
  }
  if (history_capacity < in_flight_capacity) {
    return Invalid("history_capacity", "must be >= in_flight_capacity");
  }
  if (account_capacity < 1 || account_capacity >= (size_t{1} << 31)) {
    return Invalid("account_capacity", "must be in [1, 2^31)");
  }
  if (account_capacity < accounts.size()) {
    return Invalid("account_capacity", "is smaller than the number of accounts");
  }
  if (outcome_queue_capacity < 64) return Invalid("outcome_queue_capacity", "must be >= 64");
  if (fraud_account_capacity < 1) return Invalid("fraud_account_capacity", "must be >= 1");
  if (ledger_account_capacity < accounts.size()) {
    return Invalid("ledger_account_capacity", "is smaller than the number of accounts");
  }
  if (stage_batch_max < 1 || stage_batch_max > 65536) {
    return Invalid("stage_batch_max", "must be in [1, 65536]");
  }
  if (verification_deadline_ns <= 0) return Invalid("verification_deadline_ns", "must be > 0");
  if (admission_backlog_max_ns < 0) return Invalid("admission_backlog_max_ns", "must be >= 0");
  if (amount_minor_max <= 0) return Invalid("amount_minor_max", "must be > 0");
  if (policy.hold_amount_minor_min <= 0) {
    return Invalid("policy.hold_amount_minor_min", "must be > 0");
  }
  for (int cpu : {cpus.fraud, cpus.ledger, cpus.reconcile}) {
    if (cpu < -1) return Invalid("cpus", "a CPU is -1 (unpinned) or a CPU number");
  }
  if (drain_timeout_ns < 0) return Invalid("drain_timeout_ns", "must be >= 0");
  if (risk.limits.account_minor_max < 0 || risk.limits.total_minor_max < 0) {
    return Invalid("risk.limits", "amount caps must be >= 0 (0: no cap)");
  }
  if (durability.ack == AckPolicy::kMemory && !durability.dir.empty()) {
    // Its journal would be ignored: every id in it applied again, every balance reset.
    return Invalid("durability.dir",
                   "is set but the ack policy is memory, which keeps no journal; use ack "
                   "policy written or durable with a data directory, or no directory");
  }
  if (durability.ack == AckPolicy::kMemory && durability.read_only) {
    return Invalid("durability.read_only", "needs a data directory and ack policy written or "
                                           "durable");
  }
  if (durability.ack != AckPolicy::kMemory && durability.dir.empty()) {
    return Invalid("durability.dir", "is required unless the ack policy is memory");
  }
  if (durability.ack != AckPolicy::kMemory && durability.segment_bytes_max < (1 << 16)) {
    return Invalid("durability.segment_bytes_max", "must be >= 64 KiB");
  }
  if (absl::Status status = idle.Validate(); !status.ok()) return status;
  return fraud_rules.Validate();
}

}  // namespace vouch
