#include "engine/internal/engine_impl.h"

#include <algorithm>
#include <cassert>
#include <pthread.h>

#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/common/check.h"
#include "engine/common/logger.h"
#include "engine/journal/segment_format.h"
#include "engine/recovery/opening.h"
#include "engine/recovery/replayer.h"
#include "verifiers/fraud/fraud_verifier.h"
#include "verifiers/fraud/rules_file.h"

namespace vouch {

static_assert(kAccountTransactionsLimitMax == AccountActivity::kLimitMax,
              "the public bound is the index's");

namespace {

using Shard = internal::IngestCounters::Shard;
using internal::IngestCounters;

// Options::admission_backlog_max_ns (0: never): the stage's oldest unchecked transaction has
// waited longer than `max_ns` (this also catches a stalled stage), or a new transaction would:
// it waits for the whole backlog ahead of it, at the stage's measured pace. The head's age
// alone would let the tail wait about max_ns times the overload factor.
bool Backlogged(const VerifierStage& stage, Sequence claimed, int64_t now_ns, int64_t max_ns) {
  if (max_ns == 0) return false;
  const int64_t since_ns = stage.backlog_since_ns();
  if (since_ns == 0) return false;  // Caught up.
  if (now_ns - since_ns > max_ns) return true;
  const Sequence checked_below = stage.checked_below();
  const uint64_t backlog = claimed >= checked_below ? claimed + 1 - checked_below : 0;
  return static_cast<int64_t>(backlog) * stage.ns_per_check() > max_ns;
}

// The verifiers the engine runs after fraud and ledger: Options::verifiers, then the shadow fraud
// rules' if set. Their places are their VerifierIds (3 on).
std::vector<VerifierSpec> RegisteredVerifiers(const Options& options) {
  std::vector<VerifierSpec> all = options.verifiers;
  if (options.shadow_fraud_rules.has_value()) {
    all.push_back({"fraud_shadow", VerifierPolicy::kShadow, false, -1,
                   std::make_shared<fraud::ShadowFraudVerifier>(
                       *options.shadow_fraud_rules, options.fraud_account_capacity)});
  }
  return all;
}

// The rules as the journal records them (the rules file format); InvalidArgument when that text
// would not fit in a journal record.
absl::StatusOr<std::string> RulesRecordText(const fraud::FraudRules& rules) {
  std::string text = fraud::FormatFraudRules(rules);
  if (text.size() > journal::kRecordPayloadBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fraud rules: ", text.size(), " bytes in the rules file format, above the journal's ",
        journal::kRecordPayloadBytesMax));
  }
  return text;
}

Confirmation Busy(uint64_t id, Reason reason) {
  return {id, ConfirmStatus::kBusy, reason, 0, 0, false, false};
}

// A transaction's two accounts counted in flight from before ingest reads their state a second
// time until it is admitted (then the reconciler releases the count when it retires) or not
// (then this releases it). seq_cst, paired with CloseAccount's seq_cst store of kClosing and
// load of the count: either the close sees this count, or Closing() sees the close.
class AccountsInFlight {
 public:
  AccountsInFlight(AccountRecord* source, AccountRecord* destination)
      : source_(source), destination_(destination) {
    if (source_ == nullptr) return;
    source_->in_flight.fetch_add(1, std::memory_order_seq_cst);
    destination_->in_flight.fetch_add(1, std::memory_order_seq_cst);
  }
  ~AccountsInFlight() {
    if (source_ == nullptr || kept_) return;
    source_->in_flight.fetch_sub(1, std::memory_order_seq_cst);
    destination_->in_flight.fetch_sub(1, std::memory_order_seq_cst);
  }
  AccountsInFlight(const AccountsInFlight&) = delete;
  AccountsInFlight& operator=(const AccountsInFlight&) = delete;
  bool Closing() const {
    return source_ != nullptr &&
           (source_->state.load(std::memory_order_seq_cst) == AccountRecord::kClosing ||
            destination_->state.load(std::memory_order_seq_cst) == AccountRecord::kClosing);
  }
  void Keep() { kept_ = true; }

 private:
  AccountRecord* const source_;
  AccountRecord* const destination_;
  bool kept_ = false;
};

NewAccount FromSpec(const ledger::AccountSpec& spec) {
  NewAccount account;
  account.id = spec.id;
  account.currency = spec.currency;
  account.opening_balance_minor = spec.balance_minor;
  account.overdraft_limit_minor = spec.overdraft_limit_minor;
  account.flags = spec.flags;
  return account;
}

}  // namespace

EngineImpl::EngineImpl(Options options)
    : options_(std::move(options)),
      verifier_specs_(RegisteredVerifiers(options_)),
      clock_(options_.clock != nullptr ? options_.clock : MonotonicClock::Default()),
      unix_offset_ns_(clock_->UnixOffsetNs()),
      watched_accounts_(options_.policy.watched_accounts.begin(),
                        options_.policy.watched_accounts.end()),
      accounts_(options_.account_capacity),
      ring_(options_.in_flight_capacity),
      idempotency_(options_.idempotency_window, options_.idempotency_retention_ns),
      risk_(options_.risk.limits),
      history_(options_.history_capacity,
               HistoryRecordBytes(kBuiltinVerifierCount +
                                  static_cast<int>(verifier_specs_.size()))),
      // Its capacity (>= in_flight_capacity, Validate) is what lets Submit threads write it.
      activity_(options_.history_capacity),
      // One verdict per live ring entry at most, so the ring capacity bounds these queues.
      fraud_verdicts_(options_.in_flight_capacity),
      ledger_verdicts_(options_.in_flight_capacity),
      settlements_(options_.in_flight_capacity) {}

// Records per journal write: large, because under `durable` one sync is shared by the whole
// batch (group commit), and a sync costs the same for 1 record as for thousands (see
// bench/engine/journal). The segment writer's 4 MiB buffer holds ~38,000 records.
constexpr int kJournalBatchMax = 8192;

