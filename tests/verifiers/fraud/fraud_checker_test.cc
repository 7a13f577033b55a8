// Tests of FraudChecker and FraudRules::Validate.
//
// Method: each rule is tested alone, with every other rule disabled (RulesOnly), so a verdict
// can only come from the rule under test. Thresholds are probed on both sides: at the limit
// passes, one past it fails with the rule's own reason. Time is explicit (now_ns), so every
// test is deterministic.
#include "verifiers/fraud/fraud_checker.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/types/reason.h"
#include "engine/types/transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "verifiers/fraud/fraud_rules.h"

namespace vouch::fraud {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSecondNs = 1'000'000'000;
constexpr int64_t kStartNs = 1'000 * kSecondNs;
constexpr size_t kCapacity = 1024;
constexpr uint64_t kAccount = 42;

enum class Rule { kNone, kVelocity, kAnomaly, kTravel };

// Every stateful rule off except `rule`; block lists empty.
FraudRules RulesOnly(Rule rule) {
  FraudRules rules;
  rules.velocity_enabled = rule == Rule::kVelocity;
  rules.anomaly_enabled = rule == Rule::kAnomaly;
  rules.travel_enabled = rule == Rule::kTravel;
  return rules;
}

Transaction Txn(uint64_t account, int64_t amount_minor, CountryCode country = 0) {
  static uint64_t next_id = 1;
  Transaction txn;
  txn.id = next_id++;
  txn.source_account = account;
  txn.destination_account = 7;
  txn.amount_minor = amount_minor;
  txn.currency = PackCurrency("USD");
  txn.merchant_id = 500;
  txn.country = country;
  txn.device_id = 900;
  return txn;
}

// ---- Validate -------------------------------------------------------------------------------

TEST(FraudRulesValidate, DefaultsAreValid) { EXPECT_TRUE(FraudRules{}.Validate().ok()); }

void ExpectInvalid(const FraudRules& rules, const char* field) {
  const absl::Status status = rules.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_THAT(std::string(status.message()), HasSubstr(field));
}

TEST(FraudRulesValidate, RefusesBadVelocity) {
  FraudRules rules;
  rules.velocity_window_ns = -1;
  ExpectInvalid(rules, "velocity_window_ns");
  rules.velocity_window_ns = 7;  // Less than one nanosecond per sub-bucket.
  ExpectInvalid(rules, "velocity_window_ns");
  rules = FraudRules{};
  rules.velocity_count_max = 0;
  ExpectInvalid(rules, "velocity_count_max");
  rules = FraudRules{};
  rules.velocity_amount_max_minor = 0;
  ExpectInvalid(rules, "velocity_amount_max_minor");
}

TEST(FraudRulesValidate, RefusesBadAnomaly) {
  FraudRules rules;
  rules.anomaly_z_max = 0;
  ExpectInvalid(rules, "anomaly_z_max");
  rules.anomaly_z_max = -1;
  ExpectInvalid(rules, "anomaly_z_max");
  rules.anomaly_z_max = std::nan("");
  ExpectInvalid(rules, "anomaly_z_max");
  rules.anomaly_z_max = INFINITY;
  ExpectInvalid(rules, "anomaly_z_max");
  rules = FraudRules{};
  rules.anomaly_min_samples = 1;
  ExpectInvalid(rules, "anomaly_min_samples");
}

TEST(FraudRulesValidate, RefusesBadTravelWindow) {
  FraudRules rules;
  rules.travel_window_ns = 0;
  ExpectInvalid(rules, "travel_window_ns");
  rules.travel_window_ns = -5;
  ExpectInvalid(rules, "travel_window_ns");
}

TEST(FraudRulesValidate, RefusesBadBlockListEntries) {
  FraudRules rules;
  rules.blocked_merchants = {3, 0};
  ExpectInvalid(rules, "blocked_merchants[1]");
  rules = FraudRules{};
  rules.blocked_devices = {0};
  ExpectInvalid(rules, "blocked_devices[0]");
  rules = FraudRules{};
  rules.blocked_countries = {PackCountry("GB"), 0};
  ExpectInvalid(rules, "blocked_countries[1]");
  rules.blocked_countries = {'g' << 8 | 'b'};
  ExpectInvalid(rules, "blocked_countries[0]");
}

TEST(FraudRulesValidate, ChecksFieldsOfDisabledRulesToo) {
  FraudRules rules;
  rules.velocity_enabled = false;
  rules.velocity_window_ns = -1;
  ExpectInvalid(rules, "velocity_window_ns");
}

// ---- Block lists ----------------------------------------------------------------------------

TEST(FraudChecker, BlockListsFailWithTheirOwnReason) {
  FraudRules rules = RulesOnly(Rule::kNone);
  rules.blocked_merchants = {501};
  rules.blocked_countries = {PackCountry("KP")};
  rules.blocked_devices = {901};
  FraudChecker checker(rules, kCapacity);

  Transaction txn = Txn(kAccount, 100, PackCountry("GB"));
  EXPECT_EQ(checker.Check(txn, kStartNs), Reason::kNone);

  Transaction merchant = txn;
  merchant.merchant_id = 501;
  EXPECT_EQ(checker.Check(merchant, kStartNs), Reason::kBlockedMerchant);
  Transaction country = txn;
  country.country = PackCountry("KP");
  EXPECT_EQ(checker.Check(country, kStartNs), Reason::kBlockedCountry);
  Transaction device = txn;
  device.device_id = 901;
  EXPECT_EQ(checker.Check(device, kStartNs), Reason::kBlockedDevice);
}

TEST(FraudChecker, BlockListsReportInOrderMerchantCountryDevice) {
  FraudRules rules = RulesOnly(Rule::kNone);
  rules.blocked_merchants = {501};
  rules.blocked_countries = {PackCountry("KP")};
  rules.blocked_devices = {901};
  FraudChecker checker(rules, kCapacity);
  Transaction txn = Txn(kAccount, 100, PackCountry("KP"));
  txn.merchant_id = 501;
  txn.device_id = 901;
  EXPECT_EQ(checker.Check(txn, kStartNs), Reason::kBlockedMerchant);
  txn.merchant_id = 500;
  EXPECT_EQ(checker.Check(txn, kStartNs), Reason::kBlockedCountry);
  txn.country = PackCountry("GB");
  EXPECT_EQ(checker.Check(txn, kStartNs), Reason::kBlockedDevice);
}

TEST(FraudChecker, BlockListBeatsStatefulRules) {
  FraudRules rules;
  rules.blocked_merchants = {501};
  rules.velocity_count_max = 1;
  FraudChecker checker(rules, kCapacity);
  Transaction txn = Txn(kAccount, 100, PackCountry("GB"));
  EXPECT_EQ(checker.Check(txn, kStartNs), Reason::kNone);
  txn.merchant_id = 501;
  txn.country = PackCountry("FR");  // Travel and velocity both fail too.
  EXPECT_EQ(checker.Check(txn, kStartNs + 1), Reason::kBlockedMerchant);
}

// ---- Impossible travel ----------------------------------------------------------------------

TEST(FraudChecker, TravelFailsOnCountryChangeWithinWindow) {
  FraudChecker checker(RulesOnly(Rule::kTravel), kCapacity);
  const int64_t window_ns = FraudRules{}.travel_window_ns;
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs + 1), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("FR")), kStartNs + window_ns),
            Reason::kImpossibleTravel);
  EXPECT_EQ(checker.failures(Reason::kImpossibleTravel), 1u);
}

