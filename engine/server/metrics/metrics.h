// Prometheus metrics for a vouch engine and its server, in the text exposition format over HTTP
// on a port of their own (prometheus-cpp's Exposer).
//
//   MetricsCollector  reads Engine::Stats(), Server::Stats(), the journal's and the agents'
//                     counters when Prometheus scrapes, and turns them into metric families.
//   MetricsEndpoint   serves GET /metrics for one collector on HOST:PORT.
//
// Nothing here runs on the hot path: the engine and the server only bump their own single-writer
// or per-thread counters (relaxed atomics), and prometheus-cpp is called at scrape time only, on
// the HTTP server's threads. docs/OPERATIONS.md lists every metric.
//
// Thread safety: Collect() may run on any number of threads at once (it only reads counters that
// are safe to read from any thread). Values are read one by one, not as a snapshot: under load,
// two related values of one scrape (say the in-flight count and the outcome count) may disagree
// by the few transactions that moved between the reads.
#ifndef VOUCH_ENGINE_SERVER_METRICS_METRICS_H_
#define VOUCH_ENGINE_SERVER_METRICS_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/server/server.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"

namespace vouch::server {

class MetricsCollector final : public prometheus::Collectable {
 public:
  // `server` may be null (an embedded engine without the TCP server): its metrics are left out.
  // REQUIRES: engine (and server) outlive every Collect() call; stats may be read from any
  // thread, that is, between Start() and the end of Stop()/Shutdown().
  explicit MetricsCollector(const Engine* engine, const Server* server = nullptr)
      : engine_(engine), server_(server) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Engine* const engine_;
  const Server* const server_;
};

class MetricsEndpoint {
 public:
  // Listens on host:port (port 0 picks a free one; see port()) and serves `collector` at
  // /metrics. kUnavailable if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& host, int port, std::shared_ptr<MetricsCollector> collector);
  // Stops the HTTP threads; a scrape in progress completes first.
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }  // The bound port.

 private:
  MetricsEndpoint(std::shared_ptr<MetricsCollector> collector,
                  std::unique_ptr<prometheus::Exposer> exposer, std::string host, int port)
      : collector_(std::move(collector)),
        exposer_(std::move(exposer)),
        host_(std::move(host)),
        port_(port) {}

  // Declared first so that it is destroyed last: the exposer holds only a weak_ptr to it.
  const std::shared_ptr<MetricsCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // Reset by the destructor.
  const std::string host_;
  const int port_;
};

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_METRICS_METRICS_H_
