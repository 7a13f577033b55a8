#include "engine/testing/engine_test_peer.h"

namespace vouch {

void EngineTestPeer::StallVerifier(Engine& engine, VerifierId verifier, int64_t duration_ns) {
  const int slot = VerifierSlot(verifier);
  if (slot >= 0 && slot < engine.verifier_count_) engine.stages_[slot]->StallFor(duration_ns);
}

}  // namespace vouch