TEST(FraudChecker, TravelPassesAtExactlyTheWindow) {
  FraudChecker checker(RulesOnly(Rule::kTravel), kCapacity);
  const int64_t window_ns = FraudRules{}.travel_window_ns;
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("FR")), kStartNs + window_ns),
            Reason::kNone);
}

TEST(FraudChecker, TravelIgnoresUnknownCountry) {
  FraudChecker checker(RulesOnly(Rule::kTravel), kCapacity);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, 0), kStartNs), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs + 1), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, 0), kStartNs + 2), Reason::kNone);
  // The unknown country did not replace GB.
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("FR")), kStartNs + 3),
            Reason::kImpossibleTravel);
}

TEST(FraudChecker, TravelIsPerAccount) {
  FraudChecker checker(RulesOnly(Rule::kTravel), kCapacity);
  EXPECT_EQ(checker.Check(Txn(1, 100, PackCountry("GB")), kStartNs), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(2, 100, PackCountry("FR")), kStartNs + 1), Reason::kNone);
}

// ---- Velocity -------------------------------------------------------------------------------

TEST(FraudChecker, VelocityCountFailsAboveMax) {
  FraudChecker checker(RulesOnly(Rule::kVelocity), kCapacity);
  const uint32_t count_max = FraudRules{}.velocity_count_max;
  for (uint32_t i = 0; i < count_max; ++i) {
    ASSERT_EQ(checker.Check(Txn(kAccount, 1), kStartNs + i), Reason::kNone) << i;
  }
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), kStartNs + count_max), Reason::kVelocityCount);
  EXPECT_EQ(checker.failures(Reason::kVelocityCount), 1u);
  EXPECT_EQ(checker.Check(Txn(kAccount + 1, 1), kStartNs + count_max), Reason::kNone);
}

