// Tests for engine/wire: field-by-field conversion, the wire contract's enum values, and the
// promise that the hot direction does not allocate.
//
// Method for the allocation tests: this binary replaces the global operator new with one that
// counts calls (protobuf's shared library binds to it too), and a test compares the count
// before and after a conversion into a message that has already held a value once.
#include "engine/wire/convert.h"

#include <google/protobuf/util/message_differencer.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace {
// relaxed: a plain event counter, read on the thread that allocates.
std::atomic<int64_t> g_allocation_count{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace vouch::wire {
namespace {

int64_t AllocationCount() { return g_allocation_count.load(std::memory_order_relaxed); }

std::string WireName(std::string_view prefix, std::string_view engine_name) {
  std::string name(prefix);
  for (char c : engine_name) name.push_back(static_cast<char>(std::toupper(c)));
  return name;
}

v1::Transaction FullWireTransaction() {
  v1::Transaction t;
  t.set_id(0xfedcba9876543210);
  t.set_source_account(11);
  t.set_destination_account(22);
  t.set_amount(123'456);
  t.set_currency("EUR");
  t.set_merchant_id(333);
  t.set_merchant_category(5411);
  t.set_country("GB");
  t.set_device_id(444);
  t.set_client_timestamp_ns(1'700'000'000'123'456'789);
  return t;
}

TEST(TransactionTest, RoundTripKeepsEveryField) {
  const v1::Transaction wire = FullWireTransaction();
  Transaction txn;
  ASSERT_EQ(FromProto(wire, &txn), Reason::kNone);
  EXPECT_EQ(txn.id, 0xfedcba9876543210u);
  EXPECT_EQ(txn.source_account, 11u);
  EXPECT_EQ(txn.destination_account, 22u);
  EXPECT_EQ(txn.amount_minor, 123'456);
  EXPECT_EQ(txn.currency, PackCurrency("EUR"));
  EXPECT_EQ(txn.merchant_id, 333u);
  EXPECT_EQ(txn.merchant_category, 5411u);
  EXPECT_EQ(txn.country, PackCountry("GB"));
  EXPECT_EQ(txn.device_id, 444u);
  EXPECT_EQ(txn.client_timestamp_ns, 1'700'000'000'123'456'789);

  v1::Transaction back;
  ToProto(txn, &back);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(wire, back))
      << wire.DebugString() << "vs\n" << back.DebugString();
}

TEST(TransactionTest, CurrencyThatDoesNotPackIsUnknownCurrency) {
  for (const char* currency : {"", "usd", "US", "USDX", "U$D", "US "}) {
    v1::Transaction wire = FullWireTransaction();
    wire.set_currency(currency);
    Transaction txn;
    EXPECT_EQ(FromProto(wire, &txn), Reason::kUnknownCurrency) << '"' << currency << '"';
    EXPECT_EQ(txn.currency, 0u);
    EXPECT_EQ(txn.id, wire.id()) << "the caller needs the id to answer";
  }
}

TEST(TransactionTest, UnsupportedButWellFormedCurrencyIsLeftToTheEngine) {
  v1::Transaction wire = FullWireTransaction();
  wire.set_currency("XXX");
  Transaction txn;
  EXPECT_EQ(FromProto(wire, &txn), Reason::kNone);
  EXPECT_EQ(txn.currency, PackCurrency("XXX"));
}

TEST(TransactionTest, CountryThatDoesNotPackIsUnknownNotAnError) {
  for (const char* country : {"", "gb", "GBR", "G", "G1"}) {
    v1::Transaction wire = FullWireTransaction();
    wire.set_country(country);
    Transaction txn;
    EXPECT_EQ(FromProto(wire, &txn), Reason::kNone) << '"' << country << '"';
    EXPECT_EQ(txn.country, 0) << '"' << country << '"';
  }
}

TEST(TransactionTest, ZeroCodesBecomeEmptyStrings) {
  v1::Transaction wire;
  ToProto(Transaction{}, &wire);
  EXPECT_EQ(wire.currency(), "");
  EXPECT_EQ(wire.country(), "");
}

// Every engine value has a wire value with the same number and the matching name, and the wire
// enum has no value the engine lacks. Engine enums are uint8_t, so all 256 values are walked.
TEST(EnumTest, ReasonMatchesTheEngine) {
  for (int i = 0; i < 256; ++i) {
    const auto reason = static_cast<Reason>(i);
    const std::string_view name = ReasonName(reason);
    if (name == "unknown") {
      EXPECT_FALSE(v1::Reason_IsValid(i)) << i;
      continue;
    }
    ASSERT_LT(i, kReasonCount);
    ASSERT_TRUE(v1::Reason_IsValid(i)) << name;
    EXPECT_EQ(v1::Reason_Name(ToProto(reason)), WireName("REASON_", name));
    Reason back = Reason::kOverLimit;
    ASSERT_TRUE(FromProto(ToProto(reason), &back));
    EXPECT_EQ(back, reason);
  }
}

TEST(EnumTest, ConfirmStatusMatchesTheEngine) {
  for (int i = 0; i < 256; ++i) {
    const auto status = static_cast<ConfirmStatus>(i);
    const std::string_view name = ConfirmStatusName(status);
    // PENDING is engine-only (a held answer still to come); it never goes on the wire.
    if (name == "UNKNOWN" || status == ConfirmStatus::kPending) {
      ConfirmStatus unused;
      EXPECT_FALSE(FromProto(static_cast<v1::ConfirmStatus>(i), &unused)) << i;
      continue;
    }
    EXPECT_EQ(v1::ConfirmStatus_Name(ToProto(status)), WireName("CONFIRM_STATUS_", name));
    ConfirmStatus back = ConfirmStatus::kBusy;
    ASSERT_TRUE(FromProto(ToProto(status), &back));
    EXPECT_EQ(back, status);
  }
}

TEST(EnumTest, OutcomeKindMatchesTheEngine) {
  for (int i = 0; i < 256; ++i) {
    const auto kind = static_cast<OutcomeKind>(i);
    const std::string_view name = OutcomeKindName(kind);
    if (name == "UNKNOWN") {
      OutcomeKind unused;
      EXPECT_FALSE(FromProto(static_cast<v1::OutcomeKind>(i), &unused)) << i;
      continue;
    }
    EXPECT_EQ(v1::OutcomeKind_Name(ToProto(kind)), WireName("OUTCOME_KIND_", name));
    OutcomeKind back = OutcomeKind::kVerified;
    ASSERT_TRUE(FromProto(ToProto(kind), &back));
    EXPECT_EQ(back, kind);
  }
}

TEST(EnumTest, VerifierMatchesTheEngine) {
  for (int i = 0; i < 256; ++i) {
    const auto verifier = static_cast<VerifierId>(i);
    const std::string_view name = VerifierName(verifier);
    if (name == "unknown") {
      VerifierId unused;
      EXPECT_FALSE(FromProto(static_cast<v1::Verifier>(i), &unused)) << i;
      continue;
    }
    EXPECT_EQ(v1::Verifier_Name(ToProto(verifier)), WireName("VERIFIER_", name));
    VerifierId back = VerifierId::kLedger;
    ASSERT_TRUE(FromProto(ToProto(verifier), &back));
    EXPECT_EQ(back, verifier);
  }
}

TEST(EnumTest, FromProtoLeavesOutUnchangedForValuesWithoutEngineMeaning) {
  Reason reason = Reason::kOverLimit;
  EXPECT_FALSE(FromProto(static_cast<v1::Reason>(8), &reason));  // A gap in the numbering.
  EXPECT_FALSE(FromProto(static_cast<v1::Reason>(1000), &reason));  // From a newer peer.
  EXPECT_EQ(reason, Reason::kOverLimit);

  ConfirmStatus status = ConfirmStatus::kRejected;
  EXPECT_FALSE(FromProto(v1::CONFIRM_STATUS_UNSPECIFIED, &status));
  EXPECT_EQ(status, ConfirmStatus::kRejected);

  OutcomeKind kind = OutcomeKind::kLateFailed;
  EXPECT_FALSE(FromProto(v1::OUTCOME_KIND_UNSPECIFIED, &kind));
  EXPECT_EQ(kind, OutcomeKind::kLateFailed);
}

constexpr int64_t kOffsetNs = 1'600'000'000'000'000'000;

TEST(ConfirmationTest, CopiesFieldsAndShiftsTheDeadlineToUnixTime) {
  const Confirmation c{.id = 42,
                       .status = ConfirmStatus::kConfirmed,
                       .reason = Reason::kNone,
                       .seq = 7,
                       .deadline_ns = 5'000,
                       .duplicate = true,
                       .held = true};
  v1::Confirmation wire;
  ToProto(c, kOffsetNs, &wire);
  EXPECT_EQ(wire.transaction_id(), 42u);
  EXPECT_EQ(wire.seq(), 7u);
  EXPECT_EQ(wire.status(), v1::CONFIRM_STATUS_CONFIRMED);
  EXPECT_EQ(wire.reason(), v1::REASON_NONE);
  EXPECT_EQ(wire.deadline_unix_ns(), kOffsetNs + 5'000);
  EXPECT_TRUE(wire.duplicate());
  EXPECT_TRUE(wire.held());
}

TEST(ConfirmationTest, NoDeadlineStaysZero) {
  const Confirmation c{.id = 42, .status = ConfirmStatus::kBusy, .reason = Reason::kQueueFull};
  v1::Confirmation wire;
  ToProto(c, kOffsetNs, &wire);
  EXPECT_EQ(wire.status(), v1::CONFIRM_STATUS_BUSY);
  EXPECT_EQ(wire.reason(), v1::REASON_QUEUE_FULL);
  EXPECT_EQ(wire.seq(), 0u);
  EXPECT_EQ(wire.deadline_unix_ns(), 0);
}

TEST(OutcomeTest, CopiesFieldsSplitsCompensationAndShiftsTimes) {
  const Outcome o{.id = 42,
                  .seq = 7,
                  .kind = OutcomeKind::kLateFailed,
                  .verifier = VerifierId::kLedger,
                  .reason = Reason::kInsufficientFunds,
                  .compensation = kCompensationReversed | kCompensationAccountHeld,
                  .held = true,
                  .source_account = 11,
                  .amount_minor = 999,
                  .currency = PackCurrency("JPY"),
                  .confirmed_ns = 1'000,
                  .decided_ns = 3'000};
  v1::Outcome wire;
  ToProto(o, kOffsetNs, &wire);
  EXPECT_EQ(wire.transaction_id(), 42u);
  EXPECT_EQ(wire.seq(), 7u);
  EXPECT_EQ(wire.kind(), v1::OUTCOME_KIND_LATE_FAILED);
  EXPECT_EQ(wire.verifier(), v1::VERIFIER_LEDGER);
  EXPECT_EQ(wire.reason(), v1::REASON_INSUFFICIENT_FUNDS);
  EXPECT_TRUE(wire.reversed());
  EXPECT_TRUE(wire.account_held());
  EXPECT_TRUE(wire.held());
  EXPECT_EQ(wire.source_account(), 11u);
  EXPECT_EQ(wire.amount(), 999);
  EXPECT_EQ(wire.currency(), "JPY");
  EXPECT_EQ(wire.confirmed_unix_ns(), kOffsetNs + 1'000);
  EXPECT_EQ(wire.decided_unix_ns(), kOffsetNs + 3'000);
}

TEST(OutcomeTest, EachCompensationBitMapsToItsOwnField) {
  Outcome o{.kind = OutcomeKind::kLateTimeout, .compensation = kCompensationAccountHeld};
  v1::Outcome wire;
  ToProto(o, kOffsetNs, &wire);
  EXPECT_FALSE(wire.reversed());
  EXPECT_TRUE(wire.account_held());
  o.compensation = kCompensationReversed;
  ToProto(o, kOffsetNs, &wire);
  EXPECT_TRUE(wire.reversed());
  EXPECT_FALSE(wire.account_held());
}

TEST(AllocationTest, FromProtoDoesNotAllocate) {
  const v1::Transaction wire = FullWireTransaction();
  Transaction txn;
  const int64_t before = AllocationCount();
  const Reason reason = FromProto(wire, &txn);
  EXPECT_EQ(AllocationCount() - before, 0);
  EXPECT_EQ(reason, Reason::kNone);
}

TEST(AllocationTest, ToProtoIntoAReusedMessageDoesNotAllocate) {
  Transaction txn;
  ASSERT_EQ(FromProto(FullWireTransaction(), &txn), Reason::kNone);
  const Confirmation confirmation{.id = 1, .status = ConfirmStatus::kConfirmed, .seq = 1};
  const Outcome outcome{.id = 1, .seq = 1, .currency = PackCurrency("USD")};
  v1::Transaction wire_txn;
  v1::Confirmation wire_confirmation;
  v1::Outcome wire_outcome;
  const int64_t before_warm_up = AllocationCount();
  ToProto(txn, &wire_txn);  // Warm-up: the first call allocates the string fields.
  ToProto(outcome, kOffsetNs, &wire_outcome);
  ASSERT_GT(AllocationCount() - before_warm_up, 0) << "the counting operator new is not in use";

  txn.currency = PackCurrency("GBP");
  txn.country = PackCountry("FR");
  const int64_t before = AllocationCount();
  ToProto(txn, &wire_txn);
  ToProto(confirmation, kOffsetNs, &wire_confirmation);
  ToProto(outcome, kOffsetNs, &wire_outcome);
  EXPECT_EQ(AllocationCount() - before, 0);
  EXPECT_EQ(wire_txn.currency(), "GBP");
  EXPECT_EQ(wire_txn.country(), "FR");
}

}  // namespace
}  // namespace vouch::wire
