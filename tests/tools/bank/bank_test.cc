// The bank test: concurrent transfers and balance reads over TCP, with faults.
//
// Method. 16 USD accounts open with 100,000 each and may overdraw by 50,000. Four writer
// clients, each on its own named session, submit random transfers one at a time; one in ten asks
// for more than any account can usually cover, so the ledger verifier refuses it after it was
// confirmed (LATE_FAILED, reservation voided). Two reader clients read every balance in a loop
// (ReadBalances: one snapshot taken on the ledger stage between postings) and every read is
// audited: the balances plus the clearing account sum to the initial total, and no balance is
// below its overdraft limit. The fraud rules are off, so every failure is the ledger's (and no
// account is put on hold). When the transfer phase ends and every confirmed transfer has its
// outcome, a last read must show an empty clearing account and exactly the balances that the
// VERIFIED outcomes the writers received imply; every confirmed transfer must have got exactly
// one outcome, and no outcome may belong to a transfer never seen CONFIRMED.
//
// BankStall runs an in-process server and stalls the ledger and the fraud verifier in turn for
// longer than the verification deadline: deadlines expire (LATE_TIMEOUT), the stalled ledger
// later reserves and must void, and reads are still served during a ledger stall.
// BankKill runs the real vouchd under ack=durable and kills it with SIGKILL during the run,
// restarting it on the same data directory: writers reconnect, resume their sessions and resubmit
// unanswered ids; after each restart every transfer confirmed before the kill must be known
// (Query), and at the end vouchd --check audits the journal.
//
// Knobs (environment): BANK_DURATION_S (transfer phase, default 6 s per test), BANK_KILLS
// (default 2), BANK_SEED. Soak: bazel test //tests/tools/bank:bank_soak_test (see BUILD).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "engine/server/server.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/tools/bank/bank.h"

extern char** environ;

