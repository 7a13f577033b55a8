#include "engine/server/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <limits>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/metrics/histogram.h"
#include "engine/reconcile/reconciler.h"
#include "engine/types/reason.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "proto/vouch.pb.h"

namespace vouch::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Reason codes come in groups (engine/types/reason.h): ingest refusals, back-pressure, fraud
// and ledger failures, the deadline. [first, last] of each.
struct ReasonGroup {
  int first;
  int last;
  int also_first = -1;  // A second range (ingest refusals numbered after the first ran out).
  int also_last = -1;
};
constexpr ReasonGroup kRefusalReasons = {1, 9, 50, 59};
constexpr ReasonGroup kBusyReasons = {10, 19};
constexpr ReasonGroup kVerifierReasons = {20, 39};
constexpr ReasonGroup kTimeoutReasons = {40, 40};

constexpr double kNsPerSecond = 1e9;

// Collects the families of one scrape.
class Families {
 public:
  MetricFamily& Add(std::string name, std::string help, MetricType type) {
    families_.push_back({std::move(name), std::move(help), type, {}});
    return families_.back();
  }
  // A family with one sample and no labels.
  void AddOne(std::string name, std::string help, MetricType type, double value) {
    Sample(Add(std::move(name), std::move(help), type), {}, value);
  }
  std::vector<MetricFamily> Take() { return std::move(families_); }

