// Idempotency as a promise in time, through the embedding API, in every policy mode x ack
// policy, and across a restart where the journal keeps the ids (written, durable):
//  - an id is remembered for idempotency_retention_ns whatever the number of claims in between:
//    a retry after many tables' worth of other transactions is still a duplicate, and the table
//    refuses new ids BUSY idempotency_retention rather than forget one early;
//  - a resubmission with other fields is REJECTED id_reused_with_different_fields, for each
//    compared field, and not stored (client_timestamp_ns is not compared); refused ids too; on
//    the BUSY path's lookup too;
//  - BUSY answers and their retries take no capacity of the table;
//  - an operator who changes idempotency_window between runs (with a snapshot on disk) gets a
//    working engine that still knows every id it must, or, if the new table is too small for
//    the ids within the retention, a refusal to start that says so.
// A ManualClock makes the time cheap: a table of 1024 and thousands of claims stand in for 2^20
// and beyond (the benchmark, bench/engine/ingest, does 10^8).
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch {
namespace {

using testing::BankOptions;
using testing::DrainOutcomes;
using testing::StepUntilIdle;
using testing::Transfer;

constexpr size_t kTable = 1024;
constexpr int64_t kRetentionNs = 3600LL * 1'000'000'000;  // 1 h.
constexpr int64_t kAmountMax = 1'000'000;
constexpr int kIdReused = static_cast<int>(Reason::kIdReusedWithDifferentFields);
constexpr int kRetention = static_cast<int>(Reason::kIdempotencyRetention);

using Param = std::tuple<PolicyMode, AckPolicy>;

class EngineIdempotencyTest : public ::testing::TestWithParam<Param> {
 protected:
  PolicyMode mode() const { return std::get<0>(GetParam()); }
  AckPolicy ack() const { return std::get<1>(GetParam()); }
  bool journaled() const { return ack() != AckPolicy::kMemory; }

  void SetUp() override {
    dir_ = testing::EmptyTestDir(std::string("idempotency_") +
                                 std::string(PolicyModeName(mode())) + "_" +
                                 std::to_string(static_cast<int>(ack())));
    engine_ = Open();
    ASSERT_NE(engine_, nullptr);
  }

  std::unique_ptr<Engine> Open(RiskLimits risk = {}) {
    absl::StatusOr<std::unique_ptr<Engine>> engine = Create(risk);
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    EXPECT_TRUE((*engine)->Start().ok());
    return std::move(*engine);
  }

  absl::StatusOr<std::unique_ptr<Engine>> Create(RiskLimits risk = {}) {
    Options options = BankOptions(20);
    options.in_flight_capacity = 256;
    options.idempotency_window = window_;
    options.idempotency_retention_ns = kRetentionNs;
    options.fraud_rules.velocity_enabled = false;
    options.fraud_rules.anomaly_enabled = false;
    options.fraud_rules.travel_enabled = false;
    options.amount_minor_max = kAmountMax;
    options.inline_mode = true;
    options.clock = &clock_;
    options.policy.mode = mode();
    options.risk.limits = risk;
    options.risk.action = RiskAction::kBusy;
    options.durability.ack = ack();
    if (journaled()) options.durability.dir = dir_;
    if (snapshots_) {
      options.durability.snapshot_interval_records = 1;
      options.durability.segment_bytes_max = 64 * 1024;  // ~600 records: closed segments.
    }
    return Engine::Create(std::move(options));
  }

  // Closes the engine and opens it again on the same directory (journaled policies only).
  void Restart() {
    StepUntilIdle(*engine_);
    DrainOutcomes(*engine_);
    EXPECT_TRUE(engine_->Stop().drained);
    engine_.reset();
    engine_ = Open();
    ASSERT_NE(engine_, nullptr);
  }

  int64_t Balance(uint64_t account) {
    return EngineTestPeer::Ledger(*engine_).Find(account)->balance_minor;
  }

  // A transaction whose fields follow from its id.
  static Transaction Txn(uint64_t id) {
    Transaction txn = Transfer(id, 1 + id % 10, 11 + id % 10, 1 + static_cast<int64_t>(id % 50));
    txn.client_timestamp_ns = static_cast<int64_t>(id);
    return txn;
  }

  // Submits `txn` and, for a held one, lets the engine decide it; steps afterwards.
  Confirmation Submit(const Transaction& txn) {
    const Confirmation c = engine_->Submit(txn);
    StepUntilIdle(*engine_);
    DrainOutcomes(*engine_);
    return c;
  }

  // Submits without waiting for the journal or a held answer, stepping every 32, so that the
  // journal batches (durable: one sync a turn).
  Confirmation SubmitBatched(const Transaction& txn, uint64_t n) {
    const Confirmation c = engine_->Submit(txn, 0, AckWait::kCaller, HeldAnswer::kLater);
    if (n % 32 == 31) {
      StepUntilIdle(*engine_);
      DrainOutcomes(*engine_);
    }
    return c;
  }

  // New ids from `first_id` until one is refused BUSY idempotency_retention: how many the
  // table still had room for. Another BUSY (a risk cap) is retried after a step.
  uint64_t AdmitUntilRetention(uint64_t first_id, uint64_t max) {
    for (uint64_t n = 0; n < max; ++n) {
      Confirmation c = SubmitBatched(Txn(first_id + n), n);
      for (int retry = 0; c.status == ConfirmStatus::kBusy &&
                          c.reason != Reason::kIdempotencyRetention && retry < 100;
           ++retry) {
        StepUntilIdle(*engine_);
        c = SubmitBatched(Txn(first_id + n), n);
      }
      if (c.status == ConfirmStatus::kBusy) {
        EXPECT_EQ(c.reason, Reason::kIdempotencyRetention) << ReasonName(c.reason);
        return n;
      }
      EXPECT_FALSE(c.duplicate);
    }
    return max;
  }

  size_t window_ = kTable;  // idempotency_window of the next Open.
  bool snapshots_ = false;  // Small segments, and a snapshot as soon as one closes.
  ManualClock clock_;
  std::string dir_;
  std::unique_ptr<Engine> engine_;
};

// A retry after 8 tables' worth of other transactions, within the retention, is a duplicate: the
// table admitted exactly its size and refused the rest BUSY idempotency_retention, counted. The
// same holds after a restart (the journal brings back every id with its first-seen time), and
// new ids are admitted again once the oldest are older than the retention.
TEST_P(EngineIdempotencyTest, ARetryAfterManyTablesOfClaimsWithinTheRetentionIsADuplicate) {
  const Confirmation original = Submit(Txn(1));
  ASSERT_EQ(original.status, ConfirmStatus::kConfirmed);
  uint64_t admitted = 0, refused = 0;
  for (uint64_t id = 2; id <= 8 * kTable; ++id) {
    clock_.AdvanceNs(1'000'000);  // 1 ms apart: 8 s in all, well within the hour.
    const Confirmation c = SubmitBatched(Txn(id), id);
    if (c.status == ConfirmStatus::kBusy) {
      ASSERT_EQ(c.reason, Reason::kIdempotencyRetention);
      ++refused;
    } else {
      ++admitted;
    }
  }
  StepUntilIdle(*engine_);
  DrainOutcomes(*engine_);
  EXPECT_EQ(admitted, kTable - 1) << "the table holds its size";
  EXPECT_EQ(refused, 8 * kTable - kTable);
  EXPECT_EQ(engine_->Stats().busy[kRetention], refused);
  EXPECT_GE(engine_->Stats().idempotency_retention_ns, 8'000'000'000LL - 1'000'000'000LL);

  const uint64_t source = Txn(1).source_account;
  const int64_t balance = Balance(source);
  const Confirmation again = Submit(Txn(1));
  EXPECT_TRUE(again.duplicate) << "forgotten within the retention";
  EXPECT_EQ(again.seq, original.seq);
  EXPECT_EQ(Balance(source), balance) << "applied twice";

  if (journaled()) {
    Restart();
    const int64_t restored = Balance(source);
    const Confirmation after = Submit(Txn(1));
    EXPECT_TRUE(after.duplicate) << "forgotten across the restart";
    EXPECT_EQ(after.seq, original.seq);
    EXPECT_EQ(Balance(source), restored) << "applied twice";
    EXPECT_EQ(Submit(Txn(100'000)).reason, Reason::kIdempotencyRetention)
        << "the restored table is as full of young ids as the live one was";
    EXPECT_GE(engine_->Stats().idempotency_retention_ns, 7'000'000'000LL);
  }
  clock_.AdvanceNs(kRetentionNs);
  EXPECT_EQ(AdmitUntilRetention(200'000, 2 * kTable), kTable)
      << "every id is older than the retention now";
}

// Each compared field, changed, is refused id_reused_with_different_fields, not stored and not
// applied; client_timestamp_ns is not compared. After a restart, the same (the fingerprint is
// journaled with the confirmation's transaction).
TEST_P(EngineIdempotencyTest, AResubmissionWithAnyOtherFieldIsRefusedAndNotStored) {
  const Transaction txn = Txn(7);
  const Confirmation original = Submit(txn);
  ASSERT_EQ(original.status, ConfirmStatus::kConfirmed);
  const int64_t balance = Balance(txn.source_account);
  auto check = [&](const char* stage) {
    std::vector<Transaction> altered(8, txn);
    altered[0].amount_minor += 1;
    altered[1].source_account = 19;
    altered[2].destination_account = 20;
    altered[3].currency = PackCurrency("EUR");
    altered[4].merchant_id += 1;
    altered[5].merchant_category += 1;
    altered[6].country = PackCountry("FR");
    altered[7].device_id += 1;
    for (size_t field = 0; field < altered.size(); ++field) {
      const Confirmation c = Submit(altered[field]);
      EXPECT_EQ(c.status, ConfirmStatus::kRejected) << stage << " field " << field;
      EXPECT_EQ(c.reason, Reason::kIdReusedWithDifferentFields) << stage << " field " << field;
      EXPECT_FALSE(c.duplicate);
      EXPECT_EQ(c.seq, 0u);
    }
    Transaction resent = txn;
    resent.client_timestamp_ns += 12345;  // A retry stamps its own send time.
    const Confirmation same = Submit(resent);
    EXPECT_TRUE(same.duplicate) << stage << ": the original answer stays the id's";
    EXPECT_EQ(same.seq, original.seq);
    EXPECT_EQ(same.status, ConfirmStatus::kConfirmed);
    EXPECT_EQ(Balance(txn.source_account), balance);
    const std::optional<TransactionStatus> status = engine_->Query(txn.id);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->seq, original.seq);
  };
  check("live");
  EXPECT_EQ(engine_->Stats().rejected[kIdReused], 8u);
  if (journaled()) {
    Restart();
    check("after a restart");
  }
}

// A stored refusal is content-checked too: a refused id resubmitted with other fields (fields
// that would now be accepted) is refused id_reused_with_different_fields, never confirmed.
TEST_P(EngineIdempotencyTest, ARefusedIdResubmittedWithOtherFieldsIsRefused) {
  Transaction over = Txn(9);
  over.amount_minor = kAmountMax + 1;
  const Confirmation refused = Submit(over);
  ASSERT_EQ(refused.reason, Reason::kOverLimit);
  auto check = [&](const char* stage) {
    const Confirmation same = Submit(over);
    EXPECT_TRUE(same.duplicate) << stage;
    EXPECT_EQ(same.reason, Reason::kOverLimit) << stage;
    const Confirmation fixed = Submit(Txn(9));  // Within the limit now.
    EXPECT_EQ(fixed.status, ConfirmStatus::kRejected) << stage;
    EXPECT_EQ(fixed.reason, Reason::kIdReusedWithDifferentFields) << stage;
    EXPECT_EQ(engine_->Query(9)->history.back().reason, Reason::kOverLimit) << stage;
  };
  check("live");
  if (journaled()) {
    Restart();
    check("after a restart");
  }
}

// While the ring is full, Submit does not claim the id but still answers a remembered one (the
// BUSY path's lookup): content-checked there too. And those BUSY answers take no capacity.
TEST_P(EngineIdempotencyTest, TheBusyPathLookupIsContentCheckedAndBusyTakesNoCapacity) {
  const Confirmation original = Submit(Txn(1));
  ASSERT_EQ(original.status, ConfirmStatus::kConfirmed);
  // Fill the ring: no stepping, held answers later.
  uint64_t id = 2, queued = 0;
  for (;; ++id) {
    const Confirmation c = engine_->Submit(Txn(id), 0, AckWait::kCaller, HeldAnswer::kLater);
    if (c.status == ConfirmStatus::kBusy) break;
    ++queued;
  }
  for (int retry = 0; retry < 5000; ++retry) {
    ASSERT_EQ(engine_->Submit(Txn(id)).status, ConfirmStatus::kBusy);
  }
  Transaction altered = Txn(1);
  altered.amount_minor += 1;
  EXPECT_EQ(engine_->Submit(altered).reason, Reason::kIdReusedWithDifferentFields);
  EXPECT_TRUE(engine_->Submit(Txn(1)).duplicate);
  StepUntilIdle(*engine_);
  DrainOutcomes(*engine_);
  ASSERT_EQ(Submit(Txn(id)).status, ConfirmStatus::kConfirmed) << "the BUSY id, retried";
  // 1 + queued + 1 ids remembered; the rest of the table is free.
  EXPECT_EQ(AdmitUntilRetention(50'000, 2 * kTable), kTable - queued - 2);
}

// A claim answered BUSY after it was claimed (here: a risk cap, async and hybrid, where
// transactions are confirmed before verification) is released; its retries revive the same
// node, so 5000 BUSY retries take one node between them.
TEST_P(EngineIdempotencyTest, BusyRetriesAfterAClaimTakeNoCapacity) {
  if (mode() == PolicyMode::kSync) GTEST_SKIP() << "sync holds every transaction: no risk cap";
  EXPECT_TRUE(engine_->Stop().drained);
  engine_.reset();
  RiskLimits one_at_a_time;
  one_at_a_time.total_count_max = 1;
  engine_ = Open(one_at_a_time);
  ASSERT_NE(engine_, nullptr);
  // At risk until verified; the caller does not wait for the journal, which would step the
  // engine (inline) and verify it.
  ASSERT_EQ(engine_->Submit(Txn(1), 0, AckWait::kCaller).status, ConfirmStatus::kConfirmed);
  for (int retry = 0; retry < 5000; ++retry) {
    const Confirmation c = engine_->Submit(Txn(2));
    ASSERT_EQ(c.status, ConfirmStatus::kBusy);
    ASSERT_EQ(c.reason, Reason::kRiskLimit);
  }
  StepUntilIdle(*engine_);
  DrainOutcomes(*engine_);
  ASSERT_EQ(Submit(Txn(2)).status, ConfirmStatus::kConfirmed);
  EXPECT_EQ(AdmitUntilRetention(50'000, 2 * kTable), kTable - 2)
      << "BUSY retries took capacity";
}

// The operator changes idempotency_window between runs, with a snapshot on disk whose answers
// are those of the old window (and more transactions confirmed than it held):
//  - raised: the engine starts, and every id within the retention is still a duplicate with its
//    original seq, from the snapshot and the journal tail alike (the snapshot used to be
//    refused as damaged, "the answers do not cover the idempotency window");
//  - lowered below the ids within the retention: Create refuses with FailedPrecondition and
//    says what to raise (it used to call the snapshot invalid); the directory is untouched, and
//    the old window opens it again.
TEST_P(EngineIdempotencyTest, AWindowChangedBetweenRunsKeepsTheIdsOrSaysWhy) {
  if (!journaled()) GTEST_SKIP() << "nothing survives a restart under memory ack";
  EXPECT_TRUE(engine_->Stop().drained);
  engine_.reset();
  snapshots_ = true;
  window_ = 2 * kTable;
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  // A table's worth that ages out, then 1500 ids within the retention: 3547 confirmed, more
  // than the window of 2048 that the snapshot's answers cover.
  ASSERT_EQ(AdmitUntilRetention(1, 2 * kTable - 1), 2 * kTable - 1);
  clock_.AdvanceNs(kRetentionNs + 1);
  constexpr uint64_t kYoungFirst = 10'000, kYoung = 1'500;
  std::vector<Confirmation> young;
  for (uint64_t n = 0; n < kYoung; ++n) {
    clock_.AdvanceNs(1'000'000);
    young.push_back(SubmitBatched(Txn(kYoungFirst + n), n));
    ASSERT_NE(young.back().status, ConfirmStatus::kBusy) << ReasonName(young.back().reason);
  }
  StepUntilIdle(*engine_);
  DrainOutcomes(*engine_);
  ASSERT_TRUE(engine_->PollSnapshot().ok());
  EXPECT_EQ(engine_->Stop().drained, true);
  engine_.reset();
  auto check_young = [&](const char* stage) {
    for (uint64_t n = 0; n < kYoung; ++n) {
      const Confirmation again = Submit(Txn(kYoungFirst + n));
      ASSERT_TRUE(again.duplicate) << stage << ": id " << kYoungFirst + n << " forgotten";
      ASSERT_EQ(again.seq, young[n].seq) << stage;
    }
  };

  window_ = kTable;  // The smallest allowed.
  const absl::StatusOr<std::unique_ptr<Engine>> small = Create();
  ASSERT_FALSE(small.ok()) << "1024 ids cannot hold 1500 within the retention";
  ASSERT_EQ(small.status().code(), absl::StatusCode::kFailedPrecondition) << small.status();
  EXPECT_NE(small.status().message().find("raise idempotency_window"), std::string::npos)
      << small.status();

  window_ = 4 * kTable;
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  EXPECT_FALSE(engine_->recovery().snapshot_file.empty()) << "the restart used no snapshot";
  check_young("raised window");
  EXPECT_EQ(Submit(Txn(50'000)).status, ConfirmStatus::kConfirmed) << "room in the larger table";
  EXPECT_TRUE(engine_->Stop().drained);
  engine_.reset();

  window_ = 2 * kTable;
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  check_young("the old window again");
}

INSTANTIATE_TEST_SUITE_P(
    Modes, EngineIdempotencyTest,
    ::testing::Combine(::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                         PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                         AckPolicy::kDurable)),
    [](const auto& info) {
      const AckPolicy ack = std::get<1>(info.param);
      return std::string(PolicyModeName(std::get<0>(info.param))) + "_" +
             (ack == AckPolicy::kMemory ? "memory"
                                        : ack == AckPolicy::kWritten ? "written" : "durable");
    });

}  // namespace
}  // namespace vouch
