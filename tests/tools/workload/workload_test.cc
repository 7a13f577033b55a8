// WorkloadGenerator: determinism, the configured shares, well-formed fields, and agreement with
// DemoFraudRules.
//
// Method: draw 100,000 transactions from a fixed seed and classify each by the pattern the
// generator reports, checking that its fields carry that pattern and nothing else (a normal
// payment is paid from the home country and device to a normal merchant). Then feed the stream
// through a FraudChecker with DemoFraudRules at the demo's pace (50,000 a second), which shows
// the rules and the generator agree: normal payments of honest accounts pass, each fraud pattern
// fails with its reason. A replaced global operator new counts allocations to show Next()
// makes none.
#include "tools/workload/workload.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <unordered_set>
#include <vector>

#include "gtest/gtest.h"
#include "verifiers/fraud/fraud_checker.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// relaxed: a plain count, read on the thread that made the allocations.
void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace vouch::workload {
namespace {

constexpr int kDraws = 100'000;

WorkloadConfig TestConfig() {
  WorkloadConfig config;
  config.seed = 42;
  return config;
}

struct Draw {
  Transaction txn;
  Pattern pattern;
};

std::vector<Draw> DrawMany(const WorkloadConfig& config, int n) {
  WorkloadGenerator generator(config);
  std::vector<Draw> draws;
  draws.reserve(n);
  for (int i = 0; i < n; ++i) {
    const Transaction txn = generator.Next();
    draws.push_back({txn, generator.last_pattern()});
  }
  return draws;
}

bool SameTransaction(const Transaction& a, const Transaction& b) {
  return a.id == b.id && a.source_account == b.source_account &&
         a.destination_account == b.destination_account && a.amount_minor == b.amount_minor &&
         a.currency == b.currency && a.merchant_category == b.merchant_category &&
         a.merchant_id == b.merchant_id && a.country == b.country && a.device_id == b.device_id &&
         a.client_timestamp_ns == b.client_timestamp_ns;
}

template <typename T>
bool Contains(const std::vector<T>& list, T value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

TEST(WorkloadTest, SameSeedSameStream) {
  const std::vector<Draw> a = DrawMany(TestConfig(), kDraws);
  const std::vector<Draw> b = DrawMany(TestConfig(), kDraws);
  for (int i = 0; i < kDraws; ++i) {
    ASSERT_TRUE(SameTransaction(a[i].txn, b[i].txn)) << "at " << i;
    ASSERT_EQ(a[i].pattern, b[i].pattern) << "at " << i;
  }
}

TEST(WorkloadTest, OtherSeedOtherStream) {
  WorkloadConfig other = TestConfig();
  other.seed = 43;
  const std::vector<Draw> a = DrawMany(TestConfig(), 100);
  const std::vector<Draw> b = DrawMany(other, 100);
  int same = 0;
  for (int i = 0; i < 100; ++i) same += SameTransaction(a[i].txn, b[i].txn);
  EXPECT_LT(same, 5);
}

TEST(WorkloadTest, SharesAsConfigured) {
  int counts[kPatternCount] = {};
  for (const Draw& draw : DrawMany(TestConfig(), kDraws)) ++counts[static_cast<int>(draw.pattern)];
  const int fraud = kDraws - counts[static_cast<int>(Pattern::kNormal)] -
                    counts[static_cast<int>(Pattern::kInsufficientFunds)];
  // Bursts come 50 at a time (about 8 in this sample), so the fraud total is noisier.
  EXPECT_NEAR(fraud / double{kDraws}, 0.02, 0.004);
  EXPECT_NEAR(counts[static_cast<int>(Pattern::kInsufficientFunds)] / double{kDraws}, 0.01, 0.0015);
  // Each fraud pattern is about a fifth of the fraud transactions.
  for (Pattern p : {Pattern::kBlockedMerchant, Pattern::kBlockedCountry, Pattern::kBlockedDevice,
                    Pattern::kImpossibleTravel, Pattern::kVelocityBurst}) {
    EXPECT_NEAR(counts[static_cast<int>(p)] / double(fraud), 0.2, 0.1) << PatternName(p);
  }
}

TEST(WorkloadTest, ZeroSharesGiveOnlyNormalTraffic) {
  WorkloadConfig config = TestConfig();
  config.fraud_share = 0;
  config.insufficient_funds_share = 0;
  for (const Draw& draw : DrawMany(config, 10'000)) ASSERT_EQ(draw.pattern, Pattern::kNormal);
}

TEST(WorkloadTest, IdsUniqueAndFromFirstId) {
  WorkloadConfig config = TestConfig();
  config.first_id = uint64_t{7} << 40;
  std::unordered_set<uint64_t> ids;
  for (const Draw& draw : DrawMany(config, kDraws)) {
    ASSERT_GE(draw.txn.id, config.first_id);
    ASSERT_TRUE(ids.insert(draw.txn.id).second) << "duplicate id " << draw.txn.id;
  }
}

// Every field is what ingest accepts, and what the pattern says.
TEST(WorkloadTest, FieldsMatchThePattern) {
  const WorkloadConfig config = TestConfig();
  const fraud::FraudRules rules = DemoFraudRules();
  const uint64_t compromised_first = config.accounts - 200 + 1;  // 2% of 10,000.
  for (const Draw& draw : DrawMany(config, kDraws)) {
    const Transaction& t = draw.txn;
    ASSERT_NE(t.id, 0u);
    ASSERT_GE(t.source_account, 1u);
    ASSERT_LE(t.source_account, config.accounts);
    ASSERT_GE(t.destination_account, 1u);
    ASSERT_LE(t.destination_account, config.accounts);
    ASSERT_NE(t.source_account, t.destination_account);
    ASSERT_EQ(t.currency, PackCurrency("USD"));
    ASSERT_NE(t.merchant_category, 0u);
    ASSERT_NE(t.merchant_id, 0u);
    ASSERT_NE(t.country, 0u);
    ASSERT_NE(t.device_id, 0u);

    const Pattern p = draw.pattern;
    const bool fraud = p != Pattern::kNormal && p != Pattern::kInsufficientFunds;
    if (fraud) {
      ASSERT_GE(t.source_account, compromised_first) << PatternName(p);
    }
    if (p == Pattern::kInsufficientFunds) {
      ASSERT_GE(t.amount_minor, 2 * config.opening_balance_minor);
      ASSERT_LE(t.amount_minor, 3 * config.opening_balance_minor);
    } else {
      ASSERT_GE(t.amount_minor, 100);
      ASSERT_LE(t.amount_minor, 5'000);
    }
    ASSERT_EQ(Contains(rules.blocked_merchants, t.merchant_id), p == Pattern::kBlockedMerchant);
    ASSERT_EQ(Contains(rules.blocked_countries, t.country), p == Pattern::kBlockedCountry);
    ASSERT_EQ(Contains(rules.blocked_devices, t.device_id), p == Pattern::kBlockedDevice);
    ASSERT_EQ(t.device_id == HomeDevice(t.source_account), p != Pattern::kBlockedDevice);
    const bool abroad = p == Pattern::kBlockedCountry || p == Pattern::kImpossibleTravel;
    ASSERT_EQ(t.country != HomeCountry(t.source_account), abroad) << PatternName(p);
  }
}

TEST(WorkloadTest, BurstIsConsecutiveFromOneAccount) {
  const std::vector<Draw> draws = DrawMany(TestConfig(), kDraws);
  int bursts = 0;
  for (size_t i = 0; i < draws.size();) {
    if (draws[i].pattern != Pattern::kVelocityBurst) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < draws.size() && draws[end].pattern == Pattern::kVelocityBurst) {
      ASSERT_EQ(draws[end].txn.source_account, draws[i].txn.source_account);
      ++end;
    }
    // Two bursts may follow each other; then the run is a multiple of the length.
    if (end < draws.size()) {
      ASSERT_EQ((end - i) % kBurstLength, 0u);
    }
    bursts += static_cast<int>((end - i) / kBurstLength);
    i = end;
  }
  EXPECT_GT(bursts, 2);
}

TEST(WorkloadTest, NextDoesNotAllocate) {
  WorkloadGenerator generator(TestConfig());
  (void)generator.Next();
  const uint64_t before = g_allocations.load(std::memory_order_relaxed);
  uint64_t sum = 0;
  for (int i = 0; i < kDraws; ++i) sum += generator.Next().amount_minor;
  EXPECT_EQ(g_allocations.load(std::memory_order_relaxed), before);
  EXPECT_GT(sum, 0u);
}

// The stream through the real fraud checker, 20 us apart (50,000 a second).
TEST(WorkloadTest, DemoRulesCatchTheFraudPatternsAndPassHonestTraffic) {
  const WorkloadConfig config = TestConfig();
  const uint64_t compromised_first = config.accounts - 200 + 1;
  ASSERT_TRUE(DemoFraudRules().Validate().ok());
  fraud::FraudChecker checker(DemoFraudRules(), 1 << 16);
  int travel = 0, travel_caught = 0, burst_failures = 0;
  int64_t now_ns = 1'000'000'000;
  for (const Draw& draw : DrawMany(config, kDraws)) {
    now_ns += 20'000;
    const Reason reason = checker.Check(draw.txn, now_ns);
    switch (draw.pattern) {
      case Pattern::kNormal:
      case Pattern::kInsufficientFunds:  // A ledger failure, not a fraud one.
        // A compromised account's owner may look like travel right after the fraudster did.
        if (draw.txn.source_account < compromised_first) {
          ASSERT_EQ(reason, Reason::kNone);
        }
        break;
      case Pattern::kBlockedMerchant: ASSERT_EQ(reason, Reason::kBlockedMerchant); break;
      case Pattern::kBlockedCountry: ASSERT_EQ(reason, Reason::kBlockedCountry); break;
      case Pattern::kBlockedDevice: ASSERT_EQ(reason, Reason::kBlockedDevice); break;
      case Pattern::kImpossibleTravel:
        ++travel;
        travel_caught += reason == Reason::kImpossibleTravel;
        break;
      case Pattern::kVelocityBurst: burst_failures += reason == Reason::kVelocityCount; break;
    }
  }
  // Travel passes only when the account's last payment was from the same foreign country.
  EXPECT_GT(travel_caught, travel * 9 / 10);
  EXPECT_GE(burst_failures, 3 * (kBurstLength - 40));  // Each burst's tail, in at least 3 bursts.
}

TEST(WorkloadTest, AccountsAreOpenedWithTheOpeningBalance) {
  WorkloadConfig config = TestConfig();
  config.accounts = 3;
  config.overdraft_limit_minor = 500;
  const std::vector<ledger::AccountSpec> accounts = Accounts(config);
  ASSERT_EQ(accounts.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(accounts[i].id, i + 1);
    EXPECT_EQ(accounts[i].currency, PackCurrency("USD"));
    EXPECT_EQ(accounts[i].balance_minor, config.opening_balance_minor);
    EXPECT_EQ(accounts[i].overdraft_limit_minor, 500);
  }
}

TEST(WorkloadTest, ValidateNamesTheBadField) {
  auto refused = [](auto change) {
    WorkloadConfig config = TestConfig();
    change(config);
    return config.Validate();
  };
  EXPECT_TRUE(TestConfig().Validate().ok());
  EXPECT_FALSE(refused([](WorkloadConfig& c) { c.accounts = 1; }).ok());
  EXPECT_FALSE(refused([](WorkloadConfig& c) { c.opening_balance_minor = 0; }).ok());
  EXPECT_FALSE(refused([](WorkloadConfig& c) { c.overdraft_limit_minor = -1; }).ok());
  EXPECT_FALSE(refused([](WorkloadConfig& c) { c.fraud_share = 1.5; }).ok());
  EXPECT_FALSE(refused([](WorkloadConfig& c) { c.fraud_share = 0.0 / 0.0; }).ok());
  EXPECT_FALSE(refused([](WorkloadConfig& c) {
                 c.fraud_share = 0.6;
                 c.insufficient_funds_share = 0.6;
               }).ok());
  EXPECT_FALSE(refused([](WorkloadConfig& c) { c.currency = "XXX"; }).ok());
  EXPECT_FALSE(refused([](WorkloadConfig& c) { c.first_id = 0; }).ok());
  const absl::Status status = refused([](WorkloadConfig& c) { c.insufficient_funds_share = -1; });
  EXPECT_NE(status.message().find("insufficient_funds_share"), absl::string_view::npos);
}

}  // namespace
}  // namespace vouch::workload
