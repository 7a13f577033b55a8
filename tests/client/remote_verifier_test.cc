// RemoteVerifierWorker against the real vouchd (--remote_verifiers=sanctions:required), over
// loopback TCP: the helper end to end.
//
// Method: each test starts vouchd as a child process (VouchdProcess) with a 10 s verification
// deadline, so that no verdict of a live worker can miss it even on a starved machine; runs one
// or two workers in this process, with checks that fail chosen transactions; submits with a
// Client and collects every Confirmation and Outcome through its handlers; and stops vouchd
// with SIGTERM at the end, expecting a graceful exit. The hand-over test makes the first worker
// slow (20 ms per request) so that it certainly holds unanswered requests when it is stopped;
// the load-sharing test makes both workers slow (1 ms) so that neither can take everything; the
// restart test starts the second vouchd on the first one's port, where the worker keeps dialling.
// The waits are bounds on a broken run, never expectations.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/remote_verifier.h"
#include "gtest/gtest.h"
#include "proto/vouch.pb.h"
#include "tests/client/vouchd_process.h"

namespace vouch::client {
namespace {

using ::vouch::testing::VouchdProcess;

constexpr absl::Duration kPatience = absl::Seconds(20);     // Never reached when things work.
constexpr absl::Duration kStopTimeout = absl::Seconds(15);  // Drain (5 s) plus flush (2 s).
constexpr uint64_t kBlockedAccount = 777;
constexpr uint16_t kBlockedCode = 42;

v1::Transaction TransactionOf(uint64_t id, uint64_t source) {
  v1::Transaction transaction;
  transaction.set_id(id);
  transaction.set_source_account(source);
  transaction.set_destination_account(source % 1000 + 1);
  transaction.set_amount(100);
  transaction.set_currency("USD");
  transaction.set_merchant_id(1);
  transaction.set_merchant_category(5411);
  transaction.set_country("GB");
  return transaction;
}

uint16_t Sanctions(const v1::VerifyRequest& request) {
  return request.transaction().source_account() == kBlockedAccount ? kBlockedCode : 0;
}

// What the submitting connection received, written by its reader thread.
class Answers {
 public:
  Handlers MakeHandlers() {
    Handlers handlers;
    handlers.on_confirmation = [this](const v1::Confirmation& confirmation, int64_t) {
      absl::MutexLock lock(&mu_);
      confirmations_[confirmation.transaction_id()] = confirmation;
    };
    handlers.on_outcome = [this](const v1::Outcome& outcome, int64_t) {
      absl::MutexLock lock(&mu_);
      ++outcomes_received_;
      outcomes_[outcome.transaction_id()] = outcome;
    };
    return handlers;
  }
  // Waits until every id has a final answer: an Outcome, or a held Confirmation.
  bool AwaitFinal(const std::vector<uint64_t>& ids, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const uint64_t id : ids) {
        const auto confirmation = confirmations_.find(id);
        const bool held = confirmation != confirmations_.end() && confirmation->second.held();
        if (!held && !outcomes_.contains(id)) return false;
      }
      return true;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  v1::Confirmation ConfirmationOf(uint64_t id) {
    absl::MutexLock lock(&mu_);
    return confirmations_[id];
  }
  v1::Outcome OutcomeOf(uint64_t id) {
    absl::MutexLock lock(&mu_);
    return outcomes_[id];
  }
  uint64_t outcomes_received() {
    absl::MutexLock lock(&mu_);
    return outcomes_received_;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, v1::Confirmation> confirmations_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, v1::Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
  uint64_t outcomes_received_ ABSL_GUARDED_BY(mu_) = 0;
};

class RemoteVerifierTest : public ::testing::Test {
 protected:
  void StartVouchd(const std::string& mode = "async", std::vector<std::string> flags = {}) {
    flags.insert(flags.end(), {"--accounts=1000", "--remote_verifiers=sanctions:required",
                               "--deadline_ms=10000", "--mode=" + mode});
    absl::StatusOr<std::unique_ptr<VouchdProcess>> vouchd = VouchdProcess::Start(flags);
    ASSERT_TRUE(vouchd.ok()) << vouchd.status();
    vouchd_ = *std::move(vouchd);
    ClientOptions options;
    options.port = vouchd_->port();
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Connect(options, answers_.MakeHandlers());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }
  RemoteVerifierOptions WorkerOptions(const std::string& name, uint32_t window = 256) const {
    RemoteVerifierOptions options;
    options.port = vouchd_->port();
    options.verifier = "sanctions";
    options.window = window;
    options.worker_name = name;
    return options;
  }
  std::unique_ptr<RemoteVerifierWorker> StartWorker(const RemoteVerifierOptions& options,
                                                    VerifyFunction check) {
    absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker =
        RemoteVerifierWorker::Start(options, std::move(check));
    EXPECT_TRUE(worker.ok()) << worker.status();
    if (!worker.ok()) return nullptr;
    absl::StatusOr<v1::VerifierWelcome> welcome = (*worker)->AwaitWelcome(kPatience);
    EXPECT_TRUE(welcome.ok()) << welcome.status();
    return *std::move(worker);
  }
  // Submits transactions id first_id.., from sources first_source.., in batches of 256.
  std::vector<uint64_t> Submit(uint64_t first_id, uint64_t first_source, int count) {
    std::vector<v1::Transaction> batch;
    std::vector<uint64_t> ids;
    for (int i = 0; i < count; ++i) {
      batch.push_back(TransactionOf(first_id + i, first_source + i));
      ids.push_back(first_id + i);
      if (batch.size() == 256 || i + 1 == count) {
        EXPECT_TRUE(client_->SubmitAsync(batch).ok());
        batch.clear();
      }
    }
    return ids;
  }
  void TearDown() override {
    if (client_ != nullptr) client_->Close();
    if (vouchd_ == nullptr) return;
    absl::StatusOr<int> exit_status = vouchd_->Stop(kStopTimeout);
    ASSERT_TRUE(exit_status.ok()) << exit_status.status();
    EXPECT_EQ(*exit_status, 0);
  }

