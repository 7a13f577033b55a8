#include "engine/engine.h"

#include <algorithm>
#include <cassert>
#include <thread>

#include "absl/strings/str_cat.h"

namespace vouch {
namespace {

using Shard = internal::IngestCounters::Shard;
using internal::IngestCounters;

Confirmation Busy(uint64_t id, Reason reason) {
  return {id, ConfirmStatus::kBusy, reason, 0, 0, false, false};
}

}  // namespace

std::string_view StateKindName(StateKind kind) {
  switch (kind) {
    case StateKind::kReceived: return "RECEIVED";
    case StateKind::kRejected: return "REJECTED";
    case StateKind::kConfirmed: return "CONFIRMED";
    case StateKind::kHeld: return "HELD";
    case StateKind::kFraudVerdict: return "FRAUD_VERDICT";
    case StateKind::kLedgerVerdict: return "LEDGER_VERDICT";
    case StateKind::kVerified: return "VERIFIED";
    case StateKind::kLateFailed: return "LATE_FAILED";
    case StateKind::kLateTimeout: return "LATE_TIMEOUT";
    case StateKind::kCompensated: return "COMPENSATED";
    case StateKind::kAccountHeld: return "ACCOUNT_HELD";
    case StateKind::kLateVerdict: return "LATE_VERDICT";
  }
  return "UNKNOWN";
}

uint64_t EngineStats::rejected_total() const {
  uint64_t total = 0;
  for (uint64_t n : rejected) total += n;
  return total;
}

uint64_t EngineStats::busy_total() const {
  uint64_t total = 0;
  for (uint64_t n : busy) total += n;
  return total;
}

uint64_t EngineStats::outcomes_total() const {
  return outcomes[1] + outcomes[2] + outcomes[3];
}

uint64_t EngineStats::unverified() const {
  const uint64_t done = outcomes_total();
  return confirmed > done ? confirmed - done : 0;
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(Options options) {
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  std::unique_ptr<Engine> engine(new Engine(std::move(options)));
  if (absl::Status status = engine->Init(); !status.ok()) return status;
  return engine;
}

Engine::Engine(Options options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : MonotonicClock::Default()),
      watched_accounts_(options_.policy.watched_accounts.begin(),
                        options_.policy.watched_accounts.end()),
      ring_(options_.in_flight_capacity),
      idempotency_(options_.idempotency_window),
      holds_(options_.hold_capacity),
      history_(options_.history_capacity),
      // One verdict per live ring entry at most, so the ring capacity bounds these queues.
      fraud_verdicts_(options_.in_flight_capacity),
      ledger_verdicts_(options_.in_flight_capacity),
      settlements_(options_.in_flight_capacity) {}

absl::Status Engine::Init() {
  fraud_ = std::make_unique<fraud::FraudChecker>(options_.fraud_rules,
                                                 options_.fraud_account_capacity);
  // Reservations outlive their ring entry only while their settlement is queued, so twice the
  // ring capacity always suffices; the ledger stage waits (back-pressure) if it ever does not.
  ledger_ = std::make_unique<ledger::Ledger>(options_.ledger_account_capacity,
                                             2 * options_.in_flight_capacity);
  for (const ledger::AccountSpec& account : options_.accounts) {
    if (absl::Status status = ledger_->OpenAccount(account); !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("opening account ", account.id, ": ", status.message()));
    }
  }
  if (options_.outcome_sink == nullptr) {
    // One explicit producer (the reconciler); try_enqueue never allocates past this capacity.
    poll_queue_ = std::make_unique<OutcomeQueue>(options_.outcome_queue_capacity, 1, 0);
  }
  const int batch_max = options_.stage_batch_max;
  fraud_stage_ = std::make_unique<FraudStage>(fraud_.get(), &ring_, &fraud_verdicts_, clock_,
                                              batch_max);
  ledger_stage_ = std::make_unique<LedgerStage>(ledger_.get(), &settlements_, &ring_,
                                                &ledger_verdicts_, clock_, batch_max);
  ReconcilerPorts ports;
  ports.ring = &ring_;
  ports.fraud_verdicts = &fraud_verdicts_;
  ports.ledger_verdicts = &ledger_verdicts_;
  ports.settlements = &settlements_;
  ports.holds = &holds_;
  ports.history = &history_;
  ports.sink = options_.outcome_sink;
  ports.poll_queue = poll_queue_.get();
  ports.clock = clock_;
  reconciler_ = std::make_unique<Reconciler>(ports, batch_max);
  return absl::OkStatus();
}

Engine::~Engine() {
  if (started_ && !stopped_) (void)Stop();
}

absl::Status Engine::Start() {
  if (started_) return absl::FailedPreconditionError("engine already started");
  started_ = true;
  if (!options_.inline_mode) {
    const std::pair<Agent*, int> stages[] = {{fraud_stage_.get(), options_.cpus.fraud},
                                             {ledger_stage_.get(), options_.cpus.ledger},
                                             {reconciler_.get(), options_.cpus.reconcile}};
    for (const auto& [agent, cpu] : stages) {
      runners_.push_back(std::make_unique<AgentRunner>(agent, options_.idle, cpu));
      if (absl::Status status = runners_.back()->Start(); !status.ok()) {
        for (auto& runner : runners_) runner->Stop();
        return status;
      }
    }
    // Verdicts wake the reconciler; settlements need no wake-up (the ledger has its own work).
    fraud_stage_->SetDownstream(runners_[2]->parker());
    ledger_stage_->SetDownstream(runners_[2]->parker());
  }
  // release: pairs with Submit's load; the stages are running before anything is accepted.
  accepting_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

DrainReport Engine::Stop() {
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
  report.elapsed_ns = clock_->NowNs() - start_ns;
  return report;
}

Reason Engine::CheckWellFormed(const Transaction& txn) const {
  if (txn.id == 0) return Reason::kMalformedId;
  if (txn.amount_minor <= 0) return Reason::kMalformedAmount;
  if (txn.source_account == 0 || txn.destination_account == 0 ||
      txn.source_account == txn.destination_account) {
    return Reason::kMalformedSameAccount;
  }
  if (!IsSupportedCurrency(txn.currency)) return Reason::kUnknownCurrency;
  return Reason::kNone;
}

bool Engine::ShouldHold(const Transaction& txn) const {
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

Confirmation Engine::Submit(const Transaction& txn, uint64_t origin) {
  Shard& shard = ingest_counters_.Mine();
  IngestCounters::Enter(shard);
  Confirmation answer;
  // seq_cst: see Stop.
  if (!accepting_.load(std::memory_order_seq_cst)) {
    answer = Busy(txn.id, Reason::kShuttingDown);
  } else {
    answer = Answer(txn, origin, shard, clock_->NowNs());
  }
  if (answer.status == ConfirmStatus::kRejected && !answer.duplicate) {
    IngestCounters::Add(shard.rejected[static_cast<int>(answer.reason)]);
  } else if (answer.status == ConfirmStatus::kBusy) {
    IngestCounters::Add(shard.busy[static_cast<int>(answer.reason)]);
  }
  IngestCounters::Leave(shard);
  return answer;
}

Confirmation Engine::Answer(const Transaction& txn, uint64_t origin, Shard& shard,
                             int64_t now_ns) {
  const Reason malformed = CheckWellFormed(txn);
  if (malformed != Reason::kNone) {
    return {txn.id, ConfirmStatus::kRejected, malformed, 0, 0, false, false};
  }
  const IdempotencyTable::Claim claim = idempotency_.ClaimId(txn.id, now_ns);
  if (claim.kind == IdempotencyTable::ClaimKind::kInFlight) {
    return Busy(txn.id, Reason::kDuplicateInFlight);
  }
  if (claim.kind == IdempotencyTable::ClaimKind::kDuplicate) {
    IngestCounters::Add(shard.duplicates);
    const StoredAnswer& original = claim.answer;
    const int64_t deadline_ns =
        original.seq != 0 ? original.received_ns + options_.verification_deadline_ns : 0;
    return {txn.id, original.status, original.reason, original.seq, deadline_ns, true,
            original.held};
  }
  Reason refusal = Reason::kNone;
  if (txn.amount_minor > options_.amount_minor_max) {
    refusal = Reason::kOverLimit;
  } else if (holds_.IsHeld(txn.source_account)) {
    refusal = Reason::kAccountOnHold;
  }
  if (refusal != Reason::kNone) {
    (void)idempotency_.Record(claim.ticket, {ConfirmStatus::kRejected, refusal, false, 0, now_ns});
    return {txn.id, ConfirmStatus::kRejected, refusal, 0, 0, false, false};
  }
  return Admit(txn, origin, claim.ticket, ShouldHold(txn), shard, now_ns);
}

Confirmation Engine::Admit(const Transaction& txn, uint64_t origin, uint64_t ticket, bool held,
                           Shard& shard, int64_t now_ns) {
  vouch::Sequence seq = 0;
  InFlightEntry* entry = ring_.Claim(&seq);
  if (entry == nullptr) {
    idempotency_.Release(ticket);  // Nothing was recorded: a retry must be admitted.
    return Busy(txn.id, Reason::kQueueFull);
  }
  const int64_t deadline_ns = now_ns + options_.verification_deadline_ns;
  entry->payload = {txn, now_ns, deadline_ns, held, origin};
  entry->reconcile = {};
  entry->reconcile.record.seq = seq;
  entry->reconcile.record.id = txn.id;
  // relaxed: published by the release in Publish.
  entry->held_state.store(held ? HeldState::kWaiting : HeldState::kNotHeld,
                          std::memory_order_relaxed);
  if (!held) {
    // Recorded before Publish, so a duplicate never sees this id as merely in flight.
    (void)idempotency_.Record(ticket, {ConfirmStatus::kConfirmed, Reason::kNone, false, seq, now_ns});
  }
  ring_.Publish(entry, seq);
  WakeStages();
  IngestCounters::Add(shard.confirmed);
  if (!held) return {txn.id, ConfirmStatus::kConfirmed, Reason::kNone, seq, deadline_ns, false, false};

  IngestCounters::Add(shard.held);
  const Outcome outcome = AwaitHeld(*entry);
  const bool verified = outcome.kind == OutcomeKind::kVerified;
  const ConfirmStatus status = verified ? ConfirmStatus::kConfirmed : ConfirmStatus::kRejected;
  (void)idempotency_.Record(ticket, {status, outcome.reason, true, seq, now_ns});
  return {txn.id, status, outcome.reason, seq, deadline_ns, false, true};
}

Outcome Engine::AwaitHeld(InFlightEntry& entry) {
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

void Engine::WakeStages() {
  for (auto& runner : runners_) runner->parker()->Unpark();
}

size_t Engine::PollOutcomes(Outcome* out, size_t max) {
  if (poll_queue_ == nullptr) return 0;
  return poll_queue_->try_dequeue_bulk(out, max);
}

void Engine::StallVerifier(VerifierId verifier, int64_t duration_ns) {
  if (verifier == VerifierId::kFraud) fraud_stage_->StallFor(duration_ns);
  if (verifier == VerifierId::kLedger) ledger_stage_->StallFor(duration_ns);
}

int Engine::Step() {
  assert(options_.inline_mode);
  return fraud_stage_->DoWork() + ledger_stage_->DoWork() + reconciler_->DoWork();
}

std::optional<TransactionStatus> Engine::Query(uint64_t id) const {
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
  for (const VerifierId verifier : {VerifierId::kFraud, VerifierId::kLedger}) {
    const VerdictRecord& verdict = record->verdicts[static_cast<int>(verifier) - 1];
    if (!verdict.received) continue;
    const StateKind kind = verdict.late                       ? StateKind::kLateVerdict
                           : verifier == VerifierId::kFraud ? StateKind::kFraudVerdict
                                                            : StateKind::kLedgerVerdict;
    history.push_back({kind, verdict.decided_ns, verdict.reason, verifier, verdict.pass});
  }
  if (record->resolved) {
    const Outcome& outcome = record->outcome;
    const StateKind kind = outcome.kind == OutcomeKind::kVerified     ? StateKind::kVerified
                           : outcome.kind == OutcomeKind::kLateFailed ? StateKind::kLateFailed
                                                                      : StateKind::kLateTimeout;
    history.push_back({kind, outcome.decided_ns, outcome.reason, outcome.verifier});
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

EngineStats Engine::Stats() const {
  EngineStats stats;
  stats.confirmed = ingest_counters_.Sum(&Shard::confirmed);
  stats.held = ingest_counters_.Sum(&Shard::held);
  stats.duplicates = ingest_counters_.Sum(&Shard::duplicates);
  const ReconcileCounters& rc = reconciler_->counters();
  // relaxed (all loads): statistics.
  for (int r = 0; r < kReasonCount; ++r) {
    stats.rejected[r] = ingest_counters_.SumRejected(static_cast<Reason>(r));
    stats.busy[r] = ingest_counters_.SumBusy(static_cast<Reason>(r));
    stats.failures_by_reason[r] = rc.failures_by_reason[r].load(std::memory_order_relaxed);
  }
  for (int k = 0; k < 4; ++k) stats.outcomes[k] = rc.outcomes[k].load(std::memory_order_relaxed);
  stats.late_verdicts = rc.late_verdicts.load(std::memory_order_relaxed);
  stats.holds_placed = rc.holds_placed.load(std::memory_order_relaxed);
  stats.hold_table_full = rc.hold_table_full.load(std::memory_order_relaxed);
  stats.reversals = rc.reversals.load(std::memory_order_relaxed);
  stats.outcome_queue_stalls = rc.emit_stalls.load(std::memory_order_relaxed);
  stats.retired = rc.retired.load(std::memory_order_relaxed);
  stats.idempotency_overruns = idempotency_.overruns();
  return stats;
}

}  // namespace vouch
