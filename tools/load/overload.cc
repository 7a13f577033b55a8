#include "tools/load/overload.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/common/json.h"
#include "tools/load/format.h"
#include "tools/load/report.h"
#include "tools/load/server_metrics.h"

namespace vouch::load {
namespace {

constexpr double kRampFactor = 1.5;
constexpr int kRampDownSteps = 6;  // Down to 1.5^-6 (about 1/11) of the first rate.
constexpr double kRateMax = 1'000'000;  // vouch-load's own ceiling.
// Between calibration steps: the verifiers finish the late verdicts of a failed step.
constexpr auto kStepGap = std::chrono::milliseconds(300);
constexpr absl::Duration kScrapeTimeout = absl::Seconds(5);
constexpr absl::Duration kSampleQueryTimeout = absl::Seconds(5);
constexpr double kMiB = 1024.0 * 1024.0;

std::string ConfirmSeries(absl::string_view status, absl::string_view reason) {
  return absl::StrCat("vouch_confirmations_total{status=\"", status, "\",reason=\"", reason,
                      "\"}");
}

uint64_t Diff(const MetricSamples& after, const MetricSamples& before, const std::string& series) {
  return static_cast<uint64_t>(SampleOr0(after, series) - SampleOr0(before, series));
}

uint64_t Busy(const Tally& tally) {
  uint64_t busy = 0;
  for (const uint64_t n : tally.confirm_counts[v1::CONFIRM_STATUS_BUSY]) busy += n;
  return busy;
}

uint64_t LateTimeouts(const Tally& tally) {
  uint64_t timeouts = 0;
  for (const uint64_t n : tally.outcome_counts[v1::OUTCOME_KIND_LATE_TIMEOUT]) timeouts += n;
  return timeouts;
}

// Hands out fresh transaction ids and session names, phase after phase, so that no phase
// touches another's ids or sessions.
class PhaseCursor {
 public:
  explicit PhaseCursor(const LoadConfig& load) : next_id_(load.workload.first_id) {}

  absl::StatusOr<PhaseReport> Run(const LoadConfig& config, const std::string& name) {
    const PhaseSpec spec{name, next_id_, next_session_};
    next_id_ += config.scheduled();
    next_session_ += config.connections;
    return RunPhase(config, spec);
  }

