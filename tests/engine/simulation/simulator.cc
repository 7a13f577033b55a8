#include "tests/engine/simulation/simulator.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/engine.h"
#include "engine/journal/segment_format.h"
#include "engine/types/clock.h"
#include "engine/types/mix.h"

namespace vouch::simulation {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kBlockedMerchant = 666;
constexpr uint64_t kUnknownAccount = 999'999;  // Never opened: the ledger fails it.
constexpr InlineStage kStages[] = {InlineStage::kFraud, InlineStage::kLedger,
                                   InlineStage::kReconcile, InlineStage::kJournal};
// Steps an overdue outcome may take to reach the client when nothing is queued ahead of it: the
// reconciler times it out, the journal keeps the outcome, the reconciler tells it (stages run in a
// random order, so each of those may wait one step).
constexpr int kSlackSteps = 4;

// What the simulated client knows about one confirmed transaction.
struct ConfirmedTxn {
  Transaction txn;
  int64_t deadline_ns = 0;  // Set again by a recovery: the engine re-verifies with a new one.
  int overdue_since_step = -1;
  int overdue_steps_max = 0;  // Steps its outcome may take once overdue (CheckDeadlines).
  bool acknowledged = false;  // The journal kept it, so the confirmation could be told.
  bool told = false;          // Its outcome reached the client.
  Outcome outcome;
};

// The newest journal segment and its size, to tear the write that follows.
struct SegmentMark {
  std::string name;
  uintmax_t bytes = 0;
};

SegmentMark NewestSegment(const fs::path& dir) {
  SegmentMark newest;
  uint64_t newest_index = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    uint64_t index = 0;
    const std::string name = entry.path().filename().string();
    if (!journal::ParseSegmentFileName(name, &index)) continue;
    if (newest.name.empty() || index > newest_index) {
      newest = {name, entry.file_size()};
      newest_index = index;
    }
  }
  return newest;
}

bool SameDecision(const Outcome& a, const Outcome& b) {
  return a.id == b.id && a.seq == b.seq && a.kind == b.kind && a.verifier == b.verifier &&
         a.reason == b.reason;
}

// Debian's Abseil predates absl::string_view being std::string_view.
absl::string_view View(std::string_view text) { return {text.data(), text.size()}; }

std::string Describe(const Outcome& o) {
  return absl::StrCat("{id ", o.id, " seq ", o.seq, " ", View(OutcomeKindName(o.kind)), " ",
                      View(VerifierName(o.verifier)), " ", View(ReasonName(o.reason)), "}");
}

// Query's history of `id`, for failure messages.
std::string QueryText(const Engine& engine, uint64_t id) {
  const std::optional<TransactionStatus> status = engine.Query(id);
  if (!status.has_value()) return "unknown";
  std::string text = absl::StrCat("seq ", status->seq, ":");
  for (const StateChange& change : status->history) {
    absl::StrAppend(&text, " ", View(StateKindName(change.kind)), "@", change.at_ns);
  }
  return text;
}

class Simulation {
 public:
  explicit Simulation(const SimulationOptions& options);
  SeedResult Run();

 private:
  Options MakeOptions();
  bool StartLife();
  void Step();
  void InjectFaults();
  void SubmitSome();
  Transaction MakeTransfer();
  void OnAnswer(const Transaction& txn, const Confirmation& answer);
  // Returns false if the simulated process crashed during the step.
  bool StepStages();
  void CrashAndRecover(const SegmentMark* torn_write);
  void TearWrite(const fs::path& dir, const SegmentMark& before);
  void CheckRecovered();
  void PollOutcomes();
  void OnOutcome(const Outcome& outcome);
  void Tell(ConfirmedTxn& confirmed, const Outcome& outcome);
  void NoteAcknowledged();
  void CheckMoney();
  void CheckDeadlines();
  void CheckQuery();
  void Finish();
  void CheckFinalBalances();
  void CheckReplay();

  void Fail(std::string what);
  bool failed() const { return !result_.ok; }
  uint64_t Random(uint64_t n) { return rng_() % n; }
  bool OneIn(uint64_t n) { return Random(n) == 0; }
  void Digest(uint64_t value) { result_.digest = Mix64(result_.digest ^ value); }
  void Log(const std::string& line) const {
    if (options_.verbose) std::fprintf(stderr, "[step %d] %s\n", step_, line.c_str());
  }

