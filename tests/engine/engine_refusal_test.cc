// Stored refusals: a transaction refused at ingest for anything but an id of 0 (malformed
// fields, over the limit, account on hold) has that REJECTED answer stored for its id. A
// resubmission gets the same answer, Query finds it, and under ack policy written or durable the
// journal keeps it before it is told, so that it survives a clean restart and a crash: an id
// refused ACCOUNT_ON_HOLD stays refused after the hold is released and the process restarts.
//
// Method: engines run inline with a manual clock, so every step is deterministic; each suite is
// parameterised over the policy mode (async, hybrid, sync: the refusal path is the same in
// each) and the ack policy. A crash is simulated as in engine_recovery_test: the data directory
// is copied while the engine is live (under `written` and `durable` the journal's records are
// in the files once the journal stage's write returned), and a new engine recovers from the copy.
// The hold is placed by a late fraud failure in async mode, in an earlier life of the data
// directory, because in sync mode no transaction is confirmed before it is verified.
#include <filesystem>
#include <string>
#include <tuple>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::kBlockedMerchant;
using testing::StepUntilIdle;
using testing::Transfer;

namespace fs = std::filesystem;

constexpr int64_t kAmountMax = 10'000;
constexpr uint64_t kHeldAccount = 3;

// One refusal of each stored kind.
struct Refused {
  Transaction txn;
  Reason reason;
};
std::vector<Refused> Refusals() {
  std::vector<Refused> refusals;
  refusals.push_back({Transfer(101, 1, 2, 0), Reason::kMalformedAmount});
  refusals.push_back({Transfer(102, 4, 4, 100), Reason::kMalformedSameAccount});
  Transaction unknown_currency = Transfer(103, 1, 2, 100);
  unknown_currency.currency = PackCurrency("ZZZ");
  refusals.push_back({unknown_currency, Reason::kUnknownCurrency});
  refusals.push_back({Transfer(104, 1, 2, kAmountMax + 1), Reason::kOverLimit});
  refusals.push_back({Transfer(105, kHeldAccount, 2, 100), Reason::kAccountOnHold});
  return refusals;
}

std::string TestDir(const std::string& name) { return testing::EmptyTestDir(name); }

