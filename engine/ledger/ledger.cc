#include "engine/ledger/ledger.h"

#include <algorithm>
#include <cassert>
#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/accounts/account.h"
#include "engine/common/check.h"
#include "engine/types/mix.h"
#include "engine/common/snapshot_format.h"

namespace vouch::ledger {

struct Ledger::SavedReservation {
  Sequence seq = 0;
  int64_t amount_minor = 0;
  uint64_t source = 0;  // Account ids, not indices: the format does not depend on the table.
  uint64_t destination = 0;
};

namespace {

namespace snapshot = verifiers::snapshot;

// The payload: postings u64 | account count u64 | per account, in opening order: id u64,
// currency u32, balance i64, overdraft limit i64, flags u32 (from version 2) | reservation
// count u64 | per reservation, in sequence order: seq u64, amount i64, source id u64,
// destination id u64.
constexpr uint64_t kSnapshotMagic = snapshot::Magic("VCHLEDGR");
// Version 1 had no account flags; versions 1 and 2 ended with a checksum (snapshot_format.h);
// version 3 is version 2 without it.
constexpr snapshot::Versions kSnapshotVersions = {
    .oldest = 1, .current = 3, .first_without_trailer = 3};
constexpr uint32_t kSnapshotFirstVersionWithFlags = 2;
constexpr absl::string_view kSnapshotWhat = "ledger snapshot";
constexpr size_t kSavedAccountBytesV1 = 8 + 4 + 8 + 8;
constexpr size_t kSavedReservationBytes = 8 + 8 + 8 + 8;

// Room for every supported currency, so books_ does not grow in practice.
constexpr size_t kBooksReserved = 16;

// Checks one spec on its own; OpenAccount then checks it against the ledger.
absl::Status ValidateSpec(const AccountSpec& spec) {
  if (spec.id == 0) return absl::InvalidArgumentError("account id 0 is reserved");
  if (!IsSupportedCurrency(spec.currency)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("account %d: unsupported currency %#x", spec.id, spec.currency));
  }
  if (spec.overdraft_limit_minor < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("account %d: negative overdraft limit", spec.id));
  }
  if ((spec.flags & ~kAccountFlagsKnown) != 0 || spec.flags == kAccountFlagsKnown) {
    return absl::InvalidArgumentError(
        absl::StrFormat("account %d: unknown or contradictory flags %#x", spec.id, spec.flags));
  }
  if ((spec.flags & kAccountCreditsMustNotExceedDebits) && spec.balance_minor > 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "account %d: balance %d above 0, and credits must not exceed debits", spec.id,
        spec.balance_minor));
  }
  const int64_t floor_minor =
      (spec.flags & kAccountDebitsMustNotExceedCredits) ? 0 : -spec.overdraft_limit_minor;
  // Opening below the limit would break "no balance below its limit" before the first posting.
  if (spec.balance_minor < floor_minor) {
    return absl::InvalidArgumentError(
        absl::StrFormat("account %d: balance %d is below its overdraft limit %d", spec.id,
                        spec.balance_minor, spec.overdraft_limit_minor));
  }
  return absl::OkStatus();
}

// Hash of one record; `tag` keeps records of different kinds apart.
uint64_t HashRecord(uint64_t tag, std::initializer_list<uint64_t> words) {
  uint64_t h = Mix64(tag);
  for (uint64_t word : words) h = Mix64(h ^ word);
  return h;
}

enum RecordTag : uint64_t { kAccountTag = 1, kClearingTag = 2, kPendingTag = 3 };

// Reads a record count and checks that the records fit in the bytes left, so a damaged count
// can neither read past the end nor size a huge allocation; then checks it against `capacity`.
absl::StatusOr<size_t> ReadCount(snapshot::ByteReader& in, size_t record_bytes,
                                 absl::string_view records, size_t capacity) {
  const auto count = in.Get<uint64_t>();
  if (!in.ok() || count > in.remaining() / record_bytes) {
    return snapshot::Invalid(
        kSnapshotWhat, absl::StrFormat("truncated: %d %s do not fit in the %d bytes left", count,
                                       records, in.remaining()));
  }
  if (count > capacity) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: %d %s, more than this ledger's capacity of %d: construct it with a capacity of at "
        "least %d",
        kSnapshotWhat, count, records, capacity, count));
  }
  return count;
}

}  // namespace

