#include "engine/types/reason.h"

namespace vouch {

std::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kNone: return "none";
    case Reason::kMalformedId: return "malformed_id";
    case Reason::kMalformedAmount: return "malformed_amount";
    case Reason::kMalformedSameAccount: return "malformed_same_account";
    case Reason::kUnknownCurrency: return "unknown_currency";
    case Reason::kOverLimit: return "over_limit";
    case Reason::kAccountOnHold: return "account_on_hold";
    case Reason::kMalformedAttributes: return "malformed_attributes";
    case Reason::kQueueFull: return "queue_full";
    case Reason::kDuplicateInFlight: return "duplicate_in_flight";
    case Reason::kShuttingDown: return "shutting_down";
    case Reason::kRiskLimit: return "risk_limit";
    case Reason::kJournalFailed: return "journal_failed";
    case Reason::kIdempotencyRetention: return "idempotency_retention";
    case Reason::kVelocityCount: return "velocity_count";
    case Reason::kVelocityAmount: return "velocity_amount";
    case Reason::kAmountAnomaly: return "amount_anomaly";
    case Reason::kBlockedMerchant: return "blocked_merchant";
    case Reason::kBlockedCountry: return "blocked_country";
    case Reason::kBlockedDevice: return "blocked_device";
    case Reason::kImpossibleTravel: return "impossible_travel";
    case Reason::kInsufficientFunds: return "insufficient_funds";
    case Reason::kUnknownAccount: return "unknown_account";
    case Reason::kCurrencyMismatch: return "currency_mismatch";
    case Reason::kCreditsExceedDebits: return "credits_exceed_debits";
    case Reason::kAccountFrozen: return "account_frozen";
    case Reason::kAccountClosed: return "account_closed";
    case Reason::kDailyAmountLimit: return "daily_amount_limit";
    case Reason::kDailyCountLimit: return "daily_count_limit";
    case Reason::kDeadlineExceeded: return "deadline_exceeded";
    case Reason::kAccountHeldInFlight: return "account_held_in_flight";
    case Reason::kDecidedBeforeLedger: return "decided_before_ledger";
    case Reason::kVerifierRejected: return "verifier_rejected";
    case Reason::kIdReusedWithDifferentFields: return "id_reused_with_different_fields";
  }
  return "unknown";
}

}  // namespace vouch
