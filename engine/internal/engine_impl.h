// EngineImpl: the engine behind the Engine interface (engine/engine.h), with every stage, queue
// and table it wires together. Internal: embedders use engine/engine.h, which includes none of
// this. Tests and tools of this repository reach it through engine/testing/engine_test_peer.h
// (testonly) and engine/fault_injection.h.
//
// Thread safety: as Engine (engine/engine.h).
#ifndef VOUCH_ENGINE_INTERNAL_ENGINE_IMPL_H_
#define VOUCH_ENGINE_INTERNAL_ENGINE_IMPL_H_

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
#include "engine/engine.h"
#include "engine/recovery/snapshot.h"
#include "engine/options.h"
#include "engine/metrics/histogram.h"
#include "engine/reconcile/reconciler.h"
#include "engine/ring/in_flight_ring.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "engine/verify/queues.h"
#include "engine/verify/verifier_stage.h"
#include "engine/ledger/ledger.h"

namespace vouch {

class EngineImpl final : public Engine {
 public:
  // Engine::Create is the way in; REQUIRES: options.Validate() is OK.
  explicit EngineImpl(Options options);
  ~EngineImpl() override;
  absl::Status Init();
  // Every Engine is an EngineImpl (Engine::Create makes only those): how this repository's own
  // tools (fault_injection.h) and test peer reach it.
  static EngineImpl& Of(Engine& engine) { return static_cast<EngineImpl&>(engine); }
  static const EngineImpl& Of(const Engine& engine) {
    return static_cast<const EngineImpl&>(engine);
  }

  // Engine (engine/engine.h documents each).
  [[nodiscard]] absl::Status Start() override;
  DrainReport Stop() override;
  Confirmation Submit(const Transaction& txn, uint64_t origin, AckWait ack_wait,
                      HeldAnswer held_answer) override;
  [[nodiscard]] bool AwaitAck(const AckPosition& position) const override;
  [[nodiscard]] absl::Status health() const override;
  bool journal_failed() const override;
  size_t PollOutcomes(Outcome* out, size_t max) override;
  std::optional<TransactionStatus> Query(uint64_t id) const override;
  AccountTransactionsPage AccountTransactions(const AccountTransactionsQuery& query) const override;
  std::optional<Outcome> FinalOutcome(Sequence seq) const override;
  [[nodiscard]] absl::StatusOr<bool> ReleaseHold(uint64_t account) override;
  bool IsOnHold(uint64_t account) const override { return accounts_.IsHeld(account); }
  std::vector<uint64_t> Holds() const override { return accounts_.Holds(); }
  [[nodiscard]] absl::Status CreateAccounts(absl::Span<const NewAccount> accounts,
                                            std::vector<CreateResult>* results,
                                            absl::Duration timeout) override;
  [[nodiscard]] absl::Status FreezeAccount(uint64_t id) override;
  [[nodiscard]] absl::Status UnfreezeAccount(uint64_t id) override;
  [[nodiscard]] absl::Status CloseAccount(uint64_t id, absl::Duration timeout) override;
  [[nodiscard]] absl::Status SetAccountLimits(uint64_t id, const AccountLimits& limits) override;
  [[nodiscard]] absl::StatusOr<AccountInfo> LookupAccount(
      uint64_t id, absl::Duration timeout) override;
  size_t account_count() const override { return accounts_.opened_below(); }
  [[nodiscard]] absl::StatusOr<Sequence> ReplaceFraudRules(fraud::FraudRules rules) override;
  [[nodiscard]] absl::StatusOr<Sequence> PromoteShadowFraudRules() override;
  std::string_view VerifierName(VerifierId verifier) const override;
  VerifierPolicy VerifierPolicyOf(VerifierId verifier) const override;
  int verifier_count() const override { return verifier_count_; }
  int Step() override;
  int StepStage(InlineStage stage) override;
  EngineStats Stats() const override;
  const RecoveryReport& recovery() const override { return recovery_; }
  [[nodiscard]] absl::Status PollSnapshot() override;
  const Options& options() const override { return options_; }
  const Clock& clock() const override { return *clock_; }
  int64_t unix_offset_ns() const override { return unix_offset_ns_; }
  [[nodiscard]] absl::Status ReadBalances(absl::Span<const uint64_t> accounts,
                                          BalanceSnapshot* out, absl::Duration timeout) override;
  BalanceReadCounters balance_read_counters() const override {
    return ledger_stage_->read_counters();
  }

  // Fault injection (engine/fault_injection.h).
  void SlowVerifier(VerifierId verifier, int64_t cost_ns);
  // The journal stage, for the test peer; null with ack policy memory.
  const JournalStage* journal() const { return journal_stage_.get(); }

 private:
  // engine/testing/engine_test_peer.h (testonly): verifier stalls and stage-state reads.
  friend class EngineTestPeer;

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
  std::unique_ptr<StatefulVerifier> fraud_;  // The built-in fraud rules (FraudVerifier).
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
  std::unique_ptr<StatefulVerifier> shadow_fraud_;
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

#endif  // VOUCH_ENGINE_INTERNAL_ENGINE_IMPL_H_
