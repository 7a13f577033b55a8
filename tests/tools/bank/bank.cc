#include "tests/tools/bank/bank.h"

#include <algorithm>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/client.h"

namespace vouch::bank {
namespace {

using client::Client;
using client::ClientOptions;

constexpr absl::Duration kCallTimeout = absl::Seconds(10);
constexpr absl::Duration kReconnectPause = absl::Milliseconds(50);
constexpr absl::Duration kConnectGiveUp = absl::Seconds(60);  // A server that never comes back.

// Connects to the server at *port until it works or `give_up` passes; null then.
std::unique_ptr<Client> ConnectUntil(const std::atomic<int>* port, ClientOptions options,
                                     client::Handlers handlers, absl::Time give_up) {
  for (;;) {
    options.port = port->load(std::memory_order_relaxed);  // relaxed: a plain value.
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options, handlers);
    if (client.ok()) return *std::move(client);
    if (absl::Now() > give_up) return nullptr;
    absl::SleepFor(kReconnectPause);
  }
}

const v1::CurrencyTotal* FindUsd(const v1::Balances& balances) {
  for (const v1::CurrencyTotal& total : balances.currencies()) {
    if (total.currency() == "USD") return &total;
  }
  return nullptr;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Model

void Model::Sent(uint64_t id, const Transfer& transfer) {
  absl::MutexLock lock(&mu_);
  if (sent_.emplace(id, transfer).second) ++counts_.sent;
}

void Model::Confirmed(uint64_t id, uint64_t seq) {
  absl::MutexLock lock(&mu_);
  if (confirmed_.emplace(id, seq).second) ++counts_.confirmed;
}

void Model::Rejected() {
  absl::MutexLock lock(&mu_);
  ++counts_.rejected;
}

void Model::Decided(const v1::Outcome& outcome) {
  absl::MutexLock lock(&mu_);
  if (!outcomes_.emplace(outcome.transaction_id(), outcome.kind()).second) {
    ++second_outcomes_;
    return;
  }
  ++counts_.outcomes[outcome.kind()];
  if (outcome.reversed()) ++counts_.reversed;
  if (outcome.reason() == v1::REASON_INSUFFICIENT_FUNDS) ++counts_.insufficient_funds;
}

bool Model::Settled() const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, seq] : confirmed_) {
    if (!outcomes_.contains(id)) return false;
  }
  return true;
}

std::vector<uint64_t> Model::ConfirmedIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t> ids;
  ids.reserve(confirmed_.size());
  for (const auto& [id, seq] : confirmed_) ids.push_back(id);
  return ids;
}

std::vector<int64_t> Model::ExpectedBalances(const BankConfig& config) const {
  std::vector<int64_t> balances(config.accounts + 1, config.opening_balance_minor);
  absl::MutexLock lock(&mu_);
  for (const auto& [id, kind] : outcomes_) {
    if (kind != v1::OUTCOME_KIND_VERIFIED) continue;
    const Transfer& transfer = sent_.at(id);
    balances[transfer.from] -= transfer.amount_minor;
    balances[transfer.to] += transfer.amount_minor;
  }
  return balances;
}

std::string Model::ExactlyOnceProblems() const {
  absl::MutexLock lock(&mu_);
  uint64_t missing = 0;
  uint64_t unconfirmed = 0;
  for (const auto& [id, seq] : confirmed_) missing += outcomes_.contains(id) ? 0 : 1;
  for (const auto& [id, kind] : outcomes_) unconfirmed += confirmed_.contains(id) ? 0 : 1;
  if (missing == 0 && unconfirmed == 0 && second_outcomes_ == 0) return "";
  return absl::StrCat(missing, " confirmed transfers without an outcome, ", unconfirmed,
                      " outcomes for transfers never seen CONFIRMED, ", second_outcomes_,
                      " second outcomes");
}

Model::Counts Model::counts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

// ---------------------------------------------------------------------------------------------
// Auditor

bool Auditor::Check(const v1::Balances& balances) {
  std::string problem;
  const v1::CurrencyTotal* usd = FindUsd(balances);
  if (usd == nullptr || usd->total_minor() != config_.total_minor()) {
    problem = absl::StrCat("USD total ", usd == nullptr ? -1 : usd->total_minor(), ", expected ",
                           config_.total_minor());
  } else if (balances.accounts_size() != config_.accounts) {
    problem = absl::StrCat(balances.accounts_size(), " accounts read, expected ", config_.accounts);
  } else {
    int64_t sum = usd->clearing_minor();
    for (const v1::AccountBalance& account : balances.accounts()) {
      sum += account.balance_minor();
      if (account.balance_minor() < -config_.overdraft_limit_minor ||
          account.overdraft_limit_minor() != config_.overdraft_limit_minor) {
        problem = absl::StrCat("account ", account.account(), " balance ",
                               account.balance_minor(), " limit ",
                               account.overdraft_limit_minor());
      }
    }
    if (problem.empty() && sum != config_.total_minor()) {
      problem = absl::StrCat("balances + clearing (", usd->clearing_minor(), ") sum to ", sum,
                             ", expected ", config_.total_minor(), " (checked_below_seq ",
                             balances.checked_below_seq(), ")");
    }
  }
  if (problem.empty()) return true;
  absl::MutexLock lock(&mu_);
  if (violations_++ == 0) first_violation_ = problem;
  return false;
}

