#include "engine/types/clock.h"

namespace vouch {

MonotonicClock* MonotonicClock::Default() {
  static MonotonicClock clock;
  return &clock;
}

int64_t MonotonicToUnixOffsetNs() {
  static const int64_t offset_ns = [] {
    timespec real, mono;
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    return (int64_t{real.tv_sec} - mono.tv_sec) * 1'000'000'000 + (real.tv_nsec - mono.tv_nsec);
  }();
  return offset_ns;
}

}  // namespace vouch
