// VerifierStage: the agent that runs one verifier. It walks the in-flight ring in sequence
// order, checks each published transaction and sends a Verdict to the reconciler.
//
// Thread safety: DoWork runs on the stage's own thread (or the inline stepping thread) and is
// the only code that touches the verifier's state, so verifiers are plain single-threaded
// classes. StallFor and SetCostPerTransaction may be called from any thread (fault injection for
// tests, the demo and the overload soak). A stall stops verification, not the thread: Mailbox()
// requests (LedgerStage's balance reads) are still served, at the start of every turn.
#ifndef VOUCH_ENGINE_VERIFY_VERIFIER_STAGE_H_
#define VOUCH_ENGINE_VERIFY_VERIFIER_STAGE_H_

#include <atomic>
#include <cassert>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/agent/agent.h"
#include "engine/agent/parker.h"
#include "engine/ring/in_flight_ring.h"
#include "engine/types/balances.h"
#include "engine/types/clock.h"
#include "concurrentqueue/concurrentqueue.h"
#include "engine/verify/queues.h"
#include "engine/verify/rules_handoff.h"
#include "engine/verify/verifier.h"
#include "engine/accounts/account_directory.h"
#include "engine/ledger/ledger.h"

namespace vouch {

// A stage's judgement of one transaction: reason kNone passes it. `code` is an embedder's
// verifier's own reason code (reason kVerifierRejected); 0 for the built-in verifiers.
struct Judgement {
  Reason reason = Reason::kNone;
  uint16_t code = 0;
  bool deferred = false;  // No verdict now: an AsyncVerifier answers later.
};

class VerifierStage : public Agent {
 public:
  int DoWork() final;
  std::string_view role_name() const final { return role_name_; }

  // The verifier does no work until clock time now + duration_ns (a stalled verifier).
  void StallFor(int64_t duration_ns);
  // From now on the verifier takes `cost_ns` of clock time per transaction, as a slow fraud
  // service or ledger would: its throughput is capped at 1e9 / cost_ns per second, and a
  // transaction's verdict comes no sooner than cost_ns after it arrived and after the one
  // before it was done (idle time banks no credit, so a burst is charged in full). It waits
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
    OnStartAt(first_seq);
  }

 protected:
  VerifierStage(VerifierId verifier, std::string role_name, InFlightRing* ring,
                VerdictQueue* verdicts, const Clock* clock, int batch_max);
  int batch_max() const { return batch_max_; }
  VerifierId verifier() const { return verifier_; }
  const Clock* clock() const { return clock_; }
  VerdictQueue* verdicts() const { return verdicts_; }
  // The next sequence number this stage will check. Stage thread only.
  Sequence next_seq() const { return next_; }
  // Wakes the reconciler (a rule reload it waits for is decided).
  void WakeDownstream() const {
    if (downstream_ != nullptr) downstream_->Unpark();
  }
  // Requests served at the start of every turn, stalled or not; returns the work done.
  virtual int Mailbox() { return 0; }
  virtual void OnStartAt(Sequence /*first_seq*/) {}
  // Work the stage does before checking new transactions; returns the work done.
  virtual int Housekeeping() { return 0; }
  // False while the verifier cannot take another transaction (back-pressure).
  virtual bool CanCheck() const { return true; }
  // `entry` is published and not freed before the verdict.
  virtual Judgement Check(Sequence seq, InFlightEntry& entry, int64_t now_ns) = 0;

 private:
  bool SendPending();
  // With a cost per transaction (0: none): whether the slow service has finished `payload` by
  // now_ns; if so, it is charged to the service, which is busy until then.
  bool PacedReady(const InFlightPayload& payload, int64_t now_ns, int64_t cost_ns);
  void PublishBacklog();
  // Times the turns that started with work waiting: their spacing over their checks is the
  // verifier's real pace (idle time would only dilute it).
  void MeasurePace(int64_t now_ns, bool backlogged, int checked);

