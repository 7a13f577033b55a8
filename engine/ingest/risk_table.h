// RiskTable: how much is confirmed but not yet verified, per account and in total, against
// operator caps (risk-exposure back-pressure). Confirming first is a bet that verification will
// agree; the caps bound the bet. A transaction that would take an account (or the whole engine)
// past a cap is not confirmed at once: the engine either holds it for verification, as the
// hybrid policy does, or refuses it with BUSY / risk_limit, as configured, and counts it.
//
// Exposure is added when a transaction is confirmed unheld and removed when its outcome is
// decided. Caps are on the count of such transactions and on their amount in minor units; the
// account's amount is in its transactions' currency, the total amount is kept per currency (up
// to kCurrencies of them) and the same cap applies to each. A cap of 0 is no cap.
//
// Design: an account's exposure lives in its own record (AccountRecord::unverified_count and
// unverified_minor, engine/accounts/account_directory.h), found in O(1) by the caller, so there
// is no per-account table to fill and no capacity cliff; this class keeps the engine-wide
// totals (per currency, up to kCurrencies, which exceeds the supported currencies: table_full()
// stays 0 in practice and is kept for the metric). TryAdd adds to every counter
// with fetch_add and, if any passed its cap, takes back what it added: admitted exposure never
// exceeds a cap (a counter may show a racing refusal's add for an instant), and two
// transactions racing for the last unit of headroom may both be refused.
//
// Thread safety: every method may be called from any thread; no locks, no allocation after
// construction. Memory ordering: relaxed everywhere; the counters publish no other data.
#ifndef VOUCH_ENGINE_INGEST_RISK_TABLE_H_
#define VOUCH_ENGINE_INGEST_RISK_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/accounts/account_directory.h"
#include "engine/types/risk_limits.h"
#include "engine/types/transaction.h"

namespace vouch {

class RiskTable {
 public:
  static constexpr int kCurrencies = 16;

  explicit RiskTable(const RiskLimits& limits);
  RiskTable(const RiskTable&) = delete;
  RiskTable& operator=(const RiskTable&) = delete;

  bool enabled() const { return limits_.any(); }
  const RiskLimits& limits() const { return limits_; }

  // Adds the transaction's exposure to `account` (the source's record; null: only the totals,
  // for a transaction recovered from a journal older than the directory) and to the totals if
  // every cap still holds; false (nothing added) if not.
  [[nodiscard]] bool TryAdd(AccountRecord* account, CurrencyCode currency, int64_t amount_minor);
  // Adds without checking (recovery re-admits transactions confirmed before a restart).
  void Add(AccountRecord* account, CurrencyCode currency, int64_t amount_minor);
  // REQUIRES: a matching TryAdd (true) or Add, with the same account.
  void Remove(AccountRecord* account, CurrencyCode currency, int64_t amount_minor);

  uint64_t total_count() const { return total_count_.load(std::memory_order_relaxed); }
  uint64_t table_full() const { return table_full_.load(std::memory_order_relaxed); }

 private:
  struct CurrencyTotal {
    std::atomic<CurrencyCode> currency{0};
    std::atomic<int64_t> minor{0};
  };

  CurrencyTotal* FindCurrency(CurrencyCode currency);

  const RiskLimits limits_;
  CurrencyTotal currencies_[kCurrencies];
  alignas(64) std::atomic<uint64_t> total_count_{0};
  std::atomic<uint64_t> table_full_{0};
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_INGEST_RISK_TABLE_H_
