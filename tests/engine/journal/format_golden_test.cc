// Pins the journal's on-disk bytes: one record of every payload type, a segment header and a
// record header, each compared with bytes that the journal's encoders produced before its
// coding helper was replaced by engine/common/byte_coding.h. A journal written by one build must
// be read by the next, so any change here is a format change (a new record type or segment
// version), never a refactoring. Fails on a coding helper with the wrong byte order or width.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "engine/journal/records.h"
#include "engine/journal/segment_format.h"
#include "gtest/gtest.h"

namespace vouch::journal {
namespace {

std::string Hex(const char* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < size; ++i) {
    const auto byte = static_cast<uint8_t>(bytes[i]);
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0xf];
  }
  return hex;
}

// Encodes with `encode` into a buffer of kRecordPayloadBytesMax and returns the hex of what it
// wrote.
template <typename Encode>
std::string Encoded(Encode encode) {
  static char buffer[kRecordPayloadBytesMax];
  return Hex(buffer, encode(buffer));
}

constexpr int64_t kNegative = -0x0102030405060708;

TEST(JournalFormatGoldenTest, ConfirmedRecord) {
  ConfirmedRecord r;
  r.seq = 0x0102030405060708ull;
  r.txn = {.id = 0xfedcba9876543210ull,
           .source_account = 11,
           .destination_account = std::numeric_limits<uint64_t>::max(),
           .amount_minor = kNegative,
           .currency = PackCurrency("EUR"),
           .merchant_category = 5411,
           .merchant_id = 77,
           .country = PackCountry("GB"),
           .device_id = 0x8000000000000001ull,
           .client_timestamp_ns = std::numeric_limits<int64_t>::min()};
  r.confirmed_unix_ns = 1700000000123456789;
  r.held = true;
  r.origin = 0xabcdef;
  EXPECT_EQ(Encoded([&](char* out) { return EncodeConfirmedRecord(r, out); }),
            "08070605040302011032547698badcfe0b00000000000000ffffffffffffffff"
            "f8f8f9fafbfcfdfe52554500231500004d000000000000004247010000000000"
            "0080000000000000008015cd853dfe9c971701efcdab0000000000");
}

TEST(JournalFormatGoldenTest, OutcomeRecord) {
  OutcomeRecord r;
  r.outcome = {.id = 42,
               .seq = 0x1122334455667788ull,
               .kind = OutcomeKind::kLateFailed,
               .verifier = VerifierId::kLedger,
               .reason = Reason::kInsufficientFunds,
               .compensation = kCompensationReversed | kCompensationAccountHeld,
               .held = true,
               .source_account = 9,
               .amount_minor = std::numeric_limits<int64_t>::max(),
               .currency = PackCurrency("JPY"),
               .confirmed_ns = -5,
               .decided_ns = 6,
               .origin = 0xffffffffffffffffull};
  r.decided_unix_ns = 1700000000999999999;
  r.confirmed_unix_ns = 1700000000000000001;
  EXPECT_EQ(Encoded([&](char* out) { return EncodeOutcomeRecord(r, out); }),
            "2a00000000000000887766554433221102021e03010900000000000000ffffff"
            "ffffffff7f59504a00fbffffffffffffff0600000000000000ffffffffffffff"
            "ffffc9c471fe9c971701002a36fe9c9717");
}

TEST(JournalFormatGoldenTest, HoldRecords) {
  EXPECT_EQ(Encoded([](char* out) {
              return EncodeHoldReleasedRecord({0x0123456789abcdefull, -2}, out);
            }),
            "efcdab8967452301feffffffffffffff");
  EXPECT_EQ(Encoded([](char* out) {
              return EncodeHoldPlacedRecord({77, kNegative}, out);
            }),
            "4d00000000000000f8f8f9fafbfcfdfe");
}

TEST(JournalFormatGoldenTest, OpeningRecord) {
  OpeningRecord r;
  r.accounts = 10'000;
  r.accounts_hash = 0x0123456789abcdefull;
  r.currency_count = 2;
  r.currencies[0] = {PackCurrency("EUR"), 4'000, 4'000'000'000, 0};
  r.currencies[1] = {PackCurrency("USD"), 6'000, -5, std::numeric_limits<int64_t>::max()};
  EXPECT_EQ(Encoded([&](char* out) { return EncodeOpeningRecord(r, out); }),
            "1027000000000000efcdab89674523010200000052554500a00f000000000000"
            "00286bee000000000000000000000000445355007017000000000000fbffffff"
            "ffffffffffffffffffffff7f");
}

TEST(JournalFormatGoldenTest, RefusedRecord) {
  const RefusedRecord r{.id = 0x0a0b0c0d0e0f1011ull,
                        .reason = Reason::kInsufficientFunds,
                        .refused_unix_ns = kNegative,
                        .fingerprint = 0xdeadbeefcafef00dull};
  EXPECT_EQ(Encoded([&](char* out) { return EncodeRefusedRecord(r, out); }),
            "11100f0e0d0c0b0a1ef8f8f9fafbfcfdfe0df0fecaefbeadde");
}

TEST(JournalFormatGoldenTest, AccountRecords) {
  AccountCreatedRecord created;
  created.account = {.id = 1ull << 40,
                     .currency = PackCurrency("EUR"),
                     .opening_balance_minor = -5,
                     .overdraft_limit_minor = 9,
                     .flags = kAccountCreditsMustNotExceedDebits,
                     .limits = {.transaction_minor_max = 3,
                                .daily_minor_max = kNegative,
                                .daily_count_max = 0xfffffffe},
                     .user_data = 77};
  created.created_unix_ns = 123;
  EXPECT_EQ(Encoded([&](char* out) { return EncodeAccountCreatedRecord(created, out); }),
            "000000000001000052554500fbffffffffffffff090000000000000002000000"
            "0300000000000000f8f8f9fafbfcfdfefeffffff4d000000000000007b000000"
            "00000000");
  EXPECT_EQ(Encoded([](char* out) {
              return EncodeAccountFrozenRecord({9, true, 44}, out);
            }),
            "0900000000000000012c00000000000000");
  EXPECT_EQ(Encoded([](char* out) {
              return EncodeAccountClosedRecord({10, kNegative}, out);
            }),
            "0a00000000000000f8f8f9fafbfcfdfe");
  const AccountLimitsRecord limits{.id = 6, .limits = {7, 8, 9}, .at_unix_ns = 10};
  EXPECT_EQ(Encoded([&](char* out) { return EncodeAccountLimitsRecord(limits, out); }),
            "060000000000000007000000000000000800000000000000090000000a000000"
            "00000000");
}

TEST(JournalFormatGoldenTest, SegmentAndRecordHeaders) {
  char segment[kSegmentHeaderBytes];
  EncodeSegmentHeader(0x0102030405060708ull, segment);
  EXPECT_EQ(Hex(segment, sizeof(segment)), "564f5543484a30310100000008070605040302018409795b");
  uint64_t first_record_index = 0;
  ASSERT_TRUE(DecodeSegmentHeader(segment, &first_record_index));
  EXPECT_EQ(first_record_index, 0x0102030405060708ull);

  const char payload[] = "payload";
  char header[kRecordHeaderBytes];
  EncodeRecordHeader(RecordType::kHoldPlaced, 0x1122334455667788ull, payload, sizeof(payload) - 1,
                     header);
  EXPECT_EQ(Hex(header, sizeof(header)), "070000003135c175068877665544332211");
}

}  // namespace
}  // namespace vouch::journal
