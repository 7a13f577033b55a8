// vouch-bench: the in-process end-to-end harness. For each offered rate (stepped up to
// saturation) it runs every design on a fresh instance over the same transaction stream: the
// vouch engine in async, hybrid and sync mode, and the baseline design (bench/baseline). It
// prints a line per step, then the tables: per-step throughput and latency percentiles, the
// highest rate whose confirm p99 stays under --confirm_p99_limit_ns, the mode comparison, the
// ratio to the baseline and the targets. --json=PATH writes the same as JSON
// (docs/PERF_HARNESS.md lists the keys). Exit status: 0 when every confirmed transaction got
// exactly one outcome in every step, 1 otherwise, 2 for a bad flag.
//
// The machine this runs on has 2 cores: each design runs 3 stage threads, plus the producers
// and the polling main thread, so the default is one producer, and nothing is pinned.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/perf/report.h"
#include "tools/perf/step.h"
#include "tools/perf/subject.h"

ABSL_FLAG(std::string, rates, "100000,250000,500000,1000000,2000000",
          "Offered rates in transactions per second, comma-separated, run in this order.");
ABSL_FLAG(double, duration_s, 2, "Seconds of offered load per step.");
ABSL_FLAG(int, verifiers, 2,
          "Verifiers in all for the vouch designs (2 to 8): fraud, ledger and pass-through "
          "embedder's verifiers (docs/VERIFIERS.md). The baseline keeps its two.");
ABSL_FLAG(int, producers, 1, "Submitting threads (the machine has 2 cores: fewer is better).");
ABSL_FLAG(std::string, designs, "async,hybrid,sync,baseline",
          "Designs to run at each rate: async, hybrid, sync (vouch's policy modes), baseline.");
ABSL_FLAG(int64_t, accounts, 0,
          "Accounts opened in the ledger; 0: enough that the highest rate puts at most "
          "8 transactions a second on an average account (at least 10,000).");
ABSL_FLAG(double, fraud_share, 0.02, "Share of transactions that carry a fraud pattern.");
ABSL_FLAG(double, insufficient_share, 0.01, "Share of transactions beyond any balance.");
ABSL_FLAG(uint64_t, seed, 1, "Workload seed; producer i uses seed + i.");
ABSL_FLAG(uint64_t, sample_every, 64, "Stage times are taken for ids that are multiples of this.");
ABSL_FLAG(int64_t, confirm_p99_limit_ns, 10'000,
          "The confirm (Submit call) p99 under which a sustained rate counts as met.");
ABSL_FLAG(std::string, json, "", "Also write the report as JSON to this path.");

namespace vouch::perf {
namespace {

// The seen-outcome table costs a byte per scheduled transaction.
constexpr double kTransactionsPerStepMax = 100e6;
// The workload's fraud rules fail an account past 40 transactions a second (velocity), and a
// failure holds the account: with too few accounts for the rate, normal traffic trips the rule
// and the run turns into ingest rejections. 8 a second keeps an account's count far below 40.
constexpr double kAccountTransactionsPerSMax = 8;
constexpr int64_t kAccountsMin = 10'000;

absl::Status BadFlag(const std::string& flag, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

absl::StatusOr<RunConfig> ConfigFromFlags() {
  RunConfig config;
  config.duration_s = absl::GetFlag(FLAGS_duration_s);
  if (!(config.duration_s >= 0.01 && config.duration_s <= 600)) {
    return BadFlag("duration_s", "must be in [0.01, 600]");
  }
  for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_rates), ',')) {
    double rate = 0;
    if (!absl::SimpleAtod(text, &rate) || !(rate >= 1)) {
      return BadFlag("rates", absl::StrCat("'", text, "' is not a rate >= 1"));
    }
    if (rate * config.duration_s > kTransactionsPerStepMax) {
      return BadFlag("rates", "times --duration_s must be at most 100,000,000 per step");
    }
    config.rates.push_back(rate);
  }
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_designs), ',')) {
    absl::StatusOr<Design> design = ParseDesign(std::string_view(name.data(), name.size()));
    if (!design.ok()) return BadFlag("designs", std::string(design.status().message()));
    config.designs.push_back(*design);
  }
  config.verifiers = absl::GetFlag(FLAGS_verifiers);
  if (config.verifiers < 2 || config.verifiers > 8) return BadFlag("verifiers", "must be in [2, 8]");
  config.producers = absl::GetFlag(FLAGS_producers);
  if (config.producers < 1 || config.producers > 64) {
    return BadFlag("producers", "must be in [1, 64]");
  }
  int64_t accounts = absl::GetFlag(FLAGS_accounts);
  if (accounts == 0) {
    const double rate_max = *std::max_element(config.rates.begin(), config.rates.end());
    accounts = std::max(kAccountsMin,
                        static_cast<int64_t>(std::ceil(rate_max / kAccountTransactionsPerSMax)));
  }
  if (accounts < 2 || accounts > 1'000'000) {
    return BadFlag("accounts", "must be 0 (automatic) or in [2, 1000000]");
  }
  config.sample_every = absl::GetFlag(FLAGS_sample_every);
  if (config.sample_every < 1) return BadFlag("sample_every", "must be >= 1");
  config.confirm_p99_limit_ns = absl::GetFlag(FLAGS_confirm_p99_limit_ns);
  if (config.confirm_p99_limit_ns < 1) return BadFlag("confirm_p99_limit_ns", "must be >= 1");
  config.workload.seed = absl::GetFlag(FLAGS_seed);
  config.workload.accounts = static_cast<size_t>(accounts);
  config.workload.fraud_share = absl::GetFlag(FLAGS_fraud_share);
  config.workload.insufficient_funds_share = absl::GetFlag(FLAGS_insufficient_share);
  if (absl::Status status = config.workload.Validate(); !status.ok()) {
    return BadFlag("fraud_share or --insufficient_share", std::string(status.message()));
  }
  return config;
}

