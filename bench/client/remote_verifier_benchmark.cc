// The remote verifier path: an in-process server on loopback with one remote verifier
// (required), served by one RemoteVerifierWorker (//client:remote_verifier) whose check passes
// everything at once, and a Client that submits and counts Outcomes. Each benchmark runs with
// remote:0 (the built-in fraud and ledger verifiers only) and remote:1 (plus the remote one), so
// the difference is what the wire adds.
//
// - BM_BatchRoundTrip/batch:N: one Submit of N transactions, then wait for all N Outcomes; the
//   time per iteration is submit to the last outcome. remote_rtt_us is the server's own mean of
//   VerifyRequest sent -> Verdict received (RemoteVerifierStats::round_trip).
// - BM_Throughput: pipelined Submits of 256 with at most 8,192 transactions undecided; outcomes
//   per second with one worker (the worker's thread judges every request; the check is free).
//
// Every transaction has its own id and the bank has enough accounts and money that none fails:
// the velocity and anomaly rules are off, so a LATE_FAILED would mean a bug (it is counted).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "client/client.h"
#include "client/remote_verifier.h"
#include "engine/options.h"
#include "engine/server/server.h"
#include "proto/vouch.pb.h"

namespace vouch {
namespace {

constexpr uint64_t kAccounts = 4096;
constexpr absl::Duration kPatience = absl::Seconds(30);

// Ids are unique across every benchmark of the process (each Rig is a fresh server, but one
// rig serves all the iterations of a run).
uint64_t NextId() {
  static uint64_t next = 1;
  return next++;
}

v1::Transaction TransactionOf(uint64_t id) {
  v1::Transaction transaction;
  transaction.set_id(id);
  transaction.set_source_account(id % kAccounts + 1);
  transaction.set_destination_account((id + 1) % kAccounts + 1);
  transaction.set_amount(1);
  transaction.set_currency("USD");
  transaction.set_merchant_id(1);
  transaction.set_country("GB");
  return transaction;
}

// A server, optionally its remote verifier's worker, and a submitting client.
class Rig {
 public:
  bool Start(bool remote) {
    Options options;
    options.in_flight_capacity = 1 << 14;
    options.idempotency_window = 1 << 22;
    options.history_capacity = 1 << 16;
    options.fraud_account_capacity = 1 << 13;
    options.ledger_account_capacity = kAccounts;
    options.fraud_rules.velocity_enabled = false;
    options.fraud_rules.anomaly_enabled = false;
    options.verification_deadline_ns = 10'000'000'000;
    for (uint64_t id = 1; id <= kAccounts; ++id) {
      options.accounts.push_back({id, PackCurrency("USD"), int64_t{1} << 40, 0});
    }
    server::ServerOptions server_options;
    server_options.port = 0;
    if (remote) {
      server_options.remote_verifiers.push_back({"bench", VerifierPolicy::kRequired, false});
    }
    absl::StatusOr<std::unique_ptr<server::Server>> server =
        server::Server::Create(server_options, std::move(options));
    if (!server.ok() || !(*server)->Start().ok()) return false;
    server_ = *std::move(server);
    if (remote) {
      client::RemoteVerifierOptions worker_options;
      worker_options.port = server_->port();
      worker_options.verifier = "bench";
      worker_options.window = 4096;
      absl::StatusOr<std::unique_ptr<client::RemoteVerifierWorker>> worker =
          client::RemoteVerifierWorker::Start(worker_options,
                                              [](const v1::VerifyRequest&) { return 0; });
      if (!worker.ok() || !(*worker)->AwaitWelcome(kPatience).ok()) return false;
      worker_ = *std::move(worker);
    }
    client::ClientOptions client_options;
    client_options.port = server_->port();
    client::Handlers handlers;
    handlers.on_outcome = [this](const v1::Outcome& outcome, int64_t) {
      absl::MutexLock lock(&mu_);
      ++outcomes_;
      if (outcome.kind() != v1::OUTCOME_KIND_VERIFIED) ++not_verified_;
    };
    handlers.on_confirmation = [this](const v1::Confirmation& confirmation, int64_t) {
      if (confirmation.status() == v1::CONFIRM_STATUS_CONFIRMED) return;
      absl::MutexLock lock(&mu_);
      ++not_confirmed_;
    };
    absl::StatusOr<std::unique_ptr<client::Client>> client =
        client::Client::Connect(client_options, std::move(handlers));
    if (!client.ok()) return false;
    client_ = *std::move(client);
    return true;
  }
  ~Rig() {
    if (client_ != nullptr) client_->Close();
    if (worker_ != nullptr) worker_->Stop();
    if (server_ != nullptr) server_->Shutdown();
  }

