// Parker: lets producers wake an agent early from its idle sleep.
//
// Thread safety: PrepareToPark(), CancelPark() and Park() are called only by the one agent thread
// that owns the Parker. Unpark() is called by any number of producer threads, concurrently with each
// other and with the agent. The counters may be read from any thread.
//
// Protocol (why no wakeup is lost). The agent parks in three steps:
//   1. PrepareToPark()   stores "armed" in the futex word, then issues a seq_cst fence;
//   2. it looks for work once more (a DoWork() that returns 0, with loads of any order);
//   3. Park(timeout_ns)  sleeps in the kernel only while the word still reads "armed".
// A producer publishes its work first (a store or read-modify-write of any order), then calls
// Unpark(), which issues a seq_cst fence, loads the word and, only if it reads "armed", swaps in
// "idle" and issues FUTEX_WAKE. This is Dekker's pattern with fences: each side stores, fences,
// then loads what the other side stored, and the two seq_cst fences fall in one total order. If
// the agent's fence comes first, the producer's load after its own fence sees "armed"; if the
// producer's fence comes first, the agent's look for work after its fence sees the work. In the
// first case the swap makes step 3 return at once (the kernel compares the word before sleeping,
// atomically with respect to FUTEX_WAKE) or FUTEX_WAKE wakes the sleeper.
//
// Why fences, not seq_cst operations: the engine's publishers are release stores (the verdict and
// settlement queues, the journal's acked cursors and record queues, the fraud rule mailbox), and
// release/acquire alone lets the producer's load of the word be satisfied before its store of the
// work leaves the store buffer, while the agent's look for work reads the old value: both sides
// miss each other and the agent sleeps until its park timeout. A seq_cst operation orders only
// against other seq_cst operations, so a seq_cst store of "armed" does not stop a later acquire
// load of the work from being done first either. The fences order every access around them, so
// the protocol holds for any publisher and any look for work, and nothing is required of either.
// The cost: one MFENCE per Unpark() on x86-64 (tens of cycles, about what an XCHG costs: the
// price of the seq_cst store that producers had to use instead), and one per park, which is on
// the idle path.
//
// Invariant: only the agent moves the word from "idle" to "armed", so there is no ABA between
// steps 1 and 3, and only the producer whose swap reads "armed" pays for the system call.
#ifndef VOUCH_ENGINE_AGENT_PARKER_H_
#define VOUCH_ENGINE_AGENT_PARKER_H_

#include <atomic>
#include <cstdint>

namespace vouch {

// alignas(64): producers read state_ on every submit; keeping it off the lines that the agent
// writes on every turn (its statistics, its queue indexes) keeps that read a cache hit.
class alignas(64) Parker {
 public:
  Parker() = default;
  Parker(const Parker&) = delete;
  Parker& operator=(const Parker&) = delete;

  // Agent thread only: step 1 of the protocol. Idempotent.
  void PrepareToPark() {
    // relaxed: the fence below orders it; it carries no data.
    state_.store(kArmed, std::memory_order_relaxed);
    // seq_cst fence: Dekker's store-then-load; the look for work that follows may not be done
    // before "armed" is visible. Pairs with the fence in Unpark().
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }

  // Agent thread only: the agent found work and will not park; producers need not wake it.
  void CancelPark() {
    // relaxed: carries no data; a producer that still reads "armed" only makes a spare FUTEX_WAKE.
    state_.store(kIdle, std::memory_order_relaxed);
  }

  // Agent thread only: step 3. Sleeps until Unpark(), the timeout, or a signal; returns at once
  // if Unpark() ran since PrepareToPark(). Any return means "look for work again".
  // REQUIRES: timeout_ns > 0; PrepareToPark() and a fruitless look for work since the last Park().
  void Park(int64_t timeout_ns);

  // Any thread, after publishing work with a store of any order. A fence and one load when the
  // agent is not parking; a swap and a FUTEX_WAKE system call only when it is.
  void Unpark() {
    // seq_cst fence: Dekker's store-then-load; the load below may not be satisfied before this
    // thread's publication of the work is visible. Pairs with the fence in PrepareToPark().
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // relaxed: ordered by the fence; the agent re-reads the work itself, so it carries no data.
    if (state_.load(std::memory_order_relaxed) == kArmed) Wake();
  }

  // Number of Park() calls (single writer: the agent).
  uint64_t park_count() const { return park_count_.load(std::memory_order_relaxed); }
  // Number of FUTEX_WAKE system calls made by Unpark().
  uint64_t wake_count() const { return wake_count_.load(std::memory_order_relaxed); }

 private:
  static constexpr uint32_t kIdle = 0;
  static constexpr uint32_t kArmed = 1;

  void Wake();

  // The futex word: kIdle or kArmed. Armed only by the agent; disarmed by the agent or a producer.
  std::atomic<uint32_t> state_{kIdle};
  // Statistics: they publish no data, so every access is relaxed.
  std::atomic<uint64_t> park_count_{0};  // Written only by the agent thread.
  std::atomic<uint64_t> wake_count_{0};  // Written by producers, on the system-call path only.
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_AGENT_PARKER_H_
