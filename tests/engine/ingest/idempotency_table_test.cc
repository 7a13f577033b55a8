// IdempotencyTable: single-threaded semantics (new, duplicate, in flight, release, window),
// then a race: several threads claim the same ids at once, and for every id exactly one claim
// may win. The race test is the one that would catch a check-then-insert window.
#include "engine/ingest/idempotency_table.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vouch {
namespace {

using ClaimKind = IdempotencyTable::ClaimKind;

StoredAnswer Confirmed(Sequence seq) {
  return {ConfirmStatus::kConfirmed, Reason::kNone, false, seq, 100};
}

TEST(IdempotencyTableTest, DuplicateGetsTheOriginalAnswer) {
  IdempotencyTable table(1024);
  auto first = table.ClaimId(42, 100);
  ASSERT_EQ(first.kind, ClaimKind::kNew);
  EXPECT_EQ(table.ClaimId(42, 101).kind, ClaimKind::kInFlight) << "answer not recorded yet";
  ASSERT_TRUE(table.Record(first.ticket, Confirmed(7)));
  auto second = table.ClaimId(42, 102);
  ASSERT_EQ(second.kind, ClaimKind::kDuplicate);
  EXPECT_EQ(second.answer.status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(second.answer.seq, 7u);
  EXPECT_EQ(second.answer.received_ns, 100);
  auto found = table.Find(42);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->seq, 7u);
  EXPECT_FALSE(table.Find(43).has_value());
}

TEST(IdempotencyTableTest, RejectionIsRememberedWithItsReason) {
  IdempotencyTable table(1024);
  auto claim = table.ClaimId(5, 1);
  ASSERT_TRUE(table.Record(claim.ticket, {ConfirmStatus::kRejected, Reason::kAccountOnHold,
                                          false, 0, 1}));
  auto again = table.ClaimId(5, 2);
  ASSERT_EQ(again.kind, ClaimKind::kDuplicate);
  EXPECT_EQ(again.answer.status, ConfirmStatus::kRejected);
  EXPECT_EQ(again.answer.reason, Reason::kAccountOnHold);
}

TEST(IdempotencyTableTest, ReleasedClaimAdmitsARetry) {
  IdempotencyTable table(1024);
  auto claim = table.ClaimId(9, 1);
  table.Release(claim.ticket);  // The Submit was answered BUSY.
  auto retry = table.ClaimId(9, 2);
  EXPECT_EQ(retry.kind, ClaimKind::kNew);
}

TEST(IdempotencyTableTest, IdsOlderThanTheWindowAreForgotten) {
  IdempotencyTable table(1024);
  ASSERT_EQ(table.window(), 1024u);
  auto first = table.ClaimId(1, 1);
  ASSERT_TRUE(table.Record(first.ticket, Confirmed(1)));
  for (uint64_t id = 2; id <= 1023; ++id) {  // window - 2 claims in between.
    auto c = table.ClaimId(id, 1);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    ASSERT_TRUE(table.Record(c.ticket, Confirmed(id)));
  }
  EXPECT_EQ(table.ClaimId(1, 2).kind, ClaimKind::kDuplicate) << "still inside the window";
  // That duplicate claim used a ticket too; the next claim recycles id 1's node.
  auto c = table.ClaimId(2000, 1);
  ASSERT_TRUE(table.Record(c.ticket, Confirmed(2000)));
  EXPECT_EQ(table.ClaimId(1, 3).kind, ClaimKind::kNew) << "past the window: forgotten";
}

TEST(IdempotencyTableTest, RecordAfterRecycleIsRefusedAndCounted) {
  IdempotencyTable table(1024);
  auto stale = table.ClaimId(1, 1);
  for (uint64_t id = 2; id <= 1025; ++id) (void)table.ClaimId(id, 1);
  EXPECT_FALSE(table.Record(stale.ticket, Confirmed(1)));
  EXPECT_EQ(table.overruns(), 1u);
}

TEST(IdempotencyTableTest, ConcurrentClaimsOfTheSameIdAdmitExactlyOne) {
  constexpr int kThreads = 4;
  constexpr uint64_t kIds = 50'000;
  IdempotencyTable table(1 << 20);
  std::vector<std::atomic<int>> wins(kIds + 1);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) {}
      for (uint64_t i = 1; i <= kIds; ++i) {
        // Half the threads walk the ids backwards so the races happen everywhere.
        const uint64_t id = (t % 2 == 0) ? i : kIds + 1 - i;
        auto claim = table.ClaimId(id, 1);
        if (claim.kind == ClaimKind::kNew) {
          wins[id].fetch_add(1);
          ASSERT_TRUE(table.Record(claim.ticket, Confirmed(id)));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (uint64_t id = 1; id <= kIds; ++id) {
    ASSERT_EQ(wins[id].load(), 1) << "id " << id;
    auto found = table.Find(id);
    ASSERT_TRUE(found.has_value());
    ASSERT_EQ(found->seq, id);
  }
}

}  // namespace
}  // namespace vouch
