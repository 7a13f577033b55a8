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
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/engine.h"
#include "engine/journal/sync_hook.h"
#include "engine/journal/segment_format.h"
#include "engine/testing/engine_test_peer.h"
#include "engine/types/clock.h"
#include "engine/types/mix.h"
#include "engine/verify/verifier.h"
#include "tests/engine/simulation/power_loss.h"

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
  int told_life = -1;         // The life whose reconciler decided and told it (-1: recovered).
  uint32_t day = 0;           // The engine's UTC day when it was confirmed (daily limits).
  Outcome outcome;
};

// The newest journal segment and its size, to tear the write that follows.
struct SegmentMark {
  std::string name;
  uintmax_t bytes = 0;
  // The journal's acknowledgment before that write: a torn write never returned, so what its turn
  // acknowledged was not kept.
  Sequence outcomes_acked_below = 0;
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

// Refused by the ingest checks before the id is looked up: refused again on every retry, whatever
// is remembered of the id.
bool IsMalformed(Reason reason) {
  return reason == Reason::kMalformedId || reason == Reason::kMalformedAmount ||
         reason == Reason::kMalformedSameAccount || reason == Reason::kUnknownCurrency;
}

// Engine::ReleaseHold said the account was on hold and is released.
bool Released(const absl::StatusOr<bool>& released) { return released.ok() && *released; }

// A refusal the client was told.
struct Refusal {
  Reason reason = Reason::kNone;
  uint64_t journal_idle_epoch = 0;  // Simulation::journal_idle_epoch_ when it was answered.
};

bool SameDecision(const Outcome& a, const Outcome& b) {
  return a.id == b.id && a.seq == b.seq && a.kind == b.kind && a.verifier == b.verifier &&
         a.reason == b.reason && a.verifier_code == b.verifier_code;
}

// --- The embedder's verifiers (Options::verifiers, engine/verify/verifier.h) -----------------
// Each seed registers 0 to 6 of them, chosen from the seed alone (CustomVerifierPlans). Each
// fails a seeded subset of the transactions with codes of its own, as a pure function of the
// transaction's fields (CustomVerdictCode), so the model knows every verdict before the engine
// gives it, whatever the order the stages run in, and across restarts (where every life
// registers fresh verifiers from the same plans, in the same order: the journal records a
// failure by the verifier's number).
struct CustomVerifierPlan {
  VerifierPolicy policy = VerifierPolicy::kRequired;
  bool hold_account_on_failure = false;  // Required ones only (Options::Validate).
  uint64_t salt = 0;
  uint64_t fail_one_in = 1;  // Fails about one transaction in this many.
  uint16_t code_base = 0;    // Its codes are code_base .. code_base + 2.
  // An AsyncVerifier: the simulation answers what it was handed later, in a random order, and
  // never answers about one transaction in drop_one_in (0: it answers everything).
  bool async = false;
  uint64_t drop_one_in = 0;
  bool required() const { return policy == VerifierPolicy::kRequired; }
};

// What an async verifier was handed and has not answered yet (the simulation answers it).
struct PendingAnswer {
  uint64_t seq = 0;
  uint16_t code = 0;
  VerdictSink* sink = nullptr;
};

constexpr int kCustomVerifiersMax = kVerifiersMax - kBuiltinVerifierCount;  // 6.

// 0 (pass) or the verifier's own code for `txn`: a hash of the fields ingest keeps.
uint16_t CustomVerdictCode(const CustomVerifierPlan& plan, const Transaction& txn) {
  uint64_t attributes = 0;
  for (const char byte : txn.attributes.view()) {
    attributes = Mix64(attributes ^ static_cast<uint8_t>(byte));
  }
  const uint64_t hash = Mix64(plan.salt ^ Mix64(txn.id ^ uint64_t(txn.amount_minor) << 20 ^
                                                txn.source_account << 44) ^ attributes);
  if (hash % plan.fail_one_in != 0) return 0;
  return static_cast<uint16_t>(plan.code_base + (hash >> 40) % 3);
}

class SimVerifier final : public Verifier {
 public:
  explicit SimVerifier(const CustomVerifierPlan& plan) : plan_(plan) {}
  uint16_t Check(const Transaction& txn, int64_t) override {
    return CustomVerdictCode(plan_, txn);
  }

 private:
  const CustomVerifierPlan plan_;
};

class SimAsyncVerifier final : public AsyncVerifier {
 public:
  SimAsyncVerifier(const CustomVerifierPlan& plan, std::vector<PendingAnswer>* pending)
      : plan_(plan), pending_(pending) {}
  void Begin(uint64_t seq, const Transaction& txn, int64_t, VerdictSink& sink) override {
    pending_->push_back({seq, CustomVerdictCode(plan_, txn), &sink});
  }