Ledger::Ledger(size_t account_capacity, size_t pending_capacity)
    : account_capacity_(account_capacity), pending_(pending_capacity) {
  assert(account_capacity < kNoAccount);  // Indices are uint32 and kNoAccount is reserved.
  accounts_.reserve(account_capacity);
  index_by_id_.reserve(account_capacity);
  books_.reserve(kBooksReserved);
}

absl::Status Ledger::OpenAccount(const AccountSpec& spec) {
  if (absl::Status status = ValidateSpec(spec); !status.ok()) return status;
  if (index_by_id_.contains(spec.id)) {
    return absl::AlreadyExistsError(absl::StrFormat("account %d is already open", spec.id));
  }
  if (accounts_.size() >= account_capacity_) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("account capacity %d reached", account_capacity_));
  }
  // Both terms are >= 0 (ValidateSpec), so only a too-large sum can overflow.
  const CurrencyBook* existing = FindBook(spec.currency);
  int64_t reach_minor;
  if (__builtin_add_overflow(spec.balance_minor, spec.overdraft_limit_minor, &reach_minor) ||
      __builtin_add_overflow(reach_minor, existing ? existing->reach_minor : 0, &reach_minor)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("account %d: balances in its currency could overflow int64", spec.id));
  }

  CurrencyBook& book = BookFor(spec.currency);
  book.reach_minor = reach_minor;
  // Cannot overflow: |total| <= reach_minor, which fits in int64.
  book.total_opened_minor += spec.balance_minor;
  book.total_minor += spec.balance_minor;
  index_by_id_.emplace(spec.id, static_cast<uint32_t>(accounts_.size()));
  accounts_.push_back(Account{
      .id = spec.id,
      .balance_minor = spec.balance_minor,
      .overdraft_limit_minor = spec.overdraft_limit_minor,
      .currency = spec.currency,
      .book_index = book.clearing.book_index,
      .flags = spec.flags,
  });
  return absl::OkStatus();
}

Reason Ledger::Reserve(Sequence seq, const Transaction& txn) {
  VOUCH_CHECK(seq != 0, "a reservation is keyed by a real sequence number");
  VOUCH_CHECK(HasPendingRoom(), "the ledger stage reserves only while there is room");
  const uint32_t source_index = IndexOf(txn.source_account);
  const uint32_t destination_index = IndexOf(txn.destination_account);
  if (source_index == kNoAccount || destination_index == kNoAccount) {
    return Reason::kUnknownAccount;
  }
  Account& source = accounts_[source_index];
  if (txn.currency != source.currency || txn.currency != accounts_[destination_index].currency) {
    return Reason::kCurrencyMismatch;
  }
  if (txn.amount_minor <= 0) return Reason::kMalformedAmount;
  if (!CanDebit(source, txn.amount_minor)) return Reason::kInsufficientFunds;
  Account& destination = accounts_[destination_index];
  if (destination.flags & kAccountCreditsMustNotExceedDebits) {
    // balance + pending debits + pending credits <= 0 after every reservation (no settlement
    // raises the sum), and each term is bounded by the currency's reach: no overflow before the
    // amount is added.
    int64_t credited_minor;
    if (__builtin_add_overflow(destination.balance_minor + destination.pending_debit_minor +
                                   destination.pending_credit_minor,
                               txn.amount_minor, &credited_minor) ||
        credited_minor > 0) {
      return Reason::kCreditsExceedDebits;
    }
  }

  CurrencyBook& book = books_[source.book_index];
  ++source.pending_count;
  source.pending_debit_minor += txn.amount_minor;
  ++destination.pending_count;
  destination.pending_credit_minor += txn.amount_minor;  // Bounded by the check or the reach.
  pending_.Insert({.seq = seq,
                   .amount_minor = txn.amount_minor,
                   .source_index = source_index,
                   .destination_index = destination_index});
  book.pending_minor += txn.amount_minor;  // Tracks the clearing balance, so it cannot overflow.
  Post(source, book.clearing, txn.amount_minor);
  VOUCH_CHECK(book.clearing.balance_minor == book.pending_minor,
              "clearing holds exactly the reserved, unsettled amounts");
  return Reason::kNone;
}

