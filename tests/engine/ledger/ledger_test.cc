// Tests for the ledger verifier (engine/ledger).
//
// Method: one test per check and per posting pins the rules at their boundaries. The conservation
// test then drives 100k seeded random operations (reserve, commit, void, settled roughly in order
// like reconciliation does) against a plain reference model of balances and pending
// reservations: every Reserve verdict must match the model, and at regular checkpoints every
// balance, the clearing balances and the per-currency sums are compared with the model and with
// the conserved totals. The replay test feeds two ledgers the same operations and compares
// StateHash. The allocation test counts calls to the global operator new, replaced below.
#include "engine/ledger/ledger.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <iterator>
#include <map>
#include <new>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/accounts/account.h"
#include "gtest/gtest.h"

namespace {

std::atomic<long> g_allocations{0};

}  // namespace

// Counts every heap allocation in the test binary; the hot-path test compares counts.
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);  // relaxed: a plain counter.
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace vouch {

// Lets gtest print reasons by name.
void PrintTo(Reason reason, std::ostream* os) { *os << ReasonName(reason); }

namespace ledger {
namespace {

const CurrencyCode kUsd = PackCurrency("USD");
const CurrencyCode kEur = PackCurrency("EUR");
const CurrencyCode kGbp = PackCurrency("GBP");

Transaction Transfer(uint64_t source, uint64_t destination, int64_t amount_minor,
                     CurrencyCode currency) {
  Transaction txn;
  txn.id = 1;
  txn.source_account = source;
  txn.destination_account = destination;
  txn.amount_minor = amount_minor;
  txn.currency = currency;
  return txn;
}

int64_t Balance(const Ledger& ledger, uint64_t account) {
  return ledger.Find(account)->balance_minor;
}

// Sum of every balance in `currency`, recomputed from the accounts: independent of TotalMinor.
int64_t SumOfBalances(const Ledger& ledger, CurrencyCode currency) {
  int64_t sum = ledger.ClearingMinor(currency);
  ledger.ForEachAccount([&](const AccountView& view) {
    if (view.currency == currency) sum += view.balance_minor;
  });
  return sum;
}

// Accounts 1 (1000) and 2 (0) in USD, no overdraft.
class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ledger_.OpenAccount({.id = 1, .currency = kUsd, .balance_minor = 1000}).ok());
    ASSERT_TRUE(ledger_.OpenAccount({.id = 2, .currency = kUsd, .balance_minor = 0}).ok());
  }

  Ledger ledger_{/*account_capacity=*/16, /*pending_capacity=*/4};
};