  static void Sample(MetricFamily& family, Labels labels, double value) {
    ClientMetric& metric = family.metric.emplace_back();
    metric.label = std::move(labels);
    if (family.type == MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
  }

  // One sample per reason: every named reason of `group` (so that the series exist before
  // their first event, and rate() sees it), and any other reason with a count (a held
  // transaction that fails verification is answered REJECTED with the verifier's reason).
  static void SampleByReason(MetricFamily& family, const Labels& labels,
                             const uint64_t (&counts)[kReasonCount], ReasonGroup group) {
    for (int r = 0; r < kReasonCount; ++r) {
      const std::string_view name = ReasonName(static_cast<Reason>(r));
      const bool in_group = ((r >= group.first && r <= group.last) ||
                             (r >= group.also_first && r <= group.also_last)) &&
                            name != "unknown";
      if (!in_group && counts[r] == 0) continue;
      Labels with_reason = labels;
      with_reason.push_back({"reason", std::string(name)});
      Sample(family, std::move(with_reason), static_cast<double>(counts[r]));
    }
  }

 private:
  std::vector<MetricFamily> families_;
};

void AddConfirmations(const EngineStats& stats, Families& out) {
  MetricFamily& confirmations = out.Add(
      "vouch_confirmations_total",
      "Submit answers by status and reason. CONFIRMED counts transactions confirmed before "
      "verification; held transactions are counted in vouch_held_total and, when they fail "
      "verification, also under REJECTED with the verifier's reason.",
      MetricType::Counter);
  Families::Sample(confirmations, {{"status", "CONFIRMED"}, {"reason", "none"}},
                   static_cast<double>(stats.confirmed - std::min(stats.held, stats.confirmed)));
  Families::SampleByReason(confirmations, {{"status", "REJECTED"}}, stats.rejected,
                           kRefusalReasons);
  Families::SampleByReason(confirmations, {{"status", "BUSY"}}, stats.busy, kBusyReasons);
  out.AddOne("vouch_held_total",
             "Transactions held until verified before they were answered (hybrid or sync mode).",
             MetricType::Counter, static_cast<double>(stats.held));
  out.AddOne("vouch_risk_holds_total",
             "Transactions held for verification because a risk-exposure cap was reached "
             "(refusals for a cap are vouch_confirmations_total{status=\"BUSY\",reason=\"risk_limit\"}).",
             MetricType::Counter, static_cast<double>(stats.risk_holds));
  out.AddOne("vouch_risk_table_full_total",
             "Transactions refused because the risk table had no room for their account.",
             MetricType::Counter, static_cast<double>(stats.risk_table_full));
  out.AddOne("vouch_duplicates_total",
             "Submits of an id already answered; they got the original answer again.",
             MetricType::Counter, static_cast<double>(stats.duplicates));
}

void AddOutcomes(const EngineStats& stats, Families& out) {
  MetricFamily& outcomes = out.Add("vouch_outcomes_total",
                                   "Outcomes of transactions confirmed before verification, by kind and reason.",
                                   MetricType::Counter);
  Families::Sample(outcomes, {{"kind", "VERIFIED"}, {"reason", "none"}},
                   static_cast<double>(stats.outcomes[static_cast<int>(OutcomeKind::kVerified)]));
  // The reason tells the kind: a timeout is always deadline_exceeded, a failure never is.
  uint64_t failed[kReasonCount] = {};
  uint64_t timed_out[kReasonCount] = {};
  for (int r = 0; r < kReasonCount; ++r) {
    (r == static_cast<int>(Reason::kDeadlineExceeded) ? timed_out : failed)[r] =
        stats.failures_by_reason[r];
  }
  Families::SampleByReason(outcomes, {{"kind", "LATE_FAILED"}}, failed, kVerifierReasons);
  Families::SampleByReason(outcomes, {{"kind", "LATE_TIMEOUT"}}, timed_out, kTimeoutReasons);
  MetricFamily& held = out.Add("vouch_held_results_total",
                               "Final answers of held transactions (hybrid/sync), by the kind of "
                               "their outcome: VERIFIED was answered CONFIRMED, the others "
                               "REJECTED. Not late failures, not in vouch_outcomes_total.",
                               MetricType::Counter);
  for (const OutcomeKind kind :
       {OutcomeKind::kVerified, OutcomeKind::kLateFailed, OutcomeKind::kLateTimeout}) {
    Families::Sample(held, {{"kind", std::string(OutcomeKindName(kind))}},
                     static_cast<double>(stats.held_results[static_cast<int>(kind)]));
  }
  out.AddOne("vouch_late_failures_total",
             "Transactions confirmed and then found bad: LATE_FAILED plus LATE_TIMEOUT outcomes. "
             "Held transactions are never late failures (vouch_held_results_total). "
             "The late-failure rate is rate(vouch_late_failures_total[1m]).",
             MetricType::Counter,
             static_cast<double>(stats.outcomes[static_cast<int>(OutcomeKind::kLateFailed)] +
                                 stats.outcomes[static_cast<int>(OutcomeKind::kLateTimeout)]));
  out.AddOne("vouch_late_verdicts_total",
             "Verdicts that arrived after their transaction's outcome (recorded, no new outcome).",
             MetricType::Counter, static_cast<double>(stats.late_verdicts));
  out.AddOne("vouch_reversals_total",
             "Ledger reservations reversed because the transaction was not verified.",
             MetricType::Counter, static_cast<double>(stats.reversals));
  out.AddOne("vouch_account_holds_placed_total",
             "Source accounts put on hold after a late fraud failure.", MetricType::Counter,
             static_cast<double>(stats.holds_placed));
  out.AddOne("vouch_hold_table_full_total",
             "Late fraud failures whose account could not be held: the hold table was full.",
             MetricType::Counter, static_cast<double>(stats.hold_table_full));
  out.AddOne("vouch_outcome_queue_stalls_total",
             "Reconciler turns that found the outcome queue full (the embedder is not polling).",
             MetricType::Counter, static_cast<double>(stats.outcome_queue_stalls));
  out.AddOne("vouch_idempotency_overruns_total",
             "Claims refused BUSY queue_full because a whole idempotency table of ids was still "
             "being answered (no node could be recycled).",
             MetricType::Counter, static_cast<double>(stats.idempotency_overruns));
  out.AddOne("vouch_idempotency_retention_seconds",
             "How far back duplicates are detected right now: the age of the oldest id the "
             "idempotency table remembers. At or above idempotency_retention_ns once the engine "
             "has run that long; new ids are refused BUSY idempotency_retention rather than let "
             "it fall below.",
             MetricType::Gauge, static_cast<double>(stats.idempotency_retention_ns) / 1e9);
}

void AddRisk(const Engine& engine, const EngineStats& stats, Families& out) {
  const uint64_t sequenced = stats.confirmed + engine.recovery().reverified;
  const uint64_t decided = stats.outcomes_total() + stats.held_results_total();
  MetricFamily& depth = out.Add("vouch_queue_depth",
                                "Items waiting in each inter-stage queue right now.",
                                MetricType::Gauge);
  Families::Sample(depth, {{"queue", "fraud_verdicts"}},
                   static_cast<double>(stats.verdict_queue[VerifierSlot(VerifierId::kFraud)]));
  Families::Sample(depth, {{"queue", "ledger_verdicts"}},
                   static_cast<double>(stats.verdict_queue[VerifierSlot(VerifierId::kLedger)]));
  Families::Sample(depth, {{"queue", "settlements"}}, static_cast<double>(stats.settlement_queue));
  out.AddOne("vouch_in_flight_transactions",
             "Transactions confirmed or held whose outcome is not decided yet.", MetricType::Gauge,
             static_cast<double>(sequenced > decided ? sequenced - decided : 0));
  out.AddOne("vouch_value_at_risk_transactions",
             "Transactions answered CONFIRMED before verification whose outcome is not decided "
             "yet.",
             MetricType::Gauge, static_cast<double>(stats.at_risk));
  MetricFamily& value = out.Add(
      "vouch_value_at_risk_minor",
      "Sum of the amounts (minor units) of the value-at-risk transactions, by currency.",
      MetricType::Gauge);
  for (int slot = 0; slot < kCurrencySlotCount; ++slot) {
    const CurrencyCode currency = SlotCurrency(slot);
    if (currency == 0) continue;
    Families::Sample(value, {{"currency", CurrencyToString(currency)}},
                     static_cast<double>(stats.value_at_risk_minor[slot]));
  }
  out.AddOne("vouch_account_holds", "Accounts on hold right now.", MetricType::Gauge,
             static_cast<double>(engine.Holds().size()));
}

// A Prometheus histogram from a LatencyHistogram's export counts (already cumulative).
void FillHistogram(const LatencyHistogram::ExportCounts& counts, ClientMetric& metric) {
  for (int b = 0; b < LatencyHistogram::kExportBoundCount; ++b) {
    metric.histogram.bucket.push_back(
        {counts.at_or_below[b], LatencyHistogram::ExportBoundNs(b) / kNsPerSecond});
  }
  metric.histogram.bucket.push_back({counts.count, std::numeric_limits<double>::infinity()});
  // The count is the sum of the buckets as read, so that the +Inf bucket always equals it.
  metric.histogram.sample_count = counts.count;
  metric.histogram.sample_sum = counts.sum_ns / kNsPerSecond;
}

void AddLatency(const Engine& engine, const EngineStats& stats, Families& out) {
  MetricFamily& outcome = out.Add(
      "vouch_confirm_to_outcome_seconds",
      "Time from a transaction's confirmation to its outcome being decided by the reconciler.",
      MetricType::Histogram);
  FillHistogram(stats.confirm_to_outcome, outcome.metric.emplace_back());
  MetricFamily& verdict = out.Add(
      "vouch_confirm_to_verdict_seconds",
      "Time from a transaction's confirmation to each verifier's verdict (per-stage latency).",
      MetricType::Histogram);
  MetricFamily& failures = out.Add(
      "vouch_verifier_failures_total",
      "Failing verdicts of each verifier, whatever they decided: an advisory verifier's "
      "failures decide nothing, and a failure after the outcome is also a late verdict.",
      MetricType::Counter);
  MetricFamily& shadow = out.Add(
      "vouch_shadow_verdicts_total",
      "Shadow verifiers' verdicts compared with the outcome decided without them: agreed, "
      "would_have_failed (it failed a VERIFIED transaction), would_have_passed (it passed one "
      "that failed or timed out).",
      MetricType::Counter);
  MetricFamily& queues = out.Add(
      "vouch_verdict_queue_depth",
      "Verdicts waiting for the reconciler, per verifier (fraud and ledger are also "
      "vouch_queue_depth{queue=\"fraud_verdicts\"|\"ledger_verdicts\"}).",
      MetricType::Gauge);
  for (int slot = 0; slot < stats.verifier_count; ++slot) {
    const VerifierId verifier = VerifierAtSlot(slot);
    const std::string name(engine.VerifierName(verifier));
    ClientMetric& metric = verdict.metric.emplace_back();
    metric.label.push_back({"verifier", name});
    FillHistogram(stats.confirm_to_verdict[slot], metric);
    Families::Sample(failures, {{"verifier", name}},
                     static_cast<double>(stats.verdict_failures[slot]));
    Families::Sample(queues, {{"verifier", name}}, static_cast<double>(stats.verdict_queue[slot]));
    if (engine.VerifierPolicyOf(verifier) != VerifierPolicy::kShadow) continue;
    for (int c = 0; c < kShadowComparisonCount; ++c) {
      Families::Sample(
          shadow,
          {{"verifier", name},
           {"comparison", std::string(ShadowComparisonName(static_cast<ShadowComparison>(c)))}},
          static_cast<double>(stats.shadow_verdicts[slot][c]));
    }
  }
  out.AddOne("vouch_verifier_answers_ignored_total",
             "Asynchronous verifiers' answers ignored: a second answer for a transaction, or one "
             "for a transaction never handed out.",
             MetricType::Counter, static_cast<double>(stats.ignored_answers));
}

void AddAgents(const EngineStats& stats, Families& out) {
  MetricFamily& duty = out.Add("vouch_agent_duty_cycle_max_seconds",
                               "The longest single DoWork() turn of each stage thread so far.",
                               MetricType::Gauge);
  MetricFamily& work = out.Add("vouch_agent_work_total",
                               "Work items done by each stage thread (the sum of DoWork() "
                               "results).",
                               MetricType::Counter);
  for (int i = 0; i < stats.agent_count; ++i) {
    const EngineStats::AgentStats& agent = stats.agents[i];
    const Labels labels = {{"agent", std::string(agent.role)}};
    Families::Sample(duty, labels, agent.duty_cycle_max_ns / kNsPerSecond);
    Families::Sample(work, labels, static_cast<double>(agent.work_total));
  }
}

void AddJournal(const EngineStats& stats, Families& out) {
  out.AddOne("vouch_journal_records_total", "Records written to the journal.",
             MetricType::Counter, static_cast<double>(stats.journal_records));
  out.AddOne("vouch_journal_writes_total", "write(2) calls of the journal.", MetricType::Counter,
             static_cast<double>(stats.journal_writes));
  out.AddOne("vouch_journal_syncs_total", "fdatasync calls of the journal (ack policy durable).",
             MetricType::Counter, static_cast<double>(stats.journal_syncs));
  out.AddOne("vouch_journal_group_commit_records_max",
             "The most records one fdatasync made durable.", MetricType::Gauge,
             static_cast<double>(stats.journal_group_commit_records_max));
  out.AddOne("vouch_journal_sync_max_seconds", "The slowest fdatasync so far.",
             MetricType::Gauge, static_cast<double>(stats.journal_sync_ns_max) / kNsPerSecond);
  out.AddOne("vouch_journal_failed",
             "1 once an I/O error stopped the journal: nothing more is confirmed (restart).",
             MetricType::Gauge, stats.journal_failed ? 1.0 : 0.0);
}

void AddSnapshots(const EngineStats& stats, Families& out) {
  out.AddOne("vouch_snapshots_total", "Snapshots written.", MetricType::Counter,
             static_cast<double>(stats.snapshots));
  out.AddOne("vouch_snapshot_failures_total",
             "Snapshot attempts that failed (each logged; tried again with a back-off).",
             MetricType::Counter, static_cast<double>(stats.snapshot_failures));
  out.AddOne("vouch_snapshots_stopped",
             "1 once snapshots stopped for the process's life (the journal could not be "
             "replayed into the snapshot shadow; logged).",
             MetricType::Gauge, stats.snapshots_stopped ? 1.0 : 0.0);
}

void AddRemoteVerifiers(const std::vector<RemoteVerifierStats>& remotes, Families& out) {
  MetricFamily& connections = out.Add(
      "vouch_remote_verifier_connections",
      "Verifier connections attached to each remote verifier right now.", MetricType::Gauge);
  MetricFamily& requests = out.Add(
      "vouch_remote_verifier_requests_total",
      "VerifyRequests sent to each remote verifier, redelivered ones included.",
      MetricType::Counter);
  MetricFamily& redelivered = out.Add(
      "vouch_remote_verifier_redelivered_total",
      "VerifyRequests sent again because the connection that held them closed unanswered.",
      MetricType::Counter);
  MetricFamily& expired = out.Add(
      "vouch_remote_verifier_expired_total",
      "Requests never sent: their deadline passed first (no verifier connection had room).",
      MetricType::Counter);
  MetricFamily& verdicts = out.Add("vouch_remote_verifier_verdicts_total",
                                   "Verdicts received from each remote verifier.",
                                   MetricType::Counter);
  MetricFamily& unmatched = out.Add(
      "vouch_remote_verifier_verdicts_unmatched_total",
      "Verdicts for a request not outstanding: a repeat, or after a hand-back (the engine still "
      "keeps the first verdict per transaction).",
      MetricType::Counter);
  MetricFamily& dropped = out.Add(
      "vouch_remote_verifier_verdicts_dropped_total",
      "Verdicts dropped because the engine's answer queue and the retry list were full (the "
      "deadline decides those transactions).",
      MetricType::Counter);
  MetricFamily& round_trip = out.Add(
      "vouch_remote_verifier_round_trip_seconds",
      "Time from a VerifyRequest being sent to its verdict arriving, per remote verifier.",
      MetricType::Histogram);
  for (const RemoteVerifierStats& remote : remotes) {
    const Labels labels = {{"verifier", remote.name}};
    Families::Sample(connections, labels, static_cast<double>(remote.connections));
    Families::Sample(requests, labels, static_cast<double>(remote.requests_sent));
    Families::Sample(redelivered, labels, static_cast<double>(remote.redelivered));
    Families::Sample(expired, labels, static_cast<double>(remote.expired));
    Families::Sample(verdicts, labels, static_cast<double>(remote.verdicts));
    Families::Sample(unmatched, labels, static_cast<double>(remote.verdicts_unmatched));
    Families::Sample(dropped, labels, static_cast<double>(remote.verdicts_dropped));
    ClientMetric& metric = round_trip.metric.emplace_back();
    metric.label.push_back({"verifier", remote.name});
    FillHistogram(remote.round_trip, metric);
  }
}

void AddServer(const ServerStats& stats, Families& out) {
  out.AddOne("vouch_server_connections_open", "TCP connections open right now.",
             MetricType::Gauge, static_cast<double>(stats.connections_open));
  out.AddOne("vouch_server_connections_accepted_total", "TCP connections accepted.",
             MetricType::Counter, static_cast<double>(stats.connections_accepted));
  out.AddOne("vouch_server_accept_descriptors_exhausted_total",
             "accept4 failed for want of file descriptors (EMFILE/ENFILE); each such connection "
             "is refused with TOO_MANY_CONNECTIONS.",
             MetricType::Counter, static_cast<double>(stats.accept_descriptors_exhausted));
  out.AddOne("vouch_server_listener_pauses_total",
             "Times the listener was paused for a tick: not even the reserve descriptor was "
             "left, or accept4 failed with ENOBUFS/ENOMEM.",
             MetricType::Counter, static_cast<double>(stats.listener_pauses));
  out.AddOne("vouch_server_transactions_in_total",
             "Transactions received in Submit frames (each got a Confirmation).",
             MetricType::Counter, static_cast<double>(stats.transactions_in));
  out.AddOne("vouch_server_account_queries_total", "QueryAccount requests received.",
             MetricType::Counter, static_cast<double>(stats.account_queries));
  out.AddOne("vouch_server_outcomes_routed_total",
             "Outcomes sent to the connection of the session that submitted them.",
             MetricType::Counter, static_cast<double>(stats.outcomes_routed));
  out.AddOne("vouch_server_outcomes_unrouted_total",
             "Outcomes whose session had no connection (kept for a resume only).",
             MetricType::Counter, static_cast<double>(stats.outcomes_unrouted));
  MetricFamily& reads = out.Add("vouch_server_balance_reads_total",
                                "ReadBalances answered, by result (BUSY and TIMEOUT: retried).",
                                MetricType::Counter);
  for (int result = 1; result < v1::BalancesResult_ARRAYSIZE; ++result) {
    Families::Sample(reads, {{"result", v1::BalancesResult_Name(result).substr(16)}},
                     static_cast<double>(stats.balance_reads[result]));
  }
  MetricFamily& creations = out.Add("vouch_server_account_creations_total",
                                    "Accounts in CreateAccounts requests, by result.",
                                    MetricType::Counter);
  for (int result = 1; result < v1::CreateAccountResult_ARRAYSIZE; ++result) {
    Families::Sample(creations,
                     {{"result", v1::CreateAccountResult_Name(result).substr(22)}},
                     static_cast<double>(stats.account_creations[result]));
  }
  MetricFamily& lookups = out.Add("vouch_server_account_lookups_total",
                                  "LookupAccount requests answered, by result.",
                                  MetricType::Counter);
  MetricFamily& changes = out.Add("vouch_server_account_changes_total",
                                  "ChangeAccount requests answered, by result.",
                                  MetricType::Counter);
  for (int result = 1; result < v1::AccountRequestResult_ARRAYSIZE; ++result) {
    const std::string name = v1::AccountRequestResult_Name(result).substr(23);
    Families::Sample(lookups, {{"result", name}},
                     static_cast<double>(stats.account_lookups[result]));
    Families::Sample(changes, {{"result", name}},
                     static_cast<double>(stats.account_changes[result]));
  }
  out.AddOne("vouch_server_held_answers_total",
             "Final Confirmations of held transactions (hybrid/sync), sent when verified.",
             MetricType::Counter, static_cast<double>(stats.held_answers));
  out.AddOne("vouch_server_held_answers_unrouted_total",
             "Held transactions' answers whose connection had gone (the client resubmits or "
             "queries the id).",
             MetricType::Counter, static_cast<double>(stats.held_answers_unrouted));
  out.AddOne("vouch_server_outcomes_lapped_total",
             "Outcomes an I/O thread found overwritten in the window and read from the engine's "
             "history instead.",
             MetricType::Counter, static_cast<double>(stats.outcomes_lapped));
  out.AddOne("vouch_server_outcomes_lost_total",
             "Outcomes an I/O thread found neither in the window nor in the history; its "
             "sessions were cut off with SLOW_CONSUMER.",
             MetricType::Counter, static_cast<double>(stats.outcomes_lost));
  out.AddOne("vouch_server_verify_batches_total",
             "VerifyBatch frames sent to remote verifiers.", MetricType::Counter,
             static_cast<double>(stats.verify_batches));
  if (!stats.remote_verifiers.empty()) AddRemoteVerifiers(stats.remote_verifiers, out);
  MetricFamily& errors = out.Add("vouch_server_errors_total",
                                 "Error frames sent to clients (each closes its connection), by "
                                 "code.",
                                 MetricType::Counter);
  for (int code = 1; code < kErrorCodeCount; ++code) {
    if (!v1::ErrorCode_IsValid(code)) continue;
    Families::Sample(errors, {{"code", v1::ErrorCode_Name(static_cast<v1::ErrorCode>(code))}},
                     static_cast<double>(stats.errors[code]));
  }
}

// Opens and closes one connection to host:port, without waiting for it.
void Knock(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) == 1) {
    (void)connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  }
  close(fd);
}

}  // namespace