  const SimulationOptions options_;
  std::mt19937_64 rng_;
  ManualClock clock_;
  const fs::path seed_dir_;
  Options engine_options_;
  int steps_ = 0;
  int step_ = 0;
  int life_ = 0;
  std::unique_ptr<Engine> engine_;
  SeedResult result_;

  // The model: what the client was told.
  std::map<Sequence, ConfirmedTxn> confirmed_;
  std::set<Sequence> untold_;  // Confirmed, outcome not told yet: in sequence order.
  absl::flat_hash_map<uint64_t, Sequence> answered_;  // Id -> seq; 0 for a rejection.
  std::vector<Transaction> answered_txns_;            // For resubmissions.
  uint64_t next_id_ = 1;
  Sequence next_seq_ = 1;
  Sequence acknowledged_below_ = 1;
  absl::flat_hash_map<uint64_t, int64_t> opening_balance_;
  absl::flat_hash_map<CurrencyCode, int64_t> opening_total_;
  int pause_steps_[2] = {0, 0};  // Fraud, ledger: steps left without a turn.
};

Simulation::Simulation(const SimulationOptions& options)
    : options_(options),
      rng_(options.seed),
      seed_dir_(fs::path(options.work_dir) / absl::StrCat("seed-", options.seed)) {
  result_.seed = options.seed;
}

