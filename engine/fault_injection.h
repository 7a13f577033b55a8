// Fault injection that the shipped vouchd exposes (--fault_fraud_cost_ns, --fault_ledger_cost_ns),
// so that the overload soak (tests/tools/overload/overload_test.sh) can slow a verifier in a
// real server. It is not part of the embedding API (engine/engine.h); every other fault hook
// is test-only (engine/testing/engine_test_peer.h).
#ifndef VOUCH_ENGINE_FAULT_INJECTION_H_
#define VOUCH_ENGINE_FAULT_INJECTION_H_

#include <cstdint>

#include "engine/engine.h"
#include "engine/types/results.h"

namespace vouch {

// From now on `verifier` takes `cost_ns` of clock time per transaction, as a slow fraud service
// or ledger would (VerifierStage::SetCostPerTransaction); 0: back to full speed. Any thread.
void SlowVerifier(Engine& engine, VerifierId verifier, int64_t cost_ns);

}  // namespace vouch

#endif  // VOUCH_ENGINE_FAULT_INJECTION_H_
