#include "engine/types/results.h"

namespace vouch {

std::string_view ConfirmStatusName(ConfirmStatus status) {
  switch (status) {
    case ConfirmStatus::kConfirmed: return "CONFIRMED";
    case ConfirmStatus::kRejected: return "REJECTED";
    case ConfirmStatus::kBusy: return "BUSY";
    case ConfirmStatus::kPending: return "PENDING";
  }
  return "UNKNOWN";
}

std::string_view VerifierName(VerifierId verifier) {
  switch (verifier) {
    case VerifierId::kNone: return "none";
    case VerifierId::kFraud: return "fraud";
    case VerifierId::kLedger: return "ledger";
  }
  // An embedder's verifier, by its place (the wire's VERIFIER_EMBEDDER_n); its own name is the
  // engine's (Engine::VerifierName).
  static constexpr std::string_view kCustom[] = {"embedder_1", "embedder_2", "embedder_3",
                                                 "embedder_4", "embedder_5", "embedder_6"};
  const int custom = CustomVerifierIndex(verifier);
  if (custom >= 0 && custom < kVerifiersMax - kBuiltinVerifierCount) return kCustom[custom];
  return "unknown";
}

std::string_view OutcomeKindName(OutcomeKind kind) {
  switch (kind) {
    case OutcomeKind::kVerified: return "VERIFIED";
    case OutcomeKind::kLateFailed: return "LATE_FAILED";
    case OutcomeKind::kLateTimeout: return "LATE_TIMEOUT";
  }
  return "UNKNOWN";
}

std::string_view ShadowComparisonName(ShadowComparison comparison) {
  switch (comparison) {
    case ShadowComparison::kAgreed: return "agreed";
    case ShadowComparison::kWouldHaveFailed: return "would_have_failed";
    case ShadowComparison::kWouldHavePassed: return "would_have_passed";
  }
  return "unknown";
}

}  // namespace vouch
