// Tests of AgentRunner: the loop, stopping, waking, thread naming, pinning and the duty-cycle
// statistics, plus a lost-wakeup stress test of the Parker protocol under a real agent thread.
//
// Method: agents are small fakes that count their DoWork() calls and record what their thread
// sees (name, cpu). Timing bounds are generous (200 ms for a wakeup, 1 s for a stop) against park
// times of 5-10 s, so a pass does not depend on the machine's speed, while a lost wakeup or a
// missed stop still fails. The stress test forces every handoff through the parking path (no spin
// or yield phase, 10 s parks) and gives each handoff a 2 s watchdog, so a single lost wakeup fails
// fast instead of hanging.
#include "engine/agent/agent_runner.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/agent/agent.h"
#include "engine/agent/idle_strategy.h"
#include "gtest/gtest.h"

namespace vouch {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kLongParkNs = 5'000'000'000;
constexpr auto kWakeBound = milliseconds(200);
constexpr auto kStopBound = milliseconds(1'000);

// Parks on every idle turn, for a long time: a missed wakeup shows as a multi-second delay.
IdleConfig ParkAtOnce(int64_t park_ns) {
  return IdleConfig{.kind = IdleKind::kBackoffPark,
                    .spins_max = 0,
                    .yields_max = 0,
                    .park_min_ns = park_ns,
                    .park_max_ns = park_ns};
}

// Waits up to `bound` for `done`; true if it happened.
bool WaitFor(const std::function<bool()>& done, SteadyClock::duration bound) {
  const auto deadline = SteadyClock::now() + bound;
  while (!done()) {
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// Counts its turns; the work it reports comes from `pending`, published by a producer with a
// seq_cst RMW and taken here with a seq_cst RMW.
class CountingAgent : public Agent {
 public:
  explicit CountingAgent(std::string_view role = "vouch-count") : role_(role) {}

  int DoWork() override {
    // relaxed: a counter read by the test; carries no data.
    calls_.fetch_add(1, std::memory_order_relaxed);
    if (pending_.load(std::memory_order_seq_cst) == 0) return 0;
    const int64_t taken = pending_.exchange(0, std::memory_order_seq_cst);
    done_.fetch_add(taken, std::memory_order_relaxed);  // relaxed: a counter read by the test.
    return static_cast<int>(taken);
  }
  std::string_view role_name() const override { return role_; }

  // Producer side: publish work (a seq_cst RMW), then wake the agent.
  void Submit(int64_t count, Parker* parker) {
    pending_.fetch_add(count, std::memory_order_seq_cst);
    parker->Unpark();
  }
  int64_t calls() const { return calls_.load(std::memory_order_relaxed); }
  int64_t done() const { return done_.load(std::memory_order_relaxed); }

 private:
  const std::string role_;
  std::atomic<int64_t> pending_{0};
  std::atomic<int64_t> calls_{0};
  std::atomic<int64_t> done_{0};
};

TEST(AgentRunnerTest, RunsTheAgentUntilStopped) {
  CountingAgent agent;
  AgentRunner runner(&agent, IdleConfig{}, -1);
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return agent.calls() >= 200; }, std::chrono::seconds(10)));
  runner.Stop();
  const int64_t calls = agent.calls();
  std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(agent.calls(), calls);  // Nothing runs after Stop() returns.
  runner.Stop();                    // Idempotent.
}

TEST(AgentRunnerTest, StartTwiceIsRefused) {
  CountingAgent agent;
  AgentRunner runner(&agent, IdleConfig{}, -1);
  ASSERT_TRUE(runner.Start().ok());
  EXPECT_EQ(runner.Start().code(), absl::StatusCode::kFailedPrecondition);
  runner.Stop();
  EXPECT_EQ(runner.Start().code(), absl::StatusCode::kFailedPrecondition);  // Runs once.
}

TEST(AgentRunnerTest, BadIdleConfigIsRefused) {
  CountingAgent agent;
  AgentRunner runner(&agent, ParkAtOnce(-1), -1);
  EXPECT_EQ(runner.Start().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(agent.calls(), 0);
}

TEST(AgentRunnerTest, StopBeforeStartAndDestructorStop) {
  CountingAgent agent;
  {
    AgentRunner never_started(&agent, IdleConfig{}, -1);
    never_started.Stop();
  }
  {
    AgentRunner runner(&agent, ParkAtOnce(kLongParkNs), -1);
    ASSERT_TRUE(runner.Start().ok());
    ASSERT_TRUE(WaitFor([&] { return runner.parker()->park_count() >= 1; }, kStopBound));
  }  // The destructor stops and joins a parked agent.
  EXPECT_GE(agent.calls(), 1);
}

TEST(AgentRunnerTest, StopsPromptlyWhileParked) {
  CountingAgent agent;
  AgentRunner runner(&agent, ParkAtOnce(kLongParkNs), -1);
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runner.parker()->park_count() >= 1; }, kStopBound));
  std::this_thread::sleep_for(milliseconds(20));  // Most likely asleep in the kernel by now.
  const auto start = SteadyClock::now();
  runner.Stop();
  EXPECT_LT(SteadyClock::now() - start, kStopBound);
}

