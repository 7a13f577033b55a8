// RequestHandler without sockets: the server's request handling and outcome routing, driven
// deterministically against an inline engine.
//
// Method: a Connection with no file descriptor (fd -1) stands for a client. The test appends
// ClientMessage frames to its decoder, calls the handler as the I/O thread does in one turn
// (HandleFrames, RouteOutcomes, ResendAll, AwaitTurnAck), and decodes what the handler appended
// to the connection's `outbound`, which the I/O thread would have written. The engine runs
// inline and its stages are stepped one at a time, so the test chooses exactly where
// verification, the journal and routing interleave with requests; no timing is involved.
#include "engine/server/internal/request_handler.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "engine/net/frame_codec.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/server/test_client.h"

namespace vouch::server::internal {
namespace {

using server::testing::WireTransfer;
using vouch::testing::kBlockedMerchant;

std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::filesystem::path dir = std::filesystem::path(tmp != nullptr ? tmp : "/tmp") / name;
  std::filesystem::remove_all(dir);
  return dir.string();
}

// One I/O thread's handler in front of an inline engine, and clients without sockets.
class Harness {
 public:
  Harness(Options engine_options, size_t window_capacity)
      : window_(window_capacity, 1) {
    engine_options.inline_mode = true;
    engine_options.outcome_sink = &window_;
    auto engine = Engine::Create(std::move(engine_options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    EXPECT_TRUE(engine_->Start().ok());
    shared_.options = &options_;
    shared_.engine = engine_.get();
    shared_.window = &window_;
    shared_.threads = {nullptr};  // One I/O thread: only the count is read by the handler.
    handler_ = std::make_unique<RequestHandler>(0, &shared_);
    handler_->StartAt(window_.end());
  }
  ~Harness() { (void)engine_->Stop(); }

  std::unique_ptr<Connection> Connect() {
    return std::make_unique<Connection>(-1, next_serial_++, options_.frame_bytes_max, 0);
  }
  void Send(Connection& connection, const v1::ClientMessage& message) {
    std::string frame;
    ASSERT_TRUE(net::AppendFrame(message, options_.frame_bytes_max, &frame));
    ASSERT_EQ(connection.decoder.Append(frame.data(), frame.size()), frame.size());
    handler_->HandleFrames(connection);
  }
  void Hello(Connection& connection, const std::string& name) {
    v1::ClientMessage message;
    message.mutable_hello()->set_client_name(name);
    Send(connection, message);
  }
  void Submit(Connection& connection, const std::vector<v1::Transaction>& transactions) {
    v1::ClientMessage message;
    for (const v1::Transaction& txn : transactions) {
      *message.mutable_submit()->add_transactions() = txn;
    }
    Send(connection, message);
  }
  // The rest of an I/O thread's turn: route, resend, wait for the journal (inline: steps it).
  void FinishTurn() {
    handler_->RouteOutcomes();
    handler_->ResendAll();
    handler_->AwaitTurnAck();
  }
  // What the I/O thread would write to `connection` now, less the Welcome that starts each
  // session (server_resume_test checks it); consumes it.
  std::vector<v1::ServerMessage> Written(Connection& connection) {
    net::FrameDecoder decoder(1 << 20);
    decoder.Append(connection.outbound.data() + connection.outbound_sent,
                   connection.pending_bytes());
    connection.outbound.clear();
    connection.outbound_sent = 0;
    std::vector<v1::ServerMessage> messages;
    v1::ServerMessage message;
    while (decoder.Next(&message) == net::FrameDecoder::Result::kFrame) {
      if (!message.has_welcome()) messages.push_back(message);
    }
    for (Connection* dirty : handler_->dirty()) dirty->dirty = false;
    handler_->dirty().clear();
    return messages;
  }

  Engine& engine() { return *engine_; }
  RequestHandler& handler() { return *handler_; }

 private:
  ServerOptions options_;
  OutcomeWindow window_;
  std::unique_ptr<Engine> engine_;
  Shared shared_;
  std::unique_ptr<RequestHandler> handler_;
  uint64_t next_serial_ = 1;
};

Options HeldBank(PolicyMode mode, AckPolicy ack, const std::string& dir) {
  Options options = vouch::testing::BankOptions(20);
  options.policy.mode = mode;
  options.policy.hold_amount_minor_min = 100'000;
  options.fraud_rules.velocity_enabled = false;
  options.fraud_rules.anomaly_enabled = false;
  options.durability.ack = ack;
  if (ack != AckPolicy::kMemory) options.durability.dir = FreshDir(dir);
  return options;
}

void StepVerifiersAndReconciler(Engine& engine) {
  for (int i = 0; i < 4; ++i) {
    (void)engine.StepStage(InlineStage::kFraud);
    (void)engine.StepStage(InlineStage::kLedger);
    (void)engine.StepStage(InlineStage::kReconcile);
  }
}

class HandlerHeldTest
    : public ::testing::TestWithParam<std::tuple<PolicyMode, AckPolicy>> {};

// Items 1-3 at the handler: Submit never waits; the held answer is the first Confirmation, sent
// only after the journal kept the outcome; the Confirmation submitted after it waits behind it;
// a failing held transaction is one REJECTED Confirmation and no Outcome frame.
TEST_P(HandlerHeldTest, HeldAnswerIsSentOnceKeptAndLaterAnswersWaitBehindIt) {
  const auto [mode, ack] = GetParam();
  Harness harness(HeldBank(mode, ack,
                           "handler_held_" + std::string(PolicyModeName(mode)) +
                               std::string(AckPolicyName(ack))),
                  1024);
  auto client = harness.Connect();
  harness.Hello(*client, "payer");
  // Returns at once: the handler never blocks on verification (an inline engine's blocking
  // Submit would step the whole pipeline here instead).
  harness.Submit(*client, {WireTransfer(1, 3, 4, 200'000, kBlockedMerchant),
                           WireTransfer(2, 5, 6, 10)});
  EXPECT_TRUE(harness.Written(*client).empty()) << "both wait for the held answer";
  StepVerifiersAndReconciler(harness.engine());  // Decided, but the journal has not kept it.
  harness.handler().RouteOutcomes();
  if (ack != AckPolicy::kMemory) {
    EXPECT_TRUE(harness.Written(*client).empty()) << "told before its outcome record was kept";
  }
  for (int i = 0; i < 8; ++i) {
    (void)harness.engine().StepStage(InlineStage::kJournal);
    (void)harness.engine().StepStage(InlineStage::kReconcile);
    (void)harness.engine().StepStage(InlineStage::kFraud);
    (void)harness.engine().StepStage(InlineStage::kLedger);
  }
  harness.FinishTurn();
  std::vector<v1::ServerMessage> written = harness.Written(*client);
  ASSERT_GE(written.size(), 2u);
  ASSERT_TRUE(written[0].has_confirmation()) << written[0].DebugString();
  EXPECT_EQ(written[0].confirmation().transaction_id(), 1u);
  EXPECT_EQ(written[0].confirmation().status(), v1::CONFIRM_STATUS_REJECTED);
  EXPECT_EQ(written[0].confirmation().reason(), v1::REASON_BLOCKED_MERCHANT);
  EXPECT_TRUE(written[0].confirmation().held());
  ASSERT_TRUE(written[1].has_confirmation());
  EXPECT_EQ(written[1].confirmation().transaction_id(), 2u) << "in submission order";
  // Whatever follows is the small transaction's Outcome (async in hybrid), never one for id 1.
  for (const v1::ServerMessage& message : written) {
    if (message.has_outcome()) EXPECT_NE(message.outcome().transaction_id(), 1u);
  }
  EXPECT_FALSE(harness.engine().IsOnHold(3));
  EXPECT_EQ(harness.handler().counters().held_answers.load(), mode == PolicyMode::kSync ? 2u : 1u);
}

INSTANTIATE_TEST_SUITE_P(
    HybridSync, HandlerHeldTest,
    ::testing::Combine(::testing::Values(PolicyMode::kHybrid, PolicyMode::kSync),
                       ::testing::Values(AckPolicy::kMemory, AckPolicy::kWritten,
                                         AckPolicy::kDurable)),
    [](const auto& info) {
      return std::string(PolicyModeName(std::get<0>(info.param))) + "_" +
             std::string(AckPolicyName(std::get<1>(info.param)));
    });

// Fills the window (16 outcomes) several times over while the handler routes nothing.
void SubmitManyUnrouted(Harness& harness, Connection& client) {
  for (uint64_t batch = 0; batch < 8; ++batch) {
    std::vector<v1::Transaction> transactions;
    for (uint64_t k = 0; k < 8; ++k) {
      const uint64_t id = 1 + batch * 8 + k;
      transactions.push_back(WireTransfer(id, 1 + id % 10, 11 + id % 10, 10));
    }
    harness.Submit(client, transactions);
    vouch::testing::StepUntilIdle(harness.engine());
  }
}

// Item 1, the sink side: the window's writer overwrote outcomes the handler had not routed yet
// (before, it would have waited for the handler forever). The handler reads them from the
// engine's history and loses none.
TEST(HandlerLappedTest, LappedOutcomesAreReadFromTheHistory) {
  Options options = vouch::testing::BankOptions(20);
  options.in_flight_capacity = 16;
  options.fraud_rules.velocity_enabled = false;
  Harness harness(options, 16);
  auto client = harness.Connect();
  harness.Hello(*client, "behind");
  SubmitManyUnrouted(harness, *client);
  for (int turn = 0; turn < 4; ++turn) harness.FinishTurn();
  int outcomes = 0;
  for (const v1::ServerMessage& message : harness.Written(*client)) {
    EXPECT_FALSE(message.has_error()) << message.DebugString();
    outcomes += message.has_outcome();
  }
  EXPECT_EQ(outcomes, 64);
  EXPECT_GT(harness.handler().counters().outcomes_lapped.load(), 0u);
  EXPECT_EQ(harness.handler().counters().outcomes_lost.load(), 0u);
}

// Where the history has lost them too, nobody knows whose they were: every session of the
// thread is cut off with SLOW_CONSUMER, counted, and the handler goes on.
TEST(HandlerLappedTest, IoThreadThatFallsBehindTheWindowCutsItsSessionsOff) {
  Options options = vouch::testing::BankOptions(20);
  options.in_flight_capacity = 16;
  options.history_capacity = 16;
  options.fraud_rules.velocity_enabled = false;
  Harness harness(options, 16);
  auto client = harness.Connect();
  harness.Hello(*client, "behind");
  SubmitManyUnrouted(harness, *client);
  harness.FinishTurn();
  const std::vector<v1::ServerMessage> written = harness.Written(*client);
  ASSERT_FALSE(written.empty());
  ASSERT_TRUE(written.back().has_error()) << written.back().DebugString();
  EXPECT_EQ(written.back().error().code(), v1::ERROR_CODE_SLOW_CONSUMER);
  EXPECT_EQ(client->state, ConnectionState::kClosing);
  EXPECT_GT(harness.handler().counters().outcomes_lost.load(), 0u);
  EXPECT_EQ(harness.handler().counters().errors[v1::ERROR_CODE_SLOW_CONSUMER].load(), 1u);
  EXPECT_TRUE(harness.handler().caught_up()) << "the handler went on";
}

}  // namespace
}  // namespace vouch::server::internal
