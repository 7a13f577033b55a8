#include "engine/wire/convert.h"

#include <cassert>

namespace vouch::wire {
namespace {

// The enum conversions below are casts; these pin every value they rely on. A value added on
// one side only is caught by the ARRAYSIZE checks (when it is the new largest) and otherwise by
// tests/engine/wire/convert_test.cc, which walks both enums.
template <typename EngineEnum, typename WireEnum>
constexpr bool SameValue(EngineEnum engine, WireEnum wire) {
  return static_cast<int>(engine) == static_cast<int>(wire);
}

static_assert(SameValue(Reason::kNone, v1::REASON_NONE));
static_assert(SameValue(Reason::kMalformedId, v1::REASON_MALFORMED_ID));
static_assert(SameValue(Reason::kMalformedAmount, v1::REASON_MALFORMED_AMOUNT));
static_assert(SameValue(Reason::kMalformedSameAccount, v1::REASON_MALFORMED_SAME_ACCOUNT));
static_assert(SameValue(Reason::kUnknownCurrency, v1::REASON_UNKNOWN_CURRENCY));
static_assert(SameValue(Reason::kOverLimit, v1::REASON_OVER_LIMIT));
static_assert(SameValue(Reason::kAccountOnHold, v1::REASON_ACCOUNT_ON_HOLD));
static_assert(SameValue(Reason::kMalformedAttributes, v1::REASON_MALFORMED_ATTRIBUTES));
static_assert(SameValue(Reason::kQueueFull, v1::REASON_QUEUE_FULL));
static_assert(SameValue(Reason::kDuplicateInFlight, v1::REASON_DUPLICATE_IN_FLIGHT));
static_assert(SameValue(Reason::kShuttingDown, v1::REASON_SHUTTING_DOWN));
static_assert(SameValue(Reason::kRiskLimit, v1::REASON_RISK_LIMIT));
static_assert(SameValue(Reason::kJournalFailed, v1::REASON_JOURNAL_FAILED));
static_assert(SameValue(Reason::kIdempotencyRetention, v1::REASON_IDEMPOTENCY_RETENTION));
static_assert(SameValue(Reason::kVelocityCount, v1::REASON_VELOCITY_COUNT));
static_assert(SameValue(Reason::kVelocityAmount, v1::REASON_VELOCITY_AMOUNT));
static_assert(SameValue(Reason::kAmountAnomaly, v1::REASON_AMOUNT_ANOMALY));
static_assert(SameValue(Reason::kBlockedMerchant, v1::REASON_BLOCKED_MERCHANT));
static_assert(SameValue(Reason::kBlockedCountry, v1::REASON_BLOCKED_COUNTRY));
static_assert(SameValue(Reason::kBlockedDevice, v1::REASON_BLOCKED_DEVICE));
static_assert(SameValue(Reason::kImpossibleTravel, v1::REASON_IMPOSSIBLE_TRAVEL));
static_assert(SameValue(Reason::kInsufficientFunds, v1::REASON_INSUFFICIENT_FUNDS));
static_assert(SameValue(Reason::kUnknownAccount, v1::REASON_UNKNOWN_ACCOUNT));
static_assert(SameValue(Reason::kCurrencyMismatch, v1::REASON_CURRENCY_MISMATCH));
static_assert(SameValue(Reason::kDeadlineExceeded, v1::REASON_DEADLINE_EXCEEDED));
static_assert(SameValue(Reason::kAccountHeldInFlight, v1::REASON_ACCOUNT_HELD_IN_FLIGHT));
static_assert(SameValue(Reason::kDecidedBeforeLedger, v1::REASON_DECIDED_BEFORE_LEDGER));
static_assert(SameValue(Reason::kCreditsExceedDebits, v1::REASON_CREDITS_EXCEED_DEBITS));
static_assert(SameValue(Reason::kAccountFrozen, v1::REASON_ACCOUNT_FROZEN));
static_assert(SameValue(Reason::kAccountClosed, v1::REASON_ACCOUNT_CLOSED));
static_assert(SameValue(Reason::kDailyAmountLimit, v1::REASON_DAILY_AMOUNT_LIMIT));
static_assert(SameValue(Reason::kDailyCountLimit, v1::REASON_DAILY_COUNT_LIMIT));
static_assert(SameValue(Reason::kIdReusedWithDifferentFields,
                        v1::REASON_ID_REUSED_WITH_DIFFERENT_FIELDS));
static_assert(v1::Reason_ARRAYSIZE == kReasonCount);

static_assert(SameValue(ConfirmStatus::kConfirmed, v1::CONFIRM_STATUS_CONFIRMED));
static_assert(SameValue(ConfirmStatus::kRejected, v1::CONFIRM_STATUS_REJECTED));
static_assert(SameValue(ConfirmStatus::kBusy, v1::CONFIRM_STATUS_BUSY));
static_assert(v1::ConfirmStatus_ARRAYSIZE == 4);

static_assert(SameValue(OutcomeKind::kVerified, v1::OUTCOME_KIND_VERIFIED));
static_assert(SameValue(OutcomeKind::kLateFailed, v1::OUTCOME_KIND_LATE_FAILED));
static_assert(SameValue(OutcomeKind::kLateTimeout, v1::OUTCOME_KIND_LATE_TIMEOUT));
static_assert(v1::OutcomeKind_ARRAYSIZE == 4);

static_assert(SameValue(VerifierId::kNone, v1::VERIFIER_NONE));
static_assert(SameValue(VerifierId::kFraud, v1::VERIFIER_FRAUD));
static_assert(SameValue(VerifierId::kLedger, v1::VERIFIER_LEDGER));
static_assert(SameValue(CustomVerifierId(0), v1::VERIFIER_EMBEDDER_1));
static_assert(SameValue(CustomVerifierId(5), v1::VERIFIER_EMBEDDER_6));
static_assert(v1::Verifier_ARRAYSIZE == kVerifiersMax + 1);

// 0 means "not set" on both timelines.
int64_t ToUnixNs(int64_t mono_ns, int64_t mono_to_unix_offset_ns) {
  return mono_ns == 0 ? 0 : mono_ns + mono_to_unix_offset_ns;
}

}  // namespace

Reason FromProto(const v1::Transaction& in, Transaction* out) {
  out->id = in.id();
  out->source_account = in.source_account();
  out->destination_account = in.destination_account();
  out->amount_minor = in.amount();
  out->currency = PackCurrency(in.currency());
  out->merchant_category = in.merchant_category();
  out->merchant_id = in.merchant_id();
  out->country = PackCountry(in.country());
  out->device_id = in.device_id();
  out->client_timestamp_ns = in.client_timestamp_ns();
  out->attributes.Assign(in.attributes());  // Oversize: refused at ingest (CheckWellFormed).
  if (out->attributes.size == TransactionAttributes::kOversize) return Reason::kMalformedAttributes;
  return out->currency == 0 ? Reason::kUnknownCurrency : Reason::kNone;
}

// The code strings are at most three characters, inside std::string's in-object buffer, so the
// temporaries do not allocate, and set_*(std::string&&) copies them into the field's existing
// storage once the message has held a value.
void ToProto(const Transaction& in, v1::Transaction* out) {
  out->set_id(in.id);
  out->set_source_account(in.source_account);
  out->set_destination_account(in.destination_account);
  out->set_amount(in.amount_minor);
  out->set_currency(CurrencyToString(in.currency));
  out->set_merchant_id(in.merchant_id);
  out->set_merchant_category(in.merchant_category);
  out->set_country(CountryToString(in.country));
  out->set_device_id(in.device_id);
  out->set_client_timestamp_ns(in.client_timestamp_ns);
  const std::string_view attributes = in.attributes.view();
  out->set_attributes(attributes.data(), attributes.size());  // Reuses the field's storage.
}

void ToProto(const Confirmation& in, int64_t mono_to_unix_offset_ns, v1::Confirmation* out) {
  out->set_transaction_id(in.id);
  out->set_seq(in.seq);
  out->set_status(ToProto(in.status));
  out->set_reason(ToProto(in.reason));
  out->set_deadline_unix_ns(ToUnixNs(in.deadline_ns, mono_to_unix_offset_ns));
  out->set_duplicate(in.duplicate);
  out->set_held(in.held);
}

void ToProto(const Outcome& in, int64_t mono_to_unix_offset_ns, v1::Outcome* out) {
  out->set_transaction_id(in.id);
  out->set_seq(in.seq);
  out->set_kind(ToProto(in.kind));
  out->set_verifier(ToProto(in.verifier));
  out->set_reason(ToProto(in.reason));
  out->set_verifier_reason(in.verifier_code);
  out->set_reversed((in.compensation & kCompensationReversed) != 0);
  out->set_account_held((in.compensation & kCompensationAccountHeld) != 0);
  out->set_held(in.held);
  out->set_source_account(in.source_account);
  out->set_amount(in.amount_minor);
  out->set_currency(CurrencyToString(in.currency));
  out->set_confirmed_unix_ns(ToUnixNs(in.confirmed_ns, mono_to_unix_offset_ns));
  out->set_decided_unix_ns(ToUnixNs(in.decided_ns, mono_to_unix_offset_ns));
}

v1::Reason ToProto(Reason reason) { return static_cast<v1::Reason>(reason); }
v1::ConfirmStatus ToProto(ConfirmStatus status) {
  assert(status != ConfirmStatus::kPending && "a pending answer never goes on the wire");
  return static_cast<v1::ConfirmStatus>(status);
}
v1::OutcomeKind ToProto(OutcomeKind kind) { return static_cast<v1::OutcomeKind>(kind); }
v1::Verifier ToProto(VerifierId verifier) { return static_cast<v1::Verifier>(verifier); }

bool FromProto(v1::Reason in, Reason* out) {
  if (!v1::Reason_IsValid(in)) return false;
  *out = static_cast<Reason>(in);
  return true;
}

bool FromProto(v1::ConfirmStatus in, ConfirmStatus* out) {
  if (!v1::ConfirmStatus_IsValid(in) || in == v1::CONFIRM_STATUS_UNSPECIFIED) return false;
  *out = static_cast<ConfirmStatus>(in);
  return true;
}

bool FromProto(v1::OutcomeKind in, OutcomeKind* out) {
  if (!v1::OutcomeKind_IsValid(in) || in == v1::OUTCOME_KIND_UNSPECIFIED) return false;
  *out = static_cast<OutcomeKind>(in);
  return true;
}

bool FromProto(v1::Verifier in, VerifierId* out) {
  if (!v1::Verifier_IsValid(in)) return false;
  *out = static_cast<VerifierId>(in);
  return true;
}

}  // namespace vouch::wire
