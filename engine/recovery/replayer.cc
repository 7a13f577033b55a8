#include "engine/recovery/replayer.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/common/byte_coding.h"

namespace vouch {
namespace {

// Format 2 added each answer's outcome; format 3 the stored refusals, the opening configuration,
// the fraud rules (current and pending) and whether outcomes place holds; format 4 each answer's
// and refusal's fingerprint and the newest dropped first-seen time; format 5 the account
// directory (AccountDirectory::SaveState) at the end. Formats 1 to 4 are still read (their
// fingerprints read as 0, unknown, before format 4; no directory before format 5).
constexpr char kMagic[8] = {'V', 'O', 'U', 'C', 'H', 'R', '0', '5'};
constexpr char kMagicFormat4[8] = {'V', 'O', 'U', 'C', 'H', 'R', '0', '4'};
constexpr char kMagicFormat3[8] = {'V', 'O', 'U', 'C', 'H', 'R', '0', '3'};
constexpr char kMagicFormat2[8] = {'V', 'O', 'U', 'C', 'H', 'R', '0', '2'};
constexpr char kMagicFormat1[8] = {'V', 'O', 'U', 'C', 'H', 'R', '0', '1'};

absl::Status Contradiction(const journal::RecordLocation& where, absl::string_view why) {
  return absl::DataLossError(absl::StrCat("journal ", where.file, " offset ", where.offset, ": ",
                                          why));
}

// What the engine could have journaled (found by tests/fuzz/journal_recovery_fuzzer): ingest
// confirms only well-formed transactions, which the verifiers and the per-currency counters rely
// on; and Unix times are not before 1970, so converting them to monotonic time cannot overflow.
bool WellFormed(const journal::ConfirmedRecord& record) {
  const Transaction& txn = record.txn;
  return txn.id != 0 && txn.amount_minor > 0 && txn.source_account != 0 &&
         txn.destination_account != 0 && txn.source_account != txn.destination_account &&
         IsSupportedCurrency(txn.currency) && record.confirmed_unix_ns >= 0;
}

// A snapshot that Restore refuses.
absl::Status InvalidSnapshot(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("replay snapshot: ", why));
}

}  // namespace

Replayer::Replayer(Targets targets, size_t undecided_max, size_t answers_capacity,
                   int64_t unix_to_mono_ns)
    : targets_(targets),
      undecided_max_(undecided_max),
      unix_to_mono_ns_(unix_to_mono_ns),
      answers_capacity_(answers_capacity),
      answers_(targets.idempotency != nullptr ? 0 : answers_capacity) {
  assert(targets.fraud && targets.ledger && targets.accounts && answers_capacity > 0);
}

absl::Status Replayer::Apply(journal::RecordType type, uint64_t seq, const char* payload,
                             size_t size, const journal::RecordLocation& where) {
  switch (type) {
    case journal::RecordType::kConfirmed:
      return ApplyConfirmed(payload, size, seq, where);
    case journal::RecordType::kOutcome:
      return ApplyOutcome(payload, size, seq, where);
    case journal::RecordType::kHoldReleased: {
      journal::HoldReleasedRecord record;
      if (!journal::DecodeHoldReleasedRecord(payload, size, &record)) {
        return Contradiction(where, "undecodable hold release record");
      }
      (void)targets_.accounts->SetHold(record.account, false);
      ++releases_;
      return absl::OkStatus();
    }
    case journal::RecordType::kOpening: {
      journal::OpeningRecord record;
      if (!journal::DecodeOpeningRecord(payload, size, &record)) {
        return Contradiction(where, "undecodable opening configuration record");
      }
      if (opening_.has_value()) {
        return Contradiction(where, "a second opening configuration record");
      }
      opening_ = record;
      return absl::OkStatus();
    }
    case journal::RecordType::kRefused:
    case journal::RecordType::kRefusedWithFingerprint:
      return ApplyRefused(payload, size, where);
    case journal::RecordType::kFraudRules:
      return ApplyRules(payload, size, seq, where);
    case journal::RecordType::kHoldPlaced: {
      journal::HoldPlacedRecord record;
      if (!journal::DecodeHoldPlacedRecord(payload, size, &record)) {
        return Contradiction(where, "undecodable hold placed record");
      }
      (void)targets_.accounts->SetHold(record.account, true);  // Unknown: see replayer.h.
      outcome_flags_hold_ = false;
      return absl::OkStatus();
    }
    case journal::RecordType::kAccountCreated:
    case journal::RecordType::kAccountFrozen:
    case journal::RecordType::kAccountClosed:
    case journal::RecordType::kAccountLimits:
      return ApplyAccount(type, payload, size, where);
  }
  return Contradiction(where, "unknown record type");
}

