// Client against the real vouchd, over loopback TCP: the contract end to end.
//
// Method: each test starts vouchd as a child process on an ephemeral port (VouchdProcess), talks
// to it only through the Client API, and at the end stops it with SIGTERM and expects a graceful
// exit (status 0). The pipelined test submits 10,000 workload transactions without waiting and
// checks the promise itself: every CONFIRMED transaction gets exactly one Outcome on the
// submitting connection, after its Confirmation, and no other Outcome arrives. No assertion
// depends on timing; the generous waits only bound a broken run.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "engine/wire/convert.h"
#include "gtest/gtest.h"
#include "proto/vouch.pb.h"
#include "tests/client/vouchd_process.h"
#include "tools/workload/workload.h"

namespace vouch::client {
namespace {

using ::vouch::testing::VouchdProcess;

constexpr absl::Duration kPatience = absl::Seconds(10);  // Never reached when things work.
constexpr absl::Duration kStopTimeout = absl::Seconds(15);  // Drain (5 s) plus flush (2 s).
constexpr int64_t kAccounts = 1'000;

class ClientTest : public ::testing::Test {
 protected:
  void StartVouchd(std::vector<std::string> flags = {}) {
    flags.push_back("--accounts=" + std::to_string(kAccounts));
    absl::StatusOr<std::unique_ptr<VouchdProcess>> vouchd = VouchdProcess::Start(flags);
    ASSERT_TRUE(vouchd.ok()) << vouchd.status();
    vouchd_ = *std::move(vouchd);
  }
  ClientOptions Options() const {
    ClientOptions options;
    options.port = vouchd_->port();
    return options;
  }
  // Every test ends with a graceful shutdown.
  void TearDown() override {
    if (vouchd_ == nullptr) return;
    absl::StatusOr<int> exit_status = vouchd_->Stop(kStopTimeout);
    ASSERT_TRUE(exit_status.ok()) << exit_status.status();
    EXPECT_EQ(*exit_status, 0);
  }

  std::unique_ptr<VouchdProcess> vouchd_;
};

workload::WorkloadConfig Workload() {
  workload::WorkloadConfig config;
  config.accounts = kAccounts;
  return config;
}

v1::Transaction NormalTransaction(uint64_t id) {
  v1::Transaction transaction;
  wire::ToProto(workload::WorkloadGenerator(Workload()).Next(), &transaction);
  transaction.set_id(id);
  return transaction;
}

TEST_F(ClientTest, BlockingSubmitQueryAndPing) {
  StartVouchd();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();

  absl::StatusOr<v1::Confirmation> confirmation =
      (*client)->Submit(NormalTransaction(42), kPatience);
  ASSERT_TRUE(confirmation.ok()) << confirmation.status();
  EXPECT_EQ(confirmation->transaction_id(), 42u);
  EXPECT_EQ(confirmation->status(), v1::CONFIRM_STATUS_CONFIRMED);
  EXPECT_GT(confirmation->seq(), 0u);

  // Its Outcome follows on this connection (no handler: the event queue).
  Event event;
  ASSERT_TRUE((*client)->NextEvent(&event, kPatience).ok());
  const auto* outcome = std::get_if<v1::Outcome>(&event.body);
  ASSERT_NE(outcome, nullptr);
  EXPECT_EQ(outcome->transaction_id(), 42u);
  EXPECT_EQ(outcome->seq(), confirmation->seq());

  absl::StatusOr<v1::Status> status = (*client)->Query(42, kPatience);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->found());
  ASSERT_FALSE(status->history().empty());
  EXPECT_EQ(status->history(0).state(), v1::STATE_KIND_RECEIVED);

  absl::StatusOr<v1::Status> unknown = (*client)->Query(43, kPatience);
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_FALSE(unknown->found());

  absl::StatusOr<v1::Pong> pong = (*client)->Ping(kPatience);
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_GT(pong->server_time_ns(), 0);

