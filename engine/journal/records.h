// Journal record types and their payload codecs.
//
// Each payload is a fixed little-endian layout written field by field (never a memcpy of a
// struct), so it is independent of padding, byte order and compiler, and stable across
// versions: a layout change means a new segment format version (segment_format.h) or a new
// RecordType, never a silent reinterpretation. Decoders check the exact size and the ranges of
// enums and booleans, so a record that passed its CRC but was written by a buggy or newer
// writer is refused rather than misread.
//
// Times on disk are Unix nanoseconds. The engine's own *_ns fields are monotonic-clock values
// that mean nothing in another process: the caller converts before encoding; these codecs store
// exactly what they are given (Outcome's confirmed_ns/decided_ns included).
//
// Encoders write into caller memory and never allocate (the journal stage encodes on its hot
// path). REQUIRES for every EncodeX: `out` has room for kXBytes.
//
// Thread safety: pure functions.
#ifndef VOUCH_ENGINE_JOURNAL_RECORDS_H_
#define VOUCH_ENGINE_JOURNAL_RECORDS_H_

#include <cstddef>
#include <cstdint>

#include "engine/types/results.h"
#include "engine/types/transaction.h"

namespace vouch::journal {

// Values are stable: they are on disk. New types take new values; 0 is never valid (a zeroed
// region must not parse as a record).
enum class RecordType : uint8_t {
  kConfirmed = 1,     // A transaction was confirmed (or held) with this sequence number.
  kOutcome = 2,       // Its one final outcome.
  kHoldReleased = 3,  // An operator released an account hold.
  kHoldPlaced = 4,    // A fraud failure put an account on hold (seq: the failed transaction).
  kFraudRules = 5,    // Fraud rules judge every transaction from seq on. Payload: the rules in
                      // the rules file format (verifiers/fraud/rules_file.h), at most
                      // kRecordPayloadBytesMax bytes. Written at start-up and at each reload.
};

// True for the types this build knows.
bool IsKnownRecordType(uint8_t type);

struct ConfirmedRecord {
  uint64_t seq = 0;
  Transaction txn;
  int64_t confirmed_unix_ns = 0;
  bool held = false;
  uint64_t origin = 0;
};

struct OutcomeRecord {
  Outcome outcome;
  int64_t decided_unix_ns = 0;
  int64_t confirmed_unix_ns = 0;
};

struct HoldReleasedRecord {
  uint64_t account = 0;
  int64_t released_unix_ns = 0;
};

// Holds and releases are journaled in the order the hold table saw them (the reconciler makes
// both, engine/reconcile/reconciler.h), so replaying them in file order leaves each account as
// the live engine left it. The outcome that placed a hold comes later in the file (outcomes are
// in sequence order): its kCompensationAccountHeld flag tells what happened, and is not replayed.
struct HoldPlacedRecord {
  uint64_t account = 0;
  int64_t placed_unix_ns = 0;
};

inline constexpr size_t kConfirmedRecordBytes = 91;
inline constexpr size_t kOutcomeRecordBytes = 81;
inline constexpr size_t kHoldReleasedRecordBytes = 16;
inline constexpr size_t kHoldPlacedRecordBytes = 16;

size_t EncodeConfirmedRecord(const ConfirmedRecord& record, char* out);
size_t EncodeOutcomeRecord(const OutcomeRecord& record, char* out);
size_t EncodeHoldReleasedRecord(const HoldReleasedRecord& record, char* out);
size_t EncodeHoldPlacedRecord(const HoldPlacedRecord& record, char* out);

// Return false (leaving *record unspecified) if `size` is not the layout's size or a field is
// out of range.
[[nodiscard]] bool DecodeConfirmedRecord(const char* data, size_t size, ConfirmedRecord* record);
[[nodiscard]] bool DecodeOutcomeRecord(const char* data, size_t size, OutcomeRecord* record);
[[nodiscard]] bool DecodeHoldReleasedRecord(const char* data, size_t size,
                                            HoldReleasedRecord* record);
[[nodiscard]] bool DecodeHoldPlacedRecord(const char* data, size_t size, HoldPlacedRecord* record);

}  // namespace vouch::journal

#endif  // VOUCH_ENGINE_JOURNAL_RECORDS_H_
