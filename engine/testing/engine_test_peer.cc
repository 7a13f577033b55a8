#include "engine/testing/engine_test_peer.h"

namespace vouch {

void EngineTestPeer::StallVerifier(Engine& engine, VerifierId verifier, int64_t duration_ns) {
  EngineImpl& impl = EngineImpl::Of(engine);
  const int slot = VerifierSlot(verifier);
  if (slot >= 0 && slot < impl.verifier_count_) impl.stages_[slot]->StallFor(duration_ns);
}

}  // namespace vouch