  const VerifierId verifier_;
  const std::string role_name_;  // "vouch-<name>", at most kThreadNameLengthMax characters.
  InFlightRing* const ring_;
  VerdictQueue* const verdicts_;
  const Clock* const clock_;
  const int batch_max_;
  Sequence next_ = 1;                    // Owned by the stage thread.
  Parker* downstream_ = nullptr;
  std::optional<Verdict> unsent_;        // A verdict the full queue refused; sent first next time.
  std::atomic<int64_t> stall_until_ns_{0};
  std::atomic<int64_t> cost_ns_{0};
  int64_t paced_until_ns_ = 0;  // Stage thread: when the slow service finished its latest check.
  // Admission hints. Written by the stage thread only when they change, so an idle, spinning
  // stage does not keep the line that ingest threads read bouncing between cores.
  alignas(64) std::atomic<int64_t> backlog_since_ns_{0};
  std::atomic<Sequence> checked_below_{1};
  std::atomic<int64_t> ns_per_check_{0};
  int64_t pace_start_ns_ = 0;    // Stage thread: the open measuring window; 0 if none.
  uint64_t pace_checked_ = 0;    // Stage thread: checks since pace_start_ns_.
};

// Rule reloads (rules_handoff.h): the stage takes posted rules at the start of a turn (Mailbox,
// stalled or not), picks the sequence number F they judge from, and applies them just before it
// judges F. The hot path pays one branch per transaction on stage-local state, and one atomic
// load per turn (seq_cst: the handoff's protocol).
//
// It runs the built-in fraud verifier, through the StatefulVerifier contract only (verifier.h):
// the verifier's codes are the fraud reasons' numbers (reason.h), which the built-in verifier keeps.
class FraudStage final : public VerifierStage {
 public:
  // `verifier` outlives the stage.
  FraudStage(StatefulVerifier* verifier, InFlightRing* ring, VerdictQueue* verdicts,
             const Clock* clock, int batch_max, RulesHandoff* rules)
      : VerifierStage(VerifierId::kFraud, "vouch-fraud", ring, verdicts, clock, batch_max),
        verifier_(verifier),
        rules_(rules) {}

  // The start-up rules, which judge from `from` (the first sequence number this process
  // decides). Before the stage runs. Like a reload they apply just before the stage judges
  // `from`, so the checker keeps the recovered rules, and the state the journal gives, until then.
  // REQUIRES: verifier->ValidateRules(text) is OK.
  void StartWith(Sequence from, std::string text) {
    assert(pending_.empty());
    pending_.push_back({from, std::move(text)});
  }

 private:
  struct PendingRules {
    Sequence from;
    std::string text;  // Validated.
  };
  int Mailbox() override ABSL_LOCKS_EXCLUDED(rules_->mu);
  Judgement Check(Sequence seq, InFlightEntry& entry, int64_t now_ns) override {
    while (!pending_.empty() && seq >= pending_.front().from) {
      verifier_->ApplyRules(pending_.front().text);
      pending_.pop_front();
    }
    return {static_cast<Reason>(verifier_->Check(entry.payload.txn, entry.payload.confirmed_ns))};
  }
  StatefulVerifier* const verifier_;
  RulesHandoff* const rules_;
  // Stage thread: taken, not applied yet; strictly ascending from. Rules taken for the same F
  // replace one another, as a replay's do (Replayer::ApplyRules): a switch of rules depends on
  // the rules it leaves (a new velocity window clears the counts), so the stage must not pass
  // through rules that the replay skips.
  std::deque<PendingRules> pending_;
};