void Ledger::Commit(Sequence seq) { Settle(seq, /*to_destination=*/true); }

void Ledger::Void(Sequence seq) { Settle(seq, /*to_destination=*/false); }

void Ledger::Settle(Sequence seq, bool to_destination) {
  const internal::Reservation reservation = pending_.Take(seq);
  Account& source = accounts_[reservation.source_index];
  --source.pending_count;
  source.pending_debit_minor -= reservation.amount_minor;
  Account& destination = accounts_[reservation.destination_index];
  --destination.pending_count;
  destination.pending_credit_minor -= reservation.amount_minor;
  Account& to =
      accounts_[to_destination ? reservation.destination_index : reservation.source_index];
  CurrencyBook& book = books_[to.book_index];
  book.pending_minor -= reservation.amount_minor;
  Post(book.clearing, to, reservation.amount_minor);
  VOUCH_CHECK(book.clearing.balance_minor == book.pending_minor,
              "clearing holds exactly the reserved, unsettled amounts");
}

bool Ledger::CanDebit(const Account& account, int64_t amount_minor) {
  // The amount may be anything up to INT64_MAX: an overflowing difference is far below any limit.
  int64_t balance_after_minor;
  const int64_t floor_minor = (account.flags & kAccountDebitsMustNotExceedCredits)
                                  ? 0
                                  : -account.overdraft_limit_minor;
  return !__builtin_sub_overflow(account.balance_minor, amount_minor, &balance_after_minor) &&
         balance_after_minor >= floor_minor;
}

void Ledger::Post(Account& debit, Account& credit, int64_t amount_minor) {
  VOUCH_CHECK(amount_minor > 0, "a posting moves a positive amount");
  VOUCH_CHECK(&debit != &credit, "a posting moves money between two accounts");
  VOUCH_CHECK(debit.book_index == credit.book_index, "double entry holds within one currency");
  const int64_t debit_before_minor = debit.balance_minor;
  const int64_t credit_before_minor = credit.balance_minor;
  // Neither can overflow while invariants 3 and 4 (see ledger.h) hold; the checks prove it.
  const bool debit_overflow =
      __builtin_sub_overflow(debit.balance_minor, amount_minor, &debit.balance_minor);
  const bool credit_overflow =
      __builtin_add_overflow(credit.balance_minor, amount_minor, &credit.balance_minor);
  VOUCH_CHECK(!debit_overflow && !credit_overflow, "a posting never overflows a balance");
  VOUCH_CHECK(debit.balance_minor >= -debit.overdraft_limit_minor,
              "no balance goes below its overdraft limit");
  ++postings_;

  // Equal debit and credit: the balances' actual changes must cancel, leaving the total as opened.
  CurrencyBook& book = books_[debit.book_index];
  book.total_minor +=
      (debit.balance_minor - debit_before_minor) + (credit.balance_minor - credit_before_minor);
  VOUCH_CHECK(book.total_minor == book.total_opened_minor,
              "money is conserved: a currency's total is what was opened");
}

uint32_t Ledger::IndexOf(uint64_t account) const {
  const auto it = index_by_id_.find(account);
  return it == index_by_id_.end() ? kNoAccount : it->second;
}

size_t Ledger::BookIndexOf(CurrencyCode currency) const {
  size_t index = 0;
  while (index < books_.size() && books_[index].currency != currency) ++index;
  return index;
}

const Ledger::CurrencyBook* Ledger::FindBook(CurrencyCode currency) const {
  const size_t index = BookIndexOf(currency);
  return index == books_.size() ? nullptr : &books_[index];
}

Ledger::CurrencyBook& Ledger::BookFor(CurrencyCode currency) {
  const size_t index = BookIndexOf(currency);
  if (index == books_.size()) {
    books_.push_back(CurrencyBook{
        .currency = currency,
        .clearing = Account{.currency = currency, .book_index = static_cast<uint32_t>(index)},
    });
  }
  return books_[index];
}

AccountView Ledger::View(const Account& account) {
  return AccountView{
      .id = account.id,
      .currency = account.currency,
      .balance_minor = account.balance_minor,
      .overdraft_limit_minor = account.overdraft_limit_minor,
      .flags = account.flags,
      .pending_count = account.pending_count,
  };
}

