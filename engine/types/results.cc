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

}  // namespace vouch
