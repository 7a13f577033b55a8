// DailyUsage: how much one account has spent today, against its daily limits
// (AccountLimits::daily_minor_max and daily_count_max).
//
// A day is a UTC calendar day (Unix time / 86,400 s), so every limit resets at 00:00 UTC: a
// rule a customer can read on a statement, and the same on every replica and after a restart.
// A transaction is charged to the day it was received in, once, on the confirm path, before
// it is sequenced; it stays charged whatever its outcome (a late failure does not give the
// headroom back: the money may have left for a moment, and a limit is a bound on exposure).
// A refusal after the charge (BUSY for a full ring) takes it back.
//
// Design: two words, each packing the day with its counter: amount = day << 48 | minor
// (48 bits: up to 2.8e14 minor units a day), count = day << 48 | transactions. TryCharge moves
// each with a CAS loop from what it read: a word of an older day counts as 0 (the day rolled
// over), so no reset pass is needed. The amount is charged first; if the count then refuses,
// the amount is taken back (while its day is still the same). An admitted charge therefore
// never takes either counter past its limit; two transactions racing for the last unit of
// headroom may both be refused, as with the risk caps (engine/ingest/risk_table.h).
//
// Thread safety: every method from any thread, lock-free. Memory order: relaxed everywhere;
// the words publish no other data, and each CAS is on one word.
#ifndef VOUCH_ENGINE_ACCOUNTS_DAILY_USAGE_H_
#define VOUCH_ENGINE_ACCOUNTS_DAILY_USAGE_H_

#include <atomic>
#include <cstdint>
#include <optional>

namespace vouch {

class DailyUsage {
 public:
  // Largest daily amount limit (the 48-bit counter never overflows below it).
  static constexpr int64_t kMinorMax = (int64_t{1} << 47) - 1;
  static constexpr uint32_t kSecondsPerDay = 86'400;

  enum class Charge : uint8_t { kCharged, kOverAmount, kOverCount };
  struct ChargeResult {
    Charge charge;
    uint32_t day = 0;  // kCharged: the day charged (what Refund takes back).
  };

  // The UTC day of a Unix time in nanoseconds.
  static uint32_t DayOf(int64_t unix_ns) {
    return static_cast<uint32_t>(unix_ns / (int64_t{kSecondsPerDay} * 1'000'000'000));
  }

  // Charges one transaction of `amount_minor` to `day` unless that would take the day's amount
  // past `minor_max` or its count past `count_max` (0: no such limit). A word already on a later
  // day (another thread's clock read crossed midnight first) is charged on that day.
  // REQUIRES: 0 < amount_minor <= kMinorMax; minor_max <= kMinorMax.
  ChargeResult TryCharge(uint32_t day, int64_t amount_minor, int64_t minor_max,
                         uint32_t count_max);
  // Charges without checking: recovery replays what was confirmed before a restart.
  void ChargeUnchecked(uint32_t day, int64_t amount_minor);
  // Takes back a charge of `amount_minor` made on `day` (ChargeResult::day), from each word
  // still on that day.
  void Refund(uint32_t day, int64_t amount_minor);

  // What `day` has been charged so far (0 for a word on another day).
  int64_t minor_on(uint32_t day) const;
  uint64_t count_on(uint32_t day) const;

  // Snapshots: the two words as they are, and back.
  uint64_t amount_word() const { return amount_.load(std::memory_order_relaxed); }
  uint64_t count_word() const { return count_.load(std::memory_order_relaxed); }
  void Restore(uint64_t amount_word, uint64_t count_word) {
    amount_.store(amount_word, std::memory_order_relaxed);
    count_.store(count_word, std::memory_order_relaxed);
  }

 private:
  static constexpr int kDayShift = 48;
  static constexpr uint64_t kValueMask = (uint64_t{1} << kDayShift) - 1;
  static uint32_t WordDay(uint64_t word) { return static_cast<uint32_t>(word >> kDayShift); }
  static uint64_t WordValue(uint64_t word) { return word & kValueMask; }
  static uint64_t Pack(uint32_t day, uint64_t value) {
    return (uint64_t{day} << kDayShift) | value;
  }
  // Adds `delta` to `word` on `day` (or the word's later day) unless the result passes `max`
  // (0: no max) or the counter's 48 bits. The day charged, or nullopt if it would pass.
  static std::optional<uint32_t> TryAdd(std::atomic<uint64_t>& word, uint32_t day,
                                        uint64_t delta, uint64_t max);
  static void Subtract(std::atomic<uint64_t>& word, uint32_t day, uint64_t delta);

  std::atomic<uint64_t> amount_{0};
  std::atomic<uint64_t> count_{0};
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_ACCOUNTS_DAILY_USAGE_H_
