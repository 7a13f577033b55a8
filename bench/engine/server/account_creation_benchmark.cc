// Creating accounts over TCP: a client sends CreateAccounts batches of 512 to an in-process
// server on loopback and waits for each answer, under each ack policy. Reported: wall_s, the
// time to create `accounts` of them (the server's start and stop excluded), and accounts_per_s.
//
// The default (smoke) run creates 16,384 accounts per ack policy. VOUCH_BENCH_FULL=1 creates
// 1,048,576 (the "1 million accounts over TCP"): see docs/BENCHMARKS.md for the command
// and the figures.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "client/client.h"
#include "engine/options.h"
#include "engine/server/server.h"
#include "proto/vouch.pb.h"

namespace vouch {
namespace {

constexpr size_t kBatch = client::Client::kCreateAccountsMax;

int64_t AccountsToCreate() {
  return std::getenv("VOUCH_BENCH_FULL") != nullptr ? int64_t{1} << 20 : int64_t{1} << 14;
}

// state.range(0): AckPolicy. One iteration is the whole run: `accounts` created in batches.
void BM_CreateAccountsOverTcp(benchmark::State& state) {
  const auto ack = static_cast<AckPolicy>(state.range(0));
  const int64_t accounts = AccountsToCreate();
  const std::string dir = std::filesystem::temp_directory_path() /
                          ("vouch_account_creation_bench_" + std::to_string(getpid()));
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove_all(dir);
    Options options;
    options.account_capacity = static_cast<size_t>(accounts) + 1024;
    options.durability.ack = ack;
    if (ack != AckPolicy::kMemory) options.durability.dir = dir;
    server::ServerOptions server_options;
    server_options.port = 0;
    absl::StatusOr<std::unique_ptr<server::Server>> server =
        server::Server::Create(server_options, std::move(options));
    if (!server.ok() || !(*server)->Start().ok()) {
      state.SkipWithError("server did not start");
      return;
    }
    client::ClientOptions client_options;
    client_options.port = (*server)->port();
    absl::StatusOr<std::unique_ptr<client::Client>> client =
        client::Client::Connect(client_options);
    if (!client.ok()) {
      state.SkipWithError("client did not connect");
      return;
    }
    std::vector<v1::Account> batch(kBatch);
    for (v1::Account& account : batch) account.set_currency("USD");
    int64_t created = 0;
    state.ResumeTiming();
    const absl::Time start = absl::Now();
    for (int64_t next_id = 1; next_id <= accounts;) {
      for (v1::Account& account : batch) account.set_id(static_cast<uint64_t>(next_id++));
      absl::StatusOr<v1::AccountsCreated> answer =
          (*client)->CreateAccounts(batch, absl::Seconds(30));
      if (!answer.ok()) {
        state.SkipWithError("CreateAccounts failed");
        return;
      }
      for (const v1::AccountsCreated::Entry& entry : answer->results()) {
        created += entry.result() == v1::CREATE_ACCOUNT_RESULT_CREATED;
      }
    }
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    state.PauseTiming();
    if (created != accounts) {
      state.SkipWithError("not every account was created");
      return;
    }
    state.counters["accounts"] = static_cast<double>(accounts);
    state.counters["wall_s"] = seconds;  // Creation alone, without the server's start and stop.
    state.counters["accounts_per_s"] = static_cast<double>(accounts) / seconds;
    (*client)->Close();
    (*server)->Shutdown();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * accounts);
}
BENCHMARK(BM_CreateAccountsOverTcp)
    ->ArgName("ack")
    ->Arg(static_cast<int>(AckPolicy::kMemory))
    ->Arg(static_cast<int>(AckPolicy::kWritten))
    ->Arg(static_cast<int>(AckPolicy::kDurable))
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace
}  // namespace vouch
