#include "engine/journal/records.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace vouch::journal {
namespace {

ConfirmedRecord SampleConfirmed() {
  ConfirmedRecord r;
  r.seq = 0x0102030405060708ull;
  r.txn.id = 0xfedcba9876543210ull;
  r.txn.source_account = 11;
  r.txn.destination_account = std::numeric_limits<uint64_t>::max();
  r.txn.amount_minor = -123456789012345;  // Any value round-trips; validation is ingest's job.
  r.txn.currency = PackCurrency("EUR");
  r.txn.merchant_category = 5411;
  r.txn.merchant_id = 77;
  r.txn.country = PackCountry("GB");
  r.txn.device_id = 0x8000000000000001ull;
  r.txn.client_timestamp_ns = std::numeric_limits<int64_t>::min();
  r.confirmed_unix_ns = 1700000000123456789;
  r.held = true;
  r.origin = 0xabcdef;
  return r;
}

OutcomeRecord SampleOutcome() {
  OutcomeRecord r;
  Outcome& o = r.outcome;
  o.id = 42;
  o.seq = 0x1122334455667788ull;
  o.kind = OutcomeKind::kLateFailed;
  o.verifier = VerifierId::kLedger;
  o.reason = Reason::kInsufficientFunds;
  o.compensation = kCompensationReversed | kCompensationAccountHeld;
  o.held = true;
  o.source_account = 9;
  o.amount_minor = std::numeric_limits<int64_t>::max();
  o.currency = PackCurrency("JPY");
  o.confirmed_ns = -5;
  o.decided_ns = 6;
  o.origin = 0xffffffffffffffffull;
  r.decided_unix_ns = 1700000000999999999;
  r.confirmed_unix_ns = 1700000000000000001;
  return r;
}

void ExpectSameTransaction(const Transaction& a, const Transaction& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.source_account, b.source_account);
  EXPECT_EQ(a.destination_account, b.destination_account);
  EXPECT_EQ(a.amount_minor, b.amount_minor);
  EXPECT_EQ(a.currency, b.currency);
  EXPECT_EQ(a.merchant_category, b.merchant_category);
  EXPECT_EQ(a.merchant_id, b.merchant_id);
  EXPECT_EQ(a.country, b.country);
  EXPECT_EQ(a.device_id, b.device_id);
  EXPECT_EQ(a.client_timestamp_ns, b.client_timestamp_ns);
  EXPECT_EQ(a.attributes.view(), b.attributes.view());
}

TEST(RecordsTest, ConfirmedRoundTripsEveryField) {
  const ConfirmedRecord in = SampleConfirmed();
  char buffer[kConfirmedRecordBytes];
  ASSERT_EQ(EncodeConfirmedRecord(in, buffer), kConfirmedRecordBytes);
  ConfirmedRecord out;
  ASSERT_TRUE(DecodeConfirmedRecord(buffer, sizeof(buffer), &out));
  EXPECT_EQ(out.seq, in.seq);
  ExpectSameTransaction(out.txn, in.txn);
  EXPECT_EQ(out.confirmed_unix_ns, in.confirmed_unix_ns);
  EXPECT_EQ(out.held, in.held);
  EXPECT_EQ(out.origin, in.origin);
}

// Attributes follow the 91 bytes as a size and the bytes, only when there are any; a record
// from before attributes (91 bytes) reads as none, and a length that disagrees is corrupt.
TEST(RecordsTest, ConfirmedCarriesAttributesOnlyWhenSet) {
  ConfirmedRecord in = SampleConfirmed();
  in.txn.attributes.Assign("seg=7");
  char buffer[kConfirmedRecordBytesMax];
  const size_t size = EncodeConfirmedRecord(in, buffer);
  ASSERT_EQ(size, kConfirmedRecordBytes + 1 + 5);
  ConfirmedRecord out;
  ASSERT_TRUE(DecodeConfirmedRecord(buffer, size, &out));
  ExpectSameTransaction(out.txn, in.txn);
  EXPECT_EQ(out.txn.attributes.view(), "seg=7");
  EXPECT_FALSE(DecodeConfirmedRecord(buffer, size - 1, &out)) << "size and length disagree";
  EXPECT_FALSE(DecodeConfirmedRecord(buffer, kConfirmedRecordBytes + 1, &out));
  ASSERT_TRUE(DecodeConfirmedRecord(buffer, kConfirmedRecordBytes, &out)) << "an older record";
  EXPECT_TRUE(out.txn.attributes.view().empty());
  in.txn.attributes.Assign(std::string(kAttributesBytesMax, 'a'));
  ASSERT_EQ(EncodeConfirmedRecord(in, buffer), kConfirmedRecordBytesMax);
  ASSERT_TRUE(DecodeConfirmedRecord(buffer, kConfirmedRecordBytesMax, &out));
  EXPECT_EQ(out.txn.attributes.view(), std::string(kAttributesBytesMax, 'a'));
}

