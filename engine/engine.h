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
// ReadBalances, SlowVerifier, Stats and the account calls (CreateAccounts, FreezeAccount, ...,
// LookupAccount; serialized among themselves by one mutex, never taken by Submit) may be called
// from any number of threads at once once Start() returned; Submit takes no lock and never
// blocks, except to wait for a held transaction's answer (HeldAnswer::kInSubmit). Start and Stop
// are called by the owner, once each, not concurrently with each other. In inline mode the
// owner's thread drives every stage with Step(); a blocking Submit of a held transaction steps
// the pipeline itself until its outcome is kept (a simulation that interleaves stages itself
// submits with HeldAnswer::kLater). The ledger and the fraud checker belong to their stage
// threads and are not handed out: balances are read with ReadBalances, which the ledger stage
// serves between two postings (and the caller, once Stop() returned). Fault injection other than
// SlowVerifier, and direct reads of stage state, are for tests only (engine/testing/
// engine_test_peer.h, testonly).
#ifndef VOUCH_ENGINE_ENGINE_H_
#define VOUCH_ENGINE_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/agent/agent_runner.h"
#include "engine/history/account_activity.h"
#include "engine/history/history_ring.h"
#include "engine/accounts/account.h"
#include "engine/accounts/account_directory.h"
#include "engine/ingest/idempotency_table.h"
#include "engine/internal/ingest_counters.h"
#include "engine/journal/data_dir_lock.h"
#include "engine/journal/records.h"
#include "engine/journal/segment.h"
#include "engine/journal/stage/journal_stage.h"
#include "engine/recovery/snapshot.h"
#include "engine/options.h"
#include "engine/metrics/histogram.h"
#include "engine/reconcile/reconciler.h"
#include "engine/ring/in_flight_ring.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "engine/verify/queues.h"
#include "engine/verify/verifier_stage.h"
#include "verifiers/fraud/fraud_checker.h"
#include "engine/ledger/ledger.h"

