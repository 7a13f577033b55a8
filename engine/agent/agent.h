// Agent: one stage of the pipeline (a verifier, reconciliation), in the style of Aeron's agents.
//
// Thread safety: an Agent is driven by one thread at a time: its AgentRunner thread, or the engine's
// inline mode, which calls DoWork() directly and step by step for deterministic tests. Whatever
// producers share with it (queues) carries its own synchronization.
#ifndef VOUCH_ENGINE_AGENT_AGENT_H_
#define VOUCH_ENGINE_AGENT_AGENT_H_

#include <cstddef>
#include <string_view>

namespace vouch {

// Linux limits a thread name to 15 characters plus the terminating NUL.
inline constexpr size_t kThreadNameLengthMax = 15;

class Agent {
 public:
  virtual ~Agent() = default;

  // Does a bounded amount of work (e.g. drains at most a batch) and returns how much it did;
  // 0 means it found nothing to do, which lets the idle strategy back off. Never blocks.
  // When the agent is woken by a Parker, this is also the "is there work?" check of the parking
  // protocol; loads of any memory order will do (see parker.h).
  virtual int DoWork() = 0;

  // The thread name, e.g. "vouch-fraud"; at most kThreadNameLengthMax characters.
  virtual std::string_view role_name() const = 0;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_AGENT_AGENT_H_
