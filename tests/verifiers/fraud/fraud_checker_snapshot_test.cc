// Tests of FraudChecker::SaveState and RestoreState.
//
// Method: a seeded stream of calls (hot accounts that burst, country changes, outsized amounts,
// blocked merchants and devices, slightly out-of-order times, more accounts than a small table
// holds) drives a checker; its snapshot is restored into a second checker. Equal StateHash is
// not enough, because the hash could miss a field: the real test is that both checkers then
// give the same verdict to every one of thousands of further calls, and keep equal hashes and
// counters. Damage is tested exhaustively on a small snapshot: every truncation and every
// single flipped header byte must be refused and leave the target unchanged (damage inside the
// payload is the engine snapshot file's CRC32C's to catch). An old-format snapshot, written by
// the build before the format's checksum was dropped, is kept under testdata/ and must restore.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/types/reason.h"
#include "engine/types/transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/verifiers/testing/snapshot_damage.h"
#include "verifiers/fraud/fraud_checker.h"
#include "verifiers/fraud/fraud_rules.h"

namespace vouch::fraud {
namespace {

using ::testing::HasSubstr;
using verifiers::testing::EditPayload;
using verifiers::testing::ExpectOldFormatReadsAsCurrent;
using verifiers::testing::ExpectRefusesDamage;
using verifiers::testing::Overwrite;
using verifiers::testing::ReadTestFile;
using verifiers::testing::WithVersion;

constexpr int64_t kSecondNs = 1'000'000'000;
constexpr int64_t kStartNs = 1'000 * kSecondNs;
const CountryCode kCountries[] = {PackCountry("GB"), PackCountry("FR"), PackCountry("DE")};

constexpr Reason kFraudReasons[] = {Reason::kBlockedMerchant, Reason::kBlockedCountry,
                                    Reason::kBlockedDevice,   Reason::kImpossibleTravel,
                                    Reason::kVelocityCount,   Reason::kVelocityAmount,
                                    Reason::kAmountAnomaly};

FraudRules Rules() {
  FraudRules rules;
  rules.blocked_merchants = {510};
  rules.blocked_countries = {PackCountry("KP")};
  rules.blocked_devices = {920};
  rules.velocity_window_ns = kSecondNs;
  rules.velocity_count_max = 6;
  rules.velocity_amount_max_minor = 40'000;
  return rules;
}

struct Call {
  Transaction txn;
  int64_t now_ns;
};

// Half the calls come from 40 hot accounts (bursts: velocity), the rest from `accounts`.
std::vector<Call> Calls(uint64_t seed, int count, uint64_t accounts) {
  std::mt19937_64 rng(seed);
  std::vector<Call> calls;
  int64_t clock_ns = kStartNs;
  for (int i = 0; i < count; ++i) {
    clock_ns += static_cast<int64_t>(rng() % 4'000'000);
    Call call;
    // One call in 16 carries a confirm time up to 5 ms old.
    call.now_ns = clock_ns - (rng() % 16 == 0 ? static_cast<int64_t>(rng() % 5'000'000) : 0);
    Transaction& txn = call.txn;
    txn.id = i + 1;
    txn.source_account = 1 + (rng() % 2 == 0 ? rng() % 40 : rng() % accounts);
    txn.destination_account = 1 + rng() % accounts;
    txn.amount_minor = 100 + static_cast<int64_t>(rng() % 3'000);
    if (rng() % 60 == 0) txn.amount_minor *= 50;  // Outsized: the anomaly rule.
    txn.currency = PackCurrency("USD");
    // Each account's home country, sometimes another (travel), sometimes unknown or blocked.
    const uint64_t pick = rng() % 40;
    txn.country = pick == 0   ? PackCountry("KP")
                  : pick < 3  ? kCountries[rng() % 3]
                  : pick < 10 ? 0
                              : kCountries[txn.source_account % 3];
    txn.merchant_id = 500 + rng() % 100;
    txn.device_id = 900 + rng() % 100;
    calls.push_back(call);
  }
  return calls;
}

void Drive(FraudChecker& checker, const std::vector<Call>& calls, size_t first, size_t end) {
  for (size_t i = first; i < end; ++i) (void)checker.Check(calls[i].txn, calls[i].now_ns);
}

std::string Save(const FraudChecker& checker) {
  std::string bytes;
  EXPECT_TRUE(checker.SaveState(&bytes).ok());
  return bytes;
}

void ExpectSameCounters(const FraudChecker& a, const FraudChecker& b) {
  EXPECT_EQ(a.checks(), b.checks());
  EXPECT_EQ(a.state_evictions(), b.state_evictions());
  for (int reason = 0; reason < kReasonCount; ++reason) {
    EXPECT_EQ(a.failures(static_cast<Reason>(reason)), b.failures(static_cast<Reason>(reason)))
        << ReasonName(static_cast<Reason>(reason));
  }
}

// Every further call gets the same verdict from both, and the hashes stay equal.
void ExpectSameFuture(FraudChecker& a, FraudChecker& b, const std::vector<Call>& calls,
                      size_t first) {
  for (size_t i = first; i < calls.size(); ++i) {
    ASSERT_EQ(a.Check(calls[i].txn, calls[i].now_ns), b.Check(calls[i].txn, calls[i].now_ns))
        << "call " << i;
    if (i % 500 == 0) {
      ASSERT_EQ(a.StateHash(), b.StateHash()) << "after call " << i;
    }
  }
  EXPECT_EQ(a.StateHash(), b.StateHash());
  ExpectSameCounters(a, b);
}

// A small table (it evicts all the time) and a large one (it never needs to).
class FraudSnapshotTest : public ::testing::TestWithParam<size_t> {};

TEST_P(FraudSnapshotTest, RestoredCheckerBehavesIdentically) {
  const std::vector<Call> calls = Calls(/*seed=*/11, 30'000, /*accounts=*/3'000);
  FraudChecker saved(Rules(), GetParam());
  Drive(saved, calls, 0, calls.size() / 2);
  for (Reason reason : kFraudReasons) EXPECT_GT(saved.failures(reason), 0u) << ReasonName(reason);
  EXPECT_EQ(saved.state_evictions() > 0, GetParam() < 3'000);

  FraudChecker restored(Rules(), GetParam());
  ASSERT_TRUE(restored.RestoreState(Save(saved)).ok());
  EXPECT_EQ(restored.StateHash(), saved.StateHash());
  ExpectSameCounters(saved, restored);
  ExpectSameFuture(saved, restored, calls, calls.size() / 2);
}

TEST_P(FraudSnapshotTest, SavingIsDeterministicAndRoundTripsByteForByte) {
  const std::vector<Call> calls = Calls(/*seed=*/12, 10'000, /*accounts=*/3'000);
  FraudChecker a(Rules(), GetParam());
  FraudChecker b(Rules(), GetParam());
  Drive(a, calls, 0, calls.size());
  Drive(b, calls, 0, calls.size());
  const std::string bytes = Save(a);
  EXPECT_EQ(Save(a), bytes);  // Saving changes nothing.
  EXPECT_EQ(Save(b), bytes);  // Same history, same bytes.

  FraudChecker restored(Rules(), GetParam());
  ASSERT_TRUE(restored.RestoreState(bytes).ok());
  EXPECT_EQ(Save(restored), bytes);
}

INSTANTIATE_TEST_SUITE_P(Capacities, FraudSnapshotTest, ::testing::Values(256, 65'536));

TEST(FraudSnapshot, EmptyCheckerRoundTrips) {
  FraudChecker empty(Rules(), 64);
  FraudChecker restored(Rules(), 64);
  ASSERT_TRUE(restored.RestoreState(Save(empty)).ok());
  EXPECT_EQ(restored.StateHash(), empty.StateHash());
  EXPECT_EQ(Save(restored), Save(empty));
}

TEST(FraudSnapshot, RestoreReplacesEarlierState) {
  const std::vector<Call> calls = Calls(/*seed=*/13, 4'000, /*accounts=*/500);
  FraudChecker saved(Rules(), 1'024);
  Drive(saved, calls, 0, 2'000);
  FraudChecker restored(Rules(), 1'024);
  Drive(restored, Calls(/*seed=*/99, 3'000, /*accounts=*/800), 0, 3'000);
  ASSERT_TRUE(restored.RestoreState(Save(saved)).ok());
  EXPECT_EQ(restored.StateHash(), saved.StateHash());
  ExpectSameCounters(saved, restored);
  ExpectSameFuture(saved, restored, calls, 2'000);
}

// A larger table takes the same accounts; without evictions in either, the verdicts match.
TEST(FraudSnapshot, RestoresIntoALargerTable) {
  const std::vector<Call> calls = Calls(/*seed=*/14, 20'000, /*accounts=*/300);
  FraudChecker saved(Rules(), 4'096);
  Drive(saved, calls, 0, 10'000);
  FraudChecker restored(Rules(), 65'536);
  ASSERT_TRUE(restored.RestoreState(Save(saved)).ok());
  for (size_t i = 10'000; i < calls.size(); ++i) {
    ASSERT_EQ(saved.Check(calls[i].txn, calls[i].now_ns),
              restored.Check(calls[i].txn, calls[i].now_ns))
        << "call " << i;
  }
  EXPECT_EQ(saved.state_evictions(), 0u);
  ExpectSameCounters(saved, restored);
}

TEST(FraudSnapshot, RefusesASmallerTable) {
  FraudChecker saved(Rules(), 1'024);
  Drive(saved, Calls(/*seed=*/15, 100, /*accounts=*/50), 0, 100);
  FraudChecker small(Rules(), 512);
  const absl::Status status = small.RestoreState(Save(saved));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("account_capacity >= 1024"));
}

// The saved buckets have the old width: restoring under a new window is ReplaceRules.
TEST(FraudSnapshot, NewVelocityWindowEmptiesWindowsAsReplaceRulesDoes) {
  const std::vector<Call> calls = Calls(/*seed=*/16, 10'000, /*accounts=*/500);
  FraudChecker saved(Rules(), 1'024);
  Drive(saved, calls, 0, 5'000);
  const std::string bytes = Save(saved);
  FraudRules wider = Rules();
  wider.velocity_window_ns = 2 * kSecondNs;
  saved.ReplaceRules(wider);
  FraudChecker restored(wider, 1'024);
  ASSERT_TRUE(restored.RestoreState(bytes).ok());
  EXPECT_EQ(restored.StateHash(), saved.StateHash());
  ExpectSameFuture(saved, restored, calls, 5'000);
}

// ---- Damage ---------------------------------------------------------------------------------

std::string SmallSnapshot() {
  FraudChecker checker(Rules(), 64);
  Drive(checker, Calls(/*seed=*/17, 300, /*accounts=*/30), 0, 300);
  return Save(checker);
}

// A target with a history of its own, so "unchanged" is not just "empty".
class FraudDamageTest : public ::testing::Test {
 protected:
  void SetUp() override { Drive(target_, Calls(/*seed=*/18, 200, /*accounts=*/20), 0, 200); }

  absl::Status Restore(absl::string_view bytes) { return target_.RestoreState(bytes); }

  void ExpectRefused(absl::string_view bytes, absl::string_view message) {
    const uint64_t hash_before = target_.StateHash();
    const absl::Status status = Restore(bytes);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(message)));
    EXPECT_EQ(target_.StateHash(), hash_before);
  }

  FraudChecker target_{Rules(), 64};
};

// Format version 1 (with the checksum trailer), as written by the build before version 2, of the
// state SmallSnapshot() makes: it restores, and saves as version 2 exactly as SmallSnapshot().
// Fails if version 1 is no longer read or its trailer is taken for trailing bytes.
TEST(FraudSnapshot, RestoresVersion1WithItsChecksumTrailer) {
  ExpectOldFormatReadsAsCurrent(
      ReadTestFile("tests/verifiers/fraud/testdata/fraud_snapshot_v1.bin"), /*old_version=*/1,
      SmallSnapshot(), [](absl::string_view bytes) -> absl::StatusOr<std::string> {
        FraudChecker restored(Rules(), 64);
        if (absl::Status status = restored.RestoreState(bytes); !status.ok()) return status;
        return Save(restored);
      });
}

TEST_F(FraudDamageTest, RefusesEveryTruncationAndFlippedHeaderByte) {
  ExpectRefusesDamage(
      SmallSnapshot(), [&](absl::string_view bytes) { return Restore(bytes); },
      [&] { return target_.StateHash(); });
}

TEST_F(FraudDamageTest, RefusesAnUnknownVersion) {
  ExpectRefused(WithVersion(SmallSnapshot(), 3), "unsupported format version 3");
  ExpectRefused(WithVersion(SmallSnapshot(), 0), "unsupported format version 0");
}

TEST_F(FraudDamageTest, RefusesALedgerSnapshot) {
  std::string bytes = SmallSnapshot();
  bytes.replace(0, 8, "VCHLEDGR");
  ExpectRefused(bytes, "wrong magic");
}

// Payload offsets (see fraud_checker.cc): bucket 0, checks 8, counter count 16, counters 20,
// then the table: capacity, evictions, count, and the first account's slot, id and clock.
constexpr size_t kTableOffset = 20 + 8 * kReasonCount;
constexpr size_t kFirstSlotOffset = kTableOffset + 24;
constexpr size_t kFirstAccountOffset = kFirstSlotOffset + 4;
constexpr size_t kFirstClockOffset = kFirstAccountOffset + 8;

TEST_F(FraudDamageTest, RefusesStateThatBreaksAnInvariant) {
  const std::string bytes = SmallSnapshot();
  const auto edited = [&](auto edit) { return EditPayload(bytes, edit); };
  ExpectRefused(edited([](std::string& p) { Overwrite(p, 0, int64_t{0}); }),
                "velocity bucket of 0 ns");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, 16, uint32_t{kReasonCount + 1}); }),
                "this build knows " + std::to_string(kReasonCount) + " reasons");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, kTableOffset, uint64_t{48}); }),
                "capacity 48");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, kFirstAccountOffset, uint64_t{0}); }),
                "does not belong in that slot's set");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, kFirstClockOffset, int64_t{-1}); }),
                "negative account clock");
  // The clock moved back before the account's velocity buckets and last country.
  ExpectRefused(edited([](std::string& p) { Overwrite(p, kFirstClockOffset, int64_t{1}); }),
                "velocity slot");
  ExpectRefused(edited([](std::string& p) { p += "x"; }), "1 bytes after the account table");
}

}  // namespace
}  // namespace vouch::fraud
