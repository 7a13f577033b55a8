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

// An asynchronous verifier's stage, as the reconciler sees it: which ring entries the stage no
// longer reads, so that a decided entry may retire without its answer (AsyncVerifierStage).
class HandOffCursor {
 public:
  virtual ~HandOffCursor() = default;
  // Any thread; acquire: the stage's reads of the entries below are done.
  virtual Sequence handed_below() const = 0;
};

// Reconciler -> embedder threads that poll for outcomes (one producer, any consumers).
using OutcomeQueue = moodycamel::ConcurrentQueue<Outcome>;

}  // namespace vouch

#endif  // VOUCH_ENGINE_VERIFY_QUEUES_H_