  std::unique_ptr<VouchdProcess> vouchd_;
  Answers answers_;  // Outlives client_, whose reader thread writes it.
  std::unique_ptr<Client> client_;
};

class RemoteVerifierModeTest : public RemoteVerifierTest,
                               public ::testing::WithParamInterface<std::string> {};

// Pass and fail verdicts decide: async, an Outcome (VERIFIED, or LATE_FAILED with the worker's
// code); sync, the held Confirmation (CONFIRMED, or REJECTED REASON_VERIFIER_REJECTED).
TEST_P(RemoteVerifierModeTest, PassAndFailVerdictsReachTheAnswers) {
  StartVouchd(GetParam());
  std::unique_ptr<RemoteVerifierWorker> worker = StartWorker(WorkerOptions("solo"), Sanctions);
  ASSERT_NE(worker, nullptr);
  const v1::VerifierWelcome welcome = *worker->welcome();
  EXPECT_EQ(welcome.verifier(), v1::VERIFIER_EMBEDDER_1);
  EXPECT_EQ(welcome.policy(), 1u);  // required
  EXPECT_EQ(welcome.deadline_ns(), 10'000'000'000);
  EXPECT_EQ(welcome.window(), 256u);
  EXPECT_GE(welcome.batch_max(), 1u);

  std::vector<uint64_t> ids = Submit(1, 1, 20);
  ASSERT_TRUE(client_->SubmitAsync({TransactionOf(100, kBlockedAccount)}).ok());
  ids.push_back(100);
  ASSERT_TRUE(answers_.AwaitFinal(ids, kPatience));
  const bool held = GetParam() == "sync";
  for (const uint64_t id : ids) {
    const v1::Confirmation confirmation = answers_.ConfirmationOf(id);
    const bool hit = id == 100;
    EXPECT_EQ(confirmation.held(), held) << confirmation.ShortDebugString();
    if (held) {
      EXPECT_EQ(confirmation.status(),
                hit ? v1::CONFIRM_STATUS_REJECTED : v1::CONFIRM_STATUS_CONFIRMED)
          << confirmation.ShortDebugString();
      EXPECT_EQ(confirmation.reason(), hit ? v1::REASON_VERIFIER_REJECTED : v1::REASON_NONE);
      continue;
    }
    const v1::Outcome outcome = answers_.OutcomeOf(id);
    if (hit) {
      EXPECT_EQ(outcome.kind(), v1::OUTCOME_KIND_LATE_FAILED) << outcome.ShortDebugString();
      EXPECT_EQ(outcome.reason(), v1::REASON_VERIFIER_REJECTED);
      EXPECT_EQ(outcome.verifier(), v1::VERIFIER_EMBEDDER_1);
      EXPECT_EQ(outcome.verifier_reason(), kBlockedCode);
    } else {
      EXPECT_EQ(outcome.kind(), v1::OUTCOME_KIND_VERIFIED) << outcome.ShortDebugString();
    }
  }
  EXPECT_EQ(answers_.outcomes_received(), held ? 0u : ids.size());
  worker->Stop();
  const RemoteVerifierCounters counters = worker->counters();
  EXPECT_EQ(counters.requests, ids.size());
  EXPECT_EQ(counters.verdicts, ids.size());
  EXPECT_EQ(counters.redelivered, 0u);
  EXPECT_EQ(counters.connections, 1u);
}

INSTANTIATE_TEST_SUITE_P(Modes, RemoteVerifierModeTest, ::testing::Values("async", "sync"));

TEST_F(RemoteVerifierTest, TwoWorkersShareTheLoad) {
  StartVouchd();
  const auto slow = [](const v1::VerifyRequest&) -> uint16_t {
    absl::SleepFor(absl::Milliseconds(1));
    return 0;
  };
  std::unique_ptr<RemoteVerifierWorker> a = StartWorker(WorkerOptions("a", 8), slow);
  std::unique_ptr<RemoteVerifierWorker> b = StartWorker(WorkerOptions("b", 8), slow);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::vector<uint64_t> ids = Submit(1, 1, 400);
  ASSERT_TRUE(answers_.AwaitFinal(ids, kPatience));
  for (const uint64_t id : ids) {
    EXPECT_EQ(answers_.OutcomeOf(id).kind(), v1::OUTCOME_KIND_VERIFIED) << id;
  }
  a->Stop();
  b->Stop();
  const RemoteVerifierCounters from_a = a->counters();
  const RemoteVerifierCounters from_b = b->counters();
  EXPECT_GT(from_a.verdicts, 0u);
  EXPECT_GT(from_b.verdicts, 0u);
  EXPECT_EQ(from_a.verdicts + from_b.verdicts, ids.size());  // Nobody left: no redelivery.
  EXPECT_EQ(from_a.redelivered + from_b.redelivered, 0u);
}

// A worker stopped mid-stream: the server hands what it held unanswered to the other worker,
// redelivered, and every transaction is still decided on a verdict (VERIFIED, no timeout).
TEST_F(RemoteVerifierTest, AStoppedWorkersRequestsAreRedeliveredToTheOther) {
  StartVouchd();
  std::atomic<uint64_t> a_checked{0};
  std::unique_ptr<RemoteVerifierWorker> a =
      StartWorker(WorkerOptions("a", 64), [&](const v1::VerifyRequest&) -> uint16_t {
        absl::SleepFor(absl::Milliseconds(20));
        a_checked.fetch_add(1, std::memory_order_relaxed);  // relaxed: a progress count.
        return 0;
      });
  ASSERT_NE(a, nullptr);
  constexpr int kCount = 50;
  const std::vector<uint64_t> ids = Submit(1, 1, kCount);
  const absl::Time deadline = absl::Now() + kPatience;
  while (a_checked.load(std::memory_order_relaxed) < 5 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::unique_ptr<RemoteVerifierWorker> b = StartWorker(WorkerOptions("b", 64), Sanctions);
  ASSERT_NE(b, nullptr);
  a->Stop();  // Holding most of the 50 (it takes 1 s to judge them all).
  ASSERT_TRUE(answers_.AwaitFinal(ids, kPatience));
  for (const uint64_t id : ids) {
    EXPECT_EQ(answers_.OutcomeOf(id).kind(), v1::OUTCOME_KIND_VERIFIED) << id;
  }
  b->Stop();
  const RemoteVerifierCounters from_a = a->counters();
  const RemoteVerifierCounters from_b = b->counters();
  EXPECT_LT(from_a.verdicts, static_cast<uint64_t>(kCount));
  EXPECT_GT(from_b.redelivered, 0u);
  EXPECT_GE(from_a.verdicts + from_b.verdicts, static_cast<uint64_t>(kCount));
  EXPECT_EQ(from_b.redelivered, from_b.requests);  // Everything came to a before b connected.
}

// The worker outlives its server: when vouchd stops, the connection ends and the worker keeps
// dialling with its back-off; a new vouchd on the same port is served without any call.
TEST_F(RemoteVerifierTest, TheWorkerReconnectsAcrossAServerRestart) {
  StartVouchd();
  std::unique_ptr<RemoteVerifierWorker> worker =
      StartWorker(WorkerOptions("survivor"), Sanctions);
  ASSERT_NE(worker, nullptr);
  const std::vector<uint64_t> before = Submit(1, 1, 10);
  ASSERT_TRUE(answers_.AwaitFinal(before, kPatience));
  const int port = vouchd_->port();
  client_->Close();
  absl::StatusOr<int> exit_status = vouchd_->Stop(kStopTimeout);
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
  vouchd_.reset();
  const absl::Time deadline = absl::Now() + kPatience;
  while (worker->connected() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_FALSE(worker->connected());
  EXPECT_TRUE(worker->status().ok()) << "still running: " << worker->status();

  StartVouchd("async", {"--port=" + std::to_string(port)});  // The later --port wins.
  ASSERT_EQ(vouchd_->port(), port);
  absl::StatusOr<v1::VerifierWelcome> welcome = worker->AwaitWelcome(kPatience);
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  std::vector<uint64_t> after = Submit(100, 100, 10);
  ASSERT_TRUE(client_->SubmitAsync({TransactionOf(200, kBlockedAccount)}).ok());
  after.push_back(200);
  ASSERT_TRUE(answers_.AwaitFinal(after, kPatience));
  for (const uint64_t id : after) {
    EXPECT_EQ(answers_.OutcomeOf(id).kind(),
              id == 200 ? v1::OUTCOME_KIND_LATE_FAILED : v1::OUTCOME_KIND_VERIFIED)
        << id;
  }
  worker->Stop();
  const RemoteVerifierCounters counters = worker->counters();
  EXPECT_EQ(counters.connections, 2u);
  EXPECT_EQ(counters.reconnects, 1u);
  EXPECT_EQ(counters.verdicts, before.size() + after.size());
}

TEST_F(RemoteVerifierTest, UnknownVerifierIsSurfacedAndNotRetried) {
  StartVouchd();
  RemoteVerifierOptions options = WorkerOptions("lost");
  options.verifier = "no-such-verifier";
  absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker =
      RemoteVerifierWorker::Start(options, Sanctions);
  ASSERT_TRUE(worker.ok()) << worker.status();
  absl::StatusOr<v1::VerifierWelcome> welcome = (*worker)->AwaitWelcome(kPatience);
  EXPECT_TRUE(absl::IsNotFound(welcome.status())) << welcome.status();
  EXPECT_EQ(ServerErrorCode(welcome.status()), v1::ERROR_CODE_UNKNOWN_VERIFIER);
  EXPECT_NE(welcome.status().message().find("sanctions"), std::string::npos)
      << "the server's message lists the verifiers it runs: " << welcome.status();
  EXPECT_TRUE(absl::IsNotFound((*worker)->status()));
  EXPECT_EQ((*worker)->counters().connections, 0u);
}

}  // namespace
}  // namespace vouch::client
