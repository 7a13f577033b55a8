#include "engine/accounts/daily_usage.h"

#include <algorithm>
#include <cassert>

namespace vouch {

std::optional<uint32_t> DailyUsage::TryAdd(std::atomic<uint64_t>& word, uint32_t day,
                                           uint64_t delta, uint64_t max) {
  uint64_t seen = word.load(std::memory_order_relaxed);  // relaxed: see the header.
  for (;;) {
    const uint32_t seen_day = WordDay(seen);
    const uint32_t charge_day = std::max(day, seen_day);
    const uint64_t used = seen_day == charge_day ? WordValue(seen) : 0;
    const uint64_t next = used + delta;
    if ((max != 0 && next > max) || next > kValueMask) return std::nullopt;
    if (word.compare_exchange_weak(seen, Pack(charge_day, next), std::memory_order_relaxed)) {
      return charge_day;
    }
  }
}

void DailyUsage::Subtract(std::atomic<uint64_t>& word, uint32_t day, uint64_t delta) {
  uint64_t seen = word.load(std::memory_order_relaxed);  // relaxed: see the header.
  // A word on a later day has forgotten the charge already.
  while (WordDay(seen) == day) {
    assert(WordValue(seen) >= delta && "a refund follows its charge");
    if (word.compare_exchange_weak(seen, Pack(day, WordValue(seen) - delta),
                                   std::memory_order_relaxed)) {
      return;
    }
  }
}

DailyUsage::ChargeResult DailyUsage::TryCharge(uint32_t day, int64_t amount_minor,
                                               int64_t minor_max, uint32_t count_max) {
  assert(amount_minor > 0 && amount_minor <= kMinorMax && minor_max <= kMinorMax);
  const auto amount = static_cast<uint64_t>(amount_minor);
  const std::optional<uint32_t> amount_day =
      TryAdd(amount_, day, amount, static_cast<uint64_t>(minor_max));
  if (!amount_day.has_value()) return {Charge::kOverAmount};
  if (!TryAdd(count_, *amount_day, 1, count_max).has_value()) {
    Subtract(amount_, *amount_day, amount);
    return {Charge::kOverCount};
  }
  return {Charge::kCharged, *amount_day};
}

void DailyUsage::ChargeUnchecked(uint32_t day, int64_t amount_minor) {
  (void)TryAdd(amount_, day, static_cast<uint64_t>(amount_minor), 0);
  (void)TryAdd(count_, day, 1, 0);
}

void DailyUsage::Refund(uint32_t day, int64_t amount_minor) {
  Subtract(amount_, day, static_cast<uint64_t>(amount_minor));
  Subtract(count_, day, 1);
}

int64_t DailyUsage::minor_on(uint32_t day) const {
  const uint64_t word = amount_.load(std::memory_order_relaxed);
  return WordDay(word) == day ? static_cast<int64_t>(WordValue(word)) : 0;
}

uint64_t DailyUsage::count_on(uint32_t day) const {
  const uint64_t word = count_.load(std::memory_order_relaxed);
  return WordDay(word) == day ? WordValue(word) : 0;
}

}  // namespace vouch
