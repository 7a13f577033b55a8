// One vouch-bench step: a fresh subject (design) under an open-loop load at one offered rate for
// a fixed duration, with every latency the harness reports.
//
// Method. The load is open loop: producer p submits transactions k = p, p + P, ... of the
// schedule, and transaction k is due at start + k / rate whatever happened to the ones before
// it. A producer that falls behind submits at once until it catches up, and stops at the end of
// the step (the rest counts as not sent). So a slow Submit shows up in confirm_from_intended
// instead of thinning the load: coordinated omission is avoided. A BUSY answer is retried after
// kBusyBackoff; every attempt counts in submit_call.
//
// Latencies (log-linear histogram, nanoseconds):
//   submit_call            one Submit call: the synchronous confirm (held ones wait inside it);
//   confirm_from_intended  due time -> final answer (includes producer lateness, BUSY retries);
//   confirm_to_fraud       confirm -> fraud verdict decided   } sampled: transactions whose id is
//   confirm_to_ledger      confirm -> ledger verdict decided  } a multiple of sample_every
//   confirm_to_outcome     confirm -> outcome decided (every outcome, from Outcome's own times).
// The stage times are taken on the polling thread as each sampled outcome arrives (vouch: by
// Engine::Query; see subject.cc for why not after the step).
// The main thread polls outcomes during the step and drains them after, checking that every
// sequence number gets exactly one.
#ifndef VOUCH_TOOLS_PERF_STEP_H_
#define VOUCH_TOOLS_PERF_STEP_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "engine/metrics/histogram.h"
#include "tools/perf/subject.h"
#include "tools/perf/thread_times.h"
#include "tools/workload/workload.h"

namespace vouch::perf {

struct StepConfig {
  Design design = Design::kAsync;
  double rate = 0;        // Offered transactions per second, over all producers.
  double duration_s = 0;  // Of offered load.
  int producers = 1;
  // Verifiers in all for the vouch designs: fraud, ledger and verifiers - 2 pass-through
  // embedder's verifiers that read the transaction (docs/VERIFIERS.md); 2 to 8.
  int verifiers = 2;
  workload::WorkloadConfig workload;  // Producer p uses seed + p and ids from p << 40.
  uint64_t sample_every = 64;
  int64_t drain_timeout_ns = 10'000'000'000;

  uint64_t scheduled() const { return static_cast<uint64_t>(rate * duration_s); }
};

struct StepLatencies {
  LatencyHistogram submit_call;
  LatencyHistogram confirm_from_intended;
  LatencyHistogram confirm_to_fraud;
  LatencyHistogram confirm_to_ledger;
  LatencyHistogram confirm_to_outcome;
};

struct StepResult {
  StepConfig config;
  uint64_t scheduled = 0;
  uint64_t sent = 0;          // Submitted at least once.
  uint64_t answered = 0;      // CONFIRMED or REJECTED (final answers).
  uint64_t confirmed = 0;     // Answered with a sequence number (held ones included).
  uint64_t rejected = 0;      // REJECTED without a sequence number (ingest refusals).
  uint64_t busy_retries = 0;  // BUSY answers, each retried.
  uint64_t abandoned = 0;     // Still BUSY when the step ended.
  uint64_t outcomes = 0;
  uint64_t outcomes_by_kind[4] = {};  // By OutcomeKind (index 0 unused).
  uint64_t duplicate_outcomes = 0;
  uint64_t unknown_outcomes = 0;  // A sequence number no Submit returned.
  uint64_t missing_outcomes = 0;  // Sequenced by the subject, no outcome polled.
  uint64_t subject_confirmed = 0;  // The subject's own count of sequence numbers.
  bool drained = false;
  double answer_window_s = 0;   // First due time -> last answer.
  double outcome_window_s = 0;  // First due time -> last outcome decided.
  StepLatencies latency;
  // CPU and run-queue wait per thread name, from the subject's start to the end of the drain
  // (before Stop): the stages, the producers and the polling main thread.
  std::map<std::string, ThreadTimes> thread_times;
  // The machine's busy CPU time over the same span, every process included (10 ms ticks).
  int64_t machine_busy_ns = 0;
  int64_t process_cpu_ns() const;  // Sum of thread_times' run_ns.

  double throughput_confirmed() const;  // answered / answer_window_s
  // VERIFIED + LATE_FAILED outcomes (decided by the verifiers, not by the deadline) over
  // outcome_window_s: fully verified transactions per second.
  double throughput_verified() const;
  double throughput_outcomes() const;  // All outcomes, LATE_TIMEOUT included.
  // Every confirmed transaction got exactly one outcome and the subject drained.
  bool passed() const;
};

// Builds and starts the design, runs the step, stops it. Errors: the subject refused to start.
absl::StatusOr<StepResult> RunStep(const StepConfig& config);

}  // namespace vouch::perf

#endif  // VOUCH_TOOLS_PERF_STEP_H_
