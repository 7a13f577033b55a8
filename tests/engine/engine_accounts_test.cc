// Accounts created at run time: CreateAccounts (created, retried, different fields, invalid,
// table full), the synchronous refusals of transactions on unknown, mismatched, frozen and closed
// accounts and over a per-account limit (per transaction, and daily amount and count), the two
// balance flags enforced by the ledger, closing
// (refused with money or with transactions in flight), and every account change across a
// restart and from a snapshot.
//
// Method: engines run inline with a manual clock, so every step is deterministic; each suite is
// parameterised over the policy mode (async, hybrid, sync) and the ack policy (memory, written,
// durable). The restart suite runs with written and durable: the engine is stopped and a new one
// opened on the same data directory, with the same configured accounts.
#include <string>
#include <tuple>

#include "engine/engine.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::kOpeningBalance;
using testing::kUsd;
using testing::StepUntilIdle;
using testing::Transfer;

const CurrencyCode kEur = PackCurrency("EUR");
constexpr size_t kConfigured = 4;  // Accounts 1..4 from Options::accounts.

NewAccount Account(uint64_t id, int64_t opening_minor = 0, uint32_t flags = 0,
                   int64_t overdraft_minor = 0) {
  NewAccount a;
  a.id = id;
  a.currency = kUsd;
  a.opening_balance_minor = opening_minor;
  a.overdraft_limit_minor = overdraft_minor;
  a.flags = flags;
  a.user_data = id + 1000;
  return a;
}

class AccountsTestBase {
 protected:
  std::unique_ptr<Engine> Open(PolicyMode mode, AckPolicy ack, const std::string& dir,
                               size_t account_capacity = 64, uint64_t snapshot_records = 0) {
    Options options = BankOptions(kConfigured);
    options.account_capacity = account_capacity;
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = true;
    options.clock = &clock_;
    options.policy.mode = mode;
    options.durability.ack = ack;
    options.durability.snapshot_interval_records = snapshot_records;
    options.durability.segment_bytes_max = 64 * 1024;  // ~600 records: closed segments.
    if (ack != AckPolicy::kMemory) options.durability.dir = dir;
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }

  static std::vector<CreateResult> Create(Engine& engine, const std::vector<NewAccount>& batch) {
    std::vector<CreateResult> results;
    const absl::Status status = engine.CreateAccounts(batch, &results);
    EXPECT_TRUE(status.ok()) << status;
    return results;
  }

  // The transaction's fate whatever the mode: kNone if verified, else the ingest refusal or
  // the verification failure's reason.
  static Reason Fate(Engine& engine, const Transaction& txn) {
    const Confirmation c = engine.Submit(txn);
    EXPECT_NE(c.status, ConfirmStatus::kBusy) << ReasonName(c.reason);
    StepUntilIdle(engine);
    const std::vector<Outcome> outcomes = DrainOutcomes(engine);
    if (c.status == ConfirmStatus::kRejected) return c.reason;
    for (const Outcome& o : outcomes) {
      if (o.id == txn.id) return o.kind == OutcomeKind::kVerified ? Reason::kNone : o.reason;
    }
    ADD_FAILURE() << "no outcome for " << txn.id;
    return Reason::kNone;
  }

  static int64_t Balance(Engine& engine, uint64_t id) {
    absl::StatusOr<AccountInfo> info = engine.LookupAccount(id);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->balance_minor : -1;
  }

  ManualClock clock_;
};

class AccountsTest : public AccountsTestBase,
                     public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy>> {
 protected:
  std::unique_ptr<Engine> OpenParam(size_t account_capacity = 64) {
    const auto [mode, ack] = GetParam();
    return Open(mode, ack, testing::EmptyTestDir("accounts"), account_capacity);
  }
};

