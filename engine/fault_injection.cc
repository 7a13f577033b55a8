#include "engine/fault_injection.h"

#include "engine/internal/engine_impl.h"

namespace vouch {

void SlowVerifier(Engine& engine, VerifierId verifier, int64_t cost_ns) {
  EngineImpl::Of(engine).SlowVerifier(verifier, cost_ns);
}

}  // namespace vouch
