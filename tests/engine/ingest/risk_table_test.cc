// RiskTable: caps are never exceeded, even by racing producers, and exposure returns to zero.
// Method: four threads race TryAdd against a cap of 100 with nothing removed; exactly the
// successes are counted, and never more than the cap.
#include "engine/ingest/risk_table.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vouch {
namespace {

const CurrencyCode kUsd = PackCurrency("USD");

// Accounts 1..n, whose records hold their exposure.
struct Accounts {
  explicit Accounts(size_t n) : dir(n) {
    for (uint64_t id = 1; id <= n; ++id) dir.Insert({.id = id, .currency = kUsd}, 0);
  }
  AccountRecord* operator()(uint64_t id) { return dir.FindMutable(id); }
  AccountDirectory dir;
};

TEST(RiskTableTest, EachCapRefusesOnceReachedAndFreesOnRemove) {
  RiskLimits limits;
  limits.account_count_max = 2;
  limits.account_minor_max = 1'000;
  RiskTable table(limits);
  Accounts account(2);
  EXPECT_TRUE(table.TryAdd(account(1), kUsd, 400));
  EXPECT_TRUE(table.TryAdd(account(1), kUsd, 500));
  EXPECT_FALSE(table.TryAdd(account(1), kUsd, 1)) << "count cap";
  EXPECT_TRUE(table.TryAdd(account(2), kUsd, 1'000));
  EXPECT_FALSE(table.TryAdd(account(2), kUsd, 1)) << "value cap";
  EXPECT_EQ(table.total_count(), 3u) << "refusals take back what they added";
  EXPECT_EQ(account(1)->unverified_count.load(), 2u);
  EXPECT_EQ(account(1)->unverified_minor.load(), 900);
  table.Remove(account(1), kUsd, 400);
  EXPECT_TRUE(table.TryAdd(account(1), kUsd, 100));
}

TEST(RiskTableTest, RacingProducersNeverExceedTheTotalCap) {
  RiskLimits limits;
  limits.total_count_max = 100;
  RiskTable table(limits);
  Accounts account(1'000);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10'000; ++i) {
        if (table.TryAdd(account(1 + (t * 10'000 + i) % 1'000), kUsd, 10)) admitted.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(admitted.load(), 100);
  EXPECT_EQ(table.total_count(), static_cast<uint64_t>(admitted.load()));
}

// The old table claimed a slot per account and never freed it: after its capacity in distinct
// accounts every new one was refused. Exposure in the account's record has no such cliff.
TEST(RiskTableTest, NoCapacityCliffAcrossManyDistinctAccounts) {
  RiskLimits limits;
  limits.account_count_max = 1;
  RiskTable table(limits);
  constexpr uint64_t kAccounts = 200'000;
  Accounts account(kAccounts);
  for (uint64_t id = 1; id <= kAccounts; ++id) {
    ASSERT_TRUE(table.TryAdd(account(id), kUsd, 5)) << id;
  }
  for (uint64_t id = 1; id <= kAccounts; ++id) table.Remove(account(id), kUsd, 5);
  EXPECT_EQ(table.total_count(), 0u);
  EXPECT_EQ(table.table_full(), 0u);
}

}  // namespace
}  // namespace vouch
