// The embedder's own verifiers (Options::verifiers, engine/verify/verifier.h): the N-way join
// with eight verifiers in all, required and advisory policies, a verifier's own reason codes in
// outcomes and Query, account holds, timeouts and late verdicts, and restarts (every policy
// mode, every ack policy, a clean stop and a crash).
#include <atomic>
#include <filesystem>
#include <thread>
#include <utility>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/reconcile/reconciler.h"
#include "engine/testing/engine_test_peer.h"
#include "engine/verify/verifier.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::StepUntilIdle;
using testing::Transfer;

namespace fs = std::filesystem;

constexpr uint64_t kSanctionedMerchant = 999;
constexpr uint16_t kSanctionsHit = 7;      // The sanctions verifier's own code.
constexpr int64_t kKycFailingAmount = 4'242;
constexpr uint16_t kKycOverLimit = 300;    // The KYC verifier's own code.
constexpr int64_t kModelDoubtsAbove = 500;
constexpr uint16_t kModelScoreHigh = 2;    // The advisory model's own code.

// Fails transactions to one merchant: a sanctions list.
class SanctionsList final : public Verifier {
 public:
  uint16_t Check(const Transaction& txn, int64_t) override {
    checked.fetch_add(1, std::memory_order_relaxed);  // relaxed: a test counter.
    return txn.merchant_id == kSanctionedMerchant ? kSanctionsHit : 0;
  }
  std::atomic<int> checked{0};
};

class KycLimit final : public Verifier {
 public:
  uint16_t Check(const Transaction& txn, int64_t) override {
    return txn.amount_minor == kKycFailingAmount ? kKycOverLimit : 0;
  }
};

// Advisory: doubts every amount above kModelDoubtsAbove, and decides nothing.
class ScoringModel final : public Verifier {
 public:
  uint16_t Check(const Transaction& txn, int64_t) override {
    return txn.amount_minor > kModelDoubtsAbove ? kModelScoreHigh : 0;
  }
};

class PassEverything final : public Verifier {
 public:
  uint16_t Check(const Transaction&, int64_t) override { return 0; }
};

// Eight verifiers in all: fraud, ledger, then these six, at VerifierIds 3..8.
constexpr VerifierId kSanctions = CustomVerifierId(0);
constexpr VerifierId kKyc = CustomVerifierId(1);
constexpr VerifierId kModel = CustomVerifierId(2);

enum class Restart { kClean, kCrash };

class VerifierTestBase {
 protected:
  std::vector<VerifierSpec> Verifiers() {
    std::vector<VerifierSpec> verifiers;
    verifiers.push_back({"sanctions", VerifierPolicy::kRequired, false, -1, sanctions_});
    verifiers.push_back({"kyc", VerifierPolicy::kRequired, true, -1, std::make_shared<KycLimit>()});
    verifiers.push_back(
        {"model", VerifierPolicy::kAdvisory, false, -1, std::make_shared<ScoringModel>()});
    for (const char* name : {"pass_a", "pass_b", "pass_c"}) {
      verifiers.push_back(
          {name, VerifierPolicy::kRequired, false, -1, std::make_shared<PassEverything>()});
    }
    return verifiers;
  }
  std::unique_ptr<Engine> Open(PolicyMode mode, AckPolicy ack, const std::string& dir) {
    Options options = BankOptions(20);
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = true;
    options.clock = &clock_;
    options.policy.mode = mode;
    options.policy.hold_amount_minor_min = kModelDoubtsAbove;  // Hybrid holds the larger half.
    options.durability.ack = ack;
    if (ack != AckPolicy::kMemory) options.durability.dir = dir;
    options.verifiers = Verifiers();
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }

  ManualClock clock_;
  std::shared_ptr<SanctionsList> sanctions_ = std::make_shared<SanctionsList>();
};

const StateChange* Find(const TransactionStatus& status, StateKind kind, VerifierId verifier) {
  for (const StateChange& change : status.history) {
    if (change.kind == kind && change.verifier == verifier) return &change;
  }
  return nullptr;
}

// The final state Query reports: VERIFIED, LATE_FAILED (REJECTED when held) or LATE_TIMEOUT.
const StateChange* FinalChange(const TransactionStatus& status) {
  for (const StateChange& change : status.history) {
    if (change.kind == StateKind::kVerified || change.kind == StateKind::kLateFailed ||
        change.kind == StateKind::kLateTimeout ||
        (change.kind == StateKind::kRejected && status.seq != 0)) {
      return &change;
    }
  }
  return nullptr;
}

