// AccountActivity: what Submit pays to index a transaction (Record, one writer), and what a
// query by account costs (Read of a page), at the engine's default size (2^20 seqs). Accounts
// are drawn from a fixed pseudo-random sequence over `accounts` ids, so a large account count
// measures cache misses on the accounts' newest-seq words, a small one contention-free chains
// that are long. Here the words are one array; in the engine each is in its account's record,
// which the confirm path has just read (its state, limits and daily usage), so that miss is
// already paid there.
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/history/account_activity.h"

namespace vouch {
namespace {

constexpr size_t kCapacity = 1 << 20;

// The index and one newest-seq word per account (ids 1..accounts).
struct Indexed {
  explicit Indexed(uint64_t accounts)
      : index(kCapacity), newest_seqs(new std::atomic<uint64_t>[accounts + 1]()) {}
  void Record(const ActivityEntry& entry) {
    index.Record(entry, newest_seqs[entry.source_account],
                 newest_seqs[entry.destination_account]);
  }
  AccountActivity index;
  std::unique_ptr<std::atomic<uint64_t>[]> newest_seqs;
};

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

ActivityEntry EntryFor(Sequence seq, uint64_t accounts) {
  ActivityEntry entry;
  entry.seq = seq;
  entry.id = seq;
  entry.source_account = 1 + Mix(seq) % accounts;
  entry.destination_account = 1 + (entry.source_account % accounts);  // The next one.
  entry.amount_minor = 100;
  entry.received_ns = static_cast<int64_t>(seq);
  entry.currency = PackCurrency("USD");
  return entry;
}

void BM_Record(benchmark::State& state) {
  const uint64_t accounts = static_cast<uint64_t>(state.range(0));
  Indexed indexed(accounts);
  Sequence seq = 0;
  for (auto _ : state) indexed.Record(EntryFor(++seq, accounts));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record)->Arg(16)->Arg(1 << 10)->Arg(1 << 19);

// A page of `limit` from an index full of the last 2^20 seqs over `accounts` accounts.
void BM_ReadPage(benchmark::State& state) {
  const uint64_t accounts = static_cast<uint64_t>(state.range(0));
  const size_t limit = static_cast<size_t>(state.range(1));
  Indexed indexed(accounts);
  for (Sequence seq = 1; seq <= kCapacity; ++seq) indexed.Record(EntryFor(seq, accounts));
  std::vector<ActivityHit> hits;
  hits.reserve(AccountActivity::kLimitMax);
  uint64_t account = 0;
  size_t found = 0;
  for (auto _ : state) {
    hits.clear();
    account = account % accounts + 1;
    (void)indexed.index.Read({.account = account, .limit = limit},
                             &indexed.newest_seqs[account], &hits);
    found += hits.size();
  }
  state.counters["entries_per_read"] =
      static_cast<double>(found) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_ReadPage)->Args({1 << 10, 50})->Args({1 << 10, 500})->Args({1 << 19, 50});

}  // namespace
}  // namespace vouch