TEST_P(AccountsTest, CreateRetryDifferentFieldsInvalidAndFull) {
  std::unique_ptr<Engine> engine = OpenParam(/*account_capacity=*/kConfigured + 3);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->account_count(), kConfigured);
  NewAccount both_flags = Account(30);
  both_flags.flags = kAccountFlagsKnown;
  NewAccount bad_currency = Account(31);
  bad_currency.currency = PackCurrency("ZZZ");
  const std::vector<NewAccount> batch = {Account(10, 500), Account(11), Account(0), both_flags,
                                         bad_currency, Account(12, -1)};
  EXPECT_EQ(Create(*engine, batch),
            (std::vector<CreateResult>{CreateResult::kCreated, CreateResult::kCreated,
                                       CreateResult::kInvalid, CreateResult::kInvalid,
                                       CreateResult::kInvalid, CreateResult::kInvalid}));
  // The same batch again: the first answers, nothing created twice.
  EXPECT_EQ(Create(*engine, batch)[0], CreateResult::kExists);
  EXPECT_EQ(Create(*engine, batch)[1], CreateResult::kExists);
  EXPECT_EQ(engine->account_count(), kConfigured + 2);
  // A configured account is an account like the others.
  EXPECT_EQ(Create(*engine, {Account(1)})[0], CreateResult::kExistsWithDifferentFields);
  NewAccount other = Account(10, 500);
  other.user_data = 7;
  EXPECT_EQ(Create(*engine, {other})[0], CreateResult::kExistsWithDifferentFields);
  // Capacity 7: one more fits, then every creation is refused, counted.
  EXPECT_EQ(Create(*engine, {Account(13), Account(14), Account(15)}),
            (std::vector<CreateResult>{CreateResult::kCreated, CreateResult::kTableFull,
                                       CreateResult::kTableFull}));
  EXPECT_EQ(engine->Stats().account_table_full, 2u);
  EXPECT_EQ(engine->Stats().accounts, kConfigured + 3);
  absl::StatusOr<AccountInfo> info = engine->LookupAccount(10);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->fields, Account(10, 500));
  EXPECT_EQ(info->balance_minor, 500);
  EXPECT_EQ(info->state, AccountState::kOpen);
  ASSERT_EQ(info->history.size(), 1u);
  EXPECT_EQ(info->history[0].kind, AccountChange::Kind::kCreated);
  EXPECT_EQ(engine->LookupAccount(99).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(AccountsTest, TransactionsOnUnknownMismatchedFrozenAndClosedAccounts) {
  std::unique_ptr<Engine> engine = OpenParam();
  ASSERT_NE(engine, nullptr);
  NewAccount euro = Account(21);
  euro.currency = kEur;
  ASSERT_EQ(Create(*engine, {Account(20), euro}),
            (std::vector<CreateResult>{CreateResult::kCreated, CreateResult::kCreated}));
  // A run-time account takes money and gives it back.
  EXPECT_EQ(Fate(*engine, Transfer(1, 1, 20, 300)), Reason::kNone);
  EXPECT_EQ(Balance(*engine, 20), 300);
  EXPECT_EQ(Fate(*engine, Transfer(2, 20, 2, 100)), Reason::kNone);
  EXPECT_EQ(Balance(*engine, 20), 200);
  EXPECT_EQ(Balance(*engine, 2), kOpeningBalance + 100);
  EXPECT_EQ(Fate(*engine, Transfer(3, 1, 99, 1)), Reason::kUnknownAccount);
  EXPECT_EQ(Fate(*engine, Transfer(4, 99, 1, 1)), Reason::kUnknownAccount);
  EXPECT_EQ(Fate(*engine, Transfer(5, 1, 21, 1)), Reason::kCurrencyMismatch);
  // Frozen: refused as source and as destination, until unfrozen.
  ASSERT_TRUE(engine->FreezeAccount(20).ok());
  ASSERT_TRUE(engine->FreezeAccount(20).ok());  // Already frozen: OK.
  EXPECT_EQ(Fate(*engine, Transfer(6, 20, 1, 1)), Reason::kAccountFrozen);
  EXPECT_EQ(Fate(*engine, Transfer(7, 1, 20, 1)), Reason::kAccountFrozen);
  // A stored refusal: the same id keeps its answer after the unfreeze.
  ASSERT_TRUE(engine->UnfreezeAccount(20).ok());
  EXPECT_EQ(engine->Submit(Transfer(6, 20, 1, 1)).reason, Reason::kAccountFrozen);
  EXPECT_EQ(Fate(*engine, Transfer(8, 20, 1, 1)), Reason::kNone);
  // Closing: refused while it holds money; accepted at zero; then final.
  EXPECT_EQ(engine->CloseAccount(20).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Fate(*engine, Transfer(9, 20, 1, 199)), Reason::kNone);
  ASSERT_TRUE(engine->CloseAccount(20).ok());
  ASSERT_TRUE(engine->CloseAccount(20).ok());  // Closing a closed one is OK.
  EXPECT_EQ(Fate(*engine, Transfer(10, 1, 20, 1)), Reason::kAccountClosed);
  EXPECT_EQ(Fate(*engine, Transfer(11, 20, 1, 1)), Reason::kAccountClosed);
  EXPECT_EQ(engine->FreezeAccount(20).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->FreezeAccount(99).code(), absl::StatusCode::kNotFound);
  absl::StatusOr<AccountInfo> info = engine->LookupAccount(20);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, AccountState::kClosed);
  std::vector<AccountChange::Kind> kinds;
  for (const AccountChange& change : info->history) kinds.push_back(change.kind);
  EXPECT_EQ(kinds, (std::vector<AccountChange::Kind>{
                       AccountChange::Kind::kCreated, AccountChange::Kind::kFrozen,
                       AccountChange::Kind::kUnfrozen, AccountChange::Kind::kClosed}));
  // Money is conserved: the run-time account's opening balance (0) is all it added.
  absl::StatusOr<AccountInfo> one = engine->LookupAccount(1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->balance_minor + Balance(*engine, 2), 2 * kOpeningBalance);
}

