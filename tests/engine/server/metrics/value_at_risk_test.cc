// The engine counters behind the value-at-risk metrics. Inline mode on a manual clock, so that
// every count is exact: nothing is decided until the test steps the pipeline.
#include <string>

#include "engine/engine.h"
#include "engine/reconcile/reconciler.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::kBlockedMerchant;
using testing::StepUntilIdle;
using testing::Transfer;

TEST(CurrencySlotTest, EverySupportedCurrencyAndNothingElseHasItsOwnSlot) {
  int used = 0;
  std::string code = "AAA";
  for (code[0] = 'A'; code[0] <= 'Z'; ++code[0]) {
    for (code[1] = 'A'; code[1] <= 'Z'; ++code[1]) {
      for (code[2] = 'A'; code[2] <= 'Z'; ++code[2]) {
        const CurrencyCode packed = PackCurrency(code);
        const int slot = CurrencySlot(packed);
        ASSERT_EQ(slot >= 0, IsSupportedCurrency(packed)) << code;
        if (slot < 0) continue;
        ++used;
        EXPECT_EQ(SlotCurrency(slot), packed) << code;
      }
    }
  }
  EXPECT_EQ(used, 12);
  EXPECT_EQ(CurrencySlot(0), -1);
  EXPECT_EQ(SlotCurrency(used), 0u);
  EXPECT_EQ(SlotCurrency(-1), 0u);
}

class ValueAtRiskTest : public ::testing::Test {
 protected:
  void StartEngine(Options options) {
    options.inline_mode = true;
    options.clock = &clock_;
    auto engine = Engine::Create(std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_TRUE(engine_->Start().ok());
  }
  int64_t AtRiskMinor(const char* currency) const {
    return engine_->Stats().value_at_risk_minor[CurrencySlot(PackCurrency(currency))];
  }

  ManualClock clock_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ValueAtRiskTest, ConfirmedAmountsAreAtRiskUntilTheirOutcomeWhateverItIs) {
  Options options = BankOptions(8);
  // Two empty EUR accounts: the ledger fails the transfer (insufficient funds).
  options.accounts.push_back({9, PackCurrency("EUR"), 0, 0});
  options.accounts.push_back({10, PackCurrency("EUR"), 0, 0});
  options.ledger_account_capacity = options.accounts.size();
  StartEngine(std::move(options));
  ASSERT_EQ(engine_->Submit(Transfer(1, 1, 2, 500)).status, ConfirmStatus::kConfirmed);
  Transaction fraud = Transfer(2, 3, 4, 300);
  fraud.merchant_id = kBlockedMerchant;
  ASSERT_EQ(engine_->Submit(fraud).status, ConfirmStatus::kConfirmed);
  Transaction euro = Transfer(3, 9, 10, 70);
  euro.currency = PackCurrency("EUR");
  ASSERT_EQ(engine_->Submit(euro).status, ConfirmStatus::kConfirmed);
  ASSERT_EQ(engine_->Submit(Transfer(4, 1, 1, 5)).status, ConfirmStatus::kRejected);

  EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.at_risk, 3u);
  EXPECT_EQ(AtRiskMinor("USD"), 800);
  EXPECT_EQ(AtRiskMinor("EUR"), 70);
  EXPECT_EQ(AtRiskMinor("GBP"), 0);

  clock_.AdvanceNs(1'000);
  StepUntilIdle(*engine_);
  stats = engine_->Stats();
  EXPECT_EQ(stats.outcomes_total(), 3u);
  EXPECT_EQ(stats.outcomes[static_cast<int>(OutcomeKind::kLateFailed)], 2u);
  EXPECT_EQ(stats.at_risk, 0u);
  for (int slot = 0; slot < kCurrencySlotCount; ++slot) {
    EXPECT_EQ(stats.value_at_risk_minor[slot], 0) << slot;
  }
  // All three were decided within the first bucket's bound (the clock moved 1 us).
  EXPECT_EQ(stats.confirm_to_outcome.at_or_below[0], 3u);
  EXPECT_EQ(stats.confirm_to_outcome.count, 3u);
  EXPECT_EQ(stats.confirm_to_outcome.sum_ns, 3'000u);
}

TEST_F(ValueAtRiskTest, TimedOutTransactionLeavesTheValueAtRisk) {
  StartEngine(BankOptions(4));
  EngineTestPeer::StallVerifier(*engine_, VerifierId::kLedger, 1'000'000'000'000);
  ASSERT_EQ(engine_->Submit(Transfer(1, 1, 2, 250)).status, ConfirmStatus::kConfirmed);
  StepUntilIdle(*engine_);
  EXPECT_EQ(engine_->Stats().at_risk, 1u);
  EXPECT_EQ(AtRiskMinor("USD"), 250);

  clock_.AdvanceNs(Options().verification_deadline_ns);
  StepUntilIdle(*engine_);
  const EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.outcomes[static_cast<int>(OutcomeKind::kLateTimeout)], 1u);
  EXPECT_EQ(stats.at_risk, 0u);
  EXPECT_EQ(AtRiskMinor("USD"), 0);
}

TEST_F(ValueAtRiskTest, HeldTransactionsAreNeverAtRisk) {
  Options options = BankOptions(4);
  options.policy.mode = PolicyMode::kHybrid;
  options.policy.hold_amount_minor_min = 10'000;
  StartEngine(std::move(options));
  // Held: Submit steps the pipeline itself and answers once the outcome is known.
  const Confirmation held = engine_->Submit(Transfer(1, 1, 2, 20'000));
  ASSERT_EQ(held.status, ConfirmStatus::kConfirmed);
  ASSERT_TRUE(held.held);
  ASSERT_EQ(engine_->Submit(Transfer(2, 3, 4, 40)).status, ConfirmStatus::kConfirmed);

  EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.held, 1u);
  EXPECT_EQ(stats.at_risk, 1u);
  EXPECT_EQ(AtRiskMinor("USD"), 40);
  StepUntilIdle(*engine_);
  stats = engine_->Stats();
  EXPECT_EQ(stats.at_risk, 0u);
  EXPECT_EQ(AtRiskMinor("USD"), 0);
}

}  // namespace
}  // namespace vouch