  bool Submit(int count) {
    batch_.clear();
    for (int i = 0; i < count; ++i) batch_.push_back(TransactionOf(NextId()));
    return client_->SubmitAsync(batch_).ok();
  }
  // Waits until at least `count` Outcomes have come; false at the timeout.
  bool AwaitOutcomes(uint64_t count) {
    absl::MutexLock lock(&mu_);
    const auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return outcomes_ + not_confirmed_ >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), kPatience);
  }
  uint64_t not_verified() {
    absl::MutexLock lock(&mu_);
    return not_verified_ + not_confirmed_;
  }
  // The server's mean VerifyRequest -> Verdict time, in microseconds; 0 without a remote.
  double RemoteRoundTripUs() const {
    const server::ServerStats stats = server_->Stats();
    if (stats.remote_verifiers.empty() || stats.remote_verifiers[0].round_trip.count == 0) {
      return 0;
    }
    const auto& round_trip = stats.remote_verifiers[0].round_trip;
    return static_cast<double>(round_trip.sum_ns) / static_cast<double>(round_trip.count) / 1e3;
  }
  const client::RemoteVerifierWorker* worker() const { return worker_.get(); }

 private:
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<client::RemoteVerifierWorker> worker_;
  std::unique_ptr<client::Client> client_;
  std::vector<v1::Transaction> batch_;
  absl::Mutex mu_;
  uint64_t outcomes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t not_verified_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t not_confirmed_ ABSL_GUARDED_BY(mu_) = 0;  // BUSY or REJECTED: no Outcome follows.
};

// state.range(0): remote verifier (0/1); state.range(1): transactions per Submit.
void BM_BatchRoundTrip(benchmark::State& state) {
  Rig rig;
  if (!rig.Start(state.range(0) != 0)) {
    state.SkipWithError("the server or the worker did not start");
    return;
  }
  const int batch = static_cast<int>(state.range(1));
  uint64_t expected = 0;
  for (auto _ : state) {
    expected += static_cast<uint64_t>(batch);
    if (!rig.Submit(batch) || !rig.AwaitOutcomes(expected)) {
      state.SkipWithError("an Outcome did not come");
      return;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(expected));
  state.counters["remote_rtt_us"] = rig.RemoteRoundTripUs();
  state.counters["not_verified"] = static_cast<double>(rig.not_verified());
}
BENCHMARK(BM_BatchRoundTrip)
    ->ArgNames({"remote", "batch"})
    ->ArgsProduct({{0, 1}, {1, 16, 256}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// state.range(0): remote verifier (0/1). One iteration is one Submit of 256, sent once fewer
// than 8,192 are undecided.
void BM_Throughput(benchmark::State& state) {
  constexpr int kBatch = 256;
  constexpr uint64_t kUndecidedMax = 8192;
  Rig rig;
  if (!rig.Start(state.range(0) != 0)) {
    state.SkipWithError("the server or the worker did not start");
    return;
  }
  uint64_t submitted = 0;
  for (auto _ : state) {
    if (submitted >= kUndecidedMax && !rig.AwaitOutcomes(submitted + kBatch - kUndecidedMax)) {
      state.SkipWithError("Outcomes stopped coming");
      return;
    }
    if (!rig.Submit(kBatch)) {
      state.SkipWithError("SubmitAsync failed");
      return;
    }
    submitted += kBatch;
  }
  if (!rig.AwaitOutcomes(submitted)) {  // Inside the timing: the rate is of decided ones.
    state.SkipWithError("Outcomes stopped coming");
    return;
  }
  state.SetItemsProcessed(static_cast<int64_t>(submitted));
  state.counters["remote_rtt_us"] = rig.RemoteRoundTripUs();
  state.counters["not_verified"] = static_cast<double>(rig.not_verified());
  if (rig.worker() != nullptr) {
    const client::RemoteVerifierCounters counters = rig.worker()->counters();
    state.counters["verdicts_per_frame"] =
        counters.verdict_frames == 0
            ? 0
            : static_cast<double>(counters.verdicts) / static_cast<double>(counters.verdict_frames);
  }
}
BENCHMARK(BM_Throughput)->ArgName("remote")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace vouch
