// vouch-load: an open-loop load generator for a running vouchd. It offers --rate transactions
// a second for --duration_s over --connections named sessions, measures every confirm round
// trip from the transaction's intended send time (no coordinated omission) and from its actual
// send, waits for every confirmed transaction's Outcome, and reports counts and latencies as
// text or JSON. With --isolation_check it runs the load twice, the second time next to
// misbehaving peers, and reports the ratio of the two confirm p99s. With --overload it measures
// the server's capacity, offers --overload_factor times that for --overload_s and checks how the
// server copes (overload.h).
//
// Exit status: 0 when every confirmed transaction got exactly one Outcome, every transaction
// was answered and no error occurred (with --overload: every criterion held); 1 otherwise (or
// when it cannot connect); 2 for a bad flag.
//
// Threads: the main thread sends and prints; each connection has its Client's reader thread;
// the isolation check adds one thread for all the bad peers, the overload check one probe
// thread. See phase.h.
#include <sys/prctl.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tools/load/bad_peers.h"
#include "tools/load/overload.h"
#include "tools/load/phase.h"
#include "tools/load/report.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "vouchd's address.");
ABSL_FLAG(int, port, 7411, "vouchd's port.");
ABSL_FLAG(std::string, auth_token, "", "Hello's auth token, if vouchd has one.");
ABSL_FLAG(double, rate, 1'000, "Offered transactions per second, over all connections.");
ABSL_FLAG(int, duration_s, 10, "Seconds of offered load (per phase).");
ABSL_FLAG(int, connections, 4, "Connections (named sessions vouch-load-<pid>-<i>).");
ABSL_FLAG(int, batch, 1, "Transactions per Submit frame.");
ABSL_FLAG(int64_t, accounts, 10'000, "Accounts 1..N; must match vouchd's --accounts.");
ABSL_FLAG(double, fraud_share, 0.02, "Share of transactions that carry a fraud pattern.");
ABSL_FLAG(double, insufficient_share, 0.01, "Share of transactions beyond any balance.");
ABSL_FLAG(uint64_t, seed, 1, "Workload seed.");
ABSL_FLAG(uint64_t, first_id, 0,
          "First transaction id; 0: the current Unix time in microseconds, so that runs against "
          "one server do not reuse ids (at up to 1,000,000 tx/s).");
ABSL_FLAG(int, outcome_wait_s, 5, "After the load, how long to wait for answers and outcomes.");
ABSL_FLAG(bool, quiet, false, "No progress line on stderr.");
ABSL_FLAG(std::string, json, "", "Also write the report as JSON to this path.");
ABSL_FLAG(std::string, format, "text", "Report on stdout: text|json.");
ABSL_FLAG(bool, isolation_check, false,
          "Run the load twice: alone, then next to --bad_peers misbehaving connections; report "
          "both confirm p99s and their ratio.");
ABSL_FLAG(int, bad_peers, 4, "Misbehaving connections in the isolation check (non-reader, "
                             "slowloris, idle, in turn).");
ABSL_FLAG(double, bad_peer_rate, 0,
          "Transactions per second each non-reader bad peer submits; 0: --rate / --connections, "
          "what one healthy connection offers.");

ABSL_FLAG(bool, overload, false,
          "Overload check: calibrate the server's capacity, offer --overload_factor times it for "
          "--overload_s while probing Ping/Query and the server's RSS, and check the criteria "
          "(docs/RELIABILITY.md). Needs --server_pid and --metrics_port.");
ABSL_FLAG(int, overload_s, 30, "Overload: seconds of overload.");
ABSL_FLAG(double, overload_factor, 3, "Overload: offered rate over the measured capacity.");
ABSL_FLAG(int, server_pid, 0, "Overload: vouchd's pid, whose VmRSS is sampled each second.");
ABSL_FLAG(int, metrics_port, 0, "Overload: vouchd's --metrics_port, for its BUSY counts.");
ABSL_FLAG(double, calibrate_start_rate, 5'000, "Overload: the first calibration rate.");
ABSL_FLAG(int, calibrate_step_s, 2, "Overload: seconds per calibration step.");
ABSL_FLAG(int, calibrate_bisections, 2, "Overload: bisections after the ramp fails.");
ABSL_FLAG(double, calibrate_miss_share_max, 0.01,
          "Overload: a calibration step keeps up if at most this share of its transactions were "
          "refused BUSY or timed out (a descheduled stage on a shared machine).");
ABSL_FLAG(double, probe_rate, 100, "Overload: Ping and Query probes per second, in turn.");
ABSL_FLAG(double, probe_p99_max_ms, 50,
          "Overload: bound on the Ping and Query p99 (from intended time). 50 ms is the default "
          "verification deadline: a control request slower than a transaction's whole deadline "
          "means the server is not responsive.");
ABSL_FLAG(double, rss_growth_max_percent, 5,
          "Overload: bound on vouchd's RSS growth after warm-up (the first 20% of the run), in "
          "percent of its RSS then.");

namespace vouch::load {
namespace {

constexpr double kRateMax = 1'000'000;  // Also what keeps the default first_id unique.
constexpr int kBatchMax = 256;          // Keeps a Submit well inside a 64 KiB frame.
constexpr int kConnectionsMax = 256;
constexpr int kBadPeersMax = 64;
// Ids of the bad peers' transactions sit this far above the healthy ones.
constexpr uint64_t kBadPeerIdOffset = uint64_t{1} << 52;
// The bad peers run this long before the healthy load starts, so their pressure is built up.
constexpr auto kBadPeerLead = std::chrono::milliseconds(500);

absl::Status BadFlag(const std::string& flag, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

absl::Status CheckRanges(const LoadConfig& config) {
  if (config.port < 1 || config.port > 65535) return BadFlag("port", "must be in [1, 65535]");
  if (!(config.rate >= 1 && config.rate <= kRateMax)) {
    return BadFlag("rate", "must be in [1, 1000000]");
  }
  if (config.duration_s < 1 || config.duration_s > 3600) {
    return BadFlag("duration_s", "must be in [1, 3600]");
  }
  if (config.connections < 1 || config.connections > kConnectionsMax) {
    return BadFlag("connections", "must be in [1, 256]");
  }
  if (config.batch < 1 || config.batch > kBatchMax) return BadFlag("batch", "must be in [1, 256]");
  if (config.outcome_wait_s < 0 || config.outcome_wait_s > 3600) {
    return BadFlag("outcome_wait_s", "must be in [0, 3600]");
  }
  if (config.bad_peers < 1 || config.bad_peers > kBadPeersMax) {
    return BadFlag("bad_peers", "must be in [1, 64]");
  }
  if (!(config.bad_peer_rate >= 0 && config.bad_peer_rate <= kRateMax)) {
    return BadFlag("bad_peer_rate", "must be in [0, 1000000]");
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadConfig> ConfigFromFlags() {
  LoadConfig config;
  config.host = absl::GetFlag(FLAGS_host);
  config.port = absl::GetFlag(FLAGS_port);
  config.auth_token = absl::GetFlag(FLAGS_auth_token);
  config.rate = absl::GetFlag(FLAGS_rate);
  config.duration_s = absl::GetFlag(FLAGS_duration_s);
  config.connections = absl::GetFlag(FLAGS_connections);
  config.batch = absl::GetFlag(FLAGS_batch);
  config.outcome_wait_s = absl::GetFlag(FLAGS_outcome_wait_s);
  config.quiet = absl::GetFlag(FLAGS_quiet);
  config.isolation_check = absl::GetFlag(FLAGS_isolation_check);
  config.bad_peers = absl::GetFlag(FLAGS_bad_peers);
  config.bad_peer_rate = absl::GetFlag(FLAGS_bad_peer_rate);
  if (config.bad_peer_rate == 0) config.bad_peer_rate = config.rate / config.connections;
  if (absl::Status status = CheckRanges(config); !status.ok()) return status;
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "text" && format != "json") return BadFlag("format", "must be text or json");

  const int64_t accounts = absl::GetFlag(FLAGS_accounts);
  if (accounts < 2 || accounts > 1'000'000'000) {
    return BadFlag("accounts", "must be in [2, 1000000000]");
  }
  config.workload.accounts = static_cast<size_t>(accounts);
  config.workload.fraud_share = absl::GetFlag(FLAGS_fraud_share);
  config.workload.insufficient_funds_share = absl::GetFlag(FLAGS_insufficient_share);
  config.workload.seed = absl::GetFlag(FLAGS_seed);
  config.workload.first_id = absl::GetFlag(FLAGS_first_id);
  if (config.workload.first_id == 0) {
    config.workload.first_id = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  }
  if (absl::Status status = config.workload.Validate(); !status.ok()) {
    return BadFlag("fraud_share, --insufficient_share or --first_id",
                   std::string(status.message()));
  }
  return config;
}

// ParseCommandLine exits with status 1 on a bad flag (and after --help); this tool promises 2.
// Main thread only.
bool g_parsing_flags = false;

void ExitTwoIfParsing() {
  if (g_parsing_flags) {
    std::fflush(nullptr);
    std::_Exit(2);
  }
}

BadPeerConfig BadPeersFor(const LoadConfig& config) {
  BadPeerConfig bad;
  bad.host = config.host;
  bad.port = config.port;
  bad.auth_token = config.auth_token;
  bad.count = config.bad_peers;
  bad.non_reader_rate = config.bad_peer_rate;
  bad.workload = config.workload;
  bad.workload.seed = config.workload.seed + 1;
  bad.workload.first_id = config.workload.first_id + kBadPeerIdOffset;
  return bad;
}

absl::StatusOr<RunReport> Run(const LoadConfig& config) {
  RunReport report;
  report.config = config;
  if (!config.isolation_check) {
    absl::StatusOr<PhaseReport> phase =
        RunPhase(config, {"load", config.workload.first_id, /*first_session=*/0});
    if (!phase.ok()) return phase.status();
    report.phases.push_back(std::move(*phase));
    return report;
  }
  absl::StatusOr<PhaseReport> healthy =
      RunPhase(config, {"healthy", config.workload.first_id, 0});
  if (!healthy.ok()) return healthy.status();
  report.phases.push_back(std::move(*healthy));

  BadPeers bad_peers(BadPeersFor(config));
  bad_peers.Start();
  std::this_thread::sleep_for(kBadPeerLead);
  absl::StatusOr<PhaseReport> with_bad = RunPhase(
      config, {"with_bad_peers", config.workload.first_id + config.scheduled(),
               config.connections});
  bad_peers.Stop();
  if (!with_bad.ok()) return with_bad.status();
  with_bad->with_bad_peers = true;
  with_bad->bad_peers = bad_peers.report();
  report.phases.push_back(std::move(*with_bad));
  return report;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) return absl::UnavailableError(absl::StrCat("cannot open ", path));
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  if (std::fclose(file) != 0 || !written) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<OverloadConfig> OverloadConfigFromFlags() {
  OverloadConfig config;
  config.server_pid = absl::GetFlag(FLAGS_server_pid);
  config.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  config.overload_s = absl::GetFlag(FLAGS_overload_s);
  config.factor = absl::GetFlag(FLAGS_overload_factor);
  config.calibrate_start_rate = absl::GetFlag(FLAGS_calibrate_start_rate);
  config.calibrate_step_s = absl::GetFlag(FLAGS_calibrate_step_s);
  config.calibrate_bisections = absl::GetFlag(FLAGS_calibrate_bisections);
  config.calibrate_miss_share_max = absl::GetFlag(FLAGS_calibrate_miss_share_max);
  config.probe_rate = absl::GetFlag(FLAGS_probe_rate);
  config.probe_p99_max_ns = static_cast<int64_t>(absl::GetFlag(FLAGS_probe_p99_max_ms) * 1e6);
  config.rss_growth_max_ratio = absl::GetFlag(FLAGS_rss_growth_max_percent) / 100;
  if (config.server_pid <= 0) return BadFlag("server_pid", "required with --overload");
  if (config.metrics_port < 1 || config.metrics_port > 65535) {
    return BadFlag("metrics_port", "required with --overload, in [1, 65535]");
  }
  if (config.overload_s < 1 || config.overload_s > 3600) {
    return BadFlag("overload_s", "must be in [1, 3600]");
  }
  if (!(config.factor >= 1 && config.factor <= 100)) {
    return BadFlag("overload_factor", "must be in [1, 100]");
  }
  if (!(config.calibrate_start_rate >= 1 && config.calibrate_start_rate <= kRateMax)) {
    return BadFlag("calibrate_start_rate", "must be in [1, 1000000]");
  }
  if (config.calibrate_step_s < 1 || config.calibrate_step_s > 60) {
    return BadFlag("calibrate_step_s", "must be in [1, 60]");
  }
  if (config.calibrate_bisections < 0 || config.calibrate_bisections > 10) {
    return BadFlag("calibrate_bisections", "must be in [0, 10]");
  }
  if (!(config.calibrate_miss_share_max >= 0 && config.calibrate_miss_share_max < 1)) {
    return BadFlag("calibrate_miss_share_max", "must be in [0, 1)");
  }
  if (!(config.probe_rate >= 1 && config.probe_rate <= 10'000)) {
    return BadFlag("probe_rate", "must be in [1, 10000]");
  }
  if (!(config.probe_p99_max_ns > 0 && config.rss_growth_max_ratio >= 0)) {
    return BadFlag("probe_p99_max_ms or --rss_growth_max_percent", "must be positive");
  }
  return config;
}

int MainOverload(const LoadConfig& load, const OverloadConfig& config) {
  absl::StatusOr<OverloadReport> report = RunOverload(load, config);
  if (!report.ok()) {
    std::fprintf(stderr, "vouch-load: %s\n", report.status().ToString().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_format) == "json") {
    std::fputs(OverloadToJson(*report).c_str(), stdout);
    std::fflush(stdout);
  } else {
    PrintOverloadText(*report, stdout);
  }
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    if (absl::Status status = WriteFile(path, OverloadToJson(*report)); !status.ok()) {
      std::fprintf(stderr, "vouch-load: %s\n", status.ToString().c_str());
      return 1;
    }
  }
  return report->passed() ? 0 : 1;
}

int Main(const LoadConfig& config) {
  // The sender sleeps until each due time: a 1 us timer slack (instead of 50 us) makes it wake
  // on time.
  (void)prctl(PR_SET_TIMERSLACK, 1'000UL);
  if (absl::GetFlag(FLAGS_overload)) {
    absl::StatusOr<OverloadConfig> overload = OverloadConfigFromFlags();
    if (!overload.ok()) {
      std::fprintf(stderr, "vouch-load: %s\n", std::string(overload.status().message()).c_str());
      return 2;
    }
    return MainOverload(config, *overload);
  }
  absl::StatusOr<RunReport> report = Run(config);
  if (!report.ok()) {
    std::fprintf(stderr, "vouch-load: %s\n", report.status().ToString().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_format) == "json") {
    std::fputs(ToJson(*report).c_str(), stdout);
    std::fflush(stdout);
  } else {
    PrintText(*report, stdout);
  }
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    if (absl::Status status = WriteFile(path, ToJson(*report)); !status.ok()) {
      std::fprintf(stderr, "vouch-load: %s\n", status.ToString().c_str());
      return 1;
    }
  }
  return report->passed() ? 0 : 1;
}

}  // namespace
}  // namespace vouch::load

int main(int argc, char** argv) {
  using namespace vouch::load;
  absl::SetProgramUsageMessage(
      "Offers an open-loop load to a running vouchd and reports confirm round trips, outcomes "
      "and errors.\n"
      "  bazel run //tools/load:vouch-load -- --rate=2000 --duration_s=10 --json=/tmp/load.json");
  g_parsing_flags = true;
  std::atexit(ExitTwoIfParsing);
  absl::ParseCommandLine(argc, argv);
  g_parsing_flags = false;

  absl::StatusOr<LoadConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "vouch-load: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  return Main(*config);
}
