#include "tools/load/report.h"

#include <cctype>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/common/json.h"
#include "tools/load/format.h"

namespace vouch::load {
namespace {

constexpr double kIsolationRatioMax = 2.0;  // The requirement the isolation check reports on.

// ---------------------------------------------------------------------------------------------
// Names. JSON uses the wire contract's enum names; text drops their prefixes.

std::string ProtoName(const std::string& name, absl::string_view fallback_prefix, int value) {
  return name.empty() ? absl::StrCat(fallback_prefix, value) : name;
}
std::string StatusName(int status) {
  return ProtoName(v1::ConfirmStatus_Name(status), "CONFIRM_STATUS_", status);
}
std::string KindName(int kind) {
  return ProtoName(v1::OutcomeKind_Name(kind), "OUTCOME_KIND_", kind);
}
std::string ReasonName(int reason) {
  return ProtoName(v1::Reason_Name(reason), "REASON_", reason);
}
// "CONFIRM_STATUS_BUSY" -> "BUSY"; "REASON_QUEUE_FULL" -> "queue_full".
std::string Short(const std::string& name, absl::string_view prefix, bool lower) {
  std::string out = name.substr(name.rfind(std::string(prefix), 0) == 0 ? prefix.size() : 0);
  if (lower) {
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The latencies of a phase, in report order.
std::vector<std::pair<std::string, const LatencyHistogram*>> Latencies(const Tally& tally) {
  return {{"confirm_from_intended", &tally.confirm_from_intended},
          {"confirm_from_send", &tally.confirm_from_send},
          {"confirm_to_outcome", &tally.confirm_to_outcome}};
}

// ---------------------------------------------------------------------------------------------
// JSON.

// {"CONFIRM_STATUS_CONFIRMED": {"REASON_NONE": 9800}, ...}: non-zero counts only.
template <size_t Rows, size_t Columns>
void JsonCounts(JsonWriter& json, absl::string_view key,
                const std::array<std::array<uint64_t, Columns>, Rows>& counts,
                std::string (*row_name)(int)) {
  json.BeginObject(key);
  for (size_t row = 0; row < Rows; ++row) {
    bool any = false;
    for (uint64_t n : counts[row]) any = any || n > 0;
    if (!any) continue;
    json.BeginObject(row_name(static_cast<int>(row)));
    for (size_t reason = 0; reason < Columns; ++reason) {
      if (counts[row][reason] > 0) {
        json.Uint(ReasonName(static_cast<int>(reason)), counts[row][reason]);
      }
    }
    json.EndObject();
  }
  json.EndObject();
}

void JsonBadPeers(JsonWriter& json, const BadPeerReport& bad_peers) {
  json.BeginObject("bad_peers");
  for (int kind = 0; kind < kBadPeerKindCount; ++kind) {
    const BadPeerCounts& counts = bad_peers[kind];
    json.BeginObject(BadPeerKindName(static_cast<BadPeerKind>(kind)));
    json.Uint("peers", counts.peers);
    json.Uint("connections", counts.connections);
    json.Uint("closed_by_server", counts.closed_by_server);
    json.Uint("connect_failures", counts.connect_failures);
    json.Uint("transactions_sent", counts.transactions_sent);
    json.Uint("bytes_sent", counts.bytes_sent);
    json.EndObject();
  }
  json.EndObject();
}

void JsonConfig(JsonWriter& json, const LoadConfig& config) {
  json.BeginObject("config");
  json.String("host", config.host);
  json.Int("port", config.port);
  json.Double("rate", config.rate);
  json.Int("duration_s", config.duration_s);
  json.Int("connections", config.connections);
  json.Int("batch", config.batch);
  json.Uint("accounts", config.workload.accounts);
  json.Double("fraud_share", config.workload.fraud_share);
  json.Double("insufficient_share", config.workload.insufficient_funds_share);
  json.Uint("seed", config.workload.seed);
  json.Uint("first_id", config.workload.first_id);
  json.Int("outcome_wait_s", config.outcome_wait_s);
  json.Bool("isolation_check", config.isolation_check);
  json.Int("bad_peers", config.isolation_check ? config.bad_peers : 0);
  json.Double("bad_peer_rate", config.isolation_check ? config.bad_peer_rate : 0);
  json.EndObject();
}

// ---------------------------------------------------------------------------------------------
// Text.

void TextCounts(std::FILE* out, const char* title, uint64_t total, const char* total_label,
                absl::Span<const std::array<uint64_t, kReasonCount>> counts,
                std::string (*row_name)(int), absl::string_view prefix) {
  std::fprintf(out, "  %s: %lu %s\n", title, total, total_label);
  for (size_t row = 0; row < counts.size(); ++row) {
    std::vector<std::string> cells;
    for (int reason = 0; reason < kReasonCount; ++reason) {
      if (counts[row][reason] == 0) continue;
      cells.push_back(absl::StrCat(ShortReasonName(reason), " ",
                                   counts[row][reason]));
    }
    if (cells.empty()) continue;
    std::fprintf(out, "    %-13s %s\n",
                 Short(row_name(static_cast<int>(row)), prefix, false).c_str(),
                 absl::StrJoin(cells, ", ").c_str());
  }
}

void TextLatencies(std::FILE* out, const Tally& tally) {
  std::fprintf(out, "  %-24s %9s %9s %9s %9s %9s %9s\n", "latency", "n", "p50", "p90", "p99",
               "p99.9", "max");
  for (const auto& [key, histogram] : Latencies(tally)) {
    std::fprintf(out, "  %-24s %9lu %9s %9s %9s %9s %9s\n", key.c_str(), histogram->count(),
                 FormatNs(histogram->Percentile(50)).c_str(),
                 FormatNs(histogram->Percentile(90)).c_str(),
                 FormatNs(histogram->Percentile(99)).c_str(),
                 FormatNs(histogram->Percentile(99.9)).c_str(),
                 FormatNs(histogram->max_ns()).c_str());
  }
}

void TextBadPeers(std::FILE* out, const BadPeerReport& bad_peers) {
  for (int kind = 0; kind < kBadPeerKindCount; ++kind) {
    const BadPeerCounts& counts = bad_peers[kind];
    if (counts.peers == 0) continue;
    std::fprintf(out,
                 "  bad peers %-10s %lu peers, %lu connections (%lu closed by the server, %lu "
                 "failed), %lu transactions in %lu bytes\n",
                 BadPeerKindName(static_cast<BadPeerKind>(kind)), counts.peers,
                 counts.connections, counts.closed_by_server, counts.connect_failures,
                 counts.transactions_sent, counts.bytes_sent);
  }
}

void TextPhase(std::FILE* out, const PhaseReport& phase) {
  const Tally& tally = phase.tally;
  std::fprintf(out,
               "\nPhase %s: %lu scheduled, %lu sent, %lu unsent, %lu answered (%.1f tx/s "
               "achieved), %lu unanswered\n",
               phase.name.c_str(), phase.scheduled, tally.sent, tally.unsent, tally.answered,
               phase.achieved_rate(), tally.unanswered);
  TextLatencies(out, tally);
  TextCounts(out, "Confirmations", tally.confirmed,
             "confirmed (each is due an outcome unless it was held: then this was its answer)",
             tally.confirm_counts, &StatusName, "CONFIRM_STATUS_");
  std::fprintf(out, "    duplicates %lu, held %lu\n", tally.duplicates, tally.held);
  TextCounts(out, "Outcomes", tally.outcomes, "received", tally.outcome_counts, &KindName,
             "OUTCOME_KIND_");
  std::fprintf(out, "  missing_outcomes %lu, unexpected_outcomes %lu, errors %lu\n",
               tally.awaiting_outcomes, tally.unexpected_outcomes, tally.errors);
  for (const std::string& message : tally.error_messages) {
    std::fprintf(out, "    error: %s\n", message.c_str());
  }
  if (phase.with_bad_peers) TextBadPeers(out, phase.bad_peers);
}

}  // namespace

std::string ShortReasonName(int reason) { return Short(ReasonName(reason), "REASON_", true); }

void JsonLatency(JsonWriter& json, absl::string_view key, const LatencyHistogram& histogram) {
  json.BeginObject(key);
  json.Uint("count", histogram.count());
  json.Int("p50", histogram.Percentile(50));
  json.Int("p90", histogram.Percentile(90));
  json.Int("p99", histogram.Percentile(99));
  json.Int("p99_9", histogram.Percentile(99.9));
  json.Int("max", histogram.max_ns());
  json.EndObject();
}

void JsonPhase(JsonWriter& json, const PhaseReport& phase, absl::string_view key) {
  const Tally& tally = phase.tally;
  json.BeginObject(key);
  json.String("name", phase.name);
  json.Uint("scheduled", phase.scheduled);
  json.Uint("sent", tally.sent);
  json.Uint("unsent", tally.unsent);
  json.Uint("answered", tally.answered);
  json.Uint("unanswered", tally.unanswered);
  json.Double("achieved_rate", phase.achieved_rate());
  json.Double("sent_rate", phase.sent_rate());
  json.Uint("confirmed", tally.confirmed);
  json.Uint("duplicates", tally.duplicates);
  json.Uint("held", tally.held);
  json.Uint("outcomes", tally.outcomes);
  json.Uint("missing_outcomes", tally.awaiting_outcomes);
  json.Uint("unexpected_outcomes", tally.unexpected_outcomes);
  json.Uint("errors", tally.errors);
  json.BeginArray("error_messages");
  for (const std::string& message : tally.error_messages) json.String("", message);
  json.EndArray();
  JsonCounts(json, "confirm_counts", tally.confirm_counts, &StatusName);
  JsonCounts(json, "outcome_counts", tally.outcome_counts, &KindName);
  json.BeginObject("latency_ns");
  for (const auto& [key, histogram] : Latencies(tally)) JsonLatency(json, key, *histogram);
  json.EndObject();
  if (phase.with_bad_peers) JsonBadPeers(json, phase.bad_peers);
  json.Bool("passed", phase.passed());
  json.EndObject();
}

bool RunReport::passed() const {
  for (const PhaseReport& phase : phases) {
    if (!phase.passed()) return false;
  }
  return true;
}

double RunReport::isolation_ratio() const {
  if (phases.size() != 2) return 0;
  const int64_t healthy_ns = phases[0].tally.confirm_from_intended.Percentile(99);
  const int64_t bad_ns = phases[1].tally.confirm_from_intended.Percentile(99);
  return static_cast<double>(bad_ns) / static_cast<double>(healthy_ns);
}

void PrintText(const RunReport& report, std::FILE* out) {
  const LoadConfig& config = report.config;
  std::fprintf(out,
               "vouch-load: %s:%d, %d connections, batch %d, %.0f tx/s offered for %d s, %zu "
               "accounts, fraud %.1f%%, insufficient funds %.1f%%, seed %lu, first id %lu\n",
               config.host.c_str(), config.port, config.connections, config.batch, config.rate,
               config.duration_s, config.workload.accounts, 100 * config.workload.fraud_share,
               100 * config.workload.insufficient_funds_share, config.workload.seed,
               config.workload.first_id);
  for (const PhaseReport& phase : report.phases) TextPhase(out, phase);
  if (config.isolation_check && report.phases.size() == 2) {
    std::fprintf(out,
                 "\nIsolation: confirm p99 (from intended) %s healthy, %s with %d bad peers: "
                 "ratio %.2f (required: at most %.0f)\n",
                 FormatNs(report.phases[0].tally.confirm_from_intended.Percentile(99)).c_str(),
                 FormatNs(report.phases[1].tally.confirm_from_intended.Percentile(99)).c_str(),
                 config.bad_peers, report.isolation_ratio(), kIsolationRatioMax);
  }
  std::fprintf(out, "\n%s\n",
               report.passed()
                   ? "PASS: every confirmed transaction got exactly one outcome; no errors"
                   : "FAIL: see missing_outcomes, unexpected_outcomes, unanswered and errors");
  std::fflush(out);
}

std::string ToJson(const RunReport& report) {
  JsonWriter json;
  json.BeginObject();
  json.String("tool", "vouch-load");
  JsonConfig(json, report.config);
  json.BeginArray("phases");
  Tally total;
  for (const PhaseReport& phase : report.phases) {
    JsonPhase(json, phase);
    total.Merge(phase.tally);
  }
  json.EndArray();
  // Totals over the phases, for a quick check.
  json.Uint("confirmed", total.confirmed);
  json.Uint("outcomes", total.outcomes);
  json.Uint("missing_outcomes", total.awaiting_outcomes);
  json.Uint("unexpected_outcomes", total.unexpected_outcomes);
  json.Uint("unanswered", total.unanswered);
  json.Uint("errors", total.errors);
  if (report.config.isolation_check && report.phases.size() == 2) {
    json.BeginObject("isolation");
    json.Int("bad_peers", report.config.bad_peers);
    json.Int("confirm_p99_healthy_ns",
             report.phases[0].tally.confirm_from_intended.Percentile(99));
    json.Int("confirm_p99_with_bad_peers_ns",
             report.phases[1].tally.confirm_from_intended.Percentile(99));
    json.Double("ratio", report.isolation_ratio());
    json.Double("ratio_max", kIsolationRatioMax);
    json.EndObject();
  }
  json.Bool("passed", report.passed());
  json.EndObject();
  return json.Take() + "\n";
}

}  // namespace vouch::load
