// VerifierStage: the agent that runs one verifier. It walks the in-flight ring in sequence
// order, checks each published transaction and sends a Verdict to the reconciler.
//
// Thread safety: DoWork runs on the stage's own thread (or the inline stepping thread) and is
// the only code that touches the verifier's state, so verifiers are plain single-threaded
// classes. StallFor and SetCostPerTransaction may be called from any thread (fault injection for
// tests, the demo and the overload soak).
#ifndef VOUCH_ENGINE_VERIFY_VERIFIER_STAGE_H_
#define VOUCH_ENGINE_VERIFY_VERIFIER_STAGE_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/agent/agent.h"
#include "engine/agent/parker.h"
#include "engine/ring/in_flight_ring.h"
#include "engine/types/clock.h"
#include "engine/verify/queues.h"
#include "verifiers/fraud/fraud_checker.h"
#include "verifiers/ledger/ledger.h"

namespace vouch {

class VerifierStage : public Agent {
 public:
  int DoWork() final;
  std::string_view role_name() const final { return role_name_; }

  // The verifier does no work until clock time now + duration_ns (a stalled verifier).
  void StallFor(int64_t duration_ns);
  // From now on the verifier takes `cost_ns` of clock time per transaction, as a slow fraud
  // service or ledger would: its throughput is capped at 1e9 / cost_ns per second. It waits
  // (the stage idles) rather than computes, so the cap costs no CPU and the capacity it sets
  // does not depend on how busy the machine is. 0 turns it off.
  void SetCostPerTransaction(int64_t cost_ns);
  // Admission hints (Options::admission_backlog_max_ns), as of the stage's latest turn; any
  // thread. relaxed: hints, which publish nothing else.
  // When the oldest transaction this stage has not checked yet was confirmed; 0 when it has
  // checked everything published.
  int64_t backlog_since_ns() const { return backlog_since_ns_.load(std::memory_order_relaxed); }
  // Every sequence number below this one is checked.
  Sequence checked_below() const { return checked_below_.load(std::memory_order_relaxed); }
  // Time per transaction while work was waiting, measured over the latest window of at least
  // kRateWindowNs; 0 until measured. It is what a new transaction waits per one ahead of it.
  int64_t ns_per_check() const { return ns_per_check_.load(std::memory_order_relaxed); }
  static constexpr int64_t kRateWindowNs = 2'000'000;
  // The reconciler's parker, woken after verdicts are sent. Set before the stage runs.
  void SetDownstream(Parker* downstream) { downstream_ = downstream; }
  // The first sequence number to check (after recovery). REQUIRES: before the stage runs.
  void StartAt(Sequence first_seq) {
    next_ = first_seq;
    checked_below_.store(first_seq, std::memory_order_relaxed);  // relaxed: before it runs.
  }

 protected:
  VerifierStage(VerifierId verifier, std::string_view role_name, InFlightRing* ring,
                VerdictQueue* verdicts, const Clock* clock, int batch_max);
  int batch_max() const { return batch_max_; }
  // The next sequence number this stage will check. Stage thread only.
  Sequence next_seq() const { return next_; }
  // Work the stage does before checking new transactions; returns the work done.
  virtual int Housekeeping() { return 0; }
  // False while the verifier cannot take another transaction (back-pressure).
  virtual bool CanCheck() const { return true; }
  // Returns Reason::kNone to pass.
  virtual Reason Check(Sequence seq, const InFlightPayload& payload, int64_t now_ns) = 0;

 private:
  bool SendPending();
  // With a cost per transaction: how many transactions the slow service has room for now.
  int PacedLimit(int64_t now_ns, int64_t cost_ns);
  void PublishBacklog();
  // Times the turns that started with work waiting: their spacing over their checks is the
  // verifier's real pace (idle time would only dilute it).
  void MeasurePace(int64_t now_ns, bool backlogged, int checked);

  const VerifierId verifier_;
  const std::string_view role_name_;
  InFlightRing* const ring_;
  VerdictQueue* const verdicts_;
  const Clock* const clock_;
  const int batch_max_;
  Sequence next_ = 1;                    // Owned by the stage thread.
  Parker* downstream_ = nullptr;
  std::optional<Verdict> unsent_;        // A verdict the full queue refused; sent first next time.
  std::atomic<int64_t> stall_until_ns_{0};
  std::atomic<int64_t> cost_ns_{0};
  int64_t paced_until_ns_ = 0;  // Stage thread: when the slow service is free again.
  // Admission hints. Written by the stage thread only when they change, so an idle, spinning
  // stage does not keep the line that ingest threads read bouncing between cores.
  alignas(64) std::atomic<int64_t> backlog_since_ns_{0};
  std::atomic<Sequence> checked_below_{1};
  std::atomic<int64_t> ns_per_check_{0};
  int64_t pace_start_ns_ = 0;    // Stage thread: the open measuring window; 0 if none.
  uint64_t pace_checked_ = 0;    // Stage thread: checks since pace_start_ns_.
};

// Rule reloads: any thread posts new rules (PostRules); the stage thread applies them between
// two transactions, at the start of a turn, and records the first sequence number they judge.
// The mailbox is a mutex-guarded slot, checked on the hot path through one atomic flag
// (acquire: pairs with the poster's release; the rules are then visible under the mutex).
class FraudStage final : public VerifierStage {
 public:
  FraudStage(fraud::FraudChecker* checker, InFlightRing* ring, VerdictQueue* verdicts,
             const Clock* clock, int batch_max)
      : VerifierStage(VerifierId::kFraud, "vouch-fraud", ring, verdicts, clock, batch_max),
        checker_(checker) {}

  // Any thread. Returns the post's generation, for AppliedFrom.
  uint64_t PostRules(fraud::FraudRules rules) ABSL_LOCKS_EXCLUDED(mu_);
  // The first sequence number judged by the rules of `generation` (or a later post), once the
  // stage has applied them; waits up to `timeout`. nullopt if they are not applied by then.
  std::optional<Sequence> AppliedFrom(uint64_t generation, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  int Housekeeping() override;
  Reason Check(Sequence seq, const InFlightPayload& payload, int64_t now_ns) override {
    return checker_->Check(payload.txn, payload.confirmed_ns);
  }
  fraud::FraudChecker* const checker_;

  std::atomic<bool> rules_posted_{false};
  absl::Mutex mu_;
  std::optional<fraud::FraudRules> posted_ ABSL_GUARDED_BY(mu_);
  uint64_t posted_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t applied_generation_ ABSL_GUARDED_BY(mu_) = 0;
  Sequence applied_from_ ABSL_GUARDED_BY(mu_) = 0;
};

// Also applies the reconciler's settlements (commit or reverse), which it does first, so that
// reservations are freed before new ones are made.
class LedgerStage final : public VerifierStage {
 public:
  LedgerStage(ledger::Ledger* ledger, SettlementQueue* settlements, InFlightRing* ring,
              VerdictQueue* verdicts, const Clock* clock, int batch_max)
      : VerifierStage(VerifierId::kLedger, "vouch-ledger", ring, verdicts, clock, batch_max),
        ledger_(ledger),
        settlements_(settlements) {}

 private:
  int Housekeeping() override;
  bool CanCheck() const override { return ledger_->HasPendingRoom(); }
  Reason Check(Sequence seq, const InFlightPayload& payload, int64_t now_ns) override {
    return ledger_->Reserve(seq, payload.txn);
  }

  ledger::Ledger* const ledger_;
  SettlementQueue* const settlements_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_VERIFY_VERIFIER_STAGE_H_
