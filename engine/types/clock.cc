#include "engine/types/clock.h"

#include <ctime>

#include "absl/strings/str_format.h"

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

std::string FormatUnixTimeNs(int64_t unix_ns) {
  const time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm utc;
  gmtime_r(&seconds, &utc);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return absl::StrFormat("%s.%06dZ", text, static_cast<int>(unix_ns % 1'000'000'000 / 1000));
}

}  // namespace vouch
