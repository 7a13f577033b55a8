// Time source for every stage, and the offset that turns its time into Unix time.
//
// The engine reads a clock's UnixOffsetNs() once, when it is created, and takes from it every
// Unix time it journals or reports and the UTC day its daily limits charge. A MonotonicClock
// gives this process's real offset; a ManualClock gives a fixed one (settable), so that a
// deterministic run's UTC days and journal times do not depend on when or where it runs.
//
// Thread safety: MonotonicClock is stateless and safe from any thread. ManualClock is for the
// inline deterministic mode and tests: Set/Advance and NowNs may race (the values are atomic),
// but a deterministic run advances it from the single stepping thread only, and sets its offset
// before an engine uses it.
#ifndef VOUCH_ENGINE_TYPES_CLOCK_H_
#define VOUCH_ENGINE_TYPES_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <ctime>

namespace vouch {

// Offset that turns this process's monotonic time into Unix time (read once per process).
int64_t MonotonicToUnixOffsetNs();

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds on a monotonic timeline; never decreases.
  virtual int64_t NowNs() const = 0;
  // Add to NowNs() for Unix time in nanoseconds. Constant for the clock's life once an engine
  // uses it.
  virtual int64_t UnixOffsetNs() const { return MonotonicToUnixOffsetNs(); }
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
  // The Unix offset starts as this process's real one, fixed; SetUnixOffsetNs replaces it.
  explicit ManualClock(int64_t start_ns = 1'000'000'000)
      : now_ns_(start_ns), unix_offset_ns_(MonotonicToUnixOffsetNs()) {}
  // relaxed: the value carries no other data; stages only compare times.
  int64_t NowNs() const override { return now_ns_.load(std::memory_order_relaxed); }
  void AdvanceNs(int64_t delta_ns) { now_ns_.fetch_add(delta_ns, std::memory_order_relaxed); }
  // relaxed: one value, set before an engine reads it (at its creation).
  int64_t UnixOffsetNs() const override {
    return unix_offset_ns_.load(std::memory_order_relaxed);
  }
  // REQUIRES: no engine uses this clock yet (each reads the offset once, when created).
  void SetUnixOffsetNs(int64_t offset_ns) {
    unix_offset_ns_.store(offset_ns, std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> now_ns_;
  std::atomic<int64_t> unix_offset_ns_;
};

// Unix time as ISO 8601 UTC with microseconds: "2026-11-23T16:55:45.778494Z".
std::string FormatUnixTimeNs(int64_t unix_ns);

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_CLOCK_H_