namespace vouch {

// A step in a transaction's life, for Query.
enum class StateKind : uint8_t {
  kReceived = 1,
  kRejected = 2,
  kConfirmed = 3,
  kHeld = 4,           // Waiting for verification before answering (hybrid/sync).
  kFraudVerdict = 5,
  kLedgerVerdict = 6,
  kVerified = 7,
  kLateFailed = 8,
  kLateTimeout = 9,
  kCompensated = 10,   // The ledger reservation was reversed.
  kAccountHeld = 11,   // The source account was put on hold.
  kLateVerdict = 12,   // A verdict after the outcome: recorded, no second outcome.
  kVerifierVerdict = 13,  // One of the embedder's verifiers decided (Options::verifiers).
};
std::string_view StateKindName(StateKind kind);

struct StateChange {
  StateKind kind;
  int64_t at_ns = 0;  // Engine (monotonic) time; add Engine::unix_offset_ns() for wall time.
  Reason reason = Reason::kNone;
  VerifierId verifier = VerifierId::kNone;
  bool pass = false;  // For verdicts.
  uint16_t verifier_code = 0;  // An embedder's verifier's own reason code (kVerifierRejected).
};

struct TransactionStatus {
  uint64_t id = 0;
  Sequence seq = 0;
  bool final = false;  // An outcome or a rejection was reached.
  // Transaction::attributes as submitted, once the history holds the transaction (from its
  // first verdict on; not for one refused at ingest, nor after a restart from a snapshot for
  // one decided before the snapshot).
  TransactionAttributes attributes;
  // In time order, and causal: RECEIVED <= CONFIRMED (or HELD) <= every verdict <= the outcome
  // decided on them <= COMPENSATED (a LATE_VERDICT may be stamped before the outcome: decided in
  // time, it reached the reconciler after the outcome was final).
  std::vector<StateChange> history;
};

// --- Queries by account (AccountTransactions) ---------------------------------------------------
// What a transaction of an account is now.
enum class AccountTxnState : uint8_t {
  kPending = 1,      // Confirmed before verification; no outcome yet.
  kHeld = 2,         // Held by the policy (hybrid/sync); not answered until verified.
  kVerified = 3,     // Final: both verifiers passed it (a held one was answered CONFIRMED).
  kLateFailed = 4,   // Final: confirmed, then a verifier failed it (reason, verifier).
  kLateTimeout = 5,  // Final: confirmed, then a verdict missed the deadline (verifier).
  kRejected = 6,     // Final: held, and failed or timed out verification: answered REJECTED.
};

// Entries per AccountTransactions page at most (AccountActivity::kLimitMax).
inline constexpr size_t kAccountTransactionsLimitMax = AccountActivity::kLimitMax;

struct AccountTransaction {
  Sequence seq = 0;
  uint64_t id = 0;
  uint64_t source_account = 0;
  uint64_t destination_account = 0;
  int64_t amount_minor = 0;
  CurrencyCode currency = 0;
  bool debit = false;  // The queried account is the source (money leaves it).
  bool held = false;   // Held by the policy until verified.
  int64_t received_unix_ns = 0;  // When Submit received it.
  AccountTxnState state = AccountTxnState::kPending;
  Reason reason = Reason::kNone;        // Why it failed (kLateFailed, kLateTimeout, kRejected).
  VerifierId verifier = VerifierId::kNone;  // Which verifier failed or timed out.
  uint16_t verifier_code = 0;           // Outcome::verifier_code.
  int64_t decided_unix_ns = 0;          // When the outcome became final; 0 before.
};

// Times are Unix ns on the engine's clock, inclusive, on the received time; 0 leaves that end
// open. limit is capped at kAccountTransactionsLimitMax.
struct AccountTransactionsQuery {
  uint64_t account = 0;
  int64_t since_unix_ns = 0;
  int64_t until_unix_ns = 0;
  Sequence before_seq = 0;  // Only seqs below this (0: no bound): the next page.
  size_t limit = kAccountTransactionsLimitMax;
};

struct AccountTransactionsPage {
  std::vector<AccountTransaction> transactions;  // Newest (highest seq) first.
  bool more = false;             // More may match: ask again with before_seq = next_before_seq.
  Sequence next_before_seq = 0;
  // The index keeps seqs from this one on (older ones, and those of an earlier process life,
  // are not listed even if they match; Query(id) may still know them).
  Sequence oldest_kept_seq = 0;
};
// -------------------------------------------------------------------------------------------

struct DrainReport {
  bool drained = false;         // Every confirmed transaction reached its outcome and settled.
  uint64_t confirmed = 0;       // Sequence numbers handed out over the engine's life.
  uint64_t not_drained = 0;     // Confirmed but not retired when the drain timeout passed.
  int64_t elapsed_ns = 0;
};

struct EngineStats {
  uint64_t confirmed = 0;  // Sequenced (async confirmations and held transactions).
  uint64_t held = 0;
  // Inter-stage queue depths right now (approximate: read while the stages run).
  uint64_t fraud_verdict_queue = 0;
  uint64_t ledger_verdict_queue = 0;
  uint64_t settlement_queue = 0;
  uint64_t risk_holds = 0;       // Held because a risk cap was reached (RiskAction::kHold).
  // Refused because the risk totals had no room for the currency: 0 in practice (exposure per
  // account lives in the account's record; the totals have room for every currency).
  uint64_t risk_table_full = 0;
  uint64_t duplicates = 0;
  uint64_t rejected[kReasonCount] = {};
  uint64_t busy[kReasonCount] = {};
  uint64_t outcomes[4] = {};  // By OutcomeKind; transactions confirmed before verification.
  uint64_t held_results[4] = {};  // By OutcomeKind; held transactions' final answers.
  uint64_t failures_by_reason[kReasonCount] = {};
  uint64_t late_verdicts = 0;
  uint64_t holds_placed = 0;
  uint64_t hold_table_full = 0;  // Obsolete: always 0 (a hold is a flag in the account record).
  uint64_t accounts = 0;             // Accounts created and kept (account_count()).
  uint64_t account_table_full = 0;   // Creations refused kTableFull (Options::account_capacity).
  uint64_t reversals = 0;
  uint64_t outcome_queue_stalls = 0;
  uint64_t idempotency_overruns = 0;
  // How far back duplicates are detected right now: the age of the oldest id the idempotency
  // table remembers (IdempotencyTable::OldestReceivedNs), 0 while it remembers none. Once the
  // table holds a full retention it stays at or above Options::idempotency_retention_ns; below
  // it only while the engine has not run that long (or, after a restart, while the journal
  // holds less), never because an id was forgotten early (new ids are refused BUSY
  // idempotency_retention instead).
  int64_t idempotency_retention_ns = 0;
  uint64_t retired = 0;
  // Snapshots written, snapshot attempts that failed (each logged; retried with a back-off), and
  // whether snapshots stopped for good (the shadow could not follow the journal).
  uint64_t snapshots = 0;
  uint64_t snapshot_failures = 0;
  bool snapshots_stopped = false;
  bool journal_failed = false;  // See Options::on_fatal.
  // Value at risk: transactions answered CONFIRMED before verification (not held; after a
  // restart, also those sent back to the verifiers) whose outcome is not decided yet, and their
  // amounts in minor units by currency slot (SlotCurrency(slot) names it). Counters are read one
  // by one, not as a snapshot, so under load a value may be off by a few transactions (never
  // negative); it is exact when the engine is quiet.
  uint64_t at_risk = 0;
  int64_t value_at_risk_minor[kCurrencySlotCount] = {};
  // Confirm -> outcome decided, at the Prometheus export bounds (cumulative, exact), with the
  // count and the sum.
  LatencyHistogram::ExportCounts confirm_to_outcome;
  // Per verifier, at VerifierSlot (the first verifier_count are used): confirm -> its verdict,
  // likewise, and its failing verdicts (an advisory verifier's decide nothing).
  int verifier_count = kBuiltinVerifierCount;
  LatencyHistogram::ExportCounts confirm_to_verdict[kVerifiersMax];
  uint64_t verdict_failures[kVerifiersMax] = {};
  // Asynchronous verifiers' answers ignored: a second answer for a seq, or one for a seq never
  // handed out (VerdictSink::Answer).
  uint64_t ignored_answers = 0;
  // Shadow verifiers' verdicts compared with the outcome, by ShadowComparison (reconciler.h).
  uint64_t shadow_verdicts[kVerifiersMax][kShadowComparisonCount] = {};
  size_t verdict_queue[kVerifiersMax] = {};  // Verdicts waiting for the reconciler.
  // Each stage thread (none in inline mode): its role and its longest DoWork() turn.
  struct AgentStats {
    std::string_view role;
    int64_t duty_cycle_max_ns = 0;
    uint64_t work_total = 0;
  };
  // Fraud, ledger, reconcile, journal, then the embedder's verifiers.
  static constexpr int kAgentsMax = 4 + kVerifiersMax - kBuiltinVerifierCount;
  AgentStats agents[kAgentsMax] = {};
  int agent_count = 0;
  uint64_t unverified() const;  // Sequenced, no outcome (or held answer) yet.
  uint64_t held_results_total() const;
  uint64_t rejected_total() const;
  uint64_t busy_total() const;
  uint64_t outcomes_total() const;
};

// What recovery found in the journal when the engine was created.
struct RecoveryReport {
  bool journal = false;          // A journal was configured (ack policy other than memory).
  uint64_t records = 0;          // Valid records replayed.
  Sequence confirmed = 0;        // Highest confirmed sequence number in the journal.
  Sequence outcomes = 0;         // Highest sequence number with a journaled outcome.
  uint64_t reverified = 0;       // Confirmed without an outcome: sent back to the verifiers.
  uint64_t releases = 0;         // Hold releases replayed.
  uint64_t refused = 0;          // Stored refusals replayed (after the snapshot, if any).
  uint64_t next_record_index = 0;  // Where the journal continues.
  std::string snapshot_file;       // The snapshot recovery started from; empty if none.
  uint64_t snapshot_record_index = 0;  // Records below this came from the snapshot.
  bool truncated = false;        // A torn tail was cut off (it was never acknowledged); read
                                 // only: found, and left as it is.
  std::string truncated_file;
  uint64_t truncated_offset = 0;
  uint64_t truncated_bytes = 0;
  // The opening configuration (Options::accounts) was pinned at this start: a new journal, or
  // one written before the configuration was pinned (engine/recovery/opening.h). Read only: it
  // would have been.
  bool opening_recorded = false;
  // snapshot-*.snap.tmp files a crash during a snapshot write left: removed (read only: found).
  uint64_t snapshot_temporaries = 0;
  int64_t elapsed_ns = 0;
};

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
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts the stage threads (not in inline mode) and begins accepting.
  [[nodiscard]] absl::Status Start();
  // Stops accepting (Submit answers BUSY/shutting_down), waits for every confirmed transaction
  // to reach its outcome and settle, up to drain_timeout_ns, then stops the stage threads.
  DrainReport Stop();

