// FraudVerifier: the fraud rules through the StatefulVerifier contract, as the engine drives them.
// Each part of the contract is checked against FraudChecker used directly: codes are the fraud
// reasons' numbers, rules travel as the rules file text (bad text is refused, valid text switches
// rules), Replay moves the state as Check does, and SaveState/RestoreState carry it over.
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "engine/types/reason.h"
#include "engine/types/transaction.h"
#include "engine/verify/verifier.h"
#include "gtest/gtest.h"
#include "verifiers/fraud/fraud_checker.h"
#include "verifiers/fraud/fraud_rules.h"
#include "verifiers/fraud/fraud_verifier.h"
#include "verifiers/fraud/rules_file.h"

namespace vouch::fraud {
namespace {

constexpr int64_t kSecondNs = 1'000'000'000;

Transaction Payment(uint64_t id, uint64_t account, uint64_t merchant) {
  Transaction txn;
  txn.id = id;
  txn.source_account = account;
  txn.destination_account = account + 1;
  txn.amount_minor = 100;
  txn.currency = PackCurrency("USD");
  txn.merchant_id = merchant;
  txn.country = PackCountry("GB");
  return txn;
}

FraudRules TightVelocity() {
  FraudRules rules;
  rules.velocity_count_max = 3;
  rules.blocked_merchants = {666};
  return rules;
}

TEST(FraudVerifierTest, CodesAreTheFraudReasonsNumbers) {
  FraudVerifier verifier(TightVelocity(), 64);
  StatefulVerifier& contract = verifier;
  EXPECT_EQ(contract.Check(Payment(1, 10, 1), kSecondNs), 0);
  EXPECT_EQ(contract.Check(Payment(2, 10, 666), 2 * kSecondNs),
            static_cast<uint16_t>(Reason::kBlockedMerchant));
}

TEST(FraudVerifierTest, RulesTravelAsTheRulesFileText) {
  FraudVerifier verifier(FraudRules{}, 64);
  EXPECT_EQ(verifier.ValidateRules("velocity_count_max = 2\nno_such_rule = 1\n").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(verifier.ValidateRules("velocity_window_ms = -5\n").code(),
            absl::StatusCode::kInvalidArgument);
  const std::string tight = FormatFraudRules(TightVelocity());
  ASSERT_TRUE(verifier.ValidateRules(tight).ok());
  EXPECT_EQ(verifier.Check(Payment(1, 10, 666), kSecondNs), 0);  // Not blocked yet.
  verifier.ApplyRules(tight);
  EXPECT_EQ(verifier.Check(Payment(2, 10, 666), 2 * kSecondNs),
            static_cast<uint16_t>(Reason::kBlockedMerchant));
}

TEST(FraudVerifierTest, ReplayMovesTheStateAsCheckDoes) {
  FraudVerifier replayed(TightVelocity(), 64);
  FraudChecker direct(TightVelocity(), 64);
  for (uint64_t i = 1; i <= 3; ++i) {
    replayed.Replay(Payment(i, 10, 1), static_cast<int64_t>(i) * kSecondNs);
    (void)direct.Check(Payment(i, 10, 1), static_cast<int64_t>(i) * kSecondNs);
  }
  EXPECT_EQ(replayed.checker().StateHash(), direct.StateHash());
  // The fourth in the window is one too many, for both.
  EXPECT_EQ(replayed.Check(Payment(4, 10, 1), 4 * kSecondNs),
            static_cast<uint16_t>(direct.Check(Payment(4, 10, 1), 4 * kSecondNs)));
  EXPECT_NE(direct.Check(Payment(5, 10, 1), 5 * kSecondNs), Reason::kNone);
}

TEST(FraudVerifierTest, SavedStateRestoresIntoAnother) {
  FraudVerifier first(TightVelocity(), 64);
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(first.Check(Payment(i, 10, 1), static_cast<int64_t>(i) * kSecondNs), 0);
  }
  std::string state;
  ASSERT_TRUE(first.SaveState(&state).ok());
  FraudVerifier second(TightVelocity(), 64);
  ASSERT_TRUE(second.RestoreState(state).ok());
  EXPECT_EQ(second.checker().StateHash(), first.checker().StateHash());
  EXPECT_NE(second.Check(Payment(4, 10, 1), 4 * kSecondNs), 0);  // It remembers the three.
  EXPECT_EQ(second.RestoreState("not a snapshot").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vouch::fraud
