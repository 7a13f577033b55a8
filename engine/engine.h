// Engine: the embeddable vouch pipeline.
//
//   Submit (any thread) -> sync checks, sequence -> InFlightRing -> FraudStage  -+
//                                                                  -> LedgerStage -+-> Reconciler
//                                                                                      -> Outcome
// Submit confirms at once (async). A transaction the hybrid or sync policy holds is answered
// only once verified: Submit waits for that answer (HeldAnswer::kInSubmit), or returns
// ConfirmStatus::kPending at once and the answer comes as the transaction's Outcome, with `held`
// set (HeldAnswer::kLater; what the server uses, so that an I/O thread never blocks on
// verification). Every sequenced transaction gets exactly one Outcome, via the OutcomeSink in
// Options or PollOutcomes. A held one's Outcome is its final answer, not a late failure
// (results.h). Query(id) returns the state history of a recent transaction.
//
// A held answer is given only once its outcome record is kept as the ack policy promises
// (journal outcomes_acked_below): a restart can never re-decide what a client was told.
//
// Thread safety: Submit, PollOutcomes, Query, AccountTransactions, ReleaseHold, Holds,
// ReadBalances, Stats and the account calls (CreateAccounts, FreezeAccount, ...,
// LookupAccount; serialized among themselves by one mutex, never taken by Submit) may be called
// from any number of threads at once once Start() returned; Submit takes no lock and never
// blocks, except to wait for a held transaction's answer (HeldAnswer::kInSubmit). Start and Stop
// are called by the owner, once each, not concurrently with each other. In inline mode the
// owner's thread drives every stage with Step(); a blocking Submit of a held transaction steps
// the pipeline itself until its outcome is kept (a simulation that interleaves stages itself
// submits with HeldAnswer::kLater). The ledger and the fraud checker belong to their stage
// threads and are not handed out: balances are read with ReadBalances, which the ledger stage
// serves between two postings (and the caller, once Stop() returned).
//
// Times: every time the engine stores or reports, and every one in Options, is an int64_t count of
// nanoseconds named with its unit: `_ns` on the engine's monotonic clock (add unix_offset_ns()
// for Unix time), `_unix_ns` on Unix time. Only the arguments that bound how long a call may wait
// are absl::Duration (`timeout`).
//
// This header is the embedding API, in the manner of LevelDB's db.h: an interface (Create makes
// the implementation, engine/internal/engine_impl.h, which embedders never include), its
// options (options.h), results (types/results.h, types/transaction_status.h, engine_stats.h),
// and the verifier contract (verify/verifier.h); it includes none of the stages' headers.
// Fault injection is not part of it: vouchd's slow-verifier flags use engine/fault_injection.h,
// and every other fault hook and direct read of stage state is test-only
// (engine/testing/engine_test_peer.h, testonly).
#ifndef VOUCH_ENGINE_ENGINE_H_
#define VOUCH_ENGINE_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/accounts/account.h"
#include "engine/engine_stats.h"
#include "engine/options.h"
#include "engine/types/balances.h"
#include "engine/types/clock.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "engine/types/transaction_status.h"
#include "engine/verify/verifier.h"

namespace vouch {

// The stages, for stepping one at a time in inline mode (Engine::StepStage): a simulation pauses
// a verifier by not stepping it, and interleaves the others in any order it likes.
// kCustom steps every one of the embedder's verifiers (Options::verifiers) once.
enum class InlineStage : uint8_t { kFraud, kLedger, kReconcile, kJournal, kCustom };

// Who waits for the journal before a confirmation is returned (ack policy written / durable).
enum class AckWait {
  kInSubmit,  // Submit waits for its own record.
  kCaller,    // Submit returns at once; the caller calls AwaitAck with the Cover of the ack
              // positions of the answers it is about to tell (Confirmation::ack), once for a
              // whole batch (the server does, per loop turn).
};

// How Submit answers a transaction the policy holds (hybrid / sync).
enum class HeldAnswer {
  kInSubmit,  // Submit returns the final answer (CONFIRMED or REJECTED, `held` set).
  kLater,     // Submit returns kPending (seq set) at once; the final answer is the Outcome.
};

class Engine {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Engine>> Create(Options options);
  virtual ~Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts the stage threads (not in inline mode) and begins accepting.
  [[nodiscard]] virtual absl::Status Start() = 0;
  // Stops accepting (Submit answers BUSY/shutting_down), waits for every confirmed transaction
  // to reach its outcome and settle, up to drain_timeout_ns, then stops the stage threads.
  [[nodiscard]] virtual DrainReport Stop() = 0;

