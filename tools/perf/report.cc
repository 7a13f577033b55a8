#include "tools/perf/report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "engine/common/json.h"

namespace vouch::perf {
namespace {

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
// The targets, reported (never asserted).
constexpr double kTargetVerifiedPerS = 1'000'000;
constexpr double kTargetHalfRate = kTargetVerifiedPerS / 2;
constexpr int64_t kTargetConfirmP99AtHalfRateNs = 5'000;
constexpr double kTargetSyncOverAsyncP99 = 10;
constexpr double kTargetBaselineRatio = 5;

// "850ns", "12.3us", "4.5ms", "1.20s".
std::string FormatNs(int64_t ns) {
  if (ns < 1'000) return absl::StrFormat("%dns", ns);
  if (ns < 1'000'000) return absl::StrFormat("%.1fus", ns / 1e3);
  if (ns < 1'000'000'000) return absl::StrFormat("%.1fms", ns / 1e6);
  return absl::StrFormat("%.2fs", ns / 1e9);
}

std::string FormatRate(double per_s) {
  if (std::isnan(per_s)) return "-";
  if (per_s >= 1e6) return absl::StrFormat("%.2fM", per_s / 1e6);
  return absl::StrFormat("%.0fk", per_s / 1e3);
}

std::string FormatRatio(double ratio) {
  return std::isnan(ratio) ? "-" : absl::StrFormat("%.1fx", ratio);
}

double Ratio(double numerator, double denominator) {
  return denominator > 0 && !std::isnan(numerator) ? numerator / denominator : kNone;
}

absl::string_view Name(Design design) {
  const std::string_view name = DesignName(design);
  return absl::string_view(name.data(), name.size());
}

bool Has(const RunReport& report, Design design) {
  return std::find(report.config.designs.begin(), report.config.designs.end(), design) !=
         report.config.designs.end();
}

int64_t SubmitP99(const StepResult& step) { return step.latency.submit_call.Percentile(99); }

// ---------------------------------------------------------------------------------------------
// Summary figures, shared by the text and the JSON.

struct Targets {
  double verified_peak = 0;            // async
  double confirm_p99_at_half_ns = kNone;  // async, at kTargetHalfRate offered
  double sync_over_async_p99_min = kNone;  // over the rates both ran
  double async_peak = 0;
  double sync_peak = 0;
  double baseline_peak_ratio = kNone;
};

Targets ComputeTargets(const RunReport& report) {
  Targets t;
  t.verified_peak = report.PeakVerified(Design::kAsync);
  if (const StepResult* half = report.Find(Design::kAsync, kTargetHalfRate)) {
    t.confirm_p99_at_half_ns = static_cast<double>(SubmitP99(*half));
  }
  for (double rate : report.config.rates) {
    const StepResult* async = report.Find(Design::kAsync, rate);
    const StepResult* sync = report.Find(Design::kSync, rate);
    if (async == nullptr || sync == nullptr) continue;
    const double ratio = Ratio(SubmitP99(*sync), SubmitP99(*async));
    if (std::isnan(t.sync_over_async_p99_min) || ratio < t.sync_over_async_p99_min) {
      t.sync_over_async_p99_min = ratio;
    }
  }
  t.async_peak = report.PeakVerified(Design::kAsync);
  t.sync_peak = report.PeakVerified(Design::kSync);
  if (Has(report, Design::kAsync) && Has(report, Design::kBaseline)) {
    t.baseline_peak_ratio = Ratio(t.async_peak, report.PeakVerified(Design::kBaseline));
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// JSON.

void JsonLatency(JsonWriter& json, absl::string_view key, const LatencyHistogram& histogram) {
  json.BeginObject(key);
  json.Uint("count", histogram.count());
  json.Int("p50", histogram.Percentile(50));
  json.Int("p90", histogram.Percentile(90));
  json.Int("p99", histogram.Percentile(99));
  json.Int("p99_9", histogram.Percentile(99.9));
  json.Int("max", histogram.max_ns());
  json.Double("mean", histogram.mean_ns());
  json.Uint("clamped", histogram.clamped_count());
  json.EndObject();
}

void JsonStep(JsonWriter& json, const RunReport& report, const StepResult& step) {
  json.BeginObject();
  json.String("design", Name(step.config.design));
  json.Double("rate_offered", step.config.rate);
  json.Double("duration_s", step.config.duration_s);
  json.Uint("scheduled", step.scheduled);
  json.Uint("sent", step.sent);
  json.Uint("answered", step.answered);
  json.Uint("confirmed", step.confirmed);
  json.Uint("rejected", step.rejected);
  json.Uint("busy_retries", step.busy_retries);
  json.Uint("abandoned", step.abandoned);
  json.Uint("outcomes", step.outcomes);
  json.Uint("outcomes_verified", step.outcomes_by_kind[static_cast<int>(OutcomeKind::kVerified)]);
  json.Uint("outcomes_late_failed",
            step.outcomes_by_kind[static_cast<int>(OutcomeKind::kLateFailed)]);
  json.Uint("outcomes_late_timeout",
            step.outcomes_by_kind[static_cast<int>(OutcomeKind::kLateTimeout)]);
  json.Uint("duplicate_outcomes", step.duplicate_outcomes);
  json.Uint("unknown_outcomes", step.unknown_outcomes);
  json.Uint("missing_outcomes", step.missing_outcomes);
  json.Uint("subject_confirmed", step.subject_confirmed);
  json.Bool("drained", step.drained);
  json.Bool("passed", step.passed());
  json.Bool("sustained", report.Sustained(step));
  json.Double("answer_window_s", step.answer_window_s);
  json.Double("outcome_window_s", step.outcome_window_s);
  json.Double("throughput_confirmed", step.throughput_confirmed());
  json.Double("throughput_verified", step.throughput_verified());
  json.Double("throughput_outcomes", step.throughput_outcomes());
  json.Double("machine_busy_cpu_s", step.machine_busy_ns / 1e9);
  json.Double("process_cpu_s", step.process_cpu_ns() / 1e9);
  json.BeginObject("threads");
  for (const auto& [name, times] : step.thread_times) {
    json.BeginObject(name);
    json.Double("cpu_s", times.run_ns / 1e9);
    json.Double("runqueue_wait_s", times.wait_ns / 1e9);
    json.EndObject();
  }
  json.EndObject();
  json.BeginObject("latency_ns");
  JsonLatency(json, "submit_call", step.latency.submit_call);
  JsonLatency(json, "confirm_from_intended", step.latency.confirm_from_intended);
  JsonLatency(json, "confirm_to_fraud", step.latency.confirm_to_fraud);
  JsonLatency(json, "confirm_to_ledger", step.latency.confirm_to_ledger);
  JsonLatency(json, "confirm_to_outcome", step.latency.confirm_to_outcome);
  json.EndObject();
  json.EndObject();
}

void JsonConfig(JsonWriter& json, const RunConfig& config) {
  json.BeginObject("config");
  json.BeginArray("rates");
  for (double rate : config.rates) json.Double({}, rate);
  json.EndArray();
  json.BeginArray("designs");
  for (Design design : config.designs) json.String({}, Name(design));
  json.EndArray();
  json.Double("duration_s", config.duration_s);
  json.Int("producers", config.producers);
  json.Int("verifiers", config.verifiers);
  json.Uint("accounts", config.workload.accounts);
  json.Double("fraud_share", config.workload.fraud_share);
  json.Double("insufficient_share", config.workload.insufficient_funds_share);
  json.Uint("seed", config.workload.seed);
  json.Uint("sample_every", config.sample_every);
  json.Int("confirm_p99_limit_ns", config.confirm_p99_limit_ns);
  json.Double("sustained_share_min", config.sustained_share_min);
  json.Uint("hardware_threads", std::thread::hardware_concurrency());
  json.EndObject();
}

void JsonMet(JsonWriter& json, double measured, bool met) {
  if (std::isnan(measured)) {
    json.Null("met");
  } else {
    json.Bool("met", met);
  }
}

void JsonSummary(JsonWriter& json, const RunReport& report) {
  json.BeginObject("summary");
  json.BeginObject("designs");
  for (Design design : report.config.designs) {
    json.BeginObject(Name(design));
    const std::optional<double> max_rate = report.MaxRateUnderLimit(design);
    json.Double("max_rate_confirm_p99_under_limit", max_rate.value_or(kNone));
    json.Double("peak_throughput_verified", report.PeakVerified(design));
    json.EndObject();
  }
  json.EndObject();
  json.BeginArray("modes");
  for (double rate : report.config.rates) {
    json.BeginObject();
    json.Double("rate_offered", rate);
    for (Design design : {Design::kAsync, Design::kHybrid, Design::kSync}) {
      const StepResult* step = report.Find(design, rate);
      if (step == nullptr) continue;
      json.BeginObject(Name(design));
      json.Double("throughput_verified", step->throughput_verified());
      json.Int("confirm_p50_ns", step->latency.submit_call.Percentile(50));
      json.Int("confirm_p99_ns", SubmitP99(*step));
      json.EndObject();
    }
    const StepResult* async = report.Find(Design::kAsync, rate);
    const StepResult* sync = report.Find(Design::kSync, rate);
    json.Double("sync_over_async_confirm_p99", async != nullptr && sync != nullptr
                                                   ? Ratio(SubmitP99(*sync), SubmitP99(*async))
                                                   : kNone);
    json.EndObject();
  }
  json.EndArray();
  json.BeginArray("baseline");
  for (double rate : report.config.rates) {
    const StepResult* vouch = report.Find(Design::kAsync, rate);
    const StepResult* baseline = report.Find(Design::kBaseline, rate);
    if (vouch == nullptr || baseline == nullptr) continue;
    json.BeginObject();
    json.Double("rate_offered", rate);
    json.Double("vouch_throughput_verified", vouch->throughput_verified());
    json.Double("baseline_throughput_verified", baseline->throughput_verified());
    json.Double("ratio", Ratio(vouch->throughput_verified(), baseline->throughput_verified()));
    json.Int("vouch_confirm_p99_ns", SubmitP99(*vouch));
    json.Int("baseline_confirm_p99_ns", SubmitP99(*baseline));
    json.EndObject();
  }
  json.EndArray();
  const Targets t = ComputeTargets(report);
  json.Double("baseline_peak_ratio", t.baseline_peak_ratio);
  json.BeginObject("targets");
  json.BeginObject("verified_throughput");
  json.Double("target", kTargetVerifiedPerS);
  json.Double("measured", t.verified_peak);
  json.Bool("met", t.verified_peak >= kTargetVerifiedPerS);
  json.EndObject();
  json.BeginObject("confirm_p99_at_half_rate");
  json.Double("rate_offered", kTargetHalfRate);
  json.Int("target_ns", kTargetConfirmP99AtHalfRateNs);
  json.Double("measured_ns", t.confirm_p99_at_half_ns);
  JsonMet(json, t.confirm_p99_at_half_ns, t.confirm_p99_at_half_ns <= kTargetConfirmP99AtHalfRateNs);
  json.EndObject();
  json.BeginObject("sync_over_async_confirm_p99");
  json.Double("target", kTargetSyncOverAsyncP99);
  json.Double("measured_min", t.sync_over_async_p99_min);
  JsonMet(json, t.sync_over_async_p99_min, t.sync_over_async_p99_min >= kTargetSyncOverAsyncP99);
  json.EndObject();
  json.BeginObject("async_throughput_ge_sync");
  json.Double("async", t.async_peak);
  json.Double("sync", t.sync_peak);
  json.Bool("met", t.async_peak >= t.sync_peak);
  json.EndObject();
  json.BeginObject("baseline_ratio");
  json.Double("target", kTargetBaselineRatio);
  json.Double("measured", t.baseline_peak_ratio);
  JsonMet(json, t.baseline_peak_ratio, t.baseline_peak_ratio >= kTargetBaselineRatio);
  json.EndObject();
  json.EndObject();
  json.EndObject();
}

// ---------------------------------------------------------------------------------------------
// Text.

std::string LatencyCells(const LatencyHistogram& h) {
  if (h.count() == 0) return "-";
  return absl::StrFormat("%s/%s/%s", FormatNs(h.Percentile(50)), FormatNs(h.Percentile(99)),
                         FormatNs(h.max_ns()));
}

void PrintTargets(const RunReport& report, std::FILE* out) {
  const Targets t = ComputeTargets(report);
  auto verdict = [](double measured, bool met) {
    return std::isnan(measured) ? "not measured" : met ? "met" : "MISSED";
  };
  std::fprintf(out, "\nIssue targets (reported, not asserted):\n");
  std::fprintf(out, "  >= 1,000,000 verified tx/s (async):              %s  (%s)\n",
               FormatRate(t.verified_peak).c_str(),
               verdict(t.verified_peak, t.verified_peak >= kTargetVerifiedPerS));
  std::fprintf(out, "  confirm p99 <= 5us at 500k offered (async):      %s  (%s)\n",
               std::isnan(t.confirm_p99_at_half_ns)
                   ? "-"
                   : FormatNs(static_cast<int64_t>(t.confirm_p99_at_half_ns)).c_str(),
               verdict(t.confirm_p99_at_half_ns,
                       t.confirm_p99_at_half_ns <= kTargetConfirmP99AtHalfRateNs));
  std::fprintf(out, "  sync p99 >= 10x async p99 at every rate (min):    %s  (%s)\n",
               FormatRatio(t.sync_over_async_p99_min).c_str(),
               verdict(t.sync_over_async_p99_min,
                       t.sync_over_async_p99_min >= kTargetSyncOverAsyncP99));
  std::fprintf(out, "  async peak throughput >= sync's:                 %s vs %s  (%s)\n",
               FormatRate(t.async_peak).c_str(), FormatRate(t.sync_peak).c_str(),
               t.async_peak >= t.sync_peak ? "met" : "MISSED");
  std::fprintf(out, "  >= 5x the baseline's peak throughput:            %s  (%s)\n",
               FormatRatio(t.baseline_peak_ratio).c_str(),
               verdict(t.baseline_peak_ratio, t.baseline_peak_ratio >= kTargetBaselineRatio));
}

}  // namespace

const StepResult* RunReport::Find(Design design, double rate) const {
  for (const StepResult& step : steps) {
    if (step.config.design == design && step.config.rate == rate) return &step;
  }
  return nullptr;
}

bool RunReport::Sustained(const StepResult& step) const {
  return step.answered >= config.sustained_share_min * step.scheduled;
}

std::optional<double> RunReport::MaxRateUnderLimit(Design design) const {
  std::optional<double> best;
  for (const StepResult& step : steps) {
    if (step.config.design != design || !Sustained(step)) continue;
    if (SubmitP99(step) >= config.confirm_p99_limit_ns) continue;
    if (!best.has_value() || step.config.rate > *best) best = step.config.rate;
  }
  return best;
}

double RunReport::PeakVerified(Design design) const {
  double peak = 0;
  for (const StepResult& step : steps) {
    if (step.config.design == design) peak = std::max(peak, step.throughput_verified());
  }
  return peak;
}

bool RunReport::passed() const {
  return std::all_of(steps.begin(), steps.end(), [](const StepResult& s) { return s.passed(); });
}

void PrintStep(const StepResult& step, std::FILE* out) {
  std::fprintf(out,
               "  %-8s %7s offered: %7s confirmed/s, %7s verified/s (%lu timed out); submit "
               "p50/p99/max %s; from intended p99 %s; %lu busy retries; %s\n",
               std::string(DesignName(step.config.design)).c_str(),
               FormatRate(step.config.rate).c_str(), FormatRate(step.throughput_confirmed()).c_str(),
               FormatRate(step.throughput_verified()).c_str(),
               step.outcomes_by_kind[static_cast<int>(OutcomeKind::kLateTimeout)],
               LatencyCells(step.latency.submit_call).c_str(),
               FormatNs(step.latency.confirm_from_intended.Percentile(99)).c_str(),
               step.busy_retries, step.passed() ? "one outcome each" : "OUTCOMES WRONG");
  std::fflush(out);
}

void PrintText(const RunReport& report, std::FILE* out) {
  const RunConfig& config = report.config;
  std::fprintf(out,
               "\nPer step (latency cells p50/p99/max; stage times sampled 1 in %lu ids; "
               "confirm = the Submit call):\n",
               config.sample_every);
  std::fprintf(out, "%-8s %8s %9s %9s %24s %9s %9s %24s %24s %24s %s\n", "design", "offered",
               "confirm/s", "verified/s", "confirm (Submit call)", "p90", "p99.9",
               "confirm->fraud", "confirm->ledger", "confirm->outcome", "ok");
  for (const StepResult& s : report.steps) {
    const LatencyHistogram& submit = s.latency.submit_call;
    std::fprintf(out, "%-8s %8s %9s %9s %24s %9s %9s %24s %24s %24s %s\n",
                 std::string(DesignName(s.config.design)).c_str(), FormatRate(s.config.rate).c_str(),
                 FormatRate(s.throughput_confirmed()).c_str(),
                 FormatRate(s.throughput_verified()).c_str(), LatencyCells(submit).c_str(),
                 FormatNs(submit.Percentile(90)).c_str(), FormatNs(submit.Percentile(99.9)).c_str(),
                 LatencyCells(s.latency.confirm_to_fraud).c_str(),
                 LatencyCells(s.latency.confirm_to_ledger).c_str(),
                 LatencyCells(s.latency.confirm_to_outcome).c_str(),
                 s.passed() ? (report.Sustained(s) ? "yes" : "yes (not sustained)") : "NO");
  }

  std::fprintf(out, "\nHighest offered rate sustained with confirm p99 < %s:\n",
               FormatNs(config.confirm_p99_limit_ns).c_str());
  for (Design design : config.designs) {
    const std::optional<double> rate = report.MaxRateUnderLimit(design);
    std::fprintf(out, "  %-8s %s\n", std::string(DesignName(design)).c_str(),
                 rate.has_value() ? FormatRate(*rate).c_str() : "none");
  }

  if (Has(report, Design::kAsync) && Has(report, Design::kSync)) {
    std::fprintf(out, "\nModes (verified/s, confirm p50 / p99):\n%8s", "offered");
    for (Design design : {Design::kAsync, Design::kHybrid, Design::kSync}) {
      if (Has(report, design)) std::fprintf(out, " %26s", std::string(DesignName(design)).c_str());
    }
    std::fprintf(out, " %12s\n", "sync/async p99");
    for (double rate : config.rates) {
      std::fprintf(out, "%8s", FormatRate(rate).c_str());
      for (Design design : {Design::kAsync, Design::kHybrid, Design::kSync}) {
        const StepResult* s = report.Find(design, rate);
        if (s == nullptr) continue;
        std::fprintf(out, " %26s",
                     absl::StrFormat("%s, %s / %s", FormatRate(s->throughput_verified()),
                                     FormatNs(s->latency.submit_call.Percentile(50)),
                                     FormatNs(SubmitP99(*s)))
                         .c_str());
      }
      const StepResult* async = report.Find(Design::kAsync, rate);
      const StepResult* sync = report.Find(Design::kSync, rate);
      std::fprintf(out, " %12s\n",
                   FormatRatio(Ratio(SubmitP99(*sync), SubmitP99(*async))).c_str());
    }
  }

  if (Has(report, Design::kAsync) && Has(report, Design::kBaseline)) {
    std::fprintf(out, "\nvouch (async) vs baseline, verified/s (confirm p99):\n");
    for (double rate : config.rates) {
      const StepResult* vouch = report.Find(Design::kAsync, rate);
      const StepResult* baseline = report.Find(Design::kBaseline, rate);
      std::fprintf(out, "  %8s offered: vouch %7s (%s), baseline %7s (%s): %s\n",
                   FormatRate(rate).c_str(), FormatRate(vouch->throughput_verified()).c_str(),
                   FormatNs(SubmitP99(*vouch)).c_str(),
                   FormatRate(baseline->throughput_verified()).c_str(),
                   FormatNs(SubmitP99(*baseline)).c_str(),
                   FormatRatio(Ratio(vouch->throughput_verified(),
                                     baseline->throughput_verified()))
                       .c_str());
    }
    std::fprintf(out, "  peak: vouch %s, baseline %s: %s\n",
                 FormatRate(report.PeakVerified(Design::kAsync)).c_str(),
                 FormatRate(report.PeakVerified(Design::kBaseline)).c_str(),
                 FormatRatio(Ratio(report.PeakVerified(Design::kAsync),
                                   report.PeakVerified(Design::kBaseline)))
                     .c_str());
  }
  std::fprintf(out,
               "\nCPU by thread, seconds on a CPU / seconds runnable but waiting for one "
               "(from start to drained; %u hardware threads):\n",
               std::thread::hardware_concurrency());
  for (const StepResult& s : report.steps) {
    std::string line;
    for (const auto& [name, times] : s.thread_times) {
      if (times.run_ns < 1'000'000) continue;  // Idle helpers.
      absl::StrAppendFormat(&line, "  %s %.2f/%.2f", name, times.run_ns / 1e9,
                            times.wait_ns / 1e9);
    }
    std::fprintf(out, "%-8s %8s (%.2f s; this process %.2f, other processes %.2f CPU s):%s\n",
                 std::string(DesignName(s.config.design)).c_str(),
                 FormatRate(s.config.rate).c_str(), s.outcome_window_s, s.process_cpu_ns() / 1e9,
                 std::max<int64_t>(0, s.machine_busy_ns - s.process_cpu_ns()) / 1e9,
                 line.c_str());
  }
  PrintTargets(report, out);
  std::fprintf(out, "\n%s\n",
               report.passed() ? "PASS: every confirmed transaction got exactly one outcome"
                               : "FAIL: some step lost or duplicated outcomes (see ok column)");
  std::fflush(out);
}

std::string ToJson(const RunReport& report) {
  JsonWriter json;
  json.BeginObject();
  json.Int("schema_version", kJsonSchemaVersion);
  json.String("tool", "vouch-bench");
  JsonConfig(json, report.config);
  json.BeginArray("steps");
  for (const StepResult& step : report.steps) JsonStep(json, report, step);
  json.EndArray();
  JsonSummary(json, report);
  json.Bool("passed", report.passed());
  json.EndObject();
  return json.Take() + "\n";
}

}  // namespace vouch::perf