 private:
  const CustomVerifierPlan plan_;
  std::vector<PendingAnswer>* const pending_;  // The simulation's, for this verifier.
};

// Mixed from the seed (not drawn from rng_): in a seed without verifiers the mode draws nothing
// from rng_, so its run is as it was before they existed. About one seed in seven has none; two in three are required; one in three
// holds the account on failure (advisory ones too, which must place no hold).
std::vector<CustomVerifierPlan> CustomVerifierPlans(uint64_t seed) {
  std::mt19937_64 rng(Mix64(seed ^ 0xC057E1F1E5ull));
  std::vector<CustomVerifierPlan> plans(rng() % (kCustomVerifiersMax + 1));
  for (size_t i = 0; i < plans.size(); ++i) {
    CustomVerifierPlan& plan = plans[i];
    plan.policy = rng() % 3 == 0 ? VerifierPolicy::kAdvisory : VerifierPolicy::kRequired;
    // Drawn for every verifier, kept for required ones only: Options::Validate refuses a
    // verifier that holds accounts but decides nothing.
    const bool holds = rng() % 3 == 0;
    plan.hold_account_on_failure = holds && plan.policy == VerifierPolicy::kRequired;
    plan.salt = rng();
    plan.fail_one_in = 4 + rng() % 60;
    plan.code_base = static_cast<uint16_t>(100 * (i + 1) + 1);
  }
  // From a generator of their own, so that the plans above are what they were before async
  // verifiers existed: about one in three answers later, and one of those in two drops some.
  std::mt19937_64 async_rng(Mix64(seed ^ 0xA5F1C0DEull));
  for (CustomVerifierPlan& plan : plans) {
    plan.async = async_rng() % 3 == 0;
    plan.drop_one_in = plan.async && async_rng() % 2 == 0 ? 20 + async_rng() % 200 : 0;
  }
  return plans;
}

// The index in Options::verifiers of a custom VerifierId; -1 for fraud, ledger and none.
int CustomIndex(VerifierId verifier) {
  return static_cast<int>(verifier) - static_cast<int>(CustomVerifierId(0));
}

// Debian's Abseil predates absl::string_view being std::string_view.
absl::string_view View(std::string_view text) { return {text.data(), text.size()}; }

std::string Describe(const Outcome& o) {
  const std::string verifier = CustomIndex(o.verifier) >= 0
                                   ? absl::StrCat("custom_", CustomIndex(o.verifier))
                                   : std::string(View(VerifierName(o.verifier)));
  return absl::StrCat("{id ", o.id, " seq ", o.seq, " ", View(OutcomeKindName(o.kind)), " ",
                      verifier, " ", View(ReasonName(o.reason)), " code ", o.verifier_code,
                      "}");
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
  void CheckKnownAnswer(const Transaction& txn, const Confirmation& answer, Sequence known_seq);
  // Every Submit of the simulation: engine_->Submit, plus the retention mode's checks of a
  // BUSY idempotency_retention answer.
  Confirmation Submit(const Transaction& txn);
  // Retention mode: the id's answer was first seen a retention ago or more, so the engine may
  // have forgotten it (IdempotencyTable recycles a node once received_ns <= now - retention).
  bool Aged(uint64_t id) const;
  bool OutcomeForgotten(const Engine& engine, Sequence seq) const;
  void NoteNewAnswer(uint64_t id);
  void AgeEveryId();
  void CheckRetentionCounter();
  // Engine::Create, and in retention mode the check of a recovery refused because the table
  // cannot hold the ids within retention, then retried with a doubled window.
  absl::StatusOr<std::unique_ptr<Engine>> CreateEngine(Options& options);
  // Returns false if the simulated process crashed during the step.
  bool StepStages();
  // Process crash (kill -9), optionally tearing the write in progress, or power loss: the image,
  // then the recovery from it.
  void TakeCrashImage(const SegmentMark* torn_write, bool power_loss);
  void Recover();
  void TearWrite(const fs::path& dir, const SegmentMark& before);
  void CheckRecovered(bool lossy);
  // Extensions of issue 12: refusals, holds and rule reloads across restarts.
  void OnRefusal(const Transaction& txn, const Confirmation& answer);
  void JournalTurn();
  void ReloadRules();
  void ReleaseRacingHold(const std::vector<uint64_t>& holds_before);
  // Issue 13: accounts created and frozen mid-stream.
  void CreateAccountMidStream();
  void FreezeOrUnfreeze();
  void CheckFrozen(const Transaction& txn, const Confirmation& answer);
  void CheckAccountsRecovered(bool lossy);
  // Daily limits: set at creation and changed mid-stream; the clock crosses a UTC day.
  void ChangeLimits();
  void CrossDay();
  uint32_t EngineDay() const;
  void CheckDailyLimit(const Transaction& txn, const Confirmation& answer);
  void RecountDailySpending();
  std::map<uint64_t, bool> JournaledHolds(Sequence outcomes_kept_below);
  void CheckHoldsRecovered(const std::map<uint64_t, bool>& before);
  std::string HoldHistory(uint64_t account) const;
  void CheckRefusalsRecovered(bool lossy);
  void RetryRefused();
  // Resubmits a remembered id with one field changed; false if there was none to pick.
  bool ResubmitAltered();
  bool has_journal() const { return engine_options_.durability.ack != AckPolicy::kMemory; }
  // The embedder's verifiers: registered afresh each life from custom_plans_; the checks of
  // each outcome and of Query's verdicts against CustomVerdictCode.
  std::vector<VerifierSpec> MakeCustomVerifiers();
  void AnswerAsyncVerifiers();
  void InjectCustomVerifierFaults();
  void CheckCustomDecision(const Transaction& txn, const Outcome& outcome);
  void CheckCustomVerdicts(const Transaction& txn, const TransactionStatus& status);
  void CheckJoin(const ConfirmedTxn& confirmed, const TransactionStatus& status);
  bool Required(int slot) const;
  void CountLife();  // Adds the engine's per-life counters to the run's.
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
  // The embedder's verifiers (fixed per seed), and the steps left without a kCustom turn.
  const std::vector<CustomVerifierPlan> custom_plans_;
  int custom_pause_steps_ = 0;
  std::vector<std::vector<PendingAnswer>> async_pending_;  // Per plan; this life's.

  // Power loss: what the disk has synced of the current life's directory.
  DiskModel disk_;
  std::string last_crash_ = "none";  // For the failure line.
  struct CrashImage {
    bool taken = false;
    bool lossy = false;  // A power loss under `written`.
    std::map<uint64_t, bool> holds;  // JournaledHolds() at the crash.
    uint64_t journal_idle_epoch = 0;
    std::string what;
  } crash_;
  // Counts journal turns that found nothing to write: everything handed to the journal before
  // such a turn (releases, refusals) is kept as the policy promises.
  uint64_t journal_idle_epoch_ = 0;
  absl::flat_hash_map<uint64_t, Refusal> refusals_;        // Id -> the refusal told.
  absl::flat_hash_map<uint64_t, uint64_t> release_epoch_;  // Account -> idle epoch of its release.
  fraud::FraudRules opening_rules_;  // The rules of the first start.
  fraud::FraudRules current_rules_;  // The latest reload's.
  int64_t fraud_stalled_until_ns_ = 0;
  // Accounts created mid-stream (told kCreated), with their currency, and the accounts frozen
  // as last told (a change is told only once kept).
  std::vector<std::pair<uint64_t, CurrencyCode>> runtime_accounts_;
  absl::flat_hash_map<uint64_t, bool> frozen_;
  uint64_t next_account_id_ = 10'000;
  // Daily limits in force per account: as last set, and after a recovery as the engine has them
  // (CheckAccountsRecovered: the same unless a lossy power loss took a change). And what the
  // engine has charged per source account and UTC day: the model's confirmations of it on that
  // day (RecountDailySpending after a recovery).
  absl::flat_hash_map<uint64_t, AccountLimits> limits_;
  struct DaySpending {
    int64_t minor = 0;
    uint64_t count = 0;
  };
  absl::flat_hash_map<std::pair<uint64_t, uint32_t>, DaySpending> day_spending_;
  bool crossed_day_ = false;
  // Retention mode (RetentionMode): the first-seen time of each answer in answered_ (the engine's
  // received_ns for it, the same clock); new ids refused BUSY idempotency_retention, kept for a
  // retry once every id has aged; the clock time a new id was last refused so in this life (-1:
  // none); the engine's count of those refusals this life, as the model expects it; and every
  // new answer ever given (how many, and the newest one's first-seen time).
  bool retention_mode_ = false;
  absl::flat_hash_map<uint64_t, int64_t> first_seen_ns_;
  absl::flat_hash_set<uint64_t> reanswered_;  // Ids answered anew after ageing (older answers).
  std::vector<Transaction> retention_refused_;
  int64_t retention_refused_at_ns_ = -1;
  uint64_t retention_busy_life_ = 0;
  uint64_t answers_given_ = 0;
  int64_t newest_answer_ns_ = 0;
  size_t window_min_ = 0;  // The seed's idempotency_window before any doubling.
};

// 1 seed in 5, mixed from the seed (not drawn from rng_, so the other seeds run as before).
bool RetentionMode(uint64_t seed) { return Mix64(seed ^ 0x2E7E17) % 5 == 0; }

// The clock's Unix offset for a seed: its clock starts at a time of day (to the nanosecond) in
// 2026 that only the seed decides, never the process's real offset. Mixed from the seed rather
// than drawn from rng_, so that every other choice of the seed is as it was.
int64_t SeedUnixOffsetNs(uint64_t seed, int64_t clock_start_ns) {
  constexpr int64_t kDayNs = int64_t{DailyUsage::kSecondsPerDay} * 1'000'000'000;
  constexpr int64_t k2026UnixNs = int64_t{20'454} * kDayNs;  // 2026-01-01 00:00 UTC.
  const int64_t into_year_ns = static_cast<int64_t>(Mix64(seed ^ 0x0FF5E7) % (365 * kDayNs));
  return k2026UnixNs + into_year_ns - clock_start_ns;
}

Simulation::Simulation(const SimulationOptions& options)
    : options_(options),
      rng_(options.seed),
      seed_dir_(fs::path(options.work_dir) / absl::StrCat("seed-", options.seed)),
      custom_plans_(CustomVerifierPlans(options.seed)) {
  result_.seed = options.seed;
  if (!custom_plans_.empty()) ++result_.counts.custom_verifier_seeds;
  for (const CustomVerifierPlan& plan : custom_plans_) {
    ++(plan.required() ? result_.counts.custom_required : result_.counts.custom_advisory);
    if (plan.async) ++result_.counts.custom_async;
  }
  clock_.SetUnixOffsetNs(SeedUnixOffsetNs(options.seed, clock_.NowNs()));
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
  // Longer than a run, also with the clock moved across a UTC day (CrossDay).
  options.idempotency_retention_ns = 7LL * 24 * 3600 * 1'000'000'000;
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
  if (OneIn(3)) options.amount_minor_max = 150'000 + static_cast<int64_t>(Random(1'000'000));
  // Memory for the invariants that need no journal; then written and durable, which power loss
  // tells apart.
  const uint64_t ack = Random(8);
  options.durability.ack = ack == 0 ? AckPolicy::kMemory
                           : ack <= 4 ? AckPolicy::kWritten
                                      : AckPolicy::kDurable;
  ++result_.counts.seeds_by_ack[static_cast<int>(options.durability.ack)];
  options.durability.segment_bytes_max = 64 << 10;  // The minimum: ~600 records per segment.
  options.durability.snapshot_interval_records =
      OneIn(2) || options.durability.ack == AckPolicy::kMemory ? 0 : 64 + Random(512);
  opening_rules_ = current_rules_ = options.fraud_rules;
  retention_mode_ = RetentionMode(options_.seed);
  window_min_ = options.idempotency_window;
  if (retention_mode_) {
    // The smallest table Options allows (it must also hold in_flight_capacity, at most 1,024),
    // and a retention of 80 to 320 steps of clock time (a step advances the clock by an eighth
    // of a deadline on average): at the bursts' rate (SubmitSome) the table fills within the
    // retention in about half these seeds, and ids age out several times a run in all.
    ++result_.counts.retention_seeds;
    options.idempotency_window = 1024;
    options.idempotency_retention_ns =
        static_cast<int64_t>(80 + Random(241)) * options.verification_deadline_ns / 8;
    window_min_ = options.idempotency_window;
  }
  return options;
}

bool Simulation::StartLife() {
  if (has_journal()) {
    engine_options_.durability.dir = (seed_dir_ / absl::StrCat("life-", life_)).string();
    disk_.Track(engine_options_.durability.dir);
  }
  if (life_ > 0 && options_.check_rule_reloads) {
    // The operator restarts with the rules file as the last reload left it, or as it was.
    engine_options_.fraud_rules = OneIn(2) ? current_rules_ : opening_rules_;
  }
  // A restarted process registers its verifiers again, in the same order.
  engine_options_.verifiers = MakeCustomVerifiers();
  absl::StatusOr<std::unique_ptr<Engine>> engine = CreateEngine(engine_options_);
  if (!engine.ok()) {
    Fail(absl::StrCat("recovery refused the journal of life ", life_ - 1, ": ",
                      engine.status().ToString()));
    return false;
  }
  retention_busy_life_ = 0;  // A new engine counts from 0.
  retention_refused_at_ns_ = -1;
  engine_ = *std::move(engine);
  if (absl::Status status = engine_->Start(); !status.ok()) {
    Fail(absl::StrCat("start: ", status.ToString()));
    return false;
  }
  next_seq_ = engine_->recovery().confirmed + 1;
  pause_steps_[0] = pause_steps_[1] = 0;  // A new process: nothing is paused or stalled.
  custom_pause_steps_ = 0;
  fraud_stalled_until_ns_ = 0;
  return true;
}

SeedResult Simulation::Run() {
  std::error_code ignored;
  fs::remove_all(seed_dir_, ignored);
  engine_options_ = MakeOptions();
  steps_ = options_.steps > 0 ? options_.steps : 300 + static_cast<int>(Random(301));
  journal::InstallSyncHook(&disk_);
  if (StartLife()) {
    for (step_ = 0; step_ < steps_ && !failed(); ++step_) Step();
    if (!failed()) Finish();
  }
  result_.counts.steps = step_;
  engine_.reset();
  journal::InstallSyncHook(nullptr);
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
  CheckRetentionCounter();
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
    EngineTestPeer::StallVerifier(*engine_, verifier, stall_ns);
    if (verifier == VerifierId::kFraud) fraud_stalled_until_ns_ = clock_.NowNs() + stall_ns;
    ++result_.faults.verifier_stalls;
    Log(absl::StrCat("stall ", View(VerifierName(verifier)), " for ", stall_ns, " ns"));
  }
  if (!custom_plans_.empty()) InjectCustomVerifierFaults();
  if (OneIn(200)) {
    clock_.AdvanceNs(deadline_ns + static_cast<int64_t>(Random(2 * deadline_ns)));
    ++result_.faults.clock_jumps;
    Log("clock jump past the deadlines");
  }
  if (OneIn(10)) {
    const std::vector<uint64_t> holds = engine_->Holds();
    if (!holds.empty()) {
      const uint64_t account = holds[Random(holds.size())];
      if (Released(engine_->ReleaseHold(account))) release_epoch_[account] = journal_idle_epoch_;
      ++result_.faults.hold_releases;
    }
  }
  if (retention_mode_ && !retention_refused_.empty() && OneIn(20)) AgeEveryId();
  if (OneIn(25)) CreateAccountMidStream();
  if (!runtime_accounts_.empty() && OneIn(30)) ChangeLimits();
  if (!crossed_day_ && OneIn(150)) CrossDay();
  if (!runtime_accounts_.empty() && OneIn(20)) FreezeOrUnfreeze();
  // A stalled fraud stage takes new rules only when it resumes, and ReplaceFraudRules would wait
  // 5 s of real time for it.
  if (options_.check_rule_reloads && clock_.NowNs() >= fraud_stalled_until_ns_ && OneIn(60)) {
    ReloadRules();
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
  if (!runtime_accounts_.empty() && OneIn(5)) {
    // Money into, or out of, an account created mid-stream (opened with 0).
    const auto& [account, currency] = runtime_accounts_[Random(runtime_accounts_.size())];
    if (currency == txn.currency) {
      if (OneIn(2)) {
        txn.destination_account = account;
      } else {
        txn.source_account = account;
        txn.amount_minor = 1 + static_cast<int64_t>(Random(2'000));
      }
    }
  }
  txn.merchant_id = OneIn(40) ? kBlockedMerchant : 1 + Random(20);
  txn.merchant_category = 5411;
  txn.country = PackCountry("GB");
  txn.device_id = txn.source_account;
  // One in three carries attributes (1..24 bytes from the id and the seed, not from rng_, so
  // the run's draws are what they were before attributes existed); the embedder's verifiers'
  // verdicts depend on them, so one lost or torn in the journal changes a verdict after a
  // restart, which the model sees.
  const uint64_t tag = Mix64(txn.id ^ Mix64(options_.seed ^ 0xA77B1B07E5ull));
  if (tag % 3 == 0) {
    char bytes[kAttributesBytesMax];
    for (size_t i = 0; i < sizeof(bytes); ++i) bytes[i] = static_cast<char>(Mix64(tag + i));
    txn.attributes.Assign(std::string_view(bytes, 1 + (tag >> 8) % kAttributesBytesMax));
  }
  return txn;
}

void Simulation::SubmitSome() {
  // Retention mode: now and then a burst of 16 to 63, which fills the table within the retention.
  const int count = retention_mode_ && OneIn(8) ? 16 + static_cast<int>(Random(48))
                                                : static_cast<int>(Random(4));
  for (int i = 0; i < count && !failed(); ++i) {
    Transaction txn;
    if (!answered_txns_.empty() && OneIn(30) && ResubmitAltered()) continue;
    if (!answered_txns_.empty() && OneIn(12)) {
      txn = answered_txns_[Random(answered_txns_.size())];  // A client's retry.
      ++result_.faults.duplicates;
    } else {
      txn = MakeTransfer();
    }
    OnAnswer(txn, Submit(txn));
  }
}

void Simulation::OnAnswer(const Transaction& txn, const Confirmation& answer) {
  Digest(txn.id << 24 ^ uint64_t(answer.status) << 16 ^ uint64_t(answer.reason) << 8 ^
         answer.seq);
  CheckFrozen(txn, answer);
  if (const auto known = answered_.find(txn.id); known != answered_.end()) {
    const bool aged = Aged(txn.id);
    if (answer.status == ConfirmStatus::kBusy) {
      // Invariant 2 (retention): an id first seen within the retention is remembered, so the
      // probe finds it and it never needs a node: never refused for want of room in the table.
      if (!aged && answer.reason == Reason::kIdempotencyRetention) {
        Fail(absl::StrCat("id ", txn.id, " first seen ", clock_.NowNs() - first_seen_ns_[txn.id],
                          " ns ago (retention ", engine_options_.idempotency_retention_ns,
                          " ns) answered BUSY idempotency_retention: forgotten early"));
      }
      return;
    }
    if (aged && !answer.duplicate) {
      // Invariant 2 (retention): only an id first seen a retention ago or more may be forgotten,
      // and then it is judged as new: its old answer (and its sequence number's outcome) stands,
      // the new one is the id's from now on. Checked as new below.
      ++result_.counts.aged_reanswered;
      reanswered_.insert(txn.id);
      Log(absl::StrCat("id ", txn.id, " aged out and answered anew"));
      answered_.erase(known);
      refusals_.erase(txn.id);
      first_seen_ns_.erase(txn.id);
    } else {
      CheckKnownAnswer(txn, answer, known->second);
      return;
    }
  }
  CheckDailyLimit(txn, answer);
  switch (answer.status) {
    case ConfirmStatus::kConfirmed: {
      if (answer.seq != next_seq_) {
        Fail(absl::StrCat("id ", txn.id, " confirmed with seq ", answer.seq, ", expected ",
                          next_seq_, " (sequence numbers are gap-free)"));
        return;
      }
      ++next_seq_;
      NoteNewAnswer(txn.id);
      confirmed_[answer.seq] = {txn, answer.deadline_ns};
      confirmed_[answer.seq].day = EngineDay();
      untold_.insert(answer.seq);
      answered_[txn.id] = answer.seq;
      answered_txns_.push_back(txn);
      ++result_.counts.confirmed;
      return;
    }
    case ConfirmStatus::kRejected:
      OnRefusal(txn, answer);
      return;
    case ConfirmStatus::kBusy:
      ++result_.counts.busy;  // Nothing was recorded: the id is free for a new attempt.
      return;
  }
}

// A resubmission of an id the engine remembers (within the retention, or aged but still
// remembered): the original answer, as a duplicate (invariant 2).
void Simulation::CheckKnownAnswer(const Transaction& txn, const Confirmation& answer,
                                  Sequence known_seq) {
  // A refusal is stored, so its retry is a duplicate, unless the simulated process crashed
  // before the journal kept it (this client does not wait for refusals' ack positions): a
  // malformed one is then refused afresh. Either way nothing was applied.
  const bool refused_again = known_seq == 0 && answer.status == ConfirmStatus::kRejected;
  if (answer.seq != known_seq || !(answer.duplicate || refused_again)) {
    Fail(absl::StrCat("id ", txn.id, " answered again as new: seq ", answer.seq, " ",
                      View(ReasonName(answer.reason)), " (first answer seq ", known_seq,
                      "), duplicate=", answer.duplicate));
  } else if (const auto refusal = refusals_.find(txn.id);
             refusal != refusals_.end() && answer.reason != refusal->second.reason) {
    Fail(absl::StrCat("refused id ", txn.id, " refused again as ",
                      View(ReasonName(answer.reason)), ", first as ",
                      View(ReasonName(refusal->second.reason))));
  }
}

// --- Idempotency retention ageing (retention mode) -------------------------------------------

Confirmation Simulation::Submit(const Transaction& txn) {
  const bool known = answered_.contains(txn.id);
  const int64_t now_ns = clock_.NowNs();
  const Confirmation answer = engine_->Submit(txn, /*origin=*/0, AckWait::kCaller);
  if (answer.status == ConfirmStatus::kBusy && answer.reason == Reason::kIdempotencyRetention) {
    ++retention_busy_life_;
    ++result_.counts.retention_busy;
    if (!known) {
      retention_refused_at_ns_ = now_ns;
      if (retention_refused_.size() < 16) retention_refused_.push_back(txn);
    }
  } else if (!known && !answer.duplicate && retention_refused_at_ns_ == now_ns &&
             !(answer.status == ConfirmStatus::kBusy && answer.reason == Reason::kQueueFull)) {
    // The refusal takes no room: the table's cursor stays on the same, too young node, so at the
    // same instant every new id is refused again (only BUSY queue_full, decided before the
    // claim, may come first). An answer here means the refusal moved the cursor.
    Fail(absl::StrCat("new id ", txn.id, " answered ", View(ConfirmStatusName(answer.status)),
                      " ", View(ReasonName(answer.reason)), " at the instant another new id was "
                      "refused BUSY idempotency_retention: that refusal took room in the table"));
  }
  return answer;
}

// Recovered from a snapshot, an engine knows the outcome (FinalOutcome, Query's final state) of
// the confirmations whose answers the snapshot kept, the newest idempotency_window of them
// (Replayer), and of those after it; an older one's outcome it does not know (it is not lost:
// nothing decides it again). Only retention mode's window is smaller than a run.
bool Simulation::OutcomeForgotten(const Engine& engine, Sequence seq) const {
  return !engine.recovery().snapshot_file.empty() &&
         seq + window_min_ <= engine.recovery().confirmed;
}

bool Simulation::Aged(uint64_t id) const {
  const auto it = first_seen_ns_.find(id);
  return it != first_seen_ns_.end() &&
         clock_.NowNs() - it->second >= engine_options_.idempotency_retention_ns;
}

// A new answer for `id`, first seen now (the engine's received_ns: the same clock, read by the
// same Submit).
void Simulation::NoteNewAnswer(uint64_t id) {
  first_seen_ns_[id] = clock_.NowNs();
  newest_answer_ns_ = clock_.NowNs();
  ++answers_given_;
}

// Moves the clock by a whole retention: every id the table holds was first seen before now, so
// every one is old enough to be recycled. The ids refused BUSY idempotency_retention are sent
// again: each is claimed now (never BUSY idempotency_retention, as every node ahead of the cursor
// is recyclable and these few claims take less than a lap), and answered as a new id (never as a
// duplicate: the refusal recorded nothing).
void Simulation::AgeEveryId() {
  clock_.AdvanceNs(engine_options_.idempotency_retention_ns);
  ++result_.faults.retention_ageings;
  Log(absl::StrCat("clock moved by the retention; retrying ", retention_refused_.size(),
                   " ids refused idempotency_retention"));
  const std::vector<Transaction> retries = std::move(retention_refused_);
  retention_refused_.clear();
  for (const Transaction& txn : retries) {
    if (failed()) return;
    const Confirmation answer = Submit(txn);
    if ((answer.status == ConfirmStatus::kBusy &&
         answer.reason == Reason::kIdempotencyRetention) || answer.duplicate) {
      Fail(absl::StrCat("id ", txn.id, ", refused BUSY idempotency_retention, retried once every "
                        "id had aged: ", View(ConfirmStatusName(answer.status)), " ",
                        View(ReasonName(answer.reason)), " duplicate=", answer.duplicate));
      return;
    }
    if (answer.status != ConfirmStatus::kBusy) ++result_.counts.retention_retries_answered;
    OnAnswer(txn, answer);
  }
}

// The engine's count of BUSY idempotency_retention answers (EngineStats::busy, and the table's
// own) is exactly the number this life's Submits got.
void Simulation::CheckRetentionCounter() {
  if (failed()) return;
  const uint64_t counted =
      engine_->Stats().busy[static_cast<int>(Reason::kIdempotencyRetention)];
  if (counted != retention_busy_life_) {
    Fail(absl::StrCat("the engine counts ", counted, " BUSY idempotency_retention answers; "
                      "this life got ", retention_busy_life_));
  }
}

// Recovery refuses to start when the table cannot hold every id first seen within the retention
// (EngineImpl::Recover: FailedPrecondition naming idempotency_window); the operator's remedy is a
// larger window. In retention mode the table is full of such ids when a crash comes, and the
// journal gives the answers back in its own order (a step's refusals and confirmations are
// journaled otherwise than they were claimed), so a restart with the window the crashed process
// ran with may be refused. The refusal is checked, not avoided: it must be that one, it is only
// possible when more answers were given than the window holds and the newest is within the
// retention (otherwise restoring never laps the table onto an id it must keep), and a restart
// with the window doubled, as the message says, must succeed within three doublings.
absl::StatusOr<std::unique_ptr<Engine>> Simulation::CreateEngine(Options& options) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(options);
  for (int doublings = 0; !engine.ok() && retention_mode_ && doublings < 3; ++doublings) {
    const absl::Status& status = engine.status();
    if (status.code() != absl::StatusCode::kFailedPrecondition ||
        status.message().find("idempotency_window") == absl::string_view::npos) {
      break;
    }
    const bool possible = answers_given_ > options.idempotency_window &&
                          clock_.NowNs() - newest_answer_ns_ < options.idempotency_retention_ns;
    if (!possible) {
      Fail(absl::StrCat("recovery refused for want of idempotency room, with ", answers_given_,
                        " answers ever given for a window of ", options.idempotency_window,
                        ", the newest ", clock_.NowNs() - newest_answer_ns_,
                        " ns ago (retention ", options.idempotency_retention_ns, " ns): ",
                        status.ToString()));
      return status;
    }
    ++result_.faults.retention_restart_refusals;
    options.idempotency_window *= 2;
    Log(absl::StrCat("recovery refused: ", status.ToString(), "; window doubled to ",
                     options.idempotency_window));
    engine = Engine::Create(options);
  }
  return engine;
}

bool Simulation::StepStages() {
  // The embedder's verifiers take one turn among the others (a seed without them steps the four
  // stages exactly as before they existed).
  const int stages = custom_plans_.empty() ? 4 : 5;
  InlineStage order[5] = {kStages[0], kStages[1], kStages[2], kStages[3], InlineStage::kCustom};
  std::shuffle(order, order + stages, rng_);
  // A crash may come after any stage's turn; one right after the journal's turn may tear the
  // write that turn made (the kill landed during write(2)).
  // A power loss keeps only what was synced, and any part of the rest. It may cut the turn short
  // at one of its syncs (between a journal write and its fdatasync, say), or come after it.
  const int crash_after = has_journal() && OneIn(150) ? static_cast<int>(Random(stages)) : -1;
  const bool power_loss = crash_after >= 0 && OneIn(2);
  for (int i = 0; i < stages; ++i) {
    const InlineStage stage = order[i];
    const int verifier = stage == InlineStage::kFraud ? 0 : stage == InlineStage::kLedger ? 1 : -1;
    if (verifier >= 0 && pause_steps_[verifier] > 0) continue;
    if (stage == InlineStage::kCustom && custom_pause_steps_ > 0) continue;
    if (stage == InlineStage::kCustom) AnswerAsyncVerifiers();
    SegmentMark before;
    const bool tear =
        i == crash_after && !power_loss && stage == InlineStage::kJournal && OneIn(2);
    if (tear) {
      before = NewestSegment(engine_options_.durability.dir);
      before.outcomes_acked_below = EngineTestPeer::Journal(*engine_)->outcomes_acked_below();
    }
    if (i == crash_after && power_loss) {
      disk_.ArmPowerCut(static_cast<int>(Random(3)),
                        [this] { TakeCrashImage(nullptr, /*power_loss=*/true); });
    }
    std::vector<uint64_t> holds_before;
    const bool race = options_.check_hold_races && stage == InlineStage::kReconcile && OneIn(3);
    if (race) holds_before = engine_->Holds();
    if (stage == InlineStage::kJournal) {
      JournalTurn();
    } else {
      engine_->StepStage(stage);
    }
    if (race) ReleaseRacingHold(holds_before);
    if (i == crash_after) {
      disk_.Disarm();
      if (!crash_.taken) TakeCrashImage(tear ? &before : nullptr, power_loss);
      Recover();
      return false;
    }
  }
  for (int& steps : pause_steps_) steps = std::max(0, steps - 1);
  custom_pause_steps_ = std::max(0, custom_pause_steps_ - 1);
  return true;
}

// The data directory as the crash leaves it, in the next life's directory; and what the model
// expects of it. Called between two stage turns, or (a power cut) inside a sync of the journal's
// turn, before that sync takes effect and before the turn acknowledges anything.
void Simulation::TakeCrashImage(const SegmentMark* torn_write, bool power_loss) {
  const fs::path crashed_dir = engine_options_.durability.dir;
  // Under `written` a power loss may take what was acknowledged: the checks are relaxed.
  crash_.lossy = power_loss && engine_options_.durability.ack == AckPolicy::kWritten;
  const Sequence outcomes_kept_below = torn_write != nullptr
                                           ? torn_write->outcomes_acked_below
                                           : EngineTestPeer::Journal(*engine_)->outcomes_acked_below();
  crash_.holds = crash_.lossy || !options_.check_hold_races ? std::map<uint64_t, bool>()
                                                            : JournaledHolds(outcomes_kept_below);
  crash_.journal_idle_epoch = journal_idle_epoch_;
  crash_.taken = true;
  const fs::path next_dir = seed_dir_ / absl::StrCat("life-", life_ + 1);
  // The copy is what a kill -9 leaves: every record write(2) accepted.
  fs::copy(crashed_dir, next_dir, fs::copy_options::recursive);
  if (torn_write != nullptr) TearWrite(next_dir, *torn_write);
  ++result_.faults.crashes;
  crash_.what = torn_write != nullptr ? "kill -9 (torn write)" : "kill -9";
  if (power_loss) {
    // What the disk holds: the synced bytes, and whatever of the rest reached it.
    const PowerLossReport report = disk_.PowerLoss(next_dir, rng_);
    ++result_.faults.power_losses;
    if (!crash_.lossy) ++result_.faults.power_losses_durable;
    result_.faults.files_cut += report.files_cut;
    result_.faults.entries_vanished += report.files_vanished;
    crash_.what = absl::StrCat("power loss (", report.Describe(), ")");
  }
  last_crash_ = absl::StrCat(power_loss ? "power loss" : "kill -9", " at step ", step_);
}

void Simulation::Recover() {
  crash_.taken = false;
  ++life_;
  CountLife();
  engine_.reset();  // Its shutdown writes to the old directory, which nobody reads again.
  Log(absl::StrCat(crash_.what, "; life ", life_));
  if (!StartLife()) return;
  Digest(0xC7A5u ^ engine_->recovery().confirmed << 8);
  // A power cut inside the journal's turn: what the rest of that turn wrote is not on the disk
  // the image holds, so it proves nothing kept.
  journal_idle_epoch_ = crash_.journal_idle_epoch;
  CheckRecovered(crash_.lossy);
  RecountDailySpending();
  if (!crash_.lossy && options_.check_hold_races) CheckHoldsRecovered(crash_.holds);
  release_epoch_.clear();  // Releases not kept died with the process; the rest are settled.
  CheckRefusalsRecovered(crash_.lossy);
  CheckAccountsRecovered(crash_.lossy);
  CheckMoney();
  RetryRefused();
  // The ids came back with their fields' fingerprints: reusing one for other fields is refused.
  for (int i = 0; i < 4 && !failed() && !answered_txns_.empty(); ++i) (void)ResubmitAltered();
}

void Simulation::CreateAccountMidStream() {
  NewAccount account;
  account.id = next_account_id_++;
  account.currency = OneIn(3) ? PackCurrency("EUR") : PackCurrency("USD");
  account.user_data = account.id;
  if (OneIn(2)) {
    account.limits.daily_minor_max = 2'000 + static_cast<int64_t>(Random(20'000));
    account.limits.daily_count_max = OneIn(2) ? 2 + static_cast<uint32_t>(Random(8)) : 0;
  }
  std::vector<CreateResult> results;
  const absl::Status status = engine_->CreateAccounts({&account, 1}, &results);
  ++result_.faults.accounts_created;
  if (!status.ok()) {
    Fail(absl::StrCat("CreateAccounts: ", status.ToString()));
    return;
  }
  Digest(0xACC7 ^ account.id << 8 ^ static_cast<uint64_t>(results[0]));
  if (results[0] != CreateResult::kCreated) {
    Fail(absl::StrCat("account ", account.id, " not created: ", static_cast<int>(results[0])));
    return;
  }
  Log(absl::StrCat("account ", account.id, " created"));
  runtime_accounts_.push_back({account.id, account.currency});
  limits_[account.id] = account.limits;
  opening_balance_[account.id] = 0;
  frozen_[account.id] = false;
}

void Simulation::FreezeOrUnfreeze() {
  const uint64_t account = runtime_accounts_[Random(runtime_accounts_.size())].first;
  const bool freeze = !frozen_[account];
  const absl::Status status =
      freeze ? engine_->FreezeAccount(account) : engine_->UnfreezeAccount(account);
  ++result_.faults.accounts_frozen;
  if (!status.ok()) {
    Fail(absl::StrCat(freeze ? "freeze " : "unfreeze ", account, ": ", status.ToString()));
    return;
  }
  Log(absl::StrCat("account ", account, freeze ? " frozen" : " unfrozen"));
  frozen_[account] = freeze;
}

// The engine's day: DailyUsage::DayOf of its Unix time, the clock plus the clock's Unix offset
// (fixed per seed: SeedUnixOffsetNs), so a seed crosses midnight at the same step in every
// process.
uint32_t Simulation::EngineDay() const {
  return DailyUsage::DayOf(clock_.NowNs() + clock_.UnixOffsetNs());
}

// Moves the clock to one second past the next UTC midnight: every daily limit starts afresh.
void Simulation::CrossDay() {
  constexpr int64_t kDayNs = int64_t{DailyUsage::kSecondsPerDay} * 1'000'000'000;
  const int64_t unix_ns = clock_.NowNs() + clock_.UnixOffsetNs();
  clock_.AdvanceNs(kDayNs - unix_ns % kDayNs + 1'000'000'000);
  crossed_day_ = true;
  ++result_.faults.day_crossings;
  Log(absl::StrCat("clock across a UTC day to day ", EngineDay()));
}

void Simulation::ChangeLimits() {
  const uint64_t account = runtime_accounts_[Random(runtime_accounts_.size())].first;
  AccountLimits limits;
  if (!OneIn(4)) {
    limits.daily_minor_max = 1'000 + static_cast<int64_t>(Random(20'000));
    limits.daily_count_max = OneIn(2) ? 1 + static_cast<uint32_t>(Random(8)) : 0;
  }
  const absl::Status status = engine_->SetAccountLimits(account, limits);
  ++result_.faults.limit_changes;
  Digest(0x11A1 ^ account << 8 ^ static_cast<uint64_t>(status.code()));
  if (!status.ok()) {
    Fail(absl::StrCat("SetAccountLimits ", account, ": ", status.ToString()));
    return;
  }
  Log(absl::StrCat("account ", account, " daily limits ", limits.daily_minor_max, " minor, ",
                   limits.daily_count_max, " transactions"));
  limits_[account] = limits;  // Told once kept (SetAccountLimits waits for the journal).
}

