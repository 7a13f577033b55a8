#include "engine/ingest/risk_table.h"

#include <cassert>

namespace vouch {
namespace {

// True if adding `delta` (already added: `after` is the new value) passed `cap` (0: no cap).
template <typename T>
bool Over(T after, T cap) {
  return cap != 0 && after > cap;
}

}  // namespace

RiskTable::RiskTable(const RiskLimits& limits) : limits_(limits) {}

RiskTable::CurrencyTotal* RiskTable::FindCurrency(CurrencyCode currency) {
  for (CurrencyTotal& total : currencies_) {
    // relaxed: see the class comment.
    CurrencyCode code = total.currency.load(std::memory_order_relaxed);
    if (code == currency) return &total;
    if (code != 0) continue;
    if (total.currency.compare_exchange_strong(code, currency, std::memory_order_relaxed) ||
        code == currency) {
      return &total;
    }
  }
  return nullptr;
}

bool RiskTable::TryAdd(AccountRecord* account, CurrencyCode currency, int64_t amount_minor) {
  assert(amount_minor > 0);
  CurrencyTotal* total = FindCurrency(currency);
  if (total == nullptr) {
    table_full_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // relaxed (all): see the class comment. All four adds happen even when one is over, because
  // Remove undoes all four.
  const bool total_count_over =
      Over(total_count_.fetch_add(1, std::memory_order_relaxed) + 1, limits_.total_count_max);
  const bool total_minor_over =
      Over(total->minor.fetch_add(amount_minor, std::memory_order_relaxed) + amount_minor,
           limits_.total_minor_max);
  const bool account_count_over =
      account != nullptr &&
      Over(account->unverified_count.fetch_add(1, std::memory_order_relaxed) + 1,
           limits_.account_count_max);
  const bool account_minor_over =
      account != nullptr &&
      Over(account->unverified_minor.fetch_add(amount_minor, std::memory_order_relaxed) +
               amount_minor,
           limits_.account_minor_max);
  const bool over =
      total_count_over || total_minor_over || account_count_over || account_minor_over;
  if (over) Remove(account, currency, amount_minor);
  return !over;
}

void RiskTable::Add(AccountRecord* account, CurrencyCode currency, int64_t amount_minor) {
  CurrencyTotal* total = FindCurrency(currency);
  if (total == nullptr) {
    table_full_.fetch_add(1, std::memory_order_relaxed);
    return;  // Untracked; Remove finds no total either and does nothing.
  }
  total_count_.fetch_add(1, std::memory_order_relaxed);
  total->minor.fetch_add(amount_minor, std::memory_order_relaxed);
  if (account != nullptr) {
    account->unverified_count.fetch_add(1, std::memory_order_relaxed);
    account->unverified_minor.fetch_add(amount_minor, std::memory_order_relaxed);
  }
}

void RiskTable::Remove(AccountRecord* account, CurrencyCode currency, int64_t amount_minor) {
  CurrencyTotal* total = FindCurrency(currency);
  if (total == nullptr) return;
  total_count_.fetch_sub(1, std::memory_order_relaxed);
  total->minor.fetch_sub(amount_minor, std::memory_order_relaxed);
  if (account != nullptr) {
    account->unverified_count.fetch_sub(1, std::memory_order_relaxed);
    account->unverified_minor.fetch_sub(amount_minor, std::memory_order_relaxed);
  }
}

}  // namespace vouch