absl::Status Replayer::ApplyAccount(journal::RecordType type, const char* payload, size_t size,
                                    const journal::RecordLocation& where) {
  AccountDirectory& accounts = *targets_.accounts;
  // relaxed (all stores): the replayer is the directory's one writer, before the engine runs.
  if (type == journal::RecordType::kAccountCreated) {
    journal::AccountCreatedRecord record;
    if (!journal::DecodeAccountCreatedRecord(payload, size, &record) ||
        !IsValidNewAccount(record.account)) {
      return Contradiction(where, "undecodable account creation record");
    }
    const NewAccount& a = record.account;
    if (accounts.Find(a.id) != nullptr) {
      return Contradiction(where, absl::StrCat("account ", a.id, " is created twice"));
    }
    AccountRecord* created = accounts.Insert(a, record.created_unix_ns + unix_to_mono_ns_);
    if (created == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "journal ", where.file, ": more accounts than account_capacity ", accounts.capacity()));
    }
    if (absl::Status status = targets_.ledger->OpenAccount(
            {a.id, a.currency, a.opening_balance_minor, a.overdraft_limit_minor, a.flags});
        !status.ok()) {
      return Contradiction(where, absl::StrCat("account creation refused by the ledger: ",
                                               status.message()));
    }
    created->state.store(static_cast<uint8_t>(AccountState::kOpen), std::memory_order_relaxed);
    accounts.SetOpenedBelow(accounts.size());
    return absl::OkStatus();
  }
  uint64_t id = 0;
  int64_t at_unix_ns = 0;
  AccountChange::Kind kind = AccountChange::Kind::kClosed;
  bool frozen = false;
  AccountLimits limits;
  bool decoded = false;
  if (type == journal::RecordType::kAccountFrozen) {
    journal::AccountFrozenRecord record;
    decoded = journal::DecodeAccountFrozenRecord(payload, size, &record);
    id = record.id, at_unix_ns = record.at_unix_ns, frozen = record.frozen;
    kind = frozen ? AccountChange::Kind::kFrozen : AccountChange::Kind::kUnfrozen;
  } else if (type == journal::RecordType::kAccountClosed) {
    journal::AccountClosedRecord record;
    decoded = journal::DecodeAccountClosedRecord(payload, size, &record);
    id = record.id, at_unix_ns = record.at_unix_ns;
  } else {
    journal::AccountLimitsRecord record;
    decoded = journal::DecodeAccountLimitsRecord(payload, size, &record);
    id = record.id, at_unix_ns = record.at_unix_ns, limits = record.limits;
    kind = AccountChange::Kind::kLimitsChanged;
  }
  AccountRecord* account = decoded ? accounts.FindMutable(id) : nullptr;
  if (account == nullptr) return Contradiction(where, "an account record for no account");
  if (type == journal::RecordType::kAccountLimits) {
    account->StoreLimits(limits);
  } else {
    const AccountState state = type == journal::RecordType::kAccountClosed ? AccountState::kClosed
                               : frozen ? AccountState::kFrozen
                                        : AccountState::kOpen;
    account->state.store(static_cast<uint8_t>(state), std::memory_order_relaxed);
  }
  account->AddHistory({kind, at_unix_ns + unix_to_mono_ns_});
  return absl::OkStatus();
}