// Invariant 6, daily limits (DESIGN.md, "Daily limits"; engine/accounts/daily_usage.h): a
// transaction debits one account, its source, and ingest charges that account's UTC day (of the
// engine's clock) with it after every other ingest check passed: admitted only if the day's
// amount plus its own stays within daily_minor_max and the day's count plus one within
// daily_count_max (0: no such limit), the amount judged first. Every sequenced transaction stays
// charged whatever its outcome; a refusal or a BUSY answer is not charged. The model knows the
// engine's charges exactly (its confirmations of the account and day: what a crash or power loss
// took is dropped, as the replay recharges only what the journal kept, ApplyConfirmed) and the
// limits in force, so every new answer is checked both ways:
//   CONFIRMED:                   within both limits (then charged);
//   REJECTED daily_amount_limit: the amount would pass its limit;
//   REJECTED daily_count_limit:  the amount fits, the count would pass its limit;
//   BUSY risk_limit:             decided after the charge (then taken back): within both.
// Other refusals come from checks made before the charge, and say nothing about the day.
void Simulation::CheckDailyLimit(const Transaction& txn, const Confirmation& answer) {
  if (answer.duplicate) return;  // The original answer: nothing was judged or charged now.
  const auto limits_it = limits_.find(txn.source_account);
  const AccountLimits limits = limits_it != limits_.end() ? limits_it->second : AccountLimits{};
  const uint32_t day = EngineDay();
  const auto spent_it = day_spending_.find({txn.source_account, day});
  const DaySpending spent = spent_it != day_spending_.end() ? spent_it->second : DaySpending{};
  const bool amount_fits = limits.daily_minor_max == 0 ||
                           spent.minor + txn.amount_minor <= limits.daily_minor_max;
  const bool count_fits = limits.daily_count_max == 0 || spent.count + 1 <= limits.daily_count_max;
  bool broken = false;
  switch (answer.status) {
    case ConfirmStatus::kConfirmed:
      broken = !amount_fits || !count_fits;
      break;
    case ConfirmStatus::kRejected:
      broken = (answer.reason == Reason::kDailyAmountLimit && amount_fits) ||
               (answer.reason == Reason::kDailyCountLimit && (!amount_fits || count_fits));
      break;
    case ConfirmStatus::kBusy:
      broken = answer.reason == Reason::kRiskLimit && (!amount_fits || !count_fits);
      break;
  }
  if (broken) {
    Fail(absl::StrCat("id ", txn.id, " of ", txn.amount_minor, " minor from account ",
                      txn.source_account, " answered ", View(ConfirmStatusName(answer.status)),
                      " ", View(ReasonName(answer.reason)), " on day ", day, ", which had ",
                      spent.count, " transactions of ", spent.minor,
                      " minor charged, under daily limits of ", limits.daily_minor_max,
                      " minor / ", limits.daily_count_max, " transactions"));
    return;
  }
  if (answer.reason == Reason::kDailyAmountLimit || answer.reason == Reason::kDailyCountLimit) {
    ++result_.counts.daily_limit_refusals;
  }
  if (answer.status == ConfirmStatus::kConfirmed) {
    DaySpending& charged = day_spending_[{txn.source_account, day}];
    charged.minor += txn.amount_minor;
    ++charged.count;
  }
}

