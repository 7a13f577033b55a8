// When the engine may return a confirmation (and emit an outcome): the durability promise.
#ifndef VOUCH_ENGINE_JOURNAL_STAGE_ACK_POLICY_H_
#define VOUCH_ENGINE_JOURNAL_STAGE_ACK_POLICY_H_

#include <string_view>

#include "absl/status/statusor.h"

namespace vouch {

enum class AckPolicy {
  kMemory,   // No journal: a crash loses what was in flight and the idempotency history.
  kWritten,  // After write(2): survives a crash of the process, not of the machine.
  kDurable,  // After fdatasync: survives a crash of the machine; syncs are shared (group commit).
};
absl::StatusOr<AckPolicy> ParseAckPolicy(std::string_view name);  // memory | written | durable
std::string_view AckPolicyName(AckPolicy policy);

}  // namespace vouch

#endif  // VOUCH_ENGINE_JOURNAL_STAGE_ACK_POLICY_H_
