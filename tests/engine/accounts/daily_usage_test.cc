#include "engine/accounts/daily_usage.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vouch {
namespace {

using Charge = DailyUsage::Charge;
constexpr uint32_t kDay = 20'790;  // 2026-12-02.

TEST(DailyUsageTest, TheDayIsTheUtcCalendarDay) {
  constexpr int64_t kNsPerDay = int64_t{86'400} * 1'000'000'000;
  EXPECT_EQ(DailyUsage::DayOf(int64_t{kDay} * kNsPerDay), kDay);
  EXPECT_EQ(DailyUsage::DayOf(int64_t{kDay} * kNsPerDay + kNsPerDay - 1), kDay);
  EXPECT_EQ(DailyUsage::DayOf(int64_t{kDay + 1} * kNsPerDay), kDay + 1);
}

TEST(DailyUsageTest, AChargeThatWouldPassALimitIsRefusedAndChargesNothing) {
  DailyUsage usage;
  EXPECT_EQ(usage.TryCharge(kDay, 600, 1'000, 0).charge, Charge::kCharged);
  EXPECT_EQ(usage.TryCharge(kDay, 401, 1'000, 0).charge, Charge::kOverAmount);
  EXPECT_EQ(usage.TryCharge(kDay, 400, 1'000, 0).charge, Charge::kCharged);
  EXPECT_EQ(usage.minor_on(kDay), 1'000);
  EXPECT_EQ(usage.count_on(kDay), 2u);
  DailyUsage counted;
  EXPECT_EQ(counted.TryCharge(kDay, 1, 0, 2).charge, Charge::kCharged);
  EXPECT_EQ(counted.TryCharge(kDay, 1, 0, 2).charge, Charge::kCharged);
  EXPECT_EQ(counted.TryCharge(kDay, 5, 100, 2).charge, Charge::kOverCount);
  EXPECT_EQ(counted.minor_on(kDay), 2) << "the count's refusal took the amount back";
  EXPECT_EQ(counted.count_on(kDay), 2u);
}

TEST(DailyUsageTest, ANewDayStartsFromZeroAndALateClockReadChargesTheNewDay) {
  DailyUsage usage;
  ASSERT_EQ(usage.TryCharge(kDay, 1'000, 1'000, 1).charge, Charge::kCharged);
  EXPECT_EQ(usage.TryCharge(kDay, 1, 1'000, 1).charge, Charge::kOverAmount);
  const DailyUsage::ChargeResult next = usage.TryCharge(kDay + 1, 1'000, 1'000, 1);
  EXPECT_EQ(next.charge, Charge::kCharged);
  EXPECT_EQ(next.day, kDay + 1);
  EXPECT_EQ(usage.minor_on(kDay), 0);
  // A thread that read the clock before midnight is charged on the new day: no way around it.
  EXPECT_EQ(usage.TryCharge(kDay, 1, 1'000, 0).charge, Charge::kOverAmount);
}

TEST(DailyUsageTest, ARefundTakesBackItsChargeOnlyOnItsOwnDay) {
  DailyUsage usage;
  const DailyUsage::ChargeResult charged = usage.TryCharge(kDay, 700, 1'000, 0);
  ASSERT_EQ(charged.charge, Charge::kCharged);
  usage.Refund(charged.day, 700);
  EXPECT_EQ(usage.minor_on(kDay), 0);
  EXPECT_EQ(usage.count_on(kDay), 0u);
  ASSERT_EQ(usage.TryCharge(kDay, 700, 1'000, 0).charge, Charge::kCharged);
  ASSERT_EQ(usage.TryCharge(kDay + 1, 300, 1'000, 0).charge, Charge::kCharged);
  usage.Refund(kDay, 700);  // Yesterday's: forgotten already; today's stays.
  EXPECT_EQ(usage.minor_on(kDay + 1), 300);
}

TEST(DailyUsageTest, ConcurrentChargesNeverPassTheLimits) {
  constexpr int kThreads = 4;
  constexpr int kAttempts = 20'000;
  constexpr int64_t kMinorMax = 50'000;
  constexpr uint32_t kCountMax = 30'000;
  DailyUsage usage;
  std::atomic<int64_t> charged_minor{0};
  std::atomic<uint64_t> charged_count{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAttempts; ++i) {
        const int64_t amount = 1 + (i + t) % 5;
        if (usage.TryCharge(kDay, amount, kMinorMax, kCountMax).charge == Charge::kCharged) {
          charged_minor.fetch_add(amount);
          charged_count.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(usage.minor_on(kDay), kMinorMax);
  EXPECT_LE(usage.count_on(kDay), kCountMax);
  EXPECT_EQ(usage.minor_on(kDay), charged_minor.load()) << "every admitted charge is counted";
  EXPECT_EQ(usage.count_on(kDay), charged_count.load());
  EXPECT_GT(usage.minor_on(kDay), kMinorMax - 5) << "refusals start only at the limit";
}

}  // namespace
}  // namespace vouch
