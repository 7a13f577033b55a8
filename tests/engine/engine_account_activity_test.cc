// Engine::AccountTransactions: an account's recent transactions, newest first, each with its
// state now, in every policy mode and ack policy, and across a restart.
//
// Method. An inline engine (the test steps every stage, so each state can be seen before and
// after verification) takes transactions of account 1 as source and as destination: ones that
// pass, one the ledger fails (more than the balance) and one fraud fails (a blocked merchant),
// and a refusal (never sequenced). Before any stage runs, each listed transaction is pending,
// or held where the policy holds it (hybrid: amounts >= 500; sync: all); once idle, each is
// final: VERIFIED, LATE_FAILED (or, held, REJECTED) with the failing verifier's reason. Paging
// by limit and before_seq and a time range read the same list. With a journal, a restart
// starts the index empty (oldest_kept_seq says where it starts) while Query(id) still knows
// the earlier transactions. A threaded case has two submitters race on one account and checks
// the list against every confirmed seq.
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::kBlockedMerchant;
using testing::kOpeningBalance;
using testing::StepUntilIdle;
using testing::Transfer;

using Param = std::tuple<PolicyMode, AckPolicy>;

class EngineAccountActivityTest : public ::testing::TestWithParam<Param> {
 protected:
  Options MakeOptions(bool inline_mode) {
    const auto [mode, ack] = GetParam();
    Options options = BankOptions(8);
    options.inline_mode = inline_mode;
    options.fraud_rules.velocity_enabled = false;
    options.policy.mode = mode;
    options.policy.hold_amount_minor_min = 500;
    options.durability.ack = ack;
    if (ack != AckPolicy::kMemory) {
      if (dir_.empty()) dir_ = testing::EmptyTestDir("engine_account_activity_test");
      options.durability.dir = dir_;
    }
    return options;
  }
  std::unique_ptr<Engine> Open(bool inline_mode = true) {
    auto engine = Engine::Create(MakeOptions(inline_mode));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
  bool Held(int64_t amount_minor) const {
    const PolicyMode mode = std::get<0>(GetParam());
    return mode == PolicyMode::kSync || (mode == PolicyMode::kHybrid && amount_minor >= 500);
  }
  std::string dir_;
};

std::vector<uint64_t> Ids(const AccountTransactionsPage& page) {
  std::vector<uint64_t> ids;
  for (const AccountTransaction& txn : page.transactions) ids.push_back(txn.id);
  return ids;
}

TEST_P(EngineAccountActivityTest, ListsDebitsAndCreditsNewestFirstWithTheirStateNow) {
  std::unique_ptr<Engine> engine = Open();
  ASSERT_NE(engine, nullptr);
  std::vector<Transaction> txns = {
      Transfer(11, 1, 2, 100),                  // Passes.
      Transfer(12, 3, 1, 200),                  // A credit of account 1; passes.
      Transfer(13, 1, 4, 600),                  // Passes; held in hybrid.
      Transfer(14, 1, 5, 2 * kOpeningBalance),  // The ledger fails it.
      Transfer(15, 6, 1, 100),                  // A credit; fraud fails it (holds account 6).
  };
  txns[4].merchant_id = kBlockedMerchant;
  for (const Transaction& txn : txns) {
    // AckWait::kCaller: an inline Submit that waits for the journal steps every stage.
    const Confirmation c = engine->Submit(txn, 0, AckWait::kCaller, HeldAnswer::kLater);
    ASSERT_NE(c.seq, 0u) << txn.id;
  }
  // Refused synchronously: not sequenced, never listed (Query finds it).
  ASSERT_EQ(engine->Submit(Transfer(16, 1, 2, 0), 0, AckWait::kCaller).status,
            ConfirmStatus::kRejected);

  AccountTransactionsPage page = engine->AccountTransactions({.account = 1});
  ASSERT_EQ(Ids(page), (std::vector<uint64_t>{15, 14, 13, 12, 11}));
  EXPECT_FALSE(page.more);
  for (const AccountTransaction& txn : page.transactions) {
    EXPECT_EQ(txn.debit, txn.id != 12 && txn.id != 15) << txn.id;
    EXPECT_EQ(txn.held, Held(txn.amount_minor)) << txn.id;
    EXPECT_EQ(txn.state, txn.held ? AccountTxnState::kHeld : AccountTxnState::kPending) << txn.id;
    EXPECT_EQ(txn.decided_unix_ns, 0);
    EXPECT_GT(txn.received_unix_ns, 0);
  }
  const AccountTransaction& credit = page.transactions[3];
  EXPECT_EQ(credit.source_account, 3u);
  EXPECT_EQ(credit.destination_account, 1u);
  EXPECT_EQ(credit.amount_minor, 200);
  EXPECT_EQ(credit.currency, testing::kUsd);

  StepUntilIdle(*engine);
  (void)testing::DrainOutcomes(*engine);
  page = engine->AccountTransactions({.account = 1});
  ASSERT_EQ(Ids(page), (std::vector<uint64_t>{15, 14, 13, 12, 11}));
  for (const AccountTransaction& txn : page.transactions) {
    EXPECT_GE(txn.decided_unix_ns, txn.received_unix_ns) << txn.id;
    const AccountTxnState failed =
        txn.held ? AccountTxnState::kRejected : AccountTxnState::kLateFailed;
    switch (txn.id) {
      case 14:
        EXPECT_EQ(txn.state, failed);
        EXPECT_EQ(txn.reason, Reason::kInsufficientFunds);
        EXPECT_EQ(txn.verifier, VerifierId::kLedger);
        break;
      case 15:
        EXPECT_EQ(txn.state, failed);
        EXPECT_EQ(txn.reason, Reason::kBlockedMerchant);
        EXPECT_EQ(txn.verifier, VerifierId::kFraud);
        break;
      default:
        EXPECT_EQ(txn.state, AccountTxnState::kVerified) << txn.id;
        EXPECT_EQ(txn.reason, Reason::kNone);
    }
  }
  // Account 2 sees only its credit.
  EXPECT_EQ(Ids(engine->AccountTransactions({.account = 2})), (std::vector<uint64_t>{11}));
  EXPECT_TRUE(engine->AccountTransactions({.account = 7}).transactions.empty());
  EXPECT_TRUE(engine->Stop().drained);
}

TEST_P(EngineAccountActivityTest, PagesByLimitAndBeforeSeqAndFiltersByReceivedTime) {
  std::unique_ptr<Engine> engine = Open();
  ASSERT_NE(engine, nullptr);
  for (uint64_t id = 1; id <= 7; ++id) {
    ASSERT_NE(engine->Submit(Transfer(id, 1, 2, 10), 0, AckWait::kInSubmit, HeldAnswer::kLater)
                  .seq,
              0u);
  }
  std::vector<uint64_t> all;
  AccountTransactionsQuery query{.account = 1, .limit = 3};
  for (int pages = 0; pages < 5; ++pages) {
    const AccountTransactionsPage page = engine->AccountTransactions(query);
    const std::vector<uint64_t> ids = Ids(page);
    ASSERT_LE(ids.size(), 3u);
    all.insert(all.end(), ids.begin(), ids.end());
    if (!page.more) break;
    query.before_seq = page.next_before_seq;
  }
  EXPECT_EQ(all, (std::vector<uint64_t>{7, 6, 5, 4, 3, 2, 1}));

  const AccountTransactionsPage every = engine->AccountTransactions({.account = 1});
  const int64_t since = every.transactions[4].received_unix_ns;  // id 3
  const int64_t until = every.transactions[1].received_unix_ns;  // id 6
  const AccountTransactionsPage range =
      engine->AccountTransactions({.account = 1, .since_unix_ns = since, .until_unix_ns = until});
  ASSERT_FALSE(range.transactions.empty());
  for (const AccountTransaction& txn : range.transactions) {
    EXPECT_GE(txn.received_unix_ns, since);
    EXPECT_LE(txn.received_unix_ns, until);
  }
  const std::vector<uint64_t> ids = Ids(range);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 3u), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), 6u), ids.end());
  EXPECT_EQ(std::find(ids.begin(), ids.end(), 7u), ids.end());
  StepUntilIdle(*engine);
  EXPECT_TRUE(engine->Stop().drained);
}

