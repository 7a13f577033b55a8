#include "engine/verify/verifier_stage.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/check.h"

namespace vouch {

VerifierStage::VerifierStage(VerifierId verifier, std::string role_name, InFlightRing* ring,
                             VerdictQueue* verdicts, const Clock* clock, int batch_max)
    : verifier_(verifier),
      role_name_(std::move(role_name)),
      ring_(ring),
      verdicts_(verdicts),
      clock_(clock),
      batch_max_(batch_max) {
  assert(batch_max > 0);
}

void VerifierStage::StallFor(int64_t duration_ns) {
  // relaxed: the stage reads it on its next turn; nothing else is published with it.
  stall_until_ns_.store(clock_->NowNs() + duration_ns, std::memory_order_relaxed);
}

void VerifierStage::SetCostPerTransaction(int64_t cost_ns) {
  assert(cost_ns >= 0);
  // relaxed: the stage reads it on its next turn; nothing else is published with it.
  cost_ns_.store(cost_ns, std::memory_order_relaxed);
}

bool VerifierStage::PacedReady(const InFlightPayload& payload, int64_t now_ns, int64_t cost_ns) {
  if (cost_ns == 0) return true;
  // The service takes a transaction once it has arrived and the one before is done; idle time
  // banks nothing, so a burst after a quiet spell is charged in full.
  const int64_t start_ns = std::max(paced_until_ns_, payload.confirmed_ns);
  if (now_ns - start_ns < cost_ns) return false;
  paced_until_ns_ = start_ns + cost_ns;
  return true;
}

void VerifierStage::MeasurePace(int64_t now_ns, bool backlogged, int checked) {
  if (!backlogged) {
    pace_start_ns_ = 0;
    return;
  }
  if (pace_start_ns_ != 0 && now_ns - pace_start_ns_ >= kRateWindowNs && pace_checked_ > 0) {
    ns_per_check_.store((now_ns - pace_start_ns_) / static_cast<int64_t>(pace_checked_),
                        std::memory_order_relaxed);  // relaxed: see the accessor.
    pace_start_ns_ = 0;
  }
  if (pace_start_ns_ == 0) {
    pace_start_ns_ = now_ns;
    pace_checked_ = 0;
  }
  pace_checked_ += static_cast<uint64_t>(checked);
}

void VerifierStage::PublishBacklog() {
  // The entry at next_ cannot be freed before this stage has checked it, so reading it is safe.
  const int64_t since_ns = ring_->IsPublished(next_) ? ring_->At(next_).payload.confirmed_ns : 0;
  // relaxed: see the accessors. Stored only on a change; reading our own line costs nothing.
  if (backlog_since_ns_.load(std::memory_order_relaxed) != since_ns) {
    backlog_since_ns_.store(since_ns, std::memory_order_relaxed);
  }
  if (checked_below_.load(std::memory_order_relaxed) != next_) {
    checked_below_.store(next_, std::memory_order_relaxed);
  }
}

bool VerifierStage::SendPending() {
  if (!unsent_.has_value()) return true;
  if (!verdicts_->try_enqueue(*unsent_)) return false;
  unsent_.reset();
  return true;
}

int VerifierStage::DoWork() {
  int64_t now_ns = clock_->NowNs();
  int work = Mailbox();  // Before the stall check: a stall models slow verification only.
  // relaxed: see StallFor.
  if (now_ns < stall_until_ns_.load(std::memory_order_relaxed)) {
    // A stalled slow service banks no time either: it starts afresh when the stall ends.
    paced_until_ns_ = std::max(paced_until_ns_, now_ns);
    PublishBacklog();  // A stalled verifier's backlog ages too.
    return work;
  }
  work += Housekeeping();
  if (!SendPending()) {
    PublishBacklog();
    return work;
  }
  // relaxed: see SetCostPerTransaction.
  const int64_t cost_ns = cost_ns_.load(std::memory_order_relaxed);
  const bool backlogged = ring_->IsPublished(next_);
  int checked = 0;
  while (checked < batch_max_ && ring_->IsPublished(next_) && CanCheck()) {
    InFlightEntry& entry = ring_->At(next_);
    const InFlightPayload& payload = entry.payload;
    if (!PacedReady(payload, now_ns, cost_ns)) break;
    // Published after this turn read the clock: read it again, so that the verdict is never
    // stamped before the confirmation it judges (a history is in causal order by construction).
    if (payload.confirmed_ns > now_ns) now_ns = std::max(clock_->NowNs(), payload.confirmed_ns);
    const Judgement judgement = Check(next_, entry, now_ns);
    const Verdict verdict{next_,           verifier_, judgement.reason == Reason::kNone,
                          judgement.reason, now_ns,    judgement.code};
    ++next_;
    ++checked;
    if (judgement.deferred) continue;  // The verifier answers later.
    // The queue holds one verdict per live ring entry, so it is full only in a transient; keep
    // the verdict and stop rather than drop it.
    if (!verdicts_->try_enqueue(verdict)) {
      unsent_ = verdict;
      break;
    }
  }
  MeasurePace(now_ns, backlogged, checked);
  PublishBacklog();
  // The queue's release store is enough: the Parker's fences make the wake-up certain.
  if (checked > 0 && downstream_ != nullptr) downstream_->Unpark();
  return work + checked;
}

bool AsyncVerifierStage::Answer(uint64_t seq, uint16_t code) {
  // Never allocates: past the preallocated producers or the capacity it fails.
  return answers_.try_enqueue(AnswerItem{seq, code});
}

int AsyncVerifierStage::Mailbox() {
  int forwarded = 0;
  if (unforwarded_.has_value()) {
    if (!verdicts()->try_enqueue(*unforwarded_)) return 0;
    unforwarded_.reset();
    ++forwarded;
  }
  const int64_t now_ns = clock()->NowNs();
  AnswerItem answer;
  while (forwarded < batch_max() && answers_.try_dequeue(answer)) {
    if (answer.seq == 0 || answer.seq >= next_seq()) {
      ignored_.store(ignored_.load(std::memory_order_relaxed) + 1,  // relaxed: a statistic;
                     std::memory_order_relaxed);                    // one writer.
      continue;
    }
    const bool pass = answer.code == 0;
    const Verdict verdict{answer.seq, verifier(), pass,
                          pass ? Reason::kNone : Reason::kVerifierRejected, now_ns, answer.code};
    if (!verdicts()->try_enqueue(verdict)) {
      unforwarded_ = verdict;
      break;
    }
    ++forwarded;
  }
  if (forwarded > 0) WakeDownstream();
  return forwarded;
}

int FraudStage::Mailbox() {
  // seq_cst: the handoff's protocol (rules_handoff.h).
  if (!rules_->posted.load(std::memory_order_seq_cst)) return 0;
  absl::MutexLock lock(&rules_->mu);
  if (rules_->decided) return 0;
  // seq_cst: as above; no outcome from the claim on has been journaled.
  const Sequence claim = rules_->journal_claim.load(std::memory_order_seq_cst);
  const Sequence from = std::max(next_seq(), claim);
  while (!pending_.empty() && pending_.back().from >= from) pending_.pop_back();
  pending_.push_back({from, rules_->text});  // A copy: the reconciler journals the text.
  rules_->decided = true;
  rules_->from = from;
  WakeDownstream();  // It journals nothing until it has the decision.
  return 1;
}

Judgement LedgerStage::Check(Sequence seq, InFlightEntry& entry, int64_t now_ns) {
  LedgerGate open = LedgerGate::kOpen;
  // relaxed: the two CASes on this one word decide who was first; no other data rides on it
  // (the verdict carries the result through the verdict queue's release).
  if (!entry.ledger_gate.compare_exchange_strong(open, LedgerGate::kTaken,
                                                 std::memory_order_relaxed)) {
    return {Reason::kDecidedBeforeLedger};
  }
  CatchUpAccounts();
  return {ledger_->Reserve(seq, entry.payload.txn)};
}

void LedgerStage::CatchUpAccounts() {
  if (accounts_ == nullptr) return;
  // acquire (in opened_below): the records below are complete and their creation kept.
  const size_t below = accounts_->opened_below();
  for (; accounts_opened_ < below; ++accounts_opened_) {
    const NewAccount& a = accounts_->At(accounts_opened_).fields;
    const absl::Status status = ledger_->OpenAccount(
        {a.id, a.currency, a.opening_balance_minor, a.overdraft_limit_minor, a.flags});
    // The engine checked everything the ledger checks (including the currency's reach) before
    // it journaled the creation: a refusal here would lose a kept account.
    VOUCH_CHECK(status.ok(), "the ledger opens every created account");
  }
}

int LedgerStage::Housekeeping() {
  int settled = 0;
  Settlement settlement;
  while (settled < batch_max() && settlements_->try_dequeue(settlement)) {
    if (settlement.commit) {
      ledger_->Commit(settlement.seq);
    } else {
      ledger_->Void(settlement.seq);
    }
    ++settled;
  }
  return settled;
}

namespace {

absl::Status CheckReadSize(absl::Span<const uint64_t> accounts) {
  if (accounts.size() > kBalanceReadAccountsMax) {
    return absl::InvalidArgumentError(absl::StrCat("a balance read names at most ",
                                                   kBalanceReadAccountsMax, " accounts"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LedgerStage::ReadBalancesStopped(absl::Span<const uint64_t> accounts,
                                              BalanceSnapshot* out) {
  if (absl::Status status = CheckReadSize(accounts); !status.ok()) return status;
  absl::MutexLock lock(&mu_);
  Serve(accounts, *out);
  ++counters_.served;
  return absl::OkStatus();
}

absl::Status LedgerStage::ReadBalances(absl::Span<const uint64_t> accounts,
                                       BalanceSnapshot* out, absl::Duration timeout,
                                       absl::FunctionRef<void()> kick) {
  if (absl::Status status = CheckReadSize(accounts); !status.ok()) return status;
  ReadSlot* slot = nullptr;
  {
    absl::MutexLock lock(&mu_);
    for (ReadSlot& candidate : slots_) {
      if (candidate.out == nullptr) {
        slot = &candidate;
        break;
      }
    }
    if (slot == nullptr) {
      ++counters_.busy;
      return absl::UnavailableError(absl::StrCat(
          kBalanceReadSlots, " balance reads are already waiting for the ledger; retry"));
    }
    *slot = {accounts, out, false};
    // release: see the class comment.
    reads_posted_.store(true, std::memory_order_release);
  }
  kick();
  absl::MutexLock lock(&mu_);
  const bool done = mu_.AwaitWithTimeout(absl::Condition(&slot->done), timeout);
  *slot = {};  // Taken back, served or not: the stage no longer sees it.
  if (!done) {
    ++counters_.timed_out;
    return absl::DeadlineExceededError(absl::StrCat(
        "the ledger stage did not serve the balance read within ",
        absl::FormatDuration(timeout)));
  }
  ++counters_.served;
  return absl::OkStatus();
}

BalanceReadCounters LedgerStage::read_counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

int LedgerStage::Mailbox() {
  CatchUpAccounts();
  // acquire: see the class comment.
  if (!reads_posted_.load(std::memory_order_acquire)) return 0;
  absl::MutexLock lock(&mu_);
  reads_posted_.store(false, std::memory_order_relaxed);  // relaxed: under the mutex.
  int served = 0;
  for (ReadSlot& slot : slots_) {
    if (slot.out == nullptr || slot.done) continue;
    Serve(slot.accounts, *slot.out);
    slot.done = true;
    ++served;
  }
  return served;
}

void LedgerStage::Serve(absl::Span<const uint64_t> accounts, BalanceSnapshot& out) const {
  out.accounts.clear();
  out.currencies.clear();
  out.truncated = false;
  if (accounts.empty()) {
    ledger_->ForEachAccount([&out](const ledger::AccountView& view) {
      if (out.accounts.size() < kBalanceReadAccountsMax) {
        out.accounts.push_back(view);
      } else {
        out.truncated = true;
      }
    });
  } else {
    for (const uint64_t id : accounts) {
      if (const std::optional<ledger::AccountView> view = ledger_->Find(id)) {
        out.accounts.push_back(*view);
      }
    }
  }
  ledger_->ForEachCurrency([&out](CurrencyCode currency, int64_t total, int64_t clearing) {
    out.currencies.push_back({currency, total, clearing});
  });
  out.checked_below = next_seq();
  out.postings = ledger_->postings();
}

}  // namespace vouch
