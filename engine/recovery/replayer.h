// Replayer: applies journal records to the state they describe. The engine's recovery uses it on
// the engine's own verifiers; the snapshotter uses it on a shadow copy that follows the journal,
// and saves that copy as a snapshot.
//
// The journal holds confirmed transactions as a gap-free run 1..C and outcomes as 1..O, O <= C,
// a transaction always before its outcome (engine/journal/stage/journal_stage.h). Transactions
// whose outcome has not been applied wait in `undecided` (bounded by the ring capacity). An
// outcome settles the oldest of them:
//  - the fraud rules check the transaction again at its original time (velocity windows and
//    amount statistics come back exactly);
//  - a VERIFIED transfer is posted to the ledger: in sequence order it always finds its funds,
//    because the original run had them while also holding the reservations of transactions that
//    later failed;
//  - a hold record puts the account on hold again, a release record lifts it, in file order,
//    which is the order the live hold table saw them (journal_stage.h). A journal written before
//    hold records existed has none: there an outcome that held its source account holds it
//    again, until the first hold record (a newer writer) is seen;
//  - with a history ring, Query's record of the transaction is written.
// The journal's one opening configuration record (kOpening) is kept, and saved with the state.
// An account creation record inserts the account in the directory (open: it was kept) and opens
// it in the ledger, in file order, which is the order the live ledger stage opened them; its
// lifecycle records (freeze, unfreeze, close, limits) change its record and history. A hold
// record for an id the directory lacks (a journal from before accounts were created through the
// directory) is ignored: every transaction of such an account is refused at ingest now.
// A rules record (start-up or reload) switches the fraud rules just before the outcome of its
// sequence number is replayed, as the live fraud stage switched just before judging it; a later
// record for an earlier or equal sequence number supersedes one not applied yet (a restart
// re-judges what was undecided under its own rules).
// Each confirmed transaction's and each stored refusal's idempotency answer carries its
// first-seen time and the ContentFingerprint of its fields (a confirmed transaction's from its
// record, a refusal's from a kRefusedWithFingerprint record), so that the retention and the
// content check hold across a restart. Answers go one of two ways:
//  - Recovery (Targets::idempotency set): each answer goes into the engine's idempotency table
//    as soon as it is final, in journal order (oldest first), and the replayer keeps none, so
//    recovery's memory does not grow with the ids within the retention (10^8 of them fill the
//    table alone). A transaction's answer is final at its confirmed record, a held one's at its
//    outcome (what the outcome decided is its answer), or at FinishAnswers for a held one still
//    undecided. The table judges the retention itself (IdempotencyTable::Restore): an answer
//    it cannot hold without forgetting one first seen within the retention stops the replay
//    (idempotency_overflowed).
//  - The snapshotter's shadow (Targets::idempotency null): the answers are kept, those of the
//    last `answers_capacity` transactions in a ring indexed by sequence number, the last
//    `answers_capacity` refusals in a queue with the confirmed sequence number each followed,
//    so that Save writes both in journal order. The newest first-seen time of an answer that
//    fell out of those bounds is kept and saved too: recovery refuses to start if it is within
//    the retention (the table is too small to keep the promise; see EngineImpl::Recover).
//
// Thread safety: none; one thread drives a Replayer and owns its targets while it does.
#ifndef VOUCH_ENGINE_RECOVERY_REPLAYER_H_
#define VOUCH_ENGINE_RECOVERY_REPLAYER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "engine/common/byte_coding.h"
#include "engine/history/history_ring.h"
#include "engine/accounts/account_directory.h"
#include "engine/ingest/idempotency_table.h"
#include "engine/journal/records.h"
#include "engine/journal/segment.h"
#include "engine/verify/verifier.h"
#include "engine/ledger/ledger.h"