TEST_P(AccountsTest, PerAccountTransactionLimit) {
  std::unique_ptr<Engine> engine = OpenParam();
  ASSERT_NE(engine, nullptr);
  NewAccount limited = Account(20, 1'000);
  limited.limits.transaction_minor_max = 100;
  ASSERT_EQ(Create(*engine, {limited})[0], CreateResult::kCreated);
  EXPECT_EQ(Fate(*engine, Transfer(1, 20, 1, 101)), Reason::kOverLimit);
  EXPECT_EQ(Fate(*engine, Transfer(2, 20, 1, 100)), Reason::kNone);
  ASSERT_TRUE(engine->SetAccountLimits(20, {.transaction_minor_max = 500}).ok());
  EXPECT_EQ(Fate(*engine, Transfer(3, 20, 1, 400)), Reason::kNone);
  EXPECT_EQ(engine->SetAccountLimits(20, {.transaction_minor_max = -1}).code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<AccountInfo> info = engine->LookupAccount(20);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->fields.limits.transaction_minor_max, 500);
  EXPECT_EQ(info->history.back().kind, AccountChange::Kind::kLimitsChanged);
}

// Daily limits: refused at once past the day's amount or count, with their own reasons; a
// refusal charges nothing; the next UTC day starts from zero; a limit set during the day counts
// what the day has spent already.
TEST_P(AccountsTest, DailyAmountAndCountLimits) {
  std::unique_ptr<Engine> engine = OpenParam();
  ASSERT_NE(engine, nullptr);
  NewAccount limited = Account(20, 10'000);
  limited.limits.daily_minor_max = 1'000;
  limited.limits.daily_count_max = 3;
  ASSERT_EQ(Create(*engine, {limited, Account(21, 10'000)}),
            std::vector<CreateResult>(2, CreateResult::kCreated));
  EXPECT_EQ(Fate(*engine, Transfer(1, 20, 1, 600)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(2, 20, 1, 401)), Reason::kDailyAmountLimit);
  EXPECT_EQ(Fate(*engine, Transfer(3, 20, 1, 300)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(4, 20, 1, 1)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(5, 20, 1, 1)), Reason::kDailyCountLimit);
  // A stored refusal: the same id answers the same, also once the day has room again.
  EXPECT_EQ(engine->Submit(Transfer(5, 20, 1, 1)).reason, Reason::kDailyCountLimit);
  EXPECT_EQ(engine->Stats().rejected[static_cast<int>(Reason::kDailyAmountLimit)], 1u);
  EXPECT_EQ(engine->Stats().rejected[static_cast<int>(Reason::kDailyCountLimit)], 1u);
  // Credits into the account are not its spending.
  EXPECT_EQ(Fate(*engine, Transfer(6, 1, 20, 5'000)), Reason::kNone);
  clock_.AdvanceNs(int64_t{86'400} * 1'000'000'000);  // The next UTC day.
  EXPECT_EQ(Fate(*engine, Transfer(7, 20, 1, 1'000)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(8, 20, 1, 1)), Reason::kDailyAmountLimit);
  // Account 21 had no limit; one set now counts what it spent today.
  EXPECT_EQ(Fate(*engine, Transfer(9, 21, 1, 700)), Reason::kNone);
  ASSERT_TRUE(engine->SetAccountLimits(21, {.daily_minor_max = 1'000}).ok());
  EXPECT_EQ(Fate(*engine, Transfer(10, 21, 1, 301)), Reason::kDailyAmountLimit);
  EXPECT_EQ(Fate(*engine, Transfer(11, 21, 1, 300)), Reason::kNone);
  EXPECT_EQ(engine->SetAccountLimits(21, {.daily_minor_max = DailyUsage::kMinorMax + 1}).code(),
            absl::StatusCode::kInvalidArgument);
}

// The UTC day is the one of the engine's clock: a ManualClock's fixed Unix offset, not this
// process's real one, so that a run crossing midnight crosses it at the same clock time in every
// process. Here the clock puts now 1 s before midnight of 2026-12-04, whatever the real time:
// the count limit is spent, 2 s later it is a new day. The Unix times the engine reports use the
// same offset. Fails on an engine that takes its offset from MonotonicToUnixOffsetNs().
TEST_P(AccountsTest, TheUtcDayIsTheClocks) {
  constexpr int64_t kSecondNs = 1'000'000'000;
  constexpr int64_t kMidnightUnixNs = int64_t{20'791} * 86'400 * kSecondNs;  // 2026-12-04.
  const int64_t offset_ns = kMidnightUnixNs - kSecondNs - clock_.NowNs();
  clock_.SetUnixOffsetNs(offset_ns);
  std::unique_ptr<Engine> engine = OpenParam();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->unix_offset_ns(), offset_ns);
  NewAccount limited = Account(20, 10'000);
  limited.limits.daily_count_max = 1;
  ASSERT_EQ(Create(*engine, {limited})[0], CreateResult::kCreated);
  EXPECT_EQ(Fate(*engine, Transfer(1, 20, 1, 10)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(2, 20, 1, 10)), Reason::kDailyCountLimit);
  clock_.AdvanceNs(2 * kSecondNs);  // 00:00:01 on the clock's day.
  EXPECT_EQ(Fate(*engine, Transfer(3, 20, 1, 10)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(4, 20, 1, 10)), Reason::kDailyCountLimit);
  // Received on the clock's Unix timeline: only id 3 since midnight.
  const AccountTransactionsPage page =
      engine->AccountTransactions({.account = 20, .since_unix_ns = kMidnightUnixNs});
  ASSERT_EQ(page.transactions.size(), 1u);
  EXPECT_EQ(page.transactions[0].id, 3u);
  EXPECT_EQ(page.transactions[0].received_unix_ns, clock_.NowNs() + offset_ns);
}

TEST_P(AccountsTest, BalanceFlags) {
  std::unique_ptr<Engine> engine = OpenParam();
  ASSERT_NE(engine, nullptr);
  // Debits must not exceed credits: the overdraft is ignored.
  ASSERT_EQ(Create(*engine, {Account(20, 100, kAccountDebitsMustNotExceedCredits, 1'000),
                             Account(21, -100, kAccountCreditsMustNotExceedDebits, 1'000)}),
            (std::vector<CreateResult>{CreateResult::kCreated, CreateResult::kCreated}));
  EXPECT_EQ(Fate(*engine, Transfer(1, 20, 1, 101)), Reason::kInsufficientFunds);
  EXPECT_EQ(Fate(*engine, Transfer(2, 20, 1, 100)), Reason::kNone);
  EXPECT_EQ(Balance(*engine, 20), 0);
  // Credits must not exceed debits: the balance never goes above 0.
  EXPECT_EQ(Fate(*engine, Transfer(3, 1, 21, 101)), Reason::kCreditsExceedDebits);
  EXPECT_EQ(Fate(*engine, Transfer(4, 1, 21, 100)), Reason::kNone);
  EXPECT_EQ(Balance(*engine, 21), 0);
  EXPECT_EQ(Fate(*engine, Transfer(5, 1, 21, 1)), Reason::kCreditsExceedDebits);
  EXPECT_EQ(Fate(*engine, Transfer(6, 21, 1, 500)), Reason::kNone);  // Debits: the overdraft.
  EXPECT_EQ(Balance(*engine, 21), -500);
}

// A transaction in flight blocks a close, which then leaves the account as it was.
TEST_P(AccountsTest, CloseWithATransactionInFlightIsRefusedAndReverted) {
  std::unique_ptr<Engine> engine = OpenParam();
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(Create(*engine, {Account(20)})[0], CreateResult::kCreated);
  // The ledger never runs (manual clock): a transfer into the account stays in flight.
  EngineTestPeer::StallVerifier(*engine, VerifierId::kLedger, 1'000'000'000'000);
  const Confirmation c = engine->Submit(Transfer(1, 1, 20, 5), 0, AckWait::kInSubmit,
                                        HeldAnswer::kLater);
  ASSERT_NE(c.status, ConfirmStatus::kBusy);
  EXPECT_EQ(engine->CloseAccount(20, absl::Milliseconds(20)).code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<AccountInfo> info = engine->LookupAccount(20, absl::Milliseconds(20));
  ASSERT_TRUE(info.ok()) << info.status();  // Balance reads are served by a stalled ledger.
  EXPECT_EQ(info->state, AccountState::kOpen);
  EXPECT_EQ(info->history.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    ModesAndAcks, AccountsTest,
    ::testing::Combine(::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                         PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                         AckPolicy::kDurable)));

// --- Across a restart -----------------------------------------------------------------------

class AccountsRestartTest
    : public AccountsTestBase,
      public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy, bool>> {
 protected:
  // Enough records to close a segment (ids 1000..1699, account 3 pays 4), then a snapshot,
  // which covers that segment: the restart then starts from the snapshot.
  static void WriteSnapshot(Engine& engine) {
    for (uint64_t id = 1'000; id < 1'700; ++id) {
      ASSERT_EQ(engine.Submit(Transfer(id, 3, 4, 1)).status, ConfirmStatus::kConfirmed);
    }
    StepUntilIdle(engine);
    DrainOutcomes(engine);
    ASSERT_TRUE(engine.PollSnapshot().ok());
  }
};

TEST_P(AccountsRestartTest, AccountsAndTheirChangesSurvive) {
  const auto [mode, ack, snapshot] = GetParam();
  const std::string dir = testing::EmptyTestDir("accounts_restart");
  const uint64_t snapshot_records = snapshot ? 1 : 0;
  {
    std::unique_ptr<Engine> engine = Open(mode, ack, dir, 64, snapshot_records);
    ASSERT_NE(engine, nullptr);
    NewAccount limited = Account(22, 0, kAccountDebitsMustNotExceedCredits);
    ASSERT_EQ(Create(*engine, {Account(20, 50), Account(21), limited, Account(uint64_t{1} << 40)}),
              std::vector<CreateResult>(4, CreateResult::kCreated));
    EXPECT_EQ(Fate(*engine, Transfer(1, 1, 20, 300)), Reason::kNone);
    ASSERT_TRUE(engine->FreezeAccount(21).ok());
    ASSERT_TRUE(engine->SetAccountLimits(22, {.transaction_minor_max = 9}).ok());
    ASSERT_TRUE(engine->CloseAccount(uint64_t{1} << 40).ok());
    if (snapshot) ASSERT_NO_FATAL_FAILURE(WriteSnapshot(*engine));
    EXPECT_TRUE(engine->Stop().drained);
  }
  std::unique_ptr<Engine> engine = Open(mode, ack, dir, 64, snapshot_records);
  ASSERT_NE(engine, nullptr);
  if (snapshot) EXPECT_FALSE(engine->recovery().snapshot_file.empty());
  EXPECT_EQ(engine->account_count(), kConfigured + 4);
  EXPECT_EQ(Balance(*engine, 20), 350);
  absl::StatusOr<AccountInfo> frozen = engine->LookupAccount(21);
  ASSERT_TRUE(frozen.ok());
  EXPECT_EQ(frozen->state, AccountState::kFrozen);
  EXPECT_EQ(frozen->history.size(), 2u);
  absl::StatusOr<AccountInfo> limited = engine->LookupAccount(22);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->fields.limits.transaction_minor_max, 9);
  EXPECT_EQ(limited->fields.flags, kAccountDebitsMustNotExceedCredits);
  EXPECT_EQ(engine->LookupAccount(uint64_t{1} << 40)->state, AccountState::kClosed);
  // The retry after the restart still gets the first answer.
  EXPECT_EQ(Create(*engine, {Account(20, 50)})[0], CreateResult::kExists);
  EXPECT_EQ(Fate(*engine, Transfer(2, 20, 1, 50)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(3, 1, 21, 1)), Reason::kAccountFrozen);
  EXPECT_EQ(Fate(*engine, Transfer(4, 1, 22, 10)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(5, 22, 1, 10)), Reason::kOverLimit);
  EXPECT_EQ(Fate(*engine, Transfer(6, 22, 1, 9)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(7, 22, 1, 2)), Reason::kInsufficientFunds);
  EXPECT_EQ(Fate(*engine, Transfer(8, 1, uint64_t{1} << 40, 2)), Reason::kAccountClosed);
  EXPECT_EQ(Create(*engine, {Account(23)})[0], CreateResult::kCreated);
  EXPECT_EQ(Fate(*engine, Transfer(9, 1, 23, 2)), Reason::kNone);
}

// What an account spent today survives a restart (journal replay, and the snapshot's
// directory), so a daily limit cannot be reset by restarting the server.
TEST_P(AccountsRestartTest, TheDaysSpendingSurvives) {
  const auto [mode, ack, snapshot] = GetParam();
  const std::string dir = testing::EmptyTestDir("accounts_daily_restart");
  const uint64_t snapshot_records = snapshot ? 1 : 0;
  NewAccount limited = Account(20, 100'000);
  limited.limits.daily_minor_max = 1'000;
  {
    std::unique_ptr<Engine> engine = Open(mode, ack, dir, 64, snapshot_records);
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(Create(*engine, {limited})[0], CreateResult::kCreated);
    EXPECT_EQ(Fate(*engine, Transfer(1, 20, 1, 900)), Reason::kNone);
    if (snapshot) ASSERT_NO_FATAL_FAILURE(WriteSnapshot(*engine));
    EXPECT_TRUE(engine->Stop().drained);
  }
  std::unique_ptr<Engine> engine = Open(mode, ack, dir, 64, snapshot_records);
  ASSERT_NE(engine, nullptr);
  if (snapshot) EXPECT_FALSE(engine->recovery().snapshot_file.empty());
  EXPECT_EQ(Fate(*engine, Transfer(2, 20, 1, 101)), Reason::kDailyAmountLimit);
  EXPECT_EQ(Fate(*engine, Transfer(3, 20, 1, 100)), Reason::kNone);
}

// The replay charges each confirmation to the day it was received on the clock's Unix timeline
// (the journal's times carry the clock's offset): just before the clock's midnight the day's
// spending comes back after a restart; past it, a restart finds a fresh day. Fails on an engine
// that takes the offset from the process (the day then ends at the real midnight).
TEST_P(AccountsRestartTest, TheReplayedDayIsTheClocks) {
  const auto [mode, ack, snapshot] = GetParam();
  const std::string dir = testing::EmptyTestDir("accounts_day_of_clock");
  const uint64_t snapshot_records = snapshot ? 1 : 0;
  constexpr int64_t kSecondNs = 1'000'000'000;
  constexpr int64_t kMidnightUnixNs = int64_t{20'791} * 86'400 * kSecondNs;  // 2026-12-04.
  clock_.SetUnixOffsetNs(kMidnightUnixNs - kSecondNs - clock_.NowNs());
  NewAccount limited = Account(20, 100'000);
  limited.limits.daily_minor_max = 1'000;
  {
    std::unique_ptr<Engine> engine = Open(mode, ack, dir, 64, snapshot_records);
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(Create(*engine, {limited})[0], CreateResult::kCreated);
    EXPECT_EQ(Fate(*engine, Transfer(1, 20, 1, 900)), Reason::kNone);
    if (snapshot) ASSERT_NO_FATAL_FAILURE(WriteSnapshot(*engine));
    EXPECT_TRUE(engine->Stop().drained);
  }
  {
    std::unique_ptr<Engine> engine = Open(mode, ack, dir, 64, snapshot_records);
    ASSERT_NE(engine, nullptr);
    EXPECT_EQ(Fate(*engine, Transfer(2, 20, 1, 101)), Reason::kDailyAmountLimit);
    EXPECT_TRUE(engine->Stop().drained);
  }
  clock_.AdvanceNs(2 * kSecondNs);  // Past the clock's midnight.
  std::unique_ptr<Engine> engine = Open(mode, ack, dir, 64, snapshot_records);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(Fate(*engine, Transfer(3, 20, 1, 1'000)), Reason::kNone);
  EXPECT_EQ(Fate(*engine, Transfer(4, 20, 1, 1)), Reason::kDailyAmountLimit);
}

INSTANTIATE_TEST_SUITE_P(
    ModesAcksSnapshots, AccountsRestartTest,
    ::testing::Combine(::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                         PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable),
                       ::testing::Bool()));

}  // namespace
}  // namespace vouch
