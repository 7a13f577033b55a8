#include "engine/journal/records.h"

#include <cassert>
#include <cstring>
#include <string_view>

#include "engine/common/byte_coding.h"
#include "engine/types/reason.h"

namespace vouch::journal {
namespace {

bool GetBool(const char** in, bool* value) {
  uint8_t byte;
  *in = GetFixed(*in, &byte);
  *value = byte != 0;
  return byte <= 1;
}

char* PutTransaction(char* out, const Transaction& txn) {
  out = PutFixed(out, txn.id);
  out = PutFixed(out, txn.source_account);
  out = PutFixed(out, txn.destination_account);
  out = PutFixed(out, txn.amount_minor);
  out = PutFixed(out, txn.currency);
  out = PutFixed(out, txn.merchant_category);
  out = PutFixed(out, txn.merchant_id);
  out = PutFixed(out, txn.country);
  out = PutFixed(out, txn.device_id);
  out = PutFixed(out, txn.client_timestamp_ns);
  return out;
}

const char* GetTransaction(const char* in, Transaction* txn) {
  in = GetFixed(in, &txn->id);
  in = GetFixed(in, &txn->source_account);
  in = GetFixed(in, &txn->destination_account);
  in = GetFixed(in, &txn->amount_minor);
  in = GetFixed(in, &txn->currency);
  in = GetFixed(in, &txn->merchant_category);
  in = GetFixed(in, &txn->merchant_id);
  in = GetFixed(in, &txn->country);
  in = GetFixed(in, &txn->device_id);
  in = GetFixed(in, &txn->client_timestamp_ns);
  return in;
}

}  // namespace

bool IsKnownRecordType(uint8_t type) {
  return (type >= static_cast<uint8_t>(RecordType::kConfirmed) &&
          type <= static_cast<uint8_t>(RecordType::kRefusedWithFingerprint)) ||
         (type >= static_cast<uint8_t>(RecordType::kAccountCreated) &&
          type <= static_cast<uint8_t>(RecordType::kAccountLimits));
}

size_t EncodeConfirmedRecord(const ConfirmedRecord& record, char* out) {
  char* p = PutFixed(out, record.seq);
  p = PutTransaction(p, record.txn);
  p = PutFixed(p, record.confirmed_unix_ns);
  p = PutFixed(p, static_cast<uint8_t>(record.held));
  p = PutFixed(p, record.origin);
  assert(static_cast<size_t>(p - out) == kConfirmedRecordBytes);
  const std::string_view attributes = record.txn.attributes.view();
  if (!attributes.empty()) {
    p = PutFixed(p, static_cast<uint8_t>(attributes.size()));
    std::memcpy(p, attributes.data(), attributes.size());
    p += attributes.size();
  }
  return static_cast<size_t>(p - out);
}

bool DecodeConfirmedRecord(const char* data, size_t size, ConfirmedRecord* record) {
  if (size < kConfirmedRecordBytes || size > kConfirmedRecordBytesMax ||
      size == kConfirmedRecordBytes + 1) {
    return false;
  }
  const char* p = GetFixed(data, &record->seq);
  p = GetTransaction(p, &record->txn);
  p = GetFixed(p, &record->confirmed_unix_ns);
  if (!GetBool(&p, &record->held)) return false;
  p = GetFixed(p, &record->origin);
  assert(static_cast<size_t>(p - data) == kConfirmedRecordBytes);
  record->txn.attributes = {};
  if (size > kConfirmedRecordBytes) {
    uint8_t attributes_size;
    p = GetFixed(p, &attributes_size);
    if (attributes_size == 0 || attributes_size != size - kConfirmedRecordBytes - 1) return false;
    record->txn.attributes.Assign(std::string_view(p, attributes_size));
  }
  return true;
}

size_t EncodeOutcomeRecord(const OutcomeRecord& record, char* out) {
  const Outcome& o = record.outcome;
  char* p = PutFixed(out, o.id);
  p = PutFixed(p, o.seq);
  p = PutFixed(p, static_cast<uint8_t>(o.kind));
  p = PutFixed(p, static_cast<uint8_t>(o.verifier));
  p = PutFixed(p, static_cast<uint8_t>(o.reason));
  p = PutFixed(p, o.compensation);
  p = PutFixed(p, static_cast<uint8_t>(o.held));
  p = PutFixed(p, o.source_account);
  p = PutFixed(p, o.amount_minor);
  p = PutFixed(p, o.currency);
  p = PutFixed(p, o.confirmed_ns);
  p = PutFixed(p, o.decided_ns);
  p = PutFixed(p, o.origin);
  p = PutFixed(p, record.decided_unix_ns);
  p = PutFixed(p, record.confirmed_unix_ns);
  assert(static_cast<size_t>(p - out) == kOutcomeRecordBytes);
  if (o.verifier_code != 0) p = PutFixed(p, o.verifier_code);
  return static_cast<size_t>(p - out);
}

bool DecodeOutcomeRecord(const char* data, size_t size, OutcomeRecord* record) {
  if (size != kOutcomeRecordBytes && size != kOutcomeWithCodeRecordBytes) return false;
  Outcome& o = record->outcome;
  uint8_t kind, verifier, reason;
  const char* p = GetFixed(data, &o.id);
  p = GetFixed(p, &o.seq);
  p = GetFixed(p, &kind);
  p = GetFixed(p, &verifier);
  p = GetFixed(p, &reason);
  p = GetFixed(p, &o.compensation);
  if (!GetBool(&p, &o.held)) return false;
  p = GetFixed(p, &o.source_account);
  p = GetFixed(p, &o.amount_minor);
  p = GetFixed(p, &o.currency);
  p = GetFixed(p, &o.confirmed_ns);
  p = GetFixed(p, &o.decided_ns);
  p = GetFixed(p, &o.origin);
  p = GetFixed(p, &record->decided_unix_ns);
  p = GetFixed(p, &record->confirmed_unix_ns);
  assert(static_cast<size_t>(p - data) == kOutcomeRecordBytes);
  o.verifier_code = 0;
  if (size == kOutcomeWithCodeRecordBytes) {
    GetFixed(p, &o.verifier_code);
    if (o.verifier_code == 0) return false;  // Written only when set.
  }
  if (kind < static_cast<uint8_t>(OutcomeKind::kVerified) ||
      kind > static_cast<uint8_t>(OutcomeKind::kLateTimeout)) {
    return false;
  }
  if (verifier > kVerifiersMax) return false;
  if (reason >= kReasonCount) return false;
  constexpr uint8_t kCompensationAll = kCompensationReversed | kCompensationAccountHeld;
  if ((o.compensation & ~kCompensationAll) != 0) return false;
  o.kind = static_cast<OutcomeKind>(kind);
  o.verifier = static_cast<VerifierId>(verifier);
  o.reason = static_cast<Reason>(reason);
  return true;
}

size_t EncodeHoldReleasedRecord(const HoldReleasedRecord& record, char* out) {
  char* p = PutFixed(out, record.account);
  p = PutFixed(p, record.released_unix_ns);
  assert(static_cast<size_t>(p - out) == kHoldReleasedRecordBytes);
  return static_cast<size_t>(p - out);
}

bool DecodeHoldReleasedRecord(const char* data, size_t size, HoldReleasedRecord* record) {
  if (size != kHoldReleasedRecordBytes) return false;
  const char* p = GetFixed(data, &record->account);
  GetFixed(p, &record->released_unix_ns);
  return true;
}

size_t EncodeOpeningRecord(const OpeningRecord& record, char* out) {
  assert(record.currency_count <= kOpeningCurrenciesMax);
  char* p = PutFixed(out, record.accounts);
  p = PutFixed(p, record.accounts_hash);
  p = PutFixed(p, record.currency_count);
  for (uint32_t i = 0; i < record.currency_count; ++i) {
    const OpeningCurrency& c = record.currencies[i];
    p = PutFixed(p, c.currency);
    p = PutFixed(p, c.accounts);
    p = PutFixed(p, c.balance_minor);
    p = PutFixed(p, c.overdraft_limit_minor);
  }
  return static_cast<size_t>(p - out);
}

bool DecodeOpeningRecord(const char* data, size_t size, OpeningRecord* record) {
  if (size < 20) return false;
  *record = {};
  const char* p = GetFixed(data, &record->accounts);
  p = GetFixed(p, &record->accounts_hash);
  p = GetFixed(p, &record->currency_count);
  if (record->currency_count > kOpeningCurrenciesMax ||
      size != 20 + 28 * size_t{record->currency_count}) {
    return false;
  }
  for (uint32_t i = 0; i < record->currency_count; ++i) {
    OpeningCurrency& c = record->currencies[i];
    p = GetFixed(p, &c.currency);
    p = GetFixed(p, &c.accounts);
    p = GetFixed(p, &c.balance_minor);
    p = GetFixed(p, &c.overdraft_limit_minor);
    if (i > 0 && c.currency <= record->currencies[i - 1].currency) return false;
  }
  return true;
}

size_t EncodeRefusedRecord(const RefusedRecord& record, char* out) {
  char* p = PutFixed(out, record.id);
  p = PutFixed(p, static_cast<uint8_t>(record.reason));
  p = PutFixed(p, record.refused_unix_ns);
  p = PutFixed(p, record.fingerprint);
  assert(static_cast<size_t>(p - out) == kRefusedWithFingerprintRecordBytes);
  return static_cast<size_t>(p - out);
}

bool DecodeRefusedRecord(const char* data, size_t size, RefusedRecord* record) {
  if (size != kRefusedRecordBytes && size != kRefusedWithFingerprintRecordBytes) return false;
  uint8_t reason;
  const char* p = GetFixed(data, &record->id);
  p = GetFixed(p, &reason);
  p = GetFixed(p, &record->refused_unix_ns);
  record->fingerprint = 0;
  if (size == kRefusedWithFingerprintRecordBytes) GetFixed(p, &record->fingerprint);
  if (reason >= kReasonCount || !IsStoredRefusal(static_cast<Reason>(reason))) return false;
  record->reason = static_cast<Reason>(reason);
  return true;
}

size_t EncodeHoldPlacedRecord(const HoldPlacedRecord& record, char* out) {
  char* p = PutFixed(out, record.account);
  p = PutFixed(p, record.placed_unix_ns);
  assert(static_cast<size_t>(p - out) == kHoldPlacedRecordBytes);
  return static_cast<size_t>(p - out);
}

bool DecodeHoldPlacedRecord(const char* data, size_t size, HoldPlacedRecord* record) {
  if (size != kHoldPlacedRecordBytes) return false;
  const char* p = GetFixed(data, &record->account);
  GetFixed(p, &record->placed_unix_ns);
  return record->account != 0;
}

namespace {

char* PutLimits(char* p, const AccountLimits& limits) {
  p = PutFixed(p, limits.transaction_minor_max);
  p = PutFixed(p, limits.daily_minor_max);
  return PutFixed(p, limits.daily_count_max);
}

const char* GetLimits(const char* p, AccountLimits* limits) {
  p = GetFixed(p, &limits->transaction_minor_max);
  p = GetFixed(p, &limits->daily_minor_max);
  return GetFixed(p, &limits->daily_count_max);
}

}  // namespace

size_t EncodeAccountCreatedRecord(const AccountCreatedRecord& record, char* out) {
  const NewAccount& a = record.account;
  char* p = PutFixed(out, a.id);
  p = PutFixed(p, a.currency);
  p = PutFixed(p, a.opening_balance_minor);
  p = PutFixed(p, a.overdraft_limit_minor);
  p = PutFixed(p, a.flags);
  p = PutLimits(p, a.limits);
  p = PutFixed(p, a.user_data);
  p = PutFixed(p, record.created_unix_ns);
  assert(static_cast<size_t>(p - out) == kAccountCreatedRecordBytes);
  return static_cast<size_t>(p - out);
}

bool DecodeAccountCreatedRecord(const char* data, size_t size, AccountCreatedRecord* record) {
  if (size != kAccountCreatedRecordBytes) return false;
  NewAccount& a = record->account;
  const char* p = GetFixed(data, &a.id);
  p = GetFixed(p, &a.currency);
  p = GetFixed(p, &a.opening_balance_minor);
  p = GetFixed(p, &a.overdraft_limit_minor);
  p = GetFixed(p, &a.flags);
  p = GetLimits(p, &a.limits);
  p = GetFixed(p, &a.user_data);
  GetFixed(p, &record->created_unix_ns);
  return a.id != 0;
}

size_t EncodeAccountFrozenRecord(const AccountFrozenRecord& record, char* out) {
  char* p = PutFixed(out, record.id);
  p = PutFixed(p, static_cast<uint8_t>(record.frozen));
  p = PutFixed(p, record.at_unix_ns);
  assert(static_cast<size_t>(p - out) == kAccountFrozenRecordBytes);
  return static_cast<size_t>(p - out);
}

bool DecodeAccountFrozenRecord(const char* data, size_t size, AccountFrozenRecord* record) {
  if (size != kAccountFrozenRecordBytes) return false;
  const char* p = GetFixed(data, &record->id);
  if (!GetBool(&p, &record->frozen)) return false;
  GetFixed(p, &record->at_unix_ns);
  return record->id != 0;
}

size_t EncodeAccountClosedRecord(const AccountClosedRecord& record, char* out) {
  char* p = PutFixed(out, record.id);
  p = PutFixed(p, record.at_unix_ns);
  assert(static_cast<size_t>(p - out) == kAccountClosedRecordBytes);
  return static_cast<size_t>(p - out);
}

bool DecodeAccountClosedRecord(const char* data, size_t size, AccountClosedRecord* record) {
  if (size != kAccountClosedRecordBytes) return false;
  const char* p = GetFixed(data, &record->id);
  GetFixed(p, &record->at_unix_ns);
  return record->id != 0;
}

size_t EncodeAccountLimitsRecord(const AccountLimitsRecord& record, char* out) {
  char* p = PutFixed(out, record.id);
  p = PutLimits(p, record.limits);
  p = PutFixed(p, record.at_unix_ns);
  assert(static_cast<size_t>(p - out) == kAccountLimitsRecordBytes);
  return static_cast<size_t>(p - out);
}

bool DecodeAccountLimitsRecord(const char* data, size_t size, AccountLimitsRecord* record) {
  if (size != kAccountLimitsRecordBytes) return false;
  const char* p = GetFixed(data, &record->id);
  p = GetLimits(p, &record->limits);
  GetFixed(p, &record->at_unix_ns);
  return record->id != 0;
}

}  // namespace vouch::journal
