// Helpers for engine tests: a small bank of accounts and transactions against it.
#ifndef VOUCH_TESTS_ENGINE_ENGINE_TEST_UTIL_H_
#define VOUCH_TESTS_ENGINE_ENGINE_TEST_UTIL_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/options.h"

namespace vouch::testing {

inline constexpr int64_t kOpeningBalance = 1'000'000;
inline const CurrencyCode kUsd = PackCurrency("USD");
inline constexpr uint64_t kBlockedMerchant = 666;

// `accounts` accounts with ids 1..accounts, each with kOpeningBalance USD and no overdraft.
inline Options BankOptions(size_t accounts) {
  Options options;
  options.in_flight_capacity = 1 << 12;
  options.idempotency_window = 1 << 16;
  options.history_capacity = 1 << 16;
  options.fraud_account_capacity = 1 << 12;
  options.ledger_account_capacity = accounts;
  options.fraud_rules.blocked_merchants = {kBlockedMerchant};
  for (uint64_t id = 1; id <= accounts; ++id) {
    options.accounts.push_back({id, kUsd, kOpeningBalance, 0});
  }
  return options;
}

// An empty directory `name` under the test's temporary directory (Bazel's TEST_TMPDIR), for a
// journal: whatever an earlier run left there is removed first.
inline std::string EmptyTestDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::filesystem::path dir = std::filesystem::path(tmp != nullptr ? tmp : "/tmp") / name;
  std::filesystem::remove_all(dir);
  return dir.string();
}

inline Transaction Transfer(uint64_t id, uint64_t from, uint64_t to, int64_t amount_minor) {
  Transaction txn;
  txn.id = id;
  txn.source_account = from;
  txn.destination_account = to;
  txn.amount_minor = amount_minor;
  txn.currency = kUsd;
  txn.merchant_id = 1;
  txn.merchant_category = 5411;
  txn.country = PackCountry("GB");
  txn.device_id = 77;
  return txn;
}

inline std::vector<Outcome> DrainOutcomes(Engine& engine) {
  std::vector<Outcome> all;
  Outcome batch[256];
  for (size_t n; (n = engine.PollOutcomes(batch, 256)) > 0;) all.insert(all.end(), batch, batch + n);
  return all;
}

// Inline mode: steps until no stage has work left.
inline void StepUntilIdle(Engine& engine) {
  while (engine.Step() > 0) {}
}

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_ENGINE_ENGINE_TEST_UTIL_H_