std::optional<AccountView> Ledger::Find(uint64_t account) const {
  const uint32_t index = IndexOf(account);
  if (index == kNoAccount) return std::nullopt;
  return View(accounts_[index]);
}

int64_t Ledger::TotalMinor(CurrencyCode currency) const {
  const CurrencyBook* book = FindBook(currency);
  return book == nullptr ? 0 : book->total_minor;
}

int64_t Ledger::ClearingMinor(CurrencyCode currency) const {
  const CurrencyBook* book = FindBook(currency);
  return book == nullptr ? 0 : book->clearing.balance_minor;
}

void Ledger::ForEachAccount(absl::FunctionRef<void(const AccountView&)> fn) const {
  for (const Account& account : accounts_) fn(View(account));
}

void Ledger::ForEachCurrency(
    absl::FunctionRef<void(CurrencyCode, int64_t, int64_t)> fn) const {
  for (const CurrencyBook& book : books_) {
    fn(book.currency, book.total_minor, book.clearing.balance_minor);
  }
}

// Records are combined by addition, which does not depend on order: not on the order accounts
// were opened, nor on where a reservation sits in the pending table.
uint64_t Ledger::StateHash() const {
  uint64_t hash = 0;
  for (const Account& account : accounts_) {
    // Flags in the currency word's high half: 0 for an account without flags, so hashes of
    // ledgers from before flags are unchanged.
    hash += HashRecord(kAccountTag,
                       {account.id, account.currency | uint64_t{account.flags} << 32,
                        static_cast<uint64_t>(account.balance_minor),
                        static_cast<uint64_t>(account.overdraft_limit_minor)});
  }
  for (const CurrencyBook& book : books_) {
    hash += HashRecord(kClearingTag,
                       {book.currency, static_cast<uint64_t>(book.clearing.balance_minor)});
  }
  pending_.ForEach([&](const internal::Reservation& reservation) {
    hash += HashRecord(kPendingTag, {reservation.seq, accounts_[reservation.source_index].id,
                                     accounts_[reservation.destination_index].id,
                                     static_cast<uint64_t>(reservation.amount_minor)});
  });
  return Mix64(hash);
}

absl::Status Ledger::SaveState(std::string* out) const {
  out->clear();
  const size_t payload_offset = snapshot::BeginSnapshot(kSnapshotMagic, kSnapshotVersions.current, out);
  snapshot::ByteWriter writer(out);
  writer.Put(postings_);
  writer.Put(uint64_t{accounts_.size()});
  for (const Account& account : accounts_) {
    writer.Put(account.id);
    writer.Put(account.currency);
    writer.Put(account.balance_minor);
    writer.Put(account.overdraft_limit_minor);
    writer.Put(account.flags);
  }
  // Sequence order: the table's slot order depends on its capacity and on the settlement order.
  std::vector<internal::Reservation> reservations;
  reservations.reserve(pending_.size());
  pending_.ForEach([&](const internal::Reservation& r) { reservations.push_back(r); });
  std::sort(reservations.begin(), reservations.end(),
            [](const auto& a, const auto& b) { return a.seq < b.seq; });
  writer.Put(uint64_t{reservations.size()});
  for (const internal::Reservation& reservation : reservations) {
    writer.Put(reservation.seq);
    writer.Put(reservation.amount_minor);
    writer.Put(accounts_[reservation.source_index].id);
    writer.Put(accounts_[reservation.destination_index].id);
  }
  snapshot::FinishSnapshot(payload_offset, out);
  return absl::OkStatus();
}