namespace vouch::bank {
namespace {

int64_t EnvInt(const char* name, int64_t fallback) {
  int64_t value = 0;
  const char* text = std::getenv(name);
  return text != nullptr && absl::SimpleAtoi(text, &value) ? value : fallback;
}

BankConfig ConfigFromEnv() {
  BankConfig config;
  config.duration = absl::Seconds(EnvInt("BANK_DURATION_S", 6));
  config.seed = static_cast<uint64_t>(EnvInt("BANK_SEED", 1));
  return config;
}

void ExpectClean(const RunReport& report) {
  std::printf("bank: %s\n", report.Summary().c_str());
  EXPECT_EQ(report.violations, 0u) << "first: " << report.first_violation;
  EXPECT_TRUE(report.settled) << "not every confirmed transfer got its outcome in time";
  EXPECT_EQ(report.exactly_once_problems, "");
  EXPECT_TRUE(report.final_read) << "no read with an empty clearing account after settling";
  EXPECT_EQ(report.final_balance_problems, "");
  EXPECT_GT(report.reads, 0u);
  EXPECT_GT(report.counts.outcomes[v1::OUTCOME_KIND_VERIFIED], 0u);
  EXPECT_GT(report.counts.insufficient_funds, 0u) << "no transfer was refused by the ledger";
}

// ---------------------------------------------------------------------------------------------
// Variant 1: verifiers stalled.

Options StallEngineOptions(const BankConfig& config) {
  Options options;
  options.ledger_account_capacity = static_cast<size_t>(config.accounts);
  options.fraud_rules.velocity_enabled = false;
  options.fraud_rules.anomaly_enabled = false;
  options.fraud_rules.travel_enabled = false;
  for (int id = 1; id <= config.accounts; ++id) {
    options.accounts.push_back({static_cast<uint64_t>(id), PackCurrency("USD"),
                                config.opening_balance_minor, config.overdraft_limit_minor});
  }
  return options;
}

TEST(BankTest, BankStall) {
  const BankConfig config = ConfigFromEnv();
  server::ServerOptions server_options;
  server_options.port = 0;
  auto created = server::Server::Create(server_options, StallEngineOptions(config));
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<server::Server> server = *std::move(created);
  ASSERT_TRUE(server->Start().ok());
  std::atomic<int> port{server->port()};
  Bank bank(config, &port);
  // Reads answered while the ledger stage was stalled. relaxed: counters.
  std::atomic<int64_t> ledger_stalled_until_ns{0};
  std::atomic<uint64_t> stalled_reads{0};
  bank.read_hook = [&] {
    if (absl::GetCurrentTimeNanos() < ledger_stalled_until_ns.load(std::memory_order_relaxed)) {
      stalled_reads.fetch_add(1, std::memory_order_relaxed);
    }
  };
  constexpr absl::Duration kStall = absl::Milliseconds(300);  // Six deadlines (50 ms).
  int stalls = 0;
  const RunReport report = bank.Run([&](absl::Time end) {
    for (bool ledger = true; absl::Now() + absl::Seconds(1) < end; ledger = !ledger) {
      absl::SleepFor(absl::Milliseconds(600));
      const VerifierId verifier = ledger ? VerifierId::kLedger : VerifierId::kFraud;
      if (ledger) {
        // Shortened by a margin, so a read counted "in the stall" surely was.
        ledger_stalled_until_ns.store(absl::GetCurrentTimeNanos() + absl::ToInt64Nanoseconds(
                                                                        kStall) - 20'000'000,
                                      std::memory_order_relaxed);
      }
      EngineTestPeer::StallVerifier(server->engine(), verifier, absl::ToInt64Nanoseconds(kStall));
      ++stalls;
      absl::SleepFor(kStall);
    }
  });
  const server::ServerStats stats = server->Stats();
  std::printf("bank stall: %d stalls, %llu reads during ledger stalls, server balance reads "
              "ok %llu busy %llu timeout %llu\n",
              stalls, static_cast<unsigned long long>(stalled_reads.load()),
              static_cast<unsigned long long>(stats.balance_reads[v1::BALANCES_RESULT_OK]),
              static_cast<unsigned long long>(stats.balance_reads[v1::BALANCES_RESULT_BUSY]),
              static_cast<unsigned long long>(stats.balance_reads[v1::BALANCES_RESULT_TIMEOUT]));
  ExpectClean(report);
  EXPECT_GT(stalls, 0);
  EXPECT_GT(report.counts.outcomes[v1::OUTCOME_KIND_LATE_TIMEOUT], 0u) << "no deadline expired";
  EXPECT_GT(stalled_reads.load(), 0u) << "no read was served while the ledger was stalled";
  EXPECT_TRUE(server->Shutdown().engine.drained);
}

// ---------------------------------------------------------------------------------------------
// Variant 2: vouchd killed with SIGKILL and restarted on the same data directory.

// One vouchd process at a time; each start appends to the same log.
class Vouchd {
 public:
  Vouchd(const BankConfig& config, std::string dir) : dir_(std::move(dir)) {
    binary_ = absl::StrCat(std::getenv("TEST_SRCDIR"), "/vouch/tools/vouchd/vouchd");
    const std::string rules = absl::StrCat(dir_, "/bank_rules.txt");
    std::ofstream(rules) << "velocity_enabled = false\nanomaly_enabled = false\n"
                            "travel_enabled = false\n";
    flags_ = {absl::StrCat("--accounts=", config.accounts),
              absl::StrCat("--opening_balance_minor=", config.opening_balance_minor),
              absl::StrCat("--overdraft_limit_minor=", config.overdraft_limit_minor),
              "--ack=durable", absl::StrCat("--data_dir=", dir_, "/data"),
              absl::StrCat("--fraud_rules_file=", rules),
              // Small segments and frequent snapshots, so kills also land around them.
              "--segment_bytes_max=1048576", "--snapshot_interval_records=5000"};
  }
  ~Vouchd() {
    if (pid_ > 0) Kill();
  }

