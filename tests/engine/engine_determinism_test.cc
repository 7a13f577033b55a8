// Inline mode is deterministic: the same seed gives identical confirmations, outcomes, ledger
// and fraud state. The stream mixes fraud, insufficient funds, duplicates and a stall, and the
// manual clock advances by seeded steps, so deadlines fire too.
#include <random>
#include <vector>

#include "engine/engine.h"
#include "engine/testing/engine_test_peer.h"
#include "engine/types/mix.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::kBlockedMerchant;
using testing::Transfer;

struct RunResult {
  uint64_t answer_hash = 0;
  uint64_t outcome_hash = 0;
  uint64_t ledger_hash = 0;
  uint64_t fraud_hash = 0;
  uint64_t outcomes = 0;
};

uint64_t Mix(uint64_t h, uint64_t v) { return Mix64(h ^ v); }

RunResult RunSeed(uint64_t seed) {
  ManualClock clock;
  Options options = BankOptions(64);
  options.inline_mode = true;
  options.clock = &clock;
  options.verification_deadline_ns = 5'000'000;
  auto engine = std::move(*Engine::Create(options));
  EXPECT_TRUE(engine->Start().ok());
  std::mt19937_64 rng(seed);
  RunResult result;
  Outcome batch[128];
  for (uint64_t i = 1; i <= 20'000; ++i) {
    const uint64_t id = rng() % 10 == 0 ? 1 + rng() % i : i;  // Some duplicates.
    const uint64_t from = 1 + rng() % 64;
    Transaction txn = Transfer(id, from, 1 + (from + 1 + rng() % 62) % 64, 1 + rng() % 400'000);
    if (rng() % 100 == 0) txn.merchant_id = kBlockedMerchant;
    if (rng() % 2000 == 0) EngineTestPeer::StallVerifier(*engine, VerifierId::kFraud, 8'000'000);
    const Confirmation c = engine->Submit(txn);
    result.answer_hash = Mix(result.answer_hash, uint64_t(c.status) << 56 | uint64_t(c.reason) << 48 | c.seq);
    if (rng() % 4 == 0) (void)engine->ReleaseHold(1 + rng() % 64);
    clock.AdvanceNs(rng() % 20'000);
    engine->Step();
    for (size_t n; (n = engine->PollOutcomes(batch, 128)) > 0;) {
      for (size_t k = 0; k < n; ++k) {
        const Outcome& o = batch[k];
        result.outcome_hash = Mix(result.outcome_hash, o.seq << 16 | uint64_t(o.kind) << 8 | uint64_t(o.reason));
        result.outcome_hash = Mix(result.outcome_hash, uint64_t(o.decided_ns));
        ++result.outcomes;
      }
    }
  }
  clock.AdvanceNs(100'000'000);
  (void)engine->Stop();
  for (size_t n; (n = engine->PollOutcomes(batch, 128)) > 0;) result.outcomes += n;
  result.ledger_hash = EngineTestPeer::Ledger(*engine).StateHash();
  result.fraud_hash = EngineTestPeer::FraudChecker(*engine).StateHash();
  return result;
}

TEST(EngineDeterminismTest, SameSeedSameEverything) {
  const RunResult a = RunSeed(42);
  const RunResult b = RunSeed(42);
  EXPECT_EQ(a.answer_hash, b.answer_hash);
  EXPECT_EQ(a.outcome_hash, b.outcome_hash);
  EXPECT_EQ(a.ledger_hash, b.ledger_hash);
  EXPECT_EQ(a.fraud_hash, b.fraud_hash);
  EXPECT_EQ(a.outcomes, b.outcomes);
  EXPECT_GT(a.outcomes, 5'000u);
  const RunResult c = RunSeed(43);
  EXPECT_NE(a.outcome_hash, c.outcome_hash) << "the hash does depend on the stream";
}

}  // namespace
}  // namespace vouch
