// Costs of the agent runtime's idle path:
//  - one idle turn, Idle(0), per strategy and per backoff phase (what an idle agent spends per
//    look for work, i.e. its wake-up latency floor);
//  - a turn with work, Idle(n > 0), on the busy agent's hot path;
//  - Unpark() when the agent is not parking, which producers pay on every submit (one load);
//  - Unpark() when the agent is parking: the swap and the FUTEX_WAKE system call.
#include <climits>

#include "benchmark/benchmark.h"
#include "engine/agent/idle_strategy.h"
#include "engine/agent/parker.h"

namespace vouch {
namespace {

IdleConfig Config(IdleKind kind, int spins_max, int yields_max) {
  return IdleConfig{.kind = kind,
                    .spins_max = spins_max,
                    .yields_max = yields_max,
                    .park_min_ns = 1'000,
                    .park_max_ns = 1'000};
}

void BM_Idle(benchmark::State& state, IdleConfig config) {
  Parker parker;
  IdleStrategy idle(config, &parker);
  for (auto _ : state) idle.Idle(0);
}
BENCHMARK_CAPTURE(BM_Idle, busy_spin, Config(IdleKind::kBusySpin, 0, 0));
BENCHMARK_CAPTURE(BM_Idle, yield, Config(IdleKind::kYield, 0, 0));
BENCHMARK_CAPTURE(BM_Idle, backoff_spin_phase, Config(IdleKind::kBackoffPark, INT_MAX, 0));
BENCHMARK_CAPTURE(BM_Idle, backoff_yield_phase, Config(IdleKind::kBackoffPark, 0, INT_MAX));
// Parks for 1 us per turn; what it really costs includes the kernel's timer slack.
BENCHMARK_CAPTURE(BM_Idle, backoff_park_phase_1us, Config(IdleKind::kBackoffPark, 0, 0));

void BM_IdleAfterWork(benchmark::State& state) {
  Parker parker;
  IdleStrategy idle(IdleConfig{}, &parker);
  for (auto _ : state) idle.Idle(1);
}
BENCHMARK(BM_IdleAfterWork);

// What every producer pays per submit while the agent is busy, spinning or yielding.
void BM_UnparkNobodyParked(benchmark::State& state) {
  static Parker parker;  // Shared by the threads of a multi-threaded run.
  for (auto _ : state) parker.Unpark();
}
BENCHMARK(BM_UnparkNobodyParked);
BENCHMARK(BM_UnparkNobodyParked)->Threads(2);

// What a producer pays when the agent is parking: the swap and FUTEX_WAKE (nobody asleep here).
void BM_UnparkArmed(benchmark::State& state) {
  Parker parker;
  for (auto _ : state) {
    parker.PrepareToPark();
    parker.Unpark();
  }
}
BENCHMARK(BM_UnparkArmed);

}  // namespace
}  // namespace vouch
