// The data directory's identity: the opening configuration (the accounts, their currencies,
// opening balances and overdraft limits) is pinned by the journal's kOpening record, written when
// the journal is created, and carried by every snapshot (segments a snapshot covers are removed,
// the record with them). Each start compares the accounts it is given with it. Another
// configuration would rebase every balance (a doubled opening balance doubles the bank's money)
// or drop accounts, so it is refused: FailedPrecondition, not DataLoss (nothing is damaged; the
// options are wrong), with a message naming what differs, both values and the directory. The
// status carries a payload (kOpeningMismatchPayload) naming the field, so that a front end can
// name its own flag (vouchd: --accounts, --opening_balance_minor, --overdraft_limit_minor).
//
// Thread safety: pure functions.
#ifndef VOUCH_ENGINE_RECOVERY_OPENING_H_
#define VOUCH_ENGINE_RECOVERY_OPENING_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/journal/records.h"
#include "engine/ledger/ledger.h"

namespace vouch {

// What differs, in the order CheckOpening looks.
enum class OpeningMismatch {
  kAccounts,         // The number of accounts, or which accounts (ids, or how money is spread).
  kCurrencies,       // The set of currencies.
  kOpeningBalances,  // A currency's total of opening balances.
  kOverdraftLimits,  // A currency's total of overdraft limits.
};

inline constexpr char kOpeningMismatchPayload[] = "vouch/opening-mismatch";

// REQUIRES: every account's currency is supported (the ledger opened them all).
journal::OpeningRecord OpeningOf(absl::Span<const ledger::AccountSpec> accounts);

// OK if `now` is `pinned`; else FailedPrecondition as described above.
absl::Status CheckOpening(const journal::OpeningRecord& pinned, const journal::OpeningRecord& now,
                          const std::string& dir);

// The field a CheckOpening refusal names; nullopt for any other status.
std::optional<OpeningMismatch> OpeningMismatchOf(const absl::Status& status);

}  // namespace vouch

#endif  // VOUCH_ENGINE_RECOVERY_OPENING_H_
