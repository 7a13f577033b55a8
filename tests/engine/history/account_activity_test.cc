// AccountActivity: one account's recent transactions, newest first, in both directions.
//
// Method. Entries are derived from their seq (id, accounts, amount, received time), so a reader
// can tell a torn or misattributed entry from the seq alone. The single-threaded tests pin the
// chain (order, directions, limits, paging, time ranges, wrap-around, a higher seq linked before a lower one). The stress test runs several writers
// that claim seqs from one counter and, like the engine's in-flight ring, may not write a slot
// before the previous lap's writer of that slot finished; readers run throughout and check
// each answer's order and contents, and at the end every account's chain must hold exactly the
// entries the ring still keeps.
#include "engine/history/account_activity.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vouch {
namespace {

constexpr uint64_t kAccounts = 4;

ActivityEntry EntryFor(Sequence seq) {
  ActivityEntry entry;
  entry.seq = seq;
  entry.id = seq * 3;
  entry.source_account = 1 + seq % kAccounts;
  entry.destination_account = 1 + (seq + 1) % kAccounts;
  entry.amount_minor = static_cast<int64_t>(seq) * 10;
  entry.received_ns = static_cast<int64_t>(seq) * 1000;
  entry.currency = PackCurrency("USD");
  entry.held = seq % 5 == 0;
  return entry;
}

bool Names(const ActivityEntry& entry, uint64_t account) {
  return entry.source_account == account || entry.destination_account == account;
}

std::vector<Sequence> Seqs(const std::vector<ActivityHit>& hits) {
  std::vector<Sequence> seqs;
  for (const ActivityHit& hit : hits) seqs.push_back(hit.entry.seq);
  return seqs;
}

// The index with one newest-seq word per account, as the engine keeps one in each account's
// record. Accounts 1..kKnownAccounts - 1 exist; a higher one is unknown (no word).
class TestIndex {
 public:
  static constexpr uint64_t kKnownAccounts = 16;
  explicit TestIndex(size_t capacity) : index_(capacity) {}
  void Record(const ActivityEntry& entry) {
    index_.Record(entry, heads_[entry.source_account], heads_[entry.destination_account]);
  }
  ActivityReport Read(const ActivityQuery& query, std::vector<ActivityHit>* out) const {
    return index_.Read(query, query.account < kKnownAccounts ? &heads_[query.account] : nullptr,
                       out);
  }

 private:
  AccountActivity index_;
  std::atomic<uint64_t> heads_[kKnownAccounts] = {};
};

std::vector<ActivityHit> ReadAll(const TestIndex& index, ActivityQuery query,
                                 ActivityReport* report = nullptr) {
  std::vector<ActivityHit> hits;
  const ActivityReport got = index.Read(query, &hits);
  if (report != nullptr) *report = got;
  return hits;
}

TEST(AccountActivityTest, ChainHoldsBothDirectionsNewestFirst) {
  TestIndex index(64);
  for (Sequence seq = 1; seq <= 12; ++seq) index.Record(EntryFor(seq));
  // Account 1 is the source of seqs 4, 8, 12 and the destination of 3, 7, 11.
  ActivityReport report;
  const std::vector<ActivityHit> hits = ReadAll(index, {.account = 1, .limit = 100}, &report);
  EXPECT_EQ(Seqs(hits), (std::vector<Sequence>{12, 11, 8, 7, 4, 3}));
  for (const ActivityHit& hit : hits) {
    EXPECT_EQ(hit.debit, hit.entry.source_account == 1) << hit.entry.seq;
    EXPECT_EQ(hit.entry.id, hit.entry.seq * 3);
    EXPECT_EQ(hit.entry.held, hit.entry.seq % 5 == 0);
  }
  EXPECT_FALSE(report.more);
  EXPECT_TRUE(ReadAll(index, {.account = 99, .limit = 100}).empty());
}

TEST(AccountActivityTest, LimitAndPagingByBeforeSeq) {
  TestIndex index(64);
  for (Sequence seq = 1; seq <= 12; ++seq) index.Record(EntryFor(seq));
  ActivityReport report;
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 1, .limit = 4}, &report)),
            (std::vector<Sequence>{12, 11, 8, 7}));
  EXPECT_TRUE(report.more);
  EXPECT_EQ(report.next_before_seq, 7u);
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 1, .before_seq = 7, .limit = 4}, &report)),
            (std::vector<Sequence>{4, 3}));
  EXPECT_FALSE(report.more);
  EXPECT_TRUE(ReadAll(index, {.account = 1, .limit = 0}).empty());
}

TEST(AccountActivityTest, LimitIsCapped) {
  TestIndex index(4096);
  for (Sequence seq = 1; seq <= 4000; ++seq) index.Record(EntryFor(seq));
  ActivityReport report;
  const auto hits = ReadAll(index, {.account = 1, .limit = 100000}, &report);
  EXPECT_EQ(hits.size(), AccountActivity::kLimitMax);
  EXPECT_TRUE(report.more);
}

