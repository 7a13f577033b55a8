#include "engine/agent/parker.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cassert>

namespace vouch {
namespace {

// The futex system call reads the word as a plain 32-bit integer.
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(std::atomic<uint32_t>::is_always_lock_free);

uint32_t* FutexWord(std::atomic<uint32_t>* word) { return reinterpret_cast<uint32_t*>(word); }

timespec ToTimespec(int64_t duration_ns) {
  return timespec{.tv_sec = static_cast<time_t>(duration_ns / 1'000'000'000),
                  .tv_nsec = static_cast<long>(duration_ns % 1'000'000'000)};
}

}  // namespace

void Parker::Park(int64_t timeout_ns) {
  assert(timeout_ns > 0);
  // relaxed: a statistic with a single writer, this thread.
  park_count_.store(park_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  const timespec timeout = ToTimespec(timeout_ns);
  // The kernel sleeps only while the word equals kArmed. Its results (0, EAGAIN, ETIMEDOUT, EINTR)
  // all mean the same to the caller: look for work again.
  syscall(SYS_futex, FutexWord(&state_), FUTEX_WAIT_PRIVATE, kArmed, &timeout, nullptr, 0);
}

void Parker::Wake() {
  // relaxed: the swap carries no data (the agent looks for the work itself after its fence),
  // and the futex system call below orders it before the kernel's check for sleepers. Only the
  // producer that swaps kArmed out makes the system call, so concurrent Unpark()s cost one wake.
  if (state_.exchange(kIdle, std::memory_order_relaxed) != kArmed) return;
  wake_count_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic.
  syscall(SYS_futex, FutexWord(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace vouch