  // `origin` is opaque to the engine and comes back in the transaction's Outcome, so an embedder
  // serving many clients (the TCP server) can route each outcome to its submitter.
  [[nodiscard]] virtual Confirmation Submit(const Transaction& txn, uint64_t origin = 0,
                                            AckWait ack_wait = AckWait::kInSubmit,
                                            HeldAnswer held_answer = HeldAnswer::kInSubmit) = 0;
  // The final Confirmation of a held transaction that Submit answered kPending, from its Outcome
  // (VERIFIED: CONFIRMED; otherwise REJECTED with the outcome's reason).
  static Confirmation FinalHeldAnswer(const Confirmation& pending, const Outcome& outcome);
  // Blocks until every answer whose ack position `position` covers is kept as the ack policy
  // promises (true): confirmations (and held answers) up to position.confirmed, stored refusals
  // up to position.refused; at once without a journal, or for an empty position. False if the
  // journal failed: it never will be kept; tell the client nothing was confirmed. Any thread.
  [[nodiscard]] virtual bool AwaitAck(const AckPosition& position) const = 0;
  // OK, or the error that stopped the journal (see Options::on_fatal). Any thread.
  [[nodiscard]] virtual absl::Status health() const = 0;
  // Whether the journal failed (health() says why): one atomic load, for a caller that asks
  // often (the server, every loop turn). Any thread.
  virtual bool journal_failed() const = 0;
  // Poll mode only (no OutcomeSink): moves up to `max` outcomes into `out`.
  [[nodiscard]] virtual size_t PollOutcomes(Outcome* out, size_t max) = 0;
  virtual std::optional<TransactionStatus> Query(uint64_t id) const = 0;
  // The recent sequenced transactions of `query.account`, debits and credits, newest first, each
  // with its state now. Only sequenced transactions (confirmed or held): refusals are not, and
  // are found by Query(id). Kept: the last history_capacity seqs of this process life (the index
  // starts empty at each start; see AccountTransactionsPage::oldest_kept_seq). Any thread,
  // lock-free; O(limit) per call for accounts the index chains.
  virtual AccountTransactionsPage AccountTransactions(
      const AccountTransactionsQuery& query) const = 0;
  // The final outcome of `seq`, if it is decided and still in the history (capacity
  // history_capacity). The server seeds its resume window with these after a restart.
  virtual std::optional<Outcome> FinalOutcome(Sequence seq) const = 0;

  // Takes `account` off hold and returns whether it was on hold. The reconciler, which also
  // places holds, makes the change on its next turn and journals it (ack policy written /
  // durable) in the same order as the holds, so a restart leaves every account as memory had
  // it; this waits for that turn (in inline mode, it steps the pipeline once). kUnavailable
  // when the engine is not running or kReleaseSlots releases are already waiting (retry);
  // kDeadlineExceeded if the reconciler did not take it within 5 s (nothing was released);
  // kFailedPrecondition with DurabilityOptions::read_only (a release could not be kept).
  [[nodiscard]] virtual absl::StatusOr<bool> ReleaseHold(uint64_t account) = 0;
  virtual bool IsOnHold(uint64_t account) const = 0;
  // Accounts on hold, in creation order: a scan of the directory (an operator call).
  virtual std::vector<uint64_t> Holds() const = 0;

  // --- Accounts (engine/accounts/account.h; docs/DESIGN.md "Accounts") --------------------
  // Any thread, once Start() returned (in inline mode they step the pipeline themselves); they
  // are serialized by one mutex, and each change is journaled (ack policy written / durable,
  // record types 10..13) and visible in LookupAccount's history.
  //
  // Creates each account not yet created; results[i] answers accounts[i] (CreateResult). A
  // created account is usable by transactions once its creation record is kept as the ack
  // policy promises, before this returns. Idempotent by id: a retry of the same batch returns
  // kExists for what was created. A non-OK status (DeadlineExceeded: the journal did not keep
  // the records within `timeout`; Unavailable: the engine is not running or the journal failed)
  // means "unknown, retry the same batch". kBusy results (the engine is stopping, read-only or
  // its journal failed) created nothing.
  [[nodiscard]] virtual absl::Status CreateAccounts(
      absl::Span<const NewAccount> accounts, std::vector<CreateResult>* results,
      absl::Duration timeout = absl::Seconds(5)) = 0;
  // A frozen account's new transactions are refused at ingest (REJECTED account_frozen), as
  // source or destination; what is in flight completes. NotFound; FailedPrecondition if the
  // account is closed; freezing a frozen one (unfreezing an open one) is OK and journals
  // nothing. Unavailable when not running; DeadlineExceeded if the record was not kept within
  // 5 s (the change is made and queued: it is kept unless the journal fails).
  [[nodiscard]] virtual absl::Status FreezeAccount(uint64_t id) = 0;
  [[nodiscard]] virtual absl::Status UnfreezeAccount(uint64_t id) = 0;
  // Refuses new transactions (account_closed) at once, waits up to `timeout` until none of the
  // account's transactions is in flight, then reads its balance on the ledger stage: closed
  // (journaled, final) if the balance is 0 and no reservation names it; otherwise the account
  // goes back to its state and FailedPrecondition. Closing a closed one is OK. NotFound.
  [[nodiscard]] virtual absl::Status CloseAccount(
      uint64_t id, absl::Duration timeout = absl::Seconds(5)) = 0;
  // InvalidArgument for a negative limit; NotFound; FailedPrecondition if closed. Applies to
  // transactions submitted after it returns.
  [[nodiscard]] virtual absl::Status SetAccountLimits(uint64_t id, const AccountLimits& limits) = 0;
  // NotFound (also while its creation is not kept yet); Unavailable / DeadlineExceeded from the
  // balance read (ReadBalances).
  [[nodiscard]] virtual absl::StatusOr<AccountInfo> LookupAccount(
      uint64_t id, absl::Duration timeout = absl::Seconds(5)) = 0;
  // Accounts created and kept (Options::accounts included).
  virtual size_t account_count() const = 0;
  // -------------------------------------------------------------------------------------------