// After a recovery: the engine's charges are those of the confirmations it kept (the replay
// recharges each to the day it was received; a snapshot carries the words of those before it).
void Simulation::RecountDailySpending() {
  day_spending_.clear();
  for (const auto& [seq, confirmed] : confirmed_) {
    DaySpending& charged = day_spending_[{confirmed.txn.source_account, confirmed.day}];
    charged.minor += confirmed.txn.amount_minor;
    ++charged.count;
  }
}

// A transaction naming a frozen account is never admitted; account_frozen names one.
void Simulation::CheckFrozen(const Transaction& txn, const Confirmation& answer) {
  if (answer.duplicate || answer.status == ConfirmStatus::kBusy) return;
  auto is_frozen = [&](uint64_t id) {
    const auto it = frozen_.find(id);
    return it != frozen_.end() && it->second;
  };
  const bool frozen = is_frozen(txn.source_account) || is_frozen(txn.destination_account);
  const bool admitted = answer.status != ConfirmStatus::kRejected || answer.seq != 0;
  if (frozen && admitted) {
    Fail(absl::StrCat("id ", txn.id, " admitted although an account of it is frozen"));
  } else if (answer.reason == Reason::kAccountFrozen && !frozen) {
    Fail(absl::StrCat("id ", txn.id, " refused account_frozen, but neither account is"));
  }
}

