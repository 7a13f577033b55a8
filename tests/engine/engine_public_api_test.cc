// The embedding API (engine/engine.h) is narrow: it pulls in none of the stages' headers, so an
// embedder compiles against the interface, its options, results and the verifier contract only.
// Each check below fails the build, not the run, if a change makes engine.h include a stage's
// header again; the test then drives an engine through the interface alone.
#include "engine/engine.h"

#ifdef VOUCH_ENGINE_INTERNAL_ENGINE_IMPL_H_
#error "engine/engine.h includes engine/internal/engine_impl.h"
#endif
#ifdef VOUCH_ENGINE_RING_IN_FLIGHT_RING_H_
#error "engine/engine.h includes the in-flight ring"
#endif
#ifdef VOUCH_ENGINE_RECONCILE_RECONCILER_H_
#error "engine/engine.h includes the reconciler"
#endif
#ifdef VOUCH_ENGINE_JOURNAL_STAGE_JOURNAL_STAGE_H_
#error "engine/engine.h includes the journal stage"
#endif
#ifdef VOUCH_ENGINE_JOURNAL_RECORDS_H_
#error "engine/engine.h includes the journal's records"
#endif
#ifdef VOUCH_ENGINE_VERIFY_VERIFIER_STAGE_H_
#error "engine/engine.h includes the verifier stages"
#endif
#ifdef VOUCH_ENGINE_VERIFY_QUEUES_H_
#error "engine/engine.h includes the inter-stage queues"
#endif
#ifdef VOUCH_ENGINE_INGEST_IDEMPOTENCY_TABLE_H_
#error "engine/engine.h includes the idempotency table"
#endif
#ifdef VOUCH_ENGINE_INGEST_RISK_TABLE_H_
#error "engine/engine.h includes the risk table"
#endif
#ifdef VOUCH_ENGINE_ACCOUNTS_ACCOUNT_DIRECTORY_H_
#error "engine/engine.h includes the account directory"
#endif
#ifdef VOUCH_ENGINE_LEDGER_LEDGER_H_
#error "engine/engine.h includes the ledger"
#endif
#ifdef VOUCH_ENGINE_HISTORY_HISTORY_RING_H_
#error "engine/engine.h includes the history ring"
#endif
#ifdef VOUCH_ENGINE_HISTORY_ACCOUNT_ACTIVITY_H_
#error "engine/engine.h includes the account activity index"
#endif
#ifdef VOUCH_ENGINE_RECOVERY_SNAPSHOT_H_
#error "engine/engine.h includes the snapshotter"
#endif
#ifdef VOUCH_ENGINE_AGENT_AGENT_RUNNER_H_
#error "engine/engine.h includes the agent runner"
#endif
#ifdef VOUCH_ENGINE_AGENT_IDLE_STRATEGY_H_
#error "engine/engine.h includes the idle strategy"
#endif
#ifdef VOUCH_VERIFIERS_FRAUD_FRAUD_CHECKER_H_
#error "engine/engine.h includes the fraud checker"
#endif

#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace vouch {
namespace {

// A check of the embedder's own, registered through the public contract.
class RefusesAmountsOver final : public Verifier {
 public:
  explicit RefusesAmountsOver(int64_t max_minor) : max_minor_(max_minor) {}
  uint16_t Check(const Transaction& txn, int64_t /*confirmed_ns*/) override {
    return txn.amount_minor > max_minor_ ? 7 : 0;
  }

 private:
  const int64_t max_minor_;
};

TEST(EnginePublicApiTest, AnEngineIsDrivenThroughTheInterfaceAlone) {
  Options options;
  options.inline_mode = true;
  options.in_flight_capacity = 1 << 10;
  options.idempotency_window = 1 << 12;
  options.history_capacity = 1 << 12;
  options.fraud_account_capacity = 1 << 10;
  options.ledger_account_capacity = 2;
  const CurrencyCode usd = PackCurrency("USD");
  options.accounts.push_back({1, usd, 10'000, 0});
  options.accounts.push_back({2, usd, 0, 0});
  options.verifiers.push_back(
      {"amount_cap", VerifierPolicy::kRequired, false, -1,
       std::make_shared<RefusesAmountsOver>(500)});
  absl::StatusOr<std::unique_ptr<Engine>> created = Engine::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  Engine& engine = **created;
  ASSERT_TRUE(engine.Start().ok());

  Transaction small;
  small.id = 1;
  small.source_account = 1;
  small.destination_account = 2;
  small.amount_minor = 100;
  small.currency = usd;
  small.merchant_id = 1;
  Transaction large = small;
  large.id = 2;
  large.amount_minor = 900;
  EXPECT_EQ(engine.Submit(small).status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(engine.Submit(large).status, ConfirmStatus::kConfirmed);
  while (engine.Step() > 0) {}

  std::vector<Outcome> outcomes(4);
  outcomes.resize(engine.PollOutcomes(outcomes.data(), outcomes.size()));
  ASSERT_EQ(outcomes.size(), 2u);
  for (const Outcome& outcome : outcomes) {
    if (outcome.id == 1) {
      EXPECT_EQ(outcome.kind, OutcomeKind::kVerified);
    } else {
      EXPECT_EQ(outcome.kind, OutcomeKind::kLateFailed);
      EXPECT_EQ(engine.VerifierName(outcome.verifier), "amount_cap");
      EXPECT_EQ(outcome.verifier_code, 7);
    }
  }
  const EngineStats stats = engine.Stats();
  EXPECT_EQ(stats.confirmed, 2u);
  EXPECT_FALSE(stats.journal);  // Ack policy memory: no journal.
  EXPECT_TRUE(engine.Stop().drained);
}

}  // namespace
}  // namespace vouch
