// FraudChecker: the fraud verifier's decision for one confirmed transaction at a time.
//
// Thread safety: none, by design. The fraud agent thread owns a FraudChecker and is the only
// thread that calls it: Check, ReplaceRules, SaveState, RestoreState and the counter accessors
// alike (other threads may read the counters or save a snapshot only after the owner has
// stopped and been joined). So the hot path pays for no lock and no atomic.
//
// Invariants:
//  - Check() never allocates. Memory is fixed at construction: the account table by
//    account_capacity, the block lists by the rules (ReplaceRules may allocate; it is not hot).
//  - Deterministic: the same rules and the same (txn, now_ns) sequence give the same verdicts,
//    counters and StateHash() in every run and every process.
//
// Per-account state (velocity buckets, amount statistics, last country) lives in a bounded
// set-associative table of account_capacity entries (rounded up to a power of two, at least 8).
// When an account's set is full, its least recently seen account is evicted and
// state_evictions() counts it. What eviction costs: the evicted account's fraud history restarts
// from nothing. Its velocity window is empty, its anomaly baseline needs anomaly_min_samples
// new passes before it judges again, and a country change right after it is not seen as travel.
// Size account_capacity above the number of accounts active within the longest rule window,
// and watch state_evictions(): a steady climb means the table is too small.
//
// Rules, in the order a failure is reported (only the first failing rule's reason is returned):
//  1. Block lists: merchant, country, device. Stateless set lookups.
//  2. Impossible travel: the account's country changed within travel_window_ns. Transactions
//     with an unknown country (0) neither trigger it nor change the remembered country.
//  3. Velocity count, then 4. velocity amount: every checked transaction of the account counts,
//     failed ones too (a burst of refused attempts is itself a velocity signal). The window is
//     approximated by 8 sub-buckets of velocity_window_ns / 8: a transaction counts for at
//     least 7/8 of the window and never longer than the window, so a burst can be under-counted
//     by one bucket's worth but an old transaction never fails a new one.
//  5. Amount anomaly: z = (amount - mean) / stddev over the account's earlier amounts, failing
//     when z > anomaly_z_max (one-sided: unusually small amounts are not a fraud signal). The
//     baseline (Welford mean/variance) learns only from transactions that passed every rule,
//     so a fraudster's amounts never become normal for the account. The cost: an account whose
//     genuine spending jumps keeps failing until it is cleared elsewhere. See kAnomaly* below
//     for the stddev floor.
// Each rule's state is updated only while the rule is enabled: a disabled rule costs nothing.
// Re-enabled, it resumes from its old state, which is time-stamped and expires by itself
// (velocity, travel) or is still a valid baseline (anomaly).
//
// Snapshots: SaveState writes all state that shapes future verdicts (every account's velocity
// buckets, amount statistics, last country and clock, and the table slot it sits in) plus the
// counters; RestoreState puts it back. The rules are not in a snapshot: the caller constructs
// the checker with its rules and capacity, then restores into it.
//
// Engine time: now_ns is the engine's confirm time. Each account keeps its own clock (the
// latest now_ns seen for it), so out-of-order confirm times never move an account backwards.
#ifndef VOUCH_VERIFIERS_FRAUD_FRAUD_CHECKER_H_
#define VOUCH_VERIFIERS_FRAUD_FRAUD_CHECKER_H_

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/types/reason.h"
#include "engine/types/transaction.h"
#include "verifiers/fraud/fraud_rules.h"
#include "verifiers/fraud/internal/account_table.h"

namespace vouch::fraud {

// The anomaly rule divides by max(stddev, kAnomalyStddevFloorOfMean * mean,
// kAnomalyStddevFloorMinor). Without a floor, an account that always pays the same amount has
// stddev 0 and any change, even a cent, is an infinite z-score. With 0.25 and the default
// z_max of 6, such an account may pay up to 2.5x its usual amount: 2x passes (z = 4), 3x fails
// (z = 8). The 1-minor-unit floor covers accounts whose mean is tiny.
inline constexpr double kAnomalyStddevFloorOfMean = 0.25;
inline constexpr double kAnomalyStddevFloorMinor = 1.0;

class FraudChecker {
 public:
  // REQUIRES: rules.Validate().ok(); 0 < account_capacity <= 2^32.
  FraudChecker(const FraudRules& rules, size_t account_capacity);

