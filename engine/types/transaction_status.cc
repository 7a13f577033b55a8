#include "engine/types/transaction_status.h"

namespace vouch {

std::string_view StateKindName(StateKind kind) {
  switch (kind) {
    case StateKind::kReceived: return "RECEIVED";
    case StateKind::kRejected: return "REJECTED";
    case StateKind::kConfirmed: return "CONFIRMED";
    case StateKind::kHeld: return "HELD";
    case StateKind::kFraudVerdict: return "FRAUD_VERDICT";
    case StateKind::kLedgerVerdict: return "LEDGER_VERDICT";
    case StateKind::kVerified: return "VERIFIED";
    case StateKind::kLateFailed: return "LATE_FAILED";
    case StateKind::kLateTimeout: return "LATE_TIMEOUT";
    case StateKind::kCompensated: return "COMPENSATED";
    case StateKind::kAccountHeld: return "ACCOUNT_HELD";
    case StateKind::kLateVerdict: return "LATE_VERDICT";
    case StateKind::kVerifierVerdict: return "VERIFIER_VERDICT";
  }
  return "UNKNOWN";
}

}  // namespace vouch