// Every account creation and freeze told was kept (a lossy power loss may take them, with the
// transactions after them): the recovered engine has them as the client was told.
void Simulation::CheckAccountsRecovered(bool lossy) {
  if (!has_journal()) return;
  for (size_t i = 0; i < runtime_accounts_.size() && !failed();) {
    const uint64_t account = runtime_accounts_[i].first;
    const absl::StatusOr<AccountInfo> info = engine_->LookupAccount(account);
    if (!info.ok()) {
      if (!lossy) {
        Fail(absl::StrCat("account ", account, " lost in a crash: ", info.status().ToString()));
        return;
      }
      runtime_accounts_.erase(runtime_accounts_.begin() + static_cast<ptrdiff_t>(i));
      frozen_.erase(account);
      opening_balance_.erase(account);
      continue;
    }
    const bool frozen = info->state == AccountState::kFrozen;
    if (!lossy && frozen != frozen_[account]) {
      Fail(absl::StrCat("account ", account, " recovered ", frozen ? "frozen" : "open",
                        ", told otherwise"));
      return;
    }
    frozen_[account] = frozen;
    // The limits in force: every change told was kept, unless a lossy power loss took it.
    const AccountLimits& recovered = info->fields.limits;
    AccountLimits& told = limits_[account];
    if (!lossy && (recovered.daily_minor_max != told.daily_minor_max ||
                   recovered.daily_count_max != told.daily_count_max)) {
      Fail(absl::StrCat("account ", account, " recovered with daily limits ",
                        recovered.daily_minor_max, " / ", recovered.daily_count_max,
                        ", told ", told.daily_minor_max, " / ", told.daily_count_max));
      return;
    }
    told = recovered;
    ++i;
  }
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
// an outcome is pending again, with a new deadline. `lossy` (a power loss under `written`): what
// was acknowledged may be gone too, as a prefix of the journal survives; the model forgets it
// and counts it.
void Simulation::CheckRecovered(bool lossy) {
  const int64_t deadline_ns = clock_.NowNs() + engine_options_.verification_deadline_ns;
  const uint64_t lost_before =
      result_.counts.written_lost_confirmations + result_.counts.written_lost_outcomes;
  for (auto it = confirmed_.begin(); it != confirmed_.end() && !failed();) {
    const Sequence seq = it->first;
    ConfirmedTxn& confirmed = it->second;
    const uint64_t id = confirmed.txn.id;
    // The journal keeps a prefix of the confirmations (sequence numbers are gap-free), so the
    // engine has this one iff it recovered at least up to it.
    const bool kept = seq <= engine_->recovery().confirmed;
    const auto newest = answered_.find(id);
    const bool ids_newest = newest != answered_.end() && newest->second == seq;
    const bool acknowledged = confirmed.acknowledged || confirmed.told;
    if (!kept && (!acknowledged || lossy)) {
      // Confirmed, never acknowledged: the crash came before the journal kept it. Or the power
      // loss took it from the page cache.
      ++(acknowledged ? result_.counts.written_lost_confirmations
                      : result_.counts.lost_unacknowledged);
      if (ids_newest) {
        answered_.erase(newest);
        first_seen_ns_.erase(id);
      }
      untold_.erase(seq);
      it = confirmed_.erase(it);
      continue;
    }
    if (!kept) {
      Fail(absl::StrCat("acknowledged id ", id, " seq ", seq, " lost in the crash (recovered up "
                        "to seq ", engine_->recovery().confirmed, ")"));
      return;
    }
    // Invariant 2 across a restart: an id first seen within the retention comes back with this
    // answer and its first-seen time (from the journal or snapshot). One older than the retention
    // may be forgotten (retention mode), and one answered anew since is checked by that answer.
    if (ids_newest && !Aged(id)) {
      const std::optional<TransactionStatus> status = engine_->Query(id);
      if (!status.has_value() || status->seq != seq ||
          status->history.front().at_ns != first_seen_ns_[id]) {
        Fail(absl::StrCat("id ", id, " seq ", seq, ", first seen at ", first_seen_ns_[id],
                          ", is ", QueryText(*engine_, id), " after the crash"));
        return;
      }
    }
    if (confirmed.told && OutcomeForgotten(*engine_, seq)) {
      ++it;
      continue;
    }
    const std::optional<Outcome> outcome = engine_->FinalOutcome(seq);
    if (confirmed.told && lossy && !outcome.has_value()) {
      // The outcome record was lost: the transaction is verified again and told again.
      ++result_.counts.written_lost_outcomes;
      confirmed.told = false;
      confirmed.outcome = {};
      untold_.insert(seq);
    }
    if (confirmed.told) {
      if (!outcome.has_value() || !SameDecision(*outcome, confirmed.outcome)) {
        Fail(absl::StrCat("told outcome ", Describe(confirmed.outcome), " is ",
                          outcome ? Describe(*outcome) : "missing", " after the crash"));
        return;
      }
    } else if (outcome.has_value()) {
      ++result_.counts.recovered_outcomes;
      CheckCustomDecision(confirmed.txn, *outcome);
      Tell(confirmed, *outcome);
    } else {
      ++result_.counts.recovered_pending;
      confirmed.deadline_ns = deadline_ns;
      confirmed.overdue_since_step = -1;
    }
    ++it;
  }
  if (result_.counts.written_lost_confirmations + result_.counts.written_lost_outcomes >
      lost_before) {
    ++result_.counts.written_lossy_power_losses;
  }
  next_seq_ = engine_->recovery().confirmed + 1;
  acknowledged_below_ = next_seq_;  // Recovered from the journal: kept.
  for (auto& [seq, confirmed] : confirmed_) confirmed.acknowledged = true;
}

// --- Refusals, holds and rule reloads across restarts (issue 12) -----------------------------

void Simulation::OnRefusal(const Transaction& txn, const Confirmation& answer) {
  NoteNewAnswer(txn.id);
  answered_[txn.id] = 0;
  answered_txns_.push_back(txn);
  refusals_[txn.id] = {answer.reason, journal_idle_epoch_};
  ++result_.counts.rejected;
}

// A journal turn that finds nothing to write proves that everything handed to the journal before
// it (releases, refusals) was written, and under `durable` synced, by the turns before.
void Simulation::JournalTurn() {
  if (engine_->StepStage(InlineStage::kJournal) == 0) ++journal_idle_epoch_;
}

// New fraud rules, as an operator's SIGHUP would bring: the blocked merchant the checks rely on
// stays blocked; another merchant, the velocity limits and window and the anomaly rule vary, so
// the fraud state and later verdicts depend on which rules were in force when.
void Simulation::ReloadRules() {
  fraud::FraudRules rules = opening_rules_;
  rules.blocked_merchants = {kBlockedMerchant};
  if (OneIn(2)) rules.blocked_merchants.push_back(1 + Random(20));
  rules.velocity_count_max = static_cast<uint32_t>(3 + Random(40));
  if (OneIn(3)) rules.velocity_window_ns = int64_t{1'000'000'000} * (1 + Random(60));
  if (OneIn(3)) rules.velocity_amount_max_minor = 50'000 + static_cast<int64_t>(Random(500'000));
  rules.anomaly_enabled = !OneIn(3);
  const absl::StatusOr<Sequence> from = engine_->ReplaceFraudRules(rules);
  if (!from.ok()) {
    Fail(absl::StrCat("rule reload: ", from.status().ToString()));
    return;
  }
  current_rules_ = rules;
  ++result_.faults.rule_reloads;
  Log(absl::StrCat("fraud rules reloaded from seq ", *from, ": velocity count max ",
                   rules.velocity_count_max, ", window ", rules.velocity_window_ns, " ns, ",
                   rules.blocked_merchants.size(), " blocked merchants, anomaly ",
                   rules.anomaly_enabled ? "on" : "off"));
}

