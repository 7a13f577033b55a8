#include "bench/baseline/baseline_engine.h"

#include <pthread.h>

#include <cassert>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vouch::baseline {
namespace {

// How long an idle stage waits on its condition variable before checking for shutdown (and,
// for the reconciler, for deadlines): the deadline scan runs at least this often.
constexpr auto kWaitTimeout = std::chrono::milliseconds(1);
constexpr int64_t kDeadlineScanIntervalNs = 1'000'000;
constexpr auto kDrainPollInterval = std::chrono::microseconds(100);

int VerifierIndex(VerifierId verifier) { return static_cast<int>(verifier) - 1; }

void NameThisThread(const char* name) { (void)pthread_setname_np(pthread_self(), name); }

Confirmation Busy(uint64_t id, Reason reason) {
  return {id, ConfirmStatus::kBusy, reason, 0, 0, false, false};
}

}  // namespace

absl::StatusOr<std::unique_ptr<BaselineEngine>> BaselineEngine::Create(BaselineOptions options) {
  if (options.in_flight_capacity < 1) {
    return absl::InvalidArgumentError("in_flight_capacity: must be >= 1");
  }
  if (options.idempotency_window < options.in_flight_capacity) {
    return absl::InvalidArgumentError("idempotency_window: must be >= in_flight_capacity");
  }
  if (options.accounts.size() > options.account_capacity) {
    return absl::InvalidArgumentError("account_capacity: fewer than the accounts");
  }
  if (absl::Status status = options.fraud_rules.Validate(); !status.ok()) return status;
  std::unique_ptr<BaselineEngine> engine(new BaselineEngine(std::move(options)));
  for (const ledger::AccountSpec& account : engine->options_.accounts) {
    if (absl::Status status = engine->ledger_.OpenAccount(account); !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("account ", account.id, ": ", status.message()));
    }
  }
  return engine;
}

BaselineEngine::BaselineEngine(BaselineOptions options)
    : options_(std::move(options)),
      clock_(*MonotonicClock::Default()),
      fraud_(options_.fraud_rules, options_.account_capacity),
      ledger_(options_.account_capacity, 2 * options_.in_flight_capacity) {
  answers_.reserve(options_.idempotency_window);
  in_flight_map_.reserve(options_.in_flight_capacity);
}

BaselineEngine::~BaselineEngine() {
  if (!threads_.empty()) (void)Stop();
}

void BaselineEngine::Start() {
  threads_.emplace_back([this] { RunFraud(); });
  threads_.emplace_back([this] { RunLedger(); });
  threads_.emplace_back([this] { RunReconciler(); });
  std::lock_guard<std::mutex> lock(ingest_mu_);
  accepting_ = true;
}

BaselineDrainReport BaselineEngine::Stop() {
  BaselineDrainReport report;
  {
    // Under the lock: once it is released, no Submit can confirm anything more.
    std::lock_guard<std::mutex> lock(ingest_mu_);
    accepting_ = false;
    report.confirmed = last_seq_;
  }
  const int64_t give_up_ns = clock_.NowNs() + options_.drain_timeout_ns;
  while (retired_.load(std::memory_order_relaxed) < report.confirmed &&
         clock_.NowNs() < give_up_ns) {
    std::this_thread::sleep_for(kDrainPollInterval);
  }
  report.not_drained = report.confirmed - retired_.load(std::memory_order_relaxed);
  report.drained = report.not_drained == 0;
  stop_threads_.store(true, std::memory_order_relaxed);  // The queues' mutexes order it.
  {
    std::lock_guard<std::mutex> lock(outcome_mu_);
    stopping_ = true;
  }
  outcome_room_.notify_all();
  fraud_queue_.Close();
  ledger_queue_.Close();
  verdict_queue_.Close();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  return report;
}

// ---------------------------------------------------------------------------------------------
// Ingest: the caller's thread.