struct Case {
  Transaction txn;
  bool verified;
  VerifierId verifier;  // Failed by; kNone when verified.
  uint16_t code;
};

std::vector<Case> Cases() {
  Transaction sanctioned = Transfer(2, 1, 2, 100);
  sanctioned.merchant_id = kSanctionedMerchant;
  return {
      {Transfer(1, 1, 2, 100), true, VerifierId::kNone, 0},
      {sanctioned, false, kSanctions, kSanctionsHit},
      {Transfer(3, 3, 4, kKycFailingAmount), false, kKyc, kKycOverLimit},
      // The advisory model doubts it; it is verified all the same.
      {Transfer(4, 5, 6, kModelDoubtsAbove + 1), true, VerifierId::kNone, 0},
  };
}

void ExpectDecided(const Engine& engine, const Case& c, bool held) {
  const std::optional<TransactionStatus> status = engine.Query(c.txn.id);
  ASSERT_TRUE(status.has_value()) << c.txn.id;
  ASSERT_TRUE(status->final) << c.txn.id;
  const StateChange* final_change = FinalChange(*status);
  ASSERT_NE(final_change, nullptr) << c.txn.id;
  if (c.verified) {
    EXPECT_EQ(final_change->kind, StateKind::kVerified) << c.txn.id;
    return;
  }
  EXPECT_EQ(final_change->kind, held ? StateKind::kRejected : StateKind::kLateFailed) << c.txn.id;
  EXPECT_EQ(final_change->reason, Reason::kVerifierRejected) << c.txn.id;
  EXPECT_EQ(final_change->verifier, c.verifier) << c.txn.id;
  EXPECT_EQ(final_change->verifier_code, c.code) << c.txn.id;
}

// --- Every policy mode and ack policy, across a restart ---------------------------------------

class VerifierJoinTest
    : public VerifierTestBase,
      public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy, Restart>> {};

TEST_P(VerifierJoinTest, EightVerifiersJoinAndTheirCodesSurviveARestart) {
  const auto [mode, ack, restart] = GetParam();
  const std::string dir = testing::EmptyTestDir("live");
  const std::string crashed = testing::EmptyTestDir("crashed");
  std::vector<bool> held;
  {
    auto engine = Open(mode, ack, dir);
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(engine->verifier_count(), kVerifiersMax);
    EXPECT_EQ(engine->VerifierName(kSanctions), "sanctions");
    EXPECT_EQ(engine->VerifierName(VerifierId::kFraud), "fraud");
    for (const Case& c : Cases()) {
      const Confirmation answer = engine->Submit(c.txn);
      held.push_back(answer.held);
      if (answer.held) {  // The policy held it: the answer is the verdict of all eight.
        EXPECT_EQ(answer.status, c.verified ? ConfirmStatus::kConfirmed : ConfirmStatus::kRejected)
            << c.txn.id;
        if (!c.verified) {
          EXPECT_EQ(answer.reason, Reason::kVerifierRejected) << c.txn.id;
        }
      } else {
        EXPECT_EQ(answer.status, ConfirmStatus::kConfirmed) << c.txn.id;
      }
    }
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    for (size_t i = 0; i < Cases().size(); ++i) ExpectDecided(*engine, Cases()[i], held[i]);
    EXPECT_EQ(mode == PolicyMode::kSync, held[0]);

    // Query shows each verifier's verdict; the advisory model's failure is recorded.
    const std::optional<TransactionStatus> doubted = engine->Query(4);
    ASSERT_TRUE(doubted.has_value());
    const StateChange* model = Find(*doubted, StateKind::kVerifierVerdict, kModel);
    ASSERT_NE(model, nullptr);
    EXPECT_FALSE(model->pass);
    EXPECT_EQ(model->reason, Reason::kVerifierRejected);
    EXPECT_EQ(model->verifier_code, kModelScoreHigh);
    int verdicts = 0;
    for (const StateChange& change : doubted->history) {
      verdicts += change.kind == StateKind::kFraudVerdict ||
                  change.kind == StateKind::kLedgerVerdict ||
                  change.kind == StateKind::kVerifierVerdict;
    }
    EXPECT_EQ(verdicts, kVerifiersMax);

    const EngineStats stats = engine->Stats();
    EXPECT_EQ(stats.verifier_count, kVerifiersMax);
    EXPECT_EQ(stats.verdict_failures[VerifierSlot(kModel)], 2u);  // Cases 3 and 4.
    EXPECT_EQ(stats.verdict_failures[VerifierSlot(kSanctions)], 1u);
    EXPECT_EQ(stats.verdict_failures[VerifierSlot(kKyc)], 1u);
    // Late failures only: a held transaction's failure is its answer.
    EXPECT_EQ(stats.failures_by_reason[static_cast<int>(Reason::kVerifierRejected)],
              (held[1] ? 0u : 1u) + (held[2] ? 0u : 1u));
    // A required failure decides at once: the required verdicts drained after it in the same
    // turn are late (recorded, no second outcome). Sanctions (slot 3) fails case 2 before KYC
    // and the three pass verifiers report; KYC (slot 4) fails case 3 before the three.
    EXPECT_EQ(stats.late_verdicts, 4u + 3u);
    // The KYC verifier holds accounts; a held transaction places no hold.
    EXPECT_EQ(engine->IsOnHold(3), !held[2]);
    EXPECT_FALSE(engine->IsOnHold(1));
    if (ack == AckPolicy::kMemory) return;
    if (restart == Restart::kCrash) {
      fs::copy(dir, crashed, fs::copy_options::recursive);
    } else {
      EXPECT_TRUE(engine->Stop().drained);
    }
  }
  auto engine = Open(mode, ack, restart == Restart::kCrash ? crashed : dir);
  ASSERT_NE(engine, nullptr);
  // The journal kept each outcome with its verifier and code.
  for (size_t i = 0; i < Cases().size(); ++i) ExpectDecided(*engine, Cases()[i], held[i]);
  EXPECT_EQ(engine->IsOnHold(3), !held[2]) << "the KYC hold survived the restart";
  // A resubmission gets the original answer.
  const Confirmation again = engine->Submit(Cases()[1].txn);
  EXPECT_TRUE(again.duplicate);
}