 private:
  uint64_t next_id_;
  int next_session_ = 0;
};

ProbeConfig ProbeConfigFor(const LoadConfig& load, const OverloadConfig& config,
                           const std::atomic<uint64_t>* latest_confirmed) {
  ProbeConfig probe;
  probe.host = load.host;
  probe.port = load.port;
  probe.auth_token = load.auth_token;
  probe.rate = config.probe_rate;
  probe.latest_confirmed = latest_confirmed;
  probe.server_pid = config.server_pid;
  return probe;
}

absl::StatusOr<CalibrationStep> TryStep(const LoadConfig& load, const OverloadConfig& config,
                                        double rate, PhaseCursor& cursor,
                                        std::atomic<uint64_t>* latest_confirmed) {
  LoadConfig step = load;
  step.rate = rate;
  step.duration_s = config.calibrate_step_s;
  step.quiet = true;
  step.latest_confirmed = latest_confirmed;
  Probe probe(ProbeConfigFor(load, config, latest_confirmed));
  if (absl::Status status = probe.Start(); !status.ok()) return status;
  absl::StatusOr<PhaseReport> phase = cursor.Run(step, absl::StrFormat("calibrate-%.0f", rate));
  probe.Stop();
  if (!phase.ok()) return phase.status();
  CalibrationStep result;
  result.rate = rate;
  result.busy = Busy(phase->tally);
  result.late_timeouts = LateTimeouts(phase->tally);
  result.phase_passed = phase->passed();
  result.passed = result.phase_passed &&
                  static_cast<double>(result.busy + result.late_timeouts) <=
                      config.calibrate_miss_share_max *
                          static_cast<double>(phase->tally.answered);
  result.ping_p99_ns = probe.report().ping.Percentile(99);
  result.query_p99_ns = probe.report().query.Percentile(99);
  std::this_thread::sleep_for(kStepGap);
  return result;
}

absl::StatusOr<CalibrationStep> Step(const LoadConfig& load, const OverloadConfig& config,
                                     double rate, PhaseCursor& cursor,
                                     std::atomic<uint64_t>* latest_confirmed) {
  absl::StatusOr<CalibrationStep> step = TryStep(load, config, rate, cursor, latest_confirmed);
  if (step.ok() && !step->passed) {
    step = TryStep(load, config, rate, cursor, latest_confirmed);
    if (step.ok()) step->tries = 2;
  }
  if (step.ok() && !load.quiet) {
    std::fprintf(stderr, "[calibrate] %.0f tx/s: %s (busy %lu, late timeouts %lu%s%s)\n", rate,
                 step->passed ? "keeps up" : "falls behind", step->busy, step->late_timeouts,
                 step->phase_passed ? "" : ", outcomes missing or errors",
                 step->tries > 1 ? ", second try" : "");
  }
  return step;
}

// Ramp up, then bisect. If the first rate already falls behind (a machine busier than the start
// rate assumed), ramp down instead, to kRampDownSteps steps below it, until a rate keeps up.
// Returns the highest passing rate (0 if none).
absl::StatusOr<double> Calibrate(const LoadConfig& load, const OverloadConfig& config,
                                 PhaseCursor& cursor, OverloadReport& report,
                                 std::atomic<uint64_t>* latest_confirmed) {
  double pass = 0;
  double fail = 0;
  // Runs a step at `rate`, records it, and moves `pass` or `fail` to the rate; whether it passed.
  auto measure = [&](double rate) -> absl::StatusOr<bool> {
    absl::StatusOr<CalibrationStep> step = Step(load, config, rate, cursor, latest_confirmed);
    if (!step.ok()) return step.status();
    report.calibration.push_back(*step);
    (step->passed ? pass : fail) = rate;
    return step->passed;
  };
  for (double rate = config.calibrate_start_rate; rate <= kRateMax; rate *= kRampFactor) {
    absl::StatusOr<bool> passed = measure(rate);
    if (!passed.ok()) return passed.status();
    if (!*passed) break;
  }
  for (int i = 0; i < kRampDownSteps && pass == 0 && fail != 0; ++i) {
    if (absl::Status status = measure(fail / kRampFactor).status(); !status.ok()) return status;
  }
  if (pass == 0 || fail == 0) return pass;
  for (int i = 0; i < config.calibrate_bisections; ++i) {
    if (absl::Status status = measure((pass + fail) / 2).status(); !status.ok()) return status;
  }
  return pass;
}

void SummarizeRss(const OverloadConfig& config, OverloadReport& report) {
  const std::vector<RssSample>& rss = report.probe.rss;
  if (rss.empty()) return;
  report.rss_start_bytes = rss.front().rss_bytes;
  report.rss_end_bytes = rss.back().rss_bytes;
  const auto warmup_ns =
      static_cast<int64_t>(config.warmup_share * config.overload_s * 1e9);
  report.rss_warm_bytes = rss.front().rss_bytes;
  for (const RssSample& sample : rss) {
    if (sample.at_ns <= warmup_ns) {
      report.rss_warm_bytes = sample.rss_bytes;
    } else {
      report.rss_max_bytes = std::max(report.rss_max_bytes, sample.rss_bytes);
    }
  }
}

// Every sampled confirmed id must be known to Query, with its final outcome.
void QuerySample(const LoadConfig& load, OverloadReport& report) {
  client::ClientOptions options;
  options.host = load.host;
  options.port = load.port;
  options.auth_token = load.auth_token;
  absl::StatusOr<std::unique_ptr<client::Client>> client = client::Client::Connect(options);
  for (const uint64_t id : report.phase.tally.confirmed_sample) {
    ++report.sample_queried;
    if (!client.ok()) continue;
    absl::StatusOr<v1::Status> status = (*client)->Query(id, kSampleQueryTimeout);
    if (!status.ok() || !status->found()) continue;
    for (const v1::StateChange& change : status->history()) {
      const v1::StateKind kind = change.state();
      if (kind == v1::STATE_KIND_VERIFIED || kind == v1::STATE_KIND_LATE_FAILED ||
          kind == v1::STATE_KIND_LATE_TIMEOUT) {
        ++report.sample_final;
        break;
      }
    }
  }
}

void AddCriterion(OverloadReport& report, std::string name, double value, std::string relation,
                  double bound) {
  bool passed = false;
  if (relation == "<=") passed = value <= bound;
  if (relation == ">=") passed = value >= bound;
  if (relation == "==") passed = value == bound;
  if (relation == ">") passed = value > bound;
  report.criteria.push_back({std::move(name), value, bound, std::move(relation), passed});
}

void Judge(const OverloadConfig& config, OverloadReport& report) {
  const Tally& tally = report.phase.tally;
  const ProbeReport& probe = report.probe;
  AddCriterion(report, "capacity_tx_per_s", report.capacity, ">", 0);
  AddCriterion(report, "sent_over_offered",
               report.offered_rate > 0 ? report.phase.sent_rate() / report.offered_rate : 0, ">=",
               config.sent_ratio_min);
  const double p99_max_ms = static_cast<double>(config.probe_p99_max_ns) / 1e6;
  AddCriterion(report, "ping_p99_ms", static_cast<double>(probe.ping.Percentile(99)) / 1e6, "<=",
               p99_max_ms);
  AddCriterion(report, "query_p99_ms", static_cast<double>(probe.query.Percentile(99)) / 1e6,
               "<=", p99_max_ms);
  AddCriterion(report, "probe_failures",
               static_cast<double>(probe.ping_failures + probe.query_failures +
                                   probe.query_not_found),
               "==", 0);
  AddCriterion(report, "busy_client", static_cast<double>(report.busy_client_total()), ">", 0);
  uint64_t busy_mismatch = 0;
  for (int r = 0; r < kReasonCount; ++r) {
    busy_mismatch += report.busy_client[r] > report.busy_server[r]
                         ? report.busy_client[r] - report.busy_server[r]
                         : report.busy_server[r] - report.busy_client[r];
  }
  AddCriterion(report, "busy_client_minus_server_by_reason", static_cast<double>(busy_mismatch),
               "==", 0);
  AddCriterion(report, "confirmed_client_minus_server",
               static_cast<double>(tally.confirmed) - static_cast<double>(report.confirmed_server),
               "==", 0);
  const double growth =
      report.rss_warm_bytes > 0 && report.rss_max_bytes > 0
          ? static_cast<double>(report.rss_max_bytes - report.rss_warm_bytes) /
                static_cast<double>(report.rss_warm_bytes)
          : 1;  // No samples: fail rather than pass on nothing.
  AddCriterion(report, "rss_growth_after_warmup_ratio", growth, "<=", config.rss_growth_max_ratio);
  AddCriterion(report, "lost_confirmations",
               static_cast<double>(tally.awaiting_outcomes + tally.unexpected_outcomes +
                                   tally.unanswered + tally.errors),
               "==", 0);
  AddCriterion(report, "sample_queried_minus_final",
               static_cast<double>(report.sample_queried - report.sample_final), "==", 0);
  AddCriterion(report, "sample_queried", static_cast<double>(report.sample_queried), ">", 0);
}

// The passing calibration step at the capacity rate: the same run's latencies without overload.
const CalibrationStep* AtCapacity(const OverloadReport& report) {
  const CalibrationStep* found = nullptr;
  for (const CalibrationStep& step : report.calibration) {
    if (step.passed && step.rate == report.capacity) found = &step;
  }
  return found;
}

}  // namespace

uint64_t OverloadReport::busy_client_total() const {
  uint64_t total = 0;
  for (const uint64_t n : busy_client) total += n;
  return total;
}

bool OverloadReport::passed() const {
  return !criteria.empty() &&
         std::all_of(criteria.begin(), criteria.end(), [](const Criterion& c) { return c.passed; });
}

absl::StatusOr<OverloadReport> RunOverload(const LoadConfig& load, const OverloadConfig& config) {
  OverloadReport report;
  report.load = load;
  report.overload = config;
  // Fail early: the check needs the server's counters.
  if (absl::StatusOr<MetricSamples> first =
          ScrapeMetrics(load.host, config.metrics_port, kScrapeTimeout);
      !first.ok()) {
    return first.status();
  }
  if (absl::StatusOr<int64_t> rss = ReadRssBytes(config.server_pid); !rss.ok()) {
    return rss.status();
  }
  PhaseCursor cursor(load);
  // The load's latest CONFIRMED id, which each probe Query asks for.
  std::atomic<uint64_t> latest_confirmed{0};
  absl::StatusOr<double> capacity = Calibrate(load, config, cursor, report, &latest_confirmed);
  if (!capacity.ok()) return capacity.status();
  report.capacity = *capacity;
  report.offered_rate = std::min(kRateMax, config.factor * report.capacity);
  if (report.capacity == 0) {
    Judge(config, report);
    return report;
  }

  LoadConfig overload = load;
  overload.rate = report.offered_rate;
  overload.duration_s = config.overload_s;
  overload.latest_confirmed = &latest_confirmed;
  absl::StatusOr<MetricSamples> before =
      ScrapeMetrics(load.host, config.metrics_port, kScrapeTimeout);
  if (!before.ok()) return before.status();
  Probe probe(ProbeConfigFor(load, config, &latest_confirmed));
  if (absl::Status status = probe.Start(); !status.ok()) return status;
  absl::StatusOr<PhaseReport> phase = cursor.Run(overload, "overload");
  probe.Stop();
  if (!phase.ok()) return phase.status();
  report.phase = *std::move(phase);
  report.probe = probe.report();
  absl::StatusOr<MetricSamples> after =
      ScrapeMetrics(load.host, config.metrics_port, kScrapeTimeout);
  if (!after.ok()) return after.status();

  for (int r = 0; r < kReasonCount; ++r) {
    report.busy_client[r] = report.phase.tally.confirm_counts[v1::CONFIRM_STATUS_BUSY][r];
    report.busy_server[r] = Diff(*after, *before, ConfirmSeries("BUSY", ShortReasonName(r)));
  }
  report.confirmed_server = Diff(*after, *before, ConfirmSeries("CONFIRMED", "none"));
  SummarizeRss(config, report);
  QuerySample(load, report);
  Judge(config, report);
  return report;
}

void PrintOverloadText(const OverloadReport& report, std::FILE* out) {
  const LoadConfig& load = report.load;
  const OverloadConfig& config = report.overload;
  std::fprintf(out, "vouch-load --overload: %s:%d, %d connections, batch %d, %zu accounts\n",
               load.host.c_str(), load.port, load.connections, load.batch,
               load.workload.accounts);
  std::fprintf(out, "Calibration (%d s steps):", config.calibrate_step_s);
  for (const CalibrationStep& step : report.calibration) {
    std::fprintf(out, " %.0f%s", step.rate, step.passed ? "+" : "-");
  }
  std::fprintf(out, "  (+ keeps up, - falls behind)\nCapacity: %.0f tx/s. Offered: %.0f tx/s "
               "(%.1fx) for %d s, sent %.0f tx/s.\n",
               report.capacity, report.offered_rate, config.factor, config.overload_s,
               report.phase.sent_rate());
  if (report.capacity > 0) {
    const Tally& tally = report.phase.tally;
    const double span_s = static_cast<double>(report.phase.answer_span_ns) / 1e9;
    std::fprintf(out,
                 "Accepted (CONFIRMED) %lu = %.0f tx/s; BUSY %lu client / %lu server (queue_full "
                 "%lu / %lu); outcomes %lu (VERIFIED %lu, LATE_TIMEOUT %lu); lost %lu\n",
                 tally.confirmed, span_s > 0 ? static_cast<double>(tally.confirmed) / span_s : 0,
                 report.busy_client_total(),
                 [&] {
                   uint64_t n = 0;
                   for (const uint64_t b : report.busy_server) n += b;
                   return n;
                 }(),
                 report.busy_client[v1::REASON_QUEUE_FULL],
                 report.busy_server[v1::REASON_QUEUE_FULL], tally.outcomes,
                 [&] {
                   uint64_t n = 0;
                   for (const uint64_t v : tally.outcome_counts[v1::OUTCOME_KIND_VERIFIED]) n += v;
                   return n;
                 }(),
                 LateTimeouts(tally),
                 tally.awaiting_outcomes + tally.unexpected_outcomes + tally.unanswered);
    std::fprintf(out, "RSS: start %.1f MiB, after warm-up %.1f MiB, max after %.1f MiB, end %.1f "
                 "MiB (%zu samples)\n",
                 report.rss_start_bytes / kMiB, report.rss_warm_bytes / kMiB,
                 report.rss_max_bytes / kMiB, report.rss_end_bytes / kMiB,
                 report.probe.rss.size());
    if (const CalibrationStep* at = AtCapacity(report)) {
      std::fprintf(out, "Probe p99 at capacity (calibration step %.0f tx/s, no overload): Ping %s, "
                   "Query %s\n",
                   at->rate, FormatNs(at->ping_p99_ns).c_str(), FormatNs(at->query_p99_ns).c_str());
    }
    for (const auto& [name, histogram] :
         {std::pair<const char*, const LatencyHistogram*>{"Ping", &report.probe.ping},
          {"Query", &report.probe.query}}) {
      std::fprintf(out, "%s: n %lu, p50 %s, p99 %s, max %s\n", name, histogram->count(),
                   FormatNs(histogram->Percentile(50)).c_str(),
                   FormatNs(histogram->Percentile(99)).c_str(),
                   FormatNs(histogram->max_ns()).c_str());
    }
    for (const std::string& error : report.probe.errors) {
      std::fprintf(out, "  probe error: %s\n", error.c_str());
    }
    for (const std::string& error : report.phase.tally.error_messages) {
      std::fprintf(out, "  load error: %s\n", error.c_str());
    }
  }
  for (const Criterion& c : report.criteria) {
    std::fprintf(out, "  %s %-36s %g %s %g\n", c.passed ? "ok  " : "FAIL", c.name.c_str(), c.value,
                 c.relation.c_str(), c.bound);
  }
  std::fprintf(out, "\n%s\n", report.passed() ? "PASS: overload handled as promised"
                                              : "FAIL: see the criteria above");
  std::fflush(out);
}

std::string OverloadToJson(const OverloadReport& report) {
  const OverloadConfig& config = report.overload;
  JsonWriter json;
  json.BeginObject();
  json.String("tool", "vouch-load --overload");
  json.BeginObject("config");
  json.String("host", report.load.host);
  json.Int("port", report.load.port);
  json.Int("connections", report.load.connections);
  json.Int("batch", report.load.batch);
  json.Uint("accounts", report.load.workload.accounts);
  json.Int("server_pid", config.server_pid);
  json.Int("overload_s", config.overload_s);
  json.Double("factor", config.factor);
  json.Int("calibrate_step_s", config.calibrate_step_s);
  json.Double("probe_rate", config.probe_rate);
  json.EndObject();
  json.BeginArray("calibration");
  for (const CalibrationStep& step : report.calibration) {
    json.BeginObject();
    json.Double("rate", step.rate);
    json.Bool("passed", step.passed);
    json.Uint("busy", step.busy);
    json.Uint("late_timeouts", step.late_timeouts);
    json.Bool("phase_passed", step.phase_passed);
    json.Int("tries", step.tries);
    json.Int("ping_p99_ns", step.ping_p99_ns);
    json.Int("query_p99_ns", step.query_p99_ns);
    json.EndObject();
  }
  json.EndArray();
  json.Double("capacity", report.capacity);
  json.Double("offered_rate", report.offered_rate);
  json.Double("sent_rate", report.phase.sent_rate());
  const double span_s = static_cast<double>(report.phase.answer_span_ns) / 1e9;
  json.Double("accepted_rate",
              span_s > 0 ? static_cast<double>(report.phase.tally.confirmed) / span_s : 0);
  JsonPhase(json, report.phase, "phase");
  for (const auto& [key, counts] :
       {std::pair<const char*, const std::array<uint64_t, kReasonCount>*>{"busy_client",
                                                                          &report.busy_client},
        {"busy_server", &report.busy_server}}) {
    json.BeginObject(key);
    for (int r = 0; r < kReasonCount; ++r) {
      if ((*counts)[r] > 0) json.Uint(ShortReasonName(r), (*counts)[r]);
    }
    json.EndObject();
  }
  json.Uint("confirmed_server", report.confirmed_server);
  json.Uint("late_timeouts", LateTimeouts(report.phase.tally));
  json.BeginObject("rss_bytes");
  json.Int("start", report.rss_start_bytes);
  json.Int("after_warmup", report.rss_warm_bytes);
  json.Int("max_after_warmup", report.rss_max_bytes);
  json.Int("end", report.rss_end_bytes);
  json.BeginArray("samples");
  for (const RssSample& sample : report.probe.rss) {
    json.BeginObject();
    json.Int("at_ns", sample.at_ns);
    json.Int("rss", sample.rss_bytes);
    json.EndObject();
  }
  json.EndArray();
  json.EndObject();
  if (const CalibrationStep* at = AtCapacity(report)) {
    json.BeginObject("probe_at_capacity");
    json.Int("ping_p99_ns", at->ping_p99_ns);
    json.Int("query_p99_ns", at->query_p99_ns);
    json.EndObject();
  }
  json.BeginObject("probe");
  JsonLatency(json, "ping_ns", report.probe.ping);
  JsonLatency(json, "query_ns", report.probe.query);
  json.Uint("ping_failures", report.probe.ping_failures);
  json.Uint("query_failures", report.probe.query_failures);
  json.Uint("query_not_found", report.probe.query_not_found);
  json.BeginArray("errors");
  for (const std::string& error : report.probe.errors) json.String("", error);
  json.EndArray();
  json.EndObject();
  json.Uint("sample_queried", report.sample_queried);
  json.Uint("sample_final", report.sample_final);
  json.BeginObject("criteria");
  for (const Criterion& c : report.criteria) {
    json.BeginObject(c.name);
    json.Double("value", c.value);
    json.String("relation", c.relation);
    json.Double("bound", c.bound);
    json.Bool("passed", c.passed);
    json.EndObject();
  }
  json.EndObject();
  json.Bool("passed", report.passed());
  json.EndObject();
  return json.Take() + "\n";
}

}  // namespace vouch::load
