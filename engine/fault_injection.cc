#include "engine/fault_injection.h"

#include "engine/internal/engine_impl.h"

namespace vouch {

void SlowVerifier(Engine& engine, VerifierId verifier, int64_t cost_ns) {
  // Every Engine is an EngineImpl (Engine::Create makes only those).
  static_cast<EngineImpl&>(engine).SlowVerifier(verifier, cost_ns);
}

}  // namespace vouch