TEST(LedgerOpenAccountTest, ValidatesSpecs) {
  Ledger ledger(/*account_capacity=*/2, /*pending_capacity=*/1);
  EXPECT_TRUE(ledger.OpenAccount({.id = 7, .currency = kUsd, .balance_minor = 500}).ok());

  EXPECT_EQ(ledger.OpenAccount({.id = 0, .currency = kUsd}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger.OpenAccount({.id = 8, .currency = PackCurrency("XXX")}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger.OpenAccount({.id = 8, .currency = 0}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger.OpenAccount({.id = 8, .currency = kUsd, .overdraft_limit_minor = -1}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger
                .OpenAccount(
                    {.id = 8, .currency = kUsd, .balance_minor = -11, .overdraft_limit_minor = 10})
                .code(),
            absl::StatusCode::kInvalidArgument);
  // Balance + limit of both accounts must fit in int64, or a posting could overflow.
  EXPECT_EQ(
      ledger.OpenAccount({.id = 8, .currency = kUsd, .balance_minor = INT64_MAX - 499}).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger.OpenAccount({.id = 7, .currency = kEur}).code(),
            absl::StatusCode::kAlreadyExists);

  EXPECT_TRUE(
      ledger
          .OpenAccount(
              {.id = 8, .currency = kUsd, .balance_minor = -10, .overdraft_limit_minor = 10})
          .ok());
  EXPECT_EQ(ledger.OpenAccount({.id = 9, .currency = kUsd}).code(),
            absl::StatusCode::kResourceExhausted);

  // Refused opens changed nothing.
  EXPECT_EQ(ledger.TotalMinor(kUsd), 490);
  EXPECT_EQ(ledger.TotalMinor(kEur), 0);
  EXPECT_FALSE(ledger.Find(9).has_value());
  const std::optional<AccountView> view = ledger.Find(8);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->currency, kUsd);
  EXPECT_EQ(view->balance_minor, -10);
  EXPECT_EQ(view->overdraft_limit_minor, 10);
}

TEST_F(LedgerTest, ReserveMovesMoneyToClearing) {
  EXPECT_EQ(ledger_.Reserve(1, Transfer(1, 2, 300, kUsd)), Reason::kNone);
  EXPECT_TRUE(ledger_.IsPending(1));
  EXPECT_EQ(ledger_.pending_count(), 1u);
  EXPECT_EQ(Balance(ledger_, 1), 700);
  EXPECT_EQ(Balance(ledger_, 2), 0);  // Nothing reaches the destination before Commit.
  EXPECT_EQ(ledger_.ClearingMinor(kUsd), 300);
  EXPECT_EQ(ledger_.TotalMinor(kUsd), 1000);
  EXPECT_EQ(ledger_.postings(), 1u);
}

TEST_F(LedgerTest, CommitPaysDestination) {
  ASSERT_EQ(ledger_.Reserve(1, Transfer(1, 2, 300, kUsd)), Reason::kNone);
  ledger_.Commit(1);
  EXPECT_FALSE(ledger_.IsPending(1));
  EXPECT_EQ(ledger_.pending_count(), 0u);
  EXPECT_EQ(Balance(ledger_, 1), 700);
  EXPECT_EQ(Balance(ledger_, 2), 300);
  EXPECT_EQ(ledger_.ClearingMinor(kUsd), 0);
  EXPECT_EQ(ledger_.TotalMinor(kUsd), 1000);
  EXPECT_EQ(ledger_.postings(), 2u);
}

TEST_F(LedgerTest, VoidReturnsMoneyToSource) {
  ASSERT_EQ(ledger_.Reserve(1, Transfer(1, 2, 300, kUsd)), Reason::kNone);
  ledger_.Void(1);
  EXPECT_FALSE(ledger_.IsPending(1));
  EXPECT_EQ(Balance(ledger_, 1), 1000);
  EXPECT_EQ(Balance(ledger_, 2), 0);
  EXPECT_EQ(ledger_.ClearingMinor(kUsd), 0);
  EXPECT_EQ(ledger_.postings(), 2u);
}

TEST_F(LedgerTest, SettlesOutOfOrder) {
  ASSERT_EQ(ledger_.Reserve(1, Transfer(1, 2, 100, kUsd)), Reason::kNone);
  ASSERT_EQ(ledger_.Reserve(2, Transfer(1, 2, 200, kUsd)), Reason::kNone);
  ASSERT_EQ(ledger_.Reserve(3, Transfer(2, 1, 0 + 1, kUsd)), Reason::kInsufficientFunds);
  ledger_.Commit(2);
  EXPECT_EQ(ledger_.ClearingMinor(kUsd), 100);
  EXPECT_TRUE(ledger_.IsPending(1));
  ledger_.Void(1);
  EXPECT_EQ(Balance(ledger_, 1), 800);
  EXPECT_EQ(Balance(ledger_, 2), 200);
  EXPECT_EQ(ledger_.ClearingMinor(kUsd), 0);
}

TEST(LedgerFundsTest, OverdraftLimitBoundary) {
  Ledger ledger(/*account_capacity=*/4, /*pending_capacity=*/4);
  ASSERT_TRUE(
      ledger
          .OpenAccount(
              {.id = 1, .currency = kUsd, .balance_minor = 100, .overdraft_limit_minor = 50})
          .ok());
  ASSERT_TRUE(ledger.OpenAccount({.id = 2, .currency = kUsd}).ok());

  // One minor unit past the limit fails and posts nothing.
  EXPECT_EQ(ledger.Reserve(1, Transfer(1, 2, 151, kUsd)), Reason::kInsufficientFunds);
  EXPECT_FALSE(ledger.IsPending(1));
  EXPECT_EQ(Balance(ledger, 1), 100);
  EXPECT_EQ(ledger.postings(), 0u);

  // Exactly to the limit passes.
  EXPECT_EQ(ledger.Reserve(2, Transfer(1, 2, 150, kUsd)), Reason::kNone);
  EXPECT_EQ(Balance(ledger, 1), -50);
  EXPECT_EQ(ledger.Reserve(3, Transfer(1, 2, 1, kUsd)), Reason::kInsufficientFunds);
  ledger.Void(2);
  EXPECT_EQ(Balance(ledger, 1), 100);
}

TEST(LedgerFundsTest, HugeAmountDoesNotOverflow) {
  Ledger ledger(/*account_capacity=*/4, /*pending_capacity=*/4);
  ASSERT_TRUE(
      ledger
          .OpenAccount(
              {.id = 1, .currency = kUsd, .balance_minor = -1000, .overdraft_limit_minor = 1000})
          .ok());
  ASSERT_TRUE(ledger.OpenAccount({.id = 2, .currency = kUsd, .balance_minor = 5}).ok());
  // -1000 - INT64_MAX is below INT64_MIN: must read as "insufficient", not wrap to positive.
  EXPECT_EQ(ledger.Reserve(1, Transfer(1, 2, INT64_MAX, kUsd)), Reason::kInsufficientFunds);
  EXPECT_EQ(ledger.Reserve(2, Transfer(2, 1, INT64_MAX, kUsd)), Reason::kInsufficientFunds);
  EXPECT_EQ(ledger.postings(), 0u);
}

TEST_F(LedgerTest, UnknownAccount) {
  EXPECT_EQ(ledger_.Reserve(1, Transfer(99, 2, 10, kUsd)), Reason::kUnknownAccount);
  EXPECT_EQ(ledger_.Reserve(2, Transfer(1, 99, 10, kUsd)), Reason::kUnknownAccount);
  EXPECT_EQ(ledger_.Reserve(3, Transfer(0, 0, 10, kUsd)), Reason::kUnknownAccount);
  EXPECT_EQ(ledger_.pending_count(), 0u);
  EXPECT_EQ(ledger_.postings(), 0u);
  EXPECT_EQ(Balance(ledger_, 1), 1000);
}

TEST_F(LedgerTest, CurrencyMismatch) {
  ASSERT_TRUE(ledger_.OpenAccount({.id = 3, .currency = kEur, .balance_minor = 1000}).ok());
  EXPECT_EQ(ledger_.Reserve(1, Transfer(1, 2, 10, kEur)), Reason::kCurrencyMismatch);
  EXPECT_EQ(ledger_.Reserve(2, Transfer(1, 3, 10, kUsd)), Reason::kCurrencyMismatch);
  EXPECT_EQ(ledger_.Reserve(3, Transfer(3, 1, 10, kEur)), Reason::kCurrencyMismatch);
  EXPECT_EQ(ledger_.pending_count(), 0u);
  EXPECT_EQ(ledger_.postings(), 0u);
}

TEST_F(LedgerTest, NonPositiveAmountIsRefused) {
  EXPECT_EQ(ledger_.Reserve(1, Transfer(1, 2, 0, kUsd)), Reason::kMalformedAmount);
  EXPECT_EQ(ledger_.Reserve(2, Transfer(2, 1, -500, kUsd)), Reason::kMalformedAmount);
  EXPECT_EQ(Balance(ledger_, 2), 0);
  EXPECT_EQ(ledger_.postings(), 0u);
}

TEST_F(LedgerTest, PendingCapacity) {
  for (Sequence seq = 1; seq <= 4; ++seq) {
    ASSERT_TRUE(ledger_.HasPendingRoom());
    ASSERT_EQ(ledger_.Reserve(seq, Transfer(1, 2, 10, kUsd)), Reason::kNone);
  }
  EXPECT_FALSE(ledger_.HasPendingRoom());
  EXPECT_EQ(ledger_.pending_count(), 4u);
  ledger_.Commit(3);
  EXPECT_TRUE(ledger_.HasPendingRoom());
  ASSERT_EQ(ledger_.Reserve(5, Transfer(1, 2, 10, kUsd)), Reason::kNone);
  EXPECT_FALSE(ledger_.HasPendingRoom());
  ledger_.Void(1);
  EXPECT_TRUE(ledger_.HasPendingRoom());
}

TEST(LedgerCurrencyTest, BooksAreSeparatePerCurrency) {
  Ledger ledger(/*account_capacity=*/4, /*pending_capacity=*/4);
  ASSERT_TRUE(ledger.OpenAccount({.id = 1, .currency = kUsd, .balance_minor = 100}).ok());
  ASSERT_TRUE(ledger.OpenAccount({.id = 2, .currency = kUsd}).ok());
  ASSERT_TRUE(ledger.OpenAccount({.id = 3, .currency = kEur, .balance_minor = 70}).ok());
  ASSERT_TRUE(ledger.OpenAccount({.id = 4, .currency = kEur}).ok());
  ASSERT_EQ(ledger.Reserve(1, Transfer(1, 2, 40, kUsd)), Reason::kNone);
  ASSERT_EQ(ledger.Reserve(2, Transfer(3, 4, 30, kEur)), Reason::kNone);
  EXPECT_EQ(ledger.ClearingMinor(kUsd), 40);
  EXPECT_EQ(ledger.ClearingMinor(kEur), 30);
  EXPECT_EQ(ledger.ClearingMinor(kGbp), 0);
  ledger.Commit(2);
  EXPECT_EQ(ledger.ClearingMinor(kEur), 0);
  EXPECT_EQ(ledger.ClearingMinor(kUsd), 40);
  EXPECT_EQ(ledger.TotalMinor(kUsd), 100);
  EXPECT_EQ(ledger.TotalMinor(kEur), 70);
}

TEST(LedgerForEachTest, VisitsAccountsInOpeningOrder) {
  Ledger ledger(/*account_capacity=*/4, /*pending_capacity=*/1);
  for (uint64_t id : {30, 10, 20}) {
    ASSERT_TRUE(ledger.OpenAccount({.id = id, .currency = kUsd}).ok());
  }
  std::vector<uint64_t> ids;
  ledger.ForEachAccount([&](const AccountView& view) { ids.push_back(view.id); });
  EXPECT_EQ(ids, (std::vector<uint64_t>{30, 10, 20}));
}

TEST(LedgerDeathTest, SettlingTwiceAsserts) {
#ifdef NDEBUG
  GTEST_SKIP() << "assertions are compiled out";
#else
  Ledger ledger(/*account_capacity=*/2, /*pending_capacity=*/2);
  ASSERT_TRUE(ledger.OpenAccount({.id = 1, .currency = kUsd, .balance_minor = 10}).ok());
  ASSERT_TRUE(ledger.OpenAccount({.id = 2, .currency = kUsd}).ok());
  ASSERT_EQ(ledger.Reserve(1, Transfer(1, 2, 5, kUsd)), Reason::kNone);
  ledger.Commit(1);
  EXPECT_DEATH(ledger.Void(1), "");
  EXPECT_DEATH(ledger.Commit(2), "");
#endif
}

// --- Random operations against a reference model ---------------------------------------------

constexpr int kAccounts = 48;
constexpr size_t kPendingCapacity = 256;
const CurrencyCode kCurrencies[] = {kUsd, kEur, kGbp};

struct ModelAccount {
  int64_t balance_minor;
  int64_t overdraft_limit_minor;
  CurrencyCode currency;
};

struct ModelReservation {
  uint64_t source;
  uint64_t destination;
  int64_t amount_minor;
};

// Plain maps, no cleverness: the reference the Ledger must agree with.
struct Model {
  std::map<uint64_t, ModelAccount> accounts;
  std::map<Sequence, ModelReservation> pending;

  Reason Expect(const Transaction& txn) const {
    const auto source = accounts.find(txn.source_account);
    const auto destination = accounts.find(txn.destination_account);
    if (source == accounts.end() || destination == accounts.end()) return Reason::kUnknownAccount;
    if (txn.currency != source->second.currency || txn.currency != destination->second.currency) {
      return Reason::kCurrencyMismatch;
    }
    if (source->second.balance_minor - txn.amount_minor < -source->second.overdraft_limit_minor) {
      return Reason::kInsufficientFunds;
    }
    return Reason::kNone;
  }

  int64_t Clearing(CurrencyCode currency) const {
    int64_t sum = 0;
    for (const auto& [seq, reservation] : pending) {
      if (accounts.at(reservation.source).currency == currency) sum += reservation.amount_minor;
    }
    return sum;
  }
};

// Opens the same accounts in the ledger and the model; `reverse` opens them in the other order.
void OpenAccounts(Ledger& ledger, Model* model, bool reverse = false) {
  for (int i = 0; i < kAccounts; ++i) {
    const int n = reverse ? kAccounts - 1 - i : i;
    const AccountSpec spec = {.id = uint64_t(100 + n),
                              .currency = kCurrencies[n % 3],
                              .balance_minor = 5'000 + 1'000 * (n % 7),
                              .overdraft_limit_minor = (n % 4 == 0) ? 2'000 : 0};
    ASSERT_TRUE(ledger.OpenAccount(spec).ok());
    if (model != nullptr) {
      model->accounts[spec.id] = {spec.balance_minor, spec.overdraft_limit_minor, spec.currency};
    }
  }
}

// Generates a seeded stream of operations, mostly valid, some refused.
class OpGenerator {
 public:
  explicit OpGenerator(uint64_t seed) : rng_(seed) {}

  Transaction NextTransfer() {
    const uint64_t source = 100 + Uniform(0, kAccounts + 1);  // Sometimes unknown.
    // Same currency three times in four; otherwise any account (a mismatch two times in three).
    const uint64_t destination =
        Uniform(0, 3) != 0 ? 100 + (source - 100 + 3 * Uniform(1, kAccounts / 3)) % kAccounts
                           : 100 + Uniform(0, kAccounts - 1);
    const CurrencyCode currency = kCurrencies[(source - 100) % 3];
    return Transfer(source, destination, Uniform(1, 3'000), currency);
  }

  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

 private:
  std::mt19937_64 rng_;
};

// Picks a pending seq the way reconciliation settles: usually the oldest, sometimes a later one.
Sequence PickPending(const std::map<Sequence, ModelReservation>& pending, OpGenerator& gen) {
  const int64_t skip_max = std::min<int64_t>(static_cast<int64_t>(pending.size()) - 1, 32);
  const int64_t skip = gen.Uniform(0, 4) == 0 ? gen.Uniform(0, skip_max) : 0;
  return std::next(pending.begin(), skip)->first;
}

void ExpectMatchesModel(const Ledger& ledger, const Model& model,
                        const absl::flat_hash_map<CurrencyCode, int64_t>& totals_minor) {
  for (const auto& [id, account] : model.accounts) {
    ASSERT_EQ(ledger.Find(id)->balance_minor, account.balance_minor) << "account " << id;
    ASSERT_GE(account.balance_minor, -account.overdraft_limit_minor);
  }
  for (CurrencyCode currency : kCurrencies) {
    ASSERT_EQ(ledger.ClearingMinor(currency), model.Clearing(currency));
    ASSERT_EQ(SumOfBalances(ledger, currency), totals_minor.at(currency));
    ASSERT_EQ(ledger.TotalMinor(currency), totals_minor.at(currency));
  }
  ASSERT_EQ(ledger.pending_count(), model.pending.size());
}

TEST(LedgerConservationTest, RandomOperationsConserveMoney) {
  Ledger ledger(/*account_capacity=*/kAccounts, kPendingCapacity);
  Model model;
  OpenAccounts(ledger, &model);
  absl::flat_hash_map<CurrencyCode, int64_t> totals_minor;
  for (CurrencyCode currency : kCurrencies) totals_minor[currency] = ledger.TotalMinor(currency);

  OpGenerator gen(/*seed=*/20240601);
  Sequence next_seq = 1;
  int reserved = 0;
  for (int op = 0; op < 100'000; ++op) {
    const bool reserve = model.pending.empty() || (ledger.HasPendingRoom() && gen.Uniform(0, 1));
    if (reserve) {
      ASSERT_TRUE(ledger.HasPendingRoom());
      const Sequence seq = next_seq++;
      const Transaction txn = gen.NextTransfer();
      const Reason reason = ledger.Reserve(seq, txn);
      ASSERT_EQ(reason, model.Expect(txn)) << "op " << op;
      if (reason != Reason::kNone) continue;
      ++reserved;
      model.accounts[txn.source_account].balance_minor -= txn.amount_minor;
      model.pending[seq] = {txn.source_account, txn.destination_account, txn.amount_minor};
    } else {
      const Sequence seq = PickPending(model.pending, gen);
      const ModelReservation reservation = model.pending.at(seq);
      ASSERT_TRUE(ledger.IsPending(seq));
      const bool commit = gen.Uniform(0, 9) < 7;
      if (commit) {
        ledger.Commit(seq);
      } else {
        ledger.Void(seq);
      }
      model.accounts[commit ? reservation.destination : reservation.source].balance_minor +=
          reservation.amount_minor;
      model.pending.erase(seq);
      ASSERT_FALSE(ledger.IsPending(seq));
    }
    if (op % 997 == 0) ExpectMatchesModel(ledger, model, totals_minor);
  }
  ExpectMatchesModel(ledger, model, totals_minor);
  EXPECT_GT(reserved, 20'000);  // The stream exercised the postings, not just the refusals.

  while (!model.pending.empty()) {
    ledger.Commit(model.pending.begin()->first);
    const ModelReservation& reservation = model.pending.begin()->second;
    model.accounts[reservation.destination].balance_minor += reservation.amount_minor;
    model.pending.erase(model.pending.begin());
  }
  ExpectMatchesModel(ledger, model, totals_minor);
  for (CurrencyCode currency : kCurrencies) EXPECT_EQ(ledger.ClearingMinor(currency), 0);
  EXPECT_EQ(ledger.postings(), 2u * reserved);
}

// Applies `ops` random operations; both ledgers fed the same seed see the same stream.
void RunRandomOps(Ledger& ledger, uint64_t seed, int ops) {
  OpGenerator gen(seed);
  std::vector<Sequence> pending;  // In reservation order.
  for (Sequence seq = 1; seq <= static_cast<Sequence>(ops); ++seq) {
    if (!pending.empty() && (!ledger.HasPendingRoom() || gen.Uniform(0, 1))) {
      const auto it = pending.begin() + gen.Uniform(0, std::min<int64_t>(pending.size() - 1, 8));
      if (gen.Uniform(0, 3) == 0) {
        ledger.Void(*it);
      } else {
        ledger.Commit(*it);
      }
      pending.erase(it);
    }
    if (ledger.Reserve(seq, gen.NextTransfer()) == Reason::kNone) pending.push_back(seq);
  }
}

TEST(LedgerReplayTest, SameOperationsGiveSameStateHash) {
  Ledger a(kAccounts, kPendingCapacity);
  Ledger b(kAccounts, kPendingCapacity);
  // Opening order and pending capacity are not state: the hash must not depend on them.
  Ledger c(kAccounts, kPendingCapacity * 4);
  OpenAccounts(a, nullptr);
  OpenAccounts(b, nullptr);
  OpenAccounts(c, nullptr, /*reverse=*/true);
  EXPECT_EQ(a.StateHash(), b.StateHash());
  EXPECT_EQ(a.StateHash(), c.StateHash());

  RunRandomOps(a, /*seed=*/7, 20'000);
  RunRandomOps(b, /*seed=*/7, 20'000);
  RunRandomOps(c, /*seed=*/7, 20'000);
  ASSERT_GT(a.pending_count(), 0u);
  EXPECT_EQ(a.StateHash(), b.StateHash());
  EXPECT_EQ(a.StateHash(), c.StateHash());
  EXPECT_EQ(a.postings(), b.postings());

  // One different operation changes the hash.
  const uint64_t before = a.StateHash();
  ASSERT_EQ(a.Reserve(1'000'000, Transfer(100, 103, 1, kUsd)), Reason::kNone);
  EXPECT_NE(a.StateHash(), before);
  EXPECT_NE(a.StateHash(), b.StateHash());
  ASSERT_EQ(b.Reserve(1'000'000, Transfer(100, 103, 1, kUsd)), Reason::kNone);
  EXPECT_EQ(a.StateHash(), b.StateHash());
  // Commit and Void of the same reservation end in different states.
  a.Commit(1'000'000);
  b.Void(1'000'000);
  EXPECT_NE(a.StateHash(), b.StateHash());
}

TEST(LedgerAllocationTest, HotPathDoesNotAllocate) {
  Ledger ledger(kAccounts, kPendingCapacity);
  OpenAccounts(ledger, nullptr);
  OpGenerator gen(/*seed=*/3);
  std::vector<Transaction> transfers(20'000);
  for (Transaction& txn : transfers) txn = gen.NextTransfer();

  const long allocations_before = g_allocations.load(std::memory_order_relaxed);
  Sequence seq = 0;
  int passed = 0;
  for (const Transaction& txn : transfers) {
    ++seq;
    // Settling 64 behind keeps that many open, so the table's probe and shift paths run too.
    if (seq > 64 && ledger.IsPending(seq - 64)) {
      if (seq % 3 == 0) {
        ledger.Void(seq - 64);
      } else {
        ledger.Commit(seq - 64);
      }
    }
    passed += ledger.Reserve(seq, txn) == Reason::kNone;
  }
  const long allocations_after = g_allocations.load(std::memory_order_relaxed);
  EXPECT_EQ(allocations_after, allocations_before);
  EXPECT_GT(passed, 10'000);
}

// Debits must not exceed credits: the balance never goes below 0, whatever the overdraft.
TEST(LedgerFlagsTest, DebitsMustNotExceedCredits) {
  Ledger ledger(4, 4);
  ASSERT_TRUE(ledger.OpenAccount({.id = 1, .currency = kUsd, .balance_minor = 100,
                                  .overdraft_limit_minor = 1'000,
                                  .flags = kAccountDebitsMustNotExceedCredits}).ok());
  ASSERT_TRUE(ledger.OpenAccount({.id = 2, .currency = kUsd}).ok());
  EXPECT_EQ(ledger.Reserve(1, Transfer(1, 2, 101, kUsd)), Reason::kInsufficientFunds);
  EXPECT_EQ(ledger.Reserve(2, Transfer(1, 2, 100, kUsd)), Reason::kNone);
  EXPECT_EQ(ledger.Find(1)->pending_count, 1u);
  EXPECT_EQ(ledger.Find(2)->pending_count, 1u);
  ledger.Commit(2);
  EXPECT_EQ(Balance(ledger, 1), 0);
  EXPECT_EQ(ledger.Find(1)->pending_count, 0u);
  EXPECT_FALSE(ledger.OpenAccount({.id = 3, .currency = kUsd, .balance_minor = -1,
                                   .overdraft_limit_minor = 5,
                                   .flags = kAccountDebitsMustNotExceedCredits}).ok());
  EXPECT_FALSE(ledger.OpenAccount({.id = 3, .currency = kUsd, .flags = kAccountFlagsKnown}).ok());
}

// Credits must not exceed debits, counting what is pending both ways: a voided debit comes
// back, so it may not make room for a credit before it settles.
TEST(LedgerFlagsTest, CreditsMustNotExceedDebitsCountingPending) {
  Ledger ledger(4, 8);
  ASSERT_TRUE(ledger.OpenAccount({.id = 1, .currency = kUsd, .balance_minor = 0,
                                  .overdraft_limit_minor = 1'000,
                                  .flags = kAccountCreditsMustNotExceedDebits}).ok());
  ASSERT_TRUE(ledger.OpenAccount({.id = 2, .currency = kUsd, .balance_minor = 1'000}).ok());
  EXPECT_EQ(ledger.Reserve(1, Transfer(2, 1, 1, kUsd)), Reason::kCreditsExceedDebits);
  EXPECT_EQ(ledger.Reserve(2, Transfer(1, 2, 50, kUsd)), Reason::kNone);  // Balance -50.
  // The debit may still be voided: no credit fits yet.
  EXPECT_EQ(ledger.Reserve(3, Transfer(2, 1, 50, kUsd)), Reason::kCreditsExceedDebits);
  ledger.Commit(2);
  EXPECT_EQ(ledger.Reserve(4, Transfer(2, 1, 30, kUsd)), Reason::kNone);
  EXPECT_EQ(ledger.Reserve(5, Transfer(2, 1, 21, kUsd)), Reason::kCreditsExceedDebits);
  EXPECT_EQ(ledger.Reserve(6, Transfer(2, 1, 20, kUsd)), Reason::kNone);
  ledger.Commit(4);
  ledger.Commit(6);
  EXPECT_EQ(Balance(ledger, 1), 0);
  EXPECT_EQ(SumOfBalances(ledger, kUsd), 1'000);
  EXPECT_FALSE(ledger.OpenAccount({.id = 3, .currency = kUsd, .balance_minor = 1,
                                   .flags = kAccountCreditsMustNotExceedDebits}).ok());
  // Flags survive a snapshot, and so does what the checks count.
  ASSERT_EQ(ledger.Reserve(7, Transfer(1, 2, 10, kUsd)), Reason::kNone);
  std::string bytes;
  ASSERT_TRUE(ledger.SaveState(&bytes).ok());
  Ledger restored(4, 8);
  ASSERT_TRUE(restored.RestoreState(bytes).ok());
  EXPECT_EQ(restored.Find(1)->flags, kAccountCreditsMustNotExceedDebits);
  EXPECT_EQ(restored.StateHash(), ledger.StateHash());
  EXPECT_EQ(restored.Reserve(8, Transfer(2, 1, 1, kUsd)), Reason::kCreditsExceedDebits);
}

}  // namespace
}  // namespace ledger
}  // namespace vouch
