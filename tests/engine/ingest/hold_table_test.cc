#include "engine/ingest/hold_table.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vouch {
namespace {

TEST(HoldTableTest, HoldReleaseAndList) {
  HoldTable holds(16);
  EXPECT_FALSE(holds.IsHeld(7));
  ASSERT_TRUE(holds.Hold(7));
  ASSERT_TRUE(holds.Hold(9));
  EXPECT_TRUE(holds.IsHeld(7));
  std::vector<uint64_t> listed = holds.List();
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, (std::vector<uint64_t>{7, 9}));
  EXPECT_TRUE(holds.Release(7));
  EXPECT_FALSE(holds.Release(7)) << "already released";
  EXPECT_FALSE(holds.IsHeld(7));
  ASSERT_TRUE(holds.Hold(7)) << "a released account can be held again";
  EXPECT_TRUE(holds.IsHeld(7));
}

TEST(HoldTableTest, FullTableRefusesNewAccountsButKeepsOld) {
  HoldTable holds(4);
  for (uint64_t a = 1; a <= 4; ++a) ASSERT_TRUE(holds.Hold(a));
  EXPECT_FALSE(holds.Hold(5));
  EXPECT_FALSE(holds.IsHeld(5));
  EXPECT_TRUE(holds.Release(2));
  EXPECT_TRUE(holds.Hold(2)) << "the slot of a known account is reused";
}

TEST(HoldTableTest, ConcurrentHoldsOfDistinctAndSharedAccounts) {
  HoldTable holds(1 << 12);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t a = 1; a <= 1000; ++a) ASSERT_TRUE(holds.Hold(a + (t % 2) * 1000));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(holds.List().size(), 2000u) << "each account occupies one slot";
}

}  // namespace
}  // namespace vouch