absl::Status Ledger::RestoreState(absl::string_view bytes) {
  const absl::StatusOr<snapshot::OpenedSnapshot> opened =
      snapshot::OpenSnapshot(bytes, kSnapshotMagic, kSnapshotVersions, kSnapshotWhat);
  if (!opened.ok()) return opened.status();
  const bool with_flags = opened->version >= kSnapshotFirstVersionWithFlags;
  snapshot::ByteReader in(opened->payload);
  const auto postings = in.Get<uint64_t>();
  const absl::StatusOr<size_t> account_count = ReadCount(
      in, kSavedAccountBytesV1 + (with_flags ? 4 : 0), "accounts", account_capacity_);
  if (!account_count.ok()) return account_count.status();
  std::vector<AccountSpec> accounts(*account_count);
  for (AccountSpec& account : accounts) {
    account.id = in.Get<uint64_t>();
    account.currency = in.Get<CurrencyCode>();
    account.balance_minor = in.Get<int64_t>();
    account.overdraft_limit_minor = in.Get<int64_t>();
    if (with_flags) account.flags = in.Get<uint32_t>();
  }
  const absl::StatusOr<size_t> reservation_count =
      ReadCount(in, kSavedReservationBytes, "reservations", pending_.capacity());
  if (!reservation_count.ok()) return reservation_count.status();
  std::vector<SavedReservation> reservations(*reservation_count);
  for (SavedReservation& reservation : reservations) {
    reservation.seq = in.Get<Sequence>();
    reservation.amount_minor = in.Get<int64_t>();
    reservation.source = in.Get<uint64_t>();
    reservation.destination = in.Get<uint64_t>();
  }
  assert(in.ok());  // ReadCount checked that the records fit.
  if (in.remaining() != 0) {
    return snapshot::Invalid(kSnapshotWhat, absl::StrFormat("%d bytes after the reservations",
                                                            in.remaining()));
  }

  Ledger restored(account_capacity_, pending_.capacity());
  if (absl::Status status = restored.Rebuild(accounts, reservations); !status.ok()) {
    return snapshot::WithContext(kSnapshotWhat, status);
  }
  accounts_ = std::move(restored.accounts_);
  index_by_id_ = std::move(restored.index_by_id_);
  books_ = std::move(restored.books_);
  pending_ = std::move(restored.pending_);
  postings_ = postings;
  return absl::OkStatus();
}

// Each account opens with its saved balance plus the money its pending reservations took out,
// and Reserve takes that money out again. So every balance, clearing balance and book total ends
// as it was saved, computed and checked by the code that computed and checked it the first time.
// A saved ledger always rebuilds: each debit leaves at least the saved balance, which was within
// the account's limit, and the books' reach is the one OpenAccount accepted before.
absl::Status Ledger::Rebuild(const std::vector<AccountSpec>& accounts,
                             const std::vector<SavedReservation>& reservations) {
  assert(accounts_.empty() && pending_.size() == 0);
  absl::flat_hash_map<uint64_t, int64_t> reserved_by_source;
  for (const SavedReservation& reservation : reservations) {
    if (reservation.amount_minor <= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "reservation seq %d: amount %d is not positive", reservation.seq,
          reservation.amount_minor));
    }
    int64_t& reserved_minor = reserved_by_source[reservation.source];
    if (__builtin_add_overflow(reserved_minor, reservation.amount_minor, &reserved_minor)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "account %d: its reservations sum past int64", reservation.source));
    }
  }
  for (size_t i = 0; i < accounts.size(); ++i) {
    AccountSpec spec = accounts[i];
    const auto reserved = reserved_by_source.find(spec.id);
    if (reserved != reserved_by_source.end() &&
        __builtin_add_overflow(spec.balance_minor, reserved->second, &spec.balance_minor)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("account %d: balance plus reserved money overflows int64", spec.id));
    }
    if (absl::Status status = OpenAccount(spec); !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("saved account ", i, ": ", status.message()));
    }
  }
  Sequence seq_previous = 0;
  for (const SavedReservation& saved : reservations) {
    if (saved.seq <= seq_previous) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "reservation seq %d follows seq %d: not in increasing order", saved.seq, seq_previous));
    }
    seq_previous = saved.seq;
    const std::optional<AccountView> source = Find(saved.source);
    Transaction txn;
    txn.source_account = saved.source;
    txn.destination_account = saved.destination;
    txn.amount_minor = saved.amount_minor;
    txn.currency = source.has_value() ? source->currency : 0;
    if (const Reason reason = Reserve(saved.seq, txn); reason != Reason::kNone) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "reservation seq %d (%d from account %d to %d) is refused: %s", saved.seq,
          saved.amount_minor, saved.source, saved.destination, ReasonName(reason)));
    }
  }
  return absl::OkStatus();
}

}  // namespace vouch::ledger
