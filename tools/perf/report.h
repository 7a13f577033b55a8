// vouch-bench's report: the steps, and what they add up to (the highest rate whose confirm p99
// stays under the limit, the mode comparison, the ratio to the baseline, the targets).
// Text for people, JSON for a report generator; both carry the same figures, and
// docs/PERF_HARNESS.md documents every JSON key.
#ifndef VOUCH_TOOLS_PERF_REPORT_H_
#define VOUCH_TOOLS_PERF_REPORT_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "tools/perf/step.h"
#include "tools/perf/subject.h"

namespace vouch::perf {

inline constexpr int kJsonSchemaVersion = 1;

struct RunConfig {
  int verifiers = 2;  // StepConfig::verifiers.
  std::vector<double> rates;  // Offered rates, in step order.
  std::vector<Design> designs;
  double duration_s = 0;
  int producers = 1;
  workload::WorkloadConfig workload;
  uint64_t sample_every = 64;
  int64_t confirm_p99_limit_ns = 10'000;
  // A step sustains its rate when at least this share of the scheduled transactions is answered.
  double sustained_share_min = 0.95;
};

struct RunReport {
  RunConfig config;
  std::vector<StepResult> steps;

  // The step of `design` at `rate`; null if not run.
  const StepResult* Find(Design design, double rate) const;
  bool Sustained(const StepResult& step) const;
  // The highest offered rate the design sustained with submit_call p99 under the limit.
  std::optional<double> MaxRateUnderLimit(Design design) const;
  // The highest verified throughput over the design's steps (0 if none ran).
  double PeakVerified(Design design) const;
  bool passed() const;  // Every step passed.
};

void PrintStep(const StepResult& step, std::FILE* out);  // One progress line.
void PrintText(const RunReport& report, std::FILE* out);
std::string ToJson(const RunReport& report);

}  // namespace vouch::perf

#endif  // VOUCH_TOOLS_PERF_REPORT_H_