// Also applies the reconciler's settlements (commit or reverse), which it does first, so that
// reservations are freed before new ones are made. It never reserves a transaction that is
// already decided: it takes the entry's LedgerGate first, and a closed gate means "decided".
//
// Balance reads: any thread posts a read into one of kBalanceReadSlots mutex-guarded slots and
// waits; the stage serves every posted read at the start of its next turn, stalled or not, so
// each one sees the ledger between two postings (consistent: per currency, the balances and
// clearing sum to the total). The hot path pays one atomic load per turn (reads_posted_,
// acquire, paired with the poster's release store before it unparks the stage; the request
// itself is then read under the mutex). A caller that times
// out takes its request back under the mutex, so the stage never writes into a buffer that is
// gone.
class LedgerStage final : public VerifierStage {
 public:
  LedgerStage(ledger::Ledger* ledger, SettlementQueue* settlements, InFlightRing* ring,
              VerdictQueue* verdicts, const Clock* clock, int batch_max)
      : VerifierStage(VerifierId::kLedger, "vouch-ledger", ring, verdicts, clock, batch_max),
        ledger_(ledger),
        settlements_(settlements) {}

  // Any thread. Reads `accounts` (empty: every account, up to kBalanceReadAccountsMax; unknown
  // ids are left out) into *out. `kick` runs after the post, outside the lock: it wakes the
  // stage (threaded) or steps it (inline). kUnavailable when kBalanceReadSlots reads are
  // already waiting (retry), kDeadlineExceeded when the stage did not serve the read within
  // `timeout`, kInvalidArgument for more than kBalanceReadAccountsMax accounts.
  [[nodiscard]] absl::Status ReadBalances(absl::Span<const uint64_t> accounts,
                                          BalanceSnapshot* out, absl::Duration timeout,
                                          absl::FunctionRef<void()> kick)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The same read, served on the caller's thread (under the mutex, so that callers are
  // serialized and counted). REQUIRES: the stage never runs again (its thread is joined, or
  // inline mode no longer steps it). kInvalidArgument as ReadBalances.
  [[nodiscard]] absl::Status ReadBalancesStopped(absl::Span<const uint64_t> accounts,
                                                 BalanceSnapshot* out) ABSL_LOCKS_EXCLUDED(mu_);
  // Accounts created at run time: the stage opens, in its ledger and in creation order, every
  // directory record below AccountDirectory::opened_below() (their creation is kept), before it
  // checks a transaction and before it serves a read. A transaction naming an account was
  // admitted only after the account was opened in the directory, and the ring's publication
  // orders that before the stage's read of the entry, so the account is always found. The
  // ledger's tables are sized for account_capacity up front: opening allocates nothing.
  // `opened`: directory records below it are open in the ledger already. REQUIRES: before the
  // stage runs.
  void SetAccounts(const AccountDirectory* accounts, size_t opened) {
    accounts_ = accounts;
    accounts_opened_ = opened;
  }
  BalanceReadCounters read_counters() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct ReadSlot {
    absl::Span<const uint64_t> accounts;
    BalanceSnapshot* out = nullptr;  // Null: the slot is free.
    bool done = false;
  };

