// The ledger verifier: double-entry balances with two-phase (pending) transfers.
//
// The engine confirms a transfer before it is verified, so the ledger never pays the destination
// at once. Reserve() checks a transfer and posts its amount from the source account into the
// currency's clearing (suspense) account. Reconciliation then settles each reservation exactly
// once: Commit() posts clearing -> destination when the transaction is VERIFIED, Void() posts
// clearing -> source when it failed or timed out. So a destination never holds money that is later
// clawed back, and a reversal only ever credits, so it never pushes a balance below its limit.
//
// Thread safety: none. A Ledger is owned by the ledger agent thread, and every method, const or
// not, is called on that thread (tests and tools own their own Ledger).
//
// Invariants (asserted after every posting in debug builds, and checked by the tests):
//  1. Money is conserved: per currency, the sum of all balances, clearing account included, changes
//     only when OpenAccount adds an account. Every posting debits and credits the same amount.
//  2. Per currency, the clearing balance equals the sum of the pending reservations' amounts, so it
//     is 0 once every reservation is settled.
//  3. No balance is below -overdraft_limit_minor (the clearing account's limit is 0).
//  4. No balance can overflow int64: OpenAccount keeps sum(balance + overdraft limit) over each
//     currency's accounts within int64, and that sum bounds every balance.
//
// Allocation: the constructor sizes every table. Reserve, Commit and Void never allocate.
//
// Snapshots: SaveState writes every account (id, currency, balance, overdraft limit, flags, in
// opening order), every pending reservation and the postings count; RestoreState puts them back.
// Format version 3 is written; versions 2 (with the old checksum trailer) and 1 (also without
// flags) are still read. The
// clearing accounts and per-currency totals are not written: they follow from the rest
// (invariants 1 and 2), and RestoreState rebuilds them through OpenAccount and Reserve, so a
// snapshot must pass the very checks the saved ledger passed.
#ifndef VOUCH_ENGINE_LEDGER_LEDGER_H_
#define VOUCH_ENGINE_LEDGER_LEDGER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/types/reason.h"
#include "engine/types/results.h"
#include "engine/types/balances.h"
#include "engine/types/transaction.h"
#include "engine/ledger/internal/pending_table.h"

namespace vouch::ledger {

class Ledger {
 public:
  // Tables hold at most `account_capacity` accounts and `pending_capacity` open reservations.
  Ledger(size_t account_capacity, size_t pending_capacity);

  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Adds an account. Call it before use or between calls on the owning thread; it may allocate the
  // first time it sees a currency. Refuses, posting nothing:
  //  - InvalidArgument: id 0, unsupported currency, negative overdraft limit, a balance already
  //    below -overdraft_limit_minor (below 0 with kAccountDebitsMustNotExceedCredits, above 0
  //    with kAccountCreditsMustNotExceedDebits), unknown or both flags, or an account that would
  //    let the currency's balances overflow.
  //  - AlreadyExists: the id is taken.
  //  - ResourceExhausted: account_capacity accounts are open.
  [[nodiscard]] absl::Status OpenAccount(const AccountSpec& spec);

  // Checks `txn` and, if it passes, reserves its amount in the clearing account. Returns
  // Reason::kNone on success; otherwise posts nothing and returns, in this order of precedence:
  //  - kUnknownAccount: the source or destination account is not open.
  //  - kCurrencyMismatch: txn.currency differs from either account's currency.
  //  - kMalformedAmount: amount_minor <= 0 (ingest refuses these; refusing again here keeps a
  //    negative amount from ever running a posting backwards, release builds included).
  //  - kInsufficientFunds: the source balance minus the amount would be below its overdraft limit
  //    (below 0 with kAccountDebitsMustNotExceedCredits).
  //  - kCreditsExceedDebits: the destination has kAccountCreditsMustNotExceedDebits and its
  //    balance, plus what is pending to and from it (a voided debit comes back), plus the
  //    amount would be above 0. So no settlement order ever takes its balance above 0.
  // REQUIRES: HasPendingRoom(); seq != 0 and not already pending.
  [[nodiscard]] Reason Reserve(Sequence seq, const Transaction& txn);
  bool HasPendingRoom() const { return pending_.HasRoom(); }

  // Settle a reservation made by Reserve. Commit posts clearing -> destination (VERIFIED); Void
  // posts clearing -> source (failed or timed out), the reversal.
  // REQUIRES: IsPending(seq).
  void Commit(Sequence seq);
  void Void(Sequence seq);

  bool IsPending(Sequence seq) const { return pending_.Find(seq) != nullptr; }
  size_t pending_count() const { return pending_.size(); }

