#include "engine/ingest/risk_table.h"

#include <bit>
#include <cassert>

#include "engine/ingest/internal/account_slots.h"

namespace vouch {
namespace {

// True if adding `delta` (already added: `after` is the new value) passed `cap` (0: no cap).
template <typename T>
bool Over(T after, T cap) {
  return cap != 0 && after > cap;
}

}  // namespace

RiskTable::RiskTable(size_t account_capacity, const RiskLimits& limits)
    : limits_(limits),
      capacity_(std::bit_ceil(account_capacity < 2 ? size_t{2} : account_capacity)),
      slots_(new Slot[capacity_]) {}

RiskTable::Slot* RiskTable::FindAccount(uint64_t account) {
  return internal::FindAccountSlot(slots_.get(), capacity_, account, /*claim=*/true);
}

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

bool RiskTable::TryAdd(uint64_t account, CurrencyCode currency, int64_t amount_minor) {
  assert(account != 0 && amount_minor > 0);
  Slot* slot = FindAccount(account);
  CurrencyTotal* total = FindCurrency(currency);
  if (slot == nullptr || total == nullptr) {
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
      Over(slot->count.fetch_add(1, std::memory_order_relaxed) + 1, limits_.account_count_max);
  const bool account_minor_over =
      Over(slot->minor.fetch_add(amount_minor, std::memory_order_relaxed) + amount_minor,
           limits_.account_minor_max);
  const bool over =
      total_count_over || total_minor_over || account_count_over || account_minor_over;
  if (over) Remove(account, currency, amount_minor);
  return !over;
}

void RiskTable::Add(uint64_t account, CurrencyCode currency, int64_t amount_minor) {
  Slot* slot = FindAccount(account);
  CurrencyTotal* total = FindCurrency(currency);
  if (slot == nullptr || total == nullptr) {
    table_full_.fetch_add(1, std::memory_order_relaxed);
    return;  // Untracked; Remove finds no slot either and does nothing.
  }
  total_count_.fetch_add(1, std::memory_order_relaxed);
  total->minor.fetch_add(amount_minor, std::memory_order_relaxed);
  slot->count.fetch_add(1, std::memory_order_relaxed);
  slot->minor.fetch_add(amount_minor, std::memory_order_relaxed);
}

void RiskTable::Remove(uint64_t account, CurrencyCode currency, int64_t amount_minor) {
  Slot* slot = FindAccount(account);
  CurrencyTotal* total = FindCurrency(currency);
  if (slot == nullptr || total == nullptr) return;
  total_count_.fetch_sub(1, std::memory_order_relaxed);
  total->minor.fetch_sub(amount_minor, std::memory_order_relaxed);
  slot->count.fetch_sub(1, std::memory_order_relaxed);
  slot->minor.fetch_sub(amount_minor, std::memory_order_relaxed);
}

}  // namespace vouch