  int Mailbox() override ABSL_LOCKS_EXCLUDED(mu_);
  int Housekeeping() override;
  bool CanCheck() const override { return ledger_->HasPendingRoom(); }
  // Reserves only through the entry's ledger gate (see LedgerGate): a transaction the
  // reconciler decided first gets a failing verdict, kDecidedBeforeLedger, and no reservation.
  Judgement Check(Sequence seq, InFlightEntry& entry, int64_t now_ns) override;
  void Serve(absl::Span<const uint64_t> accounts, BalanceSnapshot& out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CatchUpAccounts();

  ledger::Ledger* const ledger_;
  const AccountDirectory* accounts_ = nullptr;  // Optional.
  size_t accounts_opened_ = 0;                  // Stage thread.
  SettlementQueue* const settlements_;

  std::atomic<bool> reads_posted_{false};
  mutable absl::Mutex mu_;
  ReadSlot slots_[kBalanceReadSlots] ABSL_GUARDED_BY(mu_);
  BalanceReadCounters counters_ ABSL_GUARDED_BY(mu_);
};

// Runs one of the embedder's asynchronous verifiers (VerifierSpec::async_verifier): hands it
// each transaction in sequence order (Check calls AsyncVerifier::Begin and sends no verdict),
// and is its VerdictSink. Answers come from any thread into a bounded MPMC queue
// (moodycamel::ConcurrentQueue, preallocated for kAnswerThreadsMax answering threads; past
// them, or when full, Answer returns false and allocates nothing); the stage forwards them to
// its verdict queue at the start of every turn, stalled or not (Mailbox), stamped with the time
// it took them. The stage's last read of a ring entry is its Begin call: handed_below() says
// which entries it no longer reads, so that the reconciler may retire a decided entry without
// its answer. An answer for a seq never handed out is dropped here and counted.
//
// Thread safety: as VerifierStage; Answer is called from any thread; handed_below() and
// ignored_answers() are read from any thread.
class AsyncVerifierStage final : public VerifierStage, public VerdictSink, public HandOffCursor {
 public:
  static constexpr size_t kAnswerThreadsMax = 16;
  // `verifier` outlives the stage; `answers_capacity` bounds the answers not yet forwarded.
  AsyncVerifierStage(VerifierId id, std::string role_name, AsyncVerifier* verifier,
                     InFlightRing* ring, VerdictQueue* verdicts, const Clock* clock,
                     int batch_max, size_t answers_capacity)
      : VerifierStage(id, std::move(role_name), ring, verdicts, clock, batch_max),
        verifier_(verifier),
        answers_(answers_capacity, 0, kAnswerThreadsMax) {}

  bool Answer(uint64_t seq, uint16_t code) override;
  // Every seq below this was handed to the verifier, which the stage no longer reads.
  Sequence handed_below() const override {
    // acquire: pairs with the release in Check; the stage's reads of those entries are done.
    return handed_below_.load(std::memory_order_acquire);
  }
  // Answers for a seq never handed out (dropped here). relaxed: a statistic.
  uint64_t ignored_answers() const { return ignored_.load(std::memory_order_relaxed); }

 private:
  struct AnswerItem {
    uint64_t seq = 0;
    uint16_t code = 0;
  };
  int Mailbox() override;
  void OnStartAt(Sequence first_seq) override {
    handed_below_.store(first_seq, std::memory_order_relaxed);  // relaxed: before it runs.
  }
  Judgement Check(Sequence seq, InFlightEntry& entry, int64_t now_ns) override {
    verifier_->Begin(seq, entry.payload.txn, entry.payload.confirmed_ns, *this);
    // release: see handed_below(). Once per transaction; an async verifier is slow anyway.
    handed_below_.store(seq + 1, std::memory_order_release);
    return {Reason::kNone, 0, true};
  }

  AsyncVerifier* const verifier_;
  moodycamel::ConcurrentQueue<AnswerItem> answers_;
  std::optional<Verdict> unforwarded_;  // Stage thread: a verdict the full queue refused.
  std::atomic<Sequence> handed_below_{1};
  std::atomic<uint64_t> ignored_{0};
};

// Runs one of the embedder's verifiers (Options::verifiers, verifier.h): hands it each
// transaction in sequence order on this stage's thread, and turns its code into a verdict
// (kVerifierRejected with the code when it is not 0).
class CustomVerifierStage final : public VerifierStage {
 public:
  // `verifier` outlives the stage.
  CustomVerifierStage(VerifierId id, std::string role_name, Verifier* verifier,
                      InFlightRing* ring, VerdictQueue* verdicts, const Clock* clock,
                      int batch_max)
      : VerifierStage(id, std::move(role_name), ring, verdicts, clock, batch_max),
        verifier_(verifier) {}

 private:
  Judgement Check(Sequence seq, InFlightEntry& entry, int64_t now_ns) override {
    const uint16_t code = verifier_->Check(entry.payload.txn, entry.payload.confirmed_ns);
    if (code == 0) return {};
    return {Reason::kVerifierRejected, code};
  }

  Verifier* const verifier_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_VERIFY_VERIFIER_STAGE_H_