// A snapshot replaces the ledger's accounts with those it saved. One that pins the opening
// configuration has exactly the configured accounts (Recover checks that first); one written
// before the configuration was pinned may lack accounts added to it since: they are opened now.
absl::Status EngineImpl::OpenMissingAccounts(ledger::Ledger* ledger) const {
  for (const ledger::AccountSpec& account : options_.accounts) {
    if (ledger->Find(account.id).has_value()) continue;
    if (absl::Status status = ledger->OpenAccount(account); !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("opening account ", account.id, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

// The snapshotter's shadow: verifiers of its own, in the state the engine recovered from.
absl::Status EngineImpl::CreateSnapshotter(absl::string_view snapshot_state) {
  shadow_fraud_ = std::make_unique<fraud::FraudVerifier>(options_.fraud_rules,
                                                         options_.fraud_account_capacity);
  shadow_ledger_ = std::make_unique<ledger::Ledger>(
      std::max(options_.ledger_account_capacity, options_.account_capacity),
      2 * options_.in_flight_capacity);
  shadow_accounts_ = std::make_unique<AccountDirectory>(options_.account_capacity);
  for (const ledger::AccountSpec& account : options_.accounts) {
    if (absl::Status status = shadow_ledger_->OpenAccount(account); !status.ok()) return status;
    AccountRecord* record = shadow_accounts_->Insert(FromSpec(account), 0);
    // relaxed: before the snapshot thread exists.
    record->state.store(static_cast<uint8_t>(AccountState::kOpen), std::memory_order_relaxed);
  }
  shadow_accounts_->SetOpenedBelow(shadow_accounts_->size());
  auto shadow = std::make_unique<Replayer>(
      Replayer::Targets{shadow_fraud_.get(), shadow_ledger_.get(), shadow_accounts_.get(),
                        nullptr},
      options_.in_flight_capacity, options_.idempotency_window, -unix_offset_ns_);
  if (!snapshot_state.empty()) {
    if (absl::Status status = shadow->Restore(snapshot_state); !status.ok()) return status;
    if (absl::Status status = OpenMissingAccounts(shadow_ledger_.get()); !status.ok()) {
      return status;
    }
  }
  snapshotter_ = std::make_unique<Snapshotter>(options_.durability.dir, std::move(shadow),
                                               recovery_.snapshot_record_index,
                                               options_.durability.snapshot_interval_records);
  return absl::OkStatus();
}

// The snapshot thread: polls for closed segments every 100 ms. A failed snapshot (a full disk)
// is counted, logged and tried again, backing off to once every 10 s while it keeps failing;
// the journal is intact meanwhile, and recovery replays whatever no snapshot covers. Only a
// shadow that could not follow the journal stops snapshots for good, counted and logged too.
void EngineImpl::RunSnapshots() {
  pthread_setname_np(pthread_self(), "vouch-snapshot");
  constexpr absl::Duration kPollInterval = absl::Milliseconds(100);
  constexpr absl::Duration kBackOffMax = absl::Seconds(10);
  absl::Duration wait = kPollInterval;
  absl::MutexLock lock(&snapshot_mu_);
  while (!snapshot_stop_) {
    snapshot_mu_.Unlock();
    const absl::Status status = PollSnapshot();
    snapshot_mu_.Lock();
    if (snapshotter_->broken()) return;
    wait = status.ok() ? kPollInterval : std::min(2 * wait, kBackOffMax);
    if (!status.ok()) {
      Log(LogSeverity::kWarning, absl::StrFormat("snapshot failed, trying again in %s: %s",
                                                 absl::FormatDuration(wait), status.ToString()));
    }
    snapshot_mu_.AwaitWithTimeout(absl::Condition(&snapshot_stop_), wait);
  }
}

absl::Status EngineImpl::PollSnapshot() {
  if (snapshotter_ == nullptr) return absl::FailedPreconditionError("no snapshotter configured");
  const absl::Status status = snapshotter_->Poll();
  // relaxed (all): statistics, written by the one thread that polls.
  snapshots_written_.store(snapshotter_->snapshots(), std::memory_order_relaxed);
  if (status.ok()) return status;
  snapshot_failures_.fetch_add(1, std::memory_order_relaxed);
  if (snapshotter_->broken() && !snapshots_stopped_.load(std::memory_order_relaxed)) {
    snapshots_stopped_.store(true, std::memory_order_relaxed);
    Log(LogSeverity::kError, absl::StrCat("snapshots stopped for this process (recovery "
                                          "replays the journal instead): ", status.ToString()));
  }
  return status;
}

// The first record of a new journal (or the next one of a journal written before the opening
// configuration was pinned): synced at once, whatever the ack policy, since every later start
// trusts it.
absl::Status EngineImpl::RecordOpening(journal::SegmentWriter& writer) const {
  const journal::OpeningRecord opening = OpeningOf(options_.accounts);
  char record[journal::kOpeningRecordBytesMax];
  const size_t size = journal::EncodeOpeningRecord(opening, record);
  if (!writer.Add(journal::RecordType::kOpening, 0, record, size)) {
    return absl::InternalError("the journal writer refused the opening configuration record");
  }
  if (absl::Status status = writer.Write(); !status.ok()) return status;
  return writer.Sync();
}

absl::Status EngineImpl::Init() {
  // The built-in fraud rules: from here on the engine sees them as a StatefulVerifier only.
  fraud_ = std::make_unique<fraud::FraudVerifier>(options_.fraud_rules,
                                                  options_.fraud_account_capacity);
  // Reservations outlive their ring entry only while their settlement is queued, so twice the
  // ring capacity always suffices; the ledger stage waits (back-pressure) if it ever does not.
  // Every created account is opened in the ledger, so its tables are sized for all of them.
  ledger_ = std::make_unique<ledger::Ledger>(
      std::max(options_.ledger_account_capacity, options_.account_capacity),
      2 * options_.in_flight_capacity);
  if (absl::Status status = CreateConfiguredAccounts(); !status.ok()) return status;
  if (options_.outcome_sink == nullptr) {
    // One explicit producer (the reconciler); try_enqueue never allocates past this capacity.
    poll_queue_ = std::make_unique<OutcomeQueue>(options_.outcome_queue_capacity, 1, 0);
  }
  const int batch_max = options_.stage_batch_max;
  fraud_stage_ = std::make_unique<FraudStage>(fraud_.get(), &ring_, &fraud_verdicts_, clock_,
                                              batch_max, &rules_handoff_);
  ledger_stage_ = std::make_unique<LedgerStage>(ledger_.get(), &settlements_, &ring_,
                                                &ledger_verdicts_, clock_, batch_max);
  stages_[VerifierSlot(VerifierId::kFraud)] = fraud_stage_.get();
  stages_[VerifierSlot(VerifierId::kLedger)] = ledger_stage_.get();
  for (size_t i = 0; i < verifier_specs_.size(); ++i) {
    const VerifierSpec& spec = verifier_specs_[i];
    // One verdict per live ring entry at most, so the ring capacity bounds the queue (an
    // asynchronous verifier's answers wait in its stage when it is full).
    custom_verdicts_.push_back(std::make_unique<VerdictQueue>(options_.in_flight_capacity));
    std::string role = std::string("vouch-").append(spec.name.data(), spec.name.size());
    role.resize(std::min(role.size(), kThreadNameLengthMax));
    const VerifierId id = CustomVerifierId(static_cast<int>(i));
    if (spec.async_verifier != nullptr) {
      auto stage = std::make_unique<AsyncVerifierStage>(
          id, std::move(role), spec.async_verifier.get(), &ring_, custom_verdicts_.back().get(),
          clock_, batch_max, options_.in_flight_capacity);
      async_stages_[VerifierSlot(id)] = stage.get();
      custom_stages_.push_back(std::move(stage));
    } else {
      custom_stages_.push_back(std::make_unique<CustomVerifierStage>(
          id, std::move(role), spec.verifier.get(), &ring_, custom_verdicts_.back().get(),
          clock_, batch_max));
    }
    stages_[verifier_count_++] = custom_stages_.back().get();
  }
  Sequence first_seq = 1;
  if (const DurabilityOptions& durability = options_.durability;
      durability.ack != AckPolicy::kMemory) {
    // Before anything in the directory is read: another engine may be writing it.
    absl::StatusOr<std::unique_ptr<journal::DataDirLock>> lock = journal::DataDirLock::Acquire(
        durability.dir, durability.read_only ? journal::DataDirLock::Create::kNever
                                             : journal::DataDirLock::Create::kIfMissing);
    if (!lock.ok()) return lock.status();
    dir_lock_ = *std::move(lock);
    // Under the lock no snapshot is being written: a temporary is a crash's leftover.
    absl::StatusOr<uint64_t> temporaries = durability.read_only
                                               ? CountSnapshotTemporaries(durability.dir)
                                               : RemoveSnapshotTemporaries(durability.dir);
    if (!temporaries.ok()) return temporaries.status();
    recovery_.snapshot_temporaries = *temporaries;
    // The snapshot recovery started from (mapped, not read into memory), which the
    // snapshotter's shadow starts from too.
    std::optional<LoadedSnapshot> snapshot;
    if (absl::Status status = Recover(&snapshot); !status.ok()) return status;
    first_seq = recovery_.outcomes + 1;
    if (!durability.read_only) {
      if (durability.snapshot_interval_records > 0) {
        if (absl::Status status =
                CreateSnapshotter(snapshot.has_value() ? snapshot->state : absl::string_view());
            !status.ok()) {
          return status;
        }
      }
      snapshot.reset();
      auto writer = journal::SegmentWriter::Open({durability.dir, durability.segment_bytes_max},
                                                 recovery_.next_record_index);
      if (!writer.ok()) return writer.status();
      if (recovery_.opening_recorded) {
        if (absl::Status status = RecordOpening(**writer); !status.ok()) return status;
      }
      journal_stage_ = std::make_unique<JournalStage>(
          *std::move(writer), durability.ack, &ring_, recovery_.confirmed + 1,
          recovery_.outcomes + 1, unix_offset_ns_, ring_.capacity(), kJournalBatchMax);
      journal_stage_->SetOnFatal(options_.on_fatal);
      if (absl::Status status = JournalStartupRules(first_seq); !status.ok()) return status;
    }
    ring_.StartAt(first_seq);
    for (int slot = 0; slot < verifier_count_; ++slot) stages_[slot]->StartAt(first_seq);
  }
  {
    // Recovery may have created accounts (replayed or restored): every one is open now, in the
    // directory and in the ledger, and counts in its currency's reach.
    absl::MutexLock lock(&accounts_mu_);
    accounts_.SetOpenedBelow(accounts_.size());
    creations_pending_from_ = accounts_.size();
    for (size_t i = 0; i < accounts_.size(); ++i) {
      const NewAccount& a = accounts_.At(i).fields;
      reach_minor_[CurrencySlot(a.currency)] += a.opening_balance_minor + a.overdraft_limit_minor;
    }
    ledger_stage_->SetAccounts(&accounts_, accounts_.size());
  }
  ReconcilerPorts ports;
  ports.journal = journal_stage_.get();
  ports.risk = risk_.enabled() ? &risk_ : nullptr;
  ports.rules = &rules_handoff_;
  ports.ring = &ring_;
  ports.verifier_count = verifier_count_;
  ports.verdicts[VerifierSlot(VerifierId::kFraud)] = &fraud_verdicts_;
  ports.verdicts[VerifierSlot(VerifierId::kLedger)] = &ledger_verdicts_;
  for (size_t i = 0; i < custom_verdicts_.size(); ++i) {
    const int slot = VerifierSlot(CustomVerifierId(static_cast<int>(i)));
    const VerifierSpec& spec = verifier_specs_[i];
    ports.verdicts[slot] = custom_verdicts_[i].get();
    ports.roles[slot] = {spec.policy == VerifierPolicy::kRequired, spec.hold_account_on_failure,
                         spec.policy == VerifierPolicy::kShadow, async_stages_[slot]};
  }
  ports.settlements = &settlements_;
  ports.accounts = &accounts_;
  ports.history = &history_;
  ports.sink = options_.outcome_sink;
  ports.poll_queue = poll_queue_.get();
  ports.clock = clock_;
  ports.fail_in_flight_on_hold = options_.fail_in_flight_on_hold;
  ports.idempotency = &idempotency_;
  reconciler_ = std::make_unique<Reconciler>(ports, batch_max);
  reconciler_->StartAt(first_seq);
  return absl::OkStatus();
}

EngineImpl::~EngineImpl() {
  if (started_ && !stopped_) (void)Stop();
}

absl::Status EngineImpl::Start() {
  if (started_) return absl::FailedPreconditionError("engine already started");
  started_ = true;
  if (!options_.inline_mode) {
    std::vector<std::pair<Agent*, int>> stages = {{fraud_stage_.get(), options_.cpus.fraud},
                                                  {ledger_stage_.get(), options_.cpus.ledger},
                                                  {reconciler_.get(), options_.cpus.reconcile}};
    if (journal_stage_ != nullptr) stages.push_back({journal_stage_.get(), -1});
    for (size_t i = 0; i < custom_stages_.size(); ++i) {
      stages.push_back({custom_stages_[i].get(), verifier_specs_[i].cpu});
    }
    for (const auto& [agent, cpu] : stages) {
      runners_.push_back(std::make_unique<AgentRunner>(agent, options_.idle, cpu));
      agents_.push_back(agent);
    }
    // Verdicts wake the reconciler; settlements need no wake-up (the ledger has its own work).
    // The journal wakes the reconciler when outcomes may be told; producers wake every stage.
    Parker* const reconciler_parker = runners_[kReconcilerRunner]->parker();
    for (int slot = 0; slot < verifier_count_; ++slot) {
      stages_[slot]->SetDownstream(reconciler_parker);
    }
    if (journal_stage_ != nullptr) {
      journal_stage_->SetParkers(runners_[3]->parker(), reconciler_parker);
    }
    for (auto& runner : runners_) {
      if (absl::Status status = runner->Start(); !status.ok()) {
        for (auto& started : runners_) started->Stop();
        return status;
      }
    }
  }
  if (snapshotter_ != nullptr && !options_.inline_mode) {
    snapshot_thread_ = std::thread([this] { RunSnapshots(); });
  }
  for (const journal::ConfirmedRecord& pending : pending_) Republish(pending);
  // Republished transactions are not indexed: the index holds this life's admissions only.
  activity_first_seq_ = ring_.claimed() + 1;
  pending_.clear();
  pending_.shrink_to_fit();
  // release: pairs with Submit's load; the stages are running before anything is accepted.
  accepting_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

DrainReport EngineImpl::Stop() {
  DrainReport report;
  if (!started_ || stopped_) return report;
  stopped_ = true;
  const int64_t start_ns = clock_->NowNs();
  // The drain timeout is real time even when the engine runs on a manual clock.
  const int64_t wall_start_ns = MonotonicClock::Default()->NowNs();
  // seq_cst: the Dekker handshake with IngestCounters::Enter; after the loop below, every
  // Submit either finished or will see "not accepting".
  accepting_.store(false, std::memory_order_seq_cst);
  // relaxed: sequencing is finished once no Submit is active; claimed() is then final.
  // Drained: every entry retired and every settlement taken by the ledger stage. A settlement
  // dequeued but not yet applied is finished by that stage's current turn before its thread
  // exits (the stop flag is checked between turns).
  auto drained = [&] {
    return reconciler_->retired_below() == ring_.claimed() + 1 &&
           settlements_.size_approx() == 0;
  };
  for (;;) {
    const bool quiet = ingest_counters_.active() == 0;
    if (quiet && drained()) break;
    // Nothing more can be acknowledged, so nothing more retires: do not wait for it.
    if (quiet && journal_stage_ != nullptr && journal_stage_->failed()) break;
    if (MonotonicClock::Default()->NowNs() - wall_start_ns > options_.drain_timeout_ns) break;
    if (options_.inline_mode) {
      if (Step() == 0 && quiet && !drained()) {
        // Inline with a manual clock: only the test's clock can expire deadlines; stop here.
        if (clock_ != MonotonicClock::Default()) break;
      }
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  report.confirmed = ring_.claimed();
  report.not_drained = report.confirmed - (reconciler_->retired_below() - 1);
  report.drained = drained();
  for (auto& runner : runners_) runner->Stop();
  if (journal_stage_ != nullptr) journal_stage_->Flush();
  if (snapshot_thread_.joinable()) {
    {
      absl::MutexLock lock(&snapshot_mu_);
      snapshot_stop_ = true;
    }
    snapshot_thread_.join();
  }  // Releases queued at the very end.
  // release: pairs with ReadBalances' acquire; it sees every write of the joined stages (the
  // joins already order them before this store).
  stages_stopped_.store(true, std::memory_order_release);
  report.elapsed_ns = clock_->NowNs() - start_ns;
  return report;
}

Reason EngineImpl::CheckWellFormed(const Transaction& txn) const {
  if (txn.id == 0) return Reason::kMalformedId;
  if (txn.amount_minor <= 0) return Reason::kMalformedAmount;
  if (txn.source_account == 0 || txn.destination_account == 0 ||
      txn.source_account == txn.destination_account) {
    return Reason::kMalformedSameAccount;
  }
  if (!IsSupportedCurrency(txn.currency)) return Reason::kUnknownCurrency;
  if (txn.attributes.size > kAttributesBytesMax) return Reason::kMalformedAttributes;
  return Reason::kNone;
}

bool EngineImpl::ShouldHold(const Transaction& txn) const {
  switch (options_.policy.mode) {
    case PolicyMode::kAsync:
      return false;
    case PolicyMode::kSync:
      return true;
    case PolicyMode::kHybrid:
      return txn.amount_minor >= options_.policy.hold_amount_minor_min ||
             watched_accounts_.contains(txn.source_account);
  }
  return false;
}

Confirmation EngineImpl::Submit(const Transaction& txn, uint64_t origin, AckWait ack_wait,
                            HeldAnswer held_answer) {
  Shard& shard = ingest_counters_.Mine();
  IngestCounters::Enter(shard);
  Confirmation answer;
  // seq_cst: see Stop. A read-only engine could keep nothing it confirmed.
  if (!accepting_.load(std::memory_order_seq_cst) || options_.durability.read_only) {
    answer = Busy(txn.id, Reason::kShuttingDown);
  } else if (journal_stage_ != nullptr && journal_stage_->failed()) {
    answer = Busy(txn.id, Reason::kJournalFailed);
  } else {
    answer = Answer(txn, origin, shard, clock_->NowNs());
  }
  if (answer.status != ConfirmStatus::kBusy && answer.seq != 0) answer.ack.confirmed = answer.seq;
  if (answer.status == ConfirmStatus::kRejected && !answer.duplicate) {
    IngestCounters::Add(shard.rejected[static_cast<int>(answer.reason)]);
  } else if (answer.status == ConfirmStatus::kBusy) {
    IngestCounters::Add(shard.busy[static_cast<int>(answer.reason)]);
  }
  IngestCounters::Leave(shard);
  if (answer.status == ConfirmStatus::kPending) {
    InFlightEntry& entry = ring_.At(answer.seq);
    if (held_answer == HeldAnswer::kLater) {
      // Nobody will read the entry: the reconciler may free it once decided. acq_rel: the
      // reconciler's kReady (if it won) is consumed; our kDone releases the entry.
      (void)entry.held_state.exchange(HeldState::kDone, std::memory_order_acq_rel);
      return answer;
    }
    answer = FinalHeldAnswer(answer, AwaitHeld(entry));
  }
  const Confirmation acked = Acked(answer, ack_wait);
  if (acked.status != answer.status) {
    // Counted where it was decided: the journal failed before the answer was kept.
    IngestCounters::Add(ingest_counters_.Mine().busy[static_cast<int>(acked.reason)]);
  }
  return acked;
}

Confirmation EngineImpl::Acked(const Confirmation& confirmation, AckWait ack_wait) const {
  // A duplicate's original may still be on its way to the journal too. A held answer's outcome
  // is kept already (the reconciler hands it over only then); its confirmed record came first.
  if (ack_wait == AckWait::kInSubmit && confirmation.status != ConfirmStatus::kBusy &&
      !AwaitAck(confirmation.ack)) {
    // Never kept: the client must not take it as an answer, and retries the same id later.
    return Busy(confirmation.id, Reason::kJournalFailed);
  }
  return confirmation;
}

// The refusal ingest stores as txn's answer (IsStoredRefusal), or kNone. REQUIRES: txn.id != 0.
// Two directory lookups (O(1), lock-free); see docs/DESIGN.md for the order of the checks.
Reason EngineImpl::Refusal(const Transaction& txn, AccountRecord** source,
                       AccountRecord** destination) const {
  if (const Reason malformed = CheckWellFormed(txn); malformed != Reason::kNone) return malformed;
  if (txn.amount_minor > options_.amount_minor_max) return Reason::kOverLimit;
  AccountRecord* const from = accounts_.FindMutable(txn.source_account);
  AccountRecord* const to = accounts_.FindMutable(txn.destination_account);
  if (from == nullptr || to == nullptr) return Reason::kUnknownAccount;
  const uint8_t from_state = from->LoadState();
  const uint8_t to_state = to->LoadState();
  // Created, but its creation is not kept yet: not usable (account_directory.h).
  if (from_state == AccountRecord::kCreating || to_state == AccountRecord::kCreating) {
    return Reason::kUnknownAccount;
  }
  if (txn.currency != from->fields.currency || txn.currency != to->fields.currency) {
    return Reason::kCurrencyMismatch;
  }
  constexpr auto kClosed = static_cast<uint8_t>(AccountState::kClosed);
  constexpr auto kFrozen = static_cast<uint8_t>(AccountState::kFrozen);
  auto closed = [](uint8_t state) {
    return state == kClosed || state == AccountRecord::kClosing;
  };
  if (closed(from_state) || closed(to_state)) return Reason::kAccountClosed;
  if (from_state == kFrozen || to_state == kFrozen) return Reason::kAccountFrozen;
  // relaxed: one limit read on its own.
  const int64_t limit_minor = from->transaction_minor_max.load(std::memory_order_relaxed);
  if (limit_minor != 0 && txn.amount_minor > limit_minor) return Reason::kOverLimit;
  // relaxed: a flag read on its own; a hold placed an instant later fails this one in flight.
  if (from->on_hold.load(std::memory_order_relaxed)) return Reason::kAccountOnHold;
  *source = from;
  *destination = to;
  return Reason::kNone;
}

// A stored refusal: queued for the journal first, so that its answer is told only once kept (the
// ack position), then stored for the id. BUSY, with the claim released for the retry, when the
// journal's refusal ring is full.
Confirmation EngineImpl::Refuse(const Transaction& txn, uint64_t ticket, Reason reason,
                            int64_t now_ns) {
  Confirmation refused{txn.id, ConfirmStatus::kRejected, reason, 0, 0, false, false};
  if (journal_stage_ != nullptr) {
    refused.ack.refused =
        journal_stage_->RecordRefusal(txn.id, reason, now_ns, ContentFingerprint(txn));
    if (refused.ack.refused == 0) {
      idempotency_.Release(ticket);
      return Busy(txn.id, Reason::kQueueFull);
    }
  }
  idempotency_.Record(ticket, {ConfirmStatus::kRejected, reason, false, 0, now_ns});
  return refused;
}

Confirmation EngineImpl::Answer(const Transaction& txn, uint64_t origin, Shard& shard,
                             int64_t now_ns) {
  // An id of 0 names nothing to store an answer under: refused afresh each time, never stored.
  if (txn.id == 0) {
    return {txn.id, ConfirmStatus::kRejected, Reason::kMalformedId, 0, 0, false, false};
  }
  const uint64_t fingerprint = ContentFingerprint(txn);
  auto duplicate = [&](const StoredAnswer& original) -> Confirmation {
    // The id was first seen with other fields: refused, not stored (the original answer stays
    // the id's), counted as a rejection. Told once the original is kept, like a duplicate: only
    // then is the id taken. A fingerprint of 0 is unknown (a journal from before fingerprints).
    if (original.fingerprint != 0 && original.fingerprint != fingerprint) {
      Confirmation reused{txn.id, ConfirmStatus::kRejected, Reason::kIdReusedWithDifferentFields,
                          0, 0, false, false};
      reused.ack.confirmed = original.seq;
      if (original.seq == 0 && journal_stage_ != nullptr) {
        reused.ack.refused = journal_stage_->refusals_queued();
      }
      return reused;
    }
    IngestCounters::Add(shard.duplicates);
    const int64_t deadline_ns =
        original.seq != 0 ? original.received_ns + options_.verification_deadline_ns : 0;
    Confirmation answer{txn.id, original.status, original.reason, original.seq, deadline_ns,
                        true, original.held};
    // The original may still be on its way to the journal. A refusal's number is not stored:
    // every refusal queued so far includes it.
    if (original.seq == 0 && journal_stage_ != nullptr) {
      answer.ack.refused = journal_stage_->refusals_queued();
    }
    return answer;
  };
  AccountRecord* source = nullptr;
  AccountRecord* destination = nullptr;
  Reason refusal = Refusal(txn, &source, &destination);
  AccountsInFlight in_flight(source, destination);  // Both null unless refusal is kNone.
  if (in_flight.Closing()) refusal = Reason::kAccountClosed;
  // Under overload most Submits find the ring full, or (admission_backlog_max_ns) a verifier's
  // backlog older than the bound: refuse them before they claim the id, so that they take no
  // node of the idempotency table (a claim released later gives its node back to its retry:
  // IdempotencyTable). A resubmitted id still gets its answer (content-checked), and a
  // refusal, which needs no room in the ring, is still told.
  const int64_t backlog_max_ns = options_.admission_backlog_max_ns;
  if (refusal == Reason::kNone &&
      (ring_.LooksFull() || AnyVerifierBacklogged(now_ns, backlog_max_ns))) {
    if (const std::optional<StoredAnswer> original = idempotency_.Find(txn.id)) {
      return duplicate(*original);
    }
    return Busy(txn.id, Reason::kQueueFull);
  }
  const IdempotencyTable::Claim claim = idempotency_.ClaimId(txn.id, fingerprint, now_ns);
  switch (claim.kind) {
    case IdempotencyTable::ClaimKind::kNew: break;
    case IdempotencyTable::ClaimKind::kDuplicate: return duplicate(claim.answer);
    case IdempotencyTable::ClaimKind::kInFlight: return Busy(txn.id, Reason::kDuplicateInFlight);
    case IdempotencyTable::ClaimKind::kFull: return Busy(txn.id, Reason::kQueueFull);
    case IdempotencyTable::ClaimKind::kRetention:
      return Busy(txn.id, Reason::kIdempotencyRetention);
  }
  if (refusal != Reason::kNone) return Refuse(txn, claim.ticket, refusal, now_ns);
  // The source's day so far, charged with this one unless that passes a daily limit (exact under
  // concurrency: daily_usage.h). Charged whether or not a limit is set, so that a limit set
  // during the day counts the whole day; taken back below if the answer is BUSY.
  const DailyUsage::ChargeResult daily = source->daily.TryCharge(
      DailyUsage::DayOf(now_ns + unix_offset_ns_), txn.amount_minor,
      // relaxed: each limit is one value read on its own.
      source->daily_minor_max.load(std::memory_order_relaxed),
      source->daily_count_max.load(std::memory_order_relaxed));
  if (daily.charge != DailyUsage::Charge::kCharged) {
    return Refuse(txn, claim.ticket,
                  daily.charge == DailyUsage::Charge::kOverAmount ? Reason::kDailyAmountLimit
                                                                  : Reason::kDailyCountLimit,
                  now_ns);
  }
  bool held = ShouldHold(txn);
  bool at_risk = false;
  if (!held && risk_.enabled()) {
    // Over a risk cap, a transaction is not confirmed before it is verified.
    if (risk_.TryAdd(source, txn.currency, txn.amount_minor)) {
      at_risk = true;
    } else if (options_.risk.action == RiskAction::kBusy) {
      idempotency_.Release(claim.ticket);  // Nothing was recorded: a retry must be admitted.
      source->daily.Refund(daily.day, txn.amount_minor);
      return Busy(txn.id, Reason::kRiskLimit);
    } else {
      held = true;
      IngestCounters::Add(shard.risk_holds);
    }
  }
  const Confirmation admitted =
      Admit(txn, origin, claim.ticket, held, at_risk, *source, *destination, shard, now_ns);
  if (admitted.status != ConfirmStatus::kBusy) {
    in_flight.Keep();  // The reconciler releases it.
  } else {
    source->daily.Refund(daily.day, txn.amount_minor);
  }
  return admitted;
}

Confirmation EngineImpl::Admit(const Transaction& txn, uint64_t origin, uint64_t ticket, bool held,
                           bool at_risk, AccountRecord& source, AccountRecord& destination,
                           Shard& shard, int64_t now_ns) {
  vouch::Sequence seq = 0;
  InFlightEntry* entry = ring_.Claim(&seq);
  if (entry == nullptr) {
    idempotency_.Release(ticket);  // Nothing was recorded: a retry must be admitted.
    if (at_risk) risk_.Remove(&source, txn.currency, txn.amount_minor);
    return Busy(txn.id, Reason::kQueueFull);
  }
  const int64_t deadline_ns = now_ns + options_.verification_deadline_ns;
  entry->payload = {txn, now_ns, deadline_ns, held, origin, at_risk, held ? ticket : 0};
  // Before Publish: this thread owns the seq (AccountActivity's protocol).
  activity_.Record({seq, txn.id, txn.source_account, txn.destination_account, txn.amount_minor,
                    now_ns, txn.currency, held},
                   source.newest_activity_seq, destination.newest_activity_seq);
  entry->reconcile = {};
  entry->reconcile.record.seq = seq;
  entry->reconcile.record.id = txn.id;
  entry->reconcile.record.attributes = txn.attributes;
  // relaxed: published by the release in Publish.
  entry->held_state.store(held ? HeldState::kWaiting : HeldState::kNotHeld,
                          std::memory_order_relaxed);
  if (!held) {
    // Recorded before Publish, so a duplicate never sees this id as merely in flight.
    idempotency_.Record(ticket, {ConfirmStatus::kConfirmed, Reason::kNone, false, seq, now_ns});
  }
  ring_.Publish(entry, seq);
  WakeStages();
  IngestCounters::Add(shard.confirmed);
  if (!held) {
    // The slot exists: CheckWellFormed refused unsupported currencies.
    IngestCounters::AddMinor(shard.confirmed_unheld_minor[CurrencySlot(txn.currency)],
                             txn.amount_minor);
    return {txn.id, ConfirmStatus::kConfirmed, Reason::kNone, seq, deadline_ns, false, false};
  }

  // Held: the reconciler records the final answer under `ticket` once its outcome is kept;
  // until then a resubmission is BUSY duplicate_in_flight. Submit waits here or not.
  IngestCounters::Add(shard.held);
  return {txn.id, ConfirmStatus::kPending, Reason::kNone, seq, deadline_ns, false, true};
}

// REQUIRES: `entry` is held and its held_state is still kWaiting or kReady (this thread owns
// the reading side: the reconciler frees the entry only after our kDone).
Outcome EngineImpl::AwaitHeld(InFlightEntry& entry) {
  // acquire (all loads below): pairs with the reconciler's release of kReady.
  if (options_.inline_mode) {
    while (entry.held_state.load(std::memory_order_acquire) != HeldState::kReady) Step();
  } else {
    for (int spin = 0; spin < 2000; ++spin) {
      if (entry.held_state.load(std::memory_order_acquire) == HeldState::kReady) break;
    }
    while (entry.held_state.load(std::memory_order_acquire) != HeldState::kReady) {
      entry.held_state.wait(HeldState::kWaiting, std::memory_order_acquire);
    }
  }
  const Outcome outcome = entry.held_outcome;
  // release: we are done reading the entry; the reconciler may free it.
  entry.held_state.store(HeldState::kDone, std::memory_order_release);
  return outcome;
}

void EngineImpl::WakeStages() {
  for (auto& runner : runners_) runner->parker()->Unpark();
}

size_t EngineImpl::PollOutcomes(Outcome* out, size_t max) {
  if (poll_queue_ == nullptr) return 0;
  return poll_queue_->try_dequeue_bulk(out, max);
}

absl::StatusOr<Sequence> EngineImpl::PromoteShadowFraudRules() {
  if (!options_.shadow_fraud_rules.has_value()) {
    return absl::FailedPreconditionError("no shadow fraud rules to promote (shadow_fraud_rules)");
  }
  return ReplaceFraudRules(*options_.shadow_fraud_rules);
}

absl::StatusOr<Sequence> EngineImpl::ReplaceFraudRules(fraud::FraudRules rules) {
  if (absl::Status status = rules.Validate(); !status.ok()) return status;
  absl::StatusOr<std::string> text = RulesRecordText(rules);
  if (!text.ok()) return text.status();
  RulesHandoff& handoff = rules_handoff_;
  // The start-up rules' record (or an earlier reload) may still be on its way to the journal:
  // wait for it, bounded, rather than refuse a caller who has nothing under way. Inline, one
  // Step lets the reconciler journal it. seq_cst: the handoff's protocol (rules_handoff.h).
  if (options_.inline_mode && handoff.posted.load(std::memory_order_seq_cst)) Step();
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&handoff.mu);
    auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(handoff.mu) {
      // relaxed: under the mutex, which the reconciler holds when it clears the flag.
      return !handoff.posted.load(std::memory_order_relaxed);
    };
    if (!options_.inline_mode) {
      (void)handoff.mu.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(5));
    }
    if (!idle()) {
      return absl::UnavailableError("an earlier fraud rule reload is still under way; retry");
    }
    handoff.text = *std::move(text);
    handoff.decided = false;
    generation = ++handoff.posted_generation;
    // seq_cst: the handoff's protocol (rules_handoff.h).
    handoff.posted.store(true, std::memory_order_seq_cst);
  }
  WakeStages();
  // Inline: one Step runs the fraud stage (it decides F), then the reconciler (it journals).
  if (options_.inline_mode) Step();
  absl::MutexLock lock(&handoff.mu);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(handoff.mu) {
    return handoff.done_generation >= generation;
  };
  if (!handoff.mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(5))) {
    return absl::DeadlineExceededError(
        "the stages have not taken the new fraud rules within 5 s (stalled?); they are posted "
        "and apply when they resume");
  }
  return handoff.done_from;
}

// The start-up rules judge from `first_seq`, the first sequence number this process decides
// (what was undecided is judged again, by them). Journaled unless the journal already ends on
// exactly these rules, so that a replay switches to them at the same place.
absl::Status EngineImpl::JournalStartupRules(Sequence first_seq) {
  absl::StatusOr<std::string> record_text = RulesRecordText(options_.fraud_rules);
  if (!record_text.ok()) return record_text.status();
  const std::string& text = *record_text;
  if (text == recovered_rules_text_ && !recovered_rules_pending_) return absl::OkStatus();
  // Not applied here: the checker keeps the recovered state until the stage judges first_seq,
  // exactly where a replay of this journal switches (a switch clears the velocity counts when the
  // window changes, so switching early, or twice, would leave a state no replay gives).
  fraud_stage_->StartWith(first_seq, text);
  // Decided already (the fraud stage has them); the reconciler's first turn journals the record
  // ahead of any outcome, as for a reload. Before any stage runs: nothing else touches it.
  absl::MutexLock lock(&rules_handoff_.mu);
  rules_handoff_.text = text;
  rules_handoff_.decided = true;
  rules_handoff_.from = first_seq;
  rules_handoff_.posted_generation = 1;
  rules_handoff_.posted.store(true, std::memory_order_relaxed);  // relaxed: before the stages run.
  return absl::OkStatus();
}

bool EngineImpl::AnyVerifierBacklogged(int64_t now_ns, int64_t backlog_max_ns) const {
  if (backlog_max_ns == 0) return false;
  const Sequence claimed = ring_.claimed();
  for (int slot = 0; slot < verifier_count_; ++slot) {
    if (Backlogged(*stages_[slot], claimed, now_ns, backlog_max_ns)) return true;
  }
  return false;
}

const VerifierSpec* EngineImpl::CustomSpec(VerifierId verifier) const {
  const int custom = CustomVerifierIndex(verifier);
  if (custom < 0 || static_cast<size_t>(custom) >= verifier_specs_.size()) return nullptr;
  return &verifier_specs_[custom];
}

VerifierPolicy EngineImpl::VerifierPolicyOf(VerifierId verifier) const {
  const VerifierSpec* spec = CustomSpec(verifier);
  return spec != nullptr ? spec->policy : VerifierPolicy::kRequired;
}

std::string_view EngineImpl::VerifierName(VerifierId verifier) const {
  const VerifierSpec* spec = CustomSpec(verifier);
  return spec != nullptr ? std::string_view(spec->name) : vouch::VerifierName(verifier);
}

void EngineImpl::SlowVerifier(VerifierId verifier, int64_t cost_ns) {
  const int slot = VerifierSlot(verifier);
  if (slot >= 0 && slot < verifier_count_) stages_[slot]->SetCostPerTransaction(cost_ns);
}

// --- Balance reads ---------------------------------------------------------------------------
absl::Status EngineImpl::ReadBalances(absl::Span<const uint64_t> accounts, BalanceSnapshot* out,
                                  absl::Duration timeout) {
  // acquire: pairs with Start's release; the stage threads are running.
  if (!accepting_.load(std::memory_order_acquire)) {
    // acquire: pairs with Stop's release; no stage writes the ledger any more.
    if (stages_stopped_.load(std::memory_order_acquire)) {
      return ledger_stage_->ReadBalancesStopped(accounts, out);
    }
    return absl::UnavailableError("the engine is not running");
  }
  if (options_.inline_mode) {
    // Only this thread steps, so the read is served by the time Step returns.
    return ledger_stage_->ReadBalances(accounts, out, absl::ZeroDuration(), [this] { Step(); });
  }
  return ledger_stage_->ReadBalances(accounts, out, timeout,
                                     [this] { runners_[kLedgerRunner]->parker()->Unpark(); });
}
// ---------------------------------------------------------------------------------------------

int EngineImpl::Step() {
  return StepStage(InlineStage::kFraud) + StepStage(InlineStage::kLedger) +
         StepStage(InlineStage::kCustom) + StepStage(InlineStage::kReconcile) +
         StepStage(InlineStage::kJournal);
}

int EngineImpl::StepStage(InlineStage stage) {
  assert(options_.inline_mode);
  switch (stage) {
    case InlineStage::kFraud: return fraud_stage_->DoWork();
    case InlineStage::kLedger: return ledger_stage_->DoWork();
    case InlineStage::kReconcile: return reconciler_->DoWork();
    case InlineStage::kJournal: return journal_stage_ != nullptr ? journal_stage_->DoWork() : 0;
    case InlineStage::kCustom: {
      int work = 0;
      for (const std::unique_ptr<VerifierStage>& stage : custom_stages_) {
        work += stage->DoWork();
      }
      return work;
    }
  }
  return 0;
}

bool EngineImpl::AwaitAck(const AckPosition& position) const {
  if (journal_stage_ == nullptr || position.empty()) return true;
  if (options_.inline_mode) {
    // No stage thread: step the journal here (const-ness is the caller's view; see Step()).
    while (!journal_stage_->IsAcked(position)) {
      if (journal_stage_->failed()) return false;
      const_cast<EngineImpl*>(this)->Step();
    }
    return true;
  }
  return journal_stage_->AwaitAcked(position);
}

bool EngineImpl::journal_failed() const {
  return journal_stage_ != nullptr && journal_stage_->failed();
}

absl::Status EngineImpl::health() const {
  return journal_stage_ != nullptr ? journal_stage_->status() : absl::OkStatus();
}

absl::StatusOr<bool> EngineImpl::ReleaseHold(uint64_t account) {
  if (options_.durability.read_only) {
    return absl::FailedPreconditionError(
        "the engine is read-only (--check): a release could not be kept");
  }
  if (options_.inline_mode) {
    // Only this thread steps, so the release is served by the time Step returns (or the
    // journal is kOperatorEntriesQueuedMax releases behind: DeadlineExceeded, retry).
    return reconciler_->ReleaseHold(account, absl::ZeroDuration(), [this] { Step(); });
  }
  // None before Start.
  if (runners_.empty()) return absl::UnavailableError("the engine is not running");
  return reconciler_->ReleaseHold(account, absl::Seconds(5),
                                  [this] { runners_[kReconcilerRunner]->parker()->Unpark(); });
}

std::optional<Outcome> EngineImpl::FinalOutcome(Sequence seq) const {
  const std::optional<HistoryRecord> record = history_.Read(seq);
  if (!record.has_value() || !record->resolved) return std::nullopt;
  return record->outcome;
}

AccountTransactionsPage EngineImpl::AccountTransactions(
    const AccountTransactionsQuery& query) const {
  // The index keeps engine (monotonic) time. 0 stays open; a bound that maps to 0 or below is
  // clamped to 1, before anything the engine received.
  const int64_t offset_ns = unix_offset_ns_;
  auto engine_ns = [&](int64_t unix_ns) {
    return unix_ns == 0 ? 0 : std::max<int64_t>(unix_ns - offset_ns, 1);
  };
  const ActivityQuery activity_query{query.account, engine_ns(query.since_unix_ns),
                                     engine_ns(query.until_unix_ns), query.before_seq,
                                     query.limit};
  std::vector<ActivityHit> hits;
  hits.reserve(std::min(query.limit, kAccountTransactionsLimitMax));
  const Sequence newest_seq = ring_.claimed();
  const AccountRecord* account = accounts_.Find(query.account);
  const ActivityReport report = activity_.Read(
      activity_query, account != nullptr ? &account->newest_activity_seq : nullptr, &hits);
  AccountTransactionsPage page;
  page.more = report.more;
  page.next_before_seq = report.next_before_seq;
  const Sequence ring_oldest = newest_seq >= activity_.capacity()
                                   ? newest_seq - activity_.capacity() + 1 : 1;
  page.oldest_kept_seq = std::max(activity_first_seq_, ring_oldest);
  page.transactions.reserve(hits.size());
  for (const ActivityHit& hit : hits) {
    const ActivityEntry& entry = hit.entry;
    AccountTransaction& txn = page.transactions.emplace_back();
    txn = {entry.seq, entry.id, entry.source_account, entry.destination_account,
           entry.amount_minor, entry.currency, hit.debit, entry.held,
           entry.received_ns + offset_ns};
    txn.state = entry.held ? AccountTxnState::kHeld : AccountTxnState::kPending;
    // Both rings keep the same seqs and the reconciler writes after Admit, so a record that is
    // not there is one not decided yet.
    const std::optional<HistoryRecord> record = history_.Read(entry.seq);
    if (!record.has_value() || !record->resolved) continue;
    const Outcome& outcome = record->outcome;
    txn.state = outcome.kind == OutcomeKind::kVerified     ? AccountTxnState::kVerified
                : outcome.held                             ? AccountTxnState::kRejected
                : outcome.kind == OutcomeKind::kLateFailed ? AccountTxnState::kLateFailed
                                                           : AccountTxnState::kLateTimeout;
    txn.reason = outcome.reason;
    txn.verifier = outcome.verifier;
    txn.verifier_code = outcome.verifier_code;
    txn.decided_unix_ns = outcome.decided_ns + offset_ns;
  }
  return page;
}

std::optional<TransactionStatus> EngineImpl::Query(uint64_t id) const {
  const std::optional<StoredAnswer> answer = idempotency_.Find(id);
  if (!answer.has_value()) return std::nullopt;
  TransactionStatus status;
  status.id = id;
  status.seq = answer->seq;
  std::vector<StateChange>& history = status.history;
  history.push_back({StateKind::kReceived, answer->received_ns});
  if (answer->seq == 0) {
    history.push_back({StateKind::kRejected, answer->received_ns, answer->reason});
    status.final = true;
    return status;
  }
  history.push_back(
      {answer->held ? StateKind::kHeld : StateKind::kConfirmed, answer->received_ns});
  const std::optional<HistoryRecord> record = history_.Read(answer->seq);
  if (!record.has_value()) return status;  // Not reconciled yet, or older than the history.
  status.attributes = record->attributes;
  for (int slot = 0; slot < verifier_count_; ++slot) {
    const VerifierId verifier = VerifierAtSlot(slot);
    const VerdictRecord& verdict = record->verdicts[slot];
    if (!verdict.received) continue;
    const StateKind kind = verdict.late                         ? StateKind::kLateVerdict
                           : verifier == VerifierId::kFraud  ? StateKind::kFraudVerdict
                           : verifier == VerifierId::kLedger ? StateKind::kLedgerVerdict
                                                             : StateKind::kVerifierVerdict;
    history.push_back(
        {kind, verdict.decided_ns, verdict.reason, verifier, verdict.pass, verdict.code});
  }
  if (record->resolved) {
    const Outcome& outcome = record->outcome;
    // A held transaction's failure is its answer (REJECTED), not a late failure.
    const StateKind kind = outcome.kind == OutcomeKind::kVerified     ? StateKind::kVerified
                           : outcome.held                             ? StateKind::kRejected
                           : outcome.kind == OutcomeKind::kLateFailed ? StateKind::kLateFailed
                                                                      : StateKind::kLateTimeout;
    history.push_back({kind, outcome.decided_ns, outcome.reason, outcome.verifier, false,
                       outcome.verifier_code});
    if (outcome.compensation & kCompensationAccountHeld) {
      history.push_back({StateKind::kAccountHeld, outcome.decided_ns, outcome.reason});
    }
    status.final = true;
  }
  if (record->compensated_ns != 0) {
    history.push_back({StateKind::kCompensated, record->compensated_ns});
  }
  std::stable_sort(history.begin(), history.end(),
                   [](const StateChange& a, const StateChange& b) { return a.at_ns < b.at_ns; });
  return status;
}

EngineStats EngineImpl::Stats() const {
  EngineStats stats;
  const ReconcileCounters& rc = reconciler_->counters();
  // relaxed (all loads): statistics. What was decided is read before what was confirmed, so that
  // the value at risk rarely sees an outcome without its confirmation (and is clamped at 0).
  const uint64_t decided_unheld = rc.decided_unheld.load(std::memory_order_relaxed);
  int64_t decided_unheld_minor[kCurrencySlotCount];
  for (int slot = 0; slot < kCurrencySlotCount; ++slot) {
    decided_unheld_minor[slot] = rc.decided_unheld_minor[slot].load(std::memory_order_relaxed);
  }
  stats.confirmed = ingest_counters_.Sum(&Shard::confirmed);
  stats.held = ingest_counters_.Sum(&Shard::held);
  stats.risk_holds = ingest_counters_.Sum(&Shard::risk_holds);
  // size_approx reads the queues' atomic indexes; safe from any thread, exact when quiet.
  stats.settlement_queue = settlements_.size_approx();
  stats.risk_table_full = risk_.table_full();
  stats.duplicates = ingest_counters_.Sum(&Shard::duplicates);
  const uint64_t confirmed_unheld = stats.confirmed + recovery_.reverified;
  const uint64_t not_at_risk = stats.held + decided_unheld;
  stats.at_risk = confirmed_unheld > not_at_risk ? confirmed_unheld - not_at_risk : 0;
  for (int slot = 0; slot < kCurrencySlotCount; ++slot) {
    stats.value_at_risk_minor[slot] = std::max<int64_t>(
        0, ingest_counters_.SumConfirmedUnheldMinor(slot) - decided_unheld_minor[slot]);
  }
  stats.confirm_to_outcome = rc.confirm_to_outcome.ReadExportCounts();
  stats.verifier_count = verifier_count_;
  stats.verdict_queue[VerifierSlot(VerifierId::kFraud)] = fraud_verdicts_.size_approx();
  stats.verdict_queue[VerifierSlot(VerifierId::kLedger)] = ledger_verdicts_.size_approx();
  for (size_t i = 0; i < custom_verdicts_.size(); ++i) {
    stats.verdict_queue[VerifierSlot(CustomVerifierId(static_cast<int>(i)))] =
        custom_verdicts_[i]->size_approx();
  }
  for (int v = 0; v < verifier_count_; ++v) {
    stats.confirm_to_verdict[v] = rc.confirm_to_verdict[v].ReadExportCounts();
    stats.verdict_failures[v] = rc.verdict_failures[v].load(std::memory_order_relaxed);
    for (int c = 0; c < kShadowComparisonCount; ++c) {
      stats.shadow_verdicts[v][c] = rc.shadow_verdicts[v][c].load(std::memory_order_relaxed);
    }
  }
  // runners_ and agents_ are in Start's order; neither changes after Start returned.
  for (size_t i = 0; i < runners_.size(); ++i) {
    stats.agents[stats.agent_count++] = {agents_[i]->role_name(),
                                         runners_[i]->duty_cycle_max_ns(),
                                         runners_[i]->work_total()};
  }
  for (int r = 0; r < kReasonCount; ++r) {
    stats.rejected[r] = ingest_counters_.SumRejected(static_cast<Reason>(r));
    stats.busy[r] = ingest_counters_.SumBusy(static_cast<Reason>(r));
    stats.failures_by_reason[r] = rc.failures_by_reason[r].load(std::memory_order_relaxed);
  }
  for (int k = 0; k < 4; ++k) {
    stats.outcomes[k] = rc.outcomes[k].load(std::memory_order_relaxed);
    stats.held_results[k] = rc.held_results[k].load(std::memory_order_relaxed);
  }
  stats.late_verdicts = rc.late_verdicts.load(std::memory_order_relaxed);
  stats.ignored_answers = rc.ignored_verdicts.load(std::memory_order_relaxed);
  for (const AsyncVerifierStage* stage : async_stages_) {
    if (stage != nullptr) stats.ignored_answers += stage->ignored_answers();
  }
  stats.holds_placed = rc.holds_placed.load(std::memory_order_relaxed);
  stats.hold_table_full = rc.hold_table_full.load(std::memory_order_relaxed);
  stats.accounts = accounts_.opened_below();
  stats.account_table_full = account_table_full_.load(std::memory_order_relaxed);  // relaxed: stat.
  stats.reversals = rc.reversals.load(std::memory_order_relaxed);
  stats.outcome_queue_stalls = rc.emit_stalls.load(std::memory_order_relaxed);
  stats.retired = rc.retired.load(std::memory_order_relaxed);
  stats.idempotency_overruns = idempotency_.overruns();
  if (const std::optional<int64_t> oldest_ns = idempotency_.OldestReceivedNs()) {
    stats.idempotency_retention_ns = std::max<int64_t>(0, clock_->NowNs() - *oldest_ns);
  }
  // relaxed (all): statistics.
  stats.snapshots = snapshots_written_.load(std::memory_order_relaxed);
  stats.snapshot_failures = snapshot_failures_.load(std::memory_order_relaxed);
  stats.snapshots_stopped = snapshots_stopped_.load(std::memory_order_relaxed);
  stats.journal_failed = journal_stage_ != nullptr && journal_stage_->failed();
  if (journal_stage_ != nullptr) {
    const JournalStageCounters& c = journal_stage_->counters();
    // relaxed (all loads): statistics.
    stats.journal = true;
    stats.snapshots_enabled = snapshotter_ != nullptr;
    stats.journal_records = c.records.load(std::memory_order_relaxed);
    stats.journal_writes = c.writes.load(std::memory_order_relaxed);
    stats.journal_syncs = c.syncs.load(std::memory_order_relaxed);
    stats.journal_group_commit_records_max = c.synced_records_max.load(std::memory_order_relaxed);
    stats.journal_sync_ns_max =
        static_cast<int64_t>(c.sync_ns_max.load(std::memory_order_relaxed));
  }
  return stats;
}

}  // namespace vouch

namespace vouch {

// Rebuilds the engine's state, before any stage runs: the newest snapshot, then the journal
// records after it, through a Replayer on the engine's own verifiers (see replayer.h). What is
// left undecided is put back in the ring by Start(), under its original sequence numbers, and
// the verifiers decide it as if nothing had happened: exactly one outcome each.
absl::Status EngineImpl::Recover(std::optional<LoadedSnapshot>* loaded) {
  const int64_t start_ns = MonotonicClock::Default()->NowNs();
  const int64_t unix_to_mono_ns = -unix_offset_ns_;
  const std::string& dir = options_.durability.dir;
  recovery_.journal = true;
  // Every answer within the retention goes back into the idempotency table as it is replayed,
  // oldest first, so that the table keeps the newest; an id the table had forgotten and then
  // answered anew comes back with its newer answer. An answer older than the retention may be
  // recycled by a newer one; one within it never is: if the table cannot hold them all (it is
  // smaller, or the retention longer, than when they were answered), recovery fails rather
  // than start with ids forgotten early.
  const int64_t now_ns = clock_->NowNs();
  const int64_t retention_ns = options_.idempotency_retention_ns;
  auto too_small = [&] {
    return absl::FailedPreconditionError(absl::StrCat(
        "idempotency: ", dir, " holds more ids first seen within idempotency_retention_ns (",
        retention_ns, " ns) than idempotency_window (", options_.idempotency_window,
        " ids) can remember; raise idempotency_window (or lower idempotency_retention_ns)"));
  };
  Replayer replayer({fraud_.get(), ledger_.get(), &accounts_, &history_, &idempotency_, now_ns},
                    options_.in_flight_capacity, options_.idempotency_window, unix_to_mono_ns);
  // The pinned opening configuration is compared as soon as it is found (in the snapshot, or
  // as the journal's first record), before a record replayed against other accounts can fail
  // for that reason and be mistaken for damage.
  const journal::OpeningRecord opening = OpeningOf(options_.accounts);
  auto check_opening = [&] {
    return replayer.opening().has_value() ? CheckOpening(*replayer.opening(), opening, dir)
                                          : absl::OkStatus();
  };
  absl::StatusOr<std::optional<LoadedSnapshot>> newest = LoadNewestSnapshot(dir);
  if (!newest.ok()) return newest.status();
  *loaded = *std::move(newest);
  if (const std::optional<LoadedSnapshot>& snapshot = *loaded; snapshot.has_value()) {
    if (absl::Status status = replayer.Restore(snapshot->state); !status.ok()) {
      if (replayer.idempotency_overflowed()) return too_small();
      // Another opening configuration shows first as accounts the snapshot's directory does
      // not match: say that, not "damaged".
      if (absl::Status opening_status = check_opening(); !opening_status.ok()) {
        return opening_status;
      }
      return absl::Status(status.code(),
                          absl::StrCat("snapshot ", snapshot->file, ": ", status.message()));
    }
    if (absl::Status status = check_opening(); !status.ok()) return status;
    if (absl::Status status = OpenMissingAccounts(ledger_.get()); !status.ok()) return status;
    recovery_.snapshot_file = snapshot->file;
    recovery_.snapshot_record_index = snapshot->covered_record_index;
  }
  absl::Status failure;
  auto visit = [&](journal::RecordType type, uint64_t seq, const char* data, size_t size,
                   const journal::RecordLocation& where) {
    if (!failure.ok()) return;
    failure = replayer.Apply(type, seq, data, size, where);
    if (failure.ok() && type == journal::RecordType::kOpening) failure = check_opening();
  };
  absl::StatusOr<journal::RecoveryScan> scan = journal::ScanJournal(
      dir, visit, recovery_.snapshot_record_index,
      options_.durability.read_only ? journal::TornTail::kReport : journal::TornTail::kCut);
  if (!scan.ok()) return scan.status();
  if (replayer.idempotency_overflowed()) return too_small();
  if (!failure.ok()) return failure;
  if (scan->next_record_index < recovery_.snapshot_record_index) {
    return absl::DataLossError(absl::StrCat("journal ", dir, " ends at record ",
                                            scan->next_record_index, " but its snapshot covers ",
                                            recovery_.snapshot_record_index));
  }
  recovery_.records = scan->records;
  recovery_.next_record_index = scan->next_record_index;
  recovery_.truncated = scan->truncated;
  recovery_.truncated_file = scan->truncated_file;
  recovery_.truncated_offset = scan->truncated_offset;
  recovery_.truncated_bytes = scan->truncated_bytes;
  recovery_.confirmed = replayer.confirmed();
  recovery_.outcomes = replayer.outcomes();
  recovery_.releases = replayer.releases();
  recovery_.opening_recorded = !replayer.opening().has_value();
  recovered_rules_text_ = replayer.rules_text();
  recovered_rules_pending_ = replayer.rules_pending();

  recovery_.refused = replayer.refused();
  // An answer the snapshot's shadow could not keep (its window was smaller) and that is still
  // within the retention is forgotten early: refuse to start, as for a table too small.
  const int64_t dropped_ns = replayer.newest_dropped_unix_ns();
  if (dropped_ns != 0 && dropped_ns + unix_to_mono_ns > now_ns - retention_ns) {
    return too_small();
  }
  if (!replayer.FinishAnswers().ok()) return too_small();
  // Held ones among the undecided never got their answer; now they are decided asynchronously.
  pending_.assign(replayer.undecided().begin(), replayer.undecided().end());
  for (journal::ConfirmedRecord& pending : pending_) pending.held = false;
  recovery_.reverified = pending_.size();
  recovery_.elapsed_ns = MonotonicClock::Default()->NowNs() - start_ns;
  return absl::OkStatus();
}

void EngineImpl::Republish(const journal::ConfirmedRecord& pending) {
  Sequence seq = 0;
  InFlightEntry* entry = ring_.Claim(&seq);
  // Under another number, its outcome would be journaled against another transaction's.
  VOUCH_CHECK(entry != nullptr && seq == pending.seq,
              "a recovered transaction keeps its sequence number (recovery checked the room)");
  const int64_t now_ns = clock_->NowNs();
  // Confirmed in an earlier life and not verified yet: exposed again until decided.
  const bool at_risk = risk_.enabled();
  AccountRecord* const source = accounts_.FindMutable(pending.txn.source_account);
  if (at_risk) risk_.Add(source, pending.txn.currency, pending.txn.amount_minor);
  // In flight again until it retires (the reconciler releases both counts; an account a journal
  // older than the directory names may be missing, and is then skipped on both sides).
  for (AccountRecord* account :
       {source, accounts_.FindMutable(pending.txn.destination_account)}) {
    // seq_cst: as in AccountsInFlight; nothing runs concurrently yet anyway.
    if (account != nullptr) account->in_flight.fetch_add(1, std::memory_order_seq_cst);
  }
  entry->payload = {pending.txn, pending.confirmed_unix_ns - unix_offset_ns_,
                    now_ns + options_.verification_deadline_ns, false, pending.origin, at_risk};
  entry->reconcile = {};
  entry->reconcile.record.seq = seq;
  entry->reconcile.record.id = pending.txn.id;
  entry->reconcile.record.attributes = pending.txn.attributes;
  // relaxed: published by the release in Publish.
  entry->held_state.store(HeldState::kNotHeld, std::memory_order_relaxed);
  ring_.Publish(entry, seq);
  WakeStages();
  // Confirmed in an earlier life and not verified yet: at risk again (see EngineStats::at_risk).
  IngestCounters::AddMinor(
      ingest_counters_.Mine().confirmed_unheld_minor[CurrencySlot(pending.txn.currency)],
      pending.txn.amount_minor);
}

}  // namespace vouch

namespace vouch {

// --- Accounts --------------------------------------------------------------------------------

// Options::accounts (the demo bank) are created at start through the same validation and
// directory insert as CreateAccounts, and opened in the ledger, before recovery replays the
// journal against them. They are not journaled one by one: the opening record pins them
// (engine/recovery/opening.h), and a restart with other accounts is refused as before.
absl::Status EngineImpl::CreateConfiguredAccounts() {
  for (const ledger::AccountSpec& spec : options_.accounts) {
    const NewAccount account = FromSpec(spec);
    if (!IsValidNewAccount(account)) {
      return absl::InvalidArgumentError(absl::StrCat("opening account ", spec.id,
                                                     ": invalid (see CreateResult::kInvalid)"));
    }
    if (absl::Status status = ledger_->OpenAccount(spec); !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("opening account ", spec.id, ": ", status.message()));
    }
    // Validate() checked account_capacity >= accounts.size(); the ledger refused duplicates.
    AccountRecord* record = accounts_.Insert(account, clock_->NowNs());
    VOUCH_CHECK(record != nullptr, "the directory has room for the configured accounts");
    // relaxed: before any other thread exists; published with the engine.
    record->state.store(static_cast<uint8_t>(AccountState::kOpen), std::memory_order_relaxed);
  }
  accounts_.SetOpenedBelow(accounts_.size());
  return absl::OkStatus();
}

bool EngineImpl::Running() const {
  // acquire: pairs with Start's release.
  return accepting_.load(std::memory_order_acquire) && !options_.durability.read_only;
}

absl::Status EngineImpl::AwaitAccountRecord(uint64_t number, absl::Time deadline) const {
  if (journal_stage_ == nullptr || number == 0) return absl::OkStatus();
  if (options_.inline_mode) {
    // No stage thread: step the journal here (see AwaitAck).
    while (journal_stage_->account_records_acked() < number && !journal_stage_->failed()) {
      const_cast<EngineImpl*>(this)->Step();
    }
  } else {
    (void)journal_stage_->AwaitAccountRecord(number, deadline - absl::Now());
  }
  if (journal_stage_->account_records_acked() >= number) return absl::OkStatus();
  if (journal_stage_->failed()) {
    return absl::UnavailableError(
        absl::StrCat("the journal failed; the account change was not kept: ",
                     journal_stage_->status().ToString()));
  }
  return absl::DeadlineExceededError(
      "the journal did not keep the account record in time; it is queued and kept unless the "
      "journal fails (retry: the call is idempotent)");
}

absl::StatusOr<uint64_t> EngineImpl::JournalAccount(journal::RecordType type, const char* payload,
                                                size_t size, absl::Time deadline) {
  if (journal_stage_ == nullptr) return 0;
  for (;;) {
    if (const uint64_t number = journal_stage_->RecordAccount(type, payload, size)) return number;
    if (journal_stage_->failed()) return absl::UnavailableError("the journal failed");
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("the journal's account record queue stayed full");
    }
    if (options_.inline_mode) {
      Step();
    } else {
      absl::SleepFor(absl::Microseconds(100));
    }
  }
}

absl::Status EngineImpl::FinishCreations(absl::Time deadline) {
  const size_t created = accounts_.size();
  if (creations_pending_from_ == created) return absl::OkStatus();
  if (absl::Status status = AwaitAccountRecord(creations_pending_record_, deadline);
      !status.ok()) {
    return status;
  }
  for (size_t i = creations_pending_from_; i < created; ++i) {
    // release: a Submit that acquires kOpen follows the creation's ack (account_directory.h).
    accounts_.AtMutable(i).state.store(static_cast<uint8_t>(AccountState::kOpen),
                                       std::memory_order_release);
  }
  // The ledger stage opens them in creation order on its next turn (woken here).
  accounts_.SetOpenedBelow(created);
  creations_pending_from_ = created;
  WakeStages();
  return absl::OkStatus();
}

absl::Status EngineImpl::CreateAccounts(absl::Span<const NewAccount> accounts,
                                    std::vector<CreateResult>* results, absl::Duration timeout) {
  results->assign(accounts.size(), CreateResult::kBusy);
  if (!Running() || (journal_stage_ != nullptr && journal_stage_->failed())) {
    return absl::OkStatus();  // kBusy: nothing created.
  }
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&accounts_mu_);
  // An earlier call that timed out: its accounts become usable (or this fails the same way).
  if (absl::Status status = FinishCreations(deadline); !status.ok()) return status;
  const int64_t now_ns = clock_->NowNs();
  for (size_t i = 0; i < accounts.size(); ++i) {
    const NewAccount& account = accounts[i];
    CreateResult& result = (*results)[i];
    if (!IsValidNewAccount(account)) {
      result = CreateResult::kInvalid;
      continue;
    }
    if (const AccountRecord* existing = accounts_.Find(account.id)) {
      result = existing->fields == account ? CreateResult::kExists
                                           : CreateResult::kExistsWithDifferentFields;
      continue;
    }
    // The ledger's invariant 4 (no balance can overflow): refused here, before it is kept.
    int64_t& reach_minor = reach_minor_[CurrencySlot(account.currency)];
    int64_t reach_after_minor;
    if (__builtin_add_overflow(account.opening_balance_minor, account.overdraft_limit_minor,
                               &reach_after_minor) ||
        __builtin_add_overflow(reach_after_minor, reach_minor, &reach_after_minor)) {
      result = CreateResult::kInvalid;
      continue;
    }
    AccountRecord* record = accounts_.Insert(account, now_ns);
    if (record == nullptr) {
      account_table_full_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic.
      result = CreateResult::kTableFull;
      continue;
    }
    reach_minor = reach_after_minor;
    char payload[journal::kAccountCreatedRecordBytes];
    const size_t size = journal::EncodeAccountCreatedRecord(
        {account, now_ns + unix_offset_ns_}, payload);
    absl::StatusOr<uint64_t> number =
        JournalAccount(journal::RecordType::kAccountCreated, payload, size, deadline);
    // Inserted but not queued: the directory keeps it kCreating and the journal never heard of
    // it. Only a failed journal or a full queue past the deadline get here; either way the
    // engine tells the caller to retry, and a retry answers kExists only after FinishCreations.
    if (!number.ok()) return number.status();
    if (*number != 0) creations_pending_record_ = *number;
    result = CreateResult::kCreated;
  }
  return FinishCreations(deadline);
}

