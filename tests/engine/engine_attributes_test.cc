// Transaction attributes (engine/types/transaction.h): the embedder's opaque bytes reach every
// verifier with the transaction, are journaled, come back in Query, count for idempotency, and
// are refused at ingest when too long; in every policy mode and ack policy, across a clean
// restart and a crash.
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
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

constexpr uint16_t kSegmentBlocked = 11;  // The screen's own code.
constexpr VerifierId kScreen = CustomVerifierId(0);

// Fails every transaction whose attributes start with "blocked", and remembers what it saw.
class SegmentScreen final : public Verifier {
 public:
  uint16_t Check(const Transaction& txn, int64_t) override {
    absl::MutexLock lock(&mu_);
    seen_.emplace_back(txn.attributes.view());
    return txn.attributes.view().substr(0, 7) == "blocked" ? kSegmentBlocked : 0;
  }
  std::vector<std::string> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

Transaction WithAttributes(uint64_t id, uint64_t from, uint64_t to, std::string_view attributes) {
  Transaction txn = Transfer(id, from, to, 100);
  txn.attributes.Assign(attributes);
  return txn;
}

enum class Restart { kClean, kCrash };

class AttributesTest
    : public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy, Restart>> {
 protected:
  std::unique_ptr<Engine> Open(const std::string& dir) {
    const auto [mode, ack, restart] = GetParam();
    Options options = BankOptions(20);
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = true;
    options.clock = &clock_;
    options.policy.mode = mode;
    options.durability.ack = ack;
    if (ack != AckPolicy::kMemory) options.durability.dir = dir;
    options.verifiers.push_back({"screen", VerifierPolicy::kRequired, false, -1, screen_});
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }

  // The final state Query shows, and the attributes it returns.
  static void ExpectQuery(const Engine& engine, uint64_t id, StateKind final_kind,
                          std::string_view attributes) {
    const std::optional<TransactionStatus> status = engine.Query(id);
    ASSERT_TRUE(status.has_value()) << id;
    EXPECT_TRUE(status->final) << id;
    EXPECT_EQ(status->attributes.view(), attributes) << id;
    bool found = false;
    for (const StateChange& change : status->history) found |= change.kind == final_kind;
    EXPECT_TRUE(found) << id << " never reached " << static_cast<int>(final_kind);
  }

  ManualClock clock_;
  std::shared_ptr<SegmentScreen> screen_ = std::make_shared<SegmentScreen>();
};

TEST_P(AttributesTest, AttributesReachTheVerifierAreJournaledAndReturnedByQuery) {
  const auto [mode, ack, restart] = GetParam();
  const bool held = mode == PolicyMode::kSync;  // Hybrid holds nothing this small.
  const StateKind failed = held ? StateKind::kRejected : StateKind::kLateFailed;
  const std::string dir = testing::EmptyTestDir("live");
  const std::string crashed = testing::EmptyTestDir("crashed");
  const std::string longest(kAttributesBytesMax, 'z');
  {
    auto engine = Open(dir);
    ASSERT_NE(engine, nullptr);
    EXPECT_EQ(engine->Submit(WithAttributes(1, 1, 2, "segment=gold")).status,
              ConfirmStatus::kConfirmed);
    const Confirmation blocked = engine->Submit(WithAttributes(2, 3, 4, "blocked:ofac"));
    EXPECT_EQ(blocked.status, held ? ConfirmStatus::kRejected : ConfirmStatus::kConfirmed);
    EXPECT_EQ(engine->Submit(Transfer(3, 5, 6, 100)).status, ConfirmStatus::kConfirmed);
    EXPECT_EQ(engine->Submit(WithAttributes(4, 7, 8, longest)).status,
              ConfirmStatus::kConfirmed);
    // One byte too many: refused at ingest, and stored as the id's answer.
    const Confirmation oversize =
        engine->Submit(WithAttributes(5, 9, 10, std::string(kAttributesBytesMax + 1, 'z')));
    EXPECT_EQ(oversize.status, ConfirmStatus::kRejected);
    EXPECT_EQ(oversize.reason, Reason::kMalformedAttributes);
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    EXPECT_EQ(screen_->seen(),
              (std::vector<std::string>{"segment=gold", "blocked:ofac", "", longest}));
    ExpectQuery(*engine, 1, StateKind::kVerified, "segment=gold");
    ExpectQuery(*engine, 2, failed, "blocked:ofac");
    ExpectQuery(*engine, 3, StateKind::kVerified, "");
    ExpectQuery(*engine, 4, StateKind::kVerified, longest);
    // Idempotency compares them: the same id with other attributes is another request.
    const Confirmation altered = engine->Submit(WithAttributes(1, 1, 2, "segment=iron"));
    EXPECT_EQ(altered.reason, Reason::kIdReusedWithDifferentFields);
    EXPECT_TRUE(engine->Submit(WithAttributes(1, 1, 2, "segment=gold")).duplicate);
    // A transaction the screen has not judged yet (its stage stalled) is undecided at the
    // restart, and asked about again with its attributes.
    EngineTestPeer::StallVerifier(*engine, kScreen,
                                  1'000 * engine->options().verification_deadline_ns);
    // kLater: a held one's answer would wait for the stalled screen.
    EXPECT_EQ(engine->Submit(WithAttributes(6, 11, 12, "blocked:late"), 0, AckWait::kInSubmit,
                             HeldAnswer::kLater)
                  .status,
              held ? ConfirmStatus::kPending : ConfirmStatus::kConfirmed);
    for (int i = 0; i < 5; ++i) engine->StepStage(InlineStage::kJournal);
    if (ack == AckPolicy::kMemory) return;
    if (restart == Restart::kCrash) {
      fs::copy(dir, crashed, fs::copy_options::recursive);
    } else {
      (void)engine->Stop();  // Not drained: the screen never judged transaction 6.
    }
  }
  screen_ = std::make_shared<SegmentScreen>();  // A new process, a new verifier.
  auto engine = Open(restart == Restart::kCrash ? crashed : dir);
  ASSERT_NE(engine, nullptr);
  StepUntilIdle(*engine);
  DrainOutcomes(*engine);
  ExpectQuery(*engine, 1, StateKind::kVerified, "segment=gold");
  ExpectQuery(*engine, 2, failed, "blocked:ofac");
  ExpectQuery(*engine, 4, StateKind::kVerified, longest);
  EXPECT_EQ(engine->Submit(WithAttributes(5, 9, 10, std::string(25, 'z'))).reason,
            Reason::kMalformedAttributes);
  EXPECT_EQ(engine->Submit(WithAttributes(1, 1, 2, "segment=iron")).reason,
            Reason::kIdReusedWithDifferentFields)
      << "the fingerprint with the attributes survived the restart";
  EXPECT_EQ(screen_->seen(), std::vector<std::string>{"blocked:late"})
      << "the undecided transaction is asked about again, with its attributes";
  if (!held) ExpectQuery(*engine, 6, StateKind::kLateFailed, "blocked:late");
}

INSTANTIATE_TEST_SUITE_P(
    ModesAndAckPolicies, AttributesTest,
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

TEST(AttributesTypeTest, AssignKeepsAtMostTheMaximumAndMarksMore) {
  TransactionAttributes attributes;
  EXPECT_TRUE(attributes.view().empty());
  attributes.Assign("k=v");
  EXPECT_EQ(attributes.view(), "k=v");
  attributes.Assign(std::string(kAttributesBytesMax + 1, 'x'));
  EXPECT_EQ(attributes.size, TransactionAttributes::kOversize);
  EXPECT_TRUE(attributes.view().empty());
  // Without attributes the fingerprint is what it was before they existed; with, it differs.
  Transaction plain = Transfer(1, 1, 2, 100);
  Transaction tagged = plain;
  tagged.attributes.Assign("a");
  EXPECT_NE(ContentFingerprint(plain), ContentFingerprint(tagged));
  Transaction other = plain;
  other.attributes.Assign("b");
  EXPECT_NE(ContentFingerprint(tagged), ContentFingerprint(other));
}

}  // namespace
}  // namespace vouch