TEST(FraudChecker, VelocityAmountFailsAboveMax) {
  FraudChecker checker(RulesOnly(Rule::kVelocity), kCapacity);
  const int64_t amount_max_minor = FraudRules{}.velocity_amount_max_minor;
  EXPECT_EQ(checker.Check(Txn(kAccount, amount_max_minor - 10), kStartNs), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, 10), kStartNs + 1), Reason::kNone);  // Sum == max.
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), kStartNs + 2), Reason::kVelocityAmount);
}

TEST(FraudChecker, VelocityCountIsReportedBeforeAmount) {
  FraudRules rules = RulesOnly(Rule::kVelocity);
  rules.velocity_count_max = 1;
  FraudChecker checker(rules, kCapacity);
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), kStartNs), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, rules.velocity_amount_max_minor), kStartNs),
            Reason::kVelocityCount);
}

TEST(FraudChecker, VelocityCountsFailedTransactionsToo) {
  FraudRules rules = RulesOnly(Rule::kVelocity);
  rules.velocity_count_max = 2;
  rules.blocked_devices = {901};
  FraudChecker checker(rules, kCapacity);
  Transaction blocked = Txn(kAccount, 1);
  blocked.device_id = 901;
  EXPECT_EQ(checker.Check(blocked, kStartNs), Reason::kBlockedDevice);
  EXPECT_EQ(checker.Check(blocked, kStartNs), Reason::kBlockedDevice);
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), kStartNs), Reason::kVelocityCount);
}

// The documented approximation: a transaction counts for at least 7/8 of the window and never
// once the window has passed.
TEST(FraudChecker, VelocityWindowSlides) {
  FraudRules rules = RulesOnly(Rule::kVelocity);
  rules.velocity_count_max = 1;
  rules.velocity_window_ns = 8 * kSecondNs;  // Buckets of 1 s.
  FraudChecker checker(rules, kCapacity);
  const int64_t t0_ns = kStartNs + kSecondNs - 1;  // The last nanosecond of a bucket.
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), t0_ns), Reason::kNone);
  // Within 7/8 of the window: still counted.
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), t0_ns + 7 * kSecondNs - 1), Reason::kVelocityCount);
  // 15 s after the first and 8 s + 1 ns after the second: both have left the window.
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), t0_ns + 15 * kSecondNs), Reason::kNone);
}

TEST(FraudChecker, VelocityNeverCountsATransactionOlderThanTheWindow) {
  FraudRules rules = RulesOnly(Rule::kVelocity);
  rules.velocity_count_max = 1;
  rules.velocity_window_ns = 8 * kSecondNs;
  FraudChecker checker(rules, kCapacity);
  const int64_t t0_ns = kStartNs;  // The first nanosecond of a bucket: the worst case.
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), t0_ns), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), t0_ns + rules.velocity_window_ns), Reason::kNone);
}

// ---- Amount anomaly -------------------------------------------------------------------------

