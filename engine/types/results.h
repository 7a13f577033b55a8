// What the engine answers: a Confirmation now, a Verdict per verifier, one Outcome later.
#ifndef VOUCH_ENGINE_TYPES_RESULTS_H_
#define VOUCH_ENGINE_TYPES_RESULTS_H_

#include <cstdint>
#include <string_view>

#include "engine/types/reason.h"

namespace vouch {

// Sequence numbers start at 1; 0 means "no sequence" (the transaction was not confirmed).
using Sequence = uint64_t;

enum class ConfirmStatus : uint8_t {
  kConfirmed = 1,  // Accepted. Not held: an Outcome follows. Held: final (verified).
  kRejected = 2,   // Refused for good; see `reason`. Final.
  kBusy = 3,       // Back-pressure; nothing was recorded. Retry the call.
  // Held and still being verified (Submit with HeldAnswer::kLater only; never on the wire):
  // the final answer is the transaction's Outcome, which has `held` set.
  kPending = 4,
};

// What the journal must keep before an answer may be told (ack policy written/durable;
// Engine::AwaitAck). Each part only grows, so one wait for the Cover of many answers' positions
// covers them all.
struct AckPosition {
  Sequence confirmed = 0;  // The confirmed record of this sequence number; 0: none.
  uint64_t refused = 0;    // The refusal records numbered up to this; 0: none.

  bool empty() const { return confirmed == 0 && refused == 0; }
  void Cover(const AckPosition& other) {
    if (other.confirmed > confirmed) confirmed = other.confirmed;
    if (other.refused > refused) refused = other.refused;
  }
};

// The synchronous answer to Submit.
struct [[nodiscard]] Confirmation {
  uint64_t id = 0;
  ConfirmStatus status = ConfirmStatus::kBusy;
  Reason reason = Reason::kNone;
  Sequence seq = 0;          // Set when the transaction was sequenced (CONFIRMED or held).
  int64_t deadline_ns = 0;   // Monotonic time by which the Outcome is final; 0 if none.
  bool duplicate = false;    // This is the stored answer to an earlier Submit of the same id.
  bool held = false;         // The hybrid/sync policy held it until its outcome was kept.
  AckPosition ack;           // Empty for BUSY; Engine::AwaitAck waits for it.
};

// Which verifier judged a transaction. The two built-in verifiers keep 1 and 2; an embedder's
// verifiers (Options::verifiers, engine/verify/verifier.h) are numbered from 3 in the order
// they are registered, up to kVerifiersMax in all. The number is what the journal and the wire
// carry, so keep the registration order across restarts.
enum class VerifierId : uint8_t { kNone = 0, kFraud = 1, kLedger = 2 };
inline constexpr int kBuiltinVerifierCount = 2;
inline constexpr int kVerifiersMax = 8;  // Built-in and embedder's verifiers together.
// Options::verifiers[i] is CustomVerifierId(i), and CustomVerifierIndex is its inverse (< 0 for
// kNone and the built-in verifiers).
constexpr VerifierId CustomVerifierId(int i) {
  return static_cast<VerifierId>(kBuiltinVerifierCount + 1 + i);
}
constexpr int CustomVerifierIndex(VerifierId verifier) {
  return static_cast<int>(verifier) - kBuiltinVerifierCount - 1;
}
// The verifier's slot in per-verifier arrays (HistoryRecord::verdicts, the verdict queues).
// REQUIRES: verifier != kNone.
constexpr int VerifierSlot(VerifierId verifier) { return static_cast<int>(verifier) - 1; }
constexpr VerifierId VerifierAtSlot(int slot) { return static_cast<VerifierId>(slot + 1); }

struct Verdict {
  Sequence seq = 0;
  VerifierId verifier = VerifierId::kNone;
  bool pass = false;
  Reason reason = Reason::kNone;  // Set when !pass; kVerifierRejected for an embedder's verifier.
  int64_t decided_ns = 0;
  uint16_t code = 0;  // An embedder's verifier: its own reason code (> 0) when !pass; else 0.
};

enum class OutcomeKind : uint8_t {
  kVerified = 1,
  kLateFailed = 2,   // A verifier failed it after it was confirmed.
  kLateTimeout = 3,  // A verdict missed the deadline.
};

// How reconciliation undid the effects of a failed transaction (bit set).
enum CompensationBits : uint8_t {
  kCompensationNone = 0,
  // Reserved funds go back to the source account (exactly when the ledger had reserved them;
  // a transaction decided before the ledger judged it is never reserved).
  kCompensationReversed = 1 << 0,
  kCompensationAccountHeld = 1 << 1,  // The source account was put on hold.
};

// Exactly one per sequenced transaction. For a held one (`held`) it is the final answer, not a
// late failure: VERIFIED means CONFIRMED, any other kind means REJECTED with `reason`; it
// places no account hold, and it is counted apart (EngineStats::held_results), not as a
// verified or late outcome.
struct Outcome {
  uint64_t id = 0;
  Sequence seq = 0;
  OutcomeKind kind = OutcomeKind::kVerified;
  VerifierId verifier = VerifierId::kNone;  // Which verifier failed or timed out.
  Reason reason = Reason::kNone;
  uint8_t compensation = kCompensationNone;  // CompensationBits.
  bool held = false;                         // The final answer of a held transaction.
  uint64_t source_account = 0;
  int64_t amount_minor = 0;
  uint32_t currency = 0;
  int64_t confirmed_ns = 0;
  int64_t decided_ns = 0;
  uint64_t origin = 0;  // As passed to Engine::Submit: tells an embedder where to route it.
  // LATE_FAILED by an embedder's verifier (reason kVerifierRejected): that verifier's own reason
  // code, in its namespace (Verifier::Check). 0 otherwise.
  uint16_t verifier_code = 0;
};

std::string_view ConfirmStatusName(ConfirmStatus status);
std::string_view VerifierName(VerifierId verifier);
std::string_view OutcomeKindName(OutcomeKind kind);

// How a shadow verifier's verdict compares with the outcome decided without it.
enum class ShadowComparison : uint8_t {
  kAgreed = 0,           // Both passed (VERIFIED), or both failed.
  kWouldHaveFailed = 1,  // It failed a transaction that was VERIFIED.
  kWouldHavePassed = 2,  // It passed a transaction that failed or timed out.
};
inline constexpr int kShadowComparisonCount = 3;
std::string_view ShadowComparisonName(ShadowComparison comparison);

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_RESULTS_H_
