// What Engine::Query and Engine::AccountTransactions answer: a transaction's state history, and
// an account's recent transactions with their states now. Plain values.
#ifndef VOUCH_ENGINE_TYPES_TRANSACTION_STATUS_H_
#define VOUCH_ENGINE_TYPES_TRANSACTION_STATUS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/types/reason.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"

namespace vouch {

// A step in a transaction's life, for Query.
enum class StateKind : uint8_t {
  kReceived = 1,
  kRejected = 2,
  kConfirmed = 3,
  kHeld = 4,           // Waiting for verification before answering (hybrid/sync).
  kFraudVerdict = 5,
  kLedgerVerdict = 6,
  kVerified = 7,
  kLateFailed = 8,
  kLateTimeout = 9,
  kCompensated = 10,   // The ledger reservation was reversed.
  kAccountHeld = 11,   // The source account was put on hold.
  kLateVerdict = 12,   // A verdict after the outcome: recorded, no second outcome.
  kVerifierVerdict = 13,  // One of the embedder's verifiers decided (Options::verifiers).
};
std::string_view StateKindName(StateKind kind);

struct StateChange {
  StateKind kind;
  int64_t at_ns = 0;  // Engine (monotonic) time; add Engine::unix_offset_ns() for wall time.
  Reason reason = Reason::kNone;
  VerifierId verifier = VerifierId::kNone;
  bool pass = false;  // For verdicts.
  uint16_t verifier_code = 0;  // An embedder's verifier's own reason code (kVerifierRejected).
};

struct TransactionStatus {
  uint64_t id = 0;
  Sequence seq = 0;
  bool final = false;  // An outcome or a rejection was reached.
  // Transaction::attributes as submitted, once the history holds the transaction (from its
  // first verdict on; not for one refused at ingest, nor after a restart from a snapshot for
  // one decided before the snapshot).
  TransactionAttributes attributes;
  // In time order, and causal: RECEIVED <= CONFIRMED (or HELD) <= every verdict <= the outcome
  // decided on them <= COMPENSATED (a LATE_VERDICT may be stamped before the outcome: decided in
  // time, it reached the reconciler after the outcome was final).
  std::vector<StateChange> history;
};

// --- Queries by account (AccountTransactions) ---------------------------------------------------
// What a transaction of an account is now.
enum class AccountTxnState : uint8_t {
  kPending = 1,      // Confirmed before verification; no outcome yet.
  kHeld = 2,         // Held by the policy (hybrid/sync); not answered until verified.
  kVerified = 3,     // Final: both verifiers passed it (a held one was answered CONFIRMED).
  kLateFailed = 4,   // Final: confirmed, then a verifier failed it (reason, verifier).
  kLateTimeout = 5,  // Final: confirmed, then a verdict missed the deadline (verifier).
  kRejected = 6,     // Final: held, and failed or timed out verification: answered REJECTED.
};

// Entries per AccountTransactions page at most (AccountActivity::kLimitMax).
inline constexpr size_t kAccountTransactionsLimitMax = 500;

struct AccountTransaction {
  Sequence seq = 0;
  uint64_t id = 0;
  uint64_t source_account = 0;
  uint64_t destination_account = 0;
  int64_t amount_minor = 0;
  CurrencyCode currency = 0;
  bool debit = false;  // The queried account is the source (money leaves it).
  bool held = false;   // Held by the policy until verified.
  int64_t received_unix_ns = 0;  // When Submit received it.
  AccountTxnState state = AccountTxnState::kPending;
  Reason reason = Reason::kNone;        // Why it failed (kLateFailed, kLateTimeout, kRejected).
  VerifierId verifier = VerifierId::kNone;  // Which verifier failed or timed out.
  uint16_t verifier_code = 0;           // Outcome::verifier_code.
  int64_t decided_unix_ns = 0;          // When the outcome became final; 0 before.
};

// Times are Unix ns on the engine's clock, inclusive, on the received time; 0 leaves that end
// open. limit is capped at kAccountTransactionsLimitMax.
struct AccountTransactionsQuery {
  uint64_t account = 0;
  int64_t since_unix_ns = 0;
  int64_t until_unix_ns = 0;
  Sequence before_seq = 0;  // Only seqs below this (0: no bound): the next page.
  size_t limit = kAccountTransactionsLimitMax;
};

struct AccountTransactionsPage {
  std::vector<AccountTransaction> transactions;  // Newest (highest seq) first.
  bool more = false;             // More may match: ask again with before_seq = next_before_seq.
  Sequence next_before_seq = 0;
  // The index keeps seqs from this one on (older ones, and those of an earlier process life,
  // are not listed even if they match; Query(id) may still know them).
  Sequence oldest_kept_seq = 0;
};
// -------------------------------------------------------------------------------------------

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_TRANSACTION_STATUS_H_
