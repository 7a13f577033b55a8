// Reason codes: why a transaction was refused, failed verification or timed out.
//
// One enum covers every stage so a code means the same thing in a Confirmation, a Verdict, an
// Outcome, a metric label and a log line. Values are stable: they are part of the wire contract
// (proto/vouch.proto mirrors them) and of the journal.
#ifndef VOUCH_ENGINE_TYPES_REASON_H_
#define VOUCH_ENGINE_TYPES_REASON_H_

#include <cstdint>
#include <string_view>

namespace vouch {

enum class Reason : uint8_t {
  kNone = 0,
  // Synchronous ingest checks (Confirmation REJECTED).
  kMalformedId = 1,           // id == 0.
  kMalformedAmount = 2,       // amount <= 0.
  kMalformedSameAccount = 3,  // source == destination, or an account id of 0.
  kUnknownCurrency = 4,       // Not an ISO 4217 code the engine settles.
  kOverLimit = 5,             // Amount above the per-transaction limit.
  kAccountOnHold = 6,         // Source account held after a late failure.
  kMalformedAttributes = 7,   // Transaction attributes longer than kAttributesBytesMax.
  // kUnknownAccount (31) and kCurrencyMismatch (32) are also ingest refusals: the source or
  // destination is not a created (and kept) account, or the currency differs from either's.
  kAccountFrozen = 50,        // The source or destination account is frozen.
  kAccountClosed = 51,        // The source or destination account is closed (or closing).
  // The source account's daily limits (AccountLimits, per UTC calendar day: DailyUsage).
  kDailyAmountLimit = 52,     // The day's amount would pass daily_minor_max.
  kDailyCountLimit = 53,      // The day's count would pass daily_count_max.
  // Back-pressure (Confirmation BUSY: retry the call).
  kQueueFull = 10,          // A bounded queue is full: the in-flight ring, the journal's queue
                            // of refusals, or the idempotency window (all in flight).
  kDuplicateInFlight = 11,  // The same id is being processed right now.
  kShuttingDown = 12,       // Stop() has begun; nothing new is confirmed.
  kRiskLimit = 13,          // A risk-exposure cap on unverified transactions is reached.
  kJournalFailed = 14,      // The journal failed (I/O error); nothing more is confirmed.
  // The idempotency table cannot hold Options::idempotency_retention_ns at the current rate:
  // its oldest remembered id is younger than the retention, and no id is forgotten early. New
  // ids are refused until the oldest ages out (or raise idempotency_window). Resubmissions of
  // remembered ids still get their answers.
  kIdempotencyRetention = 15,
  // Fraud verifier.
  kVelocityCount = 20,
  kVelocityAmount = 21,
  kAmountAnomaly = 22,
  kBlockedMerchant = 23,
  kBlockedCountry = 24,
  kBlockedDevice = 25,
  kImpossibleTravel = 26,
  // Ledger verifier.
  kInsufficientFunds = 30,
  kUnknownAccount = 31,
  kCurrencyMismatch = 32,
  // The destination has kAccountCreditsMustNotExceedDebits and would go above 0, counting what
  // is pending to and from it.
  kCreditsExceedDebits = 33,
  // Reconciliation.
  kDeadlineExceeded = 40,
  // A fraud failure put the source account on hold while this transaction was in flight, and
  // Options::fail_in_flight_on_hold fails such transactions (verifier: fraud).
  kAccountHeldInFlight = 41,
  // A ledger verdict only: the transaction was decided before the ledger reached it, so the
  // ledger reserved nothing (always a late verdict).
  kDecidedBeforeLedger = 42,
  // An embedder's verifier (Options::verifiers) failed the transaction; the verifier's own
  // reason code, in its namespace, is Outcome::verifier_code (Verdict::code).
  kVerifierRejected = 43,
  // Ingest (Confirmation REJECTED, not stored): the id is remembered with other fields (amount,
  // accounts, currency, merchant, category, country or device; not client_timestamp_ns). The
  // id's stored answer stays the first submission's; a resubmission with the original fields
  // still gets it.
  kIdReusedWithDifferentFields = 54,
};

inline constexpr int kReasonCount = 55;  // One past the largest value, for counter arrays.

// The ingest refusals stored as the id's answer: a resubmission gets the same REJECTED answer,
// Query finds it, and (ack policy written/durable) the journal keeps it across restarts. Not
// kMalformedId (an id of 0 names nothing to store it under) nor kIdReusedWithDifferentFields
// (the id's answer is the original's).
constexpr bool IsStoredRefusal(Reason reason) {
  switch (reason) {
    case Reason::kMalformedAmount:
    case Reason::kMalformedSameAccount:
    case Reason::kMalformedAttributes:
    case Reason::kUnknownCurrency:
    case Reason::kOverLimit:
    case Reason::kAccountOnHold:
    case Reason::kUnknownAccount:
    case Reason::kCurrencyMismatch:
    case Reason::kAccountFrozen:
    case Reason::kAccountClosed:
    case Reason::kDailyAmountLimit:
    case Reason::kDailyCountLimit:
      return true;
    default:
      return false;
  }
}

// Stable, lower_snake_case name ("insufficient_funds"), used in metrics, logs and the CLI.
std::string_view ReasonName(Reason reason);

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_REASON_H_
