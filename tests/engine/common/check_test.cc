// VOUCH_CHECK stays on where `assert` is compiled out, and the invariants that protect money are
// VOUCH_CHECKs: breaking one stops the process with the check's message.
//
// Method: death tests. This file defines NDEBUG itself, so the first test shows the difference in
// any build; the others break an invariant of a real component and expect VOUCH_CHECK's message
// ("vouch: check failed at ..."), which a plain assert (message "Assertion ... failed", and gone
// under -c opt) does not print. `bazel test -c opt //tests/engine/common:check_test` runs the
// same tests with every component built with NDEBUG.
#ifndef NDEBUG
#define NDEBUG
#endif
#include "engine/common/check.h"

#include <cassert>

#include "engine/ring/in_flight_ring.h"
#include "gtest/gtest.h"
#include "engine/ledger/ledger.h"

namespace vouch {
namespace {

constexpr int64_t kOpeningBalance = 1'000'000;
const CurrencyCode kUsd = PackCurrency("USD");

Transaction Transfer(uint64_t id, uint64_t from, uint64_t to, int64_t amount_minor) {
  Transaction txn;
  txn.id = id;
  txn.source_account = from;
  txn.destination_account = to;
  txn.amount_minor = amount_minor;
  txn.currency = kUsd;
  return txn;
}

TEST(CheckDeathTest, StaysOnWhereAssertIsCompiledOut) {
  assert(false && "compiled out: this file defines NDEBUG");
  EXPECT_DEATH(VOUCH_CHECK(1 + 1 == 3, "arithmetic"),
               "vouch: check failed at .*check_test.cc:[0-9]+: 1 \\+ 1 == 3 \\(arithmetic\\)");
}

TEST(CheckDeathTest, PassingCheckDoesNothing) {
  int evaluated = 0;
  VOUCH_CHECK(++evaluated == 1, "evaluated once");
  EXPECT_EQ(evaluated, 1);
}

class LedgerCheckDeathTest : public ::testing::Test {
 protected:
  LedgerCheckDeathTest() : ledger(4, 8) {
    EXPECT_TRUE(ledger.OpenAccount({1, kUsd, kOpeningBalance, 0}).ok());
    EXPECT_TRUE(ledger.OpenAccount({2, kUsd, kOpeningBalance, 0}).ok());
  }
  ledger::Ledger ledger;
};

TEST_F(LedgerCheckDeathTest, SettlingWhatWasNeverReservedStops) {
  EXPECT_DEATH(ledger.Commit(7), "vouch: check failed.*only a pending reservation is settled");
}

TEST_F(LedgerCheckDeathTest, SettlingTwiceStops) {
  ASSERT_EQ(ledger.Reserve(1, Transfer(1, 1, 2, 100)), Reason::kNone);
  ledger.Void(1);
  EXPECT_DEATH(ledger.Void(1), "vouch: check failed.*only a pending reservation is settled");
}

TEST_F(LedgerCheckDeathTest, ReservingOneTransactionTwiceStops) {
  ASSERT_EQ(ledger.Reserve(1, Transfer(1, 1, 2, 100)), Reason::kNone);
  EXPECT_DEATH((void)ledger.Reserve(1, Transfer(1, 1, 2, 100)),
               "vouch: check failed.*a transaction is reserved once");
}

TEST(CheckDeathTest, FreeingTheRingOutOfOrderStops) {
  InFlightRing ring(4);
  Sequence first = 0;
  Sequence second = 0;
  ring.Publish(ring.Claim(&first), first);
  ring.Publish(ring.Claim(&second), second);
  EXPECT_DEATH(ring.Free(second), "vouch: check failed.*entries are freed in sequence order");
}

}  // namespace
}  // namespace vouch