absl::StatusOr<AccountRecord*> EngineImpl::ChangeableAccount(uint64_t id) {
  AccountRecord* account = accounts_.FindMutable(id);
  if (account == nullptr || account->LoadState() == AccountRecord::kCreating) {
    return absl::NotFoundError(absl::StrCat("account ", id, " does not exist"));
  }
  if (account->LoadState() == static_cast<uint8_t>(AccountState::kClosed)) {
    return absl::FailedPreconditionError(absl::StrCat("account ", id, " is closed"));
  }
  return account;
}

absl::Status EngineImpl::SetFrozen(uint64_t id, bool frozen) {
  if (!Running()) return absl::UnavailableError("the engine is not running");
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  absl::MutexLock lock(&accounts_mu_);
  absl::StatusOr<AccountRecord*> changeable = ChangeableAccount(id);
  if (!changeable.ok()) return changeable.status();
  AccountRecord* const account = *changeable;
  const auto state = static_cast<AccountState>(account->LoadState());
  const AccountState target = frozen ? AccountState::kFrozen : AccountState::kOpen;
  if (state == target) return absl::OkStatus();
  const int64_t now_ns = clock_->NowNs();
  char payload[journal::kAccountFrozenRecordBytes];
  const size_t size = journal::EncodeAccountFrozenRecord(
      {id, frozen, now_ns + unix_offset_ns_}, payload);
  absl::StatusOr<uint64_t> number =
      JournalAccount(journal::RecordType::kAccountFrozen, payload, size, deadline);
  if (!number.ok()) return number.status();
  // release: ingest's acquire sees the change (a transaction already past the check is in flight
  // and completes; see the header).
  account->state.store(static_cast<uint8_t>(target), std::memory_order_release);
  account->AddHistory(
      {frozen ? AccountChange::Kind::kFrozen : AccountChange::Kind::kUnfrozen, now_ns});
  return AwaitAccountRecord(*number, deadline);
}