  // `origin` is opaque to the engine and comes back in the transaction's Outcome, so an embedder
  // serving many clients (the TCP server) can route each outcome to its submitter.
  Confirmation Submit(const Transaction& txn, uint64_t origin = 0,
                      AckWait ack_wait = AckWait::kInSubmit,
                      HeldAnswer held_answer = HeldAnswer::kInSubmit);
  // The final Confirmation of a held transaction that Submit answered kPending, from its Outcome
  // (VERIFIED: CONFIRMED; otherwise REJECTED with the outcome's reason).
  static Confirmation FinalHeldAnswer(const Confirmation& pending, const Outcome& outcome);
  // Blocks until every answer whose ack position `position` covers is kept as the ack policy
  // promises (true): confirmations (and held answers) up to position.confirmed, stored refusals
  // up to position.refused; at once without a journal, or for an empty position. False if the
  // journal failed: it never will be kept; tell the client nothing was confirmed. Any thread.
  [[nodiscard]] bool AwaitAck(const AckPosition& position) const;
  // OK, or the error that stopped the journal (see Options::on_fatal). Any thread.
  [[nodiscard]] absl::Status health() const;
  // Poll mode only (no OutcomeSink): moves up to `max` outcomes into `out`.
  size_t PollOutcomes(Outcome* out, size_t max);
  std::optional<TransactionStatus> Query(uint64_t id) const;
  // The recent sequenced transactions of `query.account`, debits and credits, newest first, each
  // with its state now. Only sequenced transactions (confirmed or held): refusals are not, and
  // are found by Query(id). Kept: the last history_capacity seqs of this process life (the index
  // starts empty at each start; see AccountTransactionsPage::oldest_kept_seq). Any thread,
  // lock-free; O(limit) per call for accounts the index chains.
  AccountTransactionsPage AccountTransactions(const AccountTransactionsQuery& query) const;
  // The final outcome of `seq`, if it is decided and still in the history (capacity
  // history_capacity). The server seeds its resume window with these after a restart.
  std::optional<Outcome> FinalOutcome(Sequence seq) const;