  // Starts it and waits for its port; -1 on failure.
  int Start() {
    const std::string port_file = absl::StrCat(dir_, "/vouchd.port");
    unlink(port_file.c_str());
    std::vector<std::string> args = {binary_, "--port=0", "--metrics_port=-1",
                                     absl::StrCat("--port_file=", port_file)};
    args.insert(args.end(), flags_.begin(), flags_.end());
    pid_ = Spawn(args);
    for (int i = 0; i < 300 && pid_ > 0; ++i) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) return port;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return -1;
  }
  void Kill() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // SIGTERM; the exit status.
  int Terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // vouchd --check on the data directory: the journal audit. The exit status.
  int Check() {
    std::vector<std::string> args = {binary_, "--check", "--snapshot_interval_records=0"};
    for (const std::string& flag : flags_) {
      if (flag.rfind("--snapshot_interval_records", 0) != 0) args.push_back(flag);
    }
    const pid_t pid = Spawn(args);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string log() const { return absl::StrCat(dir_, "/vouchd.log"); }

 private:
  // posix_spawn: safe from a process with running threads, unlike fork + work before exec.
  pid_t Spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log().c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid = -1;
    if (posix_spawn(&pid, binary_.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
      pid = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    return pid;
  }

  const std::string dir_;
  std::string binary_;
  std::vector<std::string> flags_;
  pid_t pid_ = -1;
};

// Every id must be known to the server at `port`, as confirmed; returns how many are not.
uint64_t CountUnknown(int port, const std::vector<uint64_t>& ids) {
  client::ClientOptions options;
  options.port = port;
  absl::StatusOr<std::unique_ptr<client::Client>> checker = client::Client::Connect(options);
  if (!checker.ok()) return ids.size();
  uint64_t unknown = 0;
  constexpr size_t kChunk = 1000;  // Pipelined, well inside the event queue.
  for (size_t first = 0; first < ids.size(); first += kChunk) {
    const size_t last = std::min(ids.size(), first + kChunk);
    for (size_t i = first; i < last; ++i) {
      if (!(*checker)->QueryAsync(ids[i]).ok()) return ids.size();
    }
    for (size_t i = first; i < last;) {
      client::Event event;
      if (!(*checker)->NextEvent(&event, absl::Seconds(10)).ok()) return ids.size();
      const auto* status = std::get_if<v1::Status>(&event.body);
      if (status == nullptr) continue;
      bool confirmed = false;
      for (const v1::StateChange& change : status->history()) {
        confirmed |= change.state() == v1::STATE_KIND_CONFIRMED;
      }
      if (!status->found() || !confirmed) ++unknown;
      ++i;
    }
  }
  return unknown;
}

TEST(BankTest, BankKill) {
  BankConfig config = ConfigFromEnv();
  const int kills = static_cast<int>(EnvInt("BANK_KILLS", 2));
  Vouchd vouchd(config, std::getenv("TEST_TMPDIR"));
  std::atomic<int> port{vouchd.Start()};
  ASSERT_GT(port.load(), 0) << "vouchd did not start; see " << vouchd.log();
  Bank bank(config, &port);
  int restarts = 0;
  uint64_t checked = 0;
  uint64_t lost = 0;
  const RunReport report = bank.Run([&](absl::Time end) {
    const absl::Duration step = config.duration / (kills + 1);
    for (int k = 1; k <= kills; ++k) {
      absl::SleepFor(std::max(absl::ZeroDuration(), end - config.duration + step * k - absl::Now()));
      vouchd.Kill();
      // No confirmation can arrive from a dead server: this is every one given before the kill.
      const std::vector<uint64_t> confirmed = bank.model().ConfirmedIds();
      const int new_port = vouchd.Start();
      ASSERT_GT(new_port, 0) << "vouchd did not restart; see " << vouchd.log();
      port.store(new_port, std::memory_order_relaxed);  // relaxed: clients poll it.
      ++restarts;
      checked += confirmed.size();
      lost += CountUnknown(new_port, confirmed);
    }
  });
  std::printf("bank kill: %d kills and restarts, %llu confirmations re-checked after restarts, "
              "%llu unknown\n",
              restarts, static_cast<unsigned long long>(checked),
              static_cast<unsigned long long>(lost));
  ExpectClean(report);
  EXPECT_EQ(restarts, kills);
  EXPECT_EQ(lost, 0u) << "transfers confirmed before a kill were unknown after the restart";
  EXPECT_EQ(vouchd.Terminate(), 0) << "see " << vouchd.log();
  EXPECT_EQ(vouchd.Check(), 0) << "vouchd --check failed; see " << vouchd.log();
}

}  // namespace
}  // namespace vouch::bank
