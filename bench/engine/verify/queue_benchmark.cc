// The hand-offs between the engine's stages, each against a std::mutex + std::deque baseline in
// the same binary, so the ratios come from one run on one machine state.
//
// Channels (one item type each, as the engine uses them):
//   - rwq_verdict:   moodycamel::ReaderWriterQueue<Verdict> (VerdictQueue, SettlementQueue).
//   - cq_outcome:    moodycamel::ConcurrentQueue<Outcome> built as the engine builds its poll
//                    queue (one explicit producer with a token; consumers without one).
//   - ring:          InFlightRing Claim + Publish on the producer side, IsPublished + Free on the
//                    consumer side: how an ingest thread hands a transaction to a stage.
//   - slot_verdict:  the Disruptor shape issue 14 asks to consider instead of rwq_verdict: the
//                    verifier writes its verdict into its own slot of the entry (here an array
//                    indexed by seq, as the ring's entries are) and advances its own cursor; the
//                    reconciler reads the cursor and the slots below it, and its own cursor
//                    frees the slots (the ring's Free, in the engine).
//   - mutex_spin_*:  std::mutex + std::deque, both sides polling (the like-for-like baseline for
//                    a busy-waiting consumer).
//   - mutex_cv_*:    std::mutex + std::deque + std::condition_variable, both sides blocking (the
//                    usual way to write it).
// Every channel is bounded at kCapacity items: a full channel makes the sender wait, as
// back-pressure does in the engine.
//
// Method. Two threads: the benchmark thread and one helper started per run. Waiting on a
// lock-free channel (and on mutex_spin) is a busy-wait with a pause instruction, as the engine's
// busy_spin idle strategy waits, so each thread keeps a core: the test machine has exactly 2
// cores, one per thread. Threads are not pinned: with two runnable threads on two cores the
// scheduler has nowhere better to put them, and the engine leaves pinning to the operator
// (Options::cpus). The machine is shared, though, and a spinning thread whose partner was
// descheduled would burn its whole time slice; so after kSpinsMax fruitless spins (tens of
// microseconds, far above a hop) a waiter yields the core, as the engine's backoff strategy
// does. The yields counter (both threads) shows how often that happened; it should stay small
// next to the iteration count. Run with repetitions and random interleaving, so that outside
// load falls on the lock-free channels and the baselines alike.
//   - BM_Hop: ping-pong. The benchmark thread sends item n; the helper receives it and sends it
//     back on a second channel of the same kind; the benchmark thread receives it. Time/op is
//     the round trip; hop_ns is half of it, the latency of one hand-off between two running
//     threads (cache-line transfers included). Each round trip is also timed on its own (one
//     clock read per round trip, counted in every case alike) into a histogram:
//     hop_p50_ns and hop_p99_ns are half its percentiles. The median is the figure to compare
//     on a shared machine, where a few descheduled round trips inflate the mean.
//   - BM_Stream: the benchmark thread sends items back to back, the helper receives them. Rate
//     is items per second through one channel (ns_per_item its inverse); ns_per_item_p50 is the
//     median over chunks of kCapacity items, robust to the same interference. The producer can
//     be at most kCapacity items ahead of the consumer, so stopping the clock before the last
//     items are received overstates the rate by at most kCapacity / iterations.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "benchmark/benchmark.h"
#include "concurrentqueue/concurrentqueue.h"
#include "engine/metrics/histogram.h"
#include "engine/ring/in_flight_ring.h"
#include "engine/verify/queues.h"
#include "readerwriterqueue/readerwriterqueue.h"

namespace vouch {
namespace {

constexpr size_t kCapacity = 1024;
static_assert((kCapacity & (kCapacity - 1)) == 0, "the ring needs a power of two");
constexpr uint64_t kStop = 0;  // Item number that tells the helper to return.
constexpr int kSpinsMax = 1000;

// Yields taken by this thread's waits; read by the thread itself (the helper hands its count
// over when it returns, ordered by join).
thread_local uint64_t t_yields = 0;

// One wait for a channel: pause while spinning, then yield now and then. Lives for one Send or
// Receive.
class Spinner {
 public:
  void Pause() {
    if (++spins_ < kSpinsMax) {
      __builtin_ia32_pause();
      return;
    }
    spins_ = 0;
    ++t_yields;
    std::this_thread::yield();
  }

