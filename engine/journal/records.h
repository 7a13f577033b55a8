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

#include "engine/accounts/account.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"

namespace vouch::journal {

// Values are stable: they are on disk. New types take new values; 0 is never valid (a zeroed
// region must not parse as a record).
enum class RecordType : uint8_t {
  kConfirmed = 1,     // A transaction was confirmed (or held) with this sequence number.
  kOutcome = 2,       // Its one final outcome.
  kHoldReleased = 3,  // An operator released an account hold.
  kOpening = 4,       // The opening configuration the journal was created with (once).
  kRefused = 5,       // A transaction id was answered REJECTED at ingest (a stored refusal).
  kHoldPlaced = 6,    // A fraud failure put an account on hold (seq: the failed transaction).
  kFraudRules = 7,    // Fraud rules judge every transaction from seq on. Payload: the rules in
                      // the rules file format (verifiers/fraud/rules_file.h), at most
                      // kRecordPayloadBytesMax bytes. Written at start-up and at each reload.
  // Accounts created at run time (Engine::CreateAccounts) and their lifecycle, in the order the
  // engine's account mutex saw them. seq 0. An account is usable by transactions only once its
  // creation record is kept (ack policy), so its creation always precedes, in the file, every
  // transaction record naming it. Accounts of Options::accounts have none: kOpening pins them.
  kAccountCreated = 10,  // AccountCreatedRecord.
  kAccountFrozen = 11,   // AccountFrozenRecord: frozen or unfrozen.
  kAccountClosed = 12,   // AccountClosedRecord.
  kAccountLimits = 13,   // AccountLimitsRecord: the limits from now on.
  kRefusedWithFingerprint = 8,  // kRefused plus the ContentFingerprint of the refused fields,
                                // so that the content check holds across a restart. Written
                                // since issue 13; kRefused (no fingerprint) is still read.
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

// The opening configuration: the accounts the journal was created with (Options::accounts),
// which recovery compares with the accounts it is given (engine/recovery/opening.h). A summary,
// not the list, so that one bounded record serves a bank of any size: per currency the number of
// accounts and the sums of their opening balances and overdraft limits (sums wrap modulo 2^64:
// they are compared, never used as amounts), and a hash of the whole list. Accounts opened at run
// time, once there are any, take a record type of their own: this one is never rewritten.
// Layout: accounts u64 | accounts_hash u64 | currency_count u32 |
//         currency_count x (currency u32 | accounts u64 | balance_minor i64 | overdraft i64).
inline constexpr size_t kOpeningCurrenciesMax = 16;  // More than the supported currencies.
struct OpeningCurrency {
  CurrencyCode currency = 0;
  uint64_t accounts = 0;
  int64_t balance_minor = 0;          // Sum of the opening balances.
  int64_t overdraft_limit_minor = 0;  // Sum of the overdraft limits.
  bool operator==(const OpeningCurrency&) const = default;
};
struct OpeningRecord {
  uint64_t accounts = 0;
  // FNV-1a 64 over every account's id u64, currency u32, balance i64 and overdraft limit i64
  // (little-endian), in id order: any difference the sums cannot see.
  uint64_t accounts_hash = 0;
  uint32_t currency_count = 0;
  OpeningCurrency currencies[kOpeningCurrenciesMax];  // In currency-code order.
  bool operator==(const OpeningRecord&) const = default;
};

// The answer stored for the id: REJECTED with `reason`, no sequence number. Only the answer is
// kept, which is what a resubmission and Query are told.
struct RefusedRecord {
  uint64_t id = 0;
  Reason reason = Reason::kNone;
  int64_t refused_unix_ns = 0;
  // ContentFingerprint of the refused transaction (kRefusedWithFingerprint); 0 when read from a
  // kRefused record, which has none: such an id's resubmission is not content-checked.
  uint64_t fingerprint = 0;
};

// Holds and releases are journaled in the order the hold table saw them (the reconciler makes
// both, engine/reconcile/reconciler.h), so replaying them in file order leaves each account as
// the live engine left it. The outcome that placed a hold comes later in the file (outcomes are
// in sequence order): its kCompensationAccountHeld flag tells what happened, and is not replayed.
struct HoldPlacedRecord {
  uint64_t account = 0;
  int64_t placed_unix_ns = 0;
};

// Layout: id u64 | currency u32 | opening_balance i64 | overdraft i64 | flags u32 |
// transaction_max i64 | daily_max i64 | daily_count_max u32 | user_data u64 | created_unix_ns i64.
struct AccountCreatedRecord {
  NewAccount account;
  int64_t created_unix_ns = 0;
};
// Layout: id u64 | frozen u8 (1: frozen, 0: unfrozen) | at_unix_ns i64.
struct AccountFrozenRecord {
  uint64_t id = 0;
  bool frozen = true;
  int64_t at_unix_ns = 0;
};
// Layout: id u64 | at_unix_ns i64. Written only once the balance was 0 with nothing in flight.
struct AccountClosedRecord {
  uint64_t id = 0;
  int64_t at_unix_ns = 0;
};
// Layout: id u64 | transaction_max i64 | daily_max i64 | daily_count_max u32 | at_unix_ns i64.
struct AccountLimitsRecord {
  uint64_t id = 0;
  AccountLimits limits;
  int64_t at_unix_ns = 0;
};

inline constexpr size_t kAccountCreatedRecordBytes = 68;
inline constexpr size_t kAccountFrozenRecordBytes = 17;
inline constexpr size_t kAccountClosedRecordBytes = 16;
inline constexpr size_t kAccountLimitsRecordBytes = 36;
inline constexpr size_t kAccountRecordBytesMax = kAccountCreatedRecordBytes;

size_t EncodeAccountCreatedRecord(const AccountCreatedRecord& record, char* out);
size_t EncodeAccountFrozenRecord(const AccountFrozenRecord& record, char* out);
size_t EncodeAccountClosedRecord(const AccountClosedRecord& record, char* out);
size_t EncodeAccountLimitsRecord(const AccountLimitsRecord& record, char* out);
// Also false for an id of 0 (and, for a creation, for fields IsValidNewAccount refuses is left
// to the replayer, which reports the record).
[[nodiscard]] bool DecodeAccountCreatedRecord(const char* data, size_t size,
                                              AccountCreatedRecord* record);
[[nodiscard]] bool DecodeAccountFrozenRecord(const char* data, size_t size,
                                             AccountFrozenRecord* record);
[[nodiscard]] bool DecodeAccountClosedRecord(const char* data, size_t size,
                                             AccountClosedRecord* record);
[[nodiscard]] bool DecodeAccountLimitsRecord(const char* data, size_t size,
                                             AccountLimitsRecord* record);

// 91 bytes; with Transaction::attributes, 1 + their size more (a uint8 size and the bytes), up
// to kConfirmedRecordBytesMax. Both are read (a journal from before attributes has only 91).
inline constexpr size_t kConfirmedRecordBytes = 91;
inline constexpr size_t kConfirmedRecordBytesMax = kConfirmedRecordBytes + 1 + kAttributesBytesMax;
// 81 bytes; 83 when Outcome::verifier_code is set (an embedder's verifier failed it), which
// follows as a uint16. Both are read.
inline constexpr size_t kOutcomeRecordBytes = 81;
inline constexpr size_t kOutcomeWithCodeRecordBytes = 83;
inline constexpr size_t kHoldReleasedRecordBytes = 16;
inline constexpr size_t kOpeningRecordBytesMax = 20 + 28 * kOpeningCurrenciesMax;
inline constexpr size_t kRefusedRecordBytes = 17;              // kRefused.
inline constexpr size_t kRefusedWithFingerprintRecordBytes = 25;  // kRefusedWithFingerprint.
inline constexpr size_t kHoldPlacedRecordBytes = 16;

size_t EncodeConfirmedRecord(const ConfirmedRecord& record, char* out);
size_t EncodeOutcomeRecord(const OutcomeRecord& record, char* out);
size_t EncodeHoldReleasedRecord(const HoldReleasedRecord& record, char* out);
// REQUIRES: record.currency_count <= kOpeningCurrenciesMax; out has kOpeningRecordBytesMax.
size_t EncodeOpeningRecord(const OpeningRecord& record, char* out);
// Encodes a kRefusedWithFingerprint record (kRefusedWithFingerprintRecordBytes).
size_t EncodeRefusedRecord(const RefusedRecord& record, char* out);
size_t EncodeHoldPlacedRecord(const HoldPlacedRecord& record, char* out);

// Return false (leaving *record unspecified) if `size` is not the layout's size or a field is
// out of range.
[[nodiscard]] bool DecodeConfirmedRecord(const char* data, size_t size, ConfirmedRecord* record);
[[nodiscard]] bool DecodeOutcomeRecord(const char* data, size_t size, OutcomeRecord* record);
[[nodiscard]] bool DecodeHoldReleasedRecord(const char* data, size_t size,
                                            HoldReleasedRecord* record);
// Also false for currencies out of code order or repeated.
[[nodiscard]] bool DecodeOpeningRecord(const char* data, size_t size, OpeningRecord* record);
// Also false unless the reason is one that ingest stores (IsStoredRefusal). Reads both layouts:
// kRefused (kRefusedRecordBytes, fingerprint 0) and kRefusedWithFingerprint.
[[nodiscard]] bool DecodeRefusedRecord(const char* data, size_t size, RefusedRecord* record);
[[nodiscard]] bool DecodeHoldPlacedRecord(const char* data, size_t size, HoldPlacedRecord* record);

}  // namespace vouch::journal

#endif  // VOUCH_ENGINE_JOURNAL_RECORDS_H_
