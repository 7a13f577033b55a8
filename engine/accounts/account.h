// Accounts: the types of the account API (Engine::CreateAccounts, LookupAccount, ...).
//
// An account is created once, by a client-chosen id, and is permanent: freezing, closing and
// limit changes alter its state, never remove it. The directory that holds them is
// account_directory.h; what is refused where is docs/DESIGN.md ("Accounts").
#ifndef VOUCH_ENGINE_ACCOUNTS_ACCOUNT_H_
#define VOUCH_ENGINE_ACCOUNTS_ACCOUNT_H_

#include <cstdint>
#include <vector>

#include "engine/types/transaction.h"

namespace vouch {

enum AccountFlag : uint32_t {
  // The balance never goes below 0: the overdraft limit is ignored for debits (ledger:
  // INSUFFICIENT_FUNDS).
  kAccountDebitsMustNotExceedCredits = 1u << 0,
  // The balance never goes above 0, counting credits still pending (ledger:
  // CREDITS_EXCEED_DEBITS). Debits are bounded by the overdraft limit as for any account.
  kAccountCreditsMustNotExceedDebits = 1u << 1,
};
inline constexpr uint32_t kAccountFlagsKnown =
    kAccountDebitsMustNotExceedCredits | kAccountCreditsMustNotExceedDebits;

struct AccountLimits {              // 0 = no limit.
  int64_t transaction_minor_max = 0;  // Per transaction, on top of Options::amount_minor_max.
  // Per UTC calendar day, as source: refused at ingest past them (daily_usage.h). At most
  // DailyUsage::kMinorMax.
  int64_t daily_minor_max = 0;
  uint32_t daily_count_max = 0;
  bool operator==(const AccountLimits&) const = default;
};

struct NewAccount {
  uint64_t id = 0;                    // Client-chosen, non-zero: the idempotency key.
  CurrencyCode currency = 0;
  int64_t opening_balance_minor = 0;  // A deposit, counted in the currency's total.
  int64_t overdraft_limit_minor = 0;  // >= 0.
  uint32_t flags = 0;                 // AccountFlag bits.
  AccountLimits limits;
  uint64_t user_data = 0;             // Opaque to vouch.
  bool operator==(const NewAccount&) const = default;
};

enum class CreateResult : uint8_t {
  kCreated = 1,
  kExists = 2,                     // Same id, same fields: the first answer.
  kExistsWithDifferentFields = 3,  // Same id, other fields (limits compared as created).
  // Id 0, unsupported currency, a negative overdraft limit or limit, unknown flag bits, both
  // flags, or an opening balance below what its flags and overdraft allow (or above 0 with
  // kAccountCreditsMustNotExceedDebits), or one that would let the currency's balances overflow.
  kInvalid = 4,
  kTableFull = 5,  // Options::account_capacity accounts exist; counted.
  kBusy = 6,       // Journal failed, shutting down, read-only: nothing created; retry.
};

enum class AccountState : uint8_t { kOpen = 1, kFrozen = 2, kClosed = 3 };

struct AccountChange {
  enum class Kind : uint8_t {
    kCreated = 1,
    kFrozen = 2,
    kUnfrozen = 3,
    kClosed = 4,
    kLimitsChanged = 5,
  };
  Kind kind = Kind::kCreated;
  int64_t at_ns = 0;  // Engine (monotonic) time, like StateChange::at_ns.
};

struct AccountInfo {
  NewAccount fields;  // Limits as they are now.
  AccountState state = AccountState::kOpen;
  bool on_hold = false;           // Put on hold by a late fraud failure.
  int64_t balance_minor = 0;      // Ledger balance (posted; a reservation is already out).
  uint64_t unverified_count = 0;  // Confirmed, not yet verified (risk exposure).
  int64_t unverified_minor = 0;
  // Oldest first; bounded: the creation, then the newest kAccountHistoryMax - 1 changes.
  std::vector<AccountChange> history;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_ACCOUNTS_ACCOUNT_H_