  // Replaces the fraud rules without a restart. They apply from the returned sequence number
  // onward (every transaction before it was judged by the old rules), and are journaled there
  // (ack policy written / durable), so recovery and snapshots judge by the same rules at the
  // same place (rules_handoff.h). The start-up rules are journaled likewise, from the first
  // sequence number the process decides. InvalidArgument for rules that fail Validate or whose
  // text is over 64 KiB (the old rules stay); Unavailable if an earlier reload (or the
  // start-up rules' record) is still under way after waiting up to 5 s for it (retry);
  // DeadlineExceeded if the stages did not take them within 5 s: they are
  // posted and apply when the stages resume.
  [[nodiscard]] virtual absl::StatusOr<Sequence> ReplaceFraudRules(fraud::FraudRules rules) = 0;
  // Makes Options::shadow_fraud_rules the live rule set: ReplaceFraudRules with them (journaled,
  // from the returned sequence number on). The shadow keeps judging with the same rules, so it
  // agrees from then on. FailedPrecondition without shadow rules; otherwise as ReplaceFraudRules.
  [[nodiscard]] virtual absl::StatusOr<Sequence> PromoteShadowFraudRules() = 0;

  // The name of a verifier: "fraud", "ledger", or the embedder's VerifierSpec::name.
  virtual std::string_view VerifierName(VerifierId verifier) const = 0;
  // kRequired for fraud and ledger; else the embedder's VerifierSpec::policy.
  virtual VerifierPolicy VerifierPolicyOf(VerifierId verifier) const = 0;
  virtual int verifier_count() const = 0;

  // Inline mode: one DoWork turn of each stage; returns the work done.
  virtual int Step() = 0;
  // Inline mode: one DoWork turn of `stage` (0 for kJournal without a journal).
  virtual int StepStage(InlineStage stage) = 0;

  virtual EngineStats Stats() const = 0;
  virtual const RecoveryReport& recovery() const = 0;
  // Snapshots (ack policy written/durable, snapshot_interval_records > 0): a background thread
  // polls; in inline mode, or to force one, call PollSnapshot (not concurrently with the thread).
  [[nodiscard]] virtual absl::Status PollSnapshot() = 0;
  virtual const Options& options() const = 0;
  virtual const Clock& clock() const = 0;
  // Add to the engine's (monotonic) times for Unix time: its clock's UnixOffsetNs(), read once
  // at creation. Every Unix time the engine journals or reports, and the UTC day of its daily
  // limits, use it; so must whoever converts the engine's times (the server does).
  virtual int64_t unix_offset_ns() const = 0;

  // --- Balance reads -----------------------------------------------------------------------
  // Any thread, once Start() returned. A consistent snapshot of `accounts` (empty: every
  // account, up to kBalanceReadAccountsMax) and of each currency's total and clearing balance,
  // taken on the ledger stage between two postings (verifier_stage.h), also while the ledger
  // verifier is stalled. Waits up to `timeout` for the stage; in inline mode it steps the
  // pipeline once instead. Once Stop() returned, the stage threads are gone and the caller reads
  // the final ledger itself (an offline audit: vouchd --check, the demo's end-of-run checks).
  // kDeadlineExceeded on timeout, kUnavailable before Start, while Stop runs, or when
  // kBalanceReadSlots reads are already waiting (retry), kInvalidArgument for too many
  // accounts. Allocates nothing when out's vectors have room for the answer.
  [[nodiscard]] virtual absl::Status ReadBalances(absl::Span<const uint64_t> accounts,
                                                  BalanceSnapshot* out,
                                                  absl::Duration timeout) = 0;
  virtual BalanceReadCounters balance_read_counters() const = 0;
  // -------------------------------------------------------------------------------------------

 protected:
  Engine() = default;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_ENGINE_H_