INSTANTIATE_TEST_SUITE_P(
    ModesAndAckPolicies, VerifierJoinTest,
    ::testing::Combine(::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                         PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                         AckPolicy::kDurable),
                       ::testing::Values(Restart::kClean, Restart::kCrash)),
    [](const auto& info) {
      return std::string(PolicyModeName(std::get<0>(info.param))) + "_" +
             std::string(AckPolicyName(std::get<1>(info.param))) +
             (std::get<2>(info.param) == Restart::kClean ? "_clean" : "_crash");
    });

// --- Deadlines, late verdicts, and asking again after a crash ---------------------------------

class VerifierDeadlineTest : public VerifierTestBase, public ::testing::Test {};

TEST_F(VerifierDeadlineTest, AStalledVerifierTimesOutAndItsLateVerdictMakesNoSecondOutcome) {
  auto engine = Open(PolicyMode::kAsync, AckPolicy::kMemory, "");
  const int64_t deadline_ns = engine->options().verification_deadline_ns;
  EngineTestPeer::StallVerifier(*engine, kKyc, 10 * deadline_ns);
  ASSERT_EQ(engine->Submit(Transfer(1, 1, 2, 100)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine);
  EXPECT_TRUE(DrainOutcomes(*engine).empty()) << "KYC is required: no outcome without it";
  clock_.AdvanceNs(deadline_ns);
  StepUntilIdle(*engine);
  std::vector<Outcome> outcomes = DrainOutcomes(*engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kLateTimeout);
  EXPECT_EQ(outcomes[0].verifier, kKyc);
  EXPECT_EQ(outcomes[0].reason, Reason::kDeadlineExceeded);

  clock_.AdvanceNs(10 * deadline_ns);  // The stall ends; KYC passes it, too late.
  StepUntilIdle(*engine);
  EXPECT_TRUE(DrainOutcomes(*engine).empty());
  EXPECT_EQ(engine->Stats().late_verdicts, 1u);
  const std::optional<TransactionStatus> status = engine->Query(1);
  ASSERT_TRUE(status.has_value());
  const StateChange* late = Find(*status, StateKind::kLateVerdict, kKyc);
  ASSERT_NE(late, nullptr);
  EXPECT_TRUE(late->pass);
  EXPECT_EQ(engine->Stats().retired, 1u) << "the entry retired once every verifier judged it";
}

TEST_F(VerifierDeadlineTest, AStalledAdvisoryVerifierDelaysNoOutcome) {
  auto engine = Open(PolicyMode::kAsync, AckPolicy::kMemory, "");
  EngineTestPeer::StallVerifier(*engine, kModel, 10 * engine->options().verification_deadline_ns);
  ASSERT_EQ(engine->Submit(Transfer(1, 1, 2, 100)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine);
  std::vector<Outcome> outcomes = DrainOutcomes(*engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kVerified);
  EXPECT_EQ(engine->Stats().retired, 0u) << "the model still reads the entry";
  clock_.AdvanceNs(11 * engine->options().verification_deadline_ns);
  StepUntilIdle(*engine);
  EXPECT_EQ(engine->Stats().retired, 1u);
  EXPECT_EQ(engine->Stats().late_verdicts, 0u) << "an advisory verdict is never late";
}

TEST_F(VerifierDeadlineTest, AfterACrashTheUndecidedAreAskedAgain) {
  const std::string dir = testing::EmptyTestDir("asked_again");
  const std::string crashed = testing::EmptyTestDir("asked_again_crashed");
  {
    auto engine = Open(PolicyMode::kAsync, AckPolicy::kWritten, dir);
    EngineTestPeer::StallVerifier(*engine, kSanctions,
                                  1'000 * engine->options().verification_deadline_ns);
    Transaction sanctioned = Transfer(1, 1, 2, 100);
    sanctioned.merchant_id = kSanctionedMerchant;
    ASSERT_EQ(engine->Submit(sanctioned).status, ConfirmStatus::kConfirmed);
    ASSERT_EQ(engine->Submit(Transfer(2, 3, 4, 100)).status, ConfirmStatus::kConfirmed);
    StepUntilIdle(*engine);
    EXPECT_EQ(sanctions_->checked.load(), 0);
    fs::copy(dir, crashed, fs::copy_options::recursive);
  }
  sanctions_ = std::make_shared<SanctionsList>();  // A new process, a new verifier.
  auto engine = Open(PolicyMode::kAsync, AckPolicy::kWritten, crashed);
  EXPECT_EQ(engine->recovery().reverified, 2u);
  StepUntilIdle(*engine);
  EXPECT_EQ(sanctions_->checked.load(), 2);
  ExpectDecided(*engine, {Transaction{.id = 1}, false, kSanctions, kSanctionsHit}, false);
  ExpectDecided(*engine, {Transaction{.id = 2}, true, VerifierId::kNone, 0}, false);
}

// --- Shadow verifiers and shadow fraud rules ----------------------------------------------------

class ShadowTest : public VerifierTestBase, public ::testing::TestWithParam<PolicyMode> {};

// A shadow verifier judges every transaction, decides none, and each of its verdicts is compared
// with the outcome decided without it.
TEST_P(ShadowTest, AShadowVerdictIsComparedWithTheOutcomeAndDecidesNothing) {
  Options options = BankOptions(20);
  options.fraud_rules.velocity_enabled = false;
  options.inline_mode = true;
  options.clock = &clock_;
  options.policy.mode = GetParam();
  options.policy.hold_amount_minor_min = kModelDoubtsAbove;
  options.verifiers.push_back({"sanctions", VerifierPolicy::kRequired, false, -1, sanctions_});
  options.verifiers.push_back(
      {"model", VerifierPolicy::kShadow, false, -1, std::make_shared<ScoringModel>()});
  auto created = Engine::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status();
  Engine& engine = **created;
  ASSERT_TRUE(engine.Start().ok());
  const VerifierId model = CustomVerifierId(1);
  EXPECT_EQ(engine.VerifierPolicyOf(model), VerifierPolicy::kShadow);
  Transaction sanctioned_small = Transfer(3, 5, 6, 100);
  sanctioned_small.merchant_id = kSanctionedMerchant;
  Transaction sanctioned_large = Transfer(4, 7, 8, kModelDoubtsAbove + 1);
  sanctioned_large.merchant_id = kSanctionedMerchant;
  for (const Transaction& txn : {Transfer(1, 1, 2, 100),                     // both pass
                                 Transfer(2, 3, 4, kModelDoubtsAbove + 1),   // model alone fails
                                 sanctioned_small,                            // sanctions alone
                                 sanctioned_large}) {                         // both fail
    (void)engine.Submit(txn);
  }
  StepUntilIdle(engine);
  DrainOutcomes(engine);
  ExpectDecided(engine, {Transfer(2, 3, 4, 0), true, VerifierId::kNone, 0}, false);
  const EngineStats stats = engine.Stats();
  const auto& compared = stats.shadow_verdicts[VerifierSlot(model)];
  EXPECT_EQ(compared[static_cast<int>(ShadowComparison::kAgreed)], 2u);  // 1 and 4.
  EXPECT_EQ(compared[static_cast<int>(ShadowComparison::kWouldHaveFailed)], 1u);  // 2.
  EXPECT_EQ(compared[static_cast<int>(ShadowComparison::kWouldHavePassed)], 1u);  // 3.
  EXPECT_EQ(stats.verdict_failures[VerifierSlot(model)], 2u);
  const std::optional<TransactionStatus> status = engine.Query(2);
  ASSERT_TRUE(status.has_value());
  const StateChange* verdict = Find(*status, StateKind::kVerifierVerdict, model);
  ASSERT_NE(verdict, nullptr);
  EXPECT_FALSE(verdict->pass);
  EXPECT_EQ(verdict->verifier_code, kModelScoreHigh);
}

INSTANTIATE_TEST_SUITE_P(Modes, ShadowTest,
                         ::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                           PolicyMode::kSync),
                         [](const auto& info) { return std::string(PolicyModeName(info.param)); });

// A candidate rule set runs in shadow next to the live rules; promoting it is one journaled rule
// reload, which a restart replays for the transactions it judged.
class ShadowFraudRulesTest : public VerifierTestBase,
                             public ::testing::TestWithParam<AckPolicy> {
 protected:
  static constexpr uint64_t kCandidateBlocks = 777;
  std::unique_ptr<Engine> OpenWithCandidate(AckPolicy ack, const std::string& dir) {
    Options options = BankOptions(20);
    options.fraud_rules.velocity_enabled = false;
    fraud::FraudRules candidate = options.fraud_rules;
    candidate.blocked_merchants.push_back(kCandidateBlocks);
    options.shadow_fraud_rules = candidate;
    options.inline_mode = true;
    options.clock = &clock_;
    options.durability.ack = ack;
    if (ack != AckPolicy::kMemory) options.durability.dir = dir;
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
};

TEST_P(ShadowFraudRulesTest, TheCandidateShowsWhatItWouldFlagAndPromotingItMakesItLive) {
  const std::string dir = testing::EmptyTestDir("shadow_rules");
  auto engine = OpenWithCandidate(GetParam(), dir);
  ASSERT_NE(engine, nullptr);
  const VerifierId shadow = CustomVerifierId(0);
  EXPECT_EQ(engine->VerifierName(shadow), "fraud_shadow");
  Transaction flagged = Transfer(1, 1, 2, 100);
  flagged.merchant_id = kCandidateBlocks;
  ASSERT_EQ(engine->Submit(flagged).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine);
  std::vector<Outcome> outcomes = DrainOutcomes(*engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kVerified) << "the live rules pass it";
  EXPECT_EQ(engine->Stats().shadow_verdicts[VerifierSlot(shadow)]
                                           [static_cast<int>(ShadowComparison::kWouldHaveFailed)],
            1u);
  const std::optional<TransactionStatus> status = engine->Query(1);
  ASSERT_TRUE(status.has_value());
  const StateChange* verdict = Find(*status, StateKind::kVerifierVerdict, shadow);
  ASSERT_NE(verdict, nullptr);
  EXPECT_EQ(verdict->verifier_code, static_cast<uint16_t>(Reason::kBlockedMerchant));

  const absl::StatusOr<Sequence> from = engine->PromoteShadowFraudRules();
  ASSERT_TRUE(from.ok()) << from.status();
  EXPECT_EQ(*from, 2u);
  flagged.id = 2;
  ASSERT_EQ(engine->Submit(flagged).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine);
  outcomes = DrainOutcomes(*engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kLateFailed);
  EXPECT_EQ(outcomes[0].verifier, VerifierId::kFraud);
  EXPECT_EQ(outcomes[0].reason, Reason::kBlockedMerchant);
  EXPECT_EQ(engine->Stats().shadow_verdicts[VerifierSlot(shadow)]
                                           [static_cast<int>(ShadowComparison::kAgreed)],
            1u);
  if (GetParam() == AckPolicy::kMemory) return;
  EXPECT_TRUE(engine->Stop().drained);
  engine.reset();
  // The promotion was journaled where it applied: the replay judges 1 by the old rules and 2 by
  // the promoted ones, and both outcomes are kept as they were.
  engine = OpenWithCandidate(GetParam(), dir);
  ASSERT_NE(engine, nullptr);
  ExpectDecided(*engine, {Transaction{.id = 1}, true, VerifierId::kNone, 0}, false);
  const std::optional<TransactionStatus> second = engine->Query(2);
  ASSERT_TRUE(second.has_value());
  const StateChange* final_change = FinalChange(*second);
  ASSERT_NE(final_change, nullptr);
  EXPECT_EQ(final_change->kind, StateKind::kLateFailed);
  EXPECT_EQ(final_change->reason, Reason::kBlockedMerchant);
}

TEST(ShadowFraudRulesOptionsTest, NothingToPromoteWithoutShadowRules) {
  Options options = BankOptions(4);
  options.inline_mode = true;
  auto engine = Engine::Create(std::move(options));
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->Start().ok());
  EXPECT_EQ((*engine)->PromoteShadowFraudRules().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(AckPolicies, ShadowFraudRulesTest,
                         ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                           AckPolicy::kDurable),
                         [](const auto& info) { return std::string(AckPolicyName(info.param)); });

// --- Asynchronous verifiers ----------------------------------------------------------------------

// Keeps what it was handed; the test answers for it, in any order, when it likes.
class AnswersLater final : public AsyncVerifier {
 public:
  struct Handed {
    uint64_t seq;
    Transaction txn;
  };
  void Begin(uint64_t seq, const Transaction& txn, int64_t, VerdictSink& sink) override {
    handed.push_back({seq, txn});
    sink_ = &sink;
  }
  bool Answer(uint64_t seq, uint16_t code) { return sink_->Answer(seq, code); }
  std::vector<Handed> handed;

 private:
  VerdictSink* sink_ = nullptr;
};

class AsyncVerifierTest : public VerifierTestBase, public ::testing::Test {
 protected:
  std::unique_ptr<Engine> OpenAsync(VerifierPolicy policy, AckPolicy ack = AckPolicy::kMemory,
                                    const std::string& dir = "", size_t in_flight = 1 << 12) {
    Options options = BankOptions(20);
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = true;
    options.clock = &clock_;
    options.in_flight_capacity = in_flight;
    options.durability.ack = ack;
    if (ack != AckPolicy::kMemory) options.durability.dir = dir;
    options.verifiers.push_back({"screen", policy, false, -1, nullptr, screen_});
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
  static constexpr VerifierId kScreen = CustomVerifierId(0);
  std::shared_ptr<AnswersLater> screen_ = std::make_shared<AnswersLater>();
};

TEST_F(AsyncVerifierTest, AnswersInAnyOrderDecideTheirOwnTransactions) {
  auto engine = OpenAsync(VerifierPolicy::kRequired);
  for (uint64_t id = 1; id <= 4; ++id) {
    ASSERT_EQ(engine->Submit(Transfer(id, id, id + 10, 100)).status, ConfirmStatus::kConfirmed);
  }
  StepUntilIdle(*engine);
  ASSERT_EQ(screen_->handed.size(), 4u);
  EXPECT_TRUE(DrainOutcomes(*engine).empty()) << "the screen has not answered";
  // Backwards; 3 fails with the screen's own code.
  for (auto it = screen_->handed.rbegin(); it != screen_->handed.rend(); ++it) {
    ASSERT_TRUE(screen_->Answer(it->seq, it->txn.id == 3 ? 55 : 0));
  }
  StepUntilIdle(*engine);
  const std::vector<Outcome> outcomes = DrainOutcomes(*engine);
  ASSERT_EQ(outcomes.size(), 4u);
  for (const Outcome& outcome : outcomes) {  // Emitted in sequence order, whatever the answers'.
    if (outcome.id == 3) {
      EXPECT_EQ(outcome.kind, OutcomeKind::kLateFailed);
      EXPECT_EQ(outcome.verifier, kScreen);
      EXPECT_EQ(outcome.verifier_code, 55);
    } else {
      EXPECT_EQ(outcome.kind, OutcomeKind::kVerified) << outcome.id;
    }
  }
  EXPECT_EQ(engine->Stats().retired, 4u);
}

// A verifier that never answers cannot wedge the pipeline: each transaction times out at its
// deadline and its entry retires, many times round a ring of 16 entries. An answer after the
// entry retired is a late verdict in the history; a second one, or one for a seq never handed
// out, is ignored and counted.
TEST_F(AsyncVerifierTest, ANeverAnsweringVerifierTimesOutAndTheRingKeepsTurning) {
  auto engine = OpenAsync(VerifierPolicy::kRequired, AckPolicy::kMemory, "", 16);
  const int64_t deadline_ns = engine->options().verification_deadline_ns;
  uint64_t timeouts = 0;
  for (uint64_t id = 1; id <= 200; ++id) {
    ASSERT_EQ(engine->Submit(Transfer(id, 1 + id % 10, 11 + id % 10, 1)).status,
              ConfirmStatus::kConfirmed)
        << "a full ring would answer BUSY: " << id;
    StepUntilIdle(*engine);
    clock_.AdvanceNs(deadline_ns);
    StepUntilIdle(*engine);
    for (const Outcome& outcome : DrainOutcomes(*engine)) {
      EXPECT_EQ(outcome.kind, OutcomeKind::kLateTimeout);
      EXPECT_EQ(outcome.verifier, kScreen);
      ++timeouts;
    }
  }
  EXPECT_EQ(timeouts, 200u);
  EXPECT_EQ(engine->Stats().retired, 200u);
  ASSERT_TRUE(screen_->Answer(screen_->handed.back().seq, 9));  // Late, after retirement.
  ASSERT_TRUE(screen_->Answer(screen_->handed.back().seq, 0));  // A second answer.
  ASSERT_TRUE(screen_->Answer(10'000, 0));                       // Never handed out.
  StepUntilIdle(*engine);
  EXPECT_TRUE(DrainOutcomes(*engine).empty()) << "no second outcome";
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.late_verdicts, 1u);
  EXPECT_EQ(stats.ignored_answers, 2u);
  const std::optional<TransactionStatus> status = engine->Query(200);
  ASSERT_TRUE(status.has_value());
  const StateChange* late = Find(*status, StateKind::kLateVerdict, kScreen);
  ASSERT_NE(late, nullptr);
  EXPECT_FALSE(late->pass);
  EXPECT_EQ(late->verifier_code, 9);
}

TEST_F(AsyncVerifierTest, AnAdvisoryVerifierThatNeverAnswersHoldsNothingBack) {
  auto engine = OpenAsync(VerifierPolicy::kAdvisory, AckPolicy::kMemory, "", 16);
  for (uint64_t id = 1; id <= 100; ++id) {
    ASSERT_EQ(engine->Submit(Transfer(id, 1 + id % 10, 11 + id % 10, 1)).status,
              ConfirmStatus::kConfirmed);
    StepUntilIdle(*engine);
  }
  EXPECT_EQ(engine->Stats().retired, 100u);
  EXPECT_EQ(engine->Stats().outcomes[static_cast<int>(OutcomeKind::kVerified)], 100u);
  ASSERT_TRUE(screen_->Answer(screen_->handed.back().seq, 4));  // After it retired: recorded.
  StepUntilIdle(*engine);
  const std::optional<TransactionStatus> status = engine->Query(100);
  ASSERT_TRUE(status.has_value());
  const StateChange* verdict = Find(*status, StateKind::kVerifierVerdict, kScreen);
  ASSERT_NE(verdict, nullptr);
  EXPECT_EQ(verdict->verifier_code, 4);
  EXPECT_EQ(engine->Stats().late_verdicts, 0u);
}

TEST_F(AsyncVerifierTest, AfterACrashTheUnansweredAreHandedOutAgain) {
  const std::string dir = testing::EmptyTestDir("async_again");
  const std::string crashed = testing::EmptyTestDir("async_again_crashed");
  {
    auto engine = OpenAsync(VerifierPolicy::kRequired, AckPolicy::kWritten, dir);
    ASSERT_EQ(engine->Submit(Transfer(1, 1, 2, 100)).status, ConfirmStatus::kConfirmed);
    ASSERT_EQ(engine->Submit(Transfer(2, 3, 4, 100)).status, ConfirmStatus::kConfirmed);
    StepUntilIdle(*engine);
    ASSERT_TRUE(screen_->Answer(screen_->handed[0].seq, 0));
    StepUntilIdle(*engine);
    ASSERT_EQ(DrainOutcomes(*engine).size(), 1u);
    fs::copy(dir, crashed, fs::copy_options::recursive);
  }
  screen_ = std::make_shared<AnswersLater>();
  auto engine = OpenAsync(VerifierPolicy::kRequired, AckPolicy::kWritten, crashed);
  StepUntilIdle(*engine);
  ASSERT_EQ(screen_->handed.size(), 1u) << "only the undecided one";
  EXPECT_EQ(screen_->handed[0].txn.id, 2u);
  ASSERT_TRUE(screen_->Answer(screen_->handed[0].seq, 7));
  StepUntilIdle(*engine);
  ExpectDecided(*engine, {Transaction{.id = 2}, false, kScreen, 7}, false);
}

// Threads: the verifier answers from a thread of its own, while the stages run on theirs.
class WorkerPoolVerifier final : public AsyncVerifier {
 public:
  ~WorkerPoolVerifier() override { Join(); }
  void Begin(uint64_t seq, const Transaction& txn, int64_t, VerdictSink& sink) override {
    absl::MutexLock lock(&mu_);
    if (!worker_.joinable()) worker_ = std::thread([this] { Run(); });
    work_.push_back({seq, txn.amount_minor == 13 ? uint16_t{13} : uint16_t{0}});
    sink_ = &sink;
  }
  void Join() {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    if (worker_.joinable()) worker_.join();
  }

 private:
  void Run() {
    for (;;) {
      std::vector<std::pair<uint64_t, uint16_t>> batch;
      VerdictSink* sink = nullptr;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](WorkerPoolVerifier* v) { return v->done_ || !v->work_.empty(); }, this));
        if (work_.empty() && done_) return;
        batch.swap(work_);
        sink = sink_;
      }
      for (const auto& [seq, code] : batch) {
        while (!sink->Answer(seq, code)) std::this_thread::yield();
      }
    }
  }
  absl::Mutex mu_;
  std::vector<std::pair<uint64_t, uint16_t>> work_ ABSL_GUARDED_BY(mu_);
  VerdictSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

TEST(AsyncVerifierThreadsTest, AnswersFromAnotherThreadDecideEveryTransaction) {
  Options options = BankOptions(20);
  options.fraud_rules.velocity_enabled = false;
  options.verification_deadline_ns = 10'000'000'000;
  auto pool = std::make_shared<WorkerPoolVerifier>();
  options.verifiers.push_back({"pool", VerifierPolicy::kRequired, false, -1, nullptr, pool});
  auto engine = Engine::Create(std::move(options));
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_TRUE((*engine)->Start().ok());
  constexpr uint64_t kTransactions = 2'000;
  for (uint64_t id = 1; id <= kTransactions; ++id) {
    const int64_t amount = id % 100 == 0 ? 13 : 1;
    while ((*engine)->Submit(Transfer(id, 1 + id % 10, 11 + id % 10, amount)).status ==
           ConfirmStatus::kBusy) {
      std::this_thread::yield();
    }
  }
  EXPECT_TRUE((*engine)->Stop().drained);
  pool->Join();
  const EngineStats stats = (*engine)->Stats();
  EXPECT_EQ(stats.outcomes[static_cast<int>(OutcomeKind::kVerified)], kTransactions - 20);
  EXPECT_EQ(stats.outcomes[static_cast<int>(OutcomeKind::kLateFailed)], 20u);
  EXPECT_EQ(stats.retired, kTransactions);
}

// --- Options -------------------------------------------------------------------------------------

TEST(VerifierOptionsTest, BadRegistrationsAreRefusedAndNamed) {
  auto pass = std::make_shared<PassEverything>();
  auto refused = [&](std::vector<VerifierSpec> verifiers) {
    Options options = BankOptions(4);
    options.verifiers = std::move(verifiers);
    return options.Validate();
  };
  std::vector<VerifierSpec> seven;
  for (int i = 0; i < 7; ++i) seven.push_back({"v" + std::to_string(i), VerifierPolicy::kRequired, false, -1, pass});
  EXPECT_EQ(refused(seven).code(), absl::StatusCode::kInvalidArgument);
  seven.pop_back();
  EXPECT_TRUE(refused(seven).ok()) << refused(seven);
  for (const char* bad : {"", "Sanctions", "9lives", "fraud", "ledger", "none", "a-b",
                          "a_name_longer_than_thirty_two_chars"}) {
    const absl::Status status = refused({{bad, VerifierPolicy::kRequired, false, -1, pass}});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("verifiers"), std::string::npos) << status;
  }
  EXPECT_FALSE(refused({{"twice", VerifierPolicy::kRequired, false, -1, pass}, {"twice", VerifierPolicy::kRequired, false, -1, pass}}).ok());
  EXPECT_FALSE(refused({{"empty", VerifierPolicy::kRequired, false, -1, nullptr}}).ok());
  EXPECT_FALSE(refused({{"both", VerifierPolicy::kRequired, false, -1, pass,
                         std::make_shared<AnswersLater>()}})
                   .ok());
  EXPECT_FALSE(refused({{"odd", static_cast<VerifierPolicy>(9), false, -1, pass}}).ok());
  EXPECT_FALSE(refused({{"fraud_shadow", VerifierPolicy::kShadow, false, -1, pass}}).ok());
  EXPECT_FALSE(refused({{"holds", VerifierPolicy::kAdvisory, true, -1, pass}}).ok())
      << "an advisory verifier decides nothing, so it cannot hold accounts";
  // The shadow fraud rules take one of the six places.
  Options options = BankOptions(4);
  options.verifiers = seven;  // Six now.
  options.shadow_fraud_rules = options.fraud_rules;
  EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument);
  options.verifiers.pop_back();
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
}

}  // namespace
}  // namespace vouch