 private:
  int spins_ = 0;
};

// Items are numbered from 1; the number goes where the engine puts its sequence or id.
template <typename T>
T MakeItem(uint64_t n);
template <>
Verdict MakeItem<Verdict>(uint64_t n) {
  return {n, VerifierId::kFraud, true, Reason::kNone, 0};
}
template <>
Outcome MakeItem<Outcome>(uint64_t n) {
  Outcome outcome;
  outcome.id = n;
  outcome.seq = n;
  return outcome;
}
template <>
Transaction MakeItem<Transaction>(uint64_t n) {
  Transaction txn;
  txn.id = n;
  return txn;
}
uint64_t Number(const Verdict& verdict) { return verdict.seq; }
uint64_t Number(const Outcome& outcome) { return outcome.seq; }
uint64_t Number(const Transaction& txn) { return txn.id; }

// Thread safety of every channel: Send from one thread, Receive from one other thread.

class RwqChannel {
 public:
  using Item = Verdict;
  RwqChannel() : queue_(kCapacity) {}
  void Send(const Item& item) {
    Spinner spinner;
    while (!queue_.try_enqueue(item)) spinner.Pause();  // Never grows, as in the engine.
  }
  Item Receive() {
    Item item;
    Spinner spinner;
    while (!queue_.try_dequeue(item)) spinner.Pause();
    return item;
  }

 private:
  VerdictQueue queue_;
};

class CqChannel {
 public:
  using Item = Outcome;
  // As EngineImpl::Init builds the poll queue: one explicit producer, no implicit ones.
  CqChannel() : queue_(kCapacity, 1, 0), token_(queue_) {}
  void Send(const Item& item) {
    Spinner spinner;
    while (!queue_.try_enqueue(token_, item)) spinner.Pause();
  }
  Item Receive() {
    Item item;
    Spinner spinner;
    while (!queue_.try_dequeue(item)) spinner.Pause();  // Engine::PollOutcomes: no token either.
    return item;
  }

 private:
  OutcomeQueue queue_;
  moodycamel::ProducerToken token_;  // Used by the sending thread only.
};

class RingChannel {
 public:
  using Item = Transaction;
  RingChannel() : ring_(kCapacity) {}
  // As EngineImpl::Admit: claim, fill the payload, publish.
  void Send(const Item& item) {
    Sequence seq = 0;
    InFlightEntry* entry;
    Spinner spinner;
    while ((entry = ring_.Claim(&seq)) == nullptr) spinner.Pause();
    entry->payload.txn = item;
    ring_.Publish(entry, seq);
  }
  // As a stage's look for work, then the reconciler's Free (here one consumer does both).
  Item Receive() {
    Spinner spinner;
    while (!ring_.IsPublished(next_)) spinner.Pause();
    const Item item = ring_.At(next_).payload.txn;
    ring_.Free(next_);
    ++next_;
    return item;
  }

