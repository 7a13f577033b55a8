// The bounded queues between stages. Capacities are fixed at construction and producers use
// try_enqueue only, which never allocates: a full queue is back-pressure, never growth.
#ifndef VOUCH_ENGINE_VERIFY_QUEUES_H_
#define VOUCH_ENGINE_VERIFY_QUEUES_H_

#include "concurrentqueue/concurrentqueue.h"
#include "engine/types/results.h"
#include "readerwriterqueue/readerwriterqueue.h"

namespace vouch {

// One per verifier: that verifier's thread -> reconciler (single producer, single consumer).
using VerdictQueue = moodycamel::ReaderWriterQueue<Verdict>;

// Reconciler -> ledger stage: settle a reservation made by the ledger.
struct Settlement {
  Sequence seq = 0;
  bool commit = false;  // true: clearing -> destination (VERIFIED); false: reverse to source.
};
using SettlementQueue = moodycamel::ReaderWriterQueue<Settlement>;

// Reconciler -> embedder threads that poll for outcomes (one producer, any consumers).
using OutcomeQueue = moodycamel::ConcurrentQueue<Outcome>;

}  // namespace vouch

#endif  // VOUCH_ENGINE_VERIFY_QUEUES_H_