  FraudChecker(const FraudChecker&) = delete;
  FraudChecker& operator=(const FraudChecker&) = delete;

  // Reason::kNone to pass, else the reason of the first failing rule (order above).
  // REQUIRES: txn passed the ingest checks (source_account != 0, amount_minor > 0).
  // A negative now_ns (confirmed before this host's boot) counts as 0.
  [[nodiscard]] Reason Check(const Transaction& txn, int64_t now_ns);

  // Takes effect from the next Check. Keeps all per-account state, except that a change of
  // velocity_window_ns empties every velocity window (the old buckets have the wrong width).
  // REQUIRES: rules.Validate().ok().
  void ReplaceRules(const FraudRules& rules);

  // Single-writer counters; see the thread-safety note above.
  uint64_t checks() const { return checks_; }
  // Checks that failed with `reason`; failures(Reason::kNone) is always 0.
  uint64_t failures(Reason reason) const { return failures_[static_cast<size_t>(reason)]; }
  uint64_t state_evictions() const { return accounts_.evictions(); }

  // Replaces *out with a snapshot of the state (format: engine/common/snapshot_format.h). Equal
  // states give equal bytes. Allocates; not for the hot path. Always OK today: the status is
  // there for a store that can refuse (a size limit), so callers already handle one.
  [[nodiscard]] absl::Status SaveState(std::string* out) const;

  // Replaces the state (accounts, counters) with a snapshot from SaveState; on error nothing
  // changes. Restored into a checker of the same account capacity and velocity window, the
  // checker is indistinguishable from the one saved: the same StateHash, and the same verdicts
  // for the same calls from then on. A larger capacity keeps every account's state, and evicts
  // less from then on. A different velocity_window_ns empties every velocity window, as
  // ReplaceRules does, because the saved buckets have the old width. Refuses:
  //  - FailedPrecondition: the snapshot's account table is larger than this checker's.
  //  - InvalidArgument: not a fraud snapshot, an unknown format version, truncated or trailing
  //    bytes, or a state that breaks an invariant of the checker. Damage within the payload is
  //    the enclosing engine snapshot's CRC32C to catch (snapshot_format.h).
  [[nodiscard]] absl::Status RestoreState(absl::string_view bytes);

  // A hash of all per-account state, stable across runs and processes (no pointers, no
  // per-process seeds), for replay-determinism tests.
  uint64_t StateHash() const { return accounts_.Hash(); }

 private:
  void ApplyRules(const FraudRules& rules);
  Reason CheckBlockLists(const Transaction& txn) const;
  // The stateful rules record the transaction in `state` as well as judging it.
  Reason CheckTravel(const Transaction& txn, int64_t now_ns, internal::AccountState& state) const;
  Reason CheckVelocity(const Transaction& txn, int64_t now_ns,
                       internal::AccountState& state) const;
  Reason CheckAnomaly(const Transaction& txn, const internal::AccountState& state) const;

  // Constant between ReplaceRules calls.
  FraudRules rules_;
  int64_t velocity_bucket_ns_ = 0;
  absl::flat_hash_set<uint64_t> blocked_merchants_;
  // A CountryCode is 16 bits: a direct-address bit set (8 KiB) beats hashing.
  std::bitset<size_t{1} << 16> blocked_countries_;
  absl::flat_hash_set<uint64_t> blocked_devices_;

  // Mutable state, written by Check only.
  internal::AccountTable accounts_;
  uint64_t checks_ = 0;
  std::array<uint64_t, kReasonCount> failures_{};
};

}  // namespace vouch::fraud

#endif  // VOUCH_VERIFIERS_FRAUD_FRAUD_CHECKER_H_