// Feeds `count` alternating amounts low, high, low, ...
void Feed(FraudChecker& checker, int count, int64_t low_minor, int64_t high_minor,
          int64_t& now_ns) {
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(checker.Check(Txn(kAccount, i % 2 == 0 ? low_minor : high_minor), now_ns++),
              Reason::kNone);
  }
}

TEST(FraudChecker, AnomalyFailsAboveZMax) {
  const FraudRules rules = RulesOnly(Rule::kAnomaly);
  FraudChecker checker(rules, kCapacity);
  int64_t now_ns = kStartNs;
  Feed(checker, 20, 500, 1500, now_ns);
  // Mean 1000; sample stddev sqrt(20 * 500^2 / 19) ≈ 512.99, above the 25%-of-mean floor.
  const double limit = 1000 + rules.anomaly_z_max * std::sqrt(20 * 500.0 * 500.0 / 19);
  const auto just_under = static_cast<int64_t>(std::floor(limit));
  EXPECT_EQ(checker.Check(Txn(kAccount, just_under + 1), now_ns), Reason::kAmountAnomaly);
  EXPECT_EQ(checker.Check(Txn(kAccount, just_under), now_ns), Reason::kNone);
}

TEST(FraudChecker, AnomalyWaitsForMinSamples) {
  FraudChecker checker(RulesOnly(Rule::kAnomaly), kCapacity);
  int64_t now_ns = kStartNs;
  Feed(checker, 19, 1000, 1000, now_ns);
  EXPECT_EQ(checker.Check(Txn(kAccount, 1'000'000), now_ns), Reason::kNone);  // 20th sample.
  // The outlier passed, so it joined the baseline; the next one is judged.
  EXPECT_EQ(checker.Check(Txn(kAccount, 100'000'000), now_ns), Reason::kAmountAnomaly);
}

TEST(FraudChecker, AnomalyFloorToleratesDoublingOfAConstantAmount) {
  FraudChecker checker(RulesOnly(Rule::kAnomaly), kCapacity);
  int64_t now_ns = kStartNs;
  Feed(checker, 20, 1000, 1000, now_ns);  // stddev 0: the floor (25% of the mean) applies.
  EXPECT_EQ(checker.Check(Txn(kAccount, 3000), now_ns), Reason::kAmountAnomaly);  // z = 8.
  EXPECT_EQ(checker.Check(Txn(kAccount, 2000), now_ns), Reason::kNone);           // z = 4.
}

