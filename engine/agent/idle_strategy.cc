#include "engine/agent/idle_strategy.h"

#include <sched.h>
#include <time.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vouch {
namespace {

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

void SleepNs(int64_t duration_ns) {
  const timespec ts{static_cast<time_t>(duration_ns / 1'000'000'000),
                    static_cast<long>(duration_ns % 1'000'000'000)};
  nanosleep(&ts, nullptr);
}

}  // namespace

absl::StatusOr<IdleKind> ParseIdleKind(std::string_view name) {
  if (name == "busy_spin") return IdleKind::kBusySpin;
  if (name == "yield") return IdleKind::kYield;
  if (name == "backoff_park") return IdleKind::kBackoffPark;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown idle strategy '", std::string(name), "' (expected busy_spin, yield or backoff_park)"));
}

std::string_view IdleKindName(IdleKind kind) {
  switch (kind) {
    case IdleKind::kBusySpin: return "busy_spin";
    case IdleKind::kYield: return "yield";
    case IdleKind::kBackoffPark: return "backoff_park";
  }
  return "unknown";
}

absl::Status IdleConfig::Validate() const {
  if (spins_max < 0) return absl::InvalidArgumentError("idle: spins_max must be >= 0");
  if (yields_max < 0) return absl::InvalidArgumentError("idle: yields_max must be >= 0");
  if (park_min_ns <= 0) return absl::InvalidArgumentError("idle: park_min_ns must be > 0");
  if (park_max_ns < park_min_ns) {
    return absl::InvalidArgumentError("idle: park_max_ns must be >= park_min_ns");
  }
  if (park_max_ns > 1'000'000'000) {
    return absl::InvalidArgumentError("idle: park_max_ns must be <= 1 s");
  }
  return absl::OkStatus();
}

IdleStrategy::IdleStrategy(const IdleConfig& config, Parker* parker)
    : config_(config), parker_(parker), park_ns_(config.park_min_ns) {}

void IdleStrategy::Reset() {
  idle_turns_ = 0;
  park_ns_ = config_.park_min_ns;
}

IdleStrategy::Phase IdleStrategy::phase() const {
  if (config_.kind == IdleKind::kBusySpin) return Phase::kSpinning;
  if (config_.kind == IdleKind::kYield) return Phase::kYielding;
  if (idle_turns_ < config_.spins_max) return Phase::kSpinning;
  if (idle_turns_ < config_.spins_max + config_.yields_max) return Phase::kYielding;
  return Phase::kParking;
}

int IdleStrategy::Idle(int work_count, absl::FunctionRef<int()> look_for_work) {
  if (work_count > 0) {
    Reset();
    return 0;
  }
  const Phase current = phase();
  if (idle_turns_ < config_.spins_max + config_.yields_max) ++idle_turns_;
  switch (current) {
    case Phase::kSpinning:
      CpuRelax();
      return 0;
    case Phase::kYielding:
      sched_yield();
      return 0;
    case Phase::kParking:
      return Park(look_for_work);
  }
  return 0;
}

int IdleStrategy::Park(absl::FunctionRef<int()> look_for_work) {
  if (parker_ == nullptr) {
    SleepNs(park_ns_);
  } else {
    parker_->PrepareToPark();
    if (const int found = look_for_work(); found > 0) {
      parker_->CancelPark();
      Reset();
      return found;
    }
    parker_->Park(park_ns_);
    parker_->CancelPark();  // A timeout leaves the word armed; producers need not wake us now.
  }
  park_ns_ = std::min(park_ns_ * 2, config_.park_max_ns);
  return 0;
}

}  // namespace vouch