namespace vouch {

class Replayer {
 public:
  struct Targets {
    StatefulVerifier* fraud = nullptr;  // The built-in fraud verifier (or a shadow of it).
    ledger::Ledger* ledger = nullptr;
    // Accounts: created and changed by the account records, holds placed and released.
    AccountDirectory* accounts = nullptr;
    HistoryRing* history = nullptr;  // Optional.
    // Recovery: the table each final answer is restored into (see the class comment), and
    // the engine time the retention is judged at. Null: answers are kept, for Save.
    IdempotencyTable* idempotency = nullptr;
    int64_t idempotency_now_ns = 0;
  };
  // A confirmed transaction's stored answer and, once decided, its outcome; times in Unix ns
  // (they cross processes). Snapshots carry both, so that Query and Engine::FinalOutcome still
  // know a transaction's outcome after a restart from a snapshot that covers it.
  struct Answer {
    uint64_t id = 0;
    Sequence seq = 0;
    ConfirmStatus status = ConfirmStatus::kConfirmed;
    Reason reason = Reason::kNone;
    bool held = false;
    int64_t received_unix_ns = 0;
    uint64_t fingerprint = 0;  // ContentFingerprint; 0: unknown (older snapshot or journal).
    bool decided = false;
    OutcomeKind outcome_kind = OutcomeKind::kVerified;
    VerifierId outcome_verifier = VerifierId::kNone;
    Reason outcome_reason = Reason::kNone;
    uint16_t outcome_verifier_code = 0;  // Outcome::verifier_code.
    uint8_t compensation = kCompensationNone;
    int64_t decided_unix_ns = 0;
    uint64_t origin = 0;
    // What the outcome says of the transaction itself.
    uint64_t source_account = 0;
    int64_t amount_minor = 0;
    CurrencyCode currency = 0;
  };

  // `unix_to_mono_ns` turns the journal's Unix times into this process's monotonic time.
  Replayer(Targets targets, size_t undecided_max, size_t answers_capacity,
           int64_t unix_to_mono_ns);

  // Applies one record. DataLoss, naming `where`, if the journal contradicts itself.
  absl::Status Apply(journal::RecordType type, uint64_t seq, const char* payload, size_t size,
                     const journal::RecordLocation& where);

  Sequence confirmed() const { return confirmed_; }
  Sequence outcomes() const { return outcomes_; }
  uint64_t releases() const { return releases_; }
  // The journal's opening configuration (engine/recovery/opening.h), from its kOpening record or
  // a snapshot; nullopt for a journal written before it was pinned (or not yet created).
  const std::optional<journal::OpeningRecord>& opening() const { return opening_; }
  uint64_t refused() const { return refused_; }  // Refusal records applied.
  // The text of the fraud rules the replay judges by now (empty: no rules record seen, the
  // targets' own rules), and whether rules records wait for a later sequence number.
  const std::string& rules_text() const { return rules_text_; }
  bool rules_pending() const { return !pending_rules_.empty(); }
  const std::deque<journal::ConfirmedRecord>& undecided() const { return undecided_; }
  // Recovery, after the last record: restores the answers of the held transactions still
  // undecided. They read as confirmed (held) until their outcome, which the engine now
  // decides again, unheld.
  absl::Status FinishAnswers();
  // Recovery: the idempotency table could not hold an answer without forgetting one first seen
  // within its retention, and the replay stopped there (Apply returned ResourceExhausted).
  bool idempotency_overflowed() const { return idempotency_overflowed_; }
  // The newest first-seen time (Unix ns) of an answer that is no longer kept (it fell out of
  // the bounds above); 0 if none did, or if a snapshot older than format 4 does not say.
  int64_t newest_dropped_unix_ns() const { return newest_dropped_unix_ns_; }