// An embedder's verifier's failure carries its own code: two more bytes, only then, so that
// every other outcome keeps the 81-byte format (and older journals read as they are).
TEST(RecordsTest, AnOutcomeWithAVerifierCodeRoundTripsInTheLongerForm) {
  OutcomeRecord in = SampleOutcome();
  in.outcome.verifier = CustomVerifierId(5);
  in.outcome.reason = Reason::kVerifierRejected;
  in.outcome.verifier_code = 65'535;
  char buffer[kOutcomeWithCodeRecordBytes];
  ASSERT_EQ(EncodeOutcomeRecord(in, buffer), kOutcomeWithCodeRecordBytes);
  OutcomeRecord out;
  ASSERT_TRUE(DecodeOutcomeRecord(buffer, sizeof(buffer), &out));
  EXPECT_EQ(out.outcome.verifier, CustomVerifierId(5));
  EXPECT_EQ(out.outcome.reason, Reason::kVerifierRejected);
  EXPECT_EQ(out.outcome.verifier_code, 65'535);
  // The short form of the same record has no code.
  ASSERT_TRUE(DecodeOutcomeRecord(buffer, kOutcomeRecordBytes, &out));
  EXPECT_EQ(out.outcome.verifier_code, 0);
  // A long form whose code is 0 was never written; a verifier past the eighth does not exist.
  buffer[kOutcomeRecordBytes] = 0;
  buffer[kOutcomeRecordBytes + 1] = 0;
  EXPECT_FALSE(DecodeOutcomeRecord(buffer, sizeof(buffer), &out));
  in.outcome.verifier = static_cast<VerifierId>(kVerifiersMax + 1);
  EncodeOutcomeRecord(in, buffer);
  EXPECT_FALSE(DecodeOutcomeRecord(buffer, sizeof(buffer), &out));
}

TEST(RecordsTest, OutcomeRoundTripsEveryField) {
  const OutcomeRecord in = SampleOutcome();
  char buffer[kOutcomeRecordBytes];
  ASSERT_EQ(EncodeOutcomeRecord(in, buffer), kOutcomeRecordBytes);
  OutcomeRecord out;
  ASSERT_TRUE(DecodeOutcomeRecord(buffer, sizeof(buffer), &out));
  const Outcome& a = out.outcome;
  const Outcome& b = in.outcome;
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.verifier, b.verifier);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.compensation, b.compensation);
  EXPECT_EQ(a.held, b.held);
  EXPECT_EQ(a.source_account, b.source_account);
  EXPECT_EQ(a.amount_minor, b.amount_minor);
  EXPECT_EQ(a.currency, b.currency);
  EXPECT_EQ(a.confirmed_ns, b.confirmed_ns);
  EXPECT_EQ(a.decided_ns, b.decided_ns);
  EXPECT_EQ(a.origin, b.origin);
  EXPECT_EQ(out.decided_unix_ns, in.decided_unix_ns);
  EXPECT_EQ(out.confirmed_unix_ns, in.confirmed_unix_ns);
}

TEST(RecordsTest, HoldReleasedRoundTrips) {
  const HoldReleasedRecord in{0x0123456789abcdefull, -42};
  char buffer[kHoldReleasedRecordBytes];
  ASSERT_EQ(EncodeHoldReleasedRecord(in, buffer), kHoldReleasedRecordBytes);
  HoldReleasedRecord out;
  ASSERT_TRUE(DecodeHoldReleasedRecord(buffer, sizeof(buffer), &out));
  EXPECT_EQ(out.account, in.account);
  EXPECT_EQ(out.released_unix_ns, in.released_unix_ns);
}