  // Takes `account` off hold and returns whether it was on hold. The reconciler, which also
  // places holds, makes the change on its next turn and journals it (ack policy written /
  // durable) in the same order as the holds, so a restart leaves every account as memory had
  // it; this waits for that turn (in inline mode, it steps the pipeline once). kUnavailable
  // when the engine is not running or kReleaseSlots releases are already waiting (retry);
  // kDeadlineExceeded if the reconciler did not take it within 5 s (nothing was released);
  // kFailedPrecondition with DurabilityOptions::read_only (a release could not be kept).
  [[nodiscard]] absl::StatusOr<bool> ReleaseHold(uint64_t account);
  bool IsOnHold(uint64_t account) const { return accounts_.IsHeld(account); }
  // Accounts on hold, in creation order: a scan of the directory (an operator call).
  std::vector<uint64_t> Holds() const { return accounts_.Holds(); }

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
  [[nodiscard]] absl::Status CreateAccounts(absl::Span<const NewAccount> accounts,
                                            std::vector<CreateResult>* results,
                                            absl::Duration timeout = absl::Seconds(5));
  // A frozen account's new transactions are refused at ingest (REJECTED account_frozen), as
  // source or destination; what is in flight completes. NotFound; FailedPrecondition if the
  // account is closed; freezing a frozen one (unfreezing an open one) is OK and journals
  // nothing. Unavailable when not running; DeadlineExceeded if the record was not kept within
  // 5 s (the change is made and queued: it is kept unless the journal fails).
  [[nodiscard]] absl::Status FreezeAccount(uint64_t id);
  [[nodiscard]] absl::Status UnfreezeAccount(uint64_t id);
  // Refuses new transactions (account_closed) at once, waits up to `timeout` until none of the
  // account's transactions is in flight, then reads its balance on the ledger stage: closed
  // (journaled, final) if the balance is 0 and no reservation names it; otherwise the account
  // goes back to its state and FailedPrecondition. Closing a closed one is OK. NotFound.
  [[nodiscard]] absl::Status CloseAccount(uint64_t id, absl::Duration timeout = absl::Seconds(5));
  // InvalidArgument for a negative limit; NotFound; FailedPrecondition if closed. Applies to
  // transactions submitted after it returns.
  [[nodiscard]] absl::Status SetAccountLimits(uint64_t id, const AccountLimits& limits);
  // NotFound (also while its creation is not kept yet); Unavailable / DeadlineExceeded from the
  // balance read (ReadBalances).
  [[nodiscard]] absl::StatusOr<AccountInfo> LookupAccount(
      uint64_t id, absl::Duration timeout = absl::Seconds(5));
  // Accounts created and kept (Options::accounts included).
  size_t account_count() const { return accounts_.opened_below(); }
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
  [[nodiscard]] absl::StatusOr<Sequence> ReplaceFraudRules(fraud::FraudRules rules);
  // Makes Options::shadow_fraud_rules the live rule set: ReplaceFraudRules with them (journaled,
  // from the returned sequence number on). The shadow keeps judging with the same rules, so it
  // agrees from then on. FailedPrecondition without shadow rules; otherwise as ReplaceFraudRules.
  [[nodiscard]] absl::StatusOr<Sequence> PromoteShadowFraudRules();

