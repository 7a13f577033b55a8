// IdempotencyTable: single-threaded semantics (new, duplicate, in flight, release, the plain
// window with retention 0, retention in time, revival of a released claim, fingerprints), then
// races. Several threads claim the same ids at once, and for every id exactly one claim may
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

constexpr uint64_t kFp = 0xf00d;  // A content fingerprint (ContentFingerprint in the engine).

StoredAnswer Confirmed(Sequence seq) {
  return {ConfirmStatus::kConfirmed, Reason::kNone, false, seq, 100};
}

TEST(IdempotencyTableTest, DuplicateGetsTheOriginalAnswer) {
  IdempotencyTable table(1024);
  auto first = table.ClaimId(42, kFp, 100);
  ASSERT_EQ(first.kind, ClaimKind::kNew);
  EXPECT_EQ(table.ClaimId(42, kFp, 101).kind, ClaimKind::kInFlight) << "answer not recorded yet";
  table.Record(first.ticket, Confirmed(7));
  auto second = table.ClaimId(42, kFp, 102);
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
  auto claim = table.ClaimId(5, kFp, 1);
  table.Record(claim.ticket, {ConfirmStatus::kRejected, Reason::kAccountOnHold, false, 0, 1});
  auto again = table.ClaimId(5, kFp, 2);
  ASSERT_EQ(again.kind, ClaimKind::kDuplicate);
  EXPECT_EQ(again.answer.status, ConfirmStatus::kRejected);
  EXPECT_EQ(again.answer.reason, Reason::kAccountOnHold);
}

TEST(IdempotencyTableTest, ReleasedClaimAdmitsARetry) {
  IdempotencyTable table(1024);
  auto claim = table.ClaimId(9, kFp, 1);
  table.Release(claim.ticket);  // The Submit was answered BUSY.
  auto retry = table.ClaimId(9, kFp, 2);
  EXPECT_EQ(retry.kind, ClaimKind::kNew);
}

// Retention 0: an id is kept until its node comes round again (the table before retention).
TEST(IdempotencyTableTest, IdsOlderThanTheWindowAreForgotten) {
  IdempotencyTable table(1024);
  ASSERT_EQ(table.window(), 1024u);
  auto first = table.ClaimId(1, kFp, 1);
  table.Record(first.ticket, Confirmed(1));
  for (uint64_t id = 2; id <= 1024; ++id) {  // window - 1 claims in between.
    auto c = table.ClaimId(id, kFp, 1);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    table.Record(c.ticket, Confirmed(id));
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(table.ClaimId(1, kFp, 2).kind, ClaimKind::kDuplicate) << "still inside the window";
  }
  // Duplicates take no ticket; the next new claim, a window after id 1's, recycles its node.
  auto c = table.ClaimId(2000, kFp, 1);
  table.Record(c.ticket, Confirmed(2000));
  EXPECT_EQ(table.ClaimId(1, kFp, 3).kind, ClaimKind::kNew) << "past the window: forgotten";
}

TEST(IdempotencyTableTest, InFlightRetryTakesNoTicket) {
  IdempotencyTable table(1024);
  auto first = table.ClaimId(1, kFp, 1);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(table.ClaimId(1, kFp, 1).kind, ClaimKind::kInFlight);
  auto next = table.ClaimId(2, kFp, 1);
  EXPECT_EQ(next.ticket, first.ticket + 1);
}

TEST(IdempotencyTableTest, AClaimStillBeingAnsweredIsNeverRecycled) {
  IdempotencyTable table(1024);
  auto slow = table.ClaimId(1, kFp, 1);  // A held transaction, verified for a long time.
  for (uint64_t id = 2; id <= 3000; ++id) {
    auto c = table.ClaimId(id, kFp, 1);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    table.Record(c.ticket, Confirmed(id));
  }
  EXPECT_EQ(table.ClaimId(1, kFp, 2).kind, ClaimKind::kInFlight) << "not forgotten while in flight";
  table.Record(slow.ticket, Confirmed(1));
  ASSERT_TRUE(table.Find(1).has_value());
  EXPECT_EQ(table.overruns(), 0u);
}

TEST(IdempotencyTableTest, AWindowOfClaimsInFlightRefusesTheNextAndCountsIt) {
  IdempotencyTable table(8);
  for (uint64_t id = 1; id <= 8; ++id) ASSERT_EQ(table.ClaimId(id, kFp, 1).kind, ClaimKind::kNew);
  EXPECT_EQ(table.ClaimId(9, kFp, 1).kind, ClaimKind::kFull);
  EXPECT_EQ(table.overruns(), 1u);
}