  // Resubmitting the id returns the stored answer.
  absl::StatusOr<v1::Confirmation> again = (*client)->Submit(NormalTransaction(42), kPatience);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  EXPECT_EQ(again->seq(), confirmation->seq());
}

// What came back on the pipelined connection, written by its reader thread.
class Ledger {
 public:
  void OnConfirmation(const v1::Confirmation& confirmation) {
    absl::MutexLock lock(&mu_);
    ++answered_;
    if (confirmation.status() != v1::CONFIRM_STATUS_CONFIRMED) return;
    ++confirmed_;
    outcomes_by_id_.emplace(confirmation.transaction_id(), 0);
  }
  void OnOutcome(const v1::Outcome& outcome) {
    absl::MutexLock lock(&mu_);
    ++outcomes_;
    const auto entry = outcomes_by_id_.find(outcome.transaction_id());
    if (entry == outcomes_by_id_.end()) {
      ++unexpected_outcomes_;  // Not (yet) confirmed: no Outcome may come before that.
    } else {
      ++entry->second;
    }
  }
  // Waits until `sent` answers and an Outcome per confirmation have come, or the timeout.
  void AwaitAll(uint64_t sent, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const auto done = [this, sent]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return answered_ == sent && outcomes_ >= confirmed_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  void Check(uint64_t sent) {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(answered_, sent);
    EXPECT_GT(confirmed_, 0u);
    EXPECT_EQ(unexpected_outcomes_, 0u);
    uint64_t missing = 0;
    uint64_t repeated = 0;
    for (const auto& [id, outcomes] : outcomes_by_id_) {
      missing += outcomes == 0 ? 1 : 0;
      repeated += outcomes > 1 ? 1 : 0;
    }
    EXPECT_EQ(missing, 0u) << "confirmed transactions without an Outcome";
    EXPECT_EQ(repeated, 0u) << "confirmed transactions with more than one Outcome";
  }

 private:
  absl::Mutex mu_;
  uint64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t confirmed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t outcomes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t unexpected_outcomes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, int> outcomes_by_id_ ABSL_GUARDED_BY(mu_);
};

// The account calls, across a restart of a journaled vouchd: what was created and changed is
// still there, and a retry of the creation answers EXISTS.
TEST_F(ClientTest, AccountsAreCreatedChangedAndLookedUpAndSurviveARestart) {
  const std::string data_dir = ::testing::TempDir() + "/client_accounts";
  std::filesystem::remove_all(data_dir);
  // Small tables: two starts with a journal stay well inside the start timeout under TSan.
  const std::vector<std::string> flags = {"--ack=written", "--data_dir=" + data_dir,
                                          "--idempotency_window=65536",
                                          "--account_capacity=4096"};
  StartVouchd(flags);
  v1::Account funding;
  funding.set_id(70'001);
  funding.set_currency("USD");
  funding.set_opening_balance_minor(9'000);
  funding.set_user_data(0xfeed);
  v1::Account payee;
  payee.set_id(70'002);
  payee.set_currency("USD");
  payee.set_flags(v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS);
  v1::Account bad_currency = payee;
  bad_currency.set_id(70'003);
  bad_currency.set_currency("XXX");
  {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options());
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<v1::AccountsCreated> created =
        (*client)->CreateAccounts({funding, payee, bad_currency}, kPatience);
    ASSERT_TRUE(created.ok()) << created.status();
    ASSERT_EQ(created->results_size(), 3);
    EXPECT_EQ(created->results(0).result(), v1::CREATE_ACCOUNT_RESULT_CREATED);
    EXPECT_EQ(created->results(1).result(), v1::CREATE_ACCOUNT_RESULT_CREATED);
    EXPECT_EQ(created->results(2).result(), v1::CREATE_ACCOUNT_RESULT_INVALID);
    EXPECT_NE(created->results(2).message().find("XXX"), std::string::npos);

    v1::AccountLimits limits;
    limits.set_transaction_minor_max(100);
    absl::StatusOr<v1::AccountChanged> changed = (*client)->ChangeAccount(
        funding.id(), v1::ACCOUNT_ACTION_SET_LIMITS, limits, kPatience);
    ASSERT_TRUE(changed.ok()) << changed.status();
    EXPECT_EQ(changed->result(), v1::ACCOUNT_REQUEST_RESULT_OK);
    // Over the account's own limit: refused at once, with the per-transaction reason.
    v1::Transaction over;
    over.set_id(70'101);
    over.set_source_account(funding.id());
    over.set_destination_account(payee.id());
    over.set_amount(101);
    over.set_currency("USD");
    absl::StatusOr<v1::Confirmation> refused = (*client)->Submit(over, kPatience);
    ASSERT_TRUE(refused.ok()) << refused.status();
    EXPECT_EQ(refused->status(), v1::CONFIRM_STATUS_REJECTED);
    EXPECT_EQ(refused->reason(), v1::REASON_OVER_LIMIT);
    changed = (*client)->ChangeAccount(payee.id(), v1::ACCOUNT_ACTION_FREEZE, {}, kPatience);
    ASSERT_TRUE(changed.ok()) << changed.status();
    EXPECT_EQ(changed->result(), v1::ACCOUNT_REQUEST_RESULT_OK);
  }
  absl::StatusOr<int> exit_status = vouchd_->Stop(kStopTimeout);
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  vouchd_.reset();
  StartVouchd(flags);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<v1::AccountInfo> info = (*client)->LookupAccount(funding.id(), kPatience);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->result(), v1::ACCOUNT_REQUEST_RESULT_OK);
  EXPECT_EQ(info->balance_minor(), 9'000);
  EXPECT_EQ(info->fields().user_data(), 0xfeedu);
  EXPECT_EQ(info->fields().limits().transaction_minor_max(), 100);
  ASSERT_GE(info->history_size(), 2);
  EXPECT_EQ(info->history(info->history_size() - 1).kind(),
            v1::ACCOUNT_CHANGE_KIND_LIMITS_CHANGED);
  info = (*client)->LookupAccount(payee.id(), kPatience);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state(), v1::ACCOUNT_STATE_FROZEN);
  absl::StatusOr<v1::AccountsCreated> again =
      (*client)->CreateAccounts({funding}, kPatience);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->results(0).result(), v1::CREATE_ACCOUNT_RESULT_EXISTS);
  info = (*client)->LookupAccount(70'999, kPatience);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->result(), v1::ACCOUNT_REQUEST_RESULT_NOT_FOUND);
  EXPECT_FALSE((*client)->CreateAccounts({}, kPatience).ok());
}

// A CreateAccounts whose answer the client never saw (its call timed out, or the server was
// killed) is simply sent again, as vouch.proto promises: the retry answers EXISTS for what was
// created (CREATED for what a kill -9 lost before it was kept), and every account's opening
// deposit enters its currency's total exactly once. Under each ack policy; the kill needs a
// journal.
class CreateAccountsRetryTest : public ClientTest,
                                public ::testing::WithParamInterface<std::string> {
 protected:
  std::vector<std::string> Flags() const {
    if (GetParam() == "memory") return {"--ack=memory"};
    const std::string data_dir = ::testing::TempDir() + "/create_retry_" + GetParam();
    return {"--ack=" + GetParam(), "--data_dir=" + data_dir, "--idempotency_window=65536",
            "--account_capacity=4096"};
  }
  static std::vector<v1::Account> Batch(uint64_t first_id) {
    std::vector<v1::Account> batch(64);
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].set_id(first_id + i);
      batch[i].set_currency("USD");
      batch[i].set_opening_balance_minor(100);
    }
    return batch;
  }
  static int64_t UsdTotal(Client& client) {
    absl::StatusOr<v1::Balances> balances = client.ReadBalances({}, kPatience);
    EXPECT_TRUE(balances.ok()) << balances.status();
    if (!balances.ok()) return -1;
    for (const v1::CurrencyTotal& total : balances->currencies()) {
      if (total.currency() == "USD") return total.total_minor();
    }
    return 0;
  }
};

TEST_P(CreateAccountsRetryTest, ABatchWhoseAnswerWasLostIsSentAgainAndCountsOnce) {
  if (GetParam() != "memory") {
    std::filesystem::remove_all(::testing::TempDir() + "/create_retry_" + GetParam());
  }
  StartVouchd(Flags());
  const std::vector<v1::Account> first = Batch(80'000);
  int64_t total_before = 0;
  {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options());
    ASSERT_TRUE(client.ok()) << client.status();
    total_before = UsdTotal(**client);
    // The frame is written; the wait ends at once. The server still creates the batch. On a
    // fast run the answer can already be in when the zero wait looks, so OK with every entry
    // CREATED is the other correct result; either way the retries below must answer EXISTS.
    const absl::StatusOr<v1::AccountsCreated> timed_out =
        (*client)->CreateAccounts(first, absl::ZeroDuration());
    if (timed_out.ok()) {
      for (const v1::AccountsCreated::Entry& entry : timed_out->results()) {
        EXPECT_EQ(entry.result(), v1::CREATE_ACCOUNT_RESULT_CREATED) << entry.id();
      }
    } else {
      ASSERT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded)
          << timed_out.status();
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      absl::StatusOr<v1::AccountsCreated> retried = (*client)->CreateAccounts(first, kPatience);
      ASSERT_TRUE(retried.ok()) << retried.status();
      ASSERT_EQ(retried->results_size(), static_cast<int>(first.size()));
      for (const v1::AccountsCreated::Entry& entry : retried->results()) {
        EXPECT_EQ(entry.result(), v1::CREATE_ACCOUNT_RESULT_EXISTS) << entry.id();
      }
    }
    EXPECT_EQ(UsdTotal(**client), total_before + 64 * 100);
  }
  if (GetParam() == "memory") return;

  // Killed with a creation in flight: after the restart the retry finds each account created
  // once or not at all, and the acknowledged batch is still there.
  const std::vector<v1::Account> second = Batch(90'000);
  {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options());
    ASSERT_TRUE(client.ok()) << client.status();
    (void)(*client)->CreateAccounts(second, absl::ZeroDuration());
    vouchd_.reset();  // SIGKILL.
  }
  StartVouchd(Flags());
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<v1::AccountsCreated> retried = (*client)->CreateAccounts(second, kPatience);
  ASSERT_TRUE(retried.ok()) << retried.status();
  for (const v1::AccountsCreated::Entry& entry : retried->results()) {
    EXPECT_TRUE(entry.result() == v1::CREATE_ACCOUNT_RESULT_CREATED ||
                entry.result() == v1::CREATE_ACCOUNT_RESULT_EXISTS)
        << entry.id() << " " << v1::CreateAccountResult_Name(entry.result());
  }
  retried = (*client)->CreateAccounts(first, kPatience);
  ASSERT_TRUE(retried.ok()) << retried.status();
  for (const v1::AccountsCreated::Entry& entry : retried->results()) {
    EXPECT_EQ(entry.result(), v1::CREATE_ACCOUNT_RESULT_EXISTS) << entry.id();
  }
  EXPECT_EQ(UsdTotal(**client), total_before + 2 * 64 * 100);
}

INSTANTIATE_TEST_SUITE_P(AckPolicies, CreateAccountsRetryTest,
                         ::testing::Values("memory", "written", "durable"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST_F(ClientTest, AccountTransactionsPagesAnAccountsDebitsAndCreditsNewestFirst) {
  StartVouchd();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  // Account 10 pays 11, then 12 pays 10.
  std::vector<uint64_t> seqs;
  for (const auto& [id, from, to] : {std::tuple{1u, 10u, 11u}, std::tuple{2u, 12u, 10u}}) {
    v1::Transaction transaction = NormalTransaction(id);
    transaction.set_source_account(from);
    transaction.set_destination_account(to);
    absl::StatusOr<v1::Confirmation> confirmation = (*client)->Submit(transaction, kPatience);
    ASSERT_TRUE(confirmation.ok()) << confirmation.status();
    ASSERT_EQ(confirmation->status(), v1::CONFIRM_STATUS_CONFIRMED);
    seqs.push_back(confirmation->seq());
  }
  v1::QueryAccount query;
  query.set_account(10);
  absl::StatusOr<v1::AccountTransactions> page = (*client)->AccountTransactions(query, kPatience);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->transactions_size(), 2);
  EXPECT_EQ(page->transactions(0).seq(), seqs[1]);
  EXPECT_FALSE(page->transactions(0).debit());
  EXPECT_EQ(page->transactions(0).source_account(), 12u);
  EXPECT_EQ(page->transactions(1).seq(), seqs[0]);
  EXPECT_TRUE(page->transactions(1).debit());
  EXPECT_NE(page->transactions(1).state(), v1::ACCOUNT_TRANSACTION_STATE_UNSPECIFIED);
  EXPECT_FALSE(page->more());

  query.set_limit(1);
  page = (*client)->AccountTransactions(query, kPatience);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->transactions_size(), 1);
  ASSERT_TRUE(page->more());
  query.set_before_seq(page->next_before_seq());
  page = (*client)->AccountTransactions(query, kPatience);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->transactions_size(), 1);
  EXPECT_EQ(page->transactions(0).seq(), seqs[0]);

