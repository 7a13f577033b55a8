// EngineTestPeer: what tests, the simulation, the fuzzers and the demo may do to an engine that an
// embedder may not: fault injection (a verifier that stalls) and direct reads of state that a
// stage thread owns while the engine runs. The engine befriends this class; the target is
// testonly, so no shipped binary can link it. An embedder reads balances with
// Engine::ReadBalances (running or stopped) instead.
//
// Thread safety: StallVerifier, any thread once Start() returned (it posts the stall into the
// verifier's stage; VerifierStage::StallFor). Ledger and FraudChecker hand out the state the
// ledger and fraud stages write without any synchronisation: REQUIRES inline mode (read on the
// thread that steps the engine, between steps), or Stop() returned; or before Start().
#ifndef VOUCH_ENGINE_TESTING_ENGINE_TEST_PEER_H_
#define VOUCH_ENGINE_TESTING_ENGINE_TEST_PEER_H_

#include <cstdint>

#include "engine/engine.h"
#include "engine/internal/engine_impl.h"
#include "engine/journal/stage/journal_stage.h"
#include "engine/types/results.h"
#include "verifiers/fraud/fraud_checker.h"
#include "verifiers/fraud/fraud_verifier.h"
#include "engine/ledger/ledger.h"

namespace vouch {

class EngineTestPeer {
 public:
  // The verifier does no work for `duration_ns` from now (0: the stall ends now). Verdicts it
  // owes arrive after the stall, so past the deadline they are late (results.h).
  static void StallVerifier(Engine& engine, VerifierId verifier, int64_t duration_ns);

  // The live ledger and fraud checker (not the shadow ones). REQUIRES: inline mode, Stop()
  // returned, or Start() not called yet: no stage thread may be writing them.
  static const ledger::Ledger& Ledger(const Engine& engine) {
    return *EngineImpl::Of(engine).ledger_;
  }
  static const fraud::FraudChecker& FraudChecker(const Engine& engine) {
    // The engine's fraud verifier is always a FraudVerifier (EngineImpl::Init).
    return static_cast<const fraud::FraudVerifier&>(*EngineImpl::Of(engine).fraud_).checker();
  }
  // The journal stage (its acknowledged positions); null with ack policy memory. Any thread.
  static const JournalStage* Journal(const Engine& engine) {
    return EngineImpl::Of(engine).journal();
  }
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_TESTING_ENGINE_TEST_PEER_H_