// The reconciler's turn may have held accounts for late fraud failures whose outcome records are
// not journaled yet: release one of them now, as an operator might, racing that record.
void Simulation::ReleaseRacingHold(const std::vector<uint64_t>& holds_before) {
  std::vector<uint64_t> placed = engine_->Holds();
  std::sort(placed.begin(), placed.end());
  std::erase_if(placed, [&](uint64_t account) {
    return std::find(holds_before.begin(), holds_before.end(), account) != holds_before.end();
  });
  if (placed.empty()) return;
  const uint64_t account = placed[Random(placed.size())];
  if (!Released(engine_->ReleaseHold(account))) return;
  release_epoch_[account] = journal_idle_epoch_;
  ++result_.faults.racing_releases;
  Log(absl::StrCat("released account ", account, " right after its hold"));
}

// The hold state in memory now of each account whose every hold and release is already in the
// journal: a hold placed by an outcome the journal has kept (below `outcomes_kept_below`, or
// told), a release followed by an idle journal turn. After a restart those accounts must be as
// they are now.
std::map<uint64_t, bool> Simulation::JournaledHolds(Sequence outcomes_kept_below) {
  std::set<uint64_t> unsettled;
  for (const auto& [account, epoch] : release_epoch_) {
    if (epoch >= journal_idle_epoch_) unsettled.insert(account);
  }
  for (const Sequence seq : untold_) {
    if (seq < outcomes_kept_below) continue;
    const std::optional<Outcome> outcome = engine_->FinalOutcome(seq);
    if (outcome.has_value() && (outcome->compensation & kCompensationAccountHeld) != 0) {
      unsettled.insert(confirmed_[seq].txn.source_account);
    }
  }
  std::map<uint64_t, bool> holds;
  for (const ledger::AccountSpec& account : engine_options_.accounts) {
    if (!unsettled.contains(account.id)) holds[account.id] = engine_->IsOnHold(account.id);
  }
  return holds;
}

// The account's late fraud failures and releases, for a failure message.
std::string Simulation::HoldHistory(uint64_t account) const {
  std::string text = "; its holding outcomes:";
  for (const auto& [seq, confirmed] : confirmed_) {
    if (confirmed.txn.source_account != account || !confirmed.told) continue;
    if ((confirmed.outcome.compensation & kCompensationAccountHeld) == 0) continue;
    absl::StrAppend(&text, " seq ", seq, " decided at ", confirmed.outcome.decided_ns);
  }
  if (const auto release = release_epoch_.find(account); release != release_epoch_.end()) {
    absl::StrAppend(&text, "; released in journal idle epoch ", release->second, " (now ",
                    journal_idle_epoch_, ")");
  }
  return text;
}

void Simulation::CheckHoldsRecovered(const std::map<uint64_t, bool>& before) {
  for (const auto& [account, held] : before) {
    if (engine_->IsOnHold(account) != held) {
      Fail(absl::StrCat("account ", account, held ? " was" : " was not",
                        " on hold before the crash, with every hold and release of it "
                        "journaled, and", held ? " is not" : " is", " after the restart",
                        HoldHistory(account)));
      return;
    }
  }
}

// A refusal the journal has had the chance to keep (an idle journal turn came after it) is there
// after the restart, with its reason: a retry of the id is refused again, never confirmed. The
// rest may be forgotten (the id is free again), and so may everything under a lossy power loss.
// Malformed transactions are refused again whatever is remembered of their ids.
void Simulation::CheckRefusalsRecovered(bool lossy) {
  for (auto it = refusals_.begin(); it != refusals_.end() && !failed();) {
    const auto& [id, refusal] = *it;
    const std::optional<TransactionStatus> status = engine_->Query(id);
    if (IsMalformed(refusal.reason)) {
      // Refused again whatever is remembered of the id, so never checked for being kept. But
      // one the crash took (not journaled yet) is an id the engine has never seen: its retry is
      // judged as new, and in retention mode may be BUSY idempotency_retention like any new id.
      const bool remembered = status.has_value() && status->seq == 0 &&
                              status->history.front().at_ns == first_seen_ns_[id];
      if (remembered) {
        ++it;
      } else {
        answered_.erase(id);
        first_seen_ns_.erase(id);
        refusals_.erase(it++);
      }
      continue;
    }
    if (Aged(id)) {
      // First seen a retention ago or more: it may be forgotten (or, forgotten and restored from
      // an older answer of the id, be that one). Either way it is free for a new answer.
      answered_.erase(id);
      first_seen_ns_.erase(id);
      refusals_.erase(it++);
      continue;
    }
    // This refusal, with its first-seen time. An id answered anew after ageing has an older
    // answer in the journal too: if the crash took this refusal, the engine may give back that
    // one (aged, so it may be forgotten any time); any other id must show this refusal or none.
    const bool kept = status.has_value() && status->seq == 0 &&
                      status->history.front().at_ns == first_seen_ns_[id];
    if (status.has_value() && !kept && !reanswered_.contains(id)) {
      Fail(status->seq != 0
               ? absl::StrCat("refused id ", id, " is confirmed as seq ", status->seq,
                              " after the restart")
               : absl::StrCat("refused id ", id, " first seen at ", first_seen_ns_[id],
                              " comes back first seen at ", status->history.front().at_ns));
      return;
    }
    if (kept && status->history.size() >= 2 && status->history[1].reason != refusal.reason) {
      Fail(absl::StrCat("refused id ", id, " (", View(ReasonName(refusal.reason)),
                        ") is remembered as ", View(ReasonName(status->history[1].reason)),
                        " after the restart"));
      return;
    }
    const bool acknowledged = refusal.journal_idle_epoch < journal_idle_epoch_;
    if (!kept && acknowledged && !lossy && options_.check_refused_answers) {
      Fail(absl::StrCat("refused id ", id, " (", View(ReasonName(refusal.reason)),
                        ") is forgotten after the restart: a retry could be confirmed"));
      return;
    }
    if (kept && options_.check_refused_answers) {
      ++it;
      continue;
    }
    answered_.erase(id);  // Free again: a retry is judged afresh.
    first_seen_ns_.erase(id);
    refusals_.erase(it++);
  }
  std::erase_if(answered_txns_,
                [&](const Transaction& txn) { return !answered_.contains(txn.id); });
}

// A client reuses an id for other fields. Only ids the engine must remember: a confirmed one
// still in the model (an unacknowledged one lost in a crash has left it), or any answered id
// without a journal (a refusal not yet kept may be forgotten by a crash, and then is judged
// afresh). The answer is not the id's: the model does not change.
bool Simulation::ResubmitAltered() {
  Transaction txn = answered_txns_[Random(answered_txns_.size())];
  const auto known = answered_.find(txn.id);
  if (known == answered_.end() || (known->second == 0 && has_journal())) return false;
  if (Aged(txn.id)) return false;  // May be forgotten: the altered fields would be applied.
  switch (Random(8)) {
    case 0: txn.amount_minor += 1; break;
    case 1: txn.source_account ^= 1; break;
    case 2: txn.destination_account += 1; break;
    case 3: txn.currency ^= 1; break;
    case 4: txn.merchant_id += 1; break;
    case 5: txn.merchant_category += 1; break;
    case 6: txn.country ^= 1; break;
    default: txn.device_id += 1; break;
  }
  txn.client_timestamp_ns += 1;  // Not compared.
  ++result_.faults.altered_resubmissions;
  const Confirmation answer = Submit(txn);
  Digest(txn.id << 24 ^ uint64_t(answer.status) << 16 ^ uint64_t(answer.reason) << 8 ^ 0xA1);
  if (answer.status == ConfirmStatus::kBusy) return true;  // Nothing recorded.
  if (answer.status != ConfirmStatus::kRejected ||
      answer.reason != Reason::kIdReusedWithDifferentFields || answer.duplicate ||
      answer.seq != 0) {
    Fail(absl::StrCat("id ", txn.id, " resubmitted with other fields answered ",
                      View(ConfirmStatusName(answer.status)), " ", View(ReasonName(answer.reason)),
                      " seq ", answer.seq, " duplicate=", answer.duplicate,
                      " (first answer seq ", known->second, ")"));
  }
  return true;
}

// A client that lost its connection in the crash sends again what it had sent, refused ids too.
void Simulation::RetryRefused() {
  if (refusals_.empty() || !OneIn(2)) return;
  std::vector<const Transaction*> refused;
  for (const Transaction& txn : answered_txns_) {
    if (refusals_.contains(txn.id)) refused.push_back(&txn);
  }
  const size_t retries = std::min<size_t>(refused.size(), 1 + Random(8));
  for (size_t i = 0; i < retries && !failed(); ++i) {
    const Transaction txn = *refused[Random(refused.size())];
    ++result_.faults.refused_retries;
    OnAnswer(txn, Submit(txn));
  }
}

// ---------------------------------------------------------------------------------------------

void Simulation::PollOutcomes() {
  Outcome batch[64];
  for (size_t n; (n = engine_->PollOutcomes(batch, 64)) > 0;) {
    for (size_t i = 0; i < n && !failed(); ++i) OnOutcome(batch[i]);
  }
}