absl::Status Replayer::ApplyConfirmed(const char* payload, size_t size, uint64_t seq,
                                      const journal::RecordLocation& where) {
  journal::ConfirmedRecord record;
  if (!journal::DecodeConfirmedRecord(payload, size, &record) || record.seq != seq) {
    return Contradiction(where, "undecodable confirmed record");
  }
  if (seq != confirmed_ + 1) {
    return Contradiction(where, absl::StrCat("confirmed seq ", seq, " after ", confirmed_));
  }
  if (!WellFormed(record)) {
    return Contradiction(where, absl::StrCat("confirmed seq ", seq, " is not well-formed"));
  }
  if (undecided_.size() == undecided_max_) {
    return Contradiction(where, absl::StrCat("more undecided transactions than the ring holds (",
                                             undecided_max_, ")"));
  }
  confirmed_ = seq;
  if (targets_.idempotency != nullptr) {
    // A held transaction's answer is its outcome's: remembered then (ApplyOutcome).
    if (!record.held) {
      if (absl::Status status = Remember(
              record.txn.id, {ConfirmStatus::kConfirmed, Reason::kNone, false, seq,
                              record.confirmed_unix_ns + unix_to_mono_ns_,
                              ContentFingerprint(record.txn)});
          !status.ok()) {
        return status;
      }
    }
  } else {
    // A held transaction's answer is its outcome's; until then it reads as confirmed.
    Answer& answer = AnswerFor(seq);
    if (answer.id != 0) Dropped(answer.received_unix_ns);
    answers_kept_ = std::min<uint64_t>(answers_kept_ + 1, answers_.size());
    answer = {};
    answer.id = record.txn.id;
    answer.fingerprint = ContentFingerprint(record.txn);
    answer.seq = seq;
    answer.held = record.held;
    answer.received_unix_ns = record.confirmed_unix_ns;
    answer.source_account = record.txn.source_account;
    answer.amount_minor = record.txn.amount_minor;
    answer.currency = record.txn.currency;
  }
  // The source's day so far, as ingest charged it (the day it was received, UTC).
  if (AccountRecord* source = targets_.accounts->FindMutable(record.txn.source_account)) {
    source->daily.ChargeUnchecked(DailyUsage::DayOf(record.confirmed_unix_ns),
                                  record.txn.amount_minor);
  }
  undecided_.push_back(record);
  return absl::OkStatus();
}

absl::Status Replayer::ApplyOutcome(const char* payload, size_t size, uint64_t seq,
                                    const journal::RecordLocation& where) {
  journal::OutcomeRecord record;
  if (!journal::DecodeOutcomeRecord(payload, size, &record) || record.outcome.seq != seq ||
      record.confirmed_unix_ns < 0 || record.decided_unix_ns < 0) {
    return Contradiction(where, "undecodable outcome record");
  }
  if (undecided_.empty() || undecided_.front().seq != seq) {
    return Contradiction(where, absl::StrCat("outcome for seq ", seq, " out of order"));
  }
  const journal::ConfirmedRecord& confirmed = undecided_.front();
  SwitchRulesFor(seq);
  Outcome outcome = record.outcome;
  outcome.confirmed_ns = record.confirmed_unix_ns + unix_to_mono_ns_;
  outcome.decided_ns = record.decided_unix_ns + unix_to_mono_ns_;
  if (targets_.idempotency != nullptr) {
    if (confirmed.held) {
      const bool verified = outcome.kind == OutcomeKind::kVerified;
      if (absl::Status status = Remember(
              confirmed.txn.id,
              {verified ? ConfirmStatus::kConfirmed : ConfirmStatus::kRejected, outcome.reason,
               true, seq, confirmed.confirmed_unix_ns + unix_to_mono_ns_,
               ContentFingerprint(confirmed.txn)});
          !status.ok()) {
        return status;
      }
    }
  } else if (confirmed_ - seq < answers_kept_) {
    Answer& answer = AnswerFor(seq);
    if (confirmed.held) {
      const bool verified = outcome.kind == OutcomeKind::kVerified;
      answer.status = verified ? ConfirmStatus::kConfirmed : ConfirmStatus::kRejected;
      answer.reason = outcome.reason;
    }
    answer.decided = true;
    answer.outcome_kind = outcome.kind;
    answer.outcome_verifier = outcome.verifier;
    answer.outcome_reason = outcome.reason;
    answer.outcome_verifier_code = outcome.verifier_code;
    answer.compensation = outcome.compensation;
    answer.decided_unix_ns = record.decided_unix_ns;
    answer.origin = outcome.origin;
  }
  targets_.fraud->Replay(confirmed.txn, outcome.confirmed_ns);
  if (outcome.kind == OutcomeKind::kVerified) {
    const Reason reserved = targets_.ledger->Reserve(seq, confirmed.txn);
    if (reserved != Reason::kNone) {
      return Contradiction(where, absl::StrCat("verified seq ", seq, " does not post on replay (reason ",
                                               static_cast<int>(reserved), ")"));
    }
    targets_.ledger->Commit(seq);
  }
  if (outcome_flags_hold_ && (outcome.compensation & kCompensationAccountHeld)) {
    (void)targets_.accounts->SetHold(confirmed.txn.source_account, true);
  }
  if (targets_.history != nullptr) {
    HistoryRecord history;
    history.seq = seq;
    history.id = confirmed.txn.id;
    history.attributes = confirmed.txn.attributes;
    history.resolved = true;
    history.outcome = outcome;
    targets_.history->Write(history);
  }
  undecided_.pop_front();
  outcomes_ = seq;
  return absl::OkStatus();
}