class RefusalTestBase {
 protected:
  std::unique_ptr<Engine> Open(PolicyMode mode, AckPolicy ack, const std::string& dir,
                               size_t in_flight_capacity = 1 << 12,
                               size_t idempotency_window = 1 << 16,
                               int64_t retention_ns = Options{}.idempotency_retention_ns) {
    Options options = BankOptions(20);
    options.in_flight_capacity = in_flight_capacity;
    options.idempotency_window = idempotency_window;
    options.idempotency_retention_ns = retention_ns;
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = true;
    options.clock = &clock_;
    options.policy.mode = mode;
    options.amount_minor_max = kAmountMax;
    options.durability.ack = ack;
    if (ack != AckPolicy::kMemory) options.durability.dir = dir;
    auto engine = Engine::Create(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }
  // A late fraud failure (async mode) holds the account. False if the mode held it instead.
  bool PlaceHold(Engine& engine) {
    Transaction txn = Transfer(9'000, kHeldAccount, 2, 100);
    txn.merchant_id = kBlockedMerchant;
    EXPECT_NE(engine.Submit(txn).status, ConfirmStatus::kBusy);
    StepUntilIdle(engine);
    DrainOutcomes(engine);
    return engine.IsOnHold(kHeldAccount);
  }
  void ExpectRefusedAgain(Engine& engine, const Refused& refused, bool duplicate) {
    const Confirmation again = engine.Submit(refused.txn);
    EXPECT_EQ(again.status, ConfirmStatus::kRejected) << "id " << refused.txn.id;
    EXPECT_EQ(again.reason, refused.reason) << "id " << refused.txn.id;
    EXPECT_EQ(again.duplicate, duplicate) << "id " << refused.txn.id;
    EXPECT_EQ(again.seq, 0u);
    const std::optional<TransactionStatus> status = engine.Query(refused.txn.id);
    ASSERT_TRUE(status.has_value()) << "id " << refused.txn.id << " not found by Query";
    EXPECT_TRUE(status->final);
    ASSERT_EQ(status->history.size(), 2u);
    EXPECT_EQ(status->history[0].kind, StateKind::kReceived);
    EXPECT_EQ(status->history[1].kind, StateKind::kRejected);
    EXPECT_EQ(status->history[1].reason, refused.reason);
  }

  ManualClock clock_;
};

// --- In one life: every ack policy ----------------------------------------------------------

class StoredRefusalTest : public RefusalTestBase,
                          public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy>> {};

TEST_P(StoredRefusalTest, EveryRefusalOfAnIdIsStoredAndFoundByQuery) {
  const auto [mode, ack] = GetParam();
  const std::string dir = TestDir("one_life");
  {  // The hold comes from an earlier async life (memory: this life, in async mode only).
    auto engine = Open(PolicyMode::kAsync, ack, dir);
    ASSERT_TRUE(PlaceHold(*engine));
    if (ack == AckPolicy::kMemory && mode != PolicyMode::kAsync) {
      GTEST_SKIP() << "without a journal, a hold cannot be carried into another mode";
    }
    if (ack == AckPolicy::kMemory) {
      for (const Refused& refused : Refusals()) {
        const Confirmation first = engine->Submit(refused.txn);
        ASSERT_EQ(first.status, ConfirmStatus::kRejected);
        ASSERT_EQ(first.reason, refused.reason);
        EXPECT_FALSE(first.duplicate);
      }
      ASSERT_TRUE(engine->ReleaseHold(kHeldAccount).value_or(false));
      for (const Refused& refused : Refusals()) ExpectRefusedAgain(*engine, refused, true);
      return;
    }
    EXPECT_TRUE(engine->Stop().drained);
  }
  auto engine = Open(mode, ack, dir);
  ASSERT_TRUE(engine->IsOnHold(kHeldAccount));
  for (const Refused& refused : Refusals()) {
    const Confirmation first = engine->Submit(refused.txn);
    ASSERT_EQ(first.status, ConfirmStatus::kRejected);
    ASSERT_EQ(first.reason, refused.reason);
    EXPECT_FALSE(first.duplicate);
  }
  ASSERT_TRUE(engine->ReleaseHold(kHeldAccount).value_or(false));
  for (const Refused& refused : Refusals()) ExpectRefusedAgain(*engine, refused, true);
}

TEST_P(StoredRefusalTest, AnIdOfZeroIsRefusedAfreshAndNeverStored) {
  const auto [mode, ack] = GetParam();
  auto engine = Open(mode, ack, TestDir("id_zero"));
  for (int i = 0; i < 3; ++i) {
    const Confirmation c = engine->Submit(Transfer(0, 1, 2, 100));
    EXPECT_EQ(c.status, ConfirmStatus::kRejected);
    EXPECT_EQ(c.reason, Reason::kMalformedId);
    EXPECT_FALSE(c.duplicate);
  }
  EXPECT_FALSE(engine->Query(0).has_value());
  EXPECT_EQ(engine->Stats().rejected[static_cast<int>(Reason::kMalformedId)], 3u);
}

INSTANTIATE_TEST_SUITE_P(
    ModesAndAckPolicies, StoredRefusalTest,
    ::testing::Combine(::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                         PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                         AckPolicy::kDurable)),
    [](const auto& info) {
      return std::string(PolicyModeName(std::get<0>(info.param))) + "_" +
             std::string(AckPolicyName(std::get<1>(info.param)));
    });

// --- Across restarts: written and durable, a clean stop and a crash -------------------------

enum class Restart { kClean, kCrash };

class RefusalRestartTest
    : public RefusalTestBase,
      public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy, Restart>> {};

TEST_P(RefusalRestartTest, ARefusedIdStaysRefusedAfterTheHoldIsReleasedAndARestart) {
  const auto [mode, ack, restart] = GetParam();
  const std::string dir = TestDir("live");
  const std::string crashed = TestDir("crashed");
  {
    auto engine = Open(PolicyMode::kAsync, ack, dir);
    ASSERT_TRUE(PlaceHold(*engine));
    EXPECT_TRUE(engine->Stop().drained);
  }
  {
    auto engine = Open(mode, ack, dir);
    ASSERT_TRUE(engine->IsOnHold(kHeldAccount));
    for (const Refused& refused : Refusals()) {
      const Confirmation first = engine->Submit(refused.txn);  // Told once kept (kInSubmit).
      ASSERT_EQ(first.status, ConfirmStatus::kRejected);
      ASSERT_EQ(first.reason, refused.reason);
    }
    ASSERT_TRUE(engine->ReleaseHold(kHeldAccount).value_or(false));
    StepUntilIdle(*engine);  // The release reaches the journal.
    if (restart == Restart::kCrash) {
      fs::copy(dir, crashed, fs::copy_options::recursive);
    } else {
      EXPECT_TRUE(engine->Stop().drained);
    }
  }
  auto engine = Open(mode, ack, restart == Restart::kCrash ? crashed : dir);
  ASSERT_FALSE(engine->IsOnHold(kHeldAccount)) << "the release survived the restart";
  EXPECT_EQ(engine->recovery().refused, Refusals().size());
  for (const Refused& refused : Refusals()) ExpectRefusedAgain(*engine, refused, true);
  // The account itself is free again: a new id from it is confirmed.
  const Confirmation fresh = engine->Submit(Transfer(9'001, kHeldAccount, 2, 100));
  EXPECT_EQ(fresh.status, ConfirmStatus::kConfirmed);
}

// A snapshot carries the stored refusals too: the segments that held them are removed.
TEST_P(RefusalRestartTest, RefusalsCoveredByASnapshotSurvive) {
  const auto [mode, ack, restart] = GetParam();
  if (restart == Restart::kCrash) GTEST_SKIP() << "the snapshot path is the same";
  const std::string dir = TestDir("snap");
  {
    Options options = BankOptions(20);
    options.fraud_rules.velocity_enabled = false;
    options.inline_mode = true;
    options.clock = &clock_;
    options.policy.mode = mode;
    options.amount_minor_max = kAmountMax;
    options.durability.ack = ack;
    options.durability.dir = dir;
    options.durability.segment_bytes_max = 64 * 1024;
    options.durability.snapshot_interval_records = 100;
    auto engine = *Engine::Create(options);
    ASSERT_TRUE(engine->Start().ok());
    for (const Refused& refused : Refusals()) {
      if (refused.reason == Reason::kAccountOnHold) continue;
      ASSERT_EQ(engine->Submit(refused.txn).status, ConfirmStatus::kRejected);
    }
    // Enough records to close segments past the refusals, then a snapshot over them.
    for (uint64_t id = 1'000; id < 2'500; ++id) {
      ASSERT_EQ(engine->Submit(Transfer(id, 1 + id % 5, 6 + id % 5, 1)).status,
                ConfirmStatus::kConfirmed);
    }
    StepUntilIdle(*engine);
    DrainOutcomes(*engine);
    ASSERT_TRUE(engine->PollSnapshot().ok());
    ASSERT_GT(engine->Stats().snapshots, 0u);
    EXPECT_TRUE(engine->Stop().drained);
  }
  auto engine = Open(mode, ack, dir);
  ASSERT_FALSE(engine->recovery().snapshot_file.empty());
  for (const Refused& refused : Refusals()) {
    if (refused.reason == Reason::kAccountOnHold) continue;
    ExpectRefusedAgain(*engine, refused, true);
  }
}

INSTANTIATE_TEST_SUITE_P(
    ModesAckPoliciesAndRestarts, RefusalRestartTest,
    ::testing::Combine(::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                         PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable),
                       ::testing::Values(Restart::kClean, Restart::kCrash)),
    [](const auto& info) {
      return std::string(PolicyModeName(std::get<0>(info.param))) + "_" +
             std::string(AckPolicyName(std::get<1>(info.param))) +
             (std::get<2>(info.param) == Restart::kClean ? "_clean" : "_crash");
    });

// --- The ack position and the bounded refusal ring ------------------------------------------

class RefusalAckTest : public RefusalTestBase, public ::testing::TestWithParam<PolicyMode> {};

// With AckWait::kCaller a refusal is not kept until AwaitAck returns for its position; after
// that, a crash keeps it.
TEST_P(RefusalAckTest, ARefusalIsKeptOnceItsAckPositionIsAcknowledged) {
  const std::string dir = TestDir("ack_live");
  const std::string before = TestDir("ack_before");
  const std::string after = TestDir("ack_after");
  auto engine = Open(GetParam(), AckPolicy::kWritten, dir);
  const Refused over = Refusals()[3];
  const Confirmation refused = engine->Submit(over.txn, 0, AckWait::kCaller);
  ASSERT_EQ(refused.status, ConfirmStatus::kRejected);
  EXPECT_EQ(refused.ack.refused, 1u);
  fs::copy(dir, before, fs::copy_options::recursive);
  ASSERT_TRUE(engine->AwaitAck(refused.ack));
  fs::copy(dir, after, fs::copy_options::recursive);
  EXPECT_EQ(Open(GetParam(), AckPolicy::kWritten, before)->recovery().refused, 0u)
      << "not kept yet: it must not have been told";
  auto recovered = Open(GetParam(), AckPolicy::kWritten, after);
  EXPECT_EQ(recovered->recovery().refused, 1u);
  ExpectRefusedAgain(*recovered, over, true);
}

// The ring to the journal holds in_flight_capacity refusals; one more is BUSY (counted) and its
// claim released, so the retry is judged afresh once the journal caught up.
TEST_P(RefusalAckTest, AFullRefusalRingAnswersBusyAndReleasesTheClaim) {
  constexpr size_t kCapacity = 16;
  auto engine = Open(GetParam(), AckPolicy::kWritten, TestDir("full"), kCapacity);
  AckPosition told;
  for (uint64_t id = 1; id <= kCapacity; ++id) {
    const Confirmation c =
        engine->Submit(Transfer(id, 1, 2, kAmountMax + 1), 0, AckWait::kCaller);
    ASSERT_EQ(c.status, ConfirmStatus::kRejected);
    EXPECT_EQ(c.ack.refused, id);
    told.Cover(c.ack);
  }
  const Transaction extra = Transfer(kCapacity + 1, 1, 2, kAmountMax + 1);
  const Confirmation busy = engine->Submit(extra, 0, AckWait::kCaller);
  EXPECT_EQ(busy.status, ConfirmStatus::kBusy);
  EXPECT_EQ(busy.reason, Reason::kQueueFull);
  EXPECT_EQ(engine->Stats().busy[static_cast<int>(Reason::kQueueFull)], 1u);
  EXPECT_FALSE(engine->Query(extra.id).has_value());
  ASSERT_TRUE(engine->AwaitAck(told));
  const Confirmation retry = engine->Submit(extra);
  EXPECT_EQ(retry.status, ConfirmStatus::kRejected);
  EXPECT_EQ(retry.reason, Reason::kOverLimit);
  EXPECT_FALSE(retry.duplicate);
  // A duplicate of a queued refusal waits for at least that refusal.
  const Confirmation duplicate = engine->Submit(Transfer(1, 1, 2, kAmountMax + 1), 0,
                                                AckWait::kCaller);
  EXPECT_TRUE(duplicate.duplicate);
  EXPECT_GE(duplicate.ack.refused, 1u);
}

// An id refused, then forgotten once older than the retention (a newer claim needed its node)
// and answered anew, has both answers in the journal. Recovery keeps the newer one, as the live
// table did, with the newer fields' fingerprint. (Before retention in time, BUSY claims pushed
// ids out of the window; now they take no node and nothing is forgotten before the retention.)
TEST_P(RefusalAckTest, AnIdForgottenAndAnsweredAnewComesBackWithItsNewerAnswer) {
  constexpr size_t kCapacity = 16, kWindow = 1024;
  constexpr int64_t kRetentionNs = 1'000'000'000;
  const std::string dir = TestDir("anew");
  Confirmation confirmed;
  {
    auto engine = Open(GetParam(), AckPolicy::kWritten, dir, kCapacity, kWindow, kRetentionNs);
    for (uint64_t id = 1; id <= kWindow; ++id) {  // Fills the table.
      ASSERT_EQ(engine->Submit(Transfer(id, 1, 2, kAmountMax + 1)).reason, Reason::kOverLimit);
    }
    EXPECT_EQ(engine->Submit(Transfer(5000, 1, 2, 100)).reason, Reason::kIdempotencyRetention)
        << "every id is younger than the retention";
    clock_.AdvanceNs(2 * kRetentionNs);
    ASSERT_EQ(engine->Submit(Transfer(5000, 1, 2, 100)).status, ConfirmStatus::kConfirmed)
        << "it takes id 1's node, now older than the retention";
    confirmed = engine->Submit(Transfer(1, 1, 2, 100));
    ASSERT_EQ(confirmed.status, ConfirmStatus::kConfirmed) << "id 1 was not forgotten";
    EXPECT_FALSE(confirmed.duplicate);
    StepUntilIdle(*engine);
    EXPECT_TRUE(engine->Stop().drained);
  }
  auto engine = Open(GetParam(), AckPolicy::kWritten, dir, kCapacity, kWindow, kRetentionNs);
  ASSERT_NE(engine, nullptr);
  const Confirmation again = engine->Submit(Transfer(1, 1, 2, 100));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(again.seq, confirmed.seq);
  EXPECT_EQ(engine->Submit(Transfer(1, 1, 2, kAmountMax + 1)).reason,
            Reason::kIdReusedWithDifferentFields)
      << "the newer answer's fields are the id's";
}

INSTANTIATE_TEST_SUITE_P(Modes, RefusalAckTest,
                         ::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                           PolicyMode::kSync),
                         [](const auto& info) { return std::string(PolicyModeName(info.param)); });

}  // namespace
}  // namespace vouch
