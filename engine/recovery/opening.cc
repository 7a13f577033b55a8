#include "engine/recovery/opening.h"

#include <algorithm>
#include <cassert>
#include <type_traits>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vouch {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

template <typename T>
uint64_t FnvAdd(uint64_t hash, T value) {
  auto bits = static_cast<std::make_unsigned_t<T>>(value);
  for (size_t i = 0; i < sizeof(T); ++i) {
    hash = (hash ^ static_cast<uint8_t>(bits >> (8 * i))) * kFnvPrime;
  }
  return hash;
}

const char* FieldName(OpeningMismatch field) {
  switch (field) {
    case OpeningMismatch::kAccounts: return "accounts";
    case OpeningMismatch::kCurrencies: return "currencies";
    case OpeningMismatch::kOpeningBalances: return "opening_balances";
    case OpeningMismatch::kOverdraftLimits: return "overdraft_limits";
  }
  return "?";
}

absl::Status Refuse(OpeningMismatch field, const std::string& dir, absl::string_view what) {
  absl::Status status = absl::FailedPreconditionError(absl::StrCat(
      "data directory ", dir, " was created with another opening configuration: ", what,
      ". The configuration is pinned: start with the one the directory was created with"));
  status.SetPayload(kOpeningMismatchPayload, absl::Cord(FieldName(field)));
  return status;
}

std::string Currencies(const journal::OpeningRecord& record) {
  std::vector<std::string> names;
  for (uint32_t i = 0; i < record.currency_count; ++i) {
    names.push_back(CurrencyToString(record.currencies[i].currency));
  }
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

}  // namespace

journal::OpeningRecord OpeningOf(absl::Span<const ledger::AccountSpec> accounts) {
  journal::OpeningRecord record;
  record.accounts = accounts.size();
  std::vector<const ledger::AccountSpec*> by_id;
  by_id.reserve(accounts.size());
  for (const ledger::AccountSpec& account : accounts) by_id.push_back(&account);
  std::sort(by_id.begin(), by_id.end(),
            [](const auto* a, const auto* b) { return a->id < b->id; });
  uint64_t hash = kFnvOffset;
  for (const ledger::AccountSpec* account : by_id) {
    hash = FnvAdd(hash, account->id);
    hash = FnvAdd(hash, account->currency);
    hash = FnvAdd(hash, account->balance_minor);
    hash = FnvAdd(hash, account->overdraft_limit_minor);
    journal::OpeningCurrency* currency = std::find_if(
        record.currencies, record.currencies + record.currency_count,
        [&](const journal::OpeningCurrency& c) { return c.currency == account->currency; });
    if (currency == record.currencies + record.currency_count) {
      assert(record.currency_count < journal::kOpeningCurrenciesMax);
      currency->currency = account->currency;
      ++record.currency_count;
    }
    ++currency->accounts;
    // Wrapping sums (in uint64): only compared.
    currency->balance_minor = static_cast<int64_t>(static_cast<uint64_t>(currency->balance_minor) +
                                                   static_cast<uint64_t>(account->balance_minor));
    currency->overdraft_limit_minor =
        static_cast<int64_t>(static_cast<uint64_t>(currency->overdraft_limit_minor) +
                             static_cast<uint64_t>(account->overdraft_limit_minor));
  }
  record.accounts_hash = hash;
  std::sort(record.currencies, record.currencies + record.currency_count,
            [](const auto& a, const auto& b) { return a.currency < b.currency; });
  return record;
}

absl::Status CheckOpening(const journal::OpeningRecord& pinned, const journal::OpeningRecord& now,
                          const std::string& dir) {
  if (pinned == now) return absl::OkStatus();
  if (pinned.accounts != now.accounts) {
    return Refuse(OpeningMismatch::kAccounts, dir,
                  absl::StrCat(pinned.accounts, " accounts then, ", now.accounts, " now"));
  }
  const std::string pinned_currencies = Currencies(pinned);
  if (const std::string currencies = Currencies(now); currencies != pinned_currencies) {
    return Refuse(OpeningMismatch::kCurrencies, dir,
                  absl::StrCat("accounts in currencies ", pinned_currencies, " then, ",
                               currencies, " now"));
  }
  for (uint32_t i = 0; i < pinned.currency_count; ++i) {
    const journal::OpeningCurrency& then = pinned.currencies[i];
    const journal::OpeningCurrency& c = now.currencies[i];
    const std::string name = CurrencyToString(c.currency);
    if (then.accounts != c.accounts) {
      return Refuse(OpeningMismatch::kAccounts, dir,
                    absl::StrCat(then.accounts, " accounts in ", name, " then, ", c.accounts,
                                 " now"));
    }
    if (then.balance_minor != c.balance_minor) {
      return Refuse(OpeningMismatch::kOpeningBalances, dir,
                    absl::StrCat("opening balances in ", name, " totalled ", then.balance_minor,
                                 " then, ", c.balance_minor, " now (minor units)"));
    }
    if (then.overdraft_limit_minor != c.overdraft_limit_minor) {
      return Refuse(OpeningMismatch::kOverdraftLimits, dir,
                    absl::StrCat("overdraft limits in ", name, " totalled ",
                                 then.overdraft_limit_minor, " then, ", c.overdraft_limit_minor,
                                 " now (minor units)"));
    }
  }
  return Refuse(OpeningMismatch::kAccounts, dir,
                "the same number of accounts and the same totals, but the accounts differ "
                "(their ids, or how the balances and limits are spread over them)");
}

std::optional<OpeningMismatch> OpeningMismatchOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kOpeningMismatchPayload);
  if (!payload.has_value()) return std::nullopt;
  for (const OpeningMismatch field :
       {OpeningMismatch::kAccounts, OpeningMismatch::kCurrencies,
        OpeningMismatch::kOpeningBalances, OpeningMismatch::kOverdraftLimits}) {
    if (*payload == FieldName(field)) return field;
  }
  return std::nullopt;
}

}  // namespace vouch