TEST(AgentRunnerTest, UnparkWakesAParkedAgent) {
  CountingAgent agent;
  AgentRunner runner(&agent, ParkAtOnce(kLongParkNs), -1);
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runner.parker()->park_count() >= 1; }, kStopBound));
  std::this_thread::sleep_for(milliseconds(20));
  const auto start = SteadyClock::now();
  agent.Submit(3, runner.parker());
  EXPECT_TRUE(WaitFor([&] { return agent.done() == 3; }, kWakeBound));
  EXPECT_LT(SteadyClock::now() - start, kWakeBound);
  EXPECT_EQ(runner.work_total(), 3u);
  runner.Stop();
}

// Records what the agent thread itself sees.
class ProbeAgent : public Agent {
 public:
  int DoWork() override {
    if (probed_.load(std::memory_order_acquire)) return 0;  // acquire: pairs with the release below.
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    name_ = name;
    cpu_ = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof(set), &set);
    cpus_allowed_ = CPU_COUNT(&set);
    probed_.store(true, std::memory_order_release);  // release: publishes the fields above.
    return 1;
  }
  std::string_view role_name() const override { return "vouch-probe"; }

  bool probed() const { return probed_.load(std::memory_order_acquire); }  // acquire: see above.
  std::string name_;
  int cpu_ = -1;
  int cpus_allowed_ = 0;

 private:
  std::atomic<bool> probed_{false};
};

// The names of this process's threads, as the kernel reports them.
std::vector<std::string> ThreadNamesOfThisProcess() {
  std::vector<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  return names;
}

TEST(AgentRunnerTest, NamesTheThreadAfterTheRole) {
  ProbeAgent agent;
  AgentRunner runner(&agent, IdleConfig{}, -1);
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return agent.probed(); }, kStopBound));
  EXPECT_EQ(agent.name_, "vouch-probe");
  const std::vector<std::string> names = ThreadNamesOfThisProcess();
  EXPECT_NE(std::find(names.begin(), names.end(), "vouch-probe"), names.end());
  runner.Stop();
}

bool ThisProcessMayRunOn(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_ISSET(cpu, &set);
}

TEST(AgentRunnerTest, PinsToAnAllowedCpu) {
  if (!ThisProcessMayRunOn(0)) GTEST_SKIP() << "cpu 0 is not in this process's affinity mask";
  ProbeAgent agent;
  AgentRunner runner(&agent, IdleConfig{}, 0);
  ASSERT_TRUE(runner.Start().ok());
  EXPECT_TRUE(runner.pinned());
  EXPECT_EQ(runner.pin_note(), "pinned to cpu 0");
  ASSERT_TRUE(WaitFor([&] { return agent.probed(); }, kStopBound));
  EXPECT_EQ(agent.cpu_, 0);
  EXPECT_EQ(agent.cpus_allowed_, 1);
  runner.Stop();
}

TEST(AgentRunnerTest, RunsUnpinnedWhenTheCpuIsNotAvailable) {
  ProbeAgent agent;
  AgentRunner runner(&agent, IdleConfig{}, 1000);
  ASSERT_TRUE(runner.Start().ok());
  EXPECT_FALSE(runner.pinned());
  EXPECT_NE(runner.pin_note().find("cpu 1000 is not in this process's affinity mask"),
            std::string::npos)
      << runner.pin_note();
  ASSERT_TRUE(WaitFor([&] { return agent.probed(); }, kStopBound));  // It runs all the same.
  EXPECT_GE(agent.cpus_allowed_, 1);
  runner.Stop();
}

