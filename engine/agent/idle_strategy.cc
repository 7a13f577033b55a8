#include "engine/agent/idle_strategy.h"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <utility>

#include "absl/strings/str_format.h"

namespace vouch {
namespace {

// The one table that ParseIdleKind and IdleKindName share.
constexpr std::array<std::pair<IdleKind, std::string_view>, 3> kIdleKindNames = {{
    {IdleKind::kBusySpin, "busy_spin"},
    {IdleKind::kYield, "yield"},
    {IdleKind::kBackoffPark, "backoff_park"},
}};

// Tells the core this is a spin-wait: saves power and frees the sibling hyper-thread.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

void Sleep(int64_t duration_ns) {
  const timespec duration = {.tv_sec = static_cast<time_t>(duration_ns / 1'000'000'000),
                             .tv_nsec = static_cast<long>(duration_ns % 1'000'000'000)};
  nanosleep(&duration, nullptr);  // An early return (EINTR) is just a shorter idle turn.
}

}  // namespace

absl::StatusOr<IdleKind> ParseIdleKind(std::string_view name) {
  for (const auto& [kind, kind_name] : kIdleKindNames) {
    if (name == kind_name) return kind;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown idle strategy '%s'; expected busy_spin, yield or backoff_park", name));
}

std::string_view IdleKindName(IdleKind kind) {
  for (const auto& [known_kind, kind_name] : kIdleKindNames) {
    if (kind == known_kind) return kind_name;
  }
  assert(false && "IdleKind out of range");
  return "unknown";
}

absl::Status IdleConfig::Validate() const {
  if (spins_max < 0 || yields_max < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "idle: spins_max (%d) and yields_max (%d) must be >= 0", spins_max, yields_max));
  }
  if (park_min_ns <= 0 || park_min_ns > park_max_ns) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "idle: need 0 < park_min_ns (%d) <= park_max_ns (%d)", park_min_ns, park_max_ns));
  }
  return absl::OkStatus();
}

IdleStrategy::IdleStrategy(const IdleConfig& config, Parker* parker)
    : config_(config), parker_(parker) {
  assert(config_.Validate().ok());
  Reset();
}

void IdleStrategy::Idle(int work_count) {
  assert(work_count >= 0);
  if (work_count > 0) {
    // A busy agent calls this every turn: skip the reset when there is nothing to reset.
    if (idle_turns_ != 0 || park_ns_ != config_.park_min_ns || armed_) Reset();
    return;
  }
  switch (config_.kind) {
    case IdleKind::kBusySpin:
      CpuRelax();
      return;
    case IdleKind::kYield:
      sched_yield();
      return;
    case IdleKind::kBackoffPark:
      Backoff();
      return;
  }
}

void IdleStrategy::Reset() {
  idle_turns_ = 0;
  park_ns_ = config_.park_min_ns;
  if (armed_ && phase() != IdlePhase::kPark) {
    parker_->CancelPark();
    armed_ = false;
  }
  ArmIfParkingNext();  // With spins_max = yields_max = 0 the very next idle turn parks.
}

IdlePhase IdleStrategy::phase() const {
  switch (config_.kind) {
    case IdleKind::kBusySpin:
      return IdlePhase::kSpin;
    case IdleKind::kYield:
      return IdlePhase::kYield;
    case IdleKind::kBackoffPark:
      break;
  }
  if (idle_turns_ < config_.spins_max) return IdlePhase::kSpin;
  if (idle_turns_ - config_.spins_max < config_.yields_max) return IdlePhase::kYield;
  return IdlePhase::kPark;
}

void IdleStrategy::Backoff() {
  switch (phase()) {
    case IdlePhase::kSpin:
      CpuRelax();
      ++idle_turns_;
      break;
    case IdlePhase::kYield:
      sched_yield();
      ++idle_turns_;
      break;
    case IdlePhase::kPark:
      Park();
      break;
  }
  ArmIfParkingNext();
}

void IdleStrategy::Park() {
  if (parker_ == nullptr) {
    Sleep(park_ns_);
  } else {
    assert(armed_);
    parker_->Park(park_ns_);
  }
  // Doubling, clamped without overflow.
  park_ns_ = park_ns_ > config_.park_max_ns / 2 ? config_.park_max_ns : park_ns_ * 2;
}

// Step 1 of the Parker protocol: arm before the DoWork() that precedes a park, and again after
// every park, because a wake-up (or timeout) is followed by another look for work.
void IdleStrategy::ArmIfParkingNext() {
  if (parker_ == nullptr || phase() != IdlePhase::kPark) return;
  parker_->PrepareToPark();
  armed_ = true;
}

}  // namespace vouch
