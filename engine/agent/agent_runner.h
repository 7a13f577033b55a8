// AgentRunner: runs one Agent on its own thread: loop { work = DoWork(); idle.Idle(work); }.
//
// The thread is named after the agent's role (visible in top -H, perf and gdb) and pinned to
// `cpu` when that CPU is in the process's affinity mask. Otherwise it runs unpinned and
// pin_note() says why: on a 2-core machine several stages share cores, and that is not an
// error.
//
// Thread safety: Start and Stop are called by the owner thread, not concurrently. parker() may
// be used by any thread (producers call Unpark). The statistics may be read from any thread.
#ifndef VOUCH_ENGINE_AGENT_AGENT_RUNNER_H_
#define VOUCH_ENGINE_AGENT_AGENT_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "engine/agent/agent.h"
#include "engine/agent/idle_strategy.h"
#include "engine/agent/parker.h"

namespace vouch {

class AgentRunner {
 public:
  AgentRunner(Agent* agent, const IdleConfig& idle, int cpu);
  ~AgentRunner();
  AgentRunner(const AgentRunner&) = delete;
  AgentRunner& operator=(const AgentRunner&) = delete;

  absl::Status Start();
  // Asks the loop to end, wakes it, joins. Idempotent.
  void Stop();

  Parker* parker() { return &parker_; }
  bool pinned() const { return pinned_.load(std::memory_order_acquire); }  // acquire: see Run.
  // Set once by the agent thread before `started_`; read after Start returned.
  std::string pin_note() const { return pin_note_; }
  // Longest single DoWork() turn so far (duty-cycle maximum).
  int64_t duty_cycle_max_ns() const {
    return duty_cycle_max_ns_.load(std::memory_order_relaxed);  // relaxed: a statistic.
  }
  uint64_t work_total() const {
    return work_total_.load(std::memory_order_relaxed);  // relaxed: a statistic.
  }

 private:
  void Run();
  void NameAndPin();
  int Turn();

  Agent* const agent_;
  const IdleConfig idle_config_;
  const int cpu_;
  Parker parker_;
  std::thread thread_;
  std::string pin_note_;
  std::atomic<bool> started_{false};
  std::atomic<bool> pinned_{false};
  std::atomic<bool> stop_{false};
  // Written only by the agent thread.
  std::atomic<int64_t> duty_cycle_max_ns_{0};
  std::atomic<uint64_t> work_total_{0};
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_AGENT_AGENT_RUNNER_H_
