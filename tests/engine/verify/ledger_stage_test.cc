// LedgerStage's balance-read mailbox, driven by hand: the stage is stepped with DoWork() on the
// test's thread (or not at all), so when a read is served is under the test's control.
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "engine/ring/in_flight_ring.h"
#include "engine/types/clock.h"
#include "engine/verify/queues.h"
#include "engine/verify/verifier_stage.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "engine/ledger/ledger.h"

namespace vouch {
namespace {

using vouch::testing::kOpeningBalance;
using vouch::testing::kUsd;

class LedgerStageTest : public ::testing::Test {
 protected:
  LedgerStageTest()
      : ledger_(8, 64),
        ring_(64),
        verdicts_(64),
        settlements_(64),
        stage_(&ledger_, &settlements_, &ring_, &verdicts_, &clock_, 16) {
    for (uint64_t id = 1; id <= 3; ++id) {
      EXPECT_TRUE(ledger_.OpenAccount({id, kUsd, kOpeningBalance, 500}).ok());
    }
    snapshot_.accounts.reserve(kBalanceReadAccountsMax);
  }
  absl::Status ReadStepping(absl::Span<const uint64_t> accounts) {
    return stage_.ReadBalances(accounts, &snapshot_, absl::ZeroDuration(),
                               [this] { stage_.DoWork(); });
  }

  ManualClock clock_;
  ledger::Ledger ledger_;
  InFlightRing ring_;
  VerdictQueue verdicts_;
  SettlementQueue settlements_;
  LedgerStage stage_;
  BalanceSnapshot snapshot_;
};

TEST_F(LedgerStageTest, ReadsEveryAccountAndTheTotals) {
  ASSERT_EQ(ledger_.Reserve(1, testing::Transfer(7, 1, 2, 300)), Reason::kNone);
  ASSERT_TRUE(ReadStepping({}).ok());
  ASSERT_EQ(snapshot_.accounts.size(), 3u);
  EXPECT_EQ(snapshot_.accounts[0].id, 1u);
  EXPECT_EQ(snapshot_.accounts[0].balance_minor, kOpeningBalance - 300);
  EXPECT_EQ(snapshot_.accounts[0].overdraft_limit_minor, 500);
  ASSERT_EQ(snapshot_.currencies.size(), 1u);
  EXPECT_EQ(snapshot_.currencies[0].currency, kUsd);
  EXPECT_EQ(snapshot_.currencies[0].total_minor, 3 * kOpeningBalance);
  EXPECT_EQ(snapshot_.currencies[0].clearing_minor, 300);
  EXPECT_FALSE(snapshot_.truncated);
  EXPECT_EQ(stage_.read_counters().served, 1u);
}

TEST_F(LedgerStageTest, ReadsTheAccountsAskedForAndLeavesOutUnknownOnes) {
  const uint64_t accounts[] = {3, 99, 1};
  ASSERT_TRUE(ReadStepping(accounts).ok());
  ASSERT_EQ(snapshot_.accounts.size(), 2u);
  EXPECT_EQ(snapshot_.accounts[0].id, 3u);
  EXPECT_EQ(snapshot_.accounts[1].id, 1u);
}

TEST_F(LedgerStageTest, ServesReadsWhileStalled) {
  stage_.StallFor(60'000'000'000);
  EXPECT_TRUE(ReadStepping({}).ok());
  EXPECT_EQ(snapshot_.accounts.size(), 3u);
}

TEST_F(LedgerStageTest, TimesOutAndTakesTheReadBack) {
  const absl::Status status =
      stage_.ReadBalances({}, &snapshot_, absl::Milliseconds(5), [] {});
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_EQ(stage_.DoWork(), 0) << "a read taken back must not be served";
  EXPECT_EQ(stage_.read_counters().timed_out, 1u);
}

TEST_F(LedgerStageTest, RefusesTooManyAccounts) {
  const std::vector<uint64_t> accounts(kBalanceReadAccountsMax + 1, 1);
  EXPECT_TRUE(absl::IsInvalidArgument(ReadStepping(accounts)));
}

TEST_F(LedgerStageTest, RefusesReadsBeyondTheSlotsAsBusy) {
  std::vector<BalanceSnapshot> snapshots(kBalanceReadSlots);
  std::vector<absl::Status> results(kBalanceReadSlots);
  std::vector<std::thread> readers;
  std::atomic<int> posted{0};  // kick runs after the post. seq_cst: a test, keep it simple.
  for (int i = 0; i < kBalanceReadSlots; ++i) {
    readers.emplace_back([&, i] {
      results[i] = stage_.ReadBalances({}, &snapshots[i], absl::Seconds(30), [&] { ++posted; });
    });
  }
  while (posted.load() < kBalanceReadSlots) absl::SleepFor(absl::Milliseconds(1));
  const absl::Status extra = stage_.ReadBalances({}, &snapshot_, absl::Seconds(30), [] {});
  EXPECT_TRUE(absl::IsUnavailable(extra)) << extra;
  EXPECT_EQ(stage_.DoWork(), kBalanceReadSlots);
  for (std::thread& reader : readers) reader.join();
  for (const absl::Status& result : results) EXPECT_TRUE(result.ok()) << result;
  EXPECT_EQ(stage_.read_counters().busy, 1u);
  EXPECT_EQ(stage_.read_counters().served, static_cast<uint64_t>(kBalanceReadSlots));
}

// The engine's entry point in inline mode: a read steps the pipeline and sees the money moved.
TEST(EngineBalanceReadTest, InlineReadSeesConservedMoney) {
  Options options = testing::BankOptions(4);
  options.inline_mode = true;
  auto engine = Engine::Create(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_TRUE((*engine)->Start().ok());
  ASSERT_EQ((*engine)->Submit(testing::Transfer(1, 1, 2, 250)).status, ConfirmStatus::kConfirmed);
  BalanceSnapshot snapshot;
  for (int i = 0; i < 100; ++i) (*engine)->Step();
  ASSERT_TRUE((*engine)->ReadBalances({}, &snapshot, absl::Seconds(1)).ok());
  ASSERT_EQ(snapshot.accounts.size(), 4u);
  EXPECT_EQ(snapshot.accounts[0].balance_minor, kOpeningBalance - 250);
  EXPECT_EQ(snapshot.accounts[1].balance_minor, kOpeningBalance + 250);
  EXPECT_EQ(snapshot.currencies[0].clearing_minor, 0);
  EXPECT_EQ(snapshot.currencies[0].total_minor, 4 * kOpeningBalance);
  (void)(*engine)->Stop();
}

}  // namespace
}  // namespace vouch
