// Verifier: the contract for an embedder's own check (a fraud-scoring model, a sanctions list,
// a KYC limit, a risk engine), run by the engine next to its built-in fraud and ledger
// verifiers. Register it in Options::verifiers; the engine gives it its own stage thread,
// named "vouch-<name>", and hands it every confirmed transaction in sequence order.
//
// What a verdict does depends on the verifier's policy:
//   - kRequired: a failure decides the transaction LATE_FAILED(this verifier,
//     kVerifierRejected, code); the outcome VERIFIED waits for this verifier's pass; a verdict
//     that misses the deadline makes it LATE_TIMEOUT(this verifier) (the first missing one, in
//     verifier order, when several are missing).
//   - kAdvisory: a failure is recorded (Query shows the verdict) and counted
//     (vouch_verifier_failures_total{verifier}), and decides nothing; the outcome does not wait
//     for it.
//   - kShadow: as advisory, and each verdict is also compared with the outcome that was
//     decided without it (vouch_shadow_verdicts_total{verifier, comparison}): agreed (both
//     passed, or both failed), would_have_failed (it failed a VERIFIED transaction) or
//     would_have_passed (it passed one that failed or timed out). For trying a check, or a
//     candidate rule set (Options::shadow_fraud_rules), on live traffic before it decides.
// With hold_account_on_failure, a failure that decides (kRequired) also puts the source
// account on hold, as a fraud failure does (and, with Options::fail_in_flight_on_hold, fails
// the account's other undecided transactions).
//
// Thread safety: Check is called on the verifier's own stage thread only, one transaction at a
// time, so a verifier is a plain single-threaded class; it must not call back into the engine.
// A verifier that takes longer than the load allows builds a backlog, which the deadline turns
// into LATE_TIMEOUT and Options::admission_backlog_max_ns into BUSY at ingest: it cannot wedge
// the pipeline, but a Check that never returns stops its stage (and, once the in-flight ring is
// full, new confirmations).
//
// After a restart, a verifier is asked again about every transaction the journal left
// undecided: it keeps no state the engine restores, so a stateful check must rebuild its own.
// The engine journals each outcome with the verifier's number (VerifierId, from 3 in
// registration order) and code: keep the order of Options::verifiers across restarts.
#ifndef VOUCH_ENGINE_VERIFY_VERIFIER_H_
#define VOUCH_ENGINE_VERIFY_VERIFIER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/types/transaction.h"

namespace vouch {

class Verifier {
 public:
  virtual ~Verifier() = default;
  // 0 passes the transaction; any other value fails it with that reason code, in this
  // verifier's own namespace (1..65535): it is carried in Outcome::verifier_code, the journal,
  // Query and the wire. `confirmed_ns` is engine (monotonic) time.
  virtual uint16_t Check(const Transaction& txn, int64_t confirmed_ns) = 0;
};

// Where an AsyncVerifier answers. Thread safety: any thread, any order, lock-free.
class VerdictSink {
 public:
  virtual ~VerdictSink() = default;
  // The verdict on `seq` (as handed to AsyncVerifier::Begin): 0 passes, any other value fails
  // with that code. False when the engine's queue of answers is full (back-pressure: answer
  // again shortly; meanwhile the deadline runs). An answer after the outcome is a late verdict,
  // and a second answer for the same seq, or one for a seq never handed out, is ignored and
  // counted (EngineStats::ignored_answers).
  [[nodiscard]] virtual bool Answer(uint64_t seq, uint16_t code) = 0;
};

// An asynchronous verifier: a check that answers later (a scoring service, a sanctions screen
// that takes hundreds of milliseconds). The engine hands it each confirmed transaction, in
// sequence order, on the verifier's stage thread; the verifier answers through the sink from
// any thread, in any order. One that never answers cannot wedge the pipeline: at the deadline a
// required verifier's missing verdict decides LATE_TIMEOUT, and the transaction's ring entry
// retires without it (the engine never waits for an answer to free memory).
class AsyncVerifier {
 public:
  virtual ~AsyncVerifier() = default;
  // Must not block. `txn` is valid only during the call: copy what the check needs. `sink`
  // outlives the engine's Stop().
  virtual void Begin(uint64_t seq, const Transaction& txn, int64_t confirmed_ns,
                     VerdictSink& sink) = 0;
};

// A verifier whose verdicts depend on what it has seen (counts per account, learnt baselines) and
// on rules an operator may replace while the engine runs. The engine's built-in fraud verifier is
// one (verifiers/fraud/fraud_verifier.h), and the engine drives it through this interface only.
// The engine keeps such a verifier's promise across restarts: it journals each rule set at the
// sequence number it judges from, snapshots the verifier's state, and on recovery restores the
// newest snapshot's state, then replays every decided transaction the journal holds after it, in
// sequence order at its original time, switching rules exactly where the live verifier did. So a
// restarted engine judges the undecided transactions as if it had never stopped.
//
// Thread safety: as Verifier, one thread at a time per instance (the stage thread; recovery and
// the snapshot thread each use an instance of their own).
class StatefulVerifier {
 public:
  virtual ~StatefulVerifier() = default;
  // As Verifier::Check: 0 passes, any other value fails with that code.
  virtual uint16_t Check(const Transaction& txn, int64_t confirmed_ns) = 0;
  // Recovery and the snapshot thread: a transaction the journal holds as decided, at its
  // original time. The state moves as Check would move it; no verdict is needed.
  virtual void Replay(const Transaction& txn, int64_t confirmed_ns) {
    (void)Check(txn, confirmed_ns);
  }
  // Rules, as the text the engine journals. InvalidArgument for text that does not parse or
  // whose rules are not valid.
  [[nodiscard]] virtual absl::Status ValidateRules(absl::string_view text) const = 0;
  // Judges by these rules from the next Check on. REQUIRES: ValidateRules(text) is OK. A switch
  // may depend on the rules it leaves (new rules may clear state): the engine calls it exactly
  // where the live verifier switched, live and on replay alike. Not hot: it may allocate.
  virtual void ApplyRules(absl::string_view text) = 0;
  // The state, as bytes the engine stores inside its snapshot (which carries the checksum).
  [[nodiscard]] virtual absl::Status SaveState(std::string* out) const = 0;
  // Replaces the state with what SaveState wrote. REQUIRES: the rules it was saved under were
  // applied first. InvalidArgument for bytes it cannot read.
  [[nodiscard]] virtual absl::Status RestoreState(absl::string_view state) = 0;
};

enum class VerifierPolicy : uint8_t {
  kRequired = 1,  // A failure decides LATE_FAILED; VERIFIED waits for its pass.
  kAdvisory = 2,  // A failure is recorded and counted; it decides nothing.
  kShadow = 3,    // As advisory, and compared with the outcome decided without it.
};

// One of Options::verifiers.
struct VerifierSpec {
  // 1 to 32 characters of [a-z0-9_], starting with a letter, unique, and not "fraud", "ledger"
  // or "none": the metrics' verifier label, and the stage's role ("vouch-" + name, cut to the
  // 15 characters a Linux thread name holds).
  std::string name;
  VerifierPolicy policy = VerifierPolicy::kRequired;
  bool hold_account_on_failure = false;
  int cpu = -1;  // The CPU its stage is pinned to (-1: unpinned), as StageCpus.
  // Exactly one of the two. Shared so that Options stays copyable; the engine calls either only
  // from the verifier's stage thread.
  std::shared_ptr<Verifier> verifier;
  std::shared_ptr<AsyncVerifier> async_verifier;  // Answers later (see AsyncVerifier).
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_VERIFY_VERIFIER_H_
