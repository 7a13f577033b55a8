// A fixed-capacity, set-associative map from source account to its fraud state.
//
// Thread safety: none; the FraudChecker that owns it is confined to one thread.
//
// Layout: capacity entries in sets of kWays. An account can only live in the set its hash
// picks, so a lookup reads one set's keys (one cache line) and never probes further. When the
// set is full, the least recently seen account in it is evicted: its state is reset, and the
// eviction is counted. Memory is allocated once, in the constructor.
//
// Each entry also keeps the account's clock: the latest engine time seen for it. Rules read
// that clock instead of the raw time, so per-account time never goes backwards even when
// confirm times from different ingest threads arrive slightly out of order.
#ifndef VOUCH_VERIFIERS_FRAUD_INTERNAL_ACCOUNT_TABLE_H_
#define VOUCH_VERIFIERS_FRAUD_INTERNAL_ACCOUNT_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/types/transaction.h"
#include "verifiers/fraud/internal/running_stats.h"
#include "verifiers/fraud/internal/sliding_window.h"
#include "verifiers/fraud/internal/state_hasher.h"

namespace vouch::fraud::internal {

struct AccountState {
  SlidingWindow velocity;
  RunningStats amounts;  // Only of transactions that passed every rule.
  CountryCode last_country = 0;
  int64_t last_country_ns = 0;

  void HashInto(StateHasher& hasher) const;
};

class AccountTable {
 public:
  static constexpr size_t kWays = 8;
  // Bounds the allocation; far beyond any sensible account working set.
  static constexpr size_t kCapacityMax = size_t{1} << 32;

  // Rounds capacity_min up to a power of two, and to at least kWays.
  // REQUIRES: 0 < capacity_min <= kCapacityMax.
  explicit AccountTable(size_t capacity_min);

  struct Entry {
    AccountState& state;
    int64_t now_ns;  // The account's clock: max(now_ns given, latest seen for the account).
  };
  // Finds the account's entry, or makes one (evicting if the set is full), and advances the
  // account's clock to now_ns. Never allocates. REQUIRES: account != 0 (0 marks a free way).
  Entry FindOrInsert(uint64_t account, int64_t now_ns);

  void ClearVelocity();
  // Over every occupied entry in table order; equal for equal histories.
  uint64_t Hash() const;

  size_t capacity() const { return states_.size(); }
  uint64_t evictions() const { return evictions_; }

 private:
  // The keys of one set share a cache line; the clocks, used by eviction and the rules, the next.
  struct alignas(64) Set {
    std::array<uint64_t, kWays> accounts{};  // 0 = free.
    std::array<int64_t, kWays> last_seen_ns{};
  };

  size_t Claim(Set& set, uint64_t account, int64_t now_ns, size_t state_index_first);
  static size_t VictimWay(const Set& set);

  std::vector<Set> sets_;
  std::vector<AccountState> states_;  // Way w of set s is states_[s * kWays + w].
  uint64_t set_mask_;
  uint64_t evictions_ = 0;
};

}  // namespace vouch::fraud::internal

#endif  // VOUCH_VERIFIERS_FRAUD_INTERNAL_ACCOUNT_TABLE_H_