int Run(const RunConfig& config, const std::string& json_path) {
  std::printf(
      "vouch-bench: %zu rates x %zu designs, %d verifiers, %.2f s per step, %d producer(s), "
      "%zu accounts, fraud %.1f%%, insufficient funds %.1f%%; open loop, stage times sampled 1 "
      "in %lu ids\n",
      config.rates.size(), config.designs.size(), config.verifiers, config.duration_s,
      config.producers,
      config.workload.accounts, 100 * config.workload.fraud_share,
      100 * config.workload.insufficient_funds_share, config.sample_every);
  RunReport report;
  report.config = config;
  // Rate-major: the designs of one rate run back to back, so drift in a shared machine's load
  // touches them alike.
  for (double rate : config.rates) {
    for (Design design : config.designs) {
      StepConfig step;
      step.design = design;
      step.rate = rate;
      step.duration_s = config.duration_s;
      step.producers = config.producers;
      step.verifiers = config.verifiers;
      step.workload = config.workload;
      step.sample_every = config.sample_every;
      absl::StatusOr<StepResult> result = RunStep(step);
      if (!result.ok()) {
        std::fprintf(stderr, "vouch-bench: %s at %.0f tx/s: %s\n",
                     std::string(DesignName(design)).c_str(), rate,
                     result.status().ToString().c_str());
        return 1;
      }
      PrintStep(*result, stdout);
      report.steps.push_back(*std::move(result));
    }
  }
  PrintText(report, stdout);
  if (!json_path.empty()) {
    std::FILE* file = std::fopen(json_path.c_str(), "w");
    const std::string json = ToJson(report);
    if (file == nullptr || std::fwrite(json.data(), 1, json.size(), file) != json.size() ||
        std::fclose(file) != 0) {
      std::fprintf(stderr, "vouch-bench: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return report.passed() ? 0 : 1;
}

// ParseCommandLine exits with 1 on a malformed or unknown flag; the tool promises 2.
bool g_parsing_flags = false;
void ExitTwoIfParsing() {
  if (g_parsing_flags) {
    std::fflush(nullptr);
    std::_Exit(2);
  }
}

}  // namespace
}  // namespace vouch::perf

int main(int argc, char** argv) {
  using namespace vouch::perf;
  absl::SetProgramUsageMessage(
      "In-process end-to-end benchmark of vouch (async, hybrid, sync) and the baseline design "
      "at stepped offered rates.\n"
      "  bazel run -c opt //tools/perf:vouch-bench -- --duration_s=2 --json=/tmp/bench.json");
  g_parsing_flags = true;
  std::atexit(ExitTwoIfParsing);
  absl::ParseCommandLine(argc, argv);
  g_parsing_flags = false;
  absl::StatusOr<RunConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "vouch-bench: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  return Run(*config, absl::GetFlag(FLAGS_json));
}