absl::Status Replayer::ApplyRefused(const char* payload, size_t size,
                                    const journal::RecordLocation& where) {
  journal::RefusedRecord record;
  if (!journal::DecodeRefusedRecord(payload, size, &record) || record.id == 0 ||
      record.refused_unix_ns < 0) {
    return Contradiction(where, "undecodable refusal record");
  }
  const Refusal refusal{record.id, record.reason, record.refused_unix_ns, confirmed_,
                        record.fingerprint};
  ++refused_;
  if (targets_.idempotency != nullptr) return RememberRefusal(refusal);
  KeepRefusal(refusal);
  return absl::OkStatus();
}

void Replayer::KeepRefusal(const Refusal& refusal) {
  if (refusals_.size() == answers_capacity_) {
    Dropped(refusals_.front().refused_unix_ns);
    refusals_.pop_front();
  }
  refusals_.push_back(refusal);
}

absl::Status Replayer::Remember(uint64_t id, const StoredAnswer& answer) {
  if (targets_.idempotency->Restore(id, answer, targets_.idempotency_now_ns)) {
    return absl::OkStatus();
  }
  idempotency_overflowed_ = true;
  return absl::ResourceExhaustedError(absl::StrCat(
      "the idempotency table (", targets_.idempotency->capacity(), " ids) cannot remember id ",
      id, " without forgetting one first seen within its retention"));
}

absl::Status Replayer::RememberRefusal(const Refusal& refusal) {
  return Remember(refusal.id, {ConfirmStatus::kRejected, refusal.reason, false, 0,
                               refusal.refused_unix_ns + unix_to_mono_ns_, refusal.fingerprint});
}