absl::Status EngineImpl::FreezeAccount(uint64_t id) { return SetFrozen(id, true); }
absl::Status EngineImpl::UnfreezeAccount(uint64_t id) { return SetFrozen(id, false); }

absl::Status EngineImpl::SetAccountLimits(uint64_t id, const AccountLimits& limits) {
  if (!IsValidAccountLimits(limits)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "account limits must be >= 0 (0: no limit), a daily amount at most ",
        DailyUsage::kMinorMax));
  }
  if (!Running()) return absl::UnavailableError("the engine is not running");
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  absl::MutexLock lock(&accounts_mu_);
  absl::StatusOr<AccountRecord*> changeable = ChangeableAccount(id);
  if (!changeable.ok()) return changeable.status();
  AccountRecord* const account = *changeable;
  const int64_t now_ns = clock_->NowNs();
  char payload[journal::kAccountLimitsRecordBytes];
  const size_t size = journal::EncodeAccountLimitsRecord(
      {id, limits, now_ns + unix_offset_ns_}, payload);
  absl::StatusOr<uint64_t> number =
      JournalAccount(journal::RecordType::kAccountLimits, payload, size, deadline);
  if (!number.ok()) return number.status();
  account->StoreLimits(limits);
  account->AddHistory({AccountChange::Kind::kLimitsChanged, now_ns});
  return AwaitAccountRecord(*number, deadline);
}

