// IdleStrategy: what an agent thread does after a turn of DoWork() found nothing.
//
//   kBusySpin     spin with a pause instruction: lowest wake-up latency, burns a core.
//   kYield        sched_yield: gives the core to other runnable threads, still 100% busy.
//   kBackoffPark  spin spins_max turns, then yield yields_max turns, then park on the Parker
//                 with a timeout doubling from park_min_ns to park_max_ns. The default: on a
//                 machine with fewer cores than threads it costs nothing while idle, and a
//                 producer's Unpark() ends the park at once.
//
// Thread safety: an IdleStrategy belongs to one agent thread.
#ifndef VOUCH_ENGINE_AGENT_IDLE_STRATEGY_H_
#define VOUCH_ENGINE_AGENT_IDLE_STRATEGY_H_

#include <cstdint>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/agent/parker.h"

namespace vouch {

enum class IdleKind { kBusySpin, kYield, kBackoffPark };

absl::StatusOr<IdleKind> ParseIdleKind(std::string_view name);  // busy_spin|yield|backoff_park
std::string_view IdleKindName(IdleKind kind);

struct IdleConfig {
  IdleKind kind = IdleKind::kBackoffPark;
  int spins_max = 100;
  int yields_max = 50;
  int64_t park_min_ns = 1'000;
  int64_t park_max_ns = 1'000'000;

  absl::Status Validate() const;
};

class IdleStrategy {
 public:
  enum class Phase { kSpinning, kYielding, kParking };

  // `parker` may be null: parking then sleeps for the timeout without early wake-up.
  IdleStrategy(const IdleConfig& config, Parker* parker);

  // Called after each turn with the work it did. Work resets the backoff. With no work it
  // spins, yields or parks. Before parking it arms the Parker and calls `look_for_work` once
  // more (the parking protocol in parker.h); returns the work that call found (0 otherwise).
  int Idle(int work_count, absl::FunctionRef<int()> look_for_work);
  void Reset();

  Phase phase() const;
  int64_t park_ns() const { return park_ns_; }

 private:
  int Park(absl::FunctionRef<int()> look_for_work);

  const IdleConfig config_;
  Parker* const parker_;
  int idle_turns_ = 0;
  int64_t park_ns_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_AGENT_IDLE_STRATEGY_H_