// Written as kRefusedWithFingerprint (type 8); the old kRefused layout (type 5, no
// fingerprint) is still read, with fingerprint 0 (unknown).
TEST(RecordsTest, RefusedRoundTripsAndPinsItsLayout) {
  const RefusedRecord in{0x0123456789abcdefull, Reason::kAccountOnHold, -2, 0x1122334455667788ull};
  char buffer[kRefusedWithFingerprintRecordBytes];
  ASSERT_EQ(EncodeRefusedRecord(in, buffer), kRefusedWithFingerprintRecordBytes);
  const unsigned char expected[kRefusedWithFingerprintRecordBytes] = {
      0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,   // id
      0x06,                                             // reason
      0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   // refused_unix_ns = -2
      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};  // fingerprint
  EXPECT_EQ(std::memcmp(buffer, expected, sizeof(expected)), 0);
  RefusedRecord out;
  ASSERT_TRUE(DecodeRefusedRecord(buffer, sizeof(buffer), &out));
  EXPECT_EQ(out.id, in.id);
  EXPECT_EQ(out.reason, in.reason);
  EXPECT_EQ(out.refused_unix_ns, in.refused_unix_ns);
  EXPECT_EQ(out.fingerprint, in.fingerprint);
  // The old layout: its first 17 bytes.
  ASSERT_TRUE(DecodeRefusedRecord(buffer, kRefusedRecordBytes, &out));
  EXPECT_EQ(out.id, in.id);
  EXPECT_EQ(out.refused_unix_ns, in.refused_unix_ns);
  EXPECT_EQ(out.fingerprint, 0u);
  EXPECT_FALSE(DecodeRefusedRecord(buffer, kRefusedRecordBytes - 1, &out));
  EXPECT_FALSE(DecodeRefusedRecord(buffer, kRefusedWithFingerprintRecordBytes - 1, &out));
  // Only the refusals ingest stores: not malformed_id (never stored), not a BUSY reason, not
  // id_reused_with_different_fields (the id's answer is the original's).
  for (const Reason reason : {Reason::kNone, Reason::kMalformedId, Reason::kQueueFull,
                              Reason::kInsufficientFunds, Reason::kIdReusedWithDifferentFields,
                              Reason::kIdempotencyRetention}) {
    EncodeRefusedRecord({1, reason, 0}, buffer);
    EXPECT_FALSE(DecodeRefusedRecord(buffer, sizeof(buffer), &out)) << ReasonName(reason);
  }
  buffer[8] = static_cast<char>(kReasonCount);
  EXPECT_FALSE(DecodeRefusedRecord(buffer, sizeof(buffer), &out));
}

// The layout is a contract with every journal already on disk: pin it byte for byte.
TEST(RecordsTest, HoldPlacedRoundTripsAndRefusesAccountZero) {
  const HoldPlacedRecord in{0x0123456789abcdefull, 1'700'000'000'000'000'000};
  char buffer[kHoldPlacedRecordBytes];
  ASSERT_EQ(EncodeHoldPlacedRecord(in, buffer), kHoldPlacedRecordBytes);
  HoldPlacedRecord out;
  ASSERT_TRUE(DecodeHoldPlacedRecord(buffer, sizeof(buffer), &out));
  EXPECT_EQ(out.account, in.account);
  EXPECT_EQ(out.placed_unix_ns, in.placed_unix_ns);
  EXPECT_FALSE(DecodeHoldPlacedRecord(buffer, sizeof(buffer) - 1, &out));
  ASSERT_EQ(EncodeHoldPlacedRecord({0, 1}, buffer), kHoldPlacedRecordBytes);
  EXPECT_FALSE(DecodeHoldPlacedRecord(buffer, sizeof(buffer), &out));
}