TEST(FraudChecker, AnomalyBaselineLearnsOnlyFromPasses) {
  FraudChecker checker(RulesOnly(Rule::kAnomaly), kCapacity);
  int64_t now_ns = kStartNs;
  Feed(checker, 20, 1000, 1000, now_ns);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(checker.Check(Txn(kAccount, 50'000), now_ns), Reason::kAmountAnomaly);
  }
  EXPECT_EQ(checker.Check(Txn(kAccount, 3000), now_ns), Reason::kAmountAnomaly);
}

TEST(FraudChecker, AnomalyBaselineSkipsTransactionsFailedByOtherRules) {
  FraudRules rules = RulesOnly(Rule::kAnomaly);
  rules.blocked_merchants = {501};
  FraudChecker checker(rules, kCapacity);
  int64_t now_ns = kStartNs;
  Feed(checker, 19, 1000, 1000, now_ns);
  Transaction blocked = Txn(kAccount, 1000);
  blocked.merchant_id = 501;
  EXPECT_EQ(checker.Check(blocked, now_ns), Reason::kBlockedMerchant);
  // Still 19 samples: no verdict yet.
  EXPECT_EQ(checker.Check(Txn(kAccount, 1'000'000), now_ns), Reason::kNone);
}

// ---- Disabled rules -------------------------------------------------------------------------

TEST(FraudChecker, DisabledRulesNeverFire) {
  FraudChecker checker(RulesOnly(Rule::kNone), kCapacity);
  int64_t now_ns = kStartNs;
  for (int i = 0; i < 100; ++i) {
    const CountryCode country = PackCountry(i % 2 == 0 ? "GB" : "FR");
    ASSERT_EQ(checker.Check(Txn(kAccount, 1000, country), now_ns++), Reason::kNone);
  }
  EXPECT_EQ(checker.Check(Txn(kAccount, 1'000'000'000), now_ns), Reason::kNone);
  EXPECT_EQ(checker.checks(), 101u);
}

// ---- Bounded state ---------------------------------------------------------------------------

TEST(FraudChecker, EvictsLeastRecentlySeenWhenFullAndKeepsWorking) {
  FraudRules rules = RulesOnly(Rule::kVelocity);
  rules.velocity_count_max = 2;
  FraudChecker checker(rules, /*account_capacity=*/8);  // A single set of 8 ways.
  int64_t now_ns = kStartNs;
  for (uint64_t account = 1; account <= 8; ++account) {
    ASSERT_EQ(checker.Check(Txn(account, 1), now_ns++), Reason::kNone);
  }
  EXPECT_EQ(checker.Check(Txn(1, 1), now_ns++), Reason::kNone);  // Account 1: 2 in window.
  EXPECT_EQ(checker.state_evictions(), 0u);

  EXPECT_EQ(checker.Check(Txn(9, 1), now_ns++), Reason::kNone);  // Evicts account 2.
  EXPECT_EQ(checker.state_evictions(), 1u);
  // Account 1 was seen recently, so it kept its state: its third transaction fails.
  EXPECT_EQ(checker.Check(Txn(1, 1), now_ns++), Reason::kVelocityCount);
  // Account 2 comes back with a fresh history (and evicts account 3).
  EXPECT_EQ(checker.Check(Txn(2, 1), now_ns++), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(2, 1), now_ns++), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(2, 1), now_ns++), Reason::kVelocityCount);
  EXPECT_EQ(checker.state_evictions(), 2u);
}

TEST(FraudChecker, ManyAccountsInASmallTableCountEvictions) {
  FraudChecker checker(FraudRules{}, /*account_capacity=*/64);
  for (uint64_t account = 1; account <= 1000; ++account) {
    ASSERT_EQ(checker.Check(Txn(account, 100), kStartNs), Reason::kNone);
  }
  EXPECT_EQ(checker.state_evictions(), 1000u - 64u);
}

// ---- Rule replacement -------------------------------------------------------------------------

TEST(FraudChecker, ReplaceRulesTakesEffectAndKeepsState) {
  FraudRules rules;
  rules.velocity_count_max = 3;
  FraudChecker checker(rules, kCapacity);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs), Reason::kNone);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs + 1), Reason::kNone);

  rules.blocked_merchants = {500};
  checker.ReplaceRules(rules);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs + 2),
            Reason::kBlockedMerchant);

  rules.blocked_merchants.clear();
  checker.ReplaceRules(rules);
  // Velocity (3 so far) and the remembered country survived both replacements.
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs + 3),
            Reason::kVelocityCount);
  EXPECT_EQ(checker.Check(Txn(kAccount + 1, 100, PackCountry("GB")), kStartNs + 3),
            Reason::kNone);
  rules.velocity_enabled = false;
  checker.ReplaceRules(rules);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("FR")), kStartNs + 4),
            Reason::kImpossibleTravel);
}

TEST(FraudChecker, ReplaceRulesKeepsAnomalyBaseline) {
  FraudRules rules = RulesOnly(Rule::kAnomaly);
  FraudChecker checker(rules, kCapacity);
  int64_t now_ns = kStartNs;
  Feed(checker, 20, 1000, 1000, now_ns);
  rules.anomaly_z_max = 2;  // Limit: 1000 + 2 * 250 = 1500.
  checker.ReplaceRules(rules);
  EXPECT_EQ(checker.Check(Txn(kAccount, 1600), now_ns), Reason::kAmountAnomaly);
}