 private:
  InFlightRing ring_;
  Sequence next_ = 1;  // Owned by the receiving thread.
};

// Thread safety: the verifier thread writes slots_ and verified_below_, the reconciler thread
// joined_below_; each side caches the other's cursor and reloads it only when the cached value
// says it must wait, as a Disruptor sequence barrier does, so a stream of verdicts moves about
// one cursor line per batch rather than per verdict.
class SlotChannel {
 public:
  using Item = Verdict;
  void Send(const Item& item) {
    // The slot's position; in the engine it is the verdict's seq. The harness's stop item has
    // seq 0, so the position is counted here and the item's number rides in the slot.
    const Sequence seq = next_sent_++;
    Spinner spinner;
    while (seq >= joined_below_cache_ + kCapacity) {
      // acquire: pairs with the reconciler's release; it has read the slot we reuse.
      joined_below_cache_ = joined_below_.load(std::memory_order_acquire);
      if (seq >= joined_below_cache_ + kCapacity) spinner.Pause();
    }
    Slot& slot = slots_[seq & (kCapacity - 1)];
    slot.seq = item.seq;
    slot.pass = item.pass;
    slot.reason = item.reason;
    slot.code = item.code;
    slot.decided_ns = item.decided_ns;
    // release: publishes the slot to the reconciler with the cursor.
    verified_below_.store(seq + 1, std::memory_order_release);
  }
  Item Receive() {
    Spinner spinner;
    while (next_ >= verified_below_cache_) {
      // acquire: pairs with the verifier's release; the slots below it are written.
      verified_below_cache_ = verified_below_.load(std::memory_order_acquire);
      if (next_ >= verified_below_cache_) spinner.Pause();
    }
    const Slot& slot = slots_[next_ & (kCapacity - 1)];
    Item item{slot.seq, VerifierId::kFraud, slot.pass, slot.reason, slot.decided_ns, slot.code};
    ++next_;
    // release: the slot may be reused (the engine frees the ring entry). Once per item here,
    // as the reconciler retires entries one by one.
    joined_below_.store(next_, std::memory_order_release);
    return item;
  }

 private:
  struct Slot {
    Sequence seq = 0;
    bool pass = false;
    Reason reason = Reason::kNone;
    uint16_t code = 0;
    int64_t decided_ns = 0;
  };
  Slot slots_[kCapacity];
  alignas(64) std::atomic<Sequence> verified_below_{1};
  Sequence joined_below_cache_ = 1;  // Verifier thread.
  Sequence next_sent_ = 1;           // Verifier thread.
  alignas(64) std::atomic<Sequence> joined_below_{1};
  Sequence verified_below_cache_ = 1;  // Reconciler thread.
  Sequence next_ = 1;                  // Reconciler thread.
};

template <typename T>
class MutexSpinChannel {
 public:
  using Item = T;
  void Send(const Item& item) {
    Spinner spinner;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (items_.size() < kCapacity) {
          items_.push_back(item);
          return;
        }
      }
      spinner.Pause();
    }
  }
  Item Receive() {
    Spinner spinner;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!items_.empty()) {
          const Item item = items_.front();
          items_.pop_front();
          return item;
        }
      }
      spinner.Pause();
    }
  }

 private:
  std::mutex mu_;
  std::deque<Item> items_ ABSL_GUARDED_BY(mu_);
};

template <typename T>
class MutexBlockingChannel {
 public:
  using Item = T;
  void Send(const Item& item) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      not_full_.wait(lock, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return items_.size() < kCapacity;
      });
      items_.push_back(item);
    }
    not_empty_.notify_one();
  }
  Item Receive() {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      not_empty_.wait(lock, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !items_.empty();
      });
      item = items_.front();
      items_.pop_front();
    }
    not_full_.notify_one();
    return item;
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Item> items_ ABSL_GUARDED_BY(mu_);
};

// Runs `body` on a helper thread; Join reports the yields its waits took.
template <typename Body>
class Helper {
 public:
  explicit Helper(Body body)
      : thread_([this, body]() mutable {
          body();
          yields_ = t_yields;
        }) {}
  // Waits for the helper's body to return. Returns the yields it took.
  uint64_t Join() {
    thread_.join();
    return yields_;
  }