absl::Status EngineImpl::CloseAccount(uint64_t id, absl::Duration timeout) {
  if (!Running()) return absl::UnavailableError("the engine is not running");
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&accounts_mu_);
  absl::StatusOr<AccountRecord*> changeable = ChangeableAccount(id);
  // Closing a closed account is done already.
  if (absl::IsFailedPrecondition(changeable.status())) return absl::OkStatus();
  if (!changeable.ok()) return changeable.status();
  AccountRecord* const account = *changeable;
  const uint8_t before = account->LoadState();
  // 1. New transactions are refused. seq_cst: see AccountsInFlight.
  account->state.store(AccountRecord::kClosing, std::memory_order_seq_cst);
  auto refuse = [&](absl::Status status) {
    // release: as SetFrozen; the close did not happen.
    account->state.store(before, std::memory_order_release);
    return status;
  };
  // 2. Nothing of it in flight: every transaction naming it retired (its settlement queued).
  while (account->in_flight.load(std::memory_order_seq_cst) != 0) {
    if (absl::Now() >= deadline) {
      return refuse(absl::FailedPreconditionError(absl::StrCat(
          "account ", id, " still has transactions in flight; not closed")));
    }
    if (options_.inline_mode) {
      Step();
    } else {
      absl::SleepFor(absl::Microseconds(100));
    }
  }
  // 3. Its balance, on the ledger stage, once every queued settlement is applied.
  BalanceSnapshot snapshot;
  const uint64_t ids[1] = {id};
  for (;;) {
    if (absl::Status status = ReadBalances(ids, &snapshot, deadline - absl::Now());
        !status.ok()) {
      return refuse(status);
    }
    if (snapshot.accounts.size() != 1) {
      return refuse(absl::InternalError("the ledger does not know a created account"));
    }
    if (snapshot.accounts[0].pending_count == 0) break;
    if (absl::Now() >= deadline) {
      return refuse(absl::FailedPreconditionError(absl::StrCat(
          "account ", id, " still has reservations to settle; not closed")));
    }
    absl::SleepFor(absl::Microseconds(100));
  }
  if (snapshot.accounts[0].balance_minor != 0) {
    return refuse(absl::FailedPreconditionError(absl::StrCat(
        "account ", id, " has a balance of ", snapshot.accounts[0].balance_minor,
        " minor units; only a zero balance closes")));
  }
  const int64_t now_ns = clock_->NowNs();
  char payload[journal::kAccountClosedRecordBytes];
  const size_t size = journal::EncodeAccountClosedRecord(
      {id, now_ns + unix_offset_ns_}, payload);
  absl::StatusOr<uint64_t> number =
      JournalAccount(journal::RecordType::kAccountClosed, payload, size, deadline);
  if (!number.ok()) return refuse(number.status());
  // release: as SetFrozen. Final: nothing reopens a closed account.
  account->state.store(static_cast<uint8_t>(AccountState::kClosed), std::memory_order_release);
  account->AddHistory({AccountChange::Kind::kClosed, now_ns});
  return AwaitAccountRecord(*number, deadline);
}

