#include "engine/engine.h"

#include <memory>
#include <utility>

#include "engine/internal/engine_impl.h"

namespace vouch {

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(Options options) {
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  auto engine = std::make_unique<EngineImpl>(std::move(options));
  if (absl::Status status = engine->Init(); !status.ok()) return status;
  return std::unique_ptr<Engine>(std::move(engine));
}

Confirmation Engine::FinalHeldAnswer(const Confirmation& pending, const Outcome& outcome) {
  const bool verified = outcome.kind == OutcomeKind::kVerified;
  return {pending.id, verified ? ConfirmStatus::kConfirmed : ConfirmStatus::kRejected,
          outcome.reason, pending.seq, pending.deadline_ns, false, true, pending.ack};
}

}  // namespace vouch
