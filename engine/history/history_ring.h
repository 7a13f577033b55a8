// HistoryRing: what reconciliation learned about each recent sequence number, readable by
// Query from any thread while the reconciler keeps writing. The reconciler writes a record each
// time it learns something (a verdict, the outcome, the compensation); Query of a sequence number
// older than the ring's capacity finds only the ingest-side facts (received, confirmed).
//
// Thread safety: as SeqlockRing: Write from the reconciler thread only, Read from any thread.
#ifndef VOUCH_ENGINE_HISTORY_HISTORY_RING_H_
#define VOUCH_ENGINE_HISTORY_HISTORY_RING_H_

#include "engine/history/seqlock_ring.h"
#include "engine/types/history_record.h"

namespace vouch {

using HistoryRing = SeqlockRing<HistoryRecord>;

}  // namespace vouch

#endif  // VOUCH_ENGINE_HISTORY_HISTORY_RING_H_
