#include "engine/reconcile/reconciler.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/common/check.h"

namespace vouch {
namespace {

// Decided, and complete: an outcome decided while the ledger was reserving waits for its verdict.
bool Final(const ReconcileState& state) { return state.record.resolved && !state.awaiting_ledger; }


}  // namespace

Reconciler::Reconciler(const ReconcilerPorts& ports, int batch_max)
    : ports_(ports), batch_max_(batch_max) {
  assert(ports.ring && ports.settlements && ports.accounts && ports.history && ports.clock);
  assert(ports.verifier_count >= kBuiltinVerifierCount && ports.verifier_count <= kVerifiersMax);
  for (int slot = 0; slot < ports.verifier_count; ++slot) assert(ports.verdicts[slot] != nullptr);
  assert((ports.sink == nullptr) != (ports.poll_queue == nullptr));
  if (ports.poll_queue != nullptr) {
    poll_token_ = std::make_unique<moodycamel::ProducerToken>(*ports.poll_queue);
  }
}

int Reconciler::DoWork() {
  int64_t now_ns = ports_.clock->NowNs();  // Moved on by DrainVerdicts: see OnVerdict.
  int work = ServeReleases(now_ns);
  for (int slot = 0; slot < ports_.verifier_count; ++slot) {
    work += DrainVerdicts(ports_.verdicts[slot], now_ns);
  }
  work += ExpireDeadlines(now_ns);
  work += JournalInOrder();
  work += EmitInOrder();
  work += RetireInOrder(now_ns);
  return work;
}

int Reconciler::DrainVerdicts(VerdictQueue* queue, int64_t& now_ns) {
  int drained = 0;
  Verdict verdict;
  while (drained < batch_max_ && queue->try_dequeue(verdict)) {
    OnVerdict(verdict, now_ns);
    ++drained;
  }
  return drained;
}

void Reconciler::OnVerdict(const Verdict& verdict, int64_t& now_ns) {
  // A verdict stamped after this turn read the clock: read it again, so that what the reconciler
  // decides and compensates from here on is never stamped before the verdicts it acts on.
  if (verdict.decided_ns > now_ns) now_ns = std::max(ports_.clock->NowNs(), verdict.decided_ns);
  const int verifier_slot = VerifierSlot(verdict.verifier);
  VOUCH_CHECK(verifier_slot >= 0 && verifier_slot < ports_.verifier_count,
              "a verdict comes from a registered verifier");
  if (verdict.seq < next_retire_) {
    VOUCH_CHECK(ports_.roles[verifier_slot].async != nullptr,
                "only an asynchronous verifier's entries retire before its verdict");
    OnRetiredVerdict(verdict);
    return;
  }
  // The entry cannot have been freed: freeing waits for this very verdict (or, for an
  // asynchronous verifier, for the outcome: the seq would be below next_retire_).
  VOUCH_CHECK(ports_.ring->IsPublished(verdict.seq), "a verdict's entry is live until retired");
  InFlightEntry& entry = ports_.ring->At(verdict.seq);
  HistoryRecord& record = entry.reconcile.record;
  VOUCH_CHECK(record.seq == verdict.seq, "a verdict judges the transaction in its entry");
  const bool required = ports_.roles[verifier_slot].required;
  VerdictRecord& slot = record.verdicts[verifier_slot];
  if (slot.received && ports_.roles[verifier_slot].async != nullptr) {
    counters_.Add(counters_.ignored_verdicts);  // A second answer: the first one stands.
    return;
  }
  // A second ledger verdict could settle one reservation twice.
  VOUCH_CHECK(!slot.received, "each verifier sends one verdict per sequence number");
  slot = TakeVerdict(verdict, record.resolved);
  VOUCH_CHECK(verdict.reason != Reason::kDecidedBeforeLedger || slot.late,
              "the ledger skips only a transaction the reconciler already decided");
  counters_.confirm_to_verdict[verifier_slot].Record(verdict.decided_ns -
                                                     entry.payload.confirmed_ns);
  if (required && !record.resolved) TryResolve(entry, now_ns);
  if (ports_.roles[verifier_slot].shadow && record.resolved) {
    CompareShadow(verifier_slot, slot, record.outcome);
  }
  if (verdict.verifier == VerifierId::kLedger && verdict.pass) {
    entry.reconcile.settle_owed = true;
    // Decided before the reservation was known (a fraud failure earlier in this turn, or a
    // timeout): the reservation will be reversed, and the outcome, if not emitted yet, says so.
    if (record.resolved && record.outcome.kind != OutcomeKind::kVerified) {
      record.outcome.compensation |= kCompensationReversed;
    }
  }
  if (verdict.verifier == VerifierId::kLedger && entry.reconcile.awaiting_ledger) {
    // The outcome is complete now: it says whether the reservation is reversed. It may be
    // journaled and emitted (a held submitter gets it when it is emitted: AnswerHeld).
    entry.reconcile.awaiting_ledger = false;
  }
  ports_.history->Write(record);
}

VerdictRecord Reconciler::TakeVerdict(const Verdict& verdict, bool decided) {
  const int slot = VerifierSlot(verdict.verifier);
  // An advisory or shadow verdict decides nothing, so it is never late.
  const bool late = ports_.roles[slot].required && decided;
  if (late) counters_.Add(counters_.late_verdicts);
  if (!verdict.pass) counters_.Add(counters_.verdict_failures[slot]);
  return {true, verdict.pass, late, verdict.reason, verdict.code, verdict.decided_ns};
}

bool Reconciler::Judged(const HistoryRecord& record) const {
  for (int slot = 0; slot < ports_.verifier_count; ++slot) {
    if (record.verdicts[slot].received) continue;
    const HandOffCursor* async = ports_.roles[slot].async;
    if (async == nullptr || !record.resolved || async->handed_below() <= record.seq) return false;
  }
  return true;
}

void Reconciler::OnRetiredVerdict(const Verdict& verdict) {
  const int verifier_slot = VerifierSlot(verdict.verifier);
  const VerifierRole& role = ports_.roles[verifier_slot];
  std::optional<HistoryRecord> record = ports_.history->Read(verdict.seq);
  if (record.has_value() && record->verdicts[verifier_slot].received) {
    counters_.Add(counters_.ignored_verdicts);  // A second answer: the first one stands.
    return;
  }
  // Retired, so decided: a required verdict is late; an advisory one is just recorded.
  const VerdictRecord taken = TakeVerdict(verdict, /*decided=*/true);
  if (!record.has_value()) return;  // Older than the history: counted only.
  VerdictRecord& slot = record->verdicts[verifier_slot];
  slot = taken;
  counters_.confirm_to_verdict[verifier_slot].Record(verdict.decided_ns -
                                                     record->outcome.confirmed_ns);
  if (role.shadow) CompareShadow(verifier_slot, slot, record->outcome);
  ports_.history->Write(*record);
}

void Reconciler::TryResolve(InFlightEntry& entry, int64_t now_ns) {
  const HistoryRecord& record = entry.reconcile.record;
  // The first required verifier, in verifier order, that failed it or has not judged it yet.
  VerifierId missing = VerifierId::kNone;
  for (int slot = 0; slot < ports_.verifier_count; ++slot) {
    if (!ports_.roles[slot].required) continue;
    const VerdictRecord& verdict = record.verdicts[slot];
    if (verdict.received && !verdict.pass) {
      Resolve(entry, OutcomeKind::kLateFailed, VerifierAtSlot(slot), verdict.reason, now_ns,
              verdict.code);
      return;
    }
    if (!verdict.received && missing == VerifierId::kNone) missing = VerifierAtSlot(slot);
  }
  if (missing == VerifierId::kNone) {
    // Its account was put on hold after it was confirmed (a failure of another of its
    // transactions), and it was not in the ring window FailInFlight scanned then.
    if (ports_.fail_in_flight_on_hold && ports_.accounts->IsHeld(entry.payload.txn.source_account)) {
      Resolve(entry, OutcomeKind::kLateFailed, VerifierId::kFraud, Reason::kAccountHeldInFlight,
              now_ns);
    } else {
      Resolve(entry, OutcomeKind::kVerified, VerifierId::kNone, Reason::kNone, now_ns);
    }
  } else if (now_ns >= entry.payload.deadline_ns) {
    Resolve(entry, OutcomeKind::kLateTimeout, missing, Reason::kDeadlineExceeded, now_ns);
  }
}

void Reconciler::CompareShadow(int slot, const VerdictRecord& verdict, const Outcome& outcome) {
  const bool verified = outcome.kind == OutcomeKind::kVerified;
  const ShadowComparison comparison = verdict.pass == verified ? ShadowComparison::kAgreed
                                      : verified ? ShadowComparison::kWouldHaveFailed
                                                 : ShadowComparison::kWouldHavePassed;
  counters_.Add(counters_.shadow_verdicts[slot][static_cast<int>(comparison)]);
}

void Reconciler::Resolve(InFlightEntry& entry, OutcomeKind kind, VerifierId verifier,
                         Reason reason, int64_t now_ns, uint16_t verifier_code) {
  HistoryRecord& record = entry.reconcile.record;
  VOUCH_CHECK(!record.resolved, "one outcome per sequence number");
  const Transaction& txn = entry.payload.txn;
  Outcome& outcome = record.outcome;
  outcome = {txn.id, record.seq, kind, verifier, reason, kCompensationNone, entry.payload.held,
             txn.source_account, txn.amount_minor, txn.currency, entry.payload.confirmed_ns,
             now_ns, entry.payload.origin, verifier_code};
  record.resolved = true;
  if (entry.payload.at_risk && ports_.risk != nullptr) {
    ports_.risk->Remove(ports_.accounts->FindMutable(txn.source_account), txn.currency,
                        txn.amount_minor);
  }
  if (kind != OutcomeKind::kVerified && record.verdicts[1].received && record.verdicts[1].pass) {
    outcome.compensation |= kCompensationReversed;  // Done when the entry retires.
  }
  if (!record.verdicts[1].received) CloseLedgerGate(entry);
  bool placed_hold = false;
  // A held transaction was never confirmed: its failure is its answer, not a compromise of the
  // account, and it is no late failure.
  if (entry.payload.held) {
    counters_.Add(counters_.held_results[static_cast<int>(kind)]);
  } else {
    if (kind == OutcomeKind::kLateFailed && reason != Reason::kAccountHeldInFlight &&
        ports_.roles[VerifierSlot(verifier)].holds_account) {
      placed_hold = PlaceHold(txn, record.seq, outcome, now_ns);
    }
    counters_.Add(counters_.outcomes[static_cast<int>(kind)]);
    if (kind != OutcomeKind::kVerified) {
      counters_.Add(counters_.failures_by_reason[static_cast<int>(reason)]);
    }
  }
  counters_.confirm_to_outcome.Record(now_ns - entry.payload.confirmed_ns);
  // Shadow verdicts that came before the outcome are compared now; later ones as they come.
  for (int slot = 0; slot < ports_.verifier_count; ++slot) {
    if (ports_.roles[slot].shadow && record.verdicts[slot].received) {
      CompareShadow(slot, record.verdicts[slot], outcome);
    }
  }
  if (!entry.payload.held) {
    counters_.Add(counters_.decided_unheld);
    // Every currency the engine confirms has a slot; a reconciler driven on its own (a
    // benchmark) may see others, which have no sum.
    const int slot = CurrencySlot(txn.currency);
    if (slot >= 0) counters_.AddMinor(counters_.decided_unheld_minor[slot], txn.amount_minor);
  }
  if (placed_hold && ports_.fail_in_flight_on_hold) {
    FailInFlight(txn.source_account, verifier, now_ns);
  }
}


void Reconciler::CloseLedgerGate(InFlightEntry& entry) {
  LedgerGate open = LedgerGate::kOpen;
  // relaxed: see LedgerStage::Check; the CAS on the one word is the whole handshake.
  if (!entry.ledger_gate.compare_exchange_strong(open, LedgerGate::kClosed,
                                                 std::memory_order_relaxed)) {
    entry.reconcile.awaiting_ledger = true;  // The ledger took it first: its verdict will say.
  }
}

void Reconciler::FailInFlight(uint64_t account, VerifierId verifier, int64_t now_ns) {
  // The window of entries not retired yet, at most the ring's capacity; a fraud failure is rare.
  // An entry claimed but not published yet is left to the hold check in TryResolve.
  const Sequence claimed = ports_.ring->claimed();
  for (Sequence seq = next_retire_; seq <= claimed; ++seq) {
    if (!ports_.ring->IsPublished(seq)) continue;
    InFlightEntry& entry = ports_.ring->At(seq);
    if (entry.reconcile.record.resolved || entry.payload.txn.source_account != account) continue;
    // Published after this turn read the clock: read it again, so that no outcome is stamped
    // before its own confirmation.
    if (entry.payload.confirmed_ns > now_ns) {
      now_ns = std::max(ports_.clock->NowNs(), entry.payload.confirmed_ns);
    }
    Resolve(entry, OutcomeKind::kLateFailed, verifier, Reason::kAccountHeldInFlight, now_ns);
    ports_.history->Write(entry.reconcile.record);
  }
}

bool Reconciler::PlaceHold(const Transaction& txn, Sequence seq, Outcome& outcome,
                           int64_t now_ns) {
  AccountRecord* account = ports_.accounts->FindMutable(txn.source_account);
  if (account == nullptr) return false;
  // relaxed: a flag that publishes nothing else; ingest reads it on its own.
  (void)account->on_hold.exchange(true, std::memory_order_relaxed);
  outcome.compensation |= kCompensationAccountHeld;
  counters_.Add(counters_.holds_placed);
  if (ports_.journal == nullptr) return true;
  // Room is certain: the journal's queue holds at most an outcome and a hold per live ring entry
  // (a hold is queued before its outcome, and the entry is freed only after that outcome left
  // the queue), plus kOperatorEntriesQueuedMax releases, which ServeReleases keeps to.
  VOUCH_CHECK(ports_.journal->RecordHoldChange({true, txn.source_account, seq, now_ns}),
              "the journal's queue has room for every hold (see OutcomeJournal)");
  return true;
}

absl::StatusOr<bool> Reconciler::ReleaseHold(uint64_t account, absl::Duration timeout,
                                             absl::FunctionRef<void()> kick) {
  if (account == 0) return false;  // Never held (no account has id 0).
  ReleaseSlot* slot = nullptr;
  {
    absl::MutexLock lock(&mu_);
    for (ReleaseSlot& candidate : release_slots_) {
      if (candidate.account == 0) {
        slot = &candidate;
        break;
      }
    }
    if (slot == nullptr) {
      return absl::UnavailableError(
          absl::StrCat(kReleaseSlots, " hold releases are already waiting; retry"));
    }
    *slot = {account, false, false};
    // seq_cst: the Parker protocol's publication (see kReleaseSlots).
    releases_posted_.store(true, std::memory_order_seq_cst);
  }
  kick();
  absl::MutexLock lock(&mu_);
  const bool done = mu_.AwaitWithTimeout(absl::Condition(&slot->done), timeout);
  const bool was_held = slot->was_held;
  *slot = {};  // Taken back, served or not: the reconciler no longer sees it.
  if (!done) {
    return absl::DeadlineExceededError(
        absl::StrCat("the reconciler did not take the hold release within ",
                     absl::FormatDuration(timeout), "; nothing was released"));
  }
  return was_held;
}

bool Reconciler::OperatorEntryRoom() const {
  return operator_entries_queued_ - ports_.journal->operator_entries_taken() <
         kOperatorEntriesQueuedMax;
}

int Reconciler::ServeReleases(int64_t now_ns) {
  // seq_cst: see kReleaseSlots.
  if (!releases_posted_.load(std::memory_order_seq_cst)) return 0;
  absl::MutexLock lock(&mu_);
  releases_posted_.store(false, std::memory_order_relaxed);  // relaxed: under the mutex.
  int served = 0;
  for (ReleaseSlot& slot : release_slots_) {
    if (slot.account == 0 || slot.done) continue;
    if (ports_.journal != nullptr) {
      if (!OperatorEntryRoom()) {
        // The journal is behind: served on a later turn (the flag stays up).
        releases_posted_.store(true, std::memory_order_relaxed);  // relaxed: under the mutex.
        break;
      }
    }
    slot.was_held = ports_.accounts->SetHold(slot.account, false);
    if (slot.was_held && ports_.journal != nullptr) {
      // Room is certain: see PlaceHold; this release is within kOperatorEntriesQueuedMax.
      VOUCH_CHECK(ports_.journal->RecordHoldChange({false, slot.account, 0, now_ns}),
                  "the journal's queue has room for kOperatorEntriesQueuedMax releases");
      ++operator_entries_queued_;
    }
    slot.done = true;
    ++served;
  }
  return served;
}

void Reconciler::StartAt(Sequence first_seq) {
  next_expire_ = next_journal_ = next_emit_ = next_retire_ = first_seq;
  // relaxed: before the stage runs.
  retired_below_.store(first_seq, std::memory_order_relaxed);
}

int Reconciler::ExpireDeadlines(int64_t now_ns) {
  if (next_expire_ < next_retire_) next_expire_ = next_retire_;
  int examined = 0;
  // Deadlines grow with the sequence number (up to clock skew between producers of a few
  // nanoseconds), so the scan stops at the first live entry that has not expired yet.
  while (examined < batch_max_ && ports_.ring->IsPublished(next_expire_)) {
    InFlightEntry& entry = ports_.ring->At(next_expire_);
    if (!entry.reconcile.record.resolved) {
      if (now_ns < entry.payload.deadline_ns) break;
      TryResolve(entry, now_ns);
      ports_.history->Write(entry.reconcile.record);
    }
    ++next_expire_;
    ++examined;
  }
  return examined;
}

bool Reconciler::Emit(const Outcome& outcome) {
  if (ports_.sink != nullptr) {
    ports_.sink->OnOutcome(outcome);
    return true;
  }
  return ports_.poll_queue->try_enqueue(*poll_token_, outcome);
}

bool Reconciler::ClaimJournalTurn(Sequence end) {
  if (ports_.rules == nullptr) return true;
  RulesHandoff& rules = *ports_.rules;
  // seq_cst (both): the handoff's Dekker pair (rules_handoff.h).
  rules.journal_claim.store(end, std::memory_order_seq_cst);
  if (!rules.posted.load(std::memory_order_seq_cst)) return true;
  absl::MutexLock lock(&rules.mu);
  if (!rules.decided) return false;  // The fraud stage decides at its next turn.
  if (ports_.journal != nullptr) {
    if (!OperatorEntryRoom()) return false;  // The journal is behind: the next turn.
    VOUCH_CHECK(ports_.journal->RecordRules(rules.from, rules.text),
                "the journal's queue has room for kOperatorEntriesQueuedMax reloads");
    ++operator_entries_queued_;
  }
  rules.done_generation = rules.posted_generation;
  rules.done_from = rules.from;
  rules.decided = false;
  rules.text.clear();
  rules.posted.store(false, std::memory_order_relaxed);  // relaxed: under the mutex.
  return true;
}

int Reconciler::JournalInOrder() {
  if (ports_.journal == nullptr) {
    (void)ClaimJournalTurn(0);  // Completes a rule reload; nothing to order it with.
    return 0;
  }
  if (next_journal_ < next_emit_) next_journal_ = next_emit_;
  // The resolved run this turn may journal.
  Sequence end = next_journal_;
  while (end - next_journal_ < static_cast<Sequence>(batch_max_) &&
         ports_.ring->IsPublished(end) && Final(ports_.ring->At(end).reconcile)) {
    ++end;
  }
  if (!ClaimJournalTurn(end)) return 0;
  int recorded = 0;
  while (next_journal_ < end) {
    const InFlightEntry& entry = ports_.ring->At(next_journal_);
    if (!ports_.journal->RecordOutcome(entry.reconcile.record.outcome)) {
      counters_.Add(counters_.journal_stalls);
      break;
    }
    ++next_journal_;
    ++recorded;
  }
  return recorded;
}

// The outcome is kept as the ack policy promises (EmitInOrder's bound): the held transaction's
// final answer may be told. Runs again if the poll queue was full; both steps are idempotent.
void Reconciler::AnswerHeld(InFlightEntry& entry) {
  const Outcome& outcome = entry.reconcile.record.outcome;
  const bool verified = outcome.kind == OutcomeKind::kVerified;
  if (ports_.idempotency != nullptr && entry.payload.idempotency_ticket != 0) {
    (void)ports_.idempotency->Record(
        entry.payload.idempotency_ticket,
        {verified ? ConfirmStatus::kConfirmed : ConfirmStatus::kRejected, outcome.reason, true,
         outcome.seq, entry.payload.confirmed_ns});
  }
  // A submitter that does not wait (HeldAnswer::kLater) has swapped in kDone, or will, so the
  // hand-over is a CAS: kReady must never overwrite its kDone. release (success): the submitter
  // that acquires kReady reads a complete held_outcome; relaxed (failure): nothing to read.
  if (entry.held_state.load(std::memory_order_relaxed) != HeldState::kWaiting) return;
  entry.held_outcome = outcome;
  HeldState expected = HeldState::kWaiting;
  if (entry.held_state.compare_exchange_strong(expected, HeldState::kReady,
                                               std::memory_order_release,
                                               std::memory_order_relaxed)) {
    entry.held_state.notify_one();
  }
}

int Reconciler::EmitInOrder() {
  if (next_emit_ < next_retire_) next_emit_ = next_retire_;
  // With a journal, only outcomes it has kept may be told.
  const Sequence emit_below =
      ports_.journal != nullptr ? ports_.journal->outcomes_acked_below() : UINT64_MAX;
  int emitted = 0;
  while (emitted < batch_max_ && next_emit_ < emit_below &&
         ports_.ring->IsPublished(next_emit_)) {
    InFlightEntry& entry = ports_.ring->At(next_emit_);
    if (!Final(entry.reconcile)) break;
    // Before the outcome leaves: whoever sees it and resubmits the id finds the answer.
    if (entry.payload.held) AnswerHeld(entry);
    if (!Emit(entry.reconcile.record.outcome)) {
      // The embedder is not polling: hold back rather than drop. The ring then fills and
      // ingest answers BUSY, so the back-pressure reaches the client.
      counters_.Add(counters_.emit_stalls);
      break;
    }
    entry.reconcile.emitted = true;
    ++next_emit_;
    ++emitted;
  }
  return emitted;
}

// The entry's transaction no longer counts as in flight for its accounts: its outcome is told
// and its settlement (if any) queued ahead of any later balance read (Engine::CloseAccount).
// seq_cst: CloseAccount's wait reads the count after its seq_cst state store (see Engine).
void Reconciler::ReleaseInFlight(const Transaction& txn) {
  for (const uint64_t id : {txn.source_account, txn.destination_account}) {
    if (AccountRecord* account = ports_.accounts->FindMutable(id)) {
      account->in_flight.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
}

int Reconciler::RetireInOrder(int64_t now_ns) {
  int retired = 0;
  while (retired < batch_max_ && next_retire_ < next_emit_) {
    InFlightEntry& entry = ports_.ring->At(next_retire_);
    ReconcileState& state = entry.reconcile;
    // Settling before telling could move money for an outcome nobody was told.
    VOUCH_CHECK(state.emitted, "an entry retires only after its outcome was told");
    if (!Judged(state.record)) break;
    if (ports_.journal != nullptr && next_retire_ >= ports_.journal->read_below()) break;
    // acquire: pairs with the submitter's release of kDone; it has finished reading the entry.
    // (kNotHeld: nobody reads it; a HeldAnswer::kLater transaction left with its Outcome.)
    const HeldState held_state = entry.held_state.load(std::memory_order_acquire);
    if (held_state == HeldState::kWaiting || held_state == HeldState::kReady) break;
    if (state.settle_owed) {
      const bool commit = state.record.outcome.kind == OutcomeKind::kVerified;
      if (!ports_.settlements->try_enqueue({next_retire_, commit})) break;
      state.settle_owed = false;
      if (commit) {
        counters_.Add(counters_.commits);
      } else {
        counters_.Add(counters_.reversals);
        state.record.compensated_ns = now_ns;
        ports_.history->Write(state.record);
      }
    }
    ReleaseInFlight(entry.payload.txn);
    // relaxed: published to the next lap by Free's release (see InFlightEntry::ledger_gate).
    entry.ledger_gate.store(LedgerGate::kOpen, std::memory_order_relaxed);
    ports_.ring->Free(next_retire_);
    ++next_retire_;
    ++retired;
    counters_.Add(counters_.retired);
  }
  // release: see retired_below().
  retired_below_.store(next_retire_, std::memory_order_release);
  return retired;
}

}  // namespace vouch
