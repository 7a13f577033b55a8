// Concurrency: 4 producer threads submit 1,000,000 random transfers to a threaded engine
// (100,000 under ASan or TSan, which run it 10-30x slower; that still races every path).
//
// Method: each producer draws transfers from its own seeded generator; one in 50 reuses an id
// from another producer's range, so that the same id races from two threads. BUSY answers are
// retried. The sink (called on the reconciler thread) counts outcomes per sequence number.
// After Stop() drains, the test checks: every confirmation got exactly one outcome, no id was
// confirmed twice as new, and the sum of balances (clearing included) is unchanged with clearing
// back at zero.
#include <atomic>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/config.h"
#include "engine/engine.h"
#include "engine/reconcile/reconciler.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::kOpeningBalance;
using testing::kUsd;
using testing::Transfer;

constexpr int kProducers = 4;
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER)
constexpr uint64_t kPerProducer = 25'000;
#else
constexpr uint64_t kPerProducer = 250'000;
#endif
constexpr uint64_t kAccounts = 1000;

class CountingSink final : public OutcomeSink {
 public:
  explicit CountingSink(size_t max_seq) : per_seq_(max_seq + 1, 0) {}
  void OnOutcome(const Outcome& outcome) override {  // Reconciler thread only.
    ASSERT_LT(outcome.seq, per_seq_.size());
    ++per_seq_[outcome.seq];
    ++total_;
  }
  const std::vector<uint8_t>& per_seq() const { return per_seq_; }
  uint64_t total() const { return total_; }

 private:
  std::vector<uint8_t> per_seq_;
  uint64_t total_ = 0;
};

TEST(EngineConcurrencyTest, FourProducersAMillionTransfers) {
  CountingSink sink(kProducers * kPerProducer);
  Options options = BankOptions(kAccounts);
  options.in_flight_capacity = 1 << 14;
  options.idempotency_window = 1 << 21;  // Holds every id of the run.
  options.history_capacity = 1 << 16;
  options.fraud_account_capacity = 1 << 12;
  options.fraud_rules.velocity_enabled = false;  // Random transfers are not fraud.
  options.fraud_rules.anomaly_enabled = false;
  options.fraud_rules.travel_enabled = false;
  options.outcome_sink = &sink;
  auto created = Engine::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  Engine& engine = **created;
  ASSERT_TRUE(engine.Start().ok());

  std::vector<std::vector<uint8_t>> new_confirmations(kProducers);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937_64 rng(1234 + p);
      std::vector<uint8_t>& mine = new_confirmations[p];
      mine.assign(kProducers * kPerProducer + 1, 0);
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        uint64_t id = 1 + p * kPerProducer + i;
        if (rng() % 50 == 0) id = 1 + ((p + 1) % kProducers) * kPerProducer + i;  // Race.
        // The fields follow from the id, so that a raced id is the same transaction (with
        // other fields it would be refused id_reused_with_different_fields).
        std::mt19937_64 fields(id);
        const uint64_t from = 1 + fields() % kAccounts;
        const uint64_t to = 1 + (from + fields() % (kAccounts - 1)) % kAccounts;
        const Transaction txn = Transfer(id, from, to, 1 + fields() % 20'000);
        for (;;) {
          const Confirmation c = engine.Submit(txn);
          if (c.status == ConfirmStatus::kBusy) {
            std::this_thread::yield();
            continue;
          }
          ASSERT_EQ(c.status, ConfirmStatus::kConfirmed);
          if (!c.duplicate) ++mine[id];
          break;
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  const DrainReport report = engine.Stop();
  ASSERT_TRUE(report.drained) << report.not_drained << " not drained";

  // Each id confirmed as new by at most one producer, and at least one.
  for (uint64_t id = 1; id <= kProducers * kPerProducer; ++id) {
    int news = 0;
    for (int p = 0; p < kProducers; ++p) news += new_confirmations[p][id];
    ASSERT_LE(news, 1) << "id " << id << " applied twice";
  }
  const EngineStats stats = engine.Stats();
  EXPECT_EQ(stats.confirmed, report.confirmed);
  EXPECT_EQ(sink.total(), stats.confirmed);
  for (Sequence seq = 1; seq <= report.confirmed; ++seq) {
    ASSERT_EQ(sink.per_seq()[seq], 1) << "seq " << seq;
  }
  EXPECT_EQ(EngineTestPeer::Ledger(engine).TotalMinor(kUsd),
            static_cast<int64_t>(kAccounts) * kOpeningBalance);
  EXPECT_EQ(EngineTestPeer::Ledger(engine).ClearingMinor(kUsd), 0);
  EXPECT_EQ(EngineTestPeer::Ledger(engine).pending_count(), 0u);
  EXPECT_GT(stats.duplicates, 0u) << "the id races happened";
  std::printf("confirmed=%lu duplicates=%lu busy=%lu outcomes=%lu\n", (unsigned long)stats.confirmed,
              (unsigned long)stats.duplicates, (unsigned long)stats.busy_total(),
              (unsigned long)stats.outcomes_total());
}

// Refusals from four threads race into the journal's refusal ring (64 slots, so it laps and
// fills: BUSY is retried). Each Submit returns only once its refusal is kept; after a restart
// every refused id is refused again as a duplicate.
TEST(EngineConcurrencyTest, RefusalsFromFourThreadsAreKeptBeforeTheyAreTold) {
  constexpr uint64_t kRefusalsPerProducer = kPerProducer / 50;
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/refusals";
  auto open = [&] {
    Options options = BankOptions(8);
    options.in_flight_capacity = 64;
    options.amount_minor_max = 1'000;
    options.durability.ack = AckPolicy::kWritten;
    options.durability.dir = dir;
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  };
  {
    std::unique_ptr<Engine> engine = open();
    std::atomic<uint64_t> unkept{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&, p] {
        for (uint64_t i = 1; i <= kRefusalsPerProducer; ++i) {
          const Transaction txn = Transfer(uint64_t(p + 1) << 32 | i, 1, 2, 5'000);
          Confirmation c = engine->Submit(txn);
          while (c.status == ConfirmStatus::kBusy) c = engine->Submit(txn);
          ASSERT_EQ(c.reason, Reason::kOverLimit);
          if (EngineTestPeer::Journal(*engine)->refusals_acked() < c.ack.refused) unkept.fetch_add(1);
        }
      });
    }
    for (auto& producer : producers) producer.join();
    EXPECT_EQ(unkept.load(), 0u) << "a refusal was told before it was kept";
    EXPECT_TRUE(engine->Stop().drained);
  }
  std::unique_ptr<Engine> engine = open();
  EXPECT_EQ(engine->recovery().refused, kProducers * kRefusalsPerProducer);
  for (int p = 0; p < kProducers; ++p) {
    for (uint64_t i = 1; i <= kRefusalsPerProducer; ++i) {
      const Confirmation c = engine->Submit(Transfer(uint64_t(p + 1) << 32 | i, 1, 2, 5'000));
      ASSERT_TRUE(c.duplicate);
      ASSERT_EQ(c.reason, Reason::kOverLimit);
    }
  }
  EXPECT_TRUE(engine->Stop().drained);
}

}  // namespace
}  // namespace vouch