  // The name of a verifier: "fraud", "ledger", or the embedder's VerifierSpec::name.
  std::string_view VerifierName(VerifierId verifier) const;
  // kRequired for fraud and ledger; else the embedder's VerifierSpec::policy.
  VerifierPolicy VerifierPolicyOf(VerifierId verifier) const;
  int verifier_count() const { return verifier_count_; }

  // Fault injection: the verifier takes `cost_ns` per transaction from now on (a slow fraud
  // service or ledger; see VerifierStage::SetCostPerTransaction). 0: back to full speed. Any
  // thread. Stays in the production class only because the shipped vouchd exposes it as
  // --fault_fraud_cost_ns / --fault_ledger_cost_ns (tests/tools/overload/overload_test.sh runs
  // against it); every other fault hook is test-only, in engine/testing/engine_test_peer.h.
  void SlowVerifier(VerifierId verifier, int64_t cost_ns);
  // Inline mode: one DoWork turn of each stage; returns the work done.
  int Step();
  // Inline mode: one DoWork turn of `stage` (0 for kJournal without a journal).
  int StepStage(InlineStage stage);

  EngineStats Stats() const;
  const RecoveryReport& recovery() const { return recovery_; }
  // Null with ack policy memory.
  const JournalStage* journal() const { return journal_stage_.get(); }
  // Snapshots (ack policy written/durable, snapshot_interval_records > 0): a background thread
  // polls; in inline mode, or to force one, call PollSnapshot (not concurrently with the thread).
  [[nodiscard]] absl::Status PollSnapshot();
  const Snapshotter* snapshotter() const { return snapshotter_.get(); }
  const Options& options() const { return options_; }
  const Clock& clock() const { return *clock_; }
  // Add to the engine's (monotonic) times for Unix time: its clock's UnixOffsetNs(), read once
  // at creation. Every Unix time the engine journals or reports, and the UTC day of its daily
  // limits, use it; so must whoever converts the engine's times (the server does).
  int64_t unix_offset_ns() const { return unix_offset_ns_; }

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
  [[nodiscard]] absl::Status ReadBalances(absl::Span<const uint64_t> accounts,
                                          BalanceSnapshot* out, absl::Duration timeout);
  BalanceReadCounters balance_read_counters() const {
    return ledger_stage_->read_counters();
  }
  // -------------------------------------------------------------------------------------------

