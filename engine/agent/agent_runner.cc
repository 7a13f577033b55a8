#include "engine/agent/agent_runner.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"

namespace vouch {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

AgentRunner::AgentRunner(Agent* agent, const IdleConfig& idle, int cpu)
    : agent_(agent), idle_config_(idle), cpu_(cpu) {}

AgentRunner::~AgentRunner() { Stop(); }

absl::Status AgentRunner::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("agent runner already started");
  if (absl::Status status = idle_config_.Validate(); !status.ok()) return status;
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& error) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start thread ", std::string(agent_->role_name()), ": ", error.what()));
  }
  // acquire: pairs with Run's release; pin_note_ is written before it.
  while (!started_.load(std::memory_order_acquire)) std::this_thread::yield();
  return absl::OkStatus();
}

void AgentRunner::Stop() {
  if (!thread_.joinable()) return;
  // seq_cst: Dekker's store before Unpark, so a thread about to park sees it (see parker.h).
  stop_.store(true, std::memory_order_seq_cst);
  parker_.Unpark();
  thread_.join();
}

void AgentRunner::NameAndPin() {
  const std::string name(agent_->role_name().substr(0, kThreadNameLengthMax));
  pthread_setname_np(pthread_self(), name.c_str());
  if (cpu_ < 0) {
    pin_note_ = "unpinned (no CPU configured)";
    return;
  }
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || cpu_ >= CPU_SETSIZE ||
      !CPU_ISSET(cpu_, &allowed)) {
    pin_note_ = absl::StrCat("unpinned: CPU ", cpu_, " is not available to this process");
    return;
  }
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu_, &one);
  if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one) != 0) {
    pin_note_ = absl::StrCat("unpinned: pinning to CPU ", cpu_, " failed");
    return;
  }
  pin_note_ = absl::StrCat("pinned to CPU ", cpu_);
  pinned_.store(true, std::memory_order_release);  // release: see pinned().
}

int AgentRunner::Turn() {
  const int64_t start_ns = NowNs();
  const int work = agent_->DoWork();
  if (work > 0) {
    const int64_t elapsed_ns = NowNs() - start_ns;
    // relaxed (both): single-writer statistics.
    if (elapsed_ns > duty_cycle_max_ns_.load(std::memory_order_relaxed)) {
      duty_cycle_max_ns_.store(elapsed_ns, std::memory_order_relaxed);
    }
    work_total_.store(work_total_.load(std::memory_order_relaxed) + work,
                      std::memory_order_relaxed);
  }
  return work;
}

void AgentRunner::Run() {
  NameAndPin();
  started_.store(true, std::memory_order_release);  // release: pin_note_ is written.
  IdleStrategy idle(idle_config_, &parker_);
  // seq_cst: the stop flag is part of the parking re-check (see Stop).
  auto look_for_work = [this] { return stop_.load(std::memory_order_seq_cst) ? 1 : Turn(); };
  while (!stop_.load(std::memory_order_relaxed)) {  // relaxed: the re-check above orders it.
    const int work = Turn();
    idle.Idle(work, look_for_work);
  }
}

}  // namespace vouch
