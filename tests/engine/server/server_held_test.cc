// The held path (hybrid and sync) over real loopback sockets.
//
// Method: each test drives one server with one I/O thread, so that everything the server does
// for a connection happens on the thread a blocked Submit would block. A test that deadlocks
// would hang the suite, so every read has a timeout and the deadlock test runs the exchange on
// a thread of its own under a watchdog: it fails (and abandons the server) instead of hanging.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include "engine/testing/engine_test_peer.h"
#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

using vouch::testing::kBlockedMerchant;

Options HybridBank(PolicyMode mode) {
  Options engine = vouch::testing::BankOptions(100);
  engine.policy.mode = mode;
  engine.policy.hold_amount_minor_min = 100'000;  // 1,000.00 and above are held.
  engine.fraud_rules.velocity_enabled = false;  // Bursts from a few accounts are the point here.
  engine.fraud_rules.anomaly_enabled = false;
  return engine;
}

// Reads until the Confirmation of `id` arrives; counts the Outcomes of `id` seen on the way and
// fails on any other Confirmation out of order.
struct Answers {
  int confirmations = 0;
  int outcomes_of_held = 0;
  v1::Confirmation held;
};

// Issue 12 item 1: 2,000 small transactions and one held one in a single write, one I/O thread,
// a window of 1,024 outcomes. Before the fix the I/O thread waited in Submit for the held
// transaction while the reconciler waited in OutcomeWindow::OnOutcome for that same thread to
// route the 2,000 outcomes: neither ever moved again.
TEST_F(ServerTest, HeldTransactionBehindABurstDoesNotDeadlockTheIoThread) {
  ServerOptions options;
  options.io_threads = 1;
  options.retained_outcomes = 1024;
  StartServer(options, HybridBank(PolicyMode::kHybrid));
  constexpr int kSmall = 2000;
  auto exchange = std::async(std::launch::async, [port = port()] {
    Answers answers;
    TestClient client(port);
    if (!client.Hello("burst")) return answers;
    std::string bytes;
    v1::ClientMessage submit;
    for (int i = 0; i < kSmall; ++i) {
      submit.mutable_submit()->clear_transactions();
      *submit.mutable_submit()->add_transactions() =
          WireTransfer(1 + i, i % 50 + 1, i % 50 + 51, 10);
      net::AppendFrame(submit, kTestFrameMax, &bytes);
    }
    submit.mutable_submit()->clear_transactions();
    *submit.mutable_submit()->add_transactions() = WireTransfer(9'999, 7, 8, 200'000);
    net::AppendFrame(submit, kTestFrameMax, &bytes);
    if (!client.SendRaw(bytes)) return answers;
    v1::ServerMessage message;
    while (answers.confirmations <= kSmall && client.Read(&message, 20'000)) {
      if (message.has_confirmation()) {
        ++answers.confirmations;
        if (message.confirmation().transaction_id() == 9'999) answers.held = message.confirmation();
      }
    }
    return answers;
  });
  if (exchange.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    // The server cannot be stopped either (its I/O thread is stuck): fail the binary now.
    std::fprintf(stderr, "deadlock: the held transaction's answer never came\n");
    std::_Exit(1);
  }
  const Answers answers = exchange.get();
  EXPECT_EQ(answers.confirmations, kSmall + 1);
  EXPECT_EQ(answers.held.status(), v1::CONFIRM_STATUS_CONFIRMED) << answers.held.DebugString();
  EXPECT_TRUE(answers.held.held());
}

class ServerHeldModeTest : public ServerTest,
                           public ::testing::WithParamInterface<PolicyMode> {};

// Issue 12 item 3: before, a held failure was answered REJECTED and then also sent as a
// LATE_FAILED Outcome, fed to subscribers, counted as a late failure, and it held the account.
TEST_P(ServerHeldModeTest, HeldFailureIsOneRejectionAndNoLateFailure) {
  StartServer({}, HybridBank(GetParam()));
  TestClient watcher(port());
  ASSERT_TRUE(watcher.Hello("watcher"));
  v1::ClientMessage subscribe;
  subscribe.mutable_subscribe()->set_include_verified(true);
  ASSERT_TRUE(watcher.Send(subscribe));
  TestClient client(port());
  ASSERT_TRUE(client.Hello("payer"));
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() =
      WireTransfer(1, 3, 4, 200'000, kBlockedMerchant);
  ASSERT_TRUE(client.Send(submit));
  v1::ServerMessage message;
  ASSERT_TRUE(client.Read(&message));
  ASSERT_TRUE(message.has_confirmation()) << message.DebugString();
  EXPECT_EQ(message.confirmation().status(), v1::CONFIRM_STATUS_REJECTED);
  EXPECT_EQ(message.confirmation().reason(), v1::REASON_BLOCKED_MERCHANT);
  EXPECT_TRUE(message.confirmation().held());
  EXPECT_NE(message.confirmation().seq(), 0u);
  EXPECT_FALSE(client.Read(&message, 300)) << "no Outcome follows: " << message.DebugString();
  EXPECT_FALSE(watcher.Read(&message, 100)) << "not fed: " << message.DebugString();
  EXPECT_FALSE(server_->engine().IsOnHold(3)) << "nothing was confirmed: no account hold";
  const EngineStats stats = server_->engine().Stats();
  EXPECT_EQ(stats.outcomes[static_cast<int>(OutcomeKind::kLateFailed)], 0u);
  EXPECT_EQ(stats.held_results[static_cast<int>(OutcomeKind::kLateFailed)], 1u);
  EXPECT_EQ(server_->Stats().held_answers, 1u);
}

// Confirmations keep submission order, and a duplicate of a held id still being verified is
// BUSY duplicate_in_flight, never a wrong answer; once answered, the duplicate gets the answer.
TEST_P(ServerHeldModeTest, AnswersKeepSubmissionOrderAndAnInFlightDuplicateIsBusy) {
  Options engine = HybridBank(GetParam());
  engine.verification_deadline_ns = 2'000'000'000;
  StartServer({}, std::move(engine));
  // Keep it in flight.
  EngineTestPeer::StallVerifier(server_->engine(), VerifierId::kFraud, 200'000'000);
  TestClient client(port());
  ASSERT_TRUE(client.Hello("orderly"));
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() = WireTransfer(1, 5, 6, 200'000);  // Held.
  *submit.mutable_submit()->add_transactions() = WireTransfer(1, 5, 6, 200'000);  // Duplicate.
  *submit.mutable_submit()->add_transactions() = WireTransfer(2, 7, 8, 10);
  ASSERT_TRUE(client.Send(submit));
  v1::ServerMessage message;
  std::vector<v1::Confirmation> confirmations;
  while (confirmations.size() < 3 && client.Read(&message)) {
    if (message.has_confirmation()) confirmations.push_back(message.confirmation());
  }
  ASSERT_EQ(confirmations.size(), 3u);
  EXPECT_EQ(confirmations[0].transaction_id(), 1u);
  EXPECT_EQ(confirmations[0].status(), v1::CONFIRM_STATUS_CONFIRMED);
  EXPECT_TRUE(confirmations[0].held());
  EXPECT_EQ(confirmations[1].transaction_id(), 1u);
  EXPECT_EQ(confirmations[1].status(), v1::CONFIRM_STATUS_BUSY);
  EXPECT_EQ(confirmations[1].reason(), v1::REASON_DUPLICATE_IN_FLIGHT);
  EXPECT_EQ(confirmations[2].transaction_id(), 2u) << "in submission order";
  submit.mutable_submit()->clear_transactions();
  *submit.mutable_submit()->add_transactions() = WireTransfer(1, 5, 6, 200'000);
  ASSERT_TRUE(client.Send(submit));
  do {
    ASSERT_TRUE(client.Read(&message));
  } while (!message.has_confirmation());
  EXPECT_TRUE(message.confirmation().duplicate());
  EXPECT_EQ(message.confirmation().status(), v1::CONFIRM_STATUS_CONFIRMED);
  EXPECT_EQ(message.confirmation().seq(), confirmations[0].seq());
}

INSTANTIATE_TEST_SUITE_P(HybridSync, ServerHeldModeTest,
                         ::testing::Values(PolicyMode::kHybrid, PolicyMode::kSync),
                         [](const auto& info) { return std::string(PolicyModeName(info.param)); });

}  // namespace
}  // namespace vouch::server::testing
