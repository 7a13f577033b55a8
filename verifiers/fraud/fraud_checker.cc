#include "verifiers/fraud/fraud_checker.h"

#include <algorithm>
#include <cassert>

namespace vouch::fraud {

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
  assert(now_ns >= 0);
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

}  // namespace vouch::fraud
