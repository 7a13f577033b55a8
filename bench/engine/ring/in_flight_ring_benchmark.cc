// The sequencer's own cost on the confirm path, with no other thread: Claim (one CAS), fill the
// payload, Publish (one seq_cst store), then what the consumers do with the entry: IsPublished
// and, once the reconciler is done with it, Free. Time/op is one transaction's trip through the
// ring; the cross-thread hand-off is measured by //bench/engine/verify:queue_benchmark
// (BM_Hop/ring, BM_Stream/ring).
#include <cstdint>
#include <cstdlib>

#include "benchmark/benchmark.h"
#include "engine/ring/in_flight_ring.h"

namespace vouch {
namespace {

void BM_ClaimPublishFree(benchmark::State& state) {
  InFlightRing ring(static_cast<size_t>(state.range(0)));
  Transaction txn;
  for (auto _ : state) {
    Sequence seq = 0;
    InFlightEntry* entry = ring.Claim(&seq);
    if (entry == nullptr) std::abort();  // Each entry is freed before the next claim.
    txn.id = seq;
    entry->payload.txn = txn;
    ring.Publish(entry, seq);
    if (!ring.IsPublished(seq)) std::abort();
    ring.Free(seq);
  }
  state.SetItemsProcessed(state.iterations());
}
// 1 << 16 is the engine's default capacity: the 384-byte entries are then walked through a
// 24 MiB array, as in the engine, rather than a cache-resident one.
BENCHMARK(BM_ClaimPublishFree)->Arg(1 << 10)->Arg(1 << 16);

}  // namespace
}  // namespace vouch