  // The whole replayed state (the targets' state included) as bytes, and back. Save is for the
  // shadow (no Targets::idempotency); it hands the bytes to `emit` in pieces of about 1 MiB (and
  // each verifier's part whole), in order, so that a snapshot of 10^8 answers (8.8 GB) is never
  // held in memory whole; it stops at the first piece `emit` fails, with that status. Restore replaces the targets' state, and writes the
  // history of every decided answer it restores (the answers stand in for the history; the
  // verdicts of those records are not kept). A snapshot may hold more or fewer answers than
  // `answers_capacity` (the window was changed between runs): the newest are kept, and those
  // that do not fit count as dropped. InvalidArgument for bytes that are not a snapshot of this
  // format; the targets' own refusals and an idempotency overflow (ResourceExhausted) pass
  // through.
  absl::Status Save(absl::FunctionRef<absl::Status(absl::string_view)> emit) const;
  absl::Status Restore(absl::string_view bytes);

 private:
  struct Refusal {
    uint64_t id = 0;
    Reason reason = Reason::kNone;
    int64_t refused_unix_ns = 0;
    Sequence after_seq = 0;  // The confirmed sequence number replayed before it.
    uint64_t fingerprint = 0;  // 0: unknown (a kRefused record).
  };
  absl::Status ApplyConfirmed(const char* payload, size_t size, uint64_t seq,
                              const journal::RecordLocation& where);
  absl::Status ApplyOutcome(const char* payload, size_t size, uint64_t seq,
                            const journal::RecordLocation& where);
  absl::Status ApplyRules(const char* payload, size_t size, uint64_t seq,
                          const journal::RecordLocation& where);
  void SwitchRulesFor(Sequence seq);
  struct PendingRules {
    Sequence from;
    std::string text;  // Validated (StatefulVerifier::ValidateRules).
  };
  Answer& AnswerFor(Sequence seq) { return answers_[(seq - 1) % answers_.size()]; }
  absl::Status ApplyRefused(const char* payload, size_t size,
                            const journal::RecordLocation& where);
  absl::Status ApplyAccount(journal::RecordType type, const char* payload, size_t size,
                            const journal::RecordLocation& where);
  // Restores one final answer into Targets::idempotency; ResourceExhausted if it is full.
  absl::Status Remember(uint64_t id, const StoredAnswer& answer);
  absl::Status RememberRefusal(const Refusal& refusal);
  // The answers block of a snapshot, after its refusals (RestoreRefusals) were read.
  absl::Status RestoreAnswers(ByteReader& in, bool with_outcomes, bool with_fingerprints);
  absl::Status RestoreRefusals(ByteReader& in, bool with_fingerprints);
  void KeepRefusal(const Refusal& refusal);
  void Dropped(int64_t received_unix_ns) {
    if (received_unix_ns > newest_dropped_unix_ns_) newest_dropped_unix_ns_ = received_unix_ns;
  }
  absl::Status RestoreRules(ByteReader& in);
  // Query's record of a decided answer restored from a snapshot.
  void WriteHistory(const Answer& a);

  const Targets targets_;
  const size_t undecided_max_;
  const int64_t unix_to_mono_ns_;
  const size_t answers_capacity_;
  bool idempotency_overflowed_ = false;
  // The shadow's ring holds the answers of confirmed_ - answers_kept_ + 1 .. confirmed_.
  uint64_t answers_kept_ = 0;
  Sequence confirmed_ = 0;
  Sequence outcomes_ = 0;
  uint64_t releases_ = 0;
  std::optional<journal::OpeningRecord> opening_;
  uint64_t refused_ = 0;
  int64_t newest_dropped_unix_ns_ = 0;
  // An outcome's kCompensationAccountHeld places the hold (a journal older than hold records).
  bool outcome_flags_hold_ = true;
  std::string rules_text_;
  std::deque<PendingRules> pending_rules_;  // Ascending from.
  std::deque<journal::ConfirmedRecord> undecided_;
  // The shadow's newest answers_capacity refusals, oldest first (recovery: only those of a
  // snapshot, until its answers are restored).
  std::deque<Refusal> refusals_;
  std::vector<Answer> answers_;  // The shadow's ring, indexed by (seq - 1) % capacity; empty
                                 // in recovery.
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_RECOVERY_REPLAYER_H_