  // An invalid query ends the connection with the server's INVALID_MESSAGE.
  query.Clear();
  const absl::StatusOr<v1::AccountTransactions> refused =
      (*client)->AccountTransactions(query, kPatience);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(ServerErrorCode(refused.status()), v1::ERROR_CODE_INVALID_MESSAGE);
}

TEST_F(ClientTest, PipelinedSubmitsGetOneOutcomePerConfirmation) {
  StartVouchd();
  Ledger ledger;
  Handlers handlers;
  handlers.on_confirmation = [&](const v1::Confirmation& confirmation, int64_t) {
    ledger.OnConfirmation(confirmation);
  };
  handlers.on_outcome = [&](const v1::Outcome& outcome, int64_t) { ledger.OnOutcome(outcome); };
  ClientOptions options = Options();
  options.client_name = "client-test-pipelined";
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options, handlers);
  ASSERT_TRUE(client.ok()) << client.status();

  constexpr int kTransactions = 10'000;
  constexpr int kBatch = 100;
  workload::WorkloadGenerator generator(Workload());
  std::vector<v1::Transaction> batch(kBatch);
  for (int sent = 0; sent < kTransactions; sent += kBatch) {
    for (v1::Transaction& transaction : batch) wire::ToProto(generator.Next(), &transaction);
    ASSERT_TRUE((*client)->SubmitAsync(batch).ok());
  }
  ledger.AwaitAll(kTransactions, absl::Seconds(20));
  ledger.Check(kTransactions);
  EXPECT_EQ((*client)->transactions_unanswered(), 0u);
  EXPECT_TRUE((*client)->status().ok()) << (*client)->status();
}