  std::optional<AccountView> Find(uint64_t account) const;
  // Sum of all balances in `currency`, clearing account included; 0 for a currency with no
  // accounts. Constant for the ledger's life once the accounts are opened.
  int64_t TotalMinor(CurrencyCode currency) const;
  // Money reserved and not yet settled in `currency`.
  int64_t ClearingMinor(CurrencyCode currency) const;
  // Visits the opened accounts (not the clearing accounts) in the order they were opened: that
  // order is deterministic and costs no allocation; sort the views if id order matters.
  void ForEachAccount(absl::FunctionRef<void(const AccountView&)> fn) const;
  // Visits each currency that has accounts, in the order its first account was opened, with
  // TotalMinor and ClearingMinor of that currency. No allocation.
  void ForEachCurrency(
      absl::FunctionRef<void(CurrencyCode currency, int64_t total_minor, int64_t clearing_minor)>
          fn) const;

  // Deterministic over every balance (clearing included) and every pending reservation, and
  // independent of the order accounts were opened or the table capacities: equal for two ledgers
  // in the same state, whatever process computes it. For replay tests.
  uint64_t StateHash() const;

  // Postings applied so far (a Reserve plus its Commit or Void is two).
  uint64_t postings() const { return postings_; }

  // Replaces *out with a snapshot of the state (format: engine/common/
  // snapshot_format.h). Equal histories give equal bytes whatever the table capacities:
  // accounts are written in opening order, reservations in sequence order, not table order. Allocates; not for the hot path. Always OK today: the status is there
  // for a store that can refuse (a size limit), so callers already handle one.
  [[nodiscard]] absl::Status SaveState(std::string* out) const;

  // Replaces the state (accounts, reservations, postings count) with a snapshot from SaveState,
  // whatever accounts were open before; on error nothing changes. The restored ledger is
  // indistinguishable from the one saved: Find, ForEachAccount (same order), the totals,
  // StateHash, and the verdicts of the same calls from then on. Allocates up to a second copy of
  // the tables while it builds the new state aside. Refuses:
  //  - FailedPrecondition: more accounts or reservations than this ledger's capacities.
  //  - InvalidArgument: not a ledger snapshot, an unknown format version, truncated or trailing
  //    bytes, or a state that OpenAccount or Reserve would have refused. Damage within the
  //    payload is the enclosing engine snapshot's CRC32C to catch (snapshot_format.h).
  [[nodiscard]] absl::Status RestoreState(absl::string_view bytes);

 private:
  struct Account {
    uint64_t id = 0;  // 0 for a clearing account.
    int64_t balance_minor = 0;
    int64_t overdraft_limit_minor = 0;
    CurrencyCode currency = 0;
    uint32_t book_index = 0;  // The currency's entry in books_.
    uint32_t flags = 0;
    uint32_t pending_count = 0;       // Reservations with it as source or destination.
    int64_t pending_credit_minor = 0;  // Reserved for it as destination, not yet settled.
    int64_t pending_debit_minor = 0;   // Reserved from it as source, not yet settled.
  };

  // Everything the ledger knows about one currency.
  struct CurrencyBook {
    CurrencyCode currency = 0;
    Account clearing;
    // Sum of all balances as OpenAccount left it; what every posting must preserve.
    int64_t total_opened_minor = 0;
    // Sum of all balances, updated from each posting's actual balance changes; checked against
    // total_opened_minor so a posting that creates or destroys money trips an assertion at once.
    int64_t total_minor = 0;
    // Sum of pending reservation amounts: the clearing balance must always equal it.
    int64_t pending_minor = 0;
    // Sum over the accounts of (balance + overdraft limit). Every term is >= 0, so it bounds every
    // balance; OpenAccount keeps it within int64 so no posting can overflow.
    int64_t reach_minor = 0;
  };

  static constexpr uint32_t kNoAccount = UINT32_MAX;

  // The only place balances change: moves `amount_minor` from `debit` to `credit` (same currency).
  void Post(Account& debit, Account& credit, int64_t amount_minor);
  // Removes the reservation for `seq` and posts its amount from clearing to the destination
  // (commit) or back to the source (void).
  void Settle(Sequence seq, bool to_destination);
  // True when debiting `amount_minor` (> 0) leaves `account` within its overdraft limit.
  static bool CanDebit(const Account& account, int64_t amount_minor);
  uint32_t IndexOf(uint64_t account) const;
  size_t BookIndexOf(CurrencyCode currency) const;  // books_.size() when absent.
  const CurrencyBook* FindBook(CurrencyCode currency) const;
  CurrencyBook& BookFor(CurrencyCode currency);  // Adds the book when the currency is new.
  static AccountView View(const Account& account);
  // RestoreState's rebuild, into a new, empty ledger.
  struct SavedReservation;
  absl::Status Rebuild(const std::vector<AccountSpec>& accounts,
                       const std::vector<SavedReservation>& reservations);

  // Constant after construction.
  size_t account_capacity_;

  // Written only by the owning thread. The account table is reserved up front and only
  // OpenAccount appends, so indices (kept in reservations) stay valid forever.
  std::vector<Account> accounts_;
  absl::flat_hash_map<uint64_t, uint32_t> index_by_id_;
  std::vector<CurrencyBook> books_;  // Few (one per supported currency in use); scanned linearly.
  internal::PendingTable pending_;
  uint64_t postings_ = 0;
};

}  // namespace vouch::ledger

#endif  // VOUCH_ENGINE_LEDGER_LEDGER_H_
