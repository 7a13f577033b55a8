#include "tools/perf/step.h"

#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/types/clock.h"

namespace vouch::perf {
namespace {

constexpr int64_t kNsPerS = 1'000'000'000;
// The first transaction is due this long after the step is set up, once every thread runs.
constexpr int64_t kStartDelayNs = 20'000'000;
// A producer ahead of schedule sleeps until the transaction is due, however short the gap: on
// 2 cores a producer that spins or yields while it waits takes the CPU the stages need. A sleep
// overshoots by tens of microseconds, so at high rates a producer wakes behind schedule and
// submits the transactions due meanwhile back to back (confirm_from_intended counts the wait).
constexpr auto kBusyBackoff = std::chrono::microseconds(20);
constexpr size_t kPollBatchMax = 1024;
constexpr auto kPollIdle = std::chrono::microseconds(50);

void NameThisThread(const std::string& name) {
  (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

void WaitUntil(const Clock& clock, int64_t due_ns) {
  const int64_t ahead_ns = due_ns - clock.NowNs();
  if (ahead_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(ahead_ns));
}

// Submits its share of the schedule. Thread safety: Run() on its own thread; read after join.
class Producer {
 public:
  Producer(Subject* subject, const StepConfig& config, int index, int64_t start_ns)
      : subject_(subject),
        generator_(workload::ForProducer(config.workload, index)),
        index_(index),
        stride_(config.producers),
        scheduled_(config.scheduled()),
        ns_per_transaction_(kNsPerS / config.rate),
        start_ns_(start_ns),
        end_ns_(start_ns + static_cast<int64_t>(config.duration_s * kNsPerS)) {}

  void Run() {
    NameThisThread(name());
    // Sleeps here are tens of microseconds; the default 50 us timer slack would double them.
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    for (uint64_t k = index_; k < scheduled_; k += stride_) {
      const int64_t due_ns = start_ns_ + static_cast<int64_t>(k * ns_per_transaction_);
      WaitUntil(clock_, due_ns);
      if (clock_.NowNs() >= end_ns_) break;  // Behind schedule at the end: the rest is not sent.
      SubmitUntilAnswered(generator_.Next(), due_ns);
    }
    times_ = SampleThisThread();  // The thread is gone by the time the step samples the rest.
  }

  const StepResult& tally() const { return tally_; }
  const StepLatencies& latency() const { return latency_; }
  int64_t last_answer_ns() const { return last_answer_ns_; }
  const ThreadTimes& times() const { return times_; }
  std::string name() const { return absl::StrCat("bench-prod-", index_); }

 private:
  void SubmitUntilAnswered(const Transaction& txn, int64_t due_ns) {
    ++tally_.sent;
    for (;;) {
      const int64_t before_ns = clock_.NowNs();
      const Confirmation answer = subject_->Submit(txn);
      const int64_t after_ns = clock_.NowNs();
      latency_.submit_call.Record(after_ns - before_ns);
      if (answer.status != ConfirmStatus::kBusy) {
        latency_.confirm_from_intended.Record(after_ns - due_ns);
        ++tally_.answered;
        ++(answer.seq != 0 ? tally_.confirmed : tally_.rejected);
        last_answer_ns_ = after_ns;
        return;
      }
      ++tally_.busy_retries;
      if (answer.reason == Reason::kShuttingDown || after_ns >= end_ns_) {
        ++tally_.abandoned;
        return;
      }
      std::this_thread::sleep_for(kBusyBackoff);
    }
  }

  Subject* const subject_;
  const MonotonicClock clock_;
  workload::WorkloadGenerator generator_;
  const int index_;
  const int stride_;
  const uint64_t scheduled_;
  const double ns_per_transaction_;
  const int64_t start_ns_;
  const int64_t end_ns_;
  StepResult tally_;  // Counts only.
  StepLatencies latency_;
  int64_t last_answer_ns_ = 0;
  ThreadTimes times_;
};

// Polls outcomes on the main thread: one outcome per sequence number, and the outcome-side
// latencies. Thread safety: main thread only.
class OutcomeTally {
 public:
  OutcomeTally(Subject* subject, const StepConfig& config, StepResult* result)
      : subject_(subject),
        sample_every_(config.sample_every),
        seen_(config.scheduled() + 1, 0),
        batch_(kPollBatchMax),
        result_(result) {}

  size_t PollOnce() {
    const size_t n = subject_->Poll(batch_.data(), batch_.size(), sample_every_);
    for (size_t i = 0; i < n; ++i) Count(batch_[i]);
    return n;
  }

  int64_t last_decided_ns() const { return last_decided_ns_; }

 private:
  void Count(const PolledOutcome& polled) {
    const Outcome& outcome = polled.outcome;
    ++result_->outcomes;
    ++result_->outcomes_by_kind[static_cast<int>(outcome.kind)];
    if (outcome.seq == 0 || outcome.seq >= seen_.size()) {
      ++result_->unknown_outcomes;
    } else if (seen_[outcome.seq]++ != 0) {
      ++result_->duplicate_outcomes;
    }
    last_decided_ns_ = std::max(last_decided_ns_, outcome.decided_ns);
    StepLatencies& latency = result_->latency;
    latency.confirm_to_outcome.Record(outcome.decided_ns - outcome.confirmed_ns);
    if (polled.fraud_decided_ns != 0) {
      latency.confirm_to_fraud.Record(polled.fraud_decided_ns - outcome.confirmed_ns);
    }
    if (polled.ledger_decided_ns != 0) {
      latency.confirm_to_ledger.Record(polled.ledger_decided_ns - outcome.confirmed_ns);
    }
  }

  Subject* const subject_;
  const uint64_t sample_every_;
  std::vector<uint8_t> seen_;  // By sequence number; a step hands out at most scheduled().
  std::vector<PolledOutcome> batch_;
  StepResult* const result_;
  int64_t last_decided_ns_ = 0;
};

void AddTally(const Producer& producer, StepResult* result) {
  const StepResult& tally = producer.tally();
  result->sent += tally.sent;
  result->answered += tally.answered;
  result->confirmed += tally.confirmed;
  result->rejected += tally.rejected;
  result->busy_retries += tally.busy_retries;
  result->abandoned += tally.abandoned;
  result->latency.submit_call.Merge(producer.latency().submit_call);
  result->latency.confirm_from_intended.Merge(producer.latency().confirm_from_intended);
}

}  // namespace

double StepResult::throughput_confirmed() const {
  return answer_window_s > 0 ? answered / answer_window_s : 0;
}

double StepResult::throughput_verified() const {
  const uint64_t verified = outcomes_by_kind[static_cast<int>(OutcomeKind::kVerified)] +
                            outcomes_by_kind[static_cast<int>(OutcomeKind::kLateFailed)];
  return outcome_window_s > 0 ? verified / outcome_window_s : 0;
}

int64_t StepResult::process_cpu_ns() const {
  int64_t sum = 0;
  for (const auto& [name, times] : thread_times) sum += times.run_ns;
  return sum;
}

double StepResult::throughput_outcomes() const {
  return outcome_window_s > 0 ? outcomes / outcome_window_s : 0;
}

bool StepResult::passed() const {
  return drained && missing_outcomes == 0 && duplicate_outcomes == 0 && unknown_outcomes == 0 &&
         subject_confirmed == confirmed;
}

absl::StatusOr<StepResult> RunStep(const StepConfig& config) {
  absl::StatusOr<std::unique_ptr<Subject>> made =
      MakeSubject(config.design, config.workload, kPollBatchMax, config.verifiers);
  if (!made.ok()) return made.status();
  Subject& subject = **made;
  if (absl::Status status = subject.Start(); !status.ok()) return status;

  const ThreadSample threads_at_start = SampleThreads();
  const int64_t machine_busy_at_start_ns = MachineBusyNs();
  StepResult result;
  result.config = config;
  result.scheduled = config.scheduled();
  const MonotonicClock clock;
  const int64_t start_ns = clock.NowNs() + kStartDelayNs;
  OutcomeTally outcomes(&subject, config, &result);
  std::vector<std::unique_ptr<Producer>> producers;
  std::vector<std::thread> threads;
  std::atomic<int> running{config.producers};
  for (int i = 0; i < config.producers; ++i) {
    producers.push_back(std::make_unique<Producer>(&subject, config, i, start_ns));
    threads.emplace_back([p = producers.back().get(), &running] {
      p->Run();
      running.fetch_sub(1, std::memory_order_release);  // release: its tally is complete.
    });
  }
  // acquire: pairs with each producer's release (the join below orders the tallies anyway).
  while (running.load(std::memory_order_acquire) > 0) {
    if (outcomes.PollOnce() == 0) std::this_thread::sleep_for(kPollIdle);
  }
  int64_t last_answer_ns = start_ns;
  for (size_t i = 0; i < threads.size(); ++i) {
    threads[i].join();
    AddTally(*producers[i], &result);
    last_answer_ns = std::max(last_answer_ns, producers[i]->last_answer_ns());
  }
  // Drain by polling: a subject whose outcome queue fills holds the rest back until polled.
  const int64_t give_up_ns = clock.NowNs() + config.drain_timeout_ns;
  while (result.outcomes < subject.confirmed() && clock.NowNs() < give_up_ns) {
    if (outcomes.PollOnce() == 0) std::this_thread::sleep_for(kPollIdle);
  }
  result.machine_busy_ns = MachineBusyNs() - machine_busy_at_start_ns;
  result.thread_times = TimesBetween(threads_at_start, SampleThreads());
  for (const auto& producer : producers) {
    ThreadTimes& times = result.thread_times[producer->name()];
    times.run_ns += producer->times().run_ns;
    times.wait_ns += producer->times().wait_ns;
  }
  const StopReport stop = subject.Stop();
  while (outcomes.PollOnce() > 0) {
  }
  result.drained = stop.drained;
  result.subject_confirmed = stop.confirmed;
  const uint64_t distinct = result.outcomes - result.duplicate_outcomes - result.unknown_outcomes;
  result.missing_outcomes = stop.confirmed > distinct ? stop.confirmed - distinct : 0;
  result.answer_window_s = (last_answer_ns - start_ns) / 1e9;
  result.outcome_window_s = (outcomes.last_decided_ns() - start_ns) / 1e9;
  return result;
}

}  // namespace vouch::perf
