// demo: vouch's main job, end to end. An open-loop workload (normal payments, fraud patterns,
// overdrafts) runs against a threaded engine for --duration_s. Midway the fraud verifier stalls
// for --stall_ms. One line a second shows throughput, latency, outcomes, holds and backlog. At
// the end the engine drains, and the demo checks the two promises: money is conserved, and every
// confirmation got exactly one outcome. Exit status: 0 when both hold, 1 when one fails, 2 for a
// bad flag.
//
// Threads: --producers submit threads, one outcome consumer (poll mode: the engine has no
// sink), and the main thread, which prints the live lines, starts the stall and plays the fraud
// desk (it releases held accounts once a second, as an analyst clearing reviewed cases would;
// otherwise the compromised accounts stay held and every later fraud attempt is refused at
// ingest, which hides the fraud verifier).
//
// Measurement: the load is open loop. The k-th transaction is due at start + k / rate whatever
// happened to the ones before it, and its confirm latency runs from that due time to the final
// answer, BUSY retries included. A stall that holds the producers back therefore shows up in the
// latency instead of thinning the load (no coordinated omission). The Submit call alone is
// measured too.
#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/metrics/histogram.h"
#include "engine/options.h"
#include "engine/testing/engine_test_peer.h"
#include "tools/workload/workload.h"