absl::Status Replayer::FinishAnswers() {
  assert(targets_.idempotency != nullptr);
  for (const journal::ConfirmedRecord& pending : undecided_) {
    if (!pending.held) continue;
    if (absl::Status status = Remember(
            pending.txn.id, {ConfirmStatus::kConfirmed, Reason::kNone, true, pending.seq,
                             pending.confirmed_unix_ns + unix_to_mono_ns_,
                             ContentFingerprint(pending.txn)});
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status Replayer::ApplyRules(const char* payload, size_t size, uint64_t seq,
                                  const journal::RecordLocation& where) {
  std::string text(payload, size);
  if (!targets_.fraud->ValidateRules(text).ok() || seq == 0) {
    return Contradiction(where, "unparsable fraud rules record");
  }
  while (!pending_rules_.empty() && pending_rules_.back().from >= seq) pending_rules_.pop_back();
  pending_rules_.push_back({seq, std::move(text)});
  return absl::OkStatus();
}

void Replayer::SwitchRulesFor(Sequence seq) {
  while (!pending_rules_.empty() && pending_rules_.front().from <= seq) {
    targets_.fraud->ApplyRules(pending_rules_.front().text);
    rules_text_ = std::move(pending_rules_.front().text);
    pending_rules_.pop_front();
  }
}

absl::Status Replayer::Save(absl::FunctionRef<absl::Status(absl::string_view)> emit) const {
  assert(targets_.idempotency == nullptr && "recovery keeps no answers to save");
  constexpr size_t kPieceBytes = 1 << 20;
  std::string out(kMagic, sizeof(kMagic));
  ByteWriter writer(&out);
  // Hands `out` on once it holds a piece's worth (or, with `all`, whatever it holds).
  auto flush = [&](bool all) -> absl::Status {
    if (out.size() < kPieceBytes && !(all && !out.empty())) return absl::OkStatus();
    absl::Status status = emit(out);
    out.clear();
    return status;
  };
  // What PutBytes writes, without copying a verifier's part into `out`.
  auto put_part = [&](absl::string_view part) -> absl::Status {
    writer.Put<uint64_t>(part.size());
    if (absl::Status status = flush(true); !status.ok()) return status;
    return part.empty() ? absl::OkStatus() : emit(part);
  };
  writer.Put<uint64_t>(confirmed_);
  writer.Put<uint64_t>(outcomes_);
  writer.Put<uint64_t>(releases_);
  writer.Put<uint64_t>(undecided_.size());
  char record[journal::kConfirmedRecordBytesMax];
  for (const journal::ConfirmedRecord& confirmed : undecided_) {
    writer.PutBytes(
        absl::string_view(record, journal::EncodeConfirmedRecord(confirmed, record)));
  }
  const Sequence answers = answers_kept_;
  writer.Put<uint64_t>(answers);
  for (Sequence seq = confirmed_ - answers + 1; seq <= confirmed_; ++seq) {
    const Answer& a = answers_[(seq - 1) % answers_.size()];
    writer.Put<uint64_t>(a.id);
    writer.Put<uint64_t>(a.seq);
    writer.Put<uint64_t>(static_cast<uint64_t>(a.status) |
                         uint64_t{static_cast<uint8_t>(a.reason)} << 8 | uint64_t{a.held} << 16);
    writer.Put<uint64_t>(static_cast<uint64_t>(a.received_unix_ns));
    writer.Put<uint64_t>(uint64_t{a.decided} | uint64_t{static_cast<uint8_t>(a.outcome_kind)} << 8 |
                         uint64_t{static_cast<uint8_t>(a.outcome_verifier)} << 16 |
                         uint64_t{static_cast<uint8_t>(a.outcome_reason)} << 24 |
                         uint64_t{a.compensation} << 32 |
                         uint64_t{a.outcome_verifier_code} << 40);
    writer.Put<uint64_t>(static_cast<uint64_t>(a.decided_unix_ns));
    writer.Put<uint64_t>(a.origin);
    writer.Put<uint64_t>(a.source_account);
    writer.Put<uint64_t>(static_cast<uint64_t>(a.amount_minor));
    writer.Put<uint64_t>(a.currency);
    writer.Put<uint64_t>(a.fingerprint);
    if (absl::Status status = flush(false); !status.ok()) return status;
  }
  writer.Put<uint64_t>(refusals_.size());
  for (const Refusal& r : refusals_) {
    writer.Put<uint64_t>(r.id);
    writer.Put<uint64_t>(static_cast<uint8_t>(r.reason));
    writer.Put<uint64_t>(static_cast<uint64_t>(r.refused_unix_ns));
    writer.Put<uint64_t>(r.after_seq);
    writer.Put<uint64_t>(r.fingerprint);
    if (absl::Status status = flush(false); !status.ok()) return status;
  }
  writer.Put<uint64_t>(static_cast<uint64_t>(newest_dropped_unix_ns_));
  std::string part;
  if (absl::Status status = targets_.fraud->SaveState(&part); !status.ok()) return status;
  if (absl::Status status = put_part(part); !status.ok()) return status;
  if (absl::Status status = targets_.ledger->SaveState(&part); !status.ok()) return status;
  if (absl::Status status = put_part(part); !status.ok()) return status;
  const std::vector<uint64_t> holds = targets_.accounts->Holds();
  writer.Put<uint64_t>(holds.size());
  for (const uint64_t account : holds) writer.Put<uint64_t>(account);
  writer.Put<uint8_t>(opening_.has_value());
  if (opening_.has_value()) {
    char record[journal::kOpeningRecordBytesMax];
    writer.PutBytes(absl::string_view(record, journal::EncodeOpeningRecord(*opening_, record)));
  }
  writer.Put<uint64_t>(outcome_flags_hold_);
  writer.PutBytes(rules_text_);
  writer.Put<uint64_t>(pending_rules_.size());
  for (const PendingRules& pending : pending_rules_) {
    writer.Put<uint64_t>(pending.from);
    writer.PutBytes(pending.text);
  }
  targets_.accounts->SaveState(-unix_to_mono_ns_, &part);
  if (absl::Status status = put_part(part); !status.ok()) return status;
  return flush(true);
}

absl::Status Replayer::Restore(absl::string_view bytes) {
  auto is = [&](const char (&magic)[8]) {
    return bytes.size() >= sizeof(magic) && std::memcmp(bytes.data(), magic, sizeof(magic)) == 0;
  };
  const bool format5 = is(kMagic);
  const bool format4 = format5 || is(kMagicFormat4);
  const bool format3 = format4 || is(kMagicFormat3);
  const bool format2 = format3 || is(kMagicFormat2);
  const bool format1 = bytes.size() >= sizeof(kMagicFormat1) &&
                       std::memcmp(bytes.data(), kMagicFormat1, sizeof(kMagicFormat1)) == 0;
  if (!format1 && !format2) return InvalidSnapshot("bad magic");
  pending_rules_.clear();
  rules_text_.clear();
  ByteReader in(bytes.substr(sizeof(kMagic)));
  confirmed_ = in.Get<uint64_t>();
  outcomes_ = in.Get<uint64_t>();
  releases_ = in.Get<uint64_t>();
  const uint64_t undecided = in.Get<uint64_t>();
  // The state must be one Apply could have built (found by tests/fuzz/journal_recovery_fuzzer):
  // the undecided are exactly outcomes+1..confirmed, and the answers the last ones confirmed.
  if (outcomes_ > confirmed_ || undecided != confirmed_ - outcomes_) {
    return InvalidSnapshot(
        "undecided transactions do not match the confirmed and outcome counts");
  }
  if (undecided > undecided_max_) {
    return InvalidSnapshot("more undecided transactions than the ring");
  }
  undecided_.clear();
  for (uint64_t i = 0; i < undecided; ++i) {
    const absl::string_view raw = in.GetBytes();
    journal::ConfirmedRecord record;
    if (!in.ok() || !journal::DecodeConfirmedRecord(raw.data(), raw.size(), &record) ||
        record.seq != outcomes_ + 1 + i || !WellFormed(record)) {
      return InvalidSnapshot("undecodable undecided transaction");
    }
    undecided_.push_back(record);
  }
  // The refusals follow the answers in the bytes and interleave with them in journal order,
  // which is the order recovery restores both into the idempotency table: read them first.
  ByteReader answers_in = in;
  const uint64_t answer_words = format4 ? 11 : format2 ? 10 : 4;
  const uint64_t answer_count = in.Get<uint64_t>();
  if (!in.ok() || answer_count > in.remaining() / (8 * answer_words)) {
    return InvalidSnapshot("truncated answers");
  }
  in.Skip(8 * answer_words * answer_count);
  refusals_.clear();
  if (format3) {
    if (absl::Status status = RestoreRefusals(in, format4); !status.ok()) return status;
  }
  if (absl::Status status = RestoreAnswers(answers_in, format2, format4); !status.ok()) {
    return status;
  }
  newest_dropped_unix_ns_ = format4 ? static_cast<int64_t>(in.Get<uint64_t>()) : 0;
  if (!in.ok() || newest_dropped_unix_ns_ < 0) return InvalidSnapshot("bad dropped time");
  const absl::string_view fraud = in.GetBytes();
  const absl::string_view ledger = in.GetBytes();
  const uint64_t hold_count = in.Get<uint64_t>();
  if (!in.ok()) return InvalidSnapshot("truncated");
  std::vector<uint64_t> holds;
  for (uint64_t i = 0; i < hold_count; ++i) {
    const uint64_t account = in.Get<uint64_t>();
    if (!in.ok()) return InvalidSnapshot("truncated holds");
    holds.push_back(account);
  }
  opening_.reset();
  if (format3 && in.Get<uint8_t>() != 0) {
    const absl::string_view raw = in.GetBytes();
    journal::OpeningRecord record;
    if (!in.ok() || !journal::DecodeOpeningRecord(raw.data(), raw.size(), &record)) {
      return InvalidSnapshot("undecodable opening configuration");
    }
    opening_ = record;
  }
  if (!in.ok()) return InvalidSnapshot("truncated opening configuration");
  if (format3) {
    // The rules first: the saved state has their velocity window (FraudChecker::RestoreState).
    if (absl::Status status = RestoreRules(in); !status.ok()) return status;
  }
  if (absl::Status status = targets_.fraud->RestoreState(fraud); !status.ok()) return status;
  if (absl::Status status = targets_.ledger->RestoreState(ledger); !status.ok()) return status;
  if (format5) {
    const absl::string_view directory = in.GetBytes();
    if (!in.ok()) return InvalidSnapshot("truncated account directory");
    if (absl::Status status = targets_.accounts->RestoreState(directory, -unix_to_mono_ns_);
        !status.ok()) {
      return status;
    }
    targets_.accounts->SetOpenedBelow(targets_.accounts->size());
  }
  for (const uint64_t account : holds) (void)targets_.accounts->SetHold(account, true);
  if (in.remaining() != 0) return InvalidSnapshot("trailing bytes");
  return absl::OkStatus();
}

absl::Status Replayer::RestoreAnswers(ByteReader& in, bool with_outcomes,
                                      bool with_fingerprints) {
  // As many as the saving shadow's window held: the newest answers_capacity are kept.
  const uint64_t answers = in.Get<uint64_t>();
  if (answers > confirmed_) return InvalidSnapshot("more answers than confirmed transactions");
  answers_kept_ = 0;
  for (uint64_t i = 0; i < answers; ++i) {
    Answer a;
    a.id = in.Get<uint64_t>();
    a.seq = in.Get<uint64_t>();
    const uint64_t packed = in.Get<uint64_t>();
    a.received_unix_ns = static_cast<int64_t>(in.Get<uint64_t>());
    const uint64_t outcome = with_outcomes ? in.Get<uint64_t>() : 0;
    a.decided_unix_ns = with_outcomes ? static_cast<int64_t>(in.Get<uint64_t>()) : 0;
    a.origin = with_outcomes ? in.Get<uint64_t>() : 0;
    a.source_account = with_outcomes ? in.Get<uint64_t>() : 0;
    a.amount_minor = with_outcomes ? static_cast<int64_t>(in.Get<uint64_t>()) : 0;
    const uint64_t currency = with_outcomes ? in.Get<uint64_t>() : 0;
    a.fingerprint = with_fingerprints ? in.Get<uint64_t>() : 0;
    if (!in.ok()) return InvalidSnapshot("truncated answers");
    const uint64_t status = packed & 0xff;
    const uint64_t reason = (packed >> 8) & 0xff;
    const uint64_t kind = (outcome >> 8) & 0xff;
    const uint64_t verifier = (outcome >> 16) & 0xff;
    const uint64_t outcome_reason = (outcome >> 24) & 0xff;
    a.decided = outcome & 1;
    if (a.id == 0 || a.seq != confirmed_ - answers + 1 + i || a.received_unix_ns < 0 ||
        status < static_cast<uint64_t>(ConfirmStatus::kConfirmed) ||
        status > static_cast<uint64_t>(ConfirmStatus::kRejected) || reason >= kReasonCount) {
      return InvalidSnapshot("bad answer");
    }
    if (a.decided && (kind < static_cast<uint64_t>(OutcomeKind::kVerified) ||
                      kind > static_cast<uint64_t>(OutcomeKind::kLateTimeout) ||
                      verifier > static_cast<uint64_t>(kVerifiersMax) ||
                      outcome_reason >= kReasonCount || a.decided_unix_ns < 0)) {
      return InvalidSnapshot("bad outcome");
    }
    if (currency > UINT32_MAX) return InvalidSnapshot("bad currency");
    a.currency = static_cast<CurrencyCode>(currency);
    a.status = static_cast<ConfirmStatus>(status);
    a.reason = static_cast<Reason>(reason);
    a.held = (packed >> 16) & 1;
    a.outcome_kind = static_cast<OutcomeKind>(kind);
    a.outcome_verifier = static_cast<VerifierId>(verifier);
    a.outcome_reason = static_cast<Reason>(outcome_reason);
    // Bits 40..55: written since embedders' verifiers (0 in older snapshots: no code).
    a.outcome_verifier_code = static_cast<uint16_t>((outcome >> 40) & 0xffff);
    a.compensation = static_cast<uint8_t>((outcome >> 32) & 0xff);
    if (a.decided && targets_.history != nullptr) WriteHistory(a);
    if (targets_.idempotency == nullptr) {
      Answer& slot = AnswerFor(a.seq);
      if (slot.id != 0) Dropped(slot.received_unix_ns);
      answers_kept_ = std::min<uint64_t>(answers_kept_ + 1, answers_.size());
      slot = a;
      continue;
    }
    // Recovery: the refusals journaled before this transaction go first.
    for (; !refusals_.empty() && refusals_.front().after_seq < a.seq; refusals_.pop_front()) {
      if (absl::Status status = RememberRefusal(refusals_.front()); !status.ok()) return status;
    }
    // A held transaction still undecided is remembered at its outcome (or FinishAnswers).
    if (a.held && a.seq > outcomes_) continue;
    if (absl::Status status = Remember(a.id, {a.status, a.reason, a.held, a.seq,
                                              a.received_unix_ns + unix_to_mono_ns_,
                                              a.fingerprint});
        !status.ok()) {
      return status;
    }
  }
  if (targets_.idempotency != nullptr) {
    for (; !refusals_.empty(); refusals_.pop_front()) {
      if (absl::Status status = RememberRefusal(refusals_.front()); !status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

absl::Status Replayer::RestoreRefusals(ByteReader& in, bool with_fingerprints) {
  const uint64_t count = in.Get<uint64_t>();
  if (!in.ok() || count > in.remaining() / 8) return InvalidSnapshot("bad refusal count");
  for (uint64_t i = 0; i < count; ++i) {
    Refusal r;
    r.id = in.Get<uint64_t>();
    const uint64_t reason = in.Get<uint64_t>();
    r.refused_unix_ns = static_cast<int64_t>(in.Get<uint64_t>());
    r.after_seq = in.Get<uint64_t>();
    r.fingerprint = with_fingerprints ? in.Get<uint64_t>() : 0;
    if (!in.ok()) return InvalidSnapshot("truncated refusals");
    const Sequence after_min = refusals_.empty() ? 0 : refusals_.back().after_seq;
    if (r.id == 0 || reason >= kReasonCount || !IsStoredRefusal(static_cast<Reason>(reason)) ||
        r.refused_unix_ns < 0 || r.after_seq < after_min || r.after_seq > confirmed_) {
      return InvalidSnapshot("bad refusal");
    }
    r.reason = static_cast<Reason>(reason);
    KeepRefusal(r);
  }
  return absl::OkStatus();
}

absl::Status Replayer::RestoreRules(ByteReader& in) {
  outcome_flags_hold_ = in.Get<uint64_t>() != 0;
  rules_text_ = std::string(in.GetBytes());
  const uint64_t pending = in.Get<uint64_t>();
  if (!in.ok()) return InvalidSnapshot("truncated rules");
  if (!rules_text_.empty()) {
    if (!targets_.fraud->ValidateRules(rules_text_).ok()) {
      return InvalidSnapshot("unparsable fraud rules");
    }
    targets_.fraud->ApplyRules(rules_text_);
  }
  for (uint64_t i = 0; i < pending; ++i) {
    const Sequence from = in.Get<uint64_t>();
    std::string text(in.GetBytes());
    if (!in.ok()) return InvalidSnapshot("truncated pending rules");
    if (!targets_.fraud->ValidateRules(text).ok() || from <= outcomes_ ||
        (!pending_rules_.empty() && from <= pending_rules_.back().from)) {
      return InvalidSnapshot("bad pending fraud rules");
    }
    pending_rules_.push_back({from, std::move(text)});
  }
  return absl::OkStatus();
}

void Replayer::WriteHistory(const Answer& a) {
  HistoryRecord history;
  history.seq = a.seq;
  history.id = a.id;
  history.resolved = true;
  history.outcome.id = a.id;
  history.outcome.seq = a.seq;
  history.outcome.kind = a.outcome_kind;
  history.outcome.verifier = a.outcome_verifier;
  history.outcome.reason = a.outcome_reason;
  history.outcome.verifier_code = a.outcome_verifier_code;
  history.outcome.compensation = a.compensation;
  history.outcome.held = a.held;
  history.outcome.confirmed_ns = a.received_unix_ns + unix_to_mono_ns_;
  history.outcome.decided_ns = a.decided_unix_ns + unix_to_mono_ns_;
  history.outcome.origin = a.origin;
  history.outcome.source_account = a.source_account;
  history.outcome.amount_minor = a.amount_minor;
  history.outcome.currency = a.currency;
  targets_.history->Write(history);
}

}  // namespace vouch