 private:
  // engine/testing/engine_test_peer.h (testonly): verifier stalls and stage-state reads.
  friend class EngineTestPeer;

  explicit Engine(Options options);
  absl::Status Init();
  // `loaded`: the snapshot recovery started from, if any, for CreateSnapshotter.
  absl::Status Recover(std::optional<LoadedSnapshot>* loaded);
  absl::Status CreateSnapshotter(absl::string_view snapshot_state);
  absl::Status RecordOpening(journal::SegmentWriter& writer) const;
  absl::Status JournalStartupRules(Sequence first_seq);
  absl::Status OpenMissingAccounts(ledger::Ledger* ledger) const;
  void RunSnapshots();
  void Republish(const journal::ConfirmedRecord& pending);
  Reason CheckWellFormed(const Transaction& txn) const;
  // *source / *destination: the accounts' records, when both exist.
  Reason Refusal(const Transaction& txn, AccountRecord** source,
                 AccountRecord** destination) const;
  absl::Status CreateConfiguredAccounts();
  // Accounts: REQUIRES accounts_mu_.
  bool Running() const;
  // Steps (inline) or waits until the journal keeps account record `number`.
  absl::Status AwaitAccountRecord(uint64_t number, absl::Time deadline) const;
  // Queues an account record, waiting for room until `deadline`; its number (0 without journal).
  absl::StatusOr<uint64_t> JournalAccount(journal::RecordType type, const char* payload,
                                          size_t size, absl::Time deadline);
  // Makes the pending creations usable once their records are kept.
  absl::Status FinishCreations(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(accounts_mu_);
  absl::Status SetFrozen(uint64_t id, bool frozen);
  // The account a change may act on: kNotFound if it was never created (or its creation is not
  // kept yet), kFailedPrecondition if it is closed.
  absl::StatusOr<AccountRecord*> ChangeableAccount(uint64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(accounts_mu_);
  Confirmation Refuse(const Transaction& txn, uint64_t ticket, Reason reason, int64_t now_ns);
  bool ShouldHold(const Transaction& txn) const;
  Confirmation Answer(const Transaction& txn, uint64_t origin,
                      internal::IngestCounters::Shard& shard, int64_t now_ns);
  Confirmation Acked(const Confirmation& confirmation, AckWait ack_wait) const;
  Confirmation Admit(const Transaction& txn, uint64_t origin, uint64_t ticket, bool held,
                     bool at_risk, AccountRecord& source, AccountRecord& destination,
                     internal::IngestCounters::Shard& shard, int64_t now_ns);
  Outcome AwaitHeld(InFlightEntry& entry);
  void WakeStages();
  // Options::admission_backlog_max_ns: some verifier's backlog is older than the bound.
  bool AnyVerifierBacklogged(int64_t now_ns, int64_t backlog_max_ns) const;
  // The spec of one of verifier_specs_; null for the built-in verifiers and unknown ids.
  const VerifierSpec* CustomSpec(VerifierId verifier) const;

  const Options options_;
  // RegisteredVerifiers(options_): the embedder's verifiers and the shadow fraud rules', in place
  // order (VerifierId 3 on).
  const std::vector<VerifierSpec> verifier_specs_;
  const Clock* const clock_;
  const int64_t unix_offset_ns_;  // clock_->UnixOffsetNs() at creation: see unix_offset_ns().
  const absl::flat_hash_set<uint64_t> watched_accounts_;
  // Held for the engine's whole life, so declared before (destroyed after) everything that
  // writes to the directory. Null with ack policy memory.
  std::unique_ptr<journal::DataDirLock> dir_lock_;

  // Every account ever created, with its state, hold flag and exposure (account_directory.h).
  AccountDirectory accounts_;
  // Serializes the account writers (creation, lifecycle) so the journal's order is theirs.
  mutable absl::Mutex accounts_mu_;
  // Per currency slot: sum of (opening balance + overdraft limit) over the accounts, the bound
  // the ledger keeps within int64 (ledger.h invariant 4); checked before a creation is journaled.
  int64_t reach_minor_[kCurrencySlotCount] ABSL_GUARDED_BY(accounts_mu_) = {};
  size_t creations_pending_from_ ABSL_GUARDED_BY(accounts_mu_) = 0;  // First kCreating record.
  uint64_t creations_pending_record_ ABSL_GUARDED_BY(accounts_mu_) = 0;  // Its last record.
  std::atomic<uint64_t> account_table_full_{0};  // relaxed: a statistic.
  InFlightRing ring_;
  IdempotencyTable idempotency_;
  RiskTable risk_;
  HistoryRing history_;
  // Written by the Submit thread that owns each seq, in Admit (before Publish); read by any.
  AccountActivity activity_;
  Sequence activity_first_seq_ = 1;  // The first seq of this process life. Set in Init.
  RulesHandoff rules_handoff_;
  VerdictQueue fraud_verdicts_;
  VerdictQueue ledger_verdicts_;
  SettlementQueue settlements_;
  std::unique_ptr<OutcomeQueue> poll_queue_;
  std::unique_ptr<fraud::FraudChecker> fraud_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<FraudStage> fraud_stage_;
  std::unique_ptr<LedgerStage> ledger_stage_;
  // The embedder's verifiers (Options::verifiers), each with its queue, in order.
  std::vector<std::unique_ptr<VerdictQueue>> custom_verdicts_;
  std::vector<std::unique_ptr<VerifierStage>> custom_stages_;
  // The asynchronous ones among them, at their VerifierSlot; null elsewhere.
  AsyncVerifierStage* async_stages_[kVerifiersMax] = {};
  // Every verifier stage at its VerifierSlot: fraud, ledger, then the embedder's.
  int verifier_count_ = kBuiltinVerifierCount;
  VerifierStage* stages_[kVerifiersMax] = {};
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<JournalStage> journal_stage_;  // Null with ack policy memory.
  // The snapshotter and its shadow verifiers; null without snapshots.
  std::unique_ptr<fraud::FraudChecker> shadow_fraud_;
  std::unique_ptr<ledger::Ledger> shadow_ledger_;
  std::unique_ptr<AccountDirectory> shadow_accounts_;
  std::unique_ptr<Snapshotter> snapshotter_;
  std::thread snapshot_thread_;
  absl::Mutex snapshot_mu_;
  bool snapshot_stop_ ABSL_GUARDED_BY(snapshot_mu_) = false;
  // Written by whoever polls (the snapshot thread, or PollSnapshot's caller); relaxed:
  // statistics.
  std::atomic<uint64_t> snapshots_written_{0};
  std::atomic<uint64_t> snapshot_failures_{0};
  std::atomic<bool> snapshots_stopped_{false};
  std::vector<journal::ConfirmedRecord> pending_;  // Recovered, to be re-verified at Start.
  // What the journal said of the fraud rules (Replayer::rules_text / rules_pending).
  std::string recovered_rules_text_;
  bool recovered_rules_pending_ = false;
  RecoveryReport recovery_;
  std::vector<std::unique_ptr<AgentRunner>> runners_;  // Empty in inline mode.
  // The agent each runner runs, in Start's order; runners_[kReconcilerRunner] is the
  // reconciler's and runners_[kLedgerRunner] the ledger's.
  std::vector<const Agent*> agents_;
  static constexpr size_t kLedgerRunner = 1;
  static constexpr size_t kReconcilerRunner = 2;

  internal::IngestCounters ingest_counters_;
  std::atomic<bool> accepting_{false};
  // Set by Stop() once every stage thread is joined: from then on ReadBalances reads the ledger
  // on the caller's thread.
  std::atomic<bool> stages_stopped_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_ENGINE_H_