Reason BaselineEngine::CheckWellFormed(const Transaction& txn) const {
  if (txn.id == 0) return Reason::kMalformedId;
  if (txn.amount_minor <= 0) return Reason::kMalformedAmount;
  if (txn.source_account == 0 || txn.destination_account == 0 ||
      txn.source_account == txn.destination_account) {
    return Reason::kMalformedSameAccount;
  }
  if (!IsSupportedCurrency(txn.currency)) return Reason::kUnknownCurrency;
  return Reason::kNone;
}

Confirmation BaselineEngine::Submit(const Transaction& txn) {
  const Reason malformed = CheckWellFormed(txn);
  if (malformed != Reason::kNone) {
    return {txn.id, ConfirmStatus::kRejected, malformed, 0, 0, false, false};
  }
  const int64_t now_ns = clock_.NowNs();
  std::lock_guard<std::mutex> lock(ingest_mu_);
  if (!accepting_) {
    ++ingest_stats_.busy;
    return Busy(txn.id, Reason::kShuttingDown);
  }
  return Confirm(txn, now_ns);
}

Confirmation BaselineEngine::Confirm(const Transaction& txn, int64_t now_ns) {
  if (auto it = answers_.find(txn.id); it != answers_.end()) {
    ++ingest_stats_.duplicates;
    const StoredAnswer& original = it->second;
    const int64_t deadline_ns =
        original.seq != 0 ? original.received_ns + options_.verification_deadline_ns : 0;
    return {txn.id, original.status, original.reason, original.seq, deadline_ns, true, false};
  }
  Reason refusal = Reason::kNone;
  if (txn.amount_minor > options_.amount_minor_max) {
    refusal = Reason::kOverLimit;
  } else if (holds_.contains(txn.source_account)) {
    refusal = Reason::kAccountOnHold;
  }
  if (refusal != Reason::kNone) {
    RememberAnswer(txn.id, {ConfirmStatus::kRejected, refusal, 0, now_ns});
    ++ingest_stats_.rejected;
    return {txn.id, ConfirmStatus::kRejected, refusal, 0, 0, false, false};
  }
  if (in_flight_.load(std::memory_order_relaxed) >= options_.in_flight_capacity) {
    ++ingest_stats_.busy;
    return Busy(txn.id, Reason::kQueueFull);  // Not remembered: a retry must be admitted.
  }
  const Sequence seq = ++last_seq_;
  const int64_t deadline_ns = now_ns + options_.verification_deadline_ns;
  RememberAnswer(txn.id, {ConfirmStatus::kConfirmed, Reason::kNone, seq, now_ns});
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  ++ingest_stats_.confirmed;
  {
    std::lock_guard<std::mutex> lock(in_flight_mu_);
    InFlight& entry = in_flight_map_[seq];
    entry.id = txn.id;
    entry.source_account = txn.source_account;
    entry.amount_minor = txn.amount_minor;
    entry.currency = txn.currency;
    entry.confirmed_ns = now_ns;
    entry.deadline_ns = deadline_ns;
  }
  // Still under ingest_mu_: both verifiers receive transactions in sequence order.
  fraud_queue_.Push({seq, txn, now_ns});
  ledger_queue_.Push({LedgerOp::kReserve, seq, txn});
  return {txn.id, ConfirmStatus::kConfirmed, Reason::kNone, seq, deadline_ns, false, false};
}

void BaselineEngine::RememberAnswer(uint64_t id, const StoredAnswer& answer) {
  answers_.emplace(id, answer);
  answer_order_.push_back(id);
  if (answer_order_.size() > options_.idempotency_window) {
    answers_.erase(answer_order_.front());
    answer_order_.pop_front();
  }
}

// ---------------------------------------------------------------------------------------------
// Verifier threads.