std::vector<MetricFamily> MetricsCollector::Collect() const {
  Families out;
  const EngineStats stats = engine_->Stats();
  AddConfirmations(stats, out);
  AddOutcomes(stats, out);
  AddRisk(*engine_, stats, out);
  AddLatency(*engine_, stats, out);
  AddAgents(stats, out);
  if (stats.journal) {
    AddJournal(stats, out);
    if (stats.snapshots_enabled) AddSnapshots(stats, out);
  }
  if (server_ != nullptr) AddServer(server_->Stats(), out);
  return out.Take();
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& host, int port, std::shared_ptr<MetricsCollector> collector) {
  const std::string address = absl::StrCat(host, ":", port);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // One HTTP thread: scrapes are rare, and each reads the counters once.
    exposer = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", address, ": ",
                                               e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics: not listening on ", address));
  }
  exposer->RegisterCollectable(collector);
  return std::unique_ptr<MetricsEndpoint>(
      new MetricsEndpoint(std::move(collector), std::move(exposer), host, ports.front()));
}

MetricsEndpoint::~MetricsEndpoint() {
  // civetweb's listener looks at its stop flag only between polls of up to 2 s. A connection to
  // the port ends the poll, so knocking until the exposer is gone stops it in milliseconds.
  std::atomic<bool> stopped{false};
  std::thread knocker([&] {
    // acquire/release: only ends the loop; no other data is published.
    while (!stopped.load(std::memory_order_acquire)) {
      Knock(host_, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  exposer_.reset();
  stopped.store(true, std::memory_order_release);
  knocker.join();
}

}  // namespace vouch::server
