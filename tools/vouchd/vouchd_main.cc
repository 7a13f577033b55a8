// vouchd: the vouch server. Runs the engine with embedded defaults (a demo bank of accounts and
// the demo fraud rules, as tools/workload generates traffic for) behind a TCP port.
//
//   bazel run //tools/vouchd -- --port=7411
//
// It prints "vouchd: listening on HOST:PORT" once it accepts connections (and writes the port to
// --port_file, for scripts that bind port 0). SIGTERM or SIGINT shuts it down gracefully: stop
// accepting, confirm nothing new, deliver pending outcomes until the drain deadline, report what
// was drained, exit 0.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/fault_injection.h"
#include "engine/options.h"
#include "engine/recovery/opening.h"
#include "engine/server/metrics/metrics.h"
#include "engine/server/server.h"
#include "tools/workload/workload.h"
#include "verifiers/fraud/rules_file.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on (IPv4).");
ABSL_FLAG(int, port, 7411, "Port to listen on; 0 picks a free one (see --port_file).");
ABSL_FLAG(std::string, port_file, "", "If set, the bound port is written here once listening.");
ABSL_FLAG(int, metrics_port, 9411,
          "Prometheus /metrics port, on --host; 0 picks a free one (see --metrics_port_file), "
          "-1 disables.");
ABSL_FLAG(std::string, metrics_port_file, "", "If set, the bound metrics port is written here.");
ABSL_FLAG(int, io_threads, 1, "Event-loop threads.");
ABSL_FLAG(int64_t, busy_poll_us, 0,
          "After its last event an I/O thread polls this long before blocking: lower latency "
          "(no wake-up) for a core's worth of CPU while quiet. 0: block at once.");
ABSL_FLAG(int64_t, max_connections, 1024, "Connections open at once.");
ABSL_FLAG(int64_t, frame_bytes_max, 64 * 1024, "Longest frame accepted (and sent).");
ABSL_FLAG(int64_t, submit_batch_max, 512,
          "Most transactions in one Submit. A Submit of this many (94 bytes each at most) must "
          "fit in --frame_bytes_max; a combination where it does not is refused.");
ABSL_FLAG(int64_t, outbound_bytes_max, 8 << 20,
          "Unsent output per connection before the client is cut off as a slow consumer.");
