#include "engine/engine_stats.h"

namespace vouch {

uint64_t EngineStats::rejected_total() const {
  uint64_t total = 0;
  for (uint64_t n : rejected) total += n;
  return total;
}

uint64_t EngineStats::busy_total() const {
  uint64_t total = 0;
  for (uint64_t n : busy) total += n;
  return total;
}

uint64_t EngineStats::outcomes_total() const {
  return outcomes[1] + outcomes[2] + outcomes[3];
}

uint64_t EngineStats::held_results_total() const {
  return held_results[1] + held_results[2] + held_results[3];
}

uint64_t EngineStats::unverified() const {
  const uint64_t done = outcomes_total() + held_results_total();
  return confirmed > done ? confirmed - done : 0;
}

}  // namespace vouch
