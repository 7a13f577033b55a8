// ScrapeMetrics: one read of vouchd's Prometheus /metrics (--metrics_port; every metric is in
// docs/OPERATIONS.md), so that vouch-load can hold the server's own counts against what its
// clients saw. Plain HTTP/1.0 over a blocking socket: one request, the server closes.
#ifndef VOUCH_TOOLS_LOAD_SERVER_METRICS_H_
#define VOUCH_TOOLS_LOAD_SERVER_METRICS_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vouch::load {

// Series (name and labels as exposed, e.g. `vouch_confirmations_total{status="BUSY",reason=
// "queue_full"}`) -> value.
using MetricSamples = absl::flat_hash_map<std::string, double>;

absl::StatusOr<MetricSamples> ScrapeMetrics(const std::string& host, int port,
                                            absl::Duration timeout);

// The value of `series`, 0 when it is absent (a counter not yet exposed).
double SampleOr0(const MetricSamples& samples, const std::string& series);

}  // namespace vouch::load

#endif  // VOUCH_TOOLS_LOAD_SERVER_METRICS_H_