ABSL_FLAG(int64_t, partial_frame_timeout_ms, 5'000, "A started frame must complete within this.");
ABSL_FLAG(int64_t, idle_timeout_ms, 60'000, "Close a connection with no frame for this long.");
ABSL_FLAG(std::string, auth_token, "", "If set, Hello must carry this token.");
ABSL_FLAG(std::string, event_log, "",
          "JSON lines for late failures, holds, releases and operational events: a file, '-' "
          "for standard error, or '' for none.");
ABSL_FLAG(int64_t, retained_outcomes, 1 << 20, "Recent outcomes kept for resuming clients.");
ABSL_FLAG(int64_t, flush_timeout_ms, 2'000, "Shutdown: time to deliver outcomes after draining.");
ABSL_FLAG(int64_t, accounts, 10'000, "Demo accounts 1..N opened in USD.");
ABSL_FLAG(uint64_t, account_capacity, vouch::Options{}.account_capacity,
          "Most accounts the server holds (demo accounts and CreateAccounts alike); a creation "
          "beyond it answers TABLE_FULL. Memory: see docs/DESIGN.md, \"Accounts\".");
ABSL_FLAG(int64_t, opening_balance_minor, 1'000'000, "Each demo account's opening balance.");
ABSL_FLAG(int64_t, overdraft_limit_minor, 0,
          "Each demo account's overdraft limit: its balance may go down to minus this.");
ABSL_FLAG(std::string, mode, "async", "When Submit waits for verification: async|hybrid|sync.");
ABSL_FLAG(int64_t, deadline_ms, 50, "Verification deadline: confirm to final outcome.");
ABSL_FLAG(int64_t, risk_account_count_max, 0,
          "Risk cap: unverified transactions per source account (0: no cap).");
ABSL_FLAG(int64_t, risk_account_minor_max, 0,
          "Risk cap: unverified amount per source account, minor units (0: no cap).");
ABSL_FLAG(int64_t, risk_total_count_max, 0, "Risk cap: unverified transactions in all (0: none).");
ABSL_FLAG(int64_t, risk_total_minor_max, 0,
          "Risk cap: unverified amount in all, per currency, minor units (0: no cap).");
ABSL_FLAG(std::string, risk_action, "hold",
          "Over a risk cap: hold (answer once verified) or busy (refuse with BUSY/risk_limit).");
ABSL_FLAG(bool, fail_in_flight_on_hold, true,
          "When a fraud failure puts an account on hold, also fail that account's transactions "
          "still in flight (LATE_FAILED, reason account_held_in_flight; reversed if reserved). "
          "false: each is judged on its own verdicts.");
ABSL_FLAG(int64_t, drain_timeout_ms, 5'000, "Shutdown: time for confirmed work to finish.");
ABSL_FLAG(int64_t, in_flight_capacity, 1 << 16, "Confirmed but not yet retired transactions.");
ABSL_FLAG(int64_t, idempotency_window, 1 << 22,
          "Idempotency table size: most ids remembered at once, 64 bytes each. Must hold peak "
          "rate x --idempotency_retention_s, or new ids are refused BUSY idempotency_retention.");
ABSL_FLAG(int64_t, idempotency_retention_s, 24 * 3600,
          "Every id, its answer and its fields' fingerprint are remembered at least this long "
          "after first seen (0: only while the table has room).");
ABSL_FLAG(int64_t, history_capacity, 1 << 20,
          "Recent sequence numbers kept for Query and QueryAccount (>= --in_flight_capacity; "
          "rounded up to a power of two). 232 bytes each: a 152-byte history record and an "
          "80-byte account activity entry.");
ABSL_FLAG(int64_t, admission_backlog_max_ms, 0,
          "Refuse BUSY/queue_full while a verifier's oldest unchecked transaction has waited "
          "longer than this, so a verifier slower than the load causes refusals, not "
          "LATE_TIMEOUTs (keep it below --deadline_ms). 0: off, only --in_flight_capacity "
          "bounds the backlog.");
ABSL_FLAG(std::string, ack, "memory",
          "When a confirmation is returned: memory (no journal), written (after write(2): "
          "survives a process crash) or durable (after fdatasync, group commit: survives a "
          "machine crash).");
ABSL_FLAG(std::string, data_dir, "",
          "Journal directory; required unless --ack=memory, refused with it. One server (or "
          "--check) at a time: a directory in use is refused. It keeps the --accounts, "
          "--opening_balance_minor and --overdraft_limit_minor it was created with: other "
          "values are refused.");
ABSL_FLAG(std::string, fraud_rules_file, "",
          "Fraud rules (thresholds, block lists; format in verifiers/fraud/rules_file.h). Empty: "
          "the embedded demo rules. SIGHUP re-reads it; a bad file is refused and the old rules "
          "stay.");
ABSL_FLAG(std::string, shadow_fraud_rules_file, "",
          "A candidate fraud rule set (same format) judged in shadow next to the live rules: its "
          "verdicts decide nothing and are compared with the outcomes "
          "(vouch_shadow_verdicts_total{verifier=\"fraud_shadow\"}). SIGUSR2 promotes it to "
          "live (journaled); a restart starts from --fraud_rules_file again.");
ABSL_FLAG(int64_t, segment_bytes_max, 64 << 20, "Journal segment size before a new file starts.");
ABSL_FLAG(int64_t, snapshot_interval_records, 4'000'000,
          "Journal records between snapshots (0: never); covered segments are removed.");
ABSL_FLAG(int64_t, fault_fraud_cost_ns, 0,
          "Fault injection: the fraud verifier takes this long per transaction, as a slow fraud "
          "service would (it waits, using no CPU), capping its throughput at 1e9/cost per "
          "second; idle time banks no credit, so a burst is charged in full. For overload tests (tools/load --overload); 0: off.");
ABSL_FLAG(int64_t, fault_ledger_cost_ns, 0,
          "Fault injection: the ledger verifier takes this long per transaction; 0: off.");
ABSL_FLAG(std::string, remote_verifiers, "",
          "Verifiers served over the wire by other processes (VerifierHello; docs/VERIFIERS.md "
          "\"Remote verifiers\"): a comma-separated list of name[:required|advisory|shadow]"
          "[:hold], e.g. sanctions:required,score:shadow. Each is a verifier of the engine (at "
          "most 6 with the shadow fraud rules); keep the list's order across restarts.");
ABSL_FLAG(bool, check, false,
          "Do not serve: recover the journal in --data_dir (with --ack=written or durable), let "
          "every transaction confirmed without an outcome be decided in memory, and check the "
          "invariants (each confirmed transaction has one outcome, money is conserved, clearing "
          "is empty). Read-only: writes nothing to --data_dir, and is refused while a server "
          "has it. Exit 0 if they hold.");

namespace vouch {
namespace {

constexpr int64_t kFaultCostNsMax = 1'000'000'000;  // 1 tx/s: slower is no longer a test.

absl::StatusOr<server::ServerOptions> ServerOptionsFromFlags() {
  server::ServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.io_threads = absl::GetFlag(FLAGS_io_threads);
  options.busy_poll_ns = absl::GetFlag(FLAGS_busy_poll_us) * 1'000;
  options.max_connections = static_cast<size_t>(absl::GetFlag(FLAGS_max_connections));
  options.frame_bytes_max = static_cast<size_t>(absl::GetFlag(FLAGS_frame_bytes_max));
  options.submit_batch_max = static_cast<size_t>(absl::GetFlag(FLAGS_submit_batch_max));
  options.outbound_bytes_max = static_cast<size_t>(absl::GetFlag(FLAGS_outbound_bytes_max));
  options.partial_frame_timeout_ns = absl::GetFlag(FLAGS_partial_frame_timeout_ms) * 1'000'000;
  options.idle_timeout_ns = absl::GetFlag(FLAGS_idle_timeout_ms) * 1'000'000;
  options.auth_token = absl::GetFlag(FLAGS_auth_token);
  options.event_log = absl::GetFlag(FLAGS_event_log);
  options.retained_outcomes = static_cast<size_t>(absl::GetFlag(FLAGS_retained_outcomes));
  options.flush_timeout_ns = absl::GetFlag(FLAGS_flush_timeout_ms) * 1'000'000;
  if (absl::GetFlag(FLAGS_max_connections) < 1 || absl::GetFlag(FLAGS_frame_bytes_max) < 1 ||
      absl::GetFlag(FLAGS_submit_batch_max) < 1 ||
      absl::GetFlag(FLAGS_retained_outcomes) < 1 || absl::GetFlag(FLAGS_outbound_bytes_max) < 1) {
    return absl::InvalidArgumentError("sizes and counts must be positive");
  }
  absl::StatusOr<std::vector<server::RemoteVerifierOptions>> remotes =
      server::ParseRemoteVerifiers(absl::GetFlag(FLAGS_remote_verifiers));
  if (!remotes.ok()) return remotes.status();
  options.remote_verifiers = *std::move(remotes);
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  return options;
}

absl::StatusOr<Options> EngineOptionsFromFlags() {
  workload::WorkloadConfig bank;
  bank.accounts = static_cast<size_t>(absl::GetFlag(FLAGS_accounts));
  bank.opening_balance_minor = absl::GetFlag(FLAGS_opening_balance_minor);
  bank.overdraft_limit_minor = absl::GetFlag(FLAGS_overdraft_limit_minor);
  if (absl::GetFlag(FLAGS_accounts) < 2) {
    return absl::InvalidArgumentError("--accounts must be at least 2");
  }
  if (absl::Status status = bank.Validate(); !status.ok()) return status;
  Options options;
  absl::StatusOr<PolicyMode> mode = ParsePolicyMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) return mode.status();
  options.policy.mode = *mode;
  options.verification_deadline_ns = absl::GetFlag(FLAGS_deadline_ms) * 1'000'000;
  if (absl::GetFlag(FLAGS_risk_account_count_max) < 0 ||
      absl::GetFlag(FLAGS_risk_total_count_max) < 0) {
    return absl::InvalidArgumentError("--risk_*_count_max must be >= 0 (0: no cap)");
  }
  options.risk.limits.account_count_max =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_risk_account_count_max));
  options.risk.limits.account_minor_max = absl::GetFlag(FLAGS_risk_account_minor_max);
  options.risk.limits.total_count_max =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_risk_total_count_max));
  options.risk.limits.total_minor_max = absl::GetFlag(FLAGS_risk_total_minor_max);
  if (const std::string action = absl::GetFlag(FLAGS_risk_action); action == "busy") {
    options.risk.action = RiskAction::kBusy;
  } else if (action != "hold") {
    return absl::InvalidArgumentError(
        absl::StrCat("--risk_action=", action, ": expected hold or busy"));
  }
  options.fail_in_flight_on_hold = absl::GetFlag(FLAGS_fail_in_flight_on_hold);
  options.drain_timeout_ns = absl::GetFlag(FLAGS_drain_timeout_ms) * 1'000'000;
  options.in_flight_capacity = static_cast<size_t>(absl::GetFlag(FLAGS_in_flight_capacity));
  if (absl::GetFlag(FLAGS_idempotency_window) < 1 ||
      absl::GetFlag(FLAGS_idempotency_retention_s) < 0) {
    return absl::InvalidArgumentError(
        "--idempotency_window must be positive and --idempotency_retention_s not negative");
  }
  options.idempotency_window = static_cast<size_t>(absl::GetFlag(FLAGS_idempotency_window));
  options.idempotency_retention_ns = absl::GetFlag(FLAGS_idempotency_retention_s) * 1'000'000'000;
  options.history_capacity = static_cast<size_t>(absl::GetFlag(FLAGS_history_capacity));
  options.admission_backlog_max_ns = absl::GetFlag(FLAGS_admission_backlog_max_ms) * 1'000'000;
  absl::StatusOr<AckPolicy> ack = ParseAckPolicy(absl::GetFlag(FLAGS_ack));
  if (!ack.ok()) return ack.status();
  options.durability.ack = *ack;
  options.durability.dir = absl::GetFlag(FLAGS_data_dir);
  if (options.durability.ack == AckPolicy::kMemory && !options.durability.dir.empty()) {
    return absl::InvalidArgumentError(
        "--data_dir is set but --ack=memory keeps no journal: the directory's journal would be "
        "ignored (every earlier id applied again). Use --ack=written or --ack=durable with "
        "--data_dir, or drop --data_dir");
  }
  if (absl::GetFlag(FLAGS_check)) {
    if (options.durability.ack == AckPolicy::kMemory) {
      return absl::InvalidArgumentError(
          "--check audits a data directory: give --data_dir and --ack=written or durable");
    }
    options.durability.read_only = true;
  }
  if (absl::GetFlag(FLAGS_segment_bytes_max) < 1 || absl::GetFlag(FLAGS_snapshot_interval_records) < 0) {
    return absl::InvalidArgumentError("--segment_bytes_max must be positive and "
                                      "--snapshot_interval_records not negative");
  }
  options.durability.segment_bytes_max = static_cast<size_t>(absl::GetFlag(FLAGS_segment_bytes_max));
  options.durability.snapshot_interval_records =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_snapshot_interval_records));
  options.fraud_rules = workload::DemoFraudRules();
  if (const std::string path = absl::GetFlag(FLAGS_fraud_rules_file); !path.empty()) {
    absl::StatusOr<fraud::FraudRules> rules = fraud::LoadFraudRulesFile(path);
    if (!rules.ok()) return rules.status();
    options.fraud_rules = *std::move(rules);
  }
  if (const std::string path = absl::GetFlag(FLAGS_shadow_fraud_rules_file); !path.empty()) {
    absl::StatusOr<fraud::FraudRules> rules = fraud::LoadFraudRulesFile(path);
    if (!rules.ok()) return rules.status();
    options.shadow_fraud_rules = *std::move(rules);
  }
  options.accounts = workload::Accounts(bank);
  options.account_capacity = static_cast<size_t>(absl::GetFlag(FLAGS_account_capacity));
  options.ledger_account_capacity = std::max<size_t>(options.ledger_account_capacity,
                                                     options.accounts.size());
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  return options;
}

