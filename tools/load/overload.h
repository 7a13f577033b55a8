// vouch-load --overload: offers a running vouchd several times its measured capacity and checks
// that it degrades the way ARCHITECTURE.md promises (issue 7, docs/RELIABILITY.md "Overload").
//
// 1. Calibrate. Short open-loop steps at rising rates (x1.5 each) until one fails, then a few
//    bisections between the last pass and the first failure. A failing step is run once more
//    before it counts as failed: a true overload fails every time, a neighbour's burst on a
//    shared machine rarely twice. The probe (below) runs during each step as well, which gives
//    the same run's Ping and Query latencies at capacity to set the overload's against. A step passes when every
//    transaction was answered and every confirmed one got its Outcome, and at most
//    calibrate_miss_share_max of them missed: refused BUSY or timed out (LATE_TIMEOUT). A rate
//    truly above capacity grows the backlog without bound, so most of the step's later
//    transactions miss; the small allowance only absorbs a stage thread descheduled for a while
//    on a shared machine. The capacity is the highest passing rate, measured against this
//    server in this run.
// 2. Overload. `factor` x capacity for `overload_s`, while a Probe (probe.h) sends Ping and
//    Query on a connection of its own and samples the server's RSS once a second, and the
//    server's /metrics is read before and after.
// 3. Check (each criterion is reported with its value and bound):
//    - the generator really offered the load (sent rate >= sent_ratio_min x offered);
//    - Ping and Query p99 (from intended time) <= probe_p99_max_ns, and no probe failed;
//    - BUSY > 0, and the client's BUSY count equals the server's, reason by reason; so do the
//      CONFIRMED counts;
//    - RSS growth after warm-up (the first warmup_share of the run) <= rss_growth_max_ratio of
//      the RSS at the end of warm-up;
//    - nothing lost: every transaction answered, every confirmed one exactly one Outcome;
//    - Query finds every sampled confirmed id, with a final state.
#ifndef VOUCH_TOOLS_LOAD_OVERLOAD_H_
#define VOUCH_TOOLS_LOAD_OVERLOAD_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/load/phase.h"
#include "tools/load/probe.h"

namespace vouch::load {

struct OverloadConfig {
  int server_pid = 0;     // vouchd's pid, for its RSS. Required.
  int metrics_port = 0;   // vouchd's --metrics_port. Required.
  int overload_s = 30;
  double factor = 3;      // Offered = factor x measured capacity.
  double calibrate_start_rate = 5'000;
  int calibrate_step_s = 2;
  int calibrate_bisections = 2;
  double calibrate_miss_share_max = 0.01;
  double probe_rate = 100;
  // Criteria.
  int64_t probe_p99_max_ns = 50'000'000;
  double rss_growth_max_ratio = 0.05;
  double warmup_share = 0.2;
  double sent_ratio_min = 0.9;
};

struct CalibrationStep {
  double rate = 0;
  bool passed = false;
  uint64_t busy = 0;
  uint64_t late_timeouts = 0;
  bool phase_passed = false;  // Everything answered, every Outcome, no error.
  int tries = 1;
  int64_t ping_p99_ns = 0;     // The probe's, during the (last) try.
  int64_t query_p99_ns = 0;
};

struct Criterion {
  std::string name;
  double value = 0;
  double bound = 0;
  std::string relation;  // "<=", ">=", "==", ">".
  bool passed = false;
};

struct OverloadReport {
  LoadConfig load;
  OverloadConfig overload;
  std::vector<CalibrationStep> calibration;
  double capacity = 0;        // Transactions per second; 0 if even the first step failed.
  double offered_rate = 0;    // factor x capacity.
  PhaseReport phase;          // The overload phase.
  ProbeReport probe;
  int64_t rss_start_bytes = 0;    // First sample.
  int64_t rss_warm_bytes = 0;     // Last sample of the warm-up.
  int64_t rss_end_bytes = 0;      // Last sample.
  int64_t rss_max_bytes = 0;      // Largest sample after the warm-up.
  // BUSY by reason: what the clients were told, and the server's counter over the same phase.
  std::array<uint64_t, kReasonCount> busy_client{};
  std::array<uint64_t, kReasonCount> busy_server{};
  uint64_t confirmed_server = 0;
  uint64_t sample_queried = 0;
  uint64_t sample_final = 0;  // Of those, found with a final state.
  std::vector<Criterion> criteria;

  uint64_t busy_client_total() const;
  bool passed() const;
};

// Runs the three steps against the server in `load` (host, port, connections, batch,
// workload). An error only when it cannot start (no connection, no metrics); everything after
// is in the report.
absl::StatusOr<OverloadReport> RunOverload(const LoadConfig& load, const OverloadConfig& config);

void PrintOverloadText(const OverloadReport& report, std::FILE* out);
std::string OverloadToJson(const OverloadReport& report);

}  // namespace vouch::load

#endif  // VOUCH_TOOLS_LOAD_OVERLOAD_H_
