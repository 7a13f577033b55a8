// IngestCounters: what Submit answered, counted without a shared hot cache line.
//
// Submit runs on many threads at once. Each thread counts into its own shard (picked once per
// thread, round robin) so that concurrent submitters do not bounce one cache line between
// cores; readers sum the shards. Shards are also where Submit announces that it is running,
// which Stop uses to wait for submitters that passed the "accepting" check (a Dekker handshake,
// hence seq_cst on exactly those two operations).
//
// Thread safety: Count*/Enter/Leave from any thread; Sum*/active() from any thread.
#ifndef VOUCH_ENGINE_INTERNAL_INGEST_COUNTERS_H_
#define VOUCH_ENGINE_INTERNAL_INGEST_COUNTERS_H_

#include <atomic>
#include <cstdint>

#include "engine/reconcile/reconciler.h"
#include "engine/types/reason.h"

namespace vouch::internal {

class IngestCounters {
 public:
  static constexpr int kShards = 16;

  struct alignas(64) Shard {
    std::atomic<int64_t> active{0};  // Submits running on threads of this shard.
    std::atomic<uint64_t> confirmed{0};
    std::atomic<uint64_t> held{0};
    std::atomic<uint64_t> risk_holds{0};
    std::atomic<uint64_t> duplicates{0};
    std::atomic<uint64_t> rejected[kReasonCount] = {};
    std::atomic<uint64_t> busy[kReasonCount] = {};
    // Amounts answered CONFIRMED before verification (not held), by CurrencySlot. Less the
    // reconciler's decided_unheld_minor, the value at risk.
    std::atomic<int64_t> confirmed_unheld_minor[kCurrencySlotCount] = {};
  };

  Shard& Mine() {
    static std::atomic<int> next_shard{0};
    // relaxed: only spreads threads over shards.
    thread_local const int shard = next_shard.fetch_add(1, std::memory_order_relaxed) % kShards;
    return shards_[shard];
  }

  // relaxed: counters are statistics. A shard may be shared by two threads, hence fetch_add.
  static void Add(std::atomic<uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
  }
  static void AddMinor(std::atomic<int64_t>& sum, int64_t amount_minor) {
    sum.fetch_add(amount_minor, std::memory_order_relaxed);
  }

  // seq_cst: pairs with Stop's seq_cst store of "not accepting" and load of active (Dekker).
  static void Enter(Shard& shard) { shard.active.fetch_add(1, std::memory_order_seq_cst); }
  // release: the Submit's writes are done before Stop sees it leave.
  static void Leave(Shard& shard) { shard.active.fetch_sub(1, std::memory_order_release); }

  int64_t active() const {
    int64_t total = 0;
    // seq_cst: see Enter.
    for (const Shard& shard : shards_) total += shard.active.load(std::memory_order_seq_cst);
    return total;
  }

  template <typename Field>
  uint64_t Sum(Field field) const {
    uint64_t total = 0;
    for (const Shard& shard : shards_) {
      total += (shard.*field).load(std::memory_order_relaxed);  // relaxed: statistics.
    }
    return total;
  }
  uint64_t SumRejected(Reason reason) const { return SumArray(&Shard::rejected, reason); }
  uint64_t SumBusy(Reason reason) const { return SumArray(&Shard::busy, reason); }
  int64_t SumConfirmedUnheldMinor(int slot) const {
    int64_t total = 0;
    for (const Shard& shard : shards_) {
      // relaxed: statistics.
      total += shard.confirmed_unheld_minor[slot].load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  uint64_t SumArray(std::atomic<uint64_t> (Shard::*array)[kReasonCount], Reason reason) const {
    uint64_t total = 0;
    for (const Shard& shard : shards_) {
      // relaxed: statistics.
      total += (shard.*array)[static_cast<int>(reason)].load(std::memory_order_relaxed);
    }
    return total;
  }

  Shard shards_[kShards];
};

}  // namespace vouch::internal

#endif  // VOUCH_ENGINE_INTERNAL_INGEST_COUNTERS_H_
