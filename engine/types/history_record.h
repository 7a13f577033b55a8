// What reconciliation knows about one confirmed transaction: its verdicts and the outcome.
// The reconciler keeps it in the in-flight entry while it works and copies it to the history
// ring for Query; one shape serves both.
#ifndef VOUCH_ENGINE_TYPES_HISTORY_RECORD_H_
#define VOUCH_ENGINE_TYPES_HISTORY_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "engine/types/results.h"
#include "engine/types/transaction.h"

namespace vouch {

struct VerdictRecord {
  bool received = false;
  bool pass = false;
  bool late = false;  // Arrived after the outcome was decided; recorded, never a second outcome.
  Reason reason = Reason::kNone;
  uint16_t code = 0;  // An embedder's verifier's own reason code (Verdict::code).
  int64_t decided_ns = 0;
};

struct HistoryRecord {
  Sequence seq = 0;
  uint64_t id = 0;
  bool resolved = false;
  Outcome outcome;             // Valid when resolved.
  int64_t compensated_ns = 0;  // When the reversal was sent to the ledger; 0 if none.
  TransactionAttributes attributes;  // The transaction's, as submitted (Query returns them).
  // At VerifierSlot(verifier). Last, so that the history ring keeps only the slots of the
  // verifiers an engine has (HistoryRecordBytes).
  VerdictRecord verdicts[kVerifiersMax];
};
static_assert(std::is_trivially_copyable_v<HistoryRecord>);

// The bytes of a HistoryRecord in use with `verifier_count` verifiers.
constexpr size_t HistoryRecordBytes(int verifier_count) {
  return offsetof(HistoryRecord, verdicts) + sizeof(VerdictRecord) * verifier_count;
}

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_HISTORY_RECORD_H_