 private:
  uint64_t yields_ = 0;  // Written by the helper before it ends; read after Join.
  std::thread thread_;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename Channel>
void BM_Hop(benchmark::State& state) {
  using Item = typename Channel::Item;
  Channel there;
  Channel back;
  t_yields = 0;
  Helper echo([&] {
    for (;;) {
      const Item item = there.Receive();
      if (Number(item) == kStop) return;
      back.Send(item);
    }
  });
  LatencyHistogram round_trips;
  uint64_t n = 0;
  const int64_t start_ns = NowNs();
  int64_t last_ns = start_ns;
  for (auto _ : state) {
    there.Send(MakeItem<Item>(++n));
    if (Number(back.Receive()) != n) std::abort();
    const int64_t now_ns = NowNs();
    round_trips.Record(now_ns - last_ns);
    last_ns = now_ns;
  }
  there.Send(MakeItem<Item>(kStop));
  const uint64_t yields = echo.Join() + t_yields;
  const double iterations = static_cast<double>(state.iterations());
  state.counters["hop_ns"] = static_cast<double>(last_ns - start_ns) / (2 * iterations);
  state.counters["hop_p50_ns"] = static_cast<double>(round_trips.Percentile(50)) / 2;
  state.counters["hop_p99_ns"] = static_cast<double>(round_trips.Percentile(99)) / 2;
  state.counters["yields"] = static_cast<double>(yields);
}

template <typename Channel>
void BM_Stream(benchmark::State& state) {
  using Item = typename Channel::Item;
  Channel channel;
  t_yields = 0;
  Helper drain([&] {
    for (uint64_t expected = 1;; ++expected) {
      const uint64_t n = Number(channel.Receive());
      if (n == kStop) return;
      if (n != expected) std::abort();  // Every channel here is FIFO.
    }
  });
  LatencyHistogram chunks;  // Time to send each kCapacity items.
  uint64_t n = 0;
  const int64_t start_ns = NowNs();
  int64_t last_ns = start_ns;
  for (auto _ : state) {
    channel.Send(MakeItem<Item>(++n));
    if (n % kCapacity == 0) {
      const int64_t now_ns = NowNs();
      chunks.Record(now_ns - last_ns);
      last_ns = now_ns;
    }
  }
  const int64_t end_ns = NowNs();
  channel.Send(MakeItem<Item>(kStop));
  const uint64_t yields = drain.Join() + t_yields;
  state.SetItemsProcessed(state.iterations());
  state.counters["ns_per_item"] =
      static_cast<double>(end_ns - start_ns) / static_cast<double>(state.iterations());
  if (chunks.count() > 0) {
    state.counters["ns_per_item_p50"] = static_cast<double>(chunks.Percentile(50)) / kCapacity;
  }
  state.counters["yields"] = static_cast<double>(yields);
}

#define VOUCH_QUEUE_BENCHMARKS(Channel, label)                                \
  BENCHMARK_TEMPLATE(BM_Hop, Channel)->Name("BM_Hop/" label)->UseRealTime(); \
  BENCHMARK_TEMPLATE(BM_Stream, Channel)->Name("BM_Stream/" label)->UseRealTime()

VOUCH_QUEUE_BENCHMARKS(RwqChannel, "rwq_verdict");
VOUCH_QUEUE_BENCHMARKS(SlotChannel, "slot_verdict");
VOUCH_QUEUE_BENCHMARKS(CqChannel, "cq_outcome");
VOUCH_QUEUE_BENCHMARKS(RingChannel, "ring");
VOUCH_QUEUE_BENCHMARKS(MutexSpinChannel<Verdict>, "mutex_spin_verdict");
VOUCH_QUEUE_BENCHMARKS(MutexSpinChannel<Outcome>, "mutex_spin_outcome");
VOUCH_QUEUE_BENCHMARKS(MutexSpinChannel<Transaction>, "mutex_spin_transaction");
VOUCH_QUEUE_BENCHMARKS(MutexBlockingChannel<Verdict>, "mutex_cv_verdict");
VOUCH_QUEUE_BENCHMARKS(MutexBlockingChannel<Outcome>, "mutex_cv_outcome");
VOUCH_QUEUE_BENCHMARKS(MutexBlockingChannel<Transaction>, "mutex_cv_transaction");

}  // namespace
}  // namespace vouch