TEST_F(ClientTest, WrongAuthTokenIsRefused) {
  StartVouchd({"--auth_token=let-me-in"});
  ClientOptions options = Options();
  options.auth_token = "guess";
  absl::StatusOr<std::unique_ptr<Client>> refused = Client::Connect(options);
  EXPECT_TRUE(absl::IsUnauthenticated(refused.status())) << refused.status();
  EXPECT_EQ(ServerErrorCode(refused.status()), v1::ERROR_CODE_NOT_AUTHENTICATED);

  options.auth_token = "let-me-in";
  absl::StatusOr<std::unique_ptr<Client>> accepted = Client::Connect(options);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_TRUE((*accepted)->Ping(kPatience).ok());
}

TEST_F(ClientTest, ShutdownEndsTheConnectionWithShuttingDown) {
  StartVouchd();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<int> exit_status = vouchd_->Stop(kStopTimeout);
  vouchd_.reset();
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);

  Event event;
  ASSERT_TRUE((*client)->NextEvent(&event, kPatience).ok());
  const auto* error = std::get_if<v1::Error>(&event.body);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code(), v1::ERROR_CODE_SHUTTING_DOWN);
  ASSERT_TRUE((*client)->NextEvent(&event, kPatience).ok());
  ASSERT_NE(std::get_if<Disconnect>(&event.body), nullptr);
  EXPECT_EQ(ServerErrorCode((*client)->status()), v1::ERROR_CODE_SHUTTING_DOWN);
}

