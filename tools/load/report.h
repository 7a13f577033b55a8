// vouch-load's final report, as text for people and as JSON for scripts; both carry the same
// data (docs/CLIENT.md describes the fields).
#ifndef VOUCH_TOOLS_LOAD_REPORT_H_
#define VOUCH_TOOLS_LOAD_REPORT_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/common/json.h"
#include "engine/metrics/histogram.h"
#include "tools/load/phase.h"

namespace vouch::load {

struct RunReport {
  LoadConfig config;
  std::vector<PhaseReport> phases;  // One, or with --isolation_check: healthy, with_bad_peers.

  // Every phase passed (see PhaseReport::passed).
  bool passed() const;
  // With two phases: the confirm p99 (from intended) with bad peers over that without.
  double isolation_ratio() const;
};

void PrintText(const RunReport& report, std::FILE* out);
// Pieces of the reports, shared with the overload report (overload.h).
// "queue_full" for REASON_QUEUE_FULL: the text report's name, and vouchd's /metrics label.
std::string ShortReasonName(int reason);
void JsonLatency(JsonWriter& json, absl::string_view key, const LatencyHistogram& histogram);
void JsonPhase(JsonWriter& json, const PhaseReport& phase, absl::string_view key = {});
std::string ToJson(const RunReport& report);

}  // namespace vouch::load

#endif  // VOUCH_TOOLS_LOAD_REPORT_H_
