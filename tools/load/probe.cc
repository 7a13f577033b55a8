#include "tools/load/probe.h"

#include <sys/prctl.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vouch::load {
namespace {

constexpr size_t kErrorsMax = 8;
constexpr int64_t kNsPerS = 1'000'000'000;
constexpr int64_t kRssIntervalNs = kNsPerS;

int64_t NowNs() { return client::Client::NowNs(); }

}  // namespace

absl::StatusOr<int64_t> ReadRssBytes(int pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/status");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    // "VmRSS:	  571028 kB"
    rest = absl::StripAsciiWhitespace(rest);
    int64_t kib = 0;
    if (!absl::ConsumeSuffix(&rest, " kB") ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kib)) {
      return absl::DataLossError(absl::StrCat("unexpected VmRSS line in ", path, ": ", line));
    }
    return kib * 1024;
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS in ", path));
}

Probe::~Probe() { Stop(); }

absl::Status Probe::Start() {
  client::ClientOptions options;
  options.host = config_.host;
  options.port = config_.port;
  options.auth_token = config_.auth_token;
  absl::StatusOr<std::unique_ptr<client::Client>> client = client::Client::Connect(options);
  if (!client.ok()) return client.status();
  client_ = std::move(*client);
  start_ns_ = NowNs();
  thread_ = std::thread([this] {
    prctl(PR_SET_NAME, "vouch-load-prb");
    Run();
  });
  return absl::OkStatus();
}

void Probe::Stop() {
  stop_.store(true, std::memory_order_relaxed);  // relaxed: only ends the loop.
  if (thread_.joinable()) thread_.join();
  if (client_ != nullptr) client_->Close();
}

void Probe::AddError(const std::string& message) {
  if (report_.errors.size() < kErrorsMax) report_.errors.push_back(message);
}

void Probe::SampleRss(int64_t since_start_ns) {
  if (config_.server_pid <= 0) return;
  absl::StatusOr<int64_t> rss = ReadRssBytes(config_.server_pid);
  if (!rss.ok()) {
    AddError(rss.status().ToString());
    return;
  }
  report_.rss.push_back({since_start_ns, *rss});
}

void Probe::Run() {
  const auto period_ns = static_cast<int64_t>(1e9 / config_.rate);
  int64_t due_ns = start_ns_;
  int64_t next_rss_ns = start_ns_;
  bool ping = true;
  while (!stop_.load(std::memory_order_relaxed)) {
    int64_t now_ns = NowNs();
    if (now_ns >= next_rss_ns) {
      SampleRss(now_ns - start_ns_);
      next_rss_ns += kRssIntervalNs;
    }
    if (now_ns < due_ns) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(due_ns, next_rss_ns) - now_ns));
      continue;
    }
    absl::Status status;
    if (ping) {
      status = client_->Ping(config_.timeout).status();
      report_.ping.Record(NowNs() - due_ns);
      if (!status.ok()) ++report_.ping_failures;
    } else {
      // relaxed: see ProbeConfig.
      const uint64_t latest = config_.latest_confirmed == nullptr
                                  ? 0
                                  : config_.latest_confirmed->load(std::memory_order_relaxed);
      absl::StatusOr<v1::Status> found =
          client_->Query(latest != 0 ? latest : config_.query_id, config_.timeout);
      report_.query.Record(NowNs() - due_ns);
      if (!found.ok()) {
        status = found.status();
        ++report_.query_failures;
      } else if (!found->found()) {
        ++report_.query_not_found;
      }
    }
    if (!status.ok()) AddError(absl::StrCat(ping ? "Ping: " : "Query: ", status.ToString()));
    ping = !ping;
    due_ns += period_ns;
  }
}

}  // namespace vouch::load
