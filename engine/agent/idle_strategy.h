// IdleStrategy: what an agent does on a turn where DoWork() found nothing.
//
// Thread safety: an IdleStrategy belongs to the one thread that runs its agent; it is not
// thread-safe. Its Parker may be shared with producers (see parker.h). IdleConfig (idle_config.h)
// is a plain value.
//
// Backoff (IdleKind::kBackoffPark), after each turn without work:
//   spin  : the first spins_max turns busy-spin with a pause instruction (wake-up latency ~ns);
//   yield : the next yields_max turns call sched_yield (lets another thread have the core);
//   park  : then every turn parks, for park_min_ns doubling up to park_max_ns per turn.
// A turn with work resets the backoff. When the next idle turn would park, the strategy has
// already armed the Parker (step 1 of its protocol), so the agent's next DoWork() is the re-check
// for work and a producer's Unpark() cannot be lost. Without a Parker, parking is a nanosleep.
#ifndef VOUCH_ENGINE_AGENT_IDLE_STRATEGY_H_
#define VOUCH_ENGINE_AGENT_IDLE_STRATEGY_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/agent/idle_config.h"
#include "engine/agent/parker.h"

namespace vouch {

// The backoff phase that the next Idle(0) runs. kBusySpin always spins; kYield always yields.
enum class IdlePhase { kSpin, kYield, kPark };

class IdleStrategy {
 public:
  // REQUIRES: config.Validate().ok(). `parker` may be null (parking then sleeps for the whole
  // timeout); otherwise it must outlive this strategy.
  IdleStrategy(const IdleConfig& config, Parker* parker);
  IdleStrategy(const IdleStrategy&) = delete;
  IdleStrategy& operator=(const IdleStrategy&) = delete;

  // Called after every DoWork() with its result. work_count > 0 resets the backoff; 0 spins,
  // yields or parks. REQUIRES: work_count >= 0.
  void Idle(int work_count);

  // Back to the start of the backoff, as after a turn with work.
  void Reset();

  // Observers, for tests and diagnostics.
  IdlePhase phase() const;
  int64_t park_ns() const { return park_ns_; }  // The next park's timeout.

 private:
  void Backoff();
  void Park();
  void ArmIfParkingNext();

  // Constant after construction.
  const IdleConfig config_;
  Parker* const parker_;

  // Backoff state.
  int idle_turns_ = 0;  // Idle turns since the last work, counted up to spins_max + yields_max.
  int64_t park_ns_ = 0;
  bool armed_ = false;  // This strategy armed parker_ and has not cancelled it since.
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_AGENT_IDLE_STRATEGY_H_
