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
//
// Snapshots: Save writes every occupied entry with its slot; CheckSaved and LoadSaved put them
// back into a table of the same capacity or a larger one. Into the same capacity, every entry
// returns to its slot, so Hash() and every later eviction match the saved table's. Into a larger
// one, each entry keeps its way within its account's new set; the states are the same, and the
// larger table simply evicts less from then on.
#ifndef VOUCH_VERIFIERS_FRAUD_INTERNAL_ACCOUNT_TABLE_H_
#define VOUCH_VERIFIERS_FRAUD_INTERNAL_ACCOUNT_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "engine/types/transaction.h"
#include "verifiers/fraud/internal/running_stats.h"
#include "verifiers/fraud/internal/sliding_window.h"
#include "engine/common/snapshot_format.h"
#include "verifiers/fraud/internal/state_hasher.h"

namespace vouch::fraud::internal {

struct AccountState {
  SlidingWindow velocity;
  RunningStats amounts;  // Only of transactions that passed every rule.
  CountryCode last_country = 0;
  int64_t last_country_ns = 0;

  void HashInto(StateHasher& hasher) const;
  void Save(verifiers::snapshot::ByteWriter& out) const;
  // Replaces this state with one written by Save. `clock_ns` is the account's clock and
  // `velocity_bucket_ns` the bucket width the state was saved under. The caller checks
  // `in.ok()` before the status: after a short read the values are zeros.
  absl::Status Restore(verifiers::snapshot::ByteReader& in, int64_t clock_ns,
                       int64_t velocity_bucket_ns);
};

class AccountTable {
 public:
  static constexpr size_t kWays = 8;
  // Bounds the allocation; far beyond any sensible account working set.
  static constexpr size_t kCapacityMax = size_t{1} << 32;
  // A snapshot stores slots as uint32.
  static_assert(kCapacityMax - 1 <= UINT32_MAX);

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

  // Writes the capacity, the eviction count and every occupied entry.
  void Save(verifiers::snapshot::ByteWriter& out) const;
  // Restoring takes two calls so that a bad snapshot changes nothing: CheckSaved reads a table
  // written by Save from `in` and checks all of it, then LoadSaved (given the same bytes)
  // replaces this table's entries and eviction count with it. `velocity_bucket_ns` is the bucket
  // width the windows were saved under. FailedPrecondition when the saved capacity exceeds
  // capacity(); InvalidArgument when the bytes are malformed.
  absl::Status CheckSaved(verifiers::snapshot::ByteReader& in, int64_t velocity_bucket_ns) const;
  // REQUIRES: CheckSaved returned OK for the same bytes and bucket width.
  void LoadSaved(verifiers::snapshot::ByteReader& in, int64_t velocity_bucket_ns);

  size_t capacity() const { return states_.size(); }
  uint64_t evictions() const { return evictions_; }

 private:
  // The keys of one set share a cache line; the clocks, used by eviction and the rules, the next.
  struct alignas(64) Set {
    std::array<uint64_t, kWays> accounts{};  // 0 = free.
    std::array<int64_t, kWays> last_seen_ns{};
  };

  struct SavedEntry {
    uint32_t slot = 0;  // set * kWays + way in the saved table.
    uint64_t account = 0;
    int64_t last_seen_ns = 0;
    AccountState state;
  };
  // Reads and checks a saved table, passing each entry to `visit` in saved order.
  template <typename Visit>
  absl::Status ReadSaved(verifiers::snapshot::ByteReader& in, int64_t velocity_bucket_ns,
                         uint64_t* evictions, Visit visit) const;
  void Place(const SavedEntry& entry);

  size_t Claim(Set& set, uint64_t account, int64_t now_ns, size_t state_index_first);
  static size_t VictimWay(const Set& set);

  std::vector<Set> sets_;
  std::vector<AccountState> states_;  // Way w of set s is states_[s * kWays + w].
  uint64_t set_mask_;
  uint64_t evictions_ = 0;
};

}  // namespace vouch::fraud::internal

#endif  // VOUCH_VERIFIERS_FRAUD_INTERNAL_ACCOUNT_TABLE_H_
