// IdempotencyTable: single-threaded semantics (new, duplicate, in flight, release, window),
// then races. Several threads claim the same ids at once, and for every id exactly one claim may
// win: that would catch a check-then-insert window. And claimers are held between taking their
// ticket and writing its node (the table's test hook, standing in for preemption) while a whole
// window of claims goes by: that would catch a claimer overwriting a node that a newer ticket
// owns, which forgets a recent id so that it is applied twice.
#include "engine/ingest/idempotency_table.h"

#include <atomic>
#include <chrono>
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
  table.Record(first.ticket, Confirmed(7));
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
  table.Record(claim.ticket, {ConfirmStatus::kRejected, Reason::kAccountOnHold, false, 0, 1});
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
  table.Record(first.ticket, Confirmed(1));
  for (uint64_t id = 2; id <= 1024; ++id) {  // window - 1 claims in between.
    auto c = table.ClaimId(id, 1);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    table.Record(c.ticket, Confirmed(id));
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(table.ClaimId(1, 2).kind, ClaimKind::kDuplicate) << "still inside the window";
  }
  // Duplicates take no ticket; the next new claim, a window after id 1's, recycles its node.
  auto c = table.ClaimId(2000, 1);
  table.Record(c.ticket, Confirmed(2000));
  EXPECT_EQ(table.ClaimId(1, 3).kind, ClaimKind::kNew) << "past the window: forgotten";
}

TEST(IdempotencyTableTest, InFlightRetryTakesNoTicket) {
  IdempotencyTable table(1024);
  auto first = table.ClaimId(1, 1);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(table.ClaimId(1, 1).kind, ClaimKind::kInFlight);
  auto next = table.ClaimId(2, 1);
  EXPECT_EQ(next.ticket, first.ticket + 1);
}

TEST(IdempotencyTableTest, AClaimStillBeingAnsweredIsNeverRecycled) {
  IdempotencyTable table(1024);
  auto slow = table.ClaimId(1, 1);  // A held transaction, verified for a long time.
  for (uint64_t id = 2; id <= 3000; ++id) {
    auto c = table.ClaimId(id, 1);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    table.Record(c.ticket, Confirmed(id));
  }
  EXPECT_EQ(table.ClaimId(1, 2).kind, ClaimKind::kInFlight) << "not forgotten while in flight";
  table.Record(slow.ticket, Confirmed(1));
  ASSERT_TRUE(table.Find(1).has_value());
  EXPECT_EQ(table.overruns(), 0u);
}

TEST(IdempotencyTableTest, AWindowOfClaimsInFlightRefusesTheNextAndCountsIt) {
  IdempotencyTable table(8);
  for (uint64_t id = 1; id <= 8; ++id) ASSERT_EQ(table.ClaimId(id, 1).kind, ClaimKind::kNew);
  EXPECT_EQ(table.ClaimId(9, 1).kind, ClaimKind::kFull);
  EXPECT_EQ(table.overruns(), 1u);
}

TEST(IdempotencyTableTest, RestoredAnswerReplacesAnOlderOneForTheSameId) {
  IdempotencyTable table(1024);
  ASSERT_TRUE(table.Restore(7, {ConfirmStatus::kRejected, Reason::kAccountOnHold, false, 0, 1}));
  ASSERT_TRUE(table.Restore(7, Confirmed(3)));
  auto found = table.Find(7);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(found->seq, 3u);
}

// One claimer takes its ticket and is held before it writes the ticket's node, while a whole
// window of other claims goes by; the last of them owns that node now. When the held claimer
// resumes, every recent id must still be known.
TEST(IdempotencyTableTest, ClaimerHeldForAWindowOfClaimsDoesNotOverwriteALiveNode) {
  constexpr uint64_t kWindow = 8;
  IdempotencyTable table(kWindow);
  std::atomic<bool> armed{true}, held{false}, resume{false};
  table.SetClaimPauseForTest([&](uint64_t) {
    if (!armed.exchange(false)) return;
    held.store(true);
    while (!resume.load()) std::this_thread::yield();
  });
  IdempotencyTable::Claim late{};
  std::thread claimer([&] { late = table.ClaimId(1000, 1); });
  while (!held.load()) std::this_thread::yield();
  for (uint64_t id = 1; id <= kWindow; ++id) {
    auto c = table.ClaimId(id, 1);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    table.Record(c.ticket, Confirmed(id));
  }
  resume.store(true);
  claimer.join();
  ASSERT_EQ(late.kind, ClaimKind::kNew);
  table.Record(late.ticket, Confirmed(1000));
  for (uint64_t id = 2; id <= kWindow; ++id) {
    EXPECT_EQ(table.ClaimId(id, 2).kind, ClaimKind::kDuplicate)
        << "id " << id << " forgotten: a resubmission would be applied twice";
  }
  EXPECT_EQ(table.ClaimId(1000, 2).kind, ClaimKind::kDuplicate);
}

// Stress: threads claim fresh ids in a small window and resubmit each at once; every 16th claim
// is held for 200 us after taking its ticket, long enough for the others to lap the window many
// times. A resubmission may find its id forgotten only if a whole window of tickets was taken
// since the id's own ticket (the table's promise); anything sooner is an id applied twice.
TEST(IdempotencyTableTest, PreemptedClaimersNeverMakeARecentIdLookNew) {
  constexpr uint64_t kWindow = 64;
  constexpr int kThreads = 4;
  constexpr uint64_t kClaims = 20'000;
  IdempotencyTable table(kWindow);
  std::atomic<uint64_t> calls{0};
  table.SetClaimPauseForTest([&](uint64_t) {
    // relaxed: only spreads the pauses.
    if (calls.fetch_add(1, std::memory_order_relaxed) % 16 == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::atomic<uint64_t> applied_twice{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 1; i <= kClaims / kThreads; ++i) {
        const uint64_t id = uint64_t(t + 1) << 32 | i;
        auto first = table.ClaimId(id, 1);
        ASSERT_EQ(first.kind, ClaimKind::kNew);
        table.Record(first.ticket, Confirmed(i));
        auto again = table.ClaimId(id, 2);
        if (again.kind == ClaimKind::kNew) {
          if (again.ticket <= first.ticket + kWindow) applied_twice.fetch_add(1);
          table.Release(again.ticket);
        } else {
          ASSERT_EQ(again.kind, ClaimKind::kDuplicate);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(applied_twice.load(), 0u);
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
          table.Record(claim.ticket, Confirmed(id));
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