TEST(RecordsTest, LayoutIsLittleEndianFieldByField) {
  char buffer[kHoldReleasedRecordBytes];
  EncodeHoldReleasedRecord({0x0123456789abcdefull, -2}, buffer);
  const unsigned char expected[kHoldReleasedRecordBytes] = {
      0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,   // account
      0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};  // released_unix_ns = -2
  EXPECT_EQ(std::memcmp(buffer, expected, sizeof(expected)), 0);

  char confirmed[kConfirmedRecordBytes];
  EncodeConfirmedRecord(SampleConfirmed(), confirmed);
  EXPECT_EQ(static_cast<unsigned char>(confirmed[0]), 0x08);  // seq, low byte first.
  EXPECT_EQ(static_cast<unsigned char>(confirmed[7]), 0x01);
  EXPECT_EQ(confirmed[kConfirmedRecordBytes - 9], 1);  // held, just before origin.
}

TEST(RecordsTest, DecodersRefuseWrongSizes) {
  char buffer[kConfirmedRecordBytes + 1] = {};
  EncodeConfirmedRecord(SampleConfirmed(), buffer);
  ConfirmedRecord confirmed;
  EXPECT_FALSE(DecodeConfirmedRecord(buffer, kConfirmedRecordBytes - 1, &confirmed));
  EXPECT_FALSE(DecodeConfirmedRecord(buffer, kConfirmedRecordBytes + 1, &confirmed));
  OutcomeRecord outcome;
  EXPECT_FALSE(DecodeOutcomeRecord(buffer, kOutcomeRecordBytes - 1, &outcome));
  HoldReleasedRecord released;
  EXPECT_FALSE(DecodeHoldReleasedRecord(buffer, kHoldReleasedRecordBytes + 1, &released));
}

TEST(RecordsTest, DecodersRefuseOutOfRangeFields) {
  char confirmed[kConfirmedRecordBytes];
  EncodeConfirmedRecord(SampleConfirmed(), confirmed);
  confirmed[kConfirmedRecordBytes - 9] = 2;  // held must be 0 or 1.
  ConfirmedRecord c;
  EXPECT_FALSE(DecodeConfirmedRecord(confirmed, sizeof(confirmed), &c));

  constexpr size_t kKindOffset = 16, kVerifierOffset = 17, kReasonOffset = 18,
                   kCompensationOffset = 19, kHeldOffset = 20;
  const std::pair<size_t, char> bad_fields[] = {
      {kKindOffset, 0},          {kKindOffset, 4},         {kVerifierOffset, kVerifiersMax + 1},
      {kReasonOffset, kReasonCount}, {kCompensationOffset, 4}, {kHeldOffset, 7}};
  for (const auto& [offset, value] : bad_fields) {
    char outcome[kOutcomeRecordBytes];
    EncodeOutcomeRecord(SampleOutcome(), outcome);
    outcome[offset] = value;
    OutcomeRecord o;
    EXPECT_FALSE(DecodeOutcomeRecord(outcome, sizeof(outcome), &o)) << "offset " << offset;
  }
}

TEST(RecordsTest, KnownTypes) {
  EXPECT_FALSE(IsKnownRecordType(0));
  EXPECT_TRUE(IsKnownRecordType(1));
  EXPECT_TRUE(IsKnownRecordType(2));
  EXPECT_TRUE(IsKnownRecordType(3));
  EXPECT_TRUE(IsKnownRecordType(4));
  EXPECT_TRUE(IsKnownRecordType(5));
  EXPECT_TRUE(IsKnownRecordType(6));
  EXPECT_TRUE(IsKnownRecordType(7));
  EXPECT_TRUE(IsKnownRecordType(8));
  EXPECT_FALSE(IsKnownRecordType(9));
  for (int type = 10; type <= 13; ++type) EXPECT_TRUE(IsKnownRecordType(type)) << type;
  EXPECT_FALSE(IsKnownRecordType(14));
}

