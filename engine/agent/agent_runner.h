// AgentRunner: runs one Agent on its own thread: loop { n = DoWork(); idle.Idle(n); } until Stop().
//
// Thread safety: the constructor, Start(), Stop() and the destructor are called by one owning
// thread. parker() is for producers on any thread (see parker.h). pinned() and pin_note() are set
// by Start() before the agent thread exists and are constant after it; read them once Start() has
// returned. duty_cycle_max_ns() and work_total() are single-writer counters of the agent thread,
// readable from any thread at any time (a recent value, not a snapshot of both).
//
// The agent thread is named after Agent::role_name(). It is pinned to `cpu` when cpu >= 0 and the
// cpu is in the starting thread's affinity mask (which new threads inherit); otherwise it runs
// unpinned and pin_note() says why. Several agents may share a cpu: with the default backoff idle
// strategy they yield and park rather than spin, so more agents than cores work.
#ifndef VOUCH_ENGINE_AGENT_AGENT_RUNNER_H_
#define VOUCH_ENGINE_AGENT_AGENT_RUNNER_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "engine/agent/agent.h"
#include "engine/agent/idle_strategy.h"
#include "engine/agent/parker.h"

namespace vouch {

class AgentRunner {
 public:
  // REQUIRES: agent outlives the runner; agent->role_name() has at most kThreadNameLengthMax
  // characters. cpu < 0 means "do not pin".
  AgentRunner(Agent* agent, const IdleConfig& idle, int cpu);
  ~AgentRunner();  // Stops the agent if it is running.
  AgentRunner(const AgentRunner&) = delete;
  AgentRunner& operator=(const AgentRunner&) = delete;

  // Starts the agent thread. kFailedPrecondition if already started (a runner runs once),
  // kInvalidArgument for a bad IdleConfig, the pthread_create error (e.g. kResourceExhausted)
  // if the thread cannot be created.
  [[nodiscard]] absl::Status Start();

  // Asks the agent to stop, wakes it if parked, and joins it. The DoWork() in progress completes.
  // Idempotent; a no-op before Start(). REQUIRES: not called from the agent thread.
  void Stop();

  // Producers call parker()->Unpark() after publishing work for this agent.
  Parker* parker() { return &parker_; }

  bool pinned() const { return pinned_; }
  std::string pin_note() const { return pin_note_; }

  // The longest single DoWork() call so far, in ns.
  int64_t duty_cycle_max_ns() const {
    return duty_cycle_max_ns_.load(std::memory_order_relaxed);  // relaxed: a statistic.
  }
  // The sum of DoWork() results so far.
  uint64_t work_total() const {
    return work_total_.load(std::memory_order_relaxed);  // relaxed: a statistic.
  }

 private:
  static void* ThreadMain(void* runner);
  void Run();
  void RecordTurn(int64_t duration_ns, int work_count);
  bool stop_requested() const {
    // acquire: pairs with Stop()'s release. This is the agent's look for work in the Parker
    // protocol (parker.h), with Stop() as the producer; the Parker's fences order it.
    return stop_.load(std::memory_order_acquire);
  }

  // Constant after construction.
  Agent* const agent_;
  const IdleConfig idle_config_;
  const int cpu_;

  // Owning thread only; pinned_ and pin_note_ are written before the agent thread exists.
  pthread_t thread_{};
  bool started_ = false;
  bool joined_ = false;
  bool pinned_ = false;
  std::string pin_note_ = "not started";

  // Written once by Stop(), read by the agent thread on every turn.
  std::atomic<bool> stop_{false};

  // Written only by the agent thread. alignas(64): on their own cache line, so that threads
  // polling them do not slow the agent's read of stop_ or producers' reads of the Parker.
  alignas(64) std::atomic<int64_t> duty_cycle_max_ns_{0};
  std::atomic<uint64_t> work_total_{0};

  // Shared with producers; aligned to its own cache line by its type.
  Parker parker_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_AGENT_AGENT_RUNNER_H_