TEST(IdempotencyTableTest, RestoredAnswerReplacesAnOlderOneForTheSameId) {
  IdempotencyTable table(1024);
  ASSERT_TRUE(table.Restore(7, {ConfirmStatus::kRejected, Reason::kAccountOnHold, false, 0, 1}, 0));
  ASSERT_TRUE(table.Restore(7, Confirmed(3), 0));
  auto found = table.Find(7);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(found->seq, 3u);
}

constexpr int64_t kSecondNs = 1'000'000'000;

// Retention in time: with a table of 1024 and a retention of 100 s, an id first seen at t = 0 is
// still a duplicate after 10 x 1024 other claims within the retention; the table refuses the
// claims it cannot hold (kRetention, counted) rather than recycle a node younger than that.
TEST(IdempotencyTableTest, AnIdIsRememberedForTheRetentionWhateverTheClaimsInBetween) {
  constexpr int64_t kRetentionNs = 100 * kSecondNs;
  IdempotencyTable table(1024, kRetentionNs);
  auto first = table.ClaimId(1, kFp, 0);
  ASSERT_EQ(first.kind, ClaimKind::kNew);
  table.Record(first.ticket, Confirmed(1));
  uint64_t admitted = 1, refused = 0;
  for (uint64_t id = 2; id <= 10 * 1024; ++id) {
    const int64_t now_ns = static_cast<int64_t>(id) * 1000;  // All within 11 ms.
    auto c = table.ClaimId(id, kFp, now_ns);
    if (c.kind == ClaimKind::kRetention) {
      ++refused;
      continue;
    }
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    table.Record(c.ticket, Confirmed(id));
    ++admitted;
  }
  EXPECT_EQ(admitted, 1024u) << "the table holds exactly its size within the retention";
  EXPECT_EQ(refused, 10u * 1024 - 1024);
  EXPECT_EQ(table.retention_refusals(), refused);
  auto again = table.ClaimId(1, kFp, kRetentionNs - 1);
  ASSERT_EQ(again.kind, ClaimKind::kDuplicate) << "forgotten before the retention";
  EXPECT_EQ(again.answer.seq, 1u);
  ASSERT_TRUE(table.OldestReceivedNs().has_value());
  EXPECT_EQ(*table.OldestReceivedNs(), 0);
  // At the retention, id 1's node is the oldest and the next to go: a new id takes it.
  auto later = table.ClaimId(50'000, kFp, kRetentionNs);
  ASSERT_EQ(later.kind, ClaimKind::kNew);
  table.Record(later.ticket, Confirmed(50'000));
  EXPECT_FALSE(table.Find(1).has_value()) << "older than the retention: may be forgotten";
  EXPECT_TRUE(table.Find(2).has_value());
  EXPECT_EQ(*table.OldestReceivedNs(), 2 * 1000);
}

// A refusal for retention takes no ticket: the next claim looks at the same oldest node.
TEST(IdempotencyTableTest, ARetentionRefusalTakesNoCapacity) {
  IdempotencyTable table(8, 10);
  uint64_t last_ticket = 0;
  for (uint64_t id = 1; id <= 8; ++id) {
    auto c = table.ClaimId(id, kFp, 0);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    table.Record(c.ticket, Confirmed(id));
    last_ticket = c.ticket;
  }
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(table.ClaimId(100 + i, kFp, 5).kind, ClaimKind::kRetention);
  }
  auto c = table.ClaimId(1000, kFp, 10);
  ASSERT_EQ(c.kind, ClaimKind::kNew);
  EXPECT_EQ(c.ticket, last_ticket + 1) << "refusals moved the cursor";
}

// A claim released after BUSY stays linked; its retries revive it in place, under the same
// ticket, so any number of BUSY answers for one id take one node between them.
TEST(IdempotencyTableTest, BusyRetriesOfOneIdTakeOneNode) {
  IdempotencyTable table(1024, 1000 * kSecondNs);
  auto first = table.ClaimId(9, kFp, 1);
  ASSERT_EQ(first.kind, ClaimKind::kNew);
  for (int retry = 0; retry < 5000; ++retry) {
    table.Release(first.ticket);  // Answered BUSY (ring full, risk cap, ...).
    auto again = table.ClaimId(9, kFp + retry, 2 + retry);
    ASSERT_EQ(again.kind, ClaimKind::kNew);
    ASSERT_EQ(again.ticket, first.ticket) << "a BUSY retry took a new node";
  }
  table.Record(first.ticket, Confirmed(4));
  auto dup = table.ClaimId(9, kFp, 10'000);
  ASSERT_EQ(dup.kind, ClaimKind::kDuplicate);
  EXPECT_EQ(dup.answer.received_ns, 2 + 4999) << "first seen when it was last claimed";
  EXPECT_EQ(dup.answer.fingerprint, kFp + 4999) << "the fields of the claim that was answered";
  EXPECT_EQ(table.ClaimId(10, kFp, 10'001).ticket, first.ticket + 1);
}

// A node released for good holds no answer: it is recycled when the cursor reaches it, at once,
// whatever the retention.
TEST(IdempotencyTableTest, AReleasedNodeIsRecycledWithoutWaitingForTheRetention) {
  IdempotencyTable table(8, 1000 * kSecondNs);
  for (uint64_t id = 1; id <= 8; ++id) {
    auto c = table.ClaimId(id, kFp, 0);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    if (id == 1) {
      table.Release(c.ticket);
    } else {
      table.Record(c.ticket, Confirmed(id));
    }
  }
  auto c = table.ClaimId(100, kFp, 1);
  ASSERT_EQ(c.kind, ClaimKind::kNew) << "the released node is free";
  table.Record(c.ticket, Confirmed(100));
  EXPECT_EQ(table.ClaimId(101, kFp, 2).kind, ClaimKind::kRetention);
  for (uint64_t id = 2; id <= 8; ++id) EXPECT_TRUE(table.Find(id).has_value());
}

TEST(IdempotencyTableTest, TheFingerprintComesBackWithTheAnswer) {
  IdempotencyTable table(1024, kSecondNs);
  auto claim = table.ClaimId(5, 0x1234, 7);
  table.Record(claim.ticket, {ConfirmStatus::kRejected, Reason::kOverLimit, false, 0, 7});
  auto again = table.ClaimId(5, 0x9999, 8);
  ASSERT_EQ(again.kind, ClaimKind::kDuplicate);
  EXPECT_EQ(again.answer.fingerprint, 0x1234u) << "the original's, not the resubmission's";
  EXPECT_EQ(again.answer.reason, Reason::kOverLimit);
  ASSERT_TRUE(table.Find(5).has_value());
  EXPECT_EQ(table.Find(5)->fingerprint, 0x1234u);
  EXPECT_EQ(table.Find(5)->received_ns, 7);
}

// Recovery never recycles a node younger than the retention: Restore says so, and the engine
// refuses to start (EngineImpl::Recover).
TEST(IdempotencyTableTest, RestoreRefusesToForgetAnIdWithinTheRetention) {
  IdempotencyTable table(8, 100);
  for (uint64_t id = 1; id <= 8; ++id) {
    StoredAnswer a = Confirmed(id);
    a.received_ns = static_cast<int64_t>(id);
    ASSERT_TRUE(table.Restore(id, a, 200));
  }
  StoredAnswer old_enough = Confirmed(9);
  EXPECT_TRUE(table.Restore(9, old_enough, 101)) << "id 1 (t = 1) is 100 old at t = 101";
  EXPECT_FALSE(table.Restore(10, Confirmed(10), 101)) << "id 2 (t = 2) is younger";
  EXPECT_TRUE(table.Find(2).has_value());
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
  std::thread claimer([&] { late = table.ClaimId(1000, kFp, 1); });
  while (!held.load()) std::this_thread::yield();
  for (uint64_t id = 1; id <= kWindow; ++id) {
    auto c = table.ClaimId(id, kFp, 1);
    ASSERT_EQ(c.kind, ClaimKind::kNew);
    table.Record(c.ticket, Confirmed(id));
  }
  resume.store(true);
  claimer.join();
  ASSERT_EQ(late.kind, ClaimKind::kNew);
  table.Record(late.ticket, Confirmed(1000));
  for (uint64_t id = 2; id <= kWindow; ++id) {
    EXPECT_EQ(table.ClaimId(id, kFp, 2).kind, ClaimKind::kDuplicate)
        << "id " << id << " forgotten: a resubmission would be applied twice";
  }
  EXPECT_EQ(table.ClaimId(1000, kFp, 2).kind, ClaimKind::kDuplicate);
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
        auto first = table.ClaimId(id, kFp, 1);
        ASSERT_EQ(first.kind, ClaimKind::kNew);
        table.Record(first.ticket, Confirmed(i));
        auto again = table.ClaimId(id, kFp, 2);
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
        auto claim = table.ClaimId(id, kFp, 1);
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