TEST(RecordsTest, AccountRecordsRoundTripAndRefuseDamage) {
  AccountCreatedRecord created;
  created.account = {.id = 1ull << 40, .currency = PackCurrency("EUR"),
                     .opening_balance_minor = -5, .overdraft_limit_minor = 9,
                     .flags = kAccountCreditsMustNotExceedDebits,
                     .limits = {.transaction_minor_max = 3, .daily_minor_max = 4,
                                .daily_count_max = 5},
                     .user_data = 77};
  created.created_unix_ns = 123;
  char buffer[kAccountRecordBytesMax];
  ASSERT_EQ(EncodeAccountCreatedRecord(created, buffer), kAccountCreatedRecordBytes);
  AccountCreatedRecord created_back;
  ASSERT_TRUE(DecodeAccountCreatedRecord(buffer, kAccountCreatedRecordBytes, &created_back));
  EXPECT_EQ(created_back.account, created.account);
  EXPECT_EQ(created_back.created_unix_ns, 123);
  EXPECT_FALSE(DecodeAccountCreatedRecord(buffer, kAccountCreatedRecordBytes - 1, &created_back));

  ASSERT_EQ(EncodeAccountFrozenRecord({9, false, 44}, buffer), kAccountFrozenRecordBytes);
  AccountFrozenRecord frozen;
  ASSERT_TRUE(DecodeAccountFrozenRecord(buffer, kAccountFrozenRecordBytes, &frozen));
  EXPECT_EQ(frozen.id, 9u);
  EXPECT_FALSE(frozen.frozen);
  EXPECT_EQ(frozen.at_unix_ns, 44);
  buffer[8] = 2;  // Not a boolean.
  EXPECT_FALSE(DecodeAccountFrozenRecord(buffer, kAccountFrozenRecordBytes, &frozen));

  ASSERT_EQ(EncodeAccountClosedRecord({0, 1}, buffer), kAccountClosedRecordBytes);
  AccountClosedRecord closed;
  EXPECT_FALSE(DecodeAccountClosedRecord(buffer, kAccountClosedRecordBytes, &closed));  // Id 0.

  AccountLimitsRecord limits{.id = 6, .limits = {7, 8, 9}, .at_unix_ns = 10};
  ASSERT_EQ(EncodeAccountLimitsRecord(limits, buffer), kAccountLimitsRecordBytes);
  AccountLimitsRecord limits_back;
  ASSERT_TRUE(DecodeAccountLimitsRecord(buffer, kAccountLimitsRecordBytes, &limits_back));
  EXPECT_EQ(limits_back.limits, limits.limits);
  EXPECT_EQ(limits_back.at_unix_ns, 10);
}

OpeningRecord SampleOpening() {
  OpeningRecord record;
  record.accounts = 10'000;
  record.accounts_hash = 0x0123456789abcdefull;
  record.currency_count = 2;
  record.currencies[0] = {PackCurrency("EUR"), 4'000, 4'000'000'000, 0};
  record.currencies[1] = {PackCurrency("USD"), 6'000, -5, std::numeric_limits<int64_t>::max()};
  return record;
}

TEST(RecordsTest, OpeningRoundTripsEveryFieldAndRefusesBadLayouts) {
  char out[kOpeningRecordBytesMax];
  const size_t size = EncodeOpeningRecord(SampleOpening(), out);
  EXPECT_EQ(size, 20u + 2 * 28u);
  OpeningRecord decoded;
  ASSERT_TRUE(DecodeOpeningRecord(out, size, &decoded));
  EXPECT_EQ(decoded, SampleOpening());
  EXPECT_FALSE(DecodeOpeningRecord(out, size - 1, &decoded)) << "size must match the count";
  EXPECT_FALSE(DecodeOpeningRecord(out, 19, &decoded));
  OpeningRecord unordered = SampleOpening();
  std::swap(unordered.currencies[0], unordered.currencies[1]);
  EncodeOpeningRecord(unordered, out);
  EXPECT_FALSE(DecodeOpeningRecord(out, size, &decoded)) << "currencies out of order";
  OpeningRecord empty;
  EXPECT_EQ(EncodeOpeningRecord(empty, out), 20u);
  ASSERT_TRUE(DecodeOpeningRecord(out, 20, &decoded));
  EXPECT_EQ(decoded, empty);
  out[16] = static_cast<char>(kOpeningCurrenciesMax + 1);  // currency_count.
  EXPECT_FALSE(DecodeOpeningRecord(out, 20, &decoded));
}

}  // namespace
}  // namespace vouch::journal