TEST(AgentRunnerTest, NoCpuRequestedMeansUnpinned) {
  CountingAgent agent;
  AgentRunner runner(&agent, IdleConfig{}, -1);
  ASSERT_TRUE(runner.Start().ok());
  EXPECT_FALSE(runner.pinned());
  EXPECT_EQ(runner.pin_note(), "unpinned: no cpu requested");
  runner.Stop();
}

// More agents than this machine has cores, several on the same cpu: all make progress.
TEST(AgentRunnerTest, MoreAgentsThanCores) {
  const int agent_count = 2 * static_cast<int>(std::thread::hardware_concurrency()) + 2;
  std::vector<std::unique_ptr<CountingAgent>> agents;
  std::vector<std::unique_ptr<AgentRunner>> runners;
  for (int i = 0; i < agent_count; ++i) {
    agents.push_back(std::make_unique<CountingAgent>());
    runners.push_back(std::make_unique<AgentRunner>(agents.back().get(), IdleConfig{}, i % 2));
    ASSERT_TRUE(runners.back()->Start().ok());
  }
  for (int round = 1; round <= 100; ++round) {
    for (int i = 0; i < agent_count; ++i) agents[i]->Submit(1, runners[i]->parker());
    for (int i = 0; i < agent_count; ++i) {
      ASSERT_TRUE(WaitFor([&] { return agents[i]->done() == round; }, kStopBound)) << i;
    }
  }
  for (auto& runner : runners) runner->Stop();
}

// Sleeps in its first DoWork(), then idles.
class SlowOnceAgent : public Agent {
 public:
  int DoWork() override {
    if (slept_) return 0;
    slept_ = true;
    std::this_thread::sleep_for(milliseconds(20));
    return 1;
  }
  std::string_view role_name() const override { return "vouch-slow"; }

 private:
  bool slept_ = false;  // Agent thread only.
};

TEST(AgentRunnerTest, DutyCycleMaxReflectsASlowDoWork) {
  SlowOnceAgent agent;
  AgentRunner runner(&agent, IdleConfig{}, -1);
  EXPECT_EQ(runner.duty_cycle_max_ns(), 0);
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runner.work_total() == 1; }, kStopBound));
  runner.Stop();
  EXPECT_GE(runner.duty_cycle_max_ns(), 20'000'000);
  EXPECT_LT(runner.duty_cycle_max_ns(), 1'000'000'000);
  EXPECT_EQ(runner.work_total(), 1u);
}