absl::StatusOr<AccountInfo> EngineImpl::LookupAccount(uint64_t id, absl::Duration timeout) {
  AccountInfo info;
  {
    absl::MutexLock lock(&accounts_mu_);
    const AccountRecord* account = accounts_.Find(id);
    if (account == nullptr || account->LoadState() == AccountRecord::kCreating) {
      return absl::NotFoundError(absl::StrCat("account ", id, " does not exist"));
    }
    info.fields = account->fields;
    info.fields.limits = account->Limits();
    // Never kClosing here: CloseAccount holds the mutex while it is.
    info.state = static_cast<AccountState>(account->LoadState());
    // relaxed (all): values read on their own.
    info.on_hold = account->on_hold.load(std::memory_order_relaxed);
    info.unverified_count = account->unverified_count.load(std::memory_order_relaxed);
    info.unverified_minor = account->unverified_minor.load(std::memory_order_relaxed);
    info.history = account->History();
  }
  BalanceSnapshot snapshot;
  const uint64_t ids[1] = {id};
  if (absl::Status status = ReadBalances(ids, &snapshot, timeout); !status.ok()) return status;
  if (snapshot.accounts.size() == 1) info.balance_minor = snapshot.accounts[0].balance_minor;
  return info;
}

}  // namespace vouch