ABSL_FLAG(int, duration_s, 10, "Seconds of offered load.");
ABSL_FLAG(double, rate, 50'000, "Offered transactions per second, split across the producers.");
ABSL_FLAG(int, producers, 2, "Submitting threads.");
ABSL_FLAG(int64_t, accounts, 10'000, "Accounts opened in the ledger.");
ABSL_FLAG(double, fraud_share, 0.02, "Share of transactions that carry a fraud pattern.");
ABSL_FLAG(double, insufficient_share, 0.01, "Share of transactions beyond any balance.");
ABSL_FLAG(std::string, mode, "async", "When Submit waits for verification: async|hybrid|sync.");
ABSL_FLAG(double, stall_at_s, 4, "When the fraud verifier stalls, in seconds from the start.");
ABSL_FLAG(int64_t, stall_ms, 1'500, "How long the fraud verifier stalls; 0 for no stall.");
ABSL_FLAG(int64_t, deadline_ms, 200, "Verification deadline: confirm to final outcome.");
ABSL_FLAG(uint64_t, seed, 1, "Workload seed; producer i uses seed + i.");
ABSL_FLAG(bool, release_holds, true, "Release held accounts once a second (the fraud desk).");
ABSL_FLAG(std::string, timeline, "",
          "Write the per-second timeline (rates, outcome counts, confirm latency, the stall) as "
          "JSON here; tools/report/plot_timeline.py draws it.");

namespace vouch::demo {
namespace {

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerS = 1'000'000'000;
// Producers hand their latencies to the reporter this often: per-second figures stay accurate to
// a few ms, and the mutex is taken hundreds of times a second, not once per transaction.
constexpr int64_t kFlushIntervalNs = 5 * kNsPerMs;
// After a BUSY the producer retries the same transaction after this pause.
constexpr auto kBusyBackoff = std::chrono::microseconds(20);
constexpr size_t kPollBatchMax = 256;
constexpr auto kPollIdle = std::chrono::microseconds(50);
// One byte per sequence number bounds the run: rate * duration_s transactions at most.
constexpr double kTransactionsMax = 200e6;

// ---------------------------------------------------------------------------------------------
// Configuration.

struct DemoConfig {
  int duration_s = 0;
  double rate = 0;
  int producers = 0;
  workload::WorkloadConfig workload;
  PolicyMode mode = PolicyMode::kAsync;
  double stall_at_s = 0;
  int64_t stall_ms = 0;
  int64_t deadline_ms = 0;
  bool release_holds = true;

  // Transactions due over the run; also the largest sequence number the engine can hand out.
  uint64_t scheduled() const { return static_cast<uint64_t>(rate * duration_s); }
  bool stalls() const { return stall_ms > 0 && stall_at_s < duration_s; }
};

// `why` is a std::string: this Abseil's string_view is its own type, not std::string_view.
absl::Status BadFlag(const std::string& flag, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

absl::StatusOr<DemoConfig> ConfigFromFlags() {
  DemoConfig config;
  config.duration_s = absl::GetFlag(FLAGS_duration_s);
  config.rate = absl::GetFlag(FLAGS_rate);
  config.producers = absl::GetFlag(FLAGS_producers);
  config.stall_at_s = absl::GetFlag(FLAGS_stall_at_s);
  config.stall_ms = absl::GetFlag(FLAGS_stall_ms);
  config.deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  config.release_holds = absl::GetFlag(FLAGS_release_holds);
  if (config.duration_s < 1 || config.duration_s > 3600) {
    return BadFlag("duration_s", "must be in [1, 3600]");
  }
  if (!(config.rate >= 1)) return BadFlag("rate", "must be >= 1");
  if (config.rate * config.duration_s > kTransactionsMax) {
    return BadFlag("rate", "times --duration_s must be at most 200,000,000 transactions");
  }
  if (config.producers < 1 || config.producers > 64) {
    return BadFlag("producers", "must be in [1, 64]");
  }
  if (!(config.stall_at_s >= 0)) return BadFlag("stall_at_s", "must be >= 0");
  if (config.stall_ms < 0 || config.stall_ms > 3'600'000) {
    return BadFlag("stall_ms", "must be in [0, 3600000]");
  }
  if (config.deadline_ms < 1 || config.deadline_ms > 3'600'000) {
    return BadFlag("deadline_ms", "must be in [1, 3600000]");
  }
  const int64_t accounts = absl::GetFlag(FLAGS_accounts);
  if (accounts < 2 || accounts > 1'000'000) return BadFlag("accounts", "must be in [2, 1000000]");
  absl::StatusOr<PolicyMode> mode = ParsePolicyMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) return BadFlag("mode", std::string(mode.status().message()));
  config.mode = *mode;

  config.workload.seed = absl::GetFlag(FLAGS_seed);
  config.workload.accounts = static_cast<size_t>(accounts);
  config.workload.fraud_share = absl::GetFlag(FLAGS_fraud_share);
  config.workload.insufficient_funds_share = absl::GetFlag(FLAGS_insufficient_share);
  if (absl::Status status = config.workload.Validate(); !status.ok()) {
    return BadFlag("fraud_share or --insufficient_share", std::string(status.message()));
  }
  return config;
}

Options EngineOptions(const DemoConfig& config) {
  Options options;
  options.accounts = workload::Accounts(config.workload);
  options.fraud_rules = workload::DemoFraudRules();
  options.verification_deadline_ns = config.deadline_ms * kNsPerMs;
  options.policy.mode = config.mode;
  return options;  // No outcome sink: the consumer polls.
}

// ParseCommandLine exits with status 1 on a malformed value or an unknown flag (and after
// --help). The demo promises 2 for a bad flag, so an exit while parsing is turned into 2.
// Main thread only: flags are parsed, and exit() runs its handlers, there.
bool g_parsing_flags = false;

void ExitTwoIfParsing() {
  if (g_parsing_flags) {
    std::fflush(nullptr);
    std::_Exit(2);
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

// "850ns", "12.3us", "4.5ms", "1.20s".
std::string FormatNs(int64_t ns) {
  if (ns < 1'000) return absl::StrFormat("%dns", ns);
  if (ns < 1'000'000) return absl::StrFormat("%.1fus", ns / 1e3);
  if (ns < kNsPerS) return absl::StrFormat("%.1fms", ns / 1e6);
  return absl::StrFormat("%.2fs", ns / 1e9);
}

void NameThisThread(const std::string& name) {
  // Linux keeps 15 characters; names here are short by construction.
  (void)pthread_setname_np(pthread_self(), name.substr(0, kThreadNameLengthMax).c_str());
}

void SleepUntilNs(const vouch::Clock& clock, int64_t when_ns) {
  const int64_t ahead_ns = when_ns - clock.NowNs();
  if (ahead_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(ahead_ns));
}

// Single-writer counter that other threads read; relaxed: statistics that publish nothing.
void Bump(std::atomic<uint64_t>& counter) {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}
uint64_t Read(const std::atomic<uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// LiveStats: the producers' latencies, for the live line and the final report.
//
// Thread safety: every producer Merge()s its local histograms every kFlushIntervalNs; the main
// thread takes the per-second interval. One mutex guards all of it.
class LiveStats {
 public:
  void Merge(const LatencyHistogram& confirm, const LatencyHistogram& submit) {
    absl::MutexLock lock(&mu_);
    interval_confirm_.Merge(confirm);
    run_submit_.Merge(submit);
  }

  // The confirm latencies merged since the last call; they join the run's totals.
  LatencyHistogram TakeInterval() {
    absl::MutexLock lock(&mu_);
    LatencyHistogram interval = interval_confirm_;
    run_confirm_.Merge(interval_confirm_);
    interval_confirm_.Reset();
    return interval;
  }

  // REQUIRES: the producers have stopped and TakeInterval() has collected their last flush.
  std::pair<LatencyHistogram, LatencyHistogram> RunConfirmAndSubmit() const {
    absl::MutexLock lock(&mu_);
    return {run_confirm_, run_submit_};
  }

 private:
  mutable absl::Mutex mu_;
  LatencyHistogram interval_confirm_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram run_confirm_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram run_submit_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------------------------
// Producer: submits its share of the schedule (transactions k = index, index + producers, ...).
//
// Thread safety: Run() on the producer's own thread; tally() after join.
struct ProducerTally {
  uint64_t answered = 0;   // CONFIRMED or REJECTED.
  uint64_t abandoned = 0;  // Still BUSY when the run ended.
};

class Producer {
 public:
  Producer(Engine* engine, LiveStats* stats, const DemoConfig& config, int index, int64_t start_ns)
      : engine_(engine),
        stats_(stats),
        clock_(engine->clock()),
        generator_(workload::ForProducer(config.workload, index)),
        index_(index),
        stride_(config.producers),
        scheduled_(config.scheduled()),
        ns_per_transaction_(kNsPerS / config.rate),
        start_ns_(start_ns),
        end_ns_(start_ns + config.duration_s * kNsPerS) {}

  void Run() {
    NameThisThread(absl::StrCat("demo-prod-", index_));
    // Sleeps here are tens of microseconds; the default 50 us timer slack would double them.
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    last_flush_ns_ = clock_.NowNs();
    for (uint64_t k = index_; k < scheduled_; k += stride_) {
      const int64_t due_ns = start_ns_ + static_cast<int64_t>(k * ns_per_transaction_);
      SleepUntilNs(clock_, due_ns);
      if (clock_.NowNs() >= end_ns_) break;  // Behind schedule at the end: the rest is not sent.
      SubmitUntilAnswered(generator_.Next(), due_ns);
    }
    Flush(clock_.NowNs());
  }

  const ProducerTally& tally() const { return tally_; }

 private:
  void SubmitUntilAnswered(const Transaction& txn, int64_t due_ns) {
    for (;;) {
      const int64_t before_ns = clock_.NowNs();
      const Confirmation answer = engine_->Submit(txn);
      const int64_t after_ns = clock_.NowNs();
      submit_.Record(after_ns - before_ns);
      if (answer.status != ConfirmStatus::kBusy) {
        confirm_.Record(after_ns - due_ns);
        ++tally_.answered;
        if (after_ns - last_flush_ns_ >= kFlushIntervalNs) Flush(after_ns);
        return;
      }
      if (answer.reason == Reason::kShuttingDown || after_ns >= end_ns_) {
        ++tally_.abandoned;
        return;
      }
      std::this_thread::sleep_for(kBusyBackoff);
    }
  }

  void Flush(int64_t now_ns) {
    stats_->Merge(confirm_, submit_);
    confirm_.Reset();
    submit_.Reset();
    last_flush_ns_ = now_ns;
  }

  Engine* const engine_;
  LiveStats* const stats_;
  const vouch::Clock& clock_;
  workload::WorkloadGenerator generator_;
  const int index_;
  const int stride_;
  const uint64_t scheduled_;
  const double ns_per_transaction_;
  const int64_t start_ns_;
  const int64_t end_ns_;
  LatencyHistogram confirm_;  // From due time to the final answer.
  LatencyHistogram submit_;   // One Submit call.
  int64_t last_flush_ns_ = 0;
  ProducerTally tally_;
};

// ---------------------------------------------------------------------------------------------
// OutcomeConsumer: polls outcomes and checks that each sequence number gets exactly one.
//
// Thread safety: Run() on the consumer thread is the only writer. The live counters are
// single-writer atomics that the main thread reads at any time; everything else is read after
// the thread is joined.
class OutcomeConsumer {
 public:
  // Time outs of transactions confirmed in [from_ns, to_ns) are put down to the stall episode.
  struct Episode {
    int64_t from_ns = 0;
    int64_t to_ns = 0;
  };

  OutcomeConsumer(Engine* engine, uint64_t seq_max, Episode episode)
      : engine_(engine), episode_(episode), seen_(seq_max + 1, 0), batch_(kPollBatchMax) {}

  // Polls until `engine_stopped` is set and the queue is empty. Stop() returns only once every
  // outcome is queued, so the last empty poll after it has seen them all.
  void Run(const std::atomic<bool>& engine_stopped) {
    NameThisThread("demo-outcomes");
    for (;;) {
      // acquire: pairs with the release after Stop(); the polls below see every outcome.
      const bool stopped = engine_stopped.load(std::memory_order_acquire);
      const size_t polled = PollOnce();
      if (polled == 0 && stopped) return;
      if (polled == 0) std::this_thread::sleep_for(kPollIdle);
    }
  }

  // Live (any thread).
  uint64_t received() const { return Read(received_); }
  uint64_t kind_count(OutcomeKind kind) const { return Read(by_kind_[static_cast<int>(kind)]); }
  uint64_t reason_count(Reason reason) const { return Read(by_reason_[static_cast<int>(reason)]); }

  // After join.
  uint64_t duplicates() const { return duplicates_; }
  uint64_t unknown_seqs() const { return unknown_seqs_; }
  uint64_t timeouts_in_episode() const { return timeouts_in_episode_; }
  uint64_t timeouts_by(VerifierId verifier) const {
    return timeouts_by_verifier_[static_cast<int>(verifier)];
  }
  const LatencyHistogram& confirm_to_decided() const { return confirm_to_decided_; }
  const LatencyHistogram& confirm_to_outcome() const { return confirm_to_outcome_; }

 private:
  size_t PollOnce() {
    const size_t polled = engine_->PollOutcomes(batch_.data(), batch_.size());
    const int64_t now_ns = engine_->clock().NowNs();
    for (size_t i = 0; i < polled; ++i) Record(batch_[i], now_ns);
    return polled;
  }

  void Record(const Outcome& outcome, int64_t now_ns) {
    Bump(received_);
    Bump(by_kind_[static_cast<int>(outcome.kind)]);
    if (outcome.kind != OutcomeKind::kVerified) Bump(by_reason_[static_cast<int>(outcome.reason)]);
    if (outcome.seq == 0 || outcome.seq >= seen_.size()) {
      ++unknown_seqs_;
    } else if (seen_[outcome.seq]++ != 0) {
      ++duplicates_;
    }
    confirm_to_decided_.Record(outcome.decided_ns - outcome.confirmed_ns);
    confirm_to_outcome_.Record(now_ns - outcome.confirmed_ns);
    if (outcome.kind == OutcomeKind::kLateTimeout) {
      ++timeouts_by_verifier_[static_cast<int>(outcome.verifier)];
      if (outcome.confirmed_ns >= episode_.from_ns && outcome.confirmed_ns < episode_.to_ns) {
        ++timeouts_in_episode_;
      }
    }
  }

  Engine* const engine_;
  const Episode episode_;

  // Written by the consumer thread; read live.
  std::atomic<uint64_t> received_{0};
  std::array<std::atomic<uint64_t>, 4> by_kind_{};  // By OutcomeKind.
  std::array<std::atomic<uint64_t>, kReasonCount> by_reason_{};

  // Consumer thread only until joined.
  std::vector<uint8_t> seen_;  // Outcomes per sequence number; sized for the whole run.
  std::vector<Outcome> batch_;
  uint64_t duplicates_ = 0;
  uint64_t unknown_seqs_ = 0;
  uint64_t timeouts_in_episode_ = 0;
  std::array<uint64_t, 3> timeouts_by_verifier_{};  // By VerifierId.
  // Both from the confirmation: to the reconciler's decision, and to its receipt here (which
  // adds the outcome queue and this thread's polling).
  LatencyHistogram confirm_to_decided_;
  LatencyHistogram confirm_to_outcome_;
};

// ---------------------------------------------------------------------------------------------
// Reporting.

constexpr OutcomeKind kKinds[] = {OutcomeKind::kVerified, OutcomeKind::kLateFailed,
                                  OutcomeKind::kLateTimeout};

// "insufficient_funds 1200, blocked_device 300" for the `limit` largest counts.
template <typename CountOf>
std::string TopReasons(CountOf count_of, size_t limit) {
  std::vector<std::pair<uint64_t, Reason>> counts;
  for (int r = 1; r < kReasonCount; ++r) {
    const uint64_t n = count_of(static_cast<Reason>(r));
    if (n > 0) counts.push_back({n, static_cast<Reason>(r)});
  }
  std::sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a > b; });
  std::string out;
  for (size_t i = 0; i < counts.size() && i < limit; ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", std::string(ReasonName(counts[i].second)), " ",
                    counts[i].first);
  }
  return out.empty() ? "none" : out;
}

// One second of the run, for the timeline picture.
struct TimelineSample {
  int second = 0;
  uint64_t confirmed_per_s = 0;
  int64_t confirm_p50_ns = 0, confirm_p99_ns = 0, confirm_max_ns = 0;
  uint64_t verified = 0, late_failed = 0, late_timeout = 0;  // Cumulative.
  uint64_t busy = 0, backlog = 0;
};

TimelineSample PrintLiveLine(int second, Engine& engine, LiveStats& live,
                             const OutcomeConsumer& consumer, uint64_t& last_confirmed) {
  const EngineStats stats = engine.Stats();
  const LatencyHistogram latency = live.TakeInterval();
  const TimelineSample sample{second,
                              stats.confirmed - last_confirmed,
                              latency.Percentile(50),
                              latency.Percentile(99),
                              latency.max_ns(),
                              consumer.kind_count(OutcomeKind::kVerified),
                              consumer.kind_count(OutcomeKind::kLateFailed),
                              consumer.kind_count(OutcomeKind::kLateTimeout),
                              stats.busy_total(),
                              stats.unverified()};
  std::printf(
      "[%3ds] %7lu conf/s  confirm p50 %-7s p99 %-7s max %-7s | VERIFIED %lu  LATE_FAILED %lu"
      "  LATE_TIMEOUT %lu (%s) | holds %zu  backlog %lu  busy %lu\n",
      second, stats.confirmed - last_confirmed, FormatNs(latency.Percentile(50)).c_str(),
      FormatNs(latency.Percentile(99)).c_str(), FormatNs(latency.max_ns()).c_str(),
      consumer.kind_count(OutcomeKind::kVerified), consumer.kind_count(OutcomeKind::kLateFailed),
      consumer.kind_count(OutcomeKind::kLateTimeout),
      TopReasons([&](Reason r) { return consumer.reason_count(r); }, 3).c_str(),
      engine.Holds().size(), stats.unverified(), stats.busy_total());
  std::fflush(stdout);
  last_confirmed = stats.confirmed;
  return sample;
}

void WriteTimeline(const std::string& path, const std::vector<TimelineSample>& samples,
                   double stall_at_s, int64_t stall_ms) {
  std::string json = absl::StrFormat("{\"stall_at_s\": %.3f, \"stall_ms\": %d, \"seconds\": [",
                                     stall_at_s, stall_ms);
  for (size_t i = 0; i < samples.size(); ++i) {
    const TimelineSample& s = samples[i];
    absl::StrAppendFormat(
        &json,
        "%s\n {\"second\": %d, \"confirmed_per_s\": %u, \"confirm_p50_ns\": %d, "
        "\"confirm_p99_ns\": %d, \"confirm_max_ns\": %d, \"verified\": %u, \"late_failed\": %u, "
        "\"late_timeout\": %u, \"busy\": %u, \"backlog\": %u}",
        i == 0 ? "" : ",", s.second, s.confirmed_per_s, s.confirm_p50_ns, s.confirm_p99_ns,
        s.confirm_max_ns, s.verified, s.late_failed, s.late_timeout, s.busy, s.backlog);
  }
  json += "\n]}\n";
  std::ofstream(path) << json;
}

// The run's clock: a live line every second, the stall when it is due, the fraud desk.
void RunSeconds(const DemoConfig& config, Engine& engine, LiveStats& live,
                const OutcomeConsumer& consumer, int64_t start_ns) {
  const vouch::Clock& clock = engine.clock();
  const int64_t stall_ns = start_ns + static_cast<int64_t>(config.stall_at_s * kNsPerS);
  bool stall_pending = config.stalls();
  uint64_t last_confirmed = 0;
  std::vector<TimelineSample> timeline;
  for (int second = 1; second <= config.duration_s; ++second) {
    const int64_t tick_ns = start_ns + second * kNsPerS;
    if (stall_pending && stall_ns <= tick_ns) {
      SleepUntilNs(clock, stall_ns);
      EngineTestPeer::StallVerifier(engine, VerifierId::kFraud, config.stall_ms * kNsPerMs);
      std::printf("[%5.2fs] -- fraud verifier stalled for %ld ms --\n",
                  (clock.NowNs() - start_ns) / 1e9, config.stall_ms);
      stall_pending = false;
    }
    SleepUntilNs(clock, tick_ns);
    timeline.push_back(PrintLiveLine(second, engine, live, consumer, last_confirmed));
    if (config.release_holds) {
      for (uint64_t account : engine.Holds()) (void)engine.ReleaseHold(account);
    }
  }
  if (const std::string path = absl::GetFlag(FLAGS_timeline); !path.empty()) {
    WriteTimeline(path, timeline, config.stalls() ? config.stall_at_s : -1, config.stall_ms);
  }
}

void PrintReasonLine(const char* label, uint64_t total, const uint64_t (&by_reason)[kReasonCount]) {
  std::printf("  %-13s %lu (%s)\n", label, total,
              TopReasons([&](Reason r) { return by_reason[static_cast<int>(r)]; }, 8).c_str());
}

void PrintConfirmations(const DemoConfig& config, const EngineStats& stats,
                        const ProducerTally& tally) {
  const uint64_t not_sent = config.scheduled() - tally.answered - tally.abandoned;
  std::printf(
      "Confirmations: %lu scheduled, %lu answered, %lu abandoned while BUSY at the end, "
      "%lu not sent (behind schedule at the end)\n",
      config.scheduled(), tally.answered, tally.abandoned, not_sent);
  std::printf("  %-13s %lu sequenced (%lu held for verification by the %s policy)\n", "CONFIRMED",
              stats.confirmed, stats.held, std::string(PolicyModeName(config.mode)).c_str());
  PrintReasonLine("REJECTED", stats.rejected_total(), stats.rejected);
  PrintReasonLine("BUSY", stats.busy_total(), stats.busy);
}

void PrintOutcomes(const DemoConfig& config, const OutcomeConsumer& consumer,
                   const OutcomeConsumer::Episode& episode, int64_t start_ns) {
  std::printf("Outcomes: %lu received\n", consumer.received());
  std::printf("  %-13s %lu\n", "VERIFIED", consumer.kind_count(OutcomeKind::kVerified));
  const auto failed = [&](Reason r) {
    return r == Reason::kDeadlineExceeded ? 0 : consumer.reason_count(r);
  };
  std::printf("  %-13s %lu (%s)\n", "LATE_FAILED", consumer.kind_count(OutcomeKind::kLateFailed),
              TopReasons(failed, 10).c_str());
  std::printf("  %-13s %lu (fraud %lu, ledger %lu)", "LATE_TIMEOUT",
              consumer.kind_count(OutcomeKind::kLateTimeout),
              consumer.timeouts_by(VerifierId::kFraud), consumer.timeouts_by(VerifierId::kLedger));
  if (config.stalls()) {
    std::printf("; %lu confirmed during the stall episode [%.2fs, %.2fs), %lu outside",
                consumer.timeouts_in_episode(), (episode.from_ns - start_ns) / 1e9,
                (episode.to_ns - start_ns) / 1e9,
                consumer.kind_count(OutcomeKind::kLateTimeout) - consumer.timeouts_in_episode());
  }
  std::printf("\n");
}

void PrintLatencies(LiveStats& live, const OutcomeConsumer& consumer) {
  const auto [confirm, submit] = live.RunConfirmAndSubmit();
  std::printf("Latency:\n");
  std::printf("  confirm (due time -> answer)  %s\n", confirm.Summary().c_str());
  std::printf("  Submit call                   %s\n", submit.Summary().c_str());
  std::printf("  confirm -> outcome decided    %s\n",
              consumer.confirm_to_decided().Summary().c_str());
  std::printf("  confirm -> outcome received   %s\n",
              consumer.confirm_to_outcome().Summary().c_str());
}

void PrintEngineCounters(const EngineStats& stats) {
  std::printf(
      "Engine: holds placed %lu, reversals %lu, late verdicts %lu, outcome queue stalls %lu, "
      "idempotency overruns %lu\n",
      stats.holds_placed, stats.reversals, stats.late_verdicts, stats.outcome_queue_stalls,
      stats.idempotency_overruns);
}

// Check 1: the ledger's total (clearing included) is what was opened, and nothing is left
// reserved. REQUIRES: engine stopped (ReadBalances then reads the final ledger on this thread).
bool CheckMoneyConserved(const DemoConfig& config, Engine& engine) {
  const CurrencyCode currency = PackCurrency(config.workload.currency);
  const int64_t opened =
      static_cast<int64_t>(config.workload.accounts) * config.workload.opening_balance_minor;
  BalanceSnapshot snapshot;
  if (absl::Status status = engine.ReadBalances({}, &snapshot, absl::ZeroDuration());
      !status.ok()) {
    std::printf("FAIL  money conserved: the balance read failed: %s\n",
                status.ToString().c_str());
    return false;
  }
  int64_t total = 0;
  int64_t clearing = 0;
  for (const CurrencyBalance& balance : snapshot.currencies) {
    if (balance.currency != currency) continue;
    total = balance.total_minor;
    clearing = balance.clearing_minor;
  }
  const bool pass = total == opened && clearing == 0;
  std::printf("%s  money conserved: %s total %ld, opened %zu accounts x %ld = %ld; clearing %ld\n",
              pass ? "PASS" : "FAIL", config.workload.currency.c_str(), total,
              config.workload.accounts, config.workload.opening_balance_minor, opened, clearing);
  return pass;
}

// Check 2: every sequenced transaction got exactly one outcome.
bool CheckOneOutcomeEach(const EngineStats& stats, const OutcomeConsumer& consumer) {
  const bool pass = consumer.received() == stats.confirmed && consumer.duplicates() == 0 &&
                    consumer.unknown_seqs() == 0;
  std::printf(
      "%s  one outcome per confirmation: %lu outcomes for %lu confirmed, %lu duplicates, "
      "%lu unknown sequence numbers\n",
      pass ? "PASS" : "FAIL", consumer.received(), stats.confirmed, consumer.duplicates(),
      consumer.unknown_seqs());
  return pass;
}

void PrintBanner(const DemoConfig& config) {
  std::printf(
      "vouch demo: %s policy, %.0f tx/s offered by %d producers for %d s, %zu accounts, "
      "fraud %.1f%%, insufficient funds %.1f%%, deadline %ld ms",
      std::string(PolicyModeName(config.mode)).c_str(), config.rate, config.producers,
      config.duration_s, config.workload.accounts, 100 * config.workload.fraud_share,
      100 * config.workload.insufficient_funds_share, config.deadline_ms);
  if (config.stalls()) {
    std::printf(", fraud verifier stall at %.1f s for %ld ms", config.stall_at_s, config.stall_ms);
  }
  std::printf("\n");
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// The run.

int RunDemo(const DemoConfig& config, Engine& engine) {
  PrintBanner(config);
  // The first transaction is due shortly after now, once every thread is up.
  const int64_t start_ns = engine.clock().NowNs() + 20 * kNsPerMs;
  const int64_t stall_ns = start_ns + static_cast<int64_t>(config.stall_at_s * kNsPerS);
  const int64_t deadline_ns = config.deadline_ms * kNsPerMs;
  // A transaction times out because of the stall if its deadline falls inside it, or while the
  // verifier works off the backlog just after.
  const OutcomeConsumer::Episode episode{stall_ns - deadline_ns,
                                         stall_ns + config.stall_ms * kNsPerMs + deadline_ns};

  LiveStats live;
  OutcomeConsumer consumer(&engine, config.scheduled(), episode);
  std::atomic<bool> engine_stopped{false};
  std::thread consumer_thread([&] { consumer.Run(engine_stopped); });
  std::vector<std::unique_ptr<Producer>> producers;
  std::vector<std::thread> producer_threads;
  for (int i = 0; i < config.producers; ++i) {
    producers.push_back(std::make_unique<Producer>(&engine, &live, config, i, start_ns));
    producer_threads.emplace_back([p = producers.back().get()] { p->Run(); });
  }

  RunSeconds(config, engine, live, consumer, start_ns);
  for (std::thread& t : producer_threads) t.join();
  (void)live.TakeInterval();  // The producers' last flush joins the run's totals.
  const DrainReport drain = engine.Stop();
  // release: pairs with the consumer's acquire; Stop() has queued every outcome.
  engine_stopped.store(true, std::memory_order_release);
  consumer_thread.join();

  ProducerTally tally;
  for (const auto& p : producers) {
    tally.answered += p->tally().answered;
    tally.abandoned += p->tally().abandoned;
  }
  const EngineStats stats = engine.Stats();
  std::printf("\nStop(): %s in %s; %lu confirmed over the engine's life, %lu not drained\n",
              drain.drained ? "drained" : "NOT drained", FormatNs(drain.elapsed_ns).c_str(),
              drain.confirmed, drain.not_drained);
  PrintConfirmations(config, stats, tally);
  PrintOutcomes(config, consumer, episode, start_ns);
  PrintLatencies(live, consumer);
  PrintEngineCounters(stats);
  const bool conserved = CheckMoneyConserved(config, engine);
  const bool one_each = CheckOneOutcomeEach(stats, consumer);
  std::fflush(stdout);
  return conserved && one_each ? 0 : 1;
}

}  // namespace
}  // namespace vouch::demo

int main(int argc, char** argv) {
  using namespace vouch;
  absl::SetProgramUsageMessage(
      "Runs a workload against the vouch engine, prints a live line a second and checks that "
      "money is conserved and every confirmation got exactly one outcome.\n"
      "  bazel run //tools/demo -- --duration_s=6 --mode=hybrid");
  demo::g_parsing_flags = true;
  std::atexit(demo::ExitTwoIfParsing);
  absl::ParseCommandLine(argc, argv);
  demo::g_parsing_flags = false;

  absl::StatusOr<demo::DemoConfig> config = demo::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "demo: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(demo::EngineOptions(*config));
  if (!engine.ok()) {
    std::fprintf(stderr, "demo: %s\n", engine.status().ToString().c_str());
    return 2;
  }
  if (absl::Status status = (*engine)->Start(); !status.ok()) {
    std::fprintf(stderr, "demo: starting the engine: %s\n", status.ToString().c_str());
    return 1;
  }
  return demo::RunDemo(*config, **engine);
}