TEST(AccountActivityTest, TimeRangeOnReceivedTimeInclusive) {
  TestIndex index(64);
  for (Sequence seq = 1; seq <= 12; ++seq) index.Record(EntryFor(seq));
  // received_ns = seq * 1000.
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 1, .since_ns = 4000, .until_ns = 11000, .limit = 9})),
            (std::vector<Sequence>{11, 8, 7, 4}));
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 1, .since_ns = 7500, .limit = 9})),
            (std::vector<Sequence>{12, 11, 8}));
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 1, .until_ns = 7000, .limit = 9})),
            (std::vector<Sequence>{7, 4, 3}));
}

TEST(AccountActivityTest, ChainBrokenByOverwriteEndsCleanly) {
  TestIndex index(8);
  for (Sequence seq = 1; seq <= 30; ++seq) index.Record(EntryFor(seq));
  // The ring keeps seqs 23..30; account 1 is in 23, 24, 27, 28 (and 19, 20 are overwritten).
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 1, .limit = 100})),
            (std::vector<Sequence>{28, 27, 24, 23}));
  for (uint64_t account = 1; account <= kAccounts; ++account) {
    for (const ActivityHit& hit : ReadAll(index, {.account = account, .limit = 100})) {
      EXPECT_GE(hit.entry.seq, 23u);
      EXPECT_TRUE(Names(hit.entry, account));
    }
  }
}

TEST(AccountActivityTest, LowerSeqLinkedAfterHigherStillSorted) {
  // Two Submit threads admit one account's transactions at once and the higher seq links first:
  // the lower one goes below it.
  TestIndex index(64);
  auto entry = [](Sequence seq, uint64_t source, uint64_t destination) {
    ActivityEntry e;
    e.seq = seq;
    e.id = seq;
    e.source_account = source;
    e.destination_account = destination;
    e.amount_minor = 1;
    e.received_ns = static_cast<int64_t>(seq);
    return e;
  };
  index.Record(entry(1, 7, 8));
  index.Record(entry(5, 8, 7));
  index.Record(entry(3, 7, 9));
  index.Record(entry(4, 9, 7));
  index.Record(entry(2, 8, 7));
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 7, .limit = 10})),
            (std::vector<Sequence>{5, 4, 3, 2, 1}));
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 8, .limit = 10})),
            (std::vector<Sequence>{5, 2, 1}));
  EXPECT_EQ(Seqs(ReadAll(index, {.account = 9, .limit = 10})),
            (std::vector<Sequence>{4, 3}));
}

TEST(AccountActivityTest, ConcurrentWritersAndReaders) {
  constexpr size_t kCapacity = 1024;
  constexpr Sequence kTotal = 50'000;  // 49 laps of the ring.
  constexpr int kWriters = 3;
  TestIndex index(kCapacity);
  std::atomic<Sequence> next{1};
  // Every seq at or below `freed` is written. A writer of seq waits for freed >= seq -
  // kCapacity before it writes, and frees in seq order after, as the in-flight ring frees
  // (in order) before a producer may claim the slot's next lap.
  std::atomic<Sequence> freed{0};
  std::atomic<bool> writing{true};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&] {
      for (;;) {
        const Sequence seq = next.fetch_add(1);
        if (seq > kTotal) return;
        while (freed.load(std::memory_order_acquire) + kCapacity < seq) std::this_thread::yield();
        index.Record(EntryFor(seq));
        while (freed.load(std::memory_order_acquire) != seq - 1) std::this_thread::yield();
        freed.store(seq, std::memory_order_release);
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      uint64_t account = 1 + r;
      std::vector<ActivityHit> hits;
      hits.reserve(AccountActivity::kLimitMax);
      // At least one read, also when the writers finish before this thread first runs (a
      // loaded machine): the count below checks that reading happened at all.
      do {
        hits.clear();
        (void)index.Read({.account = account, .limit = 64}, &hits);
        for (size_t i = 0; i < hits.size(); ++i) {
          const ActivityEntry& e = hits[i].entry;
          const ActivityEntry want = EntryFor(e.seq);
          ASSERT_EQ(e.id, want.id);
          ASSERT_EQ(e.source_account, want.source_account);
          ASSERT_EQ(e.destination_account, want.destination_account);
          ASSERT_EQ(e.amount_minor, want.amount_minor);
          ASSERT_TRUE(Names(e, account));
          ASSERT_EQ(hits[i].debit, e.source_account == account);
          if (i > 0) {
            ASSERT_LT(e.seq, hits[i - 1].entry.seq);
          }
        }
        reads.fetch_add(1);
        account = account % kAccounts + 1;
      } while (writing.load());
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  writing.store(false);
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_GT(reads.load(), 0u);
  // Quiet now: each account's chain is exactly its entries among the last kCapacity seqs
  // (half of them: each entry names two of the four accounts), up to the limit.
  for (uint64_t account = 1; account <= kAccounts; ++account) {
    std::vector<Sequence> want;
    for (Sequence seq = kTotal; seq > kTotal - kCapacity && want.size() < 500; --seq) {
      if (Names(EntryFor(seq), account)) want.push_back(seq);
    }
    EXPECT_EQ(Seqs(ReadAll(index, {.account = account, .limit = 500})), want)
        << "account " << account;
  }
}

}  // namespace
}  // namespace vouch