// Welcome: the epoch and the limits in force come back before Connect returns; the client keeps
// to the batch maximum itself, so a batch above it never costs the connection.
TEST_F(ClientTest, WelcomeStatesTheEpochAndTheLimitsAndTheClientKeepsToThem) {
  StartVouchd();
  ClientOptions options = Options();
  options.client_name = "client-test-welcome";
  options.resume = true;  // From 0: everything retained (nothing yet, for a new session).
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  const std::optional<v1::Welcome> welcome = (*client)->welcome();
  ASSERT_TRUE(welcome.has_value());
  EXPECT_NE(welcome->epoch(), 0u);
  EXPECT_TRUE(welcome->resuming());
  EXPECT_EQ(welcome->resume_from_seq(), 0u);
  EXPECT_EQ(welcome->submit_batch_max(), 512u);
  EXPECT_EQ(welcome->frame_bytes_max(), 64u * 1024);

  workload::WorkloadGenerator generator(Workload());
  std::vector<v1::Transaction> batch(welcome->submit_batch_max() + 1);
  for (v1::Transaction& transaction : batch) wire::ToProto(generator.Next(), &transaction);
  EXPECT_TRUE(absl::IsInvalidArgument((*client)->SubmitAsync(batch)));
  batch.pop_back();  // Exactly the maximum: sent and answered in full.
  uint64_t id = 1'000'000;
  for (v1::Transaction& transaction : batch) transaction.set_id(++id);
  ASSERT_TRUE((*client)->SubmitAsync(batch).ok());
  EXPECT_TRUE((*client)->Ping(kPatience).ok()) << "the connection is still served";
  EXPECT_EQ((*client)->transactions_unanswered(), 0u);
}

