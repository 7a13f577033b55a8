// Time source for every stage.
//
// Thread safety: MonotonicClock is stateless and safe from any thread. ManualClock is for the
// inline deterministic mode and tests: Set/Advance and NowNs may race (the value is atomic), but
// a deterministic run advances it from the single stepping thread only.
#ifndef VOUCH_ENGINE_TYPES_CLOCK_H_
#define VOUCH_ENGINE_TYPES_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <ctime>

namespace vouch {

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds on a monotonic timeline; never decreases.
  virtual int64_t NowNs() const = 0;
};

class MonotonicClock final : public Clock {
 public:
  int64_t NowNs() const override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call.
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
  // The process-wide instance; Engine uses it unless Options names another clock.
  static MonotonicClock* Default();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 1'000'000'000) : now_ns_(start_ns) {}
  // relaxed: the value carries no other data; stages only compare times.
  int64_t NowNs() const override { return now_ns_.load(std::memory_order_relaxed); }
  void AdvanceNs(int64_t delta_ns) { now_ns_.fetch_add(delta_ns, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_ns_;
};

// Offset that turns this process's monotonic time into Unix time, for display only.
int64_t MonotonicToUnixOffsetNs();

// Unix time as ISO 8601 UTC with microseconds: "2026-11-23T16:55:45.778494Z".
std::string FormatUnixTimeNs(int64_t unix_ns);

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_CLOCK_H_