TEST_P(EngineAccountActivityTest, RestartStartsTheIndexEmptyAndSaysWhere) {
  if (std::get<1>(GetParam()) == AckPolicy::kMemory) GTEST_SKIP() << "no journal to restart on";
  Sequence last = 0;
  {
    std::unique_ptr<Engine> engine = Open();
    ASSERT_NE(engine, nullptr);
    for (uint64_t id = 1; id <= 3; ++id) {
      last = engine->Submit(Transfer(id, 1, 2, 10), 0, AckWait::kInSubmit, HeldAnswer::kLater).seq;
      ASSERT_NE(last, 0u);
    }
    StepUntilIdle(*engine);
    EXPECT_EQ(engine->AccountTransactions({.account = 1}).transactions.size(), 3u);
    EXPECT_TRUE(engine->Stop().drained);
  }
  std::unique_ptr<Engine> engine = Open();
  ASSERT_NE(engine, nullptr);
  AccountTransactionsPage page = engine->AccountTransactions({.account = 1});
  EXPECT_TRUE(page.transactions.empty());
  EXPECT_EQ(page.oldest_kept_seq, last + 1);
  EXPECT_TRUE(engine->Query(1).has_value()) << "Query still knows the earlier life's ids";
  const Confirmation c =
      engine->Submit(Transfer(4, 2, 1, 10), 0, AckWait::kInSubmit, HeldAnswer::kLater);
  ASSERT_EQ(c.seq, last + 1);
  StepUntilIdle(*engine);
  page = engine->AccountTransactions({.account = 1});
  EXPECT_EQ(Ids(page), (std::vector<uint64_t>{4}));
  EXPECT_EQ(page.transactions[0].state, AccountTxnState::kVerified);
  EXPECT_FALSE(page.transactions[0].debit);
  EXPECT_TRUE(engine->Stop().drained);
}

