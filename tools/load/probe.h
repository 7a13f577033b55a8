// Probe: what a monitoring client and an operator see while vouch-load overloads a server.
//
// One connection of its own (unnamed, so it shares nothing with the load's sessions) sends a
// Ping and a Query in turn, `rate` requests a second, each a blocking call with a timeout, and
// records every round trip. A round trip is measured from the request's intended time, not from
// when it was sent: a stalled server makes the probes behind the stall late as well, and each of
// them is recorded late (no coordinated omission). Once a second the probe also reads the
// server's resident set size from /proc/<pid>/status.
//
// Thread safety: Start and Stop are called from one thread; between them one thread
// ("vouch-load-prb") does all the probing. report() after Stop().
#ifndef VOUCH_TOOLS_LOAD_PROBE_H_
#define VOUCH_TOOLS_LOAD_PROBE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "engine/metrics/histogram.h"

namespace vouch::load {

struct ProbeConfig {
  std::string host;
  int port = 0;
  std::string auth_token;
  double rate = 100;            // Requests per second, Pings and Queries in turn.
  // Each Query asks for the id stored here, the load's latest CONFIRMED one, so that it is
  // still remembered by the server's idempotency table; `query_id` while that is 0.
  const std::atomic<uint64_t>* latest_confirmed = nullptr;
  uint64_t query_id = 0;
  int server_pid = 0;           // Whose VmRSS is sampled; 0: none.
  absl::Duration timeout = absl::Seconds(1);  // A request slower than this is a failure.
};

struct RssSample {
  int64_t at_ns = 0;      // Since Start().
  int64_t rss_bytes = 0;
};

struct ProbeReport {
  LatencyHistogram ping;   // From intended time to Pong.
  LatencyHistogram query;  // From intended time to Status.
  uint64_t ping_failures = 0;   // Timed out or failed.
  uint64_t query_failures = 0;
  uint64_t query_not_found = 0;  // Answered, but the confirmed id was not found.
  std::vector<std::string> errors;  // The first few failures' messages.
  std::vector<RssSample> rss;       // One a second.
};

// VmRSS of `pid` in bytes, from /proc/<pid>/status.
absl::StatusOr<int64_t> ReadRssBytes(int pid);

class Probe {
 public:
  explicit Probe(const ProbeConfig& config) : config_(config) {}
  ~Probe();  // Stop()s.
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  // Connects, then starts the thread. An error if the connection cannot be opened.
  absl::Status Start();
  void Stop();  // Idempotent.
  const ProbeReport& report() const { return report_; }

 private:
  void Run();
  void SampleRss(int64_t since_start_ns);
  void AddError(const std::string& message);

  const ProbeConfig config_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int64_t start_ns_ = 0;
  ProbeReport report_;  // The probe thread only, until joined.
  std::unique_ptr<client::Client> client_;  // Set by Start.
};

}  // namespace vouch::load

#endif  // VOUCH_TOOLS_LOAD_PROBE_H_
