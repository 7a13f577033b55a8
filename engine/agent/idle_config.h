// IdleConfig: how an agent waits on a turn without work (Options::idle); IdleStrategy
// (idle_strategy.h) carries it out. A plain value.
#ifndef VOUCH_ENGINE_AGENT_IDLE_CONFIG_H_
#define VOUCH_ENGINE_AGENT_IDLE_CONFIG_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vouch {

enum class IdleKind { kBusySpin, kYield, kBackoffPark };

// "busy_spin" | "yield" | "backoff_park"; kInvalidArgument names the accepted values.
absl::StatusOr<IdleKind> ParseIdleKind(std::string_view name);
std::string_view IdleKindName(IdleKind kind);

struct IdleConfig {
  // Default: does not burn a core, so it is safe with more agents than cores.
  IdleKind kind = IdleKind::kBackoffPark;
  int spins_max = 100;  // Backoff: idle turns that busy-spin.
  int yields_max = 50;  // Then idle turns that sched_yield.
  int64_t park_min_ns = 1'000;  // Then park, doubling from min to max.
  int64_t park_max_ns = 1'000'000;

  // kInvalidArgument for a negative count, a non-positive park time, or min > max.
  [[nodiscard]] absl::Status Validate() const;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_AGENT_IDLE_CONFIG_H_
