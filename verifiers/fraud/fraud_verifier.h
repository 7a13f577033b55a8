// FraudVerifier: the built-in fraud rules (fraud_checker.h) behind the StatefulVerifier contract
// (engine/verify/verifier.h), which is all the engine sees of them. Rules travel as the rules file
// text (rules_file.h), the form the engine journals; the reason codes are the fraud reasons'
// numbers in engine/types/reason.h, which the built-in verifier keeps on the wire and in the
// journal.
//
// Thread safety: as FraudChecker, one thread at a time.
#ifndef VOUCH_VERIFIERS_FRAUD_FRAUD_VERIFIER_H_
#define VOUCH_VERIFIERS_FRAUD_FRAUD_VERIFIER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/types/transaction.h"
#include "engine/verify/verifier.h"
#include "verifiers/fraud/fraud_checker.h"
#include "verifiers/fraud/fraud_rules.h"

namespace vouch::fraud {

class FraudVerifier final : public StatefulVerifier {
 public:
  // REQUIRES: rules.Validate() is OK.
  FraudVerifier(const FraudRules& rules, size_t account_capacity)
      : checker_(rules, account_capacity) {}

  uint16_t Check(const Transaction& txn, int64_t confirmed_ns) override {
    return static_cast<uint16_t>(checker_.Check(txn, confirmed_ns));
  }
  absl::Status ValidateRules(absl::string_view text) const override;
  void ApplyRules(absl::string_view text) override;
  absl::Status SaveState(std::string* out) const override { return checker_.SaveState(out); }
  absl::Status RestoreState(absl::string_view state) override {
    return checker_.RestoreState(state);
  }

  // Its counters and state hash, for tests and benchmarks (read on the owning thread).
  const FraudChecker& checker() const { return checker_; }

 private:
  FraudChecker checker_;
};

// A candidate rule set judged next to the live one (Options::shadow_fraud_rules): the engine
// registers it as the shadow verifier "fraud_shadow", whose verdicts are compared with what was
// decided and never decide. Its codes are the fraud reasons' numbers, as FraudVerifier's.
class ShadowFraudVerifier final : public Verifier {
 public:
  // REQUIRES: rules.Validate() is OK.
  ShadowFraudVerifier(const FraudRules& rules, size_t account_capacity)
      : checker_(rules, account_capacity) {}
  uint16_t Check(const Transaction& txn, int64_t confirmed_ns) override {
    return static_cast<uint16_t>(checker_.Check(txn, confirmed_ns));
  }

 private:
  FraudChecker checker_;
};

}  // namespace vouch::fraud

#endif  // VOUCH_VERIFIERS_FRAUD_FRAUD_VERIFIER_H_