TEST(FraudChecker, ReplaceRulesWithNewVelocityWindowEmptiesWindows) {
  FraudRules rules = RulesOnly(Rule::kVelocity);
  rules.velocity_count_max = 1;
  FraudChecker checker(rules, kCapacity);
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), kStartNs), Reason::kNone);
  checker.ReplaceRules(rules);  // Same window: kept.
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), kStartNs), Reason::kVelocityCount);
  rules.velocity_window_ns *= 2;
  checker.ReplaceRules(rules);
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), kStartNs), Reason::kNone);
}

// ---- Counters, time, determinism --------------------------------------------------------------

TEST(FraudChecker, CountsChecksAndFailuresByReason) {
  FraudRules rules = RulesOnly(Rule::kNone);
  rules.blocked_devices = {901};
  FraudChecker checker(rules, kCapacity);
  Transaction blocked = Txn(kAccount, 1);
  blocked.device_id = 901;
  EXPECT_EQ(checker.Check(Txn(kAccount, 1), kStartNs), Reason::kNone);
  EXPECT_EQ(checker.Check(blocked, kStartNs), Reason::kBlockedDevice);
  EXPECT_EQ(checker.Check(blocked, kStartNs), Reason::kBlockedDevice);
  EXPECT_EQ(checker.checks(), 3u);
  EXPECT_EQ(checker.failures(Reason::kBlockedDevice), 2u);
  EXPECT_EQ(checker.failures(Reason::kBlockedMerchant), 0u);
  EXPECT_EQ(checker.failures(Reason::kNone), 0u);
}

TEST(FraudChecker, OutOfOrderTimeDoesNotMoveAnAccountBack) {
  FraudChecker checker(RulesOnly(Rule::kTravel), kCapacity);
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("GB")), kStartNs), Reason::kNone);
  // An earlier confirm time is read as the account's latest time: still within the window.
  EXPECT_EQ(checker.Check(Txn(kAccount, 100, PackCountry("FR")), kStartNs - kSecondNs),
            Reason::kImpossibleTravel);
}

// A random but seeded stream that exercises every rule and evictions.
std::vector<Transaction> RandomStream(uint64_t seed, int count) {
  std::mt19937_64 rng(seed);
  const CountryCode countries[] = {PackCountry("GB"), PackCountry("FR"), PackCountry("KP"), 0};
  std::vector<Transaction> stream;
  for (int i = 0; i < count; ++i) {
    Transaction txn = Txn(1 + rng() % 300, 1 + static_cast<int64_t>(rng() % 5000),
                          countries[rng() % 4 == 0 ? rng() % 4 : 0]);
    if (rng() % 50 == 0) txn.amount_minor *= 100;
    txn.merchant_id = 500 + rng() % 50;
    txn.device_id = 900 + rng() % 50;
    stream.push_back(txn);
  }
  return stream;
}

TEST(FraudChecker, SameStreamGivesSameVerdictsAndStateHash) {
  FraudRules rules;
  rules.blocked_merchants = {510};
  rules.blocked_countries = {PackCountry("KP")};
  rules.blocked_devices = {920};
  rules.velocity_window_ns = kSecondNs;
  rules.velocity_count_max = 6;  // ~3.3 per account per window on average: bursts exceed it.
  FraudChecker first(rules, 256);
  FraudChecker second(rules, 256);
  const std::vector<Transaction> stream = RandomStream(7, 20'000);
  int64_t now_ns = kStartNs;
  for (const Transaction& txn : stream) {
    now_ns += 1'000'000;
    ASSERT_EQ(first.Check(txn, now_ns), second.Check(txn, now_ns));
  }
  EXPECT_EQ(first.StateHash(), second.StateHash());
  EXPECT_GT(first.state_evictions(), 0u);
  for (Reason reason : {Reason::kBlockedMerchant, Reason::kBlockedCountry, Reason::kBlockedDevice,
                        Reason::kImpossibleTravel, Reason::kVelocityCount,
                        Reason::kAmountAnomaly}) {
    EXPECT_GT(first.failures(reason), 0u) << ReasonName(reason);
  }

  // The hash does see state: one more transaction changes it.
  const uint64_t before = first.StateHash();
  (void)first.Check(stream.front(), now_ns + 1);
  EXPECT_NE(first.StateHash(), before);
}

}  // namespace
}  // namespace vouch::fraud
