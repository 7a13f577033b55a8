// The ledger's values in the embedding API: an account opened at start (Options::accounts), and
// balance reads (Engine::ReadBalances), a consistent read the ledger stage takes between two
// postings. Plain values; the caller owns them.
#ifndef VOUCH_ENGINE_TYPES_BALANCES_H_
#define VOUCH_ENGINE_TYPES_BALANCES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/types/results.h"
#include "engine/types/transaction.h"

namespace vouch {
namespace ledger {

struct AccountSpec {
  uint64_t id = 0;  // Non-zero.
  CurrencyCode currency = 0;
  int64_t balance_minor = 0;
  int64_t overdraft_limit_minor = 0;  // >= 0: the balance may go down to -overdraft_limit_minor.
  // AccountFlag bits (engine/accounts/account.h): kAccountDebitsMustNotExceedCredits keeps the
  // balance >= 0 (the overdraft limit is ignored); kAccountCreditsMustNotExceedDebits keeps it
  // <= 0, counting credits still pending. Not both.
  uint32_t flags = 0;
};

struct AccountView {
  uint64_t id = 0;
  CurrencyCode currency = 0;
  int64_t balance_minor = 0;
  int64_t overdraft_limit_minor = 0;
  uint32_t flags = 0;
  uint32_t pending_count = 0;  // Reservations not yet settled with it as source or destination.
};

}  // namespace ledger

// One currency's books in a BalanceSnapshot.
struct CurrencyBalance {
  CurrencyCode currency = 0;
  int64_t total_minor = 0;     // Sum of every balance, clearing included: constant.
  int64_t clearing_minor = 0;  // Reserved and not yet settled.
};

// A consistent read of the ledger, taken on the ledger stage thread between two postings.
// The caller owns it: reserve() the vectors once (kBalanceReadAccountsMax accounts) and reuse it,
// and the stage fills it without allocating.
struct BalanceSnapshot {
  std::vector<ledger::AccountView> accounts;  // As asked, or every account in opening order.
  std::vector<CurrencyBalance> currencies;    // Every currency with accounts.
  Sequence checked_below = 0;  // The ledger had checked (reserved or refused) every seq below.
  uint64_t postings = 0;       // Ledger::postings() at the read.
  bool truncated = false;      // "Every account" was asked and there were more than the max.
};

// Bounds of a balance read: accounts per read, and reads waiting for the stage at once.
inline constexpr size_t kBalanceReadAccountsMax = 1024;
inline constexpr int kBalanceReadSlots = 4;

// Balance reads, counted under the mailbox mutex.
struct BalanceReadCounters {
  uint64_t served = 0;
  uint64_t busy = 0;       // Refused: every slot was taken (kUnavailable).
  uint64_t timed_out = 0;  // The stage did not serve it in time (kDeadlineExceeded).
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_BALANCES_H_
