#include "verifiers/fraud/fraud_checker.h"

#include <algorithm>
#include <cassert>

#include "absl/strings/str_format.h"
#include "engine/common/snapshot_format.h"

namespace vouch::fraud {
namespace {

namespace snapshot = verifiers::snapshot;

// The payload: velocity bucket width i64 | checks u64 | failure counter count u32 | that many
// failure counters u64, in Reason order | the account table (AccountTable::Save).
constexpr uint64_t kSnapshotMagic = snapshot::Magic("VCHFRAUD");
// Version 1 ended with a checksum (snapshot_format.h); version 2, the same payload without it.
constexpr snapshot::Versions kSnapshotVersions = {
    .oldest = 1, .current = 2, .first_without_trailer = 2};
constexpr absl::string_view kSnapshotWhat = "fraud snapshot";

}  // namespace

using internal::AccountState;

FraudChecker::FraudChecker(const FraudRules& rules, size_t account_capacity)
    : accounts_(account_capacity) {
  ApplyRules(rules);
}

void FraudChecker::ReplaceRules(const FraudRules& rules) {
  if (rules.velocity_window_ns != rules_.velocity_window_ns) accounts_.ClearVelocity();
  ApplyRules(rules);
}

void FraudChecker::ApplyRules(const FraudRules& rules) {
  assert(rules.Validate().ok());
  rules_ = rules;
  velocity_bucket_ns_ = rules.velocity_window_ns / internal::kVelocityBucketCount;
  assert(velocity_bucket_ns_ > 0);
  blocked_merchants_ = {rules.blocked_merchants.begin(), rules.blocked_merchants.end()};
  blocked_countries_.reset();
  for (CountryCode country : rules.blocked_countries) blocked_countries_.set(country);
  blocked_devices_ = {rules.blocked_devices.begin(), rules.blocked_devices.end()};
}

Reason FraudChecker::Check(const Transaction& txn, int64_t now_ns) {
  assert(txn.source_account != 0);
  assert(txn.amount_minor > 0);
  // A transaction confirmed before this host's last boot, recovered from the journal, has a
  // negative monotonic time (replay, and the fraud stage re-verifying it). The rules only compare
  // times, and anything that old is outside every window: it counts as at the clock's epoch.
  // Found by tests/fuzz/journal_recovery_fuzzer.
  now_ns = std::max<int64_t>(now_ns, 0);
  ++checks_;
  auto [state, account_now_ns] = accounts_.FindOrInsert(txn.source_account, now_ns);
  // The stateful rules run even after an earlier rule failed, so every transaction is recorded.
  Reason reason = CheckBlockLists(txn);
  const Reason travel = CheckTravel(txn, account_now_ns, state);
  const Reason velocity = CheckVelocity(txn, account_now_ns, state);
  if (reason == Reason::kNone) reason = travel;
  if (reason == Reason::kNone) reason = velocity;
  if (reason == Reason::kNone) reason = CheckAnomaly(txn, state);
  if (reason != Reason::kNone) {
    ++failures_[static_cast<size_t>(reason)];
  } else if (rules_.anomaly_enabled) {
    state.amounts.Add(static_cast<double>(txn.amount_minor));
  }
  return reason;
}

Reason FraudChecker::CheckBlockLists(const Transaction& txn) const {
  if (blocked_merchants_.contains(txn.merchant_id)) return Reason::kBlockedMerchant;
  if (blocked_countries_.test(txn.country)) return Reason::kBlockedCountry;
  if (blocked_devices_.contains(txn.device_id)) return Reason::kBlockedDevice;
  return Reason::kNone;
}

Reason FraudChecker::CheckTravel(const Transaction& txn, int64_t now_ns,
                                 AccountState& state) const {
  if (!rules_.travel_enabled || txn.country == 0) return Reason::kNone;
  assert(now_ns >= state.last_country_ns);  // The account clock never goes back.
  const bool moved = state.last_country != 0 && state.last_country != txn.country &&
                     now_ns - state.last_country_ns < rules_.travel_window_ns;
  state.last_country = txn.country;
  state.last_country_ns = now_ns;
  return moved ? Reason::kImpossibleTravel : Reason::kNone;
}

Reason FraudChecker::CheckVelocity(const Transaction& txn, int64_t now_ns,
                                   AccountState& state) const {
  if (!rules_.velocity_enabled) return Reason::kNone;
  const internal::SlidingWindow::Totals totals =
      state.velocity.Add(now_ns / velocity_bucket_ns_, txn.amount_minor);
  if (totals.count > rules_.velocity_count_max) return Reason::kVelocityCount;
  if (totals.amount_minor > rules_.velocity_amount_max_minor) return Reason::kVelocityAmount;
  return Reason::kNone;
}

Reason FraudChecker::CheckAnomaly(const Transaction& txn, const AccountState& state) const {
  const internal::RunningStats& stats = state.amounts;
  if (!rules_.anomaly_enabled || stats.samples() < rules_.anomaly_min_samples) {
    return Reason::kNone;
  }
  const double stddev = std::max({stats.SampleStddev(), kAnomalyStddevFloorOfMean * stats.mean(),
                                  kAnomalyStddevFloorMinor});
  const double z = (static_cast<double>(txn.amount_minor) - stats.mean()) / stddev;
  return z > rules_.anomaly_z_max ? Reason::kAmountAnomaly : Reason::kNone;
}

absl::Status FraudChecker::SaveState(std::string* out) const {
  out->clear();
  const size_t payload_offset = snapshot::BeginSnapshot(kSnapshotMagic, kSnapshotVersions.current, out);
  snapshot::ByteWriter writer(out);
  writer.Put(velocity_bucket_ns_);
  writer.Put(checks_);
  writer.Put(static_cast<uint32_t>(failures_.size()));
  for (uint64_t failures : failures_) writer.Put(failures);
  accounts_.Save(writer);
  snapshot::FinishSnapshot(payload_offset, out);
  return absl::OkStatus();
}

absl::Status FraudChecker::RestoreState(absl::string_view bytes) {
  const absl::StatusOr<snapshot::OpenedSnapshot> opened =
      snapshot::OpenSnapshot(bytes, kSnapshotMagic, kSnapshotVersions, kSnapshotWhat);
  if (!opened.ok()) return opened.status();
  snapshot::ByteReader in(opened->payload);
  const auto velocity_bucket_ns = in.Get<int64_t>();
  const auto checks = in.Get<uint64_t>();
  const auto failure_counters = in.Get<uint32_t>();
  if (failure_counters > failures_.size()) {
    // A newer build's reasons: this one could not count or report them.
    return snapshot::Invalid(kSnapshotWhat,
                             absl::StrFormat("%d failure counters, this build knows %d reasons",
                                             failure_counters, failures_.size()));
  }
  std::array<uint64_t, kReasonCount> failures{};
  for (uint32_t i = 0; i < failure_counters; ++i) failures[i] = in.Get<uint64_t>();
  if (!in.ok()) return snapshot::Invalid(kSnapshotWhat, "truncated before the account table");
  if (velocity_bucket_ns <= 0) {
    return snapshot::Invalid(kSnapshotWhat,
                             absl::StrFormat("velocity bucket of %d ns", velocity_bucket_ns));
  }
  snapshot::ByteReader table_in = in;
  if (absl::Status status = accounts_.CheckSaved(in, velocity_bucket_ns); !status.ok()) {
    return snapshot::WithContext(kSnapshotWhat, status);
  }
  if (in.remaining() != 0) {
    return snapshot::Invalid(kSnapshotWhat, absl::StrFormat("%d bytes after the account table",
                                                            in.remaining()));
  }
  accounts_.LoadSaved(table_in, velocity_bucket_ns);
  checks_ = checks;
  failures_ = failures;
  if (velocity_bucket_ns != velocity_bucket_ns_) accounts_.ClearVelocity();
  return absl::OkStatus();
}

}  // namespace vouch::fraud