// Written to a temporary name and renamed, so a script polling for the file never reads half.
absl::Status WritePortFile(const std::string& path, int port) {
  const std::string temporary = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(temporary);
    out << port << "\n";
    if (!out.good()) return absl::InternalError(absl::StrCat("cannot write ", temporary));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", temporary, " to ", path));
  }
  return absl::OkStatus();
}

// --metrics_port: Prometheus /metrics (docs/OPERATIONS.md), read at scrape time only. A port
// that cannot be bound costs only the metrics: the server runs on without them and says so.
absl::StatusOr<std::unique_ptr<server::MetricsEndpoint>> StartMetrics(server::Server& server) {
  const int port = absl::GetFlag(FLAGS_metrics_port);
  if (port < 0) return nullptr;
  absl::StatusOr<std::unique_ptr<server::MetricsEndpoint>> endpoint =
      server::MetricsEndpoint::Start(
          absl::GetFlag(FLAGS_host), port,
          std::make_shared<server::MetricsCollector>(&server.engine(), &server));
  if (!endpoint.ok()) {
    std::fprintf(stderr, "vouchd: no metrics: %s\n", endpoint.status().ToString().c_str());
    return nullptr;
  }
  if (const std::string path = absl::GetFlag(FLAGS_metrics_port_file); !path.empty()) {
    if (absl::Status status = WritePortFile(path, (*endpoint)->port()); !status.ok()) {
      return status;
    }
  }
  std::printf("vouchd: metrics on http://%s:%d/metrics\n", absl::GetFlag(FLAGS_host).c_str(),
              (*endpoint)->port());
  return endpoint;
}

