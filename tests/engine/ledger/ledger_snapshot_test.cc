// Tests of Ledger::SaveState and RestoreState.
//
// Method: a seeded workload (transfers in three currencies between accounts with and without
// overdraft limits, some refused for unknown accounts, mismatched currencies or missing funds,
// settled by commit or void a varying lag behind, so a hundred or so reservations are open at
// any time) drives a ledger; its snapshot is restored into a second one. Equal StateHash is not
// enough: both ledgers then run the same further workload and must agree on every Reserve
// verdict, every IsPending, and on the hash, balances and totals at checkpoints. Damage to the
// framing is tested exhaustively on a small snapshot (damage inside the payload is the engine
// snapshot file's CRC32C's to catch), and states that OpenAccount or Reserve would refuse are
// written into otherwise valid snapshots. An old-format snapshot, written by the build before the
// format's checksum was dropped, is kept under testdata/ and must restore.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/types/reason.h"
#include "engine/types/transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/allocation_counter.h"
#include "tests/verifiers/testing/snapshot_damage.h"
#include "engine/ledger/ledger.h"

namespace vouch::ledger {
namespace {

using ::testing::HasSubstr;
using verifiers::testing::EditPayload;
using verifiers::testing::ExpectOldFormatReadsAsCurrent;
using verifiers::testing::ExpectRefusesDamage;
using verifiers::testing::Overwrite;
using verifiers::testing::ReadTestFile;
using verifiers::testing::WithVersion;

const CurrencyCode kUsd = PackCurrency("USD");
const CurrencyCode kEur = PackCurrency("EUR");
const CurrencyCode kGbp = PackCurrency("GBP");
const CurrencyCode kCurrencies[] = {kUsd, kEur, kGbp};

constexpr size_t kAccounts = 300;
constexpr size_t kAccountCapacity = 512;
constexpr size_t kPendingCapacity = 1'024;

// Accounts 1000..1299 in the three currencies, some with an overdraft limit.
void OpenAccounts(Ledger& ledger) {
  std::mt19937_64 rng(5);
  for (uint64_t n = 0; n < kAccounts; ++n) {
    const AccountSpec spec = {.id = 1'000 + n,
                              .currency = kCurrencies[n % 3],
                              .balance_minor = static_cast<int64_t>(rng() % 50'000),
                              .overdraft_limit_minor = n % 5 == 0 ? 10'000 : 0};
    ASSERT_TRUE(ledger.OpenAccount(spec).ok());
  }
}

// Reserves one transfer per step and settles the open reservations a varying lag behind.
class Workload {
 public:
  // Sized up front so that the workload itself never allocates while allocations are counted.
  explicit Workload(uint64_t seed) : rng_(seed) { pending_.reserve(kPendingCapacity); }

  // One step on every ledger in `ledgers`, which must agree on every outcome.
  void Step(std::initializer_list<Ledger*> ledgers) {
    const Transaction txn = NextTransfer();
    ++seq_;
    const Reason reason = (*ledgers.begin())->Reserve(seq_, txn);
    for (auto it = ledgers.begin() + 1; it != ledgers.end(); ++it) {
      ASSERT_EQ((*it)->Reserve(seq_, txn), reason) << "seq " << seq_;
    }
    if (reason == Reason::kNone) pending_.push_back(seq_);
    // The lag drifts between 0 and 200 reservations, so the snapshot sees varied amounts open.
    if (rng_() % 1'000 == 0) lag_ = rng_() % 200;
    while (pending_.size() > lag_) {
      // Usually the oldest, sometimes a later one: settlement is mostly in order.
      const size_t index = rng_() % 4 == 0 ? rng_() % std::min<size_t>(pending_.size(), 32) : 0;
      const Sequence seq = pending_[index];
      pending_.erase(pending_.begin() + static_cast<ptrdiff_t>(index));
      const bool commit = rng_() % 3 != 0;
      for (Ledger* ledger : ledgers) {
        ASSERT_TRUE(ledger->IsPending(seq)) << "seq " << seq;
        commit ? ledger->Commit(seq) : ledger->Void(seq);
      }
    }
  }

  void Steps(int count, std::initializer_list<Ledger*> ledgers) {
    for (int i = 0; i < count && !::testing::Test::HasFatalFailure(); ++i) Step(ledgers);
  }

  size_t pending() const { return pending_.size(); }

 private:
  Transaction NextTransfer() {
    Transaction txn;
    txn.id = seq_ + 1;
    // One in 50 names an account that does not exist.
    txn.source_account = 1'000 + rng_() % (kAccounts + kAccounts / 50);
    // One in 10 pays another currency's account; the rest stay in the source's currency.
    const uint64_t offset = 3 * (1 + rng_() % (kAccounts / 3 - 1)) + (rng_() % 10 == 0);
    txn.destination_account = 1'000 + (txn.source_account - 1'000 + offset) % kAccounts;
    txn.currency = kCurrencies[(txn.source_account - 1'000) % 3];
    // Sometimes larger than most balances: insufficient funds.
    txn.amount_minor = 1 + static_cast<int64_t>(rng_() % (rng_() % 20 == 0 ? 80'000 : 3'000));
    return txn;
  }

  std::mt19937_64 rng_;
  Sequence seq_ = 0;
  std::vector<Sequence> pending_;  // In reservation order.
  size_t lag_ = 100;
};

std::string Save(const Ledger& ledger) {
  std::string bytes;
  EXPECT_TRUE(ledger.SaveState(&bytes).ok());
  return bytes;
}

std::vector<AccountView> Accounts(const Ledger& ledger) {
  std::vector<AccountView> views;
  ledger.ForEachAccount([&](const AccountView& view) { views.push_back(view); });
  return views;
}

void ExpectSameLedger(const Ledger& a, const Ledger& b) {
  EXPECT_EQ(a.StateHash(), b.StateHash());
  EXPECT_EQ(a.postings(), b.postings());
  EXPECT_EQ(a.pending_count(), b.pending_count());
  const std::vector<AccountView> a_accounts = Accounts(a);
  const std::vector<AccountView> b_accounts = Accounts(b);
  ASSERT_EQ(a_accounts.size(), b_accounts.size());
  for (size_t i = 0; i < a_accounts.size(); ++i) {  // Same accounts, in the same order.
    EXPECT_EQ(a_accounts[i].id, b_accounts[i].id);
    EXPECT_EQ(a_accounts[i].currency, b_accounts[i].currency);
    EXPECT_EQ(a_accounts[i].balance_minor, b_accounts[i].balance_minor);
    EXPECT_EQ(a_accounts[i].overdraft_limit_minor, b_accounts[i].overdraft_limit_minor);
  }
  for (CurrencyCode currency : kCurrencies) {
    EXPECT_EQ(a.TotalMinor(currency), b.TotalMinor(currency));
    EXPECT_EQ(a.ClearingMinor(currency), b.ClearingMinor(currency));
  }
}

// Runs `steps` more of the workload on both, checking as it goes, then settles nothing more:
// the reservations left open are compared too.
void ExpectSameFuture(Ledger& a, Ledger& b, Workload& workload, int steps) {
  for (int done = 0; done < steps; done += 1'000) {
    workload.Steps(1'000, {&a, &b});
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    ASSERT_EQ(a.StateHash(), b.StateHash()) << "after " << done + 1'000 << " more steps";
  }
  ExpectSameLedger(a, b);
}

TEST(LedgerSnapshot, RestoredLedgerBehavesIdentically) {
  Ledger saved(kAccountCapacity, kPendingCapacity);
  OpenAccounts(saved);
  Workload workload(/*seed=*/21);
  workload.Steps(20'000, {&saved});
  ASSERT_GT(saved.pending_count(), 0u);
  for (CurrencyCode currency : kCurrencies) EXPECT_GT(saved.ClearingMinor(currency), 0);

  Ledger restored(kAccountCapacity, kPendingCapacity);
  ASSERT_TRUE(restored.RestoreState(Save(saved)).ok());
  ExpectSameLedger(saved, restored);
  ExpectSameFuture(saved, restored, workload, 20'000);
}

TEST(LedgerSnapshot, SavingIsDeterministicAndRoundTripsByteForByte) {
  Ledger a(kAccountCapacity, kPendingCapacity);
  // A different pending capacity gives a different table layout, but the same bytes.
  Ledger b(kAccountCapacity, 4 * kPendingCapacity);
  OpenAccounts(a);
  OpenAccounts(b);
  Workload workload(/*seed=*/22);
  workload.Steps(10'000, {&a, &b});
  const std::string bytes = Save(a);
  EXPECT_EQ(Save(a), bytes);  // Saving changes nothing.
  EXPECT_EQ(Save(b), bytes);  // Same history, same bytes.

  Ledger restored(kAccountCapacity, kPendingCapacity);
  ASSERT_TRUE(restored.RestoreState(bytes).ok());
  EXPECT_EQ(Save(restored), bytes);
}

TEST(LedgerSnapshot, EmptyLedgerRoundTrips) {
  Ledger empty(16, 16);
  Ledger restored(16, 16);
  ASSERT_TRUE(restored.RestoreState(Save(empty)).ok());
  ExpectSameLedger(empty, restored);
  EXPECT_EQ(Save(restored), Save(empty));
}

TEST(LedgerSnapshot, RestoreReplacesAccountsOpenedBefore) {
  Ledger saved(kAccountCapacity, kPendingCapacity);
  OpenAccounts(saved);
  Workload workload(/*seed=*/23);
  workload.Steps(5'000, {&saved});

  Ledger restored(kAccountCapacity, kPendingCapacity);
  ASSERT_TRUE(restored.OpenAccount({.id = 9, .currency = kUsd, .balance_minor = 100}).ok());
  ASSERT_TRUE(restored.OpenAccount({.id = 1'000, .currency = kUsd}).ok());
  ASSERT_EQ(restored.Reserve(77'777, {.id = 1,
                                      .source_account = 9,
                                      .destination_account = 1'000,
                                      .amount_minor = 5,
                                      .currency = kUsd}),
            Reason::kNone);
  ASSERT_TRUE(restored.RestoreState(Save(saved)).ok());
  EXPECT_FALSE(restored.Find(9).has_value());
  EXPECT_FALSE(restored.IsPending(77'777));
  ExpectSameLedger(saved, restored);
  ExpectSameFuture(saved, restored, workload, 5'000);
}

// Ledger hashes do not depend on capacity, so larger tables must restore to the same hash.
TEST(LedgerSnapshot, RestoresIntoLargerCapacities) {
  Ledger saved(kAccountCapacity, kPendingCapacity);
  OpenAccounts(saved);
  Workload workload(/*seed=*/24);
  workload.Steps(5'000, {&saved});
  Ledger restored(4 * kAccountCapacity, 4 * kPendingCapacity);
  ASSERT_TRUE(restored.RestoreState(Save(saved)).ok());
  ExpectSameLedger(saved, restored);
  ExpectSameFuture(saved, restored, workload, 5'000);
}

TEST(LedgerSnapshot, RefusesSmallerCapacities) {
  Ledger saved(kAccountCapacity, kPendingCapacity);
  OpenAccounts(saved);
  Workload workload(/*seed=*/25);
  workload.Steps(3'000, {&saved});
  ASSERT_GT(saved.pending_count(), 10u);
  const std::string bytes = Save(saved);

  Ledger few_accounts(kAccounts - 1, kPendingCapacity);
  absl::Status status = few_accounts.RestoreState(bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("300 accounts"));

  Ledger few_pending(kAccountCapacity, saved.pending_count() - 1);
  status = few_pending.RestoreState(bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("reservations"));
}

// RestoreState swaps in tables sized like the constructor's, so the hot path stays
// allocation-free, and OpenAccount still has its room.
TEST(LedgerSnapshot, HotPathDoesNotAllocateAfterRestore) {
  Ledger saved(kAccountCapacity, kPendingCapacity);
  OpenAccounts(saved);
  Workload workload(/*seed=*/26);
  workload.Steps(5'000, {&saved});
  Ledger restored(kAccountCapacity, kPendingCapacity);
  ASSERT_TRUE(restored.RestoreState(Save(saved)).ok());

  testing::StartCountingAllocations();
  workload.Steps(5'000, {&restored});
  EXPECT_EQ(testing::StopCountingAllocations(), 0u);
  EXPECT_TRUE(restored.OpenAccount({.id = 5'000, .currency = kUsd}).ok());
}

// ---- Damage ---------------------------------------------------------------------------------

// Accounts 1..6 (two per currency), reservations seq 1 (1 -> 2, USD) and seq 3 (3 -> 4, EUR)
// open; seq 2 committed.
std::string SmallSnapshot() {
  Ledger ledger(8, 8);
  for (uint64_t id = 1; id <= 6; ++id) {
    EXPECT_TRUE(ledger
                    .OpenAccount({.id = id,
                                  .currency = kCurrencies[(id - 1) / 2],
                                  .balance_minor = 1'000,
                                  .overdraft_limit_minor = 100})
                    .ok());
  }
  const auto transfer = [](uint64_t source, uint64_t destination, CurrencyCode currency) {
    return Transaction{.id = 1,
                       .source_account = source,
                       .destination_account = destination,
                       .amount_minor = 300,
                       .currency = currency};
  };
  EXPECT_EQ(ledger.Reserve(1, transfer(1, 2, kUsd)), Reason::kNone);
  EXPECT_EQ(ledger.Reserve(2, transfer(5, 6, kGbp)), Reason::kNone);
  EXPECT_EQ(ledger.Reserve(3, transfer(3, 4, kEur)), Reason::kNone);
  ledger.Commit(2);
  return Save(ledger);
}

// A target with a state of its own, so "unchanged" is not just "empty".
class LedgerDamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenAccounts(target_);
    Workload(/*seed=*/28).Steps(500, {&target_});
  }

  void ExpectRefused(absl::string_view bytes, absl::string_view message) {
    const uint64_t hash_before = target_.StateHash();
    const absl::Status status = target_.RestoreState(bytes);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(message)));
    EXPECT_EQ(target_.StateHash(), hash_before);
  }

  Ledger target_{kAccountCapacity, kPendingCapacity};
};

TEST_F(LedgerDamageTest, SmallSnapshotRestores) {
  ASSERT_TRUE(target_.RestoreState(SmallSnapshot()).ok());
  EXPECT_EQ(target_.pending_count(), 2u);
  EXPECT_EQ(target_.ClearingMinor(kUsd), 300);
  EXPECT_EQ(target_.Find(1)->balance_minor, 700);
  EXPECT_EQ(target_.Find(6)->balance_minor, 1'300);
}

// Format version 2 (with the checksum trailer), as written by the build before version 3, of the
// state SmallSnapshot() makes: it restores, and saves as version 3 exactly as SmallSnapshot().
// Fails if version 2 is no longer read or its trailer is taken for trailing bytes.
TEST(LedgerSnapshot, RestoresVersion2WithItsChecksumTrailer) {
  ExpectOldFormatReadsAsCurrent(
      ReadTestFile("tests/engine/ledger/testdata/ledger_snapshot_v2.bin"), /*old_version=*/2,
      SmallSnapshot(), [](absl::string_view bytes) -> absl::StatusOr<std::string> {
        Ledger restored(8, 8);
        if (absl::Status status = restored.RestoreState(bytes); !status.ok()) return status;
        return Save(restored);
      });
}

TEST_F(LedgerDamageTest, RefusesEveryTruncationAndFlippedHeaderByte) {
  ExpectRefusesDamage(
      SmallSnapshot(), [&](absl::string_view bytes) { return target_.RestoreState(bytes); },
      [&] { return target_.StateHash(); });
}

TEST_F(LedgerDamageTest, RefusesAnUnknownVersion) {
  ExpectRefused(WithVersion(SmallSnapshot(), 7), "unsupported format version 7");
}

TEST_F(LedgerDamageTest, RefusesAFraudSnapshot) {
  std::string bytes = SmallSnapshot();
  bytes.replace(0, 8, "VCHFRAUD");
  ExpectRefused(bytes, "wrong magic");
}

// Payload offsets (see ledger.cc): postings 0, account count 8, then 32-byte accounts (id,
// currency +8, balance +12, limit +20, flags +28), reservation count, 32-byte reservations (seq, amount
// +8, source +16, destination +24).
constexpr size_t Account(size_t i) { return 16 + 32 * i; }
constexpr size_t kReservationCount = Account(6);
constexpr size_t Reservation(size_t i) { return kReservationCount + 8 + 32 * i; }

TEST_F(LedgerDamageTest, RefusesStatesOpenAccountOrReserveWouldRefuse) {
  const std::string bytes = SmallSnapshot();
  const auto edited = [&](auto edit) { return EditPayload(bytes, edit); };
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Account(1), uint64_t{1}); }),
                "account 1 is already open");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Account(0), uint64_t{0}); }),
                "account id 0 is reserved");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Account(2) + 8, PackCurrency("XXX")); }),
                "unsupported currency");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Account(3) + 20, int64_t{-1}); }),
                "negative overdraft limit");
  // Below its limit even with the money its reservation holds added back.
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Account(0) + 12, int64_t{-401}); }),
                "below its overdraft limit");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Account(4) + 12, INT64_MAX); }),
                "could overflow int64");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, 8, uint64_t{1} << 40); }),
                "accounts do not fit");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Reservation(1), uint64_t{1}); }),
                "not in increasing order");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Reservation(0) + 8, int64_t{0}); }),
                "not positive");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Reservation(0) + 16, uint64_t{99}); }),
                "unknown_account");
  ExpectRefused(edited([](std::string& p) { Overwrite(p, Reservation(0) + 24, uint64_t{3}); }),
                "currency_mismatch");
  ExpectRefused(edited([](std::string& p) { p += "x"; }), "1 bytes after the reservations");
}

}  // namespace
}  // namespace vouch::ledger