void BaselineEngine::RunFraud() {
  NameThisThread("baseline-fraud");
  std::deque<Work> batch;
  std::vector<Verdict> verdicts;
  while (!stop_threads_.load(std::memory_order_relaxed)) {
    fraud_queue_.TakeAll(&batch, kWaitTimeout);
    for (const Work& work : batch) {
      const Reason reason = fraud_.Check(work.txn, work.confirmed_ns);
      verdicts.push_back(
          {work.seq, VerifierId::kFraud, reason == Reason::kNone, reason, clock_.NowNs()});
    }
    verdict_queue_.PushAll(verdicts);
    verdicts.clear();
    batch.clear();
  }
}

void BaselineEngine::RunLedger() {
  NameThisThread("baseline-ledger");
  std::deque<LedgerWork> batch;
  std::vector<Verdict> verdicts;
  while (!stop_threads_.load(std::memory_order_relaxed)) {
    ledger_queue_.TakeAll(&batch, kWaitTimeout);
    uint64_t settled = 0;
    for (const LedgerWork& work : batch) {
      switch (work.op) {
        case LedgerOp::kReserve: {
          assert(ledger_.HasPendingRoom());  // pending <= in_flight_ <= in_flight_capacity.
          const Reason reason = ledger_.Reserve(work.seq, work.txn);
          verdicts.push_back(
              {work.seq, VerifierId::kLedger, reason == Reason::kNone, reason, clock_.NowNs()});
          break;
        }
        case LedgerOp::kCommit:
          ledger_.Commit(work.seq);
          ++settled;
          break;
        case LedgerOp::kVoid:
          ledger_.Void(work.seq);
          ++settled;
          break;
      }
    }
    verdict_queue_.PushAll(verdicts);
    verdicts.clear();
    batch.clear();
    Retire(settled);
  }
}

// ---------------------------------------------------------------------------------------------
// Reconciler thread.

void BaselineEngine::RunReconciler() {
  NameThisThread("baseline-recon");
  std::deque<Verdict> batch;
  std::vector<BaselineOutcome> decided;
  std::vector<LedgerWork> settlements;
  int64_t next_scan_ns = 0;
  while (!stop_threads_.load(std::memory_order_relaxed)) {
    verdict_queue_.TakeAll(&batch, kWaitTimeout);
    const int64_t now_ns = clock_.NowNs();
    uint64_t retire_now = 0;
    {
      std::lock_guard<std::mutex> lock(in_flight_mu_);
      for (const Verdict& verdict : batch) {
        auto it = in_flight_map_.find(verdict.seq);
        assert(it != in_flight_map_.end());  // Erased only once both verdicts are in.
        it->second.verdicts[VerifierIndex(verdict.verifier)] = verdict;
        Decide(verdict.seq, it->second, now_ns, &decided);
        if (Finished(verdict.seq, it->second, &settlements, &retire_now)) in_flight_map_.erase(it);
      }
      if (now_ns >= next_scan_ns) {
        // A missing verdict cannot retire the entry; the timeout only decides it.
        for (auto& [seq, entry] : in_flight_map_) Decide(seq, entry, now_ns, &decided);
        next_scan_ns = now_ns + kDeadlineScanIntervalNs;
      }
    }
    batch.clear();
    // Outcomes first, then settlements: a transaction retires only after its outcome is queued.
    Emit(decided);
    decided.clear();
    ledger_queue_.PushAll(settlements);
    settlements.clear();
    Retire(retire_now);
  }
}

