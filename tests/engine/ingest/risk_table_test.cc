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

TEST(RiskTableTest, EachCapRefusesOnceReachedAndFreesOnRemove) {
  RiskLimits limits;
  limits.account_count_max = 2;
  limits.account_minor_max = 1'000;
  RiskTable table(64, limits);
  EXPECT_TRUE(table.TryAdd(1, kUsd, 400));
  EXPECT_TRUE(table.TryAdd(1, kUsd, 500));
  EXPECT_FALSE(table.TryAdd(1, kUsd, 1)) << "count cap";
  EXPECT_TRUE(table.TryAdd(2, kUsd, 1'000));
  EXPECT_FALSE(table.TryAdd(2, kUsd, 1)) << "value cap";
  EXPECT_EQ(table.total_count(), 3u) << "refusals take back what they added";
  table.Remove(1, kUsd, 400);
  EXPECT_TRUE(table.TryAdd(1, kUsd, 100));
}

TEST(RiskTableTest, RacingProducersNeverExceedTheTotalCap) {
  RiskLimits limits;
  limits.total_count_max = 100;
  RiskTable table(1 << 12, limits);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10'000; ++i) {
        if (table.TryAdd(1 + (t * 10'000 + i) % 1'000, kUsd, 10)) admitted.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(admitted.load(), 100);
  EXPECT_EQ(table.total_count(), static_cast<uint64_t>(admitted.load()));
}

TEST(RiskTableTest, FullTableRefusesAndCounts) {
  RiskLimits limits;
  limits.account_count_max = 10;
  RiskTable table(2, limits);
  EXPECT_TRUE(table.TryAdd(1, kUsd, 1));
  EXPECT_TRUE(table.TryAdd(2, kUsd, 1));
  EXPECT_FALSE(table.TryAdd(3, kUsd, 1));
  EXPECT_EQ(table.table_full(), 1u);
}

}  // namespace
}  // namespace vouch