// Every account's chain starts in its own record, so there is no table of heads to fill: 1,000
// transfers over 2,000 distinct accounts are each listed for both of their accounts.
TEST_P(EngineAccountActivityTest, EveryAccountIsChainedHoweverManyTransact) {
  constexpr uint64_t kTransfers = 1'000;
  Options options = MakeOptions(/*inline_mode=*/true);
  options.ledger_account_capacity = 2 * kTransfers;
  options.accounts.clear();
  for (uint64_t id = 1; id <= 2 * kTransfers; ++id) {
    options.accounts.push_back({id, testing::kUsd, kOpeningBalance, 0});
  }
  auto created = Engine::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<Engine> engine = std::move(*created);
  ASSERT_TRUE(engine->Start().ok());
  for (uint64_t id = 1; id <= kTransfers; ++id) {
    ASSERT_NE(engine->Submit(Transfer(id, 2 * id - 1, 2 * id, 10), 0, AckWait::kCaller,
                             HeldAnswer::kLater)
                  .seq,
              0u);
  }
  StepUntilIdle(*engine);
  for (uint64_t account = 1; account <= 2 * kTransfers; ++account) {
    const AccountTransactionsPage page = engine->AccountTransactions({.account = account});
    ASSERT_EQ(Ids(page), (std::vector<uint64_t>{(account + 1) / 2})) << account;
    EXPECT_EQ(page.transactions[0].debit, account % 2 == 1);
    EXPECT_EQ(page.transactions[0].state, AccountTxnState::kVerified);
  }
  EXPECT_TRUE(engine->Stop().drained);
}

TEST_P(EngineAccountActivityTest, RacingSubmittersOnOneAccountAreAllListedInSeqOrder) {
  std::unique_ptr<Engine> engine = Open(/*inline_mode=*/false);
  ASSERT_NE(engine, nullptr);
  constexpr uint64_t kPerThread = 200;
  std::vector<std::thread> threads;
  std::vector<std::vector<Sequence>> seqs(2);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        const uint64_t id = 1 + t * kPerThread + i;
        const Confirmation c = engine->Submit(Transfer(id, t == 0 ? 1 : 2, t == 0 ? 2 : 1, 10),
                                              0, AckWait::kInSubmit, HeldAnswer::kLater);
        if (c.seq != 0) seqs[t].push_back(c.seq);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<Sequence> want = seqs[0];
  want.insert(want.end(), seqs[1].begin(), seqs[1].end());
  std::sort(want.rbegin(), want.rend());
  ASSERT_FALSE(want.empty());
  std::vector<Sequence> got;
  for (const AccountTransaction& txn : engine->AccountTransactions({.account = 1}).transactions) {
    got.push_back(txn.seq);
  }
  EXPECT_EQ(got, want);
  EXPECT_TRUE(engine->Stop().drained);
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  static constexpr const char* kModes[] = {"Async", "Hybrid", "Sync"};
  static constexpr const char* kAcks[] = {"Memory", "Written", "Durable"};
  return std::string(kModes[static_cast<int>(std::get<0>(info.param))]) +
         kAcks[static_cast<int>(std::get<1>(info.param))];
}

INSTANTIATE_TEST_SUITE_P(
    Modes, EngineAccountActivityTest,
    ::testing::Combine(::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                         PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                         AckPolicy::kDurable)),
    ParamName);

}  // namespace
}  // namespace vouch