void BaselineEngine::Decide(Sequence seq, InFlight& entry, int64_t now_ns,
                            std::vector<BaselineOutcome>* decided) const {
  if (entry.decided) return;
  const Verdict& fraud = entry.verdicts[VerifierIndex(VerifierId::kFraud)];
  const Verdict& ledger = entry.verdicts[VerifierIndex(VerifierId::kLedger)];
  const bool fraud_in = fraud.seq != 0;
  const bool ledger_in = ledger.seq != 0;
  Outcome outcome;
  if (fraud_in && !fraud.pass) {
    outcome.kind = OutcomeKind::kLateFailed;
    outcome.verifier = VerifierId::kFraud;
    outcome.reason = fraud.reason;
    outcome.compensation |= kCompensationAccountHeld;
  } else if (ledger_in && !ledger.pass) {
    outcome.kind = OutcomeKind::kLateFailed;
    outcome.verifier = VerifierId::kLedger;
    outcome.reason = ledger.reason;
  } else if (fraud_in && ledger_in) {
    outcome.kind = OutcomeKind::kVerified;
  } else if (now_ns >= entry.deadline_ns) {
    outcome.kind = OutcomeKind::kLateTimeout;
    outcome.verifier = fraud_in ? VerifierId::kLedger : VerifierId::kFraud;
    outcome.reason = Reason::kDeadlineExceeded;
  } else {
    return;
  }
  if (outcome.kind != OutcomeKind::kVerified && ledger_in && ledger.pass) {
    outcome.compensation |= kCompensationReversed;
  }
  entry.decided = true;
  entry.kind = outcome.kind;
  outcome.id = entry.id;
  outcome.seq = seq;
  outcome.source_account = entry.source_account;
  outcome.amount_minor = entry.amount_minor;
  outcome.currency = entry.currency;
  outcome.confirmed_ns = entry.confirmed_ns;
  outcome.decided_ns = now_ns;
  decided->push_back({outcome, fraud_in ? fraud.decided_ns : 0, ledger_in ? ledger.decided_ns : 0});
}

bool BaselineEngine::Finished(Sequence seq, const InFlight& entry,
                              std::vector<LedgerWork>* settlements, uint64_t* retire_now) {
  const Verdict& fraud = entry.verdicts[VerifierIndex(VerifierId::kFraud)];
  const Verdict& ledger = entry.verdicts[VerifierIndex(VerifierId::kLedger)];
  if (!entry.decided || fraud.seq == 0 || ledger.seq == 0) return false;
  if (!ledger.pass) {
    ++*retire_now;  // Nothing was reserved.
    return true;
  }
  // A reservation that arrived after a failure or a timeout is voided here too.
  const LedgerOp op = entry.kind == OutcomeKind::kVerified ? LedgerOp::kCommit : LedgerOp::kVoid;
  settlements->push_back({op, seq, Transaction{}});
  return true;
}

void BaselineEngine::Emit(const std::vector<BaselineOutcome>& outcomes) {
  for (const BaselineOutcome& outcome : outcomes) {
    if (outcome.outcome.compensation & kCompensationAccountHeld) {
      std::lock_guard<std::mutex> lock(ingest_mu_);
      if (holds_.size() < options_.hold_capacity) holds_.insert(outcome.outcome.source_account);
    }
  }
  std::unique_lock<std::mutex> lock(outcome_mu_);
  for (const BaselineOutcome& outcome : outcomes) {
    outcome_room_.wait(lock, [this] {
      return outcomes_.size() < options_.outcome_queue_capacity || stopping_;
    });
    outcomes_.push_back(outcome);
    ++outcomes_queued_;
  }
}

void BaselineEngine::Retire(uint64_t count) {
  if (count == 0) return;
  in_flight_.fetch_sub(count, std::memory_order_relaxed);
  retired_.fetch_add(count, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Embedder side.

size_t BaselineEngine::PollOutcomes(BaselineOutcome* out, size_t max) {
  size_t n = 0;
  {
    std::lock_guard<std::mutex> lock(outcome_mu_);
    while (n < max && !outcomes_.empty()) {
      out[n++] = outcomes_.front();
      outcomes_.pop_front();
    }
  }
  if (n > 0) outcome_room_.notify_one();
  return n;
}

BaselineStats BaselineEngine::Stats() const {
  BaselineStats stats;
  {
    std::lock_guard<std::mutex> lock(ingest_mu_);
    stats = ingest_stats_;
  }
  {
    std::lock_guard<std::mutex> lock(outcome_mu_);
    stats.outcomes = outcomes_queued_;
  }
  stats.retired = retired_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace vouch::baseline
