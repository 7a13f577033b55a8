// Parker: lets producers wake an agent early from its idle sleep.
//
// Thread safety: PrepareToPark(), CancelPark() and Park() are called only by the one agent thread
// that owns the Parker. Unpark() is called by any number of producer threads, concurrently with each
// other and with the agent. The counters may be read from any thread.
//
// Protocol (why no wakeup is lost). The agent parks in three steps:
//   1. PrepareToPark()   publishes "armed" in the futex word (seq_cst store);
//   2. it looks for work once more (a DoWork() that returns 0, reading with seq_cst loads);
//   3. Park(timeout_ns)  sleeps in the kernel only while the word still reads "armed".
// A producer publishes its work first (seq_cst store or read-modify-write), then calls Unpark(),
// which loads the word (seq_cst) and, only if it reads "armed", swaps in "idle" and issues
// FUTEX_WAKE. This is Dekker's pattern: the four seq_cst operations fall in one total order, so
// either step 2 sees the work, or the producer's load sees "armed". In the second case the swap
// makes step 3 return at once (the kernel compares the word before sleeping, atomically with
// respect to FUTEX_WAKE) or FUTEX_WAKE wakes the sleeper.
//
// REQUIRES of every producer and agent using a Parker (the price of a one-load Unpark): the work is
// published with a memory_order_seq_cst store or read-modify-write before Unpark(), and the agent's
// step 2 reads it with memory_order_seq_cst. Release/acquire is not enough: the producer's load of
// the word may then be satisfied before its store of the work leaves the store buffer, and both
// sides miss each other (the agent then sleeps until its park timeout). On x86-64 a seq_cst load
// is a plain MOV; a seq_cst store is an XCHG instead of a MOV; a seq_cst RMW costs what any RMW costs.
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
    // seq_cst: Dekker's store; the agent's seq_cst work check that follows must not be ordered
    // before it. Pairs with the seq_cst load in Unpark().
    state_.store(kArmed, std::memory_order_seq_cst);
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

  // Any thread, after publishing work (see REQUIRES above). One load when the agent is not
  // parking; a swap and a FUTEX_WAKE system call only when it is.
  void Unpark() {
    // seq_cst: Dekker's load; must not be satisfied before this thread's seq_cst publication of
    // the work. On x86-64 this is a plain MOV.
    if (state_.load(std::memory_order_seq_cst) == kArmed) Wake();
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
