// Histories and outcomes tell what happened in the order it happened, over real stage threads.
//
// Method: a threaded engine (real clock, every stage on its own thread) takes transactions from
// two submitter threads: most pass, some fail fraud (a blocked merchant, which holds the account)
// and some fail the ledger (more than the balance). Once drained, every confirmed transaction's
// Query history and Outcome are checked against causality: RECEIVED <= CONFIRMED (or HELD) <=
// every verdict <= the outcome (for the verdicts it was decided on) <= COMPENSATED, and
// Outcome.decided_ns >= Outcome.confirmed_ns; and the Outcome says "reversed" exactly when the
// history shows COMPENSATED. The suite runs over the stage batch size (how many
// transactions a verifier takes per turn, which is what made its clock reading stale), the ack
// policy and the policy mode.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::kBlockedMerchant;
using testing::kOpeningBalance;
using testing::Transfer;

namespace fs = std::filesystem;

using Param = std::tuple<int, AckPolicy, PolicyMode>;

class EngineHistoryTest : public ::testing::TestWithParam<Param> {
 protected:
  std::unique_ptr<Engine> Open() {
    const auto [batch_max, ack, mode] = GetParam();
    Options options = BankOptions(16);
    options.stage_batch_max = batch_max;
    options.fraud_rules.velocity_enabled = false;
    options.policy.mode = mode;
    options.policy.hold_amount_minor_min = 500;  // Hybrid: about a third are held.
    options.durability.ack = ack;
    if (ack != AckPolicy::kMemory) {
      options.durability.dir = testing::EmptyTestDir("engine_history_test");
    }
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
};

// Fraud failures hold accounts 1..3 early on; the rest pay among accounts 4..16.
Transaction Nth(uint64_t id) {
  if (id % 97 == 0) {
    Transaction txn = Transfer(id, 1 + id % 3, 4, 100);
    txn.merchant_id = kBlockedMerchant;
    return txn;
  }
  const uint64_t from = 4 + id % 13;
  const uint64_t to = 4 + (id + 5) % 13;
  const int64_t amount = id % 89 == 0 ? 2 * kOpeningBalance : 100 + static_cast<int64_t>(id % 900);
  return Transfer(id, from, to, amount);
}

TEST_P(EngineHistoryTest, EveryHistoryIsCausalAndEveryOutcomeIsDecidedAfterItsConfirmation) {
  constexpr int kThreads = 2;
  constexpr uint64_t kPerThread = 400;
  std::unique_ptr<Engine> engine = Open();
  ASSERT_NE(engine, nullptr);
  std::vector<std::thread> submitters;
  std::atomic<uint64_t> confirmed{0};
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (uint64_t i = 1; i <= kPerThread; ++i) {
        const Confirmation c = engine->Submit(Nth(t * kPerThread + i));
        // relaxed: a count read after the joins.
        if (c.seq != 0) confirmed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::thread& submitter : submitters) submitter.join();
  ASSERT_TRUE(engine->Stop().drained);
  const std::vector<Outcome> outcomes = DrainOutcomes(*engine);
  ASSERT_EQ(outcomes.size(), confirmed.load());
  int checked = 0;
  for (const Outcome& outcome : outcomes) {
    EXPECT_GE(outcome.decided_ns, outcome.confirmed_ns) << "seq " << outcome.seq;
    const std::optional<TransactionStatus> status = engine->Query(outcome.id);
    ASSERT_TRUE(status.has_value());
    ASSERT_TRUE(status->final);
    const std::vector<StateChange>& history = status->history;
    ASSERT_GE(history.size(), 5u);  // RECEIVED, CONFIRMED or HELD, two verdicts, the outcome.
    std::string trace;
    for (const StateChange& change : history) {
      trace += std::string(StateKindName(change.kind)) + "@" + std::to_string(change.at_ns) + " ";
    }
    EXPECT_EQ(history[0].kind, StateKind::kReceived) << trace;
    EXPECT_TRUE(history[1].kind == StateKind::kConfirmed || history[1].kind == StateKind::kHeld)
        << trace;
    const int64_t confirmed_ns = history[1].at_ns;
    EXPECT_EQ(confirmed_ns, outcome.confirmed_ns) << trace;
    for (size_t i = 1; i < history.size(); ++i) {
      EXPECT_LE(history[i - 1].at_ns, history[i].at_ns) << trace;
      const StateKind kind = history[i].kind;
      const bool verdict = kind == StateKind::kFraudVerdict || kind == StateKind::kLedgerVerdict ||
                           kind == StateKind::kLateVerdict;
      if (verdict) EXPECT_GE(history[i].at_ns, confirmed_ns) << trace;
      // The verdicts it was decided on come before the outcome; COMPENSATED after it.
      if (kind == StateKind::kFraudVerdict || kind == StateKind::kLedgerVerdict) {
        EXPECT_LE(history[i].at_ns, outcome.decided_ns) << trace;
      }
      if (kind == StateKind::kCompensated) EXPECT_GE(history[i].at_ns, outcome.decided_ns) << trace;
    }
    // The outcome says "reversed" exactly when the history shows the reversal.
    const bool compensated =
        std::any_of(history.begin(), history.end(),
                    [](const StateChange& c) { return c.kind == StateKind::kCompensated; });
    EXPECT_EQ(compensated, (outcome.compensation & kCompensationReversed) != 0) << trace;
    if (::testing::Test::HasFailure()) break;  // One trace tells the story.
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(outcomes.size()));
}

INSTANTIATE_TEST_SUITE_P(
    BatchAckMode, EngineHistoryTest,
    ::testing::Combine(::testing::Values(1, 16, 256),
                       ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                         AckPolicy::kDurable),
                       ::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                         PolicyMode::kSync)));

}  // namespace
}  // namespace vouch