// A refusal, and for a data directory created with other bank flags, the flag to fix.
std::string Explain(const absl::Status& status) {
  // Not ToString(): the payload that names the field is for this function, not for the operator.
  std::string text = absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
  if (const std::optional<OpeningMismatch> field = OpeningMismatchOf(status); field.has_value()) {
    const char* flag = "--accounts";
    switch (*field) {
      case OpeningMismatch::kAccounts: flag = "--accounts"; break;
      case OpeningMismatch::kCurrencies: flag = "--accounts (the demo bank is in USD)"; break;
      case OpeningMismatch::kOpeningBalances: flag = "--opening_balance_minor"; break;
      case OpeningMismatch::kOverdraftLimits: flag = "--overdraft_limit_minor"; break;
    }
    absl::StrAppend(&text, "\nvouchd: check ", flag,
                    ": it must be what --data_dir was created with");
  }
  return text;
}

// --check: the offline audit of a data directory (used by the crash test, useful to operators).
// Read-only (DurabilityOptions::read_only): what it decides stays in memory.
int Check(Options options) {
  int64_t opening_total_minor = 0;
  for (const ledger::AccountSpec& account : options.accounts) {
    opening_total_minor += account.balance_minor;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(std::move(options));
  if (!engine.ok()) {
    std::fprintf(stderr, "vouchd --check: %s\n", Explain(engine.status()).c_str());
    return 1;
  }
  if (absl::Status status = (*engine)->Start(); !status.ok()) {
    std::fprintf(stderr, "vouchd --check: %s\n", status.ToString().c_str());
    return 1;
  }
  const RecoveryReport recovery = (*engine)->recovery();
  const DrainReport drain = (*engine)->Stop();
  // Stopped: the read is of the final ledger, on this thread.
  BalanceSnapshot balances;
  if (absl::Status status = (*engine)->ReadBalances({}, &balances, absl::ZeroDuration());
      !status.ok()) {
    std::fprintf(stderr, "vouchd --check: %s\n", status.ToString().c_str());
    return 1;
  }
  int64_t total_minor = 0;  // The accounts' balances: each currency's total less its clearing.
  int64_t clearing_minor = 0;
  for (const CurrencyBalance& currency : balances.currencies) {
    total_minor += currency.total_minor - currency.clearing_minor;
    if (currency.currency == PackCurrency("USD")) clearing_minor = currency.clearing_minor;
  }
  const uint64_t outcomes = recovery.outcomes + (*engine)->Stats().outcomes_total();
  const bool ok = drain.drained && outcomes == recovery.confirmed &&
                  total_minor == opening_total_minor && clearing_minor == 0;
  std::printf(
      "vouchd check: %s; confirmed %llu, outcomes %llu (%llu decided now, in memory), records "
      "%llu%s%s; balances total %lld (opening %lld), clearing %lld\n",
      ok ? "OK" : "FAILED", static_cast<unsigned long long>(recovery.confirmed),
      static_cast<unsigned long long>(outcomes),
      static_cast<unsigned long long>(recovery.reverified),
      static_cast<unsigned long long>(recovery.records),
      recovery.truncated
          ? absl::StrCat(", torn tail found (", recovery.truncated_bytes, " bytes at offset ",
                         recovery.truncated_offset, " of ", recovery.truncated_file,
                         "; the next start cuts it)")
                .c_str()
          : "",
      recovery.snapshot_temporaries > 0
          ? absl::StrCat(", ", recovery.snapshot_temporaries,
                         " snapshot temporaries left by a crash (the next start removes them)")
                .c_str()
          : "",
      static_cast<long long>(total_minor),
      static_cast<long long>(opening_total_minor), static_cast<long long>(clearing_minor));
  return ok ? 0 : 1;
}

// SIGHUP: re-reads --fraud_rules_file. A bad file is refused and the old rules stay.
void ReloadFraudRules(Engine& engine, server::EventLog* log) {
  const std::string path = absl::GetFlag(FLAGS_fraud_rules_file);
  if (path.empty()) {
    std::printf("vouchd: SIGHUP: no --fraud_rules_file, nothing to reload\n");
  } else if (absl::StatusOr<fraud::FraudRules> rules = fraud::LoadFraudRulesFile(path);
             !rules.ok()) {
    std::printf("vouchd: SIGHUP: fraud rules reload refused, the old rules stay: %s\n",
                rules.status().ToString().c_str());
    if (log != nullptr) log->Event("rules_reload_refused", rules.status().ToString());
  } else if (absl::StatusOr<Sequence> from = engine.ReplaceFraudRules(*std::move(rules));
             !from.ok()) {
    std::printf("vouchd: SIGHUP: %s\n", from.status().ToString().c_str());
  } else {
    std::printf("vouchd: SIGHUP: fraud rules reloaded from %s; they apply from seq %llu\n",
                path.c_str(), static_cast<unsigned long long>(*from));
    if (log != nullptr) {
      log->Event("rules_reloaded", absl::StrCat(path, "; from seq ", *from));
    }
  }
  std::fflush(stdout);
}

// SIGUSR2: the shadow rules (--shadow_fraud_rules_file, as loaded at start) become the live ones.
void PromoteShadowFraudRules(Engine& engine, server::EventLog* log) {
  if (absl::StatusOr<Sequence> from = engine.PromoteShadowFraudRules(); !from.ok()) {
    std::printf("vouchd: SIGUSR2: %s\n", from.status().ToString().c_str());
  } else {
    std::printf("vouchd: SIGUSR2: shadow fraud rules promoted to live; they apply from seq %llu\n",
                static_cast<unsigned long long>(*from));
    if (log != nullptr) log->Event("shadow_rules_promoted", absl::StrCat("from seq ", *from));
  }
  std::fflush(stdout);
}

int Run() {
  absl::StatusOr<server::ServerOptions> server_options = ServerOptionsFromFlags();
  absl::StatusOr<Options> engine_options =
      server_options.ok() ? EngineOptionsFromFlags() : server_options.status();
  if (!engine_options.ok()) {
    std::fprintf(stderr, "vouchd: %s\n", engine_options.status().ToString().c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_check)) return Check(*std::move(engine_options));
  const int64_t fraud_cost_ns = absl::GetFlag(FLAGS_fault_fraud_cost_ns);
  const int64_t ledger_cost_ns = absl::GetFlag(FLAGS_fault_ledger_cost_ns);
  if (fraud_cost_ns < 0 || fraud_cost_ns > kFaultCostNsMax || ledger_cost_ns < 0 ||
      ledger_cost_ns > kFaultCostNsMax) {
    std::fprintf(stderr, "vouchd: --fault_fraud_cost_ns and --fault_ledger_cost_ns must be in "
                         "[0, 1000000000]\n");
    return 2;
  }
  // Block the shutdown signals in every thread (the threads inherit the mask) and take them
  // synchronously below; SIGPIPE is avoided per send with MSG_NOSIGNAL.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);  // Raised by the engine's on_fatal: the journal failed.
  sigaddset(&signals, SIGUSR2);  // Promote the shadow fraud rules.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // The journal's thread only raises the signal; the main thread below stops the server.
  engine_options->on_fatal = [](const absl::Status&) { kill(getpid(), SIGUSR1); };

  absl::StatusOr<std::unique_ptr<server::Server>> server =
      server::Server::Create(*server_options, *engine_options);
  if (!server.ok()) {
    std::fprintf(stderr, "vouchd: %s\n", Explain(server.status()).c_str());
    return 1;
  }
  if (absl::Status status = (*server)->Start(); !status.ok()) {
    std::fprintf(stderr, "vouchd: %s\n", status.ToString().c_str());
    return 1;
  }
  if (const RecoveryReport& recovery = (*server)->engine().recovery(); recovery.journal) {
    std::printf(
        "vouchd: recovered %s in %.1f ms: %llu records, confirmed through seq %llu, outcomes "
        "through %llu, %llu sent back to the verifiers, %llu hold releases%s%s%s%s\n",
        absl::GetFlag(FLAGS_data_dir).c_str(), recovery.elapsed_ns / 1e6,
        static_cast<unsigned long long>(recovery.records),
        static_cast<unsigned long long>(recovery.confirmed),
        static_cast<unsigned long long>(recovery.outcomes),
        static_cast<unsigned long long>(recovery.reverified),
        static_cast<unsigned long long>(recovery.releases),
        recovery.snapshot_file.empty()
            ? ""
            : absl::StrCat("; from snapshot ", recovery.snapshot_file).c_str(),
        recovery.truncated
            ? absl::StrCat("; torn tail cut: ", recovery.truncated_file, " at offset ",
                           recovery.truncated_offset, " (", recovery.truncated_bytes, " bytes)")
                  .c_str()
            : "",
        recovery.opening_recorded ? "; opening configuration recorded" : "",
        recovery.snapshot_temporaries > 0
            ? absl::StrCat("; removed ", recovery.snapshot_temporaries,
                           " snapshot temporaries left by a crash")
                  .c_str()
            : "");
  }
  if (fraud_cost_ns > 0) SlowVerifier((*server)->engine(), VerifierId::kFraud, fraud_cost_ns);
  if (ledger_cost_ns > 0) SlowVerifier((*server)->engine(), VerifierId::kLedger, ledger_cost_ns);
  if (fraud_cost_ns > 0 || ledger_cost_ns > 0) {
    std::printf("vouchd: fault injection: fraud verifier %lld ns, ledger verifier %lld ns per "
                "transaction\n",
                static_cast<long long>(fraud_cost_ns), static_cast<long long>(ledger_cost_ns));
  }
  // Declared after the server, so it stops (and no scrape reads the server) first.
  absl::StatusOr<std::unique_ptr<server::MetricsEndpoint>> metrics = StartMetrics(**server);
  if (!metrics.ok()) {
    std::fprintf(stderr, "vouchd: %s\n", metrics.status().ToString().c_str());
    return 1;
  }
  const int port = (*server)->port();
  if (const std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    if (absl::Status status = WritePortFile(path, port); !status.ok()) {
      std::fprintf(stderr, "vouchd: %s\n", status.ToString().c_str());
      return 1;
    }
  }
  std::printf("vouchd: listening on %s:%d (mode %s, %lld accounts, %d I/O threads)\n",
              server_options->host.c_str(), port, absl::GetFlag(FLAGS_mode).c_str(),
              static_cast<long long>(absl::GetFlag(FLAGS_accounts)), server_options->io_threads);
  std::fflush(stdout);

  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 &&
         (signal_number == SIGHUP || signal_number == SIGUSR2)) {
    if (signal_number == SIGHUP) {
      ReloadFraudRules((*server)->engine(), (*server)->event_log());
    } else {
      PromoteShadowFraudRules((*server)->engine(), (*server)->event_log());
    }
  }
  const bool journal_failed = signal_number == SIGUSR1;
  if (journal_failed) {
    std::fprintf(stderr, "vouchd: the journal failed, shutting down: %s\n",
                 (*server)->engine().health().ToString().c_str());
  } else {
    std::printf("vouchd: %s: shutting down\n", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  }
  std::fflush(stdout);
  const server::ShutdownReport report = (*server)->Shutdown();
  const server::ServerStats stats = (*server)->Stats();
  std::printf(
      "vouchd: shut down in %.1f ms: %s; confirmed %llu, not drained %llu; outcomes %llu "
      "(routed %llu, session offline %llu); connections closed %llu, bytes unflushed %llu; "
      "transactions in %llu, errors sent %llu\n",
      report.elapsed_ns / 1e6, report.engine.drained ? "drained" : "NOT drained",
      static_cast<unsigned long long>(report.engine.confirmed),
      static_cast<unsigned long long>(report.engine.not_drained),
      static_cast<unsigned long long>(report.outcomes),
      static_cast<unsigned long long>(report.outcomes_routed),
      static_cast<unsigned long long>(report.outcomes_unrouted),
      static_cast<unsigned long long>(report.connections_closed),
      static_cast<unsigned long long>(report.bytes_unflushed),
      static_cast<unsigned long long>(stats.transactions_in),
      static_cast<unsigned long long>([&] {
        uint64_t total = 0;
        for (const uint64_t n : stats.errors) total += n;
        return total;
      }()));
  if (const EngineStats engine_stats = (*server)->engine().Stats(); engine_stats.journal) {
    const uint64_t syncs = engine_stats.journal_syncs;
    std::printf(
        "vouchd: journal (%s): %llu records in %llu writes, %llu syncs (%.1f records per sync, "
        "largest group %llu, slowest sync %.2f ms)\n",
        absl::GetFlag(FLAGS_ack).c_str(),
        static_cast<unsigned long long>(engine_stats.journal_records),
        static_cast<unsigned long long>(engine_stats.journal_writes),
        static_cast<unsigned long long>(syncs),
        syncs > 0 ? static_cast<double>(engine_stats.journal_records) / syncs : 0.0,
        static_cast<unsigned long long>(engine_stats.journal_group_commit_records_max),
        engine_stats.journal_sync_ns_max / 1e6);
  }
  return journal_failed ? 1 : 0;
}

}  // namespace
}  // namespace vouch

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vouch server: confirm transactions synchronously over TCP, verify them asynchronously.\n"
      "  vouchd [--port=7411] [--mode=async|hybrid|sync] [--auth_token=...]  (--help for all)");
  absl::ParseCommandLine(argc, argv);
  return vouch::Run();
}