void Simulation::OnOutcome(const Outcome& outcome) {
  Digest(outcome.seq << 16 ^ uint64_t(outcome.kind) << 8 ^ uint64_t(outcome.reason));
  Digest(static_cast<uint64_t>(outcome.decided_ns));
  Digest(uint64_t{outcome.verifier_code} << 8 ^ static_cast<uint64_t>(outcome.verifier));
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
  CheckCustomDecision(txn, outcome);
  if (failed()) return;
  confirmed.told_life = life_;
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

// --- The embedder's verifiers -------------------------------------------------------------------

std::vector<VerifierSpec> Simulation::MakeCustomVerifiers() {
  std::vector<VerifierSpec> verifiers;
  // The process that handed out the pending ones is gone; recovery hands them out again.
  async_pending_.assign(custom_plans_.size(), {});
  for (size_t i = 0; i < custom_plans_.size(); ++i) {
    const CustomVerifierPlan& plan = custom_plans_[i];
    VerifierSpec spec;
    spec.name = absl::StrCat("custom_", i);
    spec.policy = plan.policy;
    spec.hold_account_on_failure = plan.hold_account_on_failure;
    if (plan.async) {
      spec.async_verifier = std::make_shared<SimAsyncVerifier>(plan, &async_pending_[i]);
    } else {
      spec.verifier = std::make_shared<SimVerifier>(plan);
    }
    verifiers.push_back(std::move(spec));
  }
  return verifiers;
}

// The async verifiers answer some of what they hold, in a random order: each answer is for a
// random pending transaction, so they come out of seq order, and those held through a pause or
// a clock jump come after the deadline (LATE_TIMEOUT if required, then a late verdict). A
// dropped one is never answered: the deadline decides it. A full answer queue (false) keeps the
// rest for a later turn.
void Simulation::AnswerAsyncVerifiers() {
  for (size_t i = 0; i < custom_plans_.size(); ++i) {
    std::vector<PendingAnswer>& pending = async_pending_[i];
    if (pending.empty()) continue;
    const uint64_t answers = Random(pending.size() + 1);
    for (uint64_t n = 0; n < answers && !pending.empty(); ++n) {
      const size_t pick = Random(pending.size());
      const PendingAnswer answer = pending[pick];
      if (custom_plans_[i].drop_one_in != 0 && OneIn(custom_plans_[i].drop_one_in)) {
        ++result_.counts.async_dropped;
      } else if (answer.sink->Answer(answer.seq, answer.code)) {
        ++result_.counts.async_answers;
      } else {
        break;  // The queue is full: keep it for a later turn.
      }
      pending[pick] = pending.back();
      pending.pop_back();
    }
  }
}

// As for fraud and ledger: a pause (InlineStage::kCustom not stepped: every custom verifier
// answers late, out of order with the built-in ones) and a stall of one custom verifier for half
// a deadline to 3.5 deadlines of clock time (it answers after the deadline: LATE_TIMEOUT if it
// is required, then a late verdict; nothing if it is advisory, whose verdict never is late).
void Simulation::InjectCustomVerifierFaults() {
  const int64_t deadline_ns = engine_options_.verification_deadline_ns;
  if (OneIn(50)) {
    custom_pause_steps_ = 1 + static_cast<int>(Random(24));
    ++result_.faults.custom_pauses;
    Log(absl::StrCat("pause the custom verifiers for ", custom_pause_steps_, " steps"));
  }
  if (OneIn(60)) {
    const int index = static_cast<int>(Random(custom_plans_.size()));
    const int64_t stall_ns = deadline_ns / 2 + static_cast<int64_t>(Random(3 * deadline_ns));
    EngineTestPeer::StallVerifier(*engine_, CustomVerifierId(index), stall_ns);
    ++result_.faults.custom_stalls;
    Log(absl::StrCat("stall custom_", index, " for ", stall_ns, " ns"));
  }
}

// Checks one outcome against the model of the embedder's verifiers (docs/VERIFIERS.md,
// "Policies"); fraud and ledger decisions are checked by OnOutcome as before:
//   - only kVerifierRejected carries a verifier_code, and only a custom verifier gives it;
//   - VERIFIED: no required custom verifier fails the transaction;
//   - an advisory verifier decides nothing (no outcome names it);
//   - LATE_FAILED(custom, verifier_rejected, code): that verifier fails it with that code;
//     LATE_FAILED(custom, account_held_in_flight): that verifier holds accounts;
//   - LATE_TIMEOUT(custom): a required one, deadline_exceeded;
//   - an account hold is placed only by a deciding failure of fraud or of a required verifier
//     with hold_account_on_failure, and always by the latter.
void Simulation::CheckCustomDecision(const Transaction& txn, const Outcome& outcome) {
  const int index = CustomIndex(outcome.verifier);
  const bool rejected = outcome.reason == Reason::kVerifierRejected;
  if ((outcome.verifier_code != 0) != rejected || (rejected && index < 0)) {
    Fail(absl::StrCat("outcome ", Describe(outcome), ": a verifier code goes with "
                      "verifier_rejected from an embedder's verifier, and only then"));
    return;
  }
  if (index >= static_cast<int>(custom_plans_.size())) {
    Fail(absl::StrCat("outcome ", Describe(outcome), " names a verifier never registered (",
                      custom_plans_.size(), " custom verifiers)"));
    return;
  }
  const bool held = (outcome.compensation & kCompensationAccountHeld) != 0;
  if (outcome.kind == OutcomeKind::kVerified) {
    for (size_t i = 0; i < custom_plans_.size(); ++i) {
      const uint16_t code = CustomVerdictCode(custom_plans_[i], txn);
      if (custom_plans_[i].required() && code != 0) {
        Fail(absl::StrCat("VERIFIED ", Describe(outcome), " although required custom_", i,
                          " fails it with code ", code));
        return;
      }
    }
  }
  if (index < 0) {
    if (held && (outcome.verifier != VerifierId::kFraud ||
                 outcome.kind != OutcomeKind::kLateFailed ||
                 outcome.reason == Reason::kAccountHeldInFlight)) {
      Fail(absl::StrCat("outcome ", Describe(outcome), " put the account on hold"));
    }
    return;
  }
  const CustomVerifierPlan& plan = custom_plans_[index];
  const uint16_t expected = CustomVerdictCode(plan, txn);
  std::string broken;
  if (!plan.required()) {
    broken = "advisory, it decides nothing";
  } else if (outcome.kind == OutcomeKind::kLateTimeout) {
    if (outcome.reason != Reason::kDeadlineExceeded) broken = "a timeout is deadline_exceeded";
    ++result_.counts.custom_timeouts;
  } else if (outcome.kind != OutcomeKind::kLateFailed) {
    broken = "it names no verifier";
  } else if (rejected) {
    if (outcome.verifier_code != expected) {
      broken = absl::StrCat("the verifier answers code ", expected, " for it");
    } else if (plan.hold_account_on_failure && !held && !outcome.held) {
      broken = "the verifier holds the account on failure, and the outcome placed no hold";
    }
    ++result_.counts.custom_rejections;
    if (held) ++result_.counts.custom_holds;
  } else if (outcome.reason == Reason::kAccountHeldInFlight) {
    if (!plan.hold_account_on_failure) broken = "the verifier places no holds";
    ++result_.counts.custom_held_in_flight;
  } else {
    broken = "an embedder's verifier fails with verifier_rejected";
  }
  if (broken.empty() && held && (!rejected || !plan.hold_account_on_failure)) {
    broken = "it put the account on hold";
  }
  if (!broken.empty()) {
    Fail(absl::StrCat("outcome ", Describe(outcome), " by custom_", index, " (",
                      plan.required() ? "required" : "advisory",
                      plan.hold_account_on_failure ? ", holds accounts" : "", "): ", broken));
  }
}

// Query's verdicts of the embedder's verifiers are the model's: pass, or fail with its code
// (advisory ones too, whose verdict is recorded though it decides nothing); and only a required
// verifier's verdict can be late.
void Simulation::CheckCustomVerdicts(const Transaction& txn, const TransactionStatus& status) {
  // Query returns the attributes as submitted, or none (refused, not in the history yet, or
  // recovered from a snapshot's answers): never other bytes.
  if (!status.attributes.view().empty() && status.attributes.view() != txn.attributes.view()) {
    Fail(absl::StrCat("Query(", txn.id, ") returns attributes of ", status.attributes.size,
                      " bytes other than the ", txn.attributes.size, " submitted"));
    return;
  }
  if (!status.attributes.view().empty()) ++result_.counts.attributes_queried;
  for (const StateChange& change : status.history) {
    if (change.kind != StateKind::kVerifierVerdict && change.kind != StateKind::kLateVerdict) {
      continue;
    }
    const int index = CustomIndex(change.verifier);
    if (index < 0) continue;  // A late verdict of fraud or ledger.
    if (index >= static_cast<int>(custom_plans_.size())) {
      Fail(absl::StrCat("Query(", txn.id, ") shows a verdict of verifier ",
                        static_cast<int>(change.verifier), ", never registered"));
      return;
    }
    const CustomVerifierPlan& plan = custom_plans_[index];
    const uint16_t expected = CustomVerdictCode(plan, txn);
    const bool late_advisory = change.kind == StateKind::kLateVerdict && !plan.required();
    if (late_advisory || change.pass != (expected == 0) || change.verifier_code != expected ||
        (expected != 0 && change.reason != Reason::kVerifierRejected)) {
      Fail(absl::StrCat("Query(", txn.id, ") shows custom_", index, "'s verdict as ",
                        View(StateKindName(change.kind)), " pass ", change.pass, " code ",
                        change.verifier_code, " ", View(ReasonName(change.reason)),
                        "; the verifier answers code ", expected,
                        plan.required() ? "" : " and is advisory"));
      return;
    }
    ++result_.counts.custom_verdicts_queried;
  }
}

bool Simulation::Required(int slot) const {
  return slot < kBuiltinVerifierCount || custom_plans_[slot - kBuiltinVerifierCount].required();
}

// The N-way join, as Query shows the verdicts it joined: a verdict the reconciler had before the
// outcome is on time (FRAUD_VERDICT, LEDGER_VERDICT, VERIFIER_VERDICT), one after it is a
// LATE_VERDICT. Only for an outcome this life's reconciler decided (a recovered one has no
// verdicts in the history). Then:
//   - VERIFIED: every required verifier passed it on time;
//   - LATE_TIMEOUT(V): every required verifier before V, in verifier order, judged it on time
//     and passed it, and V did not judge it on time (V is the first required one missing);
//   - LATE_FAILED(V, reason), but account_held_in_flight (another transaction's failure): V
//     failed it on time, with that reason and code (a failure decides at once, so the others
//     may not have judged it yet).
void Simulation::CheckJoin(const ConfirmedTxn& confirmed, const TransactionStatus& status) {
  if (!confirmed.told || confirmed.told_life != life_) return;
  const Outcome& outcome = confirmed.outcome;
  if (outcome.kind == OutcomeKind::kLateFailed &&
      outcome.reason == Reason::kAccountHeldInFlight) {
    return;  // Decided by another transaction's failure.
  }
  const int verifier_count = kBuiltinVerifierCount + static_cast<int>(custom_plans_.size());
  const int named = outcome.kind == OutcomeKind::kVerified ? verifier_count
                                                           : VerifierSlot(outcome.verifier);
  for (int slot = 0; slot < verifier_count; ++slot) {
    if (!Required(slot) && slot != named) continue;
    // A failure decides at once, whatever the others have said.
    if (outcome.kind == OutcomeKind::kLateFailed && slot != named) continue;
    const StateChange* on_time = nullptr;
    for (const StateChange& change : status.history) {
      const bool verdict = change.kind == StateKind::kFraudVerdict ||
                           change.kind == StateKind::kLedgerVerdict ||
                           change.kind == StateKind::kVerifierVerdict;
      if (verdict && change.verifier == VerifierAtSlot(slot)) on_time = &change;
    }
    std::string broken;
    if (slot < named) {
      if (on_time == nullptr || !on_time->pass) {
        broken = on_time == nullptr ? "had not judged it in time" : "had failed it in time";
      }
    } else if (slot == named) {
      if (outcome.kind == OutcomeKind::kLateTimeout && on_time != nullptr) {
        broken = "had judged it in time";
      } else if (outcome.kind == OutcomeKind::kLateFailed &&
                 (on_time == nullptr || on_time->pass || on_time->reason != outcome.reason ||
                  on_time->verifier_code != outcome.verifier_code)) {
        broken = "did not fail it in time with that reason and code";
      }
    }
    if (!broken.empty()) {
      Fail(absl::StrCat("outcome ", Describe(outcome), ", but verifier slot ", slot,
                        " (required ", Required(slot), ") ", broken, "; Query says ",
                        QueryText(*engine_, confirmed.txn.id)));
      return;
    }
  }
  ++result_.counts.joins_checked;
}

void Simulation::CountLife() {
  const EngineStats stats = engine_->Stats();
  result_.counts.late_verdicts += stats.late_verdicts;
  for (size_t i = 0; i < custom_plans_.size(); ++i) {
    if (custom_plans_[i].required()) continue;
    result_.counts.advisory_failures +=
        stats.verdict_failures[VerifierSlot(CustomVerifierId(static_cast<int>(i)))];
  }
}

void Simulation::NoteAcknowledged() {
  if (!has_journal()) return;  // Nothing outlives the process: nothing is checked across one.
  const Sequence below = EngineTestPeer::Journal(*engine_)->confirmed_acked_below();
  for (auto it = confirmed_.lower_bound(acknowledged_below_);
       it != confirmed_.end() && it->first < below; ++it) {
    it->second.acknowledged = true;
  }
  acknowledged_below_ = std::max(acknowledged_below_, below);
}

void Simulation::CheckMoney() {
  if (failed()) return;
  const ledger::Ledger& ledger = EngineTestPeer::Ledger(*engine_);
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
  // Only an id whose newest answer this is, within the retention, must be found (invariant 2).
  const auto newest = answered_.find(it->second.txn.id);
  if (newest == answered_.end() || newest->second != it->first || Aged(newest->first)) return;
  const std::optional<TransactionStatus> status = engine_->Query(it->second.txn.id);
  if (!status.has_value() || status->seq != it->first) {
    Fail(absl::StrCat("Query(", it->second.txn.id, ") lost seq ", it->first));
  } else if (it->second.told && !status->final) {
    Fail(absl::StrCat("Query(", it->second.txn.id, ") is not final after its outcome"));
  } else {
    CheckCustomVerdicts(it->second.txn, *status);
    CheckJoin(it->second, *status);
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
  CountLife();
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
  const ledger::Ledger& ledger = EngineTestPeer::Ledger(*engine_);
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
  if (failed() || !has_journal()) return;
  const fs::path replay_dir = seed_dir_ / "replay";
  fs::copy(engine_options_.durability.dir, replay_dir, fs::copy_options::recursive);
  Options options = engine_options_;
  options.durability.dir = replay_dir.string();
  options.verifiers = MakeCustomVerifiers();
  absl::StatusOr<std::unique_ptr<Engine>> replayed = CreateEngine(options);
  if (!replayed.ok()) {
    Fail(absl::StrCat("replaying the final journal: ", replayed.status().ToString()));
    return;
  }
  const Engine& replay = **replayed;
  if (EngineTestPeer::Ledger(replay).StateHash() != EngineTestPeer::Ledger(*engine_).StateHash()) {
    Fail("replay gives a different ledger");
  } else if (EngineTestPeer::FraudChecker(replay).StateHash() !=
             EngineTestPeer::FraudChecker(*engine_).StateHash()) {
    Fail("replay gives a different fraud state");
  } else if (options_.check_hold_races) {
    std::vector<uint64_t> replayed_holds = replay.Holds();
    std::vector<uint64_t> holds = engine_->Holds();
    std::sort(replayed_holds.begin(), replayed_holds.end());
    std::sort(holds.begin(), holds.end());
    if (replayed_holds != holds) {
      Fail(absl::StrCat("replay holds ", replayed_holds.size(), " accounts (",
                        absl::StrJoin(replayed_holds, ","), ") where the run holds ",
                        holds.size(), " (", absl::StrJoin(holds, ","), ")"));
    }
  }
  for (const auto& [seq, confirmed] : confirmed_) {
    if (failed()) break;
    if (OutcomeForgotten(replay, seq)) continue;
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
  result_.failure = absl::StrCat(
      "seed ", options_.seed, " step ", step_, " life ", life_, " (ack ",
      View(AckPolicyName(engine_options_.durability.ack)), ", last crash: ", last_crash_, "): ",
      what, "\n  replay: ", ReplayCommand(options_),
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
  accounts_created += o.accounts_created;
  accounts_frozen += o.accounts_frozen;
  limit_changes += o.limit_changes;
  day_crossings += o.day_crossings;
  racing_releases += o.racing_releases;
  rule_reloads += o.rule_reloads;
  refused_retries += o.refused_retries;
  altered_resubmissions += o.altered_resubmissions;
  power_losses += o.power_losses;
  power_losses_durable += o.power_losses_durable;
  files_cut += o.files_cut;
  entries_vanished += o.entries_vanished;
  retention_ageings += o.retention_ageings;
  retention_restart_refusals += o.retention_restart_refusals;
  custom_pauses += o.custom_pauses;
  custom_stalls += o.custom_stalls;
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
  written_lost_confirmations += o.written_lost_confirmations;
  written_lost_outcomes += o.written_lost_outcomes;
  written_lossy_power_losses += o.written_lossy_power_losses;
  for (int i = 0; i < 3; ++i) seeds_by_ack[i] += o.seeds_by_ack[i];
  retention_seeds += o.retention_seeds;
  retention_busy += o.retention_busy;
  retention_retries_answered += o.retention_retries_answered;
  aged_reanswered += o.aged_reanswered;
  daily_limit_refusals += o.daily_limit_refusals;
  custom_verifier_seeds += o.custom_verifier_seeds;
  custom_required += o.custom_required;
  custom_advisory += o.custom_advisory;
  custom_async += o.custom_async;
  attributes_queried += o.attributes_queried;
  async_answers += o.async_answers;
  async_dropped += o.async_dropped;
  custom_rejections += o.custom_rejections;
  custom_holds += o.custom_holds;
  custom_held_in_flight += o.custom_held_in_flight;
  custom_timeouts += o.custom_timeouts;
  advisory_failures += o.advisory_failures;
  custom_verdicts_queried += o.custom_verdicts_queried;
  joins_checked += o.joins_checked;
}

std::string DefaultWorkDir() {
  const char* test_tmp = std::getenv("TEST_TMPDIR");
  return test_tmp != nullptr ? test_tmp : "/tmp/vouch-sim";
}

SeedResult RunSeed(const SimulationOptions& options) { return Simulation(options).Run(); }

std::string Summary(uint64_t seeds, uint64_t failures, const FaultCounts& f,
                    const RunCounts& c, double elapsed_s) {
  return absl::StrCat(
      "seeds ", seeds, " (ack memory ", c.seeds_by_ack[0], ", written ", c.seeds_by_ack[1],
      ", durable ", c.seeds_by_ack[2], "), failed ", failures, ", steps ", c.steps, ", ",
      absl::StrFormat("%.1f", elapsed_s), " s\n",
      "faults: verifier pauses ", f.verifier_pauses, ", verifier stalls ", f.verifier_stalls,
      ", clock jumps ", f.clock_jumps, ", crashes ", f.crashes, " (torn tails ", f.torn_tails,
      "; power losses ", f.power_losses, ", of them under durable ", f.power_losses_durable,
      ": files cut ", f.files_cut, ", entries vanished ", f.entries_vanished,
      "), snapshot polls ", f.snapshots, ", resubmitted ids ", f.duplicates,
      " (refused ids after a restart ", f.refused_retries, ", with other fields ",
      f.altered_resubmissions, "), hold releases ", f.hold_releases,
      " (racing the hold's record ", f.racing_releases, "), rule reloads ", f.rule_reloads,
      ", accounts created mid-stream ", f.accounts_created, " (freezes and unfreezes ",
      f.accounts_frozen, ", daily limit changes ", f.limit_changes, "), UTC day crossings ",
      f.day_crossings, "\n",
      "answers: confirmed ", c.confirmed, ", rejected ", c.rejected, " (daily limits ",
      c.daily_limit_refusals, "), busy ", c.busy, "\n",
      "outcomes: verified ", c.verified, ", late failed ", c.late_failed, ", late timeout ",
      c.late_timeout, ", late verdicts ", c.late_verdicts, "\n",
      "recovery: pending re-verified ", c.recovered_pending, ", decided but untold ",
      c.recovered_outcomes, ", unacknowledged lost ", c.lost_unacknowledged, "\n",
      "power loss under written: acknowledged confirmations lost ", c.written_lost_confirmations,
      ", told outcomes lost ", c.written_lost_outcomes, ", in ", c.written_lossy_power_losses,
      " of ", f.power_losses - f.power_losses_durable, " power losses\n",
      "retention mode: seeds ", c.retention_seeds, ", new ids BUSY idempotency_retention ",
      c.retention_busy, ", ageings ", f.retention_ageings, " (refused ids retried and answered ",
      c.retention_retries_answered, "), aged ids answered anew ", c.aged_reanswered,
      ", restarts refused for idempotency room ", f.retention_restart_refusals, "\n",
      "custom verifiers: seeds ", c.custom_verifier_seeds, " (required ", c.custom_required,
      ", advisory ", c.custom_advisory, "; async ", c.custom_async, ", their answers ",
      c.async_answers, ", never answered ", c.async_dropped, "; attributes returned by Query ",
      c.attributes_queried, "), pauses ", f.custom_pauses, ", stalls ",
      f.custom_stalls, "; decided verifier_rejected ", c.custom_rejections, " (holding ",
      c.custom_holds, "), account_held_in_flight ", c.custom_held_in_flight, ", timeouts ",
      c.custom_timeouts, "; advisory failures ", c.advisory_failures,
      ", verdicts checked in Query ", c.custom_verdicts_queried, "; outcomes checked against "
      "the verdicts they joined ", c.joins_checked, "\n");
}

std::string ReplayCommand(const SimulationOptions& options) {
  std::string command = absl::StrCat("bazel run //tests/engine/simulation:vouch_sim -- --seed=",
                                     options.seed);
  if (options.steps > 0) absl::StrAppend(&command, " --steps=", options.steps);
  if (!options.check_refused_answers) absl::StrAppend(&command, " --nocheck_refused_answers");
  if (!options.check_rule_reloads) absl::StrAppend(&command, " --nocheck_rule_reloads");
  if (!options.check_hold_races) absl::StrAppend(&command, " --nocheck_hold_races");
  return absl::StrCat(command, " --verbose");
}

}  // namespace vouch::simulation