TEST_F(ClientTest, AResumePositionFromTheFutureFailsConnectWithFailedPrecondition) {
  StartVouchd();
  ClientOptions options = Options();
  options.client_name = "client-test-ahead";
  absl::StatusOr<std::unique_ptr<Client>> first = Client::Connect(options);
  ASSERT_TRUE(first.ok()) << first.status();
  options.resume = true;
  options.resume_from_seq = 1'000'000;  // Nothing was ever issued.
  options.resume_epoch = (*first)->welcome()->epoch();
  absl::StatusOr<std::unique_ptr<Client>> ahead = Client::Connect(options);
  EXPECT_TRUE(absl::IsFailedPrecondition(ahead.status())) << ahead.status();
  EXPECT_EQ(ServerErrorCode(ahead.status()), v1::ERROR_CODE_RESUME_AHEAD);
}

// --ack=memory: a restart numbers from 1 again under a new epoch. A position saved under the
// old one is not held against the new numbering: the server resends everything retained and
// says so (Welcome.resume_from_seq 0), and the client resets its saved position.
TEST_F(ClientTest, ARestartWithoutAJournalHasANewEpochAndIgnoresOldPositions) {
  StartVouchd();
  ClientOptions options = Options();
  options.client_name = "client-test-epoch";
  uint64_t old_epoch = 0;
  {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    old_epoch = (*client)->welcome()->epoch();
    absl::StatusOr<v1::Confirmation> confirmation =
        (*client)->Submit(NormalTransaction(7), kPatience);
    ASSERT_TRUE(confirmation.ok()) << confirmation.status();
  }
  absl::StatusOr<int> exit_status = vouchd_->Stop(kStopTimeout);
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  StartVouchd();
  options.port = vouchd_->port();
  options.resume = true;
  options.resume_from_seq = 1'000;  // Far above anything the new incarnation issued.
  options.resume_epoch = old_epoch;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_NE((*client)->welcome()->epoch(), old_epoch);
  EXPECT_EQ((*client)->welcome()->resume_from_seq(), 0u);
}

}  // namespace
}  // namespace vouch::client