// Everything here comes from the seed, so each seed explores its own corner: tiny rings that fill
// (BUSY), batch sizes of one (long pipelines), strict velocity limits (fraud failures and holds),
// admission by backlog age, risk caps, overdrafts, two currencies, journal rotation and frequent
// snapshots.
Options Simulation::MakeOptions() {
  Options options;
  options.inline_mode = true;
  options.clock = &clock_;
  options.in_flight_capacity = size_t{1} << (6 + Random(5));  // 64 .. 1024.
  options.idempotency_window = 1 << 16;  // More than any run submits: every id is remembered.
  options.history_capacity = 1 << 16;
  options.fraud_account_capacity = 1 << 8;
  options.outcome_queue_capacity = 1 << 12;
  options.stage_batch_max = 1 + static_cast<int>(Random(16));
  options.verification_deadline_ns = 1'000'000 * (1 + Random(10));
  options.fraud_rules.blocked_merchants = {kBlockedMerchant};
  options.fraud_rules.velocity_count_max = 5 + Random(40);
  if (OneIn(4)) {
    // Admission by backlog age: BUSY once a verifier lags by half a deadline.
    options.admission_backlog_max_ns = options.verification_deadline_ns / 2;
  }
  if (OneIn(4)) {
    options.risk.limits.account_count_max = 2 + Random(8);
    options.risk.action = RiskAction::kBusy;  // kHold would block Submit on the stepping thread.
  }
  const int accounts = 4 + static_cast<int>(Random(29));
  options.ledger_account_capacity = accounts;
  for (int i = 1; i <= accounts; ++i) {
    const CurrencyCode currency = i % 5 == 0 ? PackCurrency("EUR") : PackCurrency("USD");
    const int64_t balance_minor = 10'000 + static_cast<int64_t>(Random(1'000'000));
    const int64_t overdraft_minor = OneIn(3) ? static_cast<int64_t>(Random(50'000)) : 0;
    options.accounts.push_back({static_cast<uint64_t>(i), currency, balance_minor,
                                overdraft_minor});
    opening_balance_[i] = balance_minor;
    opening_total_[currency] += balance_minor;
  }
  options.durability.ack = AckPolicy::kWritten;
  options.durability.segment_bytes_max = 64 << 10;  // The minimum: ~600 records per segment.
  options.durability.snapshot_interval_records = OneIn(2) ? 0 : 64 + Random(512);
  return options;
}

bool Simulation::StartLife() {
  engine_options_.durability.dir = (seed_dir_ / absl::StrCat("life-", life_)).string();
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(engine_options_);
  if (!engine.ok()) {
    Fail(absl::StrCat("recovery refused the journal of life ", life_ - 1, ": ",
                      engine.status().ToString()));
    return false;
  }
  engine_ = *std::move(engine);
  if (absl::Status status = engine_->Start(); !status.ok()) {
    Fail(absl::StrCat("start: ", status.ToString()));
    return false;
  }
  next_seq_ = engine_->recovery().confirmed + 1;
  pause_steps_[0] = pause_steps_[1] = 0;  // A new process: nothing is paused or stalled.
  return true;
}

SeedResult Simulation::Run() {
  std::error_code ignored;
  fs::remove_all(seed_dir_, ignored);
  engine_options_ = MakeOptions();
  steps_ = options_.steps > 0 ? options_.steps : 300 + static_cast<int>(Random(301));
  if (!StartLife()) return result_;
  for (step_ = 0; step_ < steps_ && !failed(); ++step_) Step();
  if (!failed()) Finish();
  result_.counts.steps = step_;
  engine_.reset();
  if (result_.ok) fs::remove_all(seed_dir_, ignored);
  return result_;
}

void Simulation::Step() {
  InjectFaults();
  SubmitSome();
  if (!StepStages()) return;  // Crashed and recovered (or failed): the step is over.
  clock_.AdvanceNs(static_cast<int64_t>(
      Random(engine_options_.verification_deadline_ns / 4 + 1)));
  PollOutcomes();
  NoteAcknowledged();
  CheckMoney();
  CheckDeadlines();
  if (OneIn(8)) CheckQuery();
}

void Simulation::InjectFaults() {
  const int64_t deadline_ns = engine_options_.verification_deadline_ns;
  if (OneIn(50)) {
    const int verifier = static_cast<int>(Random(2));
    pause_steps_[verifier] = 1 + static_cast<int>(Random(24));
    ++result_.faults.verifier_pauses;
    Log(absl::StrCat("pause ", verifier == 0 ? "fraud" : "ledger", " for ",
                     pause_steps_[verifier], " steps"));
  }
  if (OneIn(120)) {
    const VerifierId verifier = OneIn(2) ? VerifierId::kFraud : VerifierId::kLedger;
    const int64_t stall_ns = deadline_ns / 2 + static_cast<int64_t>(Random(3 * deadline_ns));
    engine_->StallVerifier(verifier, stall_ns);
    ++result_.faults.verifier_stalls;
    Log(absl::StrCat("stall ", View(VerifierName(verifier)), " for ", stall_ns, " ns"));
  }
  if (OneIn(200)) {
    clock_.AdvanceNs(deadline_ns + static_cast<int64_t>(Random(2 * deadline_ns)));
    ++result_.faults.clock_jumps;
    Log("clock jump past the deadlines");
  }
  if (OneIn(10)) {
    const std::vector<uint64_t> holds = engine_->Holds();
    if (!holds.empty()) {
      (void)engine_->ReleaseHold(holds[Random(holds.size())]);
      ++result_.faults.hold_releases;
    }
  }
  if (engine_options_.durability.snapshot_interval_records > 0 && OneIn(40)) {
    if (absl::Status status = engine_->PollSnapshot(); !status.ok()) {
      Fail(absl::StrCat("snapshot: ", status.ToString()));
    }
    ++result_.faults.snapshots;
  }
}

Transaction Simulation::MakeTransfer() {
  const uint64_t accounts = engine_options_.accounts.size();
  Transaction txn;
  txn.id = next_id_++;
  txn.source_account = 1 + Random(accounts);
  txn.destination_account = 1 + (txn.source_account + Random(accounts - 1)) % accounts;
  txn.currency = engine_options_.accounts[txn.source_account - 1].currency;
  // Mostly affordable, sometimes not (insufficient funds), now and then malformed (rejected).
  txn.amount_minor = OneIn(10) ? 200'000 + static_cast<int64_t>(Random(2'000'000))
                               : 1 + static_cast<int64_t>(Random(20'000));
  if (OneIn(100)) txn.amount_minor = 0;
  if (OneIn(60)) txn.destination_account = kUnknownAccount;
  txn.merchant_id = OneIn(40) ? kBlockedMerchant : 1 + Random(20);
  txn.merchant_category = 5411;
  txn.country = PackCountry("GB");
  txn.device_id = txn.source_account;
  return txn;
}

void Simulation::SubmitSome() {
  const int count = static_cast<int>(Random(4));
  for (int i = 0; i < count && !failed(); ++i) {
    Transaction txn;
    if (!answered_txns_.empty() && OneIn(12)) {
      txn = answered_txns_[Random(answered_txns_.size())];  // A client's retry.
      ++result_.faults.duplicates;
    } else {
      txn = MakeTransfer();
    }
    OnAnswer(txn, engine_->Submit(txn, /*origin=*/0, AckWait::kCaller));
  }
}

void Simulation::OnAnswer(const Transaction& txn, const Confirmation& answer) {
  Digest(txn.id << 24 ^ uint64_t(answer.status) << 16 ^ uint64_t(answer.reason) << 8 ^
         answer.seq);
  if (const auto known = answered_.find(txn.id); known != answered_.end()) {
    if (answer.status == ConfirmStatus::kBusy) return;
    // A refusal is stored, so its retry is a duplicate, unless the simulated process crashed
    // before the journal kept it (this client does not wait for refusals' ack positions): a
    // malformed one is then refused afresh. Either way nothing was applied.
    const bool refused_again = known->second == 0 && answer.status == ConfirmStatus::kRejected;
    if (answer.seq != known->second || !(answer.duplicate || refused_again)) {
      Fail(absl::StrCat("id ", txn.id, " answered again as new: seq ", answer.seq,
                        " (first answer seq ", known->second, "), duplicate=", answer.duplicate));
    }
    return;
  }
  switch (answer.status) {
    case ConfirmStatus::kConfirmed: {
      if (answer.seq != next_seq_) {
        Fail(absl::StrCat("id ", txn.id, " confirmed with seq ", answer.seq, ", expected ",
                          next_seq_, " (sequence numbers are gap-free)"));
        return;
      }
      ++next_seq_;
      confirmed_[answer.seq] = {txn, answer.deadline_ns};
      untold_.insert(answer.seq);
      answered_[txn.id] = answer.seq;
      answered_txns_.push_back(txn);
      ++result_.counts.confirmed;
      return;
    }
    case ConfirmStatus::kRejected:
      answered_[txn.id] = 0;
      answered_txns_.push_back(txn);
      ++result_.counts.rejected;
      return;
    case ConfirmStatus::kBusy:
      ++result_.counts.busy;  // Nothing was recorded: the id is free for a new attempt.
      return;
  }
}

bool Simulation::StepStages() {
  InlineStage order[4] = {kStages[0], kStages[1], kStages[2], kStages[3]};
  std::shuffle(order, order + 4, rng_);
  // A crash may come after any stage's turn; one right after the journal's turn may tear the
  // write that turn made (the kill landed during write(2)).
  const int crash_after = OneIn(150) ? static_cast<int>(Random(4)) : -1;
  for (int i = 0; i < 4; ++i) {
    const InlineStage stage = order[i];
    const int verifier = stage == InlineStage::kFraud ? 0 : stage == InlineStage::kLedger ? 1 : -1;
    if (verifier >= 0 && pause_steps_[verifier] > 0) continue;
    SegmentMark before;
    const bool tear = i == crash_after && stage == InlineStage::kJournal && OneIn(2);
    if (tear) before = NewestSegment(engine_options_.durability.dir);
    engine_->StepStage(stage);
    if (i == crash_after) {
      CrashAndRecover(tear ? &before : nullptr);
      return false;
    }
  }
  for (int& steps : pause_steps_) steps = std::max(0, steps - 1);
  return true;
}

void Simulation::CrashAndRecover(const SegmentMark* torn_write) {
  const fs::path crashed_dir = engine_options_.durability.dir;
  ++life_;
  const fs::path next_dir = seed_dir_ / absl::StrCat("life-", life_);
  // The copy is what a kill -9 leaves: under `written` every record write(2) accepted.
  fs::copy(crashed_dir, next_dir, fs::copy_options::recursive);
  if (torn_write != nullptr) TearWrite(next_dir, *torn_write);
  ++result_.faults.crashes;
  result_.counts.late_verdicts += engine_->Stats().late_verdicts;
  engine_.reset();  // Its shutdown writes to the old directory, which nobody reads again.
  Log(absl::StrCat("crash", torn_write != nullptr ? " (torn write)" : "", "; life ", life_));
  if (!StartLife()) return;
  Digest(0xC7A5u ^ engine_->recovery().confirmed << 8);
  CheckRecovered();
  CheckMoney();
}

// Tears the journal write that was in progress: its tail never reached the file, and the last
// bytes that did may be garbage (a torn sector). Only bytes of that write are touched, so nothing
// acknowledged before it is.
void Simulation::TearWrite(const fs::path& dir, const SegmentMark& before) {
  const SegmentMark after = NewestSegment(dir);
  // A write that closed its segment also created the next one, after write(2) returned: a kill
  // cannot tear it.
  if (after.name != before.name || after.bytes <= before.bytes) return;
  const fs::path segment = dir / after.name;
  const uintmax_t cut = before.bytes + Random(after.bytes - before.bytes);
  fs::resize_file(segment, cut);
  if (OneIn(2) && cut > before.bytes) {
    const uintmax_t garbage = std::min<uintmax_t>(cut - before.bytes, 1 + Random(64));
    std::string bytes(garbage, '\0');
    if (OneIn(2)) {
      for (char& c : bytes) c = static_cast<char>(Random(256));
    }
    std::FILE* file = std::fopen(segment.c_str(), "r+b");
    std::fseek(file, static_cast<long>(cut - garbage), SEEK_SET);
    std::fwrite(bytes.data(), 1, bytes.size(), file);
    std::fclose(file);
  }
  ++result_.faults.torn_tails;
  Log(absl::StrCat("tore ", after.name, " at byte ", cut, " (write began at ", before.bytes,
                   ")"));
}

// After a recovery: everything acknowledged is there, every told outcome is unchanged, what was
// decided but not told is told now (a resuming client gets it), and what was confirmed without
// an outcome is pending again, with a new deadline.
void Simulation::CheckRecovered() {
  const int64_t deadline_ns = clock_.NowNs() + engine_options_.verification_deadline_ns;
  for (auto it = confirmed_.begin(); it != confirmed_.end() && !failed();) {
    const Sequence seq = it->first;
    ConfirmedTxn& confirmed = it->second;
    const std::optional<TransactionStatus> status = engine_->Query(confirmed.txn.id);
    if (!status.has_value() && !confirmed.acknowledged && !confirmed.told) {
      // Confirmed, never acknowledged: the crash came before the journal kept it.
      ++result_.counts.lost_unacknowledged;
      answered_.erase(confirmed.txn.id);
      untold_.erase(seq);
      it = confirmed_.erase(it);
      continue;
    }
    if (!status.has_value() || status->seq != seq) {
      Fail(absl::StrCat("acknowledged id ", confirmed.txn.id, " seq ", seq,
                        " lost in the crash (found seq ", status ? status->seq : 0, ")"));
      return;
    }
    const std::optional<Outcome> outcome = engine_->FinalOutcome(seq);
    if (confirmed.told) {
      if (!outcome.has_value() || !SameDecision(*outcome, confirmed.outcome)) {
        Fail(absl::StrCat("told outcome ", Describe(confirmed.outcome), " is ",
                          outcome ? Describe(*outcome) : "missing", " after the crash"));
        return;
      }
    } else if (outcome.has_value()) {
      ++result_.counts.recovered_outcomes;
      Tell(confirmed, *outcome);
    } else {
      ++result_.counts.recovered_pending;
      confirmed.deadline_ns = deadline_ns;
      confirmed.overdue_since_step = -1;
    }
    ++it;
  }
  // Rejections are not journaled (nothing happened): after a crash the id is free again.
  for (auto it = answered_.begin(); it != answered_.end();) {
    if (it->second == 0) {
      answered_.erase(it++);
    } else {
      ++it;
    }
  }
  std::erase_if(answered_txns_,
                [&](const Transaction& txn) { return !answered_.contains(txn.id); });
  acknowledged_below_ = next_seq_;  // Recovered from the journal: kept.
  for (auto& [seq, confirmed] : confirmed_) confirmed.acknowledged = true;
}

void Simulation::PollOutcomes() {
  Outcome batch[64];
  for (size_t n; (n = engine_->PollOutcomes(batch, 64)) > 0;) {
    for (size_t i = 0; i < n && !failed(); ++i) OnOutcome(batch[i]);
  }
}

void Simulation::OnOutcome(const Outcome& outcome) {
  Digest(outcome.seq << 16 ^ uint64_t(outcome.kind) << 8 ^ uint64_t(outcome.reason));
  Digest(static_cast<uint64_t>(outcome.decided_ns));
  const auto it = confirmed_.find(outcome.seq);
  if (it == confirmed_.end()) {
    Fail(absl::StrCat("outcome for a sequence number never confirmed: ", Describe(outcome)));
    return;
  }
  ConfirmedTxn& confirmed = it->second;
  if (confirmed.told) {
    Fail(absl::StrCat("second outcome ", Describe(outcome), " after ",
                      Describe(confirmed.outcome)));
    return;
  }
  if (outcome.id != confirmed.txn.id) {
    Fail(absl::StrCat("outcome ", Describe(outcome), " names id ", outcome.id, ", confirmed as ",
                      confirmed.txn.id));
    return;
  }
  const Transaction& txn = confirmed.txn;
  const bool must_fail = txn.merchant_id == kBlockedMerchant ||
                         txn.destination_account == kUnknownAccount;
  if (must_fail && outcome.kind == OutcomeKind::kVerified) {
    Fail(absl::StrCat("VERIFIED a transaction a verifier must fail: ", Describe(outcome)));
    return;
  }
  Tell(confirmed, outcome);
}

void Simulation::Tell(ConfirmedTxn& confirmed, const Outcome& outcome) {
  confirmed.told = true;
  confirmed.outcome = outcome;
  untold_.erase(outcome.seq);
  switch (outcome.kind) {
    case OutcomeKind::kVerified: ++result_.counts.verified; break;
    case OutcomeKind::kLateFailed: ++result_.counts.late_failed; break;
    case OutcomeKind::kLateTimeout: ++result_.counts.late_timeout; break;
  }
}

void Simulation::NoteAcknowledged() {
  const Sequence below = engine_->journal()->confirmed_acked_below();
  for (auto it = confirmed_.lower_bound(acknowledged_below_);
       it != confirmed_.end() && it->first < below; ++it) {
    it->second.acknowledged = true;
  }
  acknowledged_below_ = std::max(acknowledged_below_, below);
}

void Simulation::CheckMoney() {
  if (failed()) return;
  const ledger::Ledger& ledger = engine_->ledger();
  absl::flat_hash_map<CurrencyCode, int64_t> total;
  ledger.ForEachAccount([&](const ledger::AccountView& account) {
    total[account.currency] += account.balance_minor;
    if (account.balance_minor < -account.overdraft_limit_minor) {
      Fail(absl::StrCat("account ", account.id, " balance ", account.balance_minor,
                        " is below its overdraft limit ", account.overdraft_limit_minor));
    }
  });
  for (const auto& [currency, opening_minor] : opening_total_) {
    const int64_t now_minor = total[currency] + ledger.ClearingMinor(currency);
    if (now_minor != opening_minor) {
      Fail(absl::StrCat("money not conserved in ", CurrencyToString(currency), ": ", now_minor,
                        " (balances plus clearing), opened with ", opening_minor));
    }
  }
}

// Each reconciler turn times out, journals and tells at most stage_batch_max transactions, in
// sequence order, starting from the oldest one not retired. So the bound for an overdue outcome
// grows with the number of unretired transactions ahead of it when it fell due, over the batch
// size; it is fixed then, and checked every step after.
void Simulation::CheckDeadlines() {
  const int64_t now_ns = clock_.NowNs();
  const Sequence retired_below =
      engine_->recovery().outcomes + 1 + engine_->Stats().retired;
  for (const Sequence seq : untold_) {
    ConfirmedTxn& confirmed = confirmed_[seq];
    if (now_ns < confirmed.deadline_ns) break;  // Deadlines grow with the sequence number.
    if (confirmed.overdue_since_step < 0) {
      confirmed.overdue_since_step = step_;
      const uint64_t ahead = seq > retired_below ? seq - retired_below : 0;
      confirmed.overdue_steps_max =
          kSlackSteps + 2 * static_cast<int>(ahead / engine_options_.stage_batch_max + 1);
    }
    if (step_ - confirmed.overdue_since_step > confirmed.overdue_steps_max) {
      Fail(absl::StrCat("seq ", seq, " has no outcome ", step_ - confirmed.overdue_since_step,
                        " steps after its deadline (allowed ", confirmed.overdue_steps_max,
                        "); Query says ", QueryText(*engine_, confirmed.txn.id), ", now ",
                        now_ns));
      return;
    }
  }
}

void Simulation::CheckQuery() {
  if (confirmed_.empty()) return;
  auto it = confirmed_.lower_bound(1 + Random(next_seq_));
  if (it == confirmed_.end()) return;
  const std::optional<TransactionStatus> status = engine_->Query(it->second.txn.id);
  if (!status.has_value() || status->seq != it->first) {
    Fail(absl::StrCat("Query(", it->second.txn.id, ") lost seq ", it->first));
  } else if (it->second.told && !status->final) {
    Fail(absl::StrCat("Query(", it->second.txn.id, ") is not final after its outcome"));
  }
}

// Ends the run: no more faults; time passes until every confirmation has its outcome and every
// reservation is settled; then the books are checked against the outcomes, and the journal is
// replayed from scratch.
void Simulation::Finish() {
  const int64_t deadline_ns = engine_options_.verification_deadline_ns;
  // Four deadlines outlast the longest stall InjectFaults makes (3.5 deadlines).
  constexpr int kRoundsMin = 4;
  for (int round = 0; round < 10'000 && !failed(); ++round) {
    clock_.AdvanceNs(deadline_ns);
    const int work = engine_->Step();
    PollOutcomes();
    CheckMoney();
    if (untold_.empty() && work == 0 && round >= kRoundsMin) break;
  }
  if (failed()) return;
  if (!untold_.empty()) {
    Fail(absl::StrCat(untold_.size(), " confirmations without an outcome after the drain, first ",
                      *untold_.begin()));
    return;
  }
  result_.counts.late_verdicts += engine_->Stats().late_verdicts;
  const DrainReport drain = engine_->Stop();
  PollOutcomes();
  if (!drain.drained) {
    Fail(absl::StrCat("Stop did not drain: ", drain.not_drained, " not retired"));
    return;
  }
  CheckMoney();
  CheckFinalBalances();
  CheckReplay();
}

// Each VERIFIED transfer moved its amount once; nothing else moved money.
void Simulation::CheckFinalBalances() {
  if (failed()) return;
  absl::flat_hash_map<uint64_t, int64_t> expected = opening_balance_;
  for (const auto& [seq, confirmed] : confirmed_) {
    if (confirmed.outcome.kind != OutcomeKind::kVerified) continue;
    expected[confirmed.txn.source_account] -= confirmed.txn.amount_minor;
    expected[confirmed.txn.destination_account] += confirmed.txn.amount_minor;
  }
  const ledger::Ledger& ledger = engine_->ledger();
  for (const auto& [account, balance_minor] : expected) {
    const std::optional<ledger::AccountView> view = ledger.Find(account);
    if (!view.has_value() || view->balance_minor != balance_minor) {
      Fail(absl::StrCat("account ", account, " ends at ", view ? view->balance_minor : 0,
                        "; the VERIFIED outcomes say ", balance_minor));
      return;
    }
  }
  for (const auto& [currency, opening_minor] : opening_total_) {
    if (ledger.ClearingMinor(currency) != 0) {
      Fail(absl::StrCat("clearing ", CurrencyToString(currency), " holds ",
                        ledger.ClearingMinor(currency), " after every settlement"));
    }
  }
}

// The finished journal, replayed by a new engine, gives the same ledger, fraud state and outcomes.
void Simulation::CheckReplay() {
  if (failed()) return;
  const fs::path replay_dir = seed_dir_ / "replay";
  fs::copy(engine_options_.durability.dir, replay_dir, fs::copy_options::recursive);
  Options options = engine_options_;
  options.durability.dir = replay_dir.string();
  absl::StatusOr<std::unique_ptr<Engine>> replayed = Engine::Create(options);
  if (!replayed.ok()) {
    Fail(absl::StrCat("replaying the final journal: ", replayed.status().ToString()));
    return;
  }
  const Engine& replay = **replayed;
  if (replay.ledger().StateHash() != engine_->ledger().StateHash()) {
    Fail("replay gives a different ledger");
  } else if (replay.fraud_checker().StateHash() != engine_->fraud_checker().StateHash()) {
    Fail("replay gives a different fraud state");
  }
  for (const auto& [seq, confirmed] : confirmed_) {
    if (failed()) break;
    const std::optional<Outcome> outcome = replay.FinalOutcome(seq);
    if (!outcome.has_value() || !SameDecision(*outcome, confirmed.outcome)) {
      Fail(absl::StrCat("replay decides ", outcome ? Describe(*outcome) : "nothing",
                        " where the run told ", Describe(confirmed.outcome)));
    }
  }
}

void Simulation::Fail(std::string what) {
  if (failed()) return;  // The first violation is the one to debug.
  result_.ok = false;
  result_.failure = absl::StrCat("seed ", options_.seed, " step ", step_, " life ", life_, ": ",
                                 what, "\n  replay: ", ReplayCommand(options_.seed, options_.steps),
                                 "\n  journals kept in ", seed_dir_.string());
}

}  // namespace

void FaultCounts::Add(const FaultCounts& o) {
  verifier_pauses += o.verifier_pauses;
  verifier_stalls += o.verifier_stalls;
  clock_jumps += o.clock_jumps;
  crashes += o.crashes;
  torn_tails += o.torn_tails;
  snapshots += o.snapshots;
  duplicates += o.duplicates;
  hold_releases += o.hold_releases;
}

void RunCounts::Add(const RunCounts& o) {
  steps += o.steps;
  confirmed += o.confirmed;
  rejected += o.rejected;
  busy += o.busy;
  verified += o.verified;
  late_failed += o.late_failed;
  late_timeout += o.late_timeout;
  late_verdicts += o.late_verdicts;
  recovered_pending += o.recovered_pending;
  recovered_outcomes += o.recovered_outcomes;
  lost_unacknowledged += o.lost_unacknowledged;
}

std::string DefaultWorkDir() {
  const char* test_tmp = std::getenv("TEST_TMPDIR");
  return test_tmp != nullptr ? test_tmp : "/tmp/vouch-sim";
}

SeedResult RunSeed(const SimulationOptions& options) { return Simulation(options).Run(); }

std::string Summary(uint64_t seeds, uint64_t failures, const FaultCounts& f,
                    const RunCounts& c, double elapsed_s) {
  return absl::StrCat(
      "seeds ", seeds, ", failed ", failures, ", steps ", c.steps, ", ",
      absl::StrFormat("%.1f", elapsed_s), " s\n",
      "faults: verifier pauses ", f.verifier_pauses, ", verifier stalls ", f.verifier_stalls,
      ", clock jumps ", f.clock_jumps, ", crashes ", f.crashes, " (torn tails ", f.torn_tails,
      "), snapshot polls ", f.snapshots, ", resubmitted ids ", f.duplicates, ", hold releases ",
      f.hold_releases, "\n",
      "answers: confirmed ", c.confirmed, ", rejected ", c.rejected, ", busy ", c.busy, "\n",
      "outcomes: verified ", c.verified, ", late failed ", c.late_failed, ", late timeout ",
      c.late_timeout, ", late verdicts ", c.late_verdicts, "\n",
      "recovery: pending re-verified ", c.recovered_pending, ", decided but untold ",
      c.recovered_outcomes, ", unacknowledged lost ", c.lost_unacknowledged, "\n");
}

std::string ReplayCommand(uint64_t seed, int steps) {
  return absl::StrCat("bazel run //tests/engine/simulation:vouch_sim -- --seed=", seed,
                      steps > 0 ? absl::StrCat(" --steps=", steps) : "", " --verbose");
}

}  // namespace vouch::simulation