uint64_t Auditor::violations() const {
  absl::MutexLock lock(&mu_);
  return violations_;
}

std::string Auditor::first_violation() const {
  absl::MutexLock lock(&mu_);
  return first_violation_;
}

// ---------------------------------------------------------------------------------------------
// Bank

std::string RunReport::Summary() const {
  return absl::StrCat(
      "transfers sent ", counts.sent, ", confirmed ", counts.confirmed, ", rejected ",
      counts.rejected, "; outcomes VERIFIED ", counts.outcomes[v1::OUTCOME_KIND_VERIFIED],
      ", LATE_FAILED ", counts.outcomes[v1::OUTCOME_KIND_LATE_FAILED], " (insufficient funds ",
      counts.insufficient_funds, "), LATE_TIMEOUT ", counts.outcomes[v1::OUTCOME_KIND_LATE_TIMEOUT],
      ", reversed ", counts.reversed, "; balance reads audited ", reads, " (retried ",
      reads_retried, "), violations ", violations, "; reconnects ", reconnects);
}

Bank::Bank(const BankConfig& config, const std::atomic<int>* port)
    : config_(config), port_(port), auditor_(config) {}

void Bank::Writer(int index, absl::Time end) {
  std::mt19937_64 rng(config_.seed * 7919 + static_cast<uint64_t>(index));
  // Highest outcome seq this session has seen: written by the client's reader thread (the
  // handler), read here after that client is gone. relaxed: the join in ~Client orders it.
  std::atomic<uint64_t> seen_seq{0};
  client::Handlers handlers;
  handlers.on_outcome = [this, &seen_seq](const v1::Outcome& outcome, int64_t) {
    model_.Decided(outcome);
    if (outcome.seq() > seen_seq.load(std::memory_order_relaxed)) {
      seen_seq.store(outcome.seq(), std::memory_order_relaxed);
    }
  };
  ClientOptions options;
  options.client_name = absl::StrCat("bank-writer-", index);
  std::unique_ptr<Client> client;
  auto reconnect = [&]() -> bool {
    if (client != nullptr) reconnects_.fetch_add(1, std::memory_order_relaxed);
    client.reset();  // Joins its reader: no handler runs past here.
    // Resume from the highest seq seen (0: every outcome retained) under the epoch seen.
    options.resume = true;
    options.resume_from_seq = seen_seq.load(std::memory_order_relaxed);
    client = ConnectUntil(port_, options, handlers, absl::Now() + kConnectGiveUp);
    if (client == nullptr) return false;
    // The journal (ack durable) keeps the epoch across the kills, so the position stays valid.
    if (const std::optional<v1::Welcome> welcome = client->welcome()) {
      options.resume_epoch = welcome->epoch();
    }
    return true;
  };
  // Leaves the submitting count however it ends (done, or gave up on the server).
  struct Phase {
    std::atomic<int>* submitting;
    bool left = false;
    void Leave() {
      if (!left) submitting->fetch_sub(1, std::memory_order_relaxed);  // relaxed: polled.
      left = true;
    }
    ~Phase() { Leave(); }
  } transfer_phase{&submitting_};
  if (!reconnect()) return;
  v1::Transaction txn;
  txn.set_currency("USD");
  txn.set_merchant_id(1);
  txn.set_merchant_category(5411);
  txn.set_country("GB");
  for (uint64_t n = 1; absl::Now() < end; ++n) {
    const uint64_t id = (static_cast<uint64_t>(index + 1) << 40) | n;
    const uint64_t from = 1 + rng() % config_.accounts;
    const uint64_t to = 1 + (from + rng() % (config_.accounts - 1)) % config_.accounts;
    // One in ten asks for more than an opening balance plus the overdraft: mostly refused by
    // the ledger (LATE_FAILED); the rest are small, and fail only from drained accounts.
    const int64_t amount = rng() % 10 == 0
                               ? config_.opening_balance_minor + config_.overdraft_limit_minor +
                                     1 + static_cast<int64_t>(rng() % 1000)
                               : 1 + static_cast<int64_t>(rng() % (config_.opening_balance_minor / 4));
    txn.set_id(id);
    txn.set_source_account(from);
    txn.set_destination_account(to);
    txn.set_amount(amount);
    model_.Sent(id, {from, to, amount});
    // The same id until answered: after a lost connection the server answers a resubmission
    // with what it stored (duplicate), or decides it now if it never kept the first.
    for (;;) {
      absl::StatusOr<v1::Confirmation> answer = client->Submit(txn, kCallTimeout);
      if (!answer.ok()) {
        if (!reconnect()) return;
        continue;
      }
      if (answer->status() == v1::CONFIRM_STATUS_BUSY) {
        absl::SleepFor(absl::Milliseconds(1));
        continue;
      }
      if (answer->status() == v1::CONFIRM_STATUS_CONFIRMED) {
        model_.Confirmed(id, answer->seq());
      } else {
        model_.Rejected();
      }
      break;
    }
  }
  transfer_phase.Leave();
  // Keep the session connected until every outcome is in.
  while (!stop_.load(std::memory_order_relaxed)) {
    if (!client->status().ok() && !reconnect()) return;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void Bank::Reader(int index) {
  (void)index;
  v1::Balances balances;
  std::unique_ptr<Client> client;
  while (!stop_.load(std::memory_order_relaxed)) {
    if (client == nullptr) {
      client = ConnectUntil(port_, {}, {}, absl::Now() + kConnectGiveUp);
      if (client == nullptr) return;
    }
    absl::StatusOr<v1::Balances> read = client->ReadBalances({}, kCallTimeout);
    if (read.ok()) {
      auditor_.Check(*read);
      reads_.fetch_add(1, std::memory_order_relaxed);
      if (read_hook) read_hook();
    } else if (client->status().ok()) {
      reads_retried_.fetch_add(1, std::memory_order_relaxed);  // BUSY, TIMEOUT: retry.
    } else {
      client.reset();
      reconnects_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

// After settling: one read must show clearing 0 and exactly the balances the outcomes imply.
void Bank::FinalCheck(RunReport* report) {
  std::unique_ptr<Client> client = ConnectUntil(port_, {}, {}, absl::Now() + kConnectGiveUp);
  if (client == nullptr) return;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  absl::StatusOr<v1::Balances> read;
  // Settlements reach the ledger just after the outcome is told: wait for clearing to empty.
  for (;;) {
    read = client->ReadBalances({}, kCallTimeout);
    if (read.ok() && FindUsd(*read) != nullptr && FindUsd(*read)->clearing_minor() == 0) break;
    if (absl::Now() > give_up) return;
    absl::SleepFor(absl::Milliseconds(20));
  }
  report->final_read = true;
  report->final_clearing_minor = 0;
  const std::vector<int64_t> expected = model_.ExpectedBalances(config_);
  for (const v1::AccountBalance& account : read->accounts()) {
    if (account.balance_minor() != expected[account.account()]) {
      absl::StrAppend(&report->final_balance_problems, "account ", account.account(), ": ",
                      account.balance_minor(), " read, ", expected[account.account()],
                      " implied by the outcomes; ");
    }
  }
}

RunReport Bank::Run(const std::function<void(absl::Time end)>& during) {
  const absl::Time end = absl::Now() + config_.duration;
  submitting_.store(config_.writers, std::memory_order_relaxed);
  std::vector<std::thread> writers;
  std::vector<std::thread> readers;
  for (int i = 0; i < config_.writers; ++i) {
    writers.emplace_back([this, i, end] { Writer(i, end); });
  }
  for (int i = 0; i < config_.readers; ++i) readers.emplace_back([this, i] { Reader(i); });
  during(end);
  absl::SleepFor(std::max(absl::ZeroDuration(), end - absl::Now()));
  RunReport report;
  const absl::Time settle_by = absl::Now() + config_.settle_timeout;
  while (absl::Now() < settle_by &&
         !(submitting_.load(std::memory_order_relaxed) == 0 && model_.Settled())) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  report.settled = model_.Settled();
  FinalCheck(&report);
  stop_.store(true, std::memory_order_relaxed);
  for (std::thread& thread : writers) thread.join();
  for (std::thread& thread : readers) thread.join();
  report.counts = model_.counts();
  report.exactly_once_problems = model_.ExactlyOnceProblems();
  report.reads = reads_.load(std::memory_order_relaxed);
  report.reads_retried = reads_retried_.load(std::memory_order_relaxed);
  report.reconnects = reconnects_.load(std::memory_order_relaxed);
  report.violations = auditor_.violations();
  report.first_violation = auditor_.first_violation();
  return report;
}

}  // namespace vouch::bank
