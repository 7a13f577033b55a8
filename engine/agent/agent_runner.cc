#include "engine/agent/agent_runner.h"

#include <sched.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_format.h"
#include "engine/types/clock.h"

namespace vouch {
namespace {

// Where the agent thread will run; decided before it is created.
struct PinPlan {
  bool pinned = false;
  std::string note;
};

// "0-1,4" for a set of cpus {0, 1, 4}.
std::string FormatCpuSet(const cpu_set_t& set) {
  std::string out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    int last = cpu;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
    // One constant format string: clang checks absl formats at compile time.
    absl::StrAppendFormat(&out, "%s%d", out.empty() ? "" : ",", cpu);
    if (last > cpu) absl::StrAppendFormat(&out, "-%d", last);
    cpu = last;
  }
  return out;
}

PinPlan PlanPin(int cpu) {
  if (cpu < 0) return {false, "unpinned: no cpu requested"};
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    return {false, absl::StrFormat("unpinned: sched_getaffinity failed: %s", strerror(errno))};
  }
  if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
    return {false, absl::StrFormat("unpinned: cpu %d is not in this process's affinity mask {%s}",
                                   cpu, FormatCpuSet(allowed))};
  }
  return {true, absl::StrFormat("pinned to cpu %d", cpu)};
}

// Applies a pin plan to the attributes of the thread about to be created.
void ApplyPin(int cpu, pthread_attr_t* attr, PinPlan* plan) {
  if (!plan->pinned) return;
  cpu_set_t only;
  CPU_ZERO(&only);
  CPU_SET(cpu, &only);
  const int error = pthread_attr_setaffinity_np(attr, sizeof(only), &only);
  if (error != 0) {
    *plan = {false, absl::StrFormat("unpinned: cannot pin to cpu %d: %s", cpu, strerror(error))};
  }
}

}  // namespace

AgentRunner::AgentRunner(Agent* agent, const IdleConfig& idle, int cpu)
    : agent_(agent), idle_config_(idle), cpu_(cpu) {
  assert(agent_ != nullptr);
  assert(agent_->role_name().size() <= kThreadNameLengthMax);
}

AgentRunner::~AgentRunner() { Stop(); }

absl::Status AgentRunner::Start() {
  if (started_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("agent '%s' was already started", agent_->role_name()));
  }
  if (absl::Status valid = idle_config_.Validate(); !valid.ok()) return valid;

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  PinPlan plan = PlanPin(cpu_);
  ApplyPin(cpu_, &attr, &plan);
  const int error = pthread_create(&thread_, &attr, &AgentRunner::ThreadMain, this);
  pthread_attr_destroy(&attr);
  if (error != 0) {
    return absl::ErrnoToStatus(
        error, absl::StrFormat("cannot start the thread of agent '%s'", agent_->role_name()));
  }
  started_ = true;
  pinned_ = plan.pinned;
  pin_note_ = std::move(plan.note);
  return absl::OkStatus();
}

void AgentRunner::Stop() {
  if (!started_ || joined_) return;
  assert(!pthread_equal(thread_, pthread_self()));
  // release: the producer's publication in the Parker protocol (parker.h); the "work" is the stop.
  stop_.store(true, std::memory_order_release);
  parker_.Unpark();
  [[maybe_unused]] const int error = pthread_join(thread_, nullptr);
  assert(error == 0);
  joined_ = true;
}

void* AgentRunner::ThreadMain(void* runner) {
  static_cast<AgentRunner*>(runner)->Run();
  return nullptr;
}

void AgentRunner::Run() {
  // Named here rather than by Start() so that every DoWork() already runs under the name.
  char name[kThreadNameLengthMax + 1] = {};
  agent_->role_name().copy(name, kThreadNameLengthMax);  // Truncates only if asserts are off.
  [[maybe_unused]] const int error = pthread_setname_np(pthread_self(), name);
  assert(error == 0);

  IdleStrategy idle(idle_config_, &parker_);
  const MonotonicClock* clock = MonotonicClock::Default();
  while (!stop_requested()) {
    const int64_t start_ns = clock->NowNs();
    const int work_count = agent_->DoWork();
    RecordTurn(clock->NowNs() - start_ns, work_count);
    idle.Idle(work_count);
  }
}

void AgentRunner::RecordTurn(int64_t duration_ns, int work_count) {
  assert(work_count >= 0);
  // relaxed (all four): single-writer statistics that publish no other data. Load-then-store
  // rather than a read-modify-write: this thread is the only writer.
  if (duration_ns > duty_cycle_max_ns_.load(std::memory_order_relaxed)) {
    duty_cycle_max_ns_.store(duration_ns, std::memory_order_relaxed);
  }
  if (work_count > 0) {
    work_total_.store(work_total_.load(std::memory_order_relaxed) + work_count,
                      std::memory_order_relaxed);
  }
}

}  // namespace vouch