// Lost-wakeup stress: each handoff is one unit of work published then Unpark()ed while the agent,
// which parks on every idle turn for 10 s, races to park. A lost wakeup stalls one handoff for 10 s;
// the per-handoff watchdog catches that in 2 s and fails instead of hanging.
void StressHandoffs(int producer_count, int64_t handoffs_per_producer) {
  CountingAgent agent;
  AgentRunner runner(&agent, ParkAtOnce(10'000'000'000), -1);
  ASSERT_TRUE(runner.Start().ok());
  // relaxed (kRelaxed): a flag between the producers; the joins order it for the final check.
  constexpr auto kRelaxed = std::memory_order_relaxed;
  std::atomic<int64_t> stalled_at{-1};
  std::atomic<int64_t> submitted{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < producer_count; ++p) {
    producers.emplace_back([&] {
      for (int64_t i = 0; i < handoffs_per_producer && stalled_at.load(kRelaxed) < 0; ++i) {
        // relaxed: a ticket number; Submit() publishes the work itself.
        const int64_t target = submitted.fetch_add(1, std::memory_order_relaxed) + 1;
        agent.Submit(1, runner.parker());
        const auto deadline = SteadyClock::now() + std::chrono::seconds(2);
        while (agent.done() < target) {  // Wait for the agent to take it (or a later one).
          if (SteadyClock::now() > deadline) {
            stalled_at.store(target, kRelaxed);
            return;
          }
          std::this_thread::yield();
        }
      }
    });
  }
  for (std::thread& producer : producers) producer.join();
  runner.Stop();
  const int64_t stalled = stalled_at.load(kRelaxed);
  EXPECT_EQ(stalled, -1) << "lost wakeup: handoff " << stalled << " stalled";
  EXPECT_EQ(agent.done(), producer_count * handoffs_per_producer);
  EXPECT_GT(runner.parker()->park_count(), 0u);
  EXPECT_GT(runner.parker()->wake_count(), 0u);
  std::printf("%d producer(s): %lld handoffs, %llu parks, %llu wakes\n", producer_count,
              static_cast<long long>(agent.done()),
              static_cast<unsigned long long>(runner.parker()->park_count()),
              static_cast<unsigned long long>(runner.parker()->wake_count()));
}

TEST(AgentRunnerStressTest, NoLostWakeupsOneProducer) { StressHandoffs(1, 100'000); }

TEST(AgentRunnerStressTest, NoLostWakeupsTwoProducers) { StressHandoffs(2, 25'000); }

// Work published with release stores and read with acquire loads, as the engine's verdict queues,
// journal cursors and record queues and the fraud rule mailbox do: the Parker must not lose a
// wake-up for a publisher that gives no seq_cst order of its own. One producer; the agent keeps
// the clock time at which it took each item, so that every wake-up's delay can be measured.
class ReleasePublishedAgent : public Agent {
 public:
  int DoWork() override {
    // acquire: pairs with the producer's release; relaxed would hide nothing more on x86.
    const int64_t published = published_.load(std::memory_order_acquire);
    if (published == taken_.load(std::memory_order_relaxed)) return 0;  // relaxed: own writes.
    taken_at_ns_.store(NowNs(), std::memory_order_relaxed);  // relaxed: read after taken_.
    // release: a producer that acquires taken_ sees taken_at_ns_.
    taken_.store(published, std::memory_order_release);
    return 1;
  }
  std::string_view role_name() const override { return "vouch-release"; }

  // Producer side: a plain release store, then the wake-up.
  void Publish(int64_t item, Parker* parker) {
    published_.store(item, std::memory_order_release);  // release: the agent acquires it.
    parker->Unpark();
  }
  // acquire: see DoWork.
  int64_t taken() const { return taken_.load(std::memory_order_acquire); }
  int64_t taken_at_ns() const { return taken_at_ns_.load(std::memory_order_relaxed); }

  static int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               SteadyClock::now().time_since_epoch())
        .count();
  }

 private:
  std::atomic<int64_t> published_{0};
  std::atomic<int64_t> taken_{0};
  std::atomic<int64_t> taken_at_ns_{0};
};

// Lost-wakeup stress with a release publisher. The agent parks on every idle turn for 1 s, so a
// lost wake-up shows as a delay near 1 s, far above any scheduling noise (a wake-up normally takes
// tens of microseconds); the watchdog stops the run at the first handoff not taken within 300 ms.
// Runs for 2 s of handoffs at most; prints the worst delay.
TEST(AgentRunnerStressTest, NoLostWakeupsForAReleasePublisher) {
  constexpr int64_t kParkNs = 1'000'000'000;
  constexpr int64_t kLostNs = 300'000'000;
  constexpr int64_t kHandoffsMax = 1'000'000;
  ReleasePublishedAgent agent;
  AgentRunner runner(&agent, ParkAtOnce(kParkNs), -1);
  ASSERT_TRUE(runner.Start().ok());
  const int64_t end_ns = ReleasePublishedAgent::NowNs() + 2'000'000'000;
  int64_t worst_ns = 0;
  int64_t handoffs = 0;
  while (handoffs < kHandoffsMax && ReleasePublishedAgent::NowNs() < end_ns) {
    const int64_t item = ++handoffs;
    // Jitter: spread the publication over the agent's few microseconds from its last take to its
    // park, where the arming and the look for work race with it.
    for (int64_t spin = (item * 7919) % 4096; spin > 0; --spin) {
      std::atomic_signal_fence(std::memory_order_seq_cst);  // Keeps the empty loop.
    }
    const int64_t published_ns = ReleasePublishedAgent::NowNs();
    agent.Publish(item, runner.parker());
    while (agent.taken() < item && ReleasePublishedAgent::NowNs() - published_ns < kLostNs) {
      std::this_thread::yield();
    }
    const int64_t delay_ns =
        agent.taken() < item ? kLostNs : agent.taken_at_ns() - published_ns;
    worst_ns = std::max(worst_ns, delay_ns);
    if (delay_ns >= kLostNs) break;
  }
  runner.Stop();
  std::printf("release publisher: %lld handoffs, %llu parks, %llu wakes, worst wake-up %lld us\n",
              static_cast<long long>(handoffs),
              static_cast<unsigned long long>(runner.parker()->park_count()),
              static_cast<unsigned long long>(runner.parker()->wake_count()),
              static_cast<long long>(worst_ns / 1000));
  EXPECT_LT(worst_ns, kLostNs) << "lost wake-up at handoff " << handoffs;
  EXPECT_GT(runner.parker()->wake_count(), 0u);
}

}  // namespace
}  // namespace vouch
