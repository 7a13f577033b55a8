// Server over real loopback sockets: the protocol's features (Hello, Submit, Query, Subscribe,
// Ping, sessions) and every way a bad peer is refused. Each refusal must come as an Error with
// its code, close only the offending connection, be counted, and lose nothing a healthy client
// had confirmed: every bad-peer test runs a healthy client alongside and checks that its
// confirmed transaction still gets its outcome.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

using vouch::testing::kBlockedMerchant;

// Hello, submit one transfer, read its confirmation and outcome.
void ExpectHealthyRoundTrip(int port, uint64_t id) {
  TestClient client(port);
  ASSERT_TRUE(client.Hello());
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() = WireTransfer(id, 1, 2, 100);
  ASSERT_TRUE(client.Send(submit));
  v1::ServerMessage message;
  ASSERT_TRUE(client.Read(&message));
  ASSERT_TRUE(message.has_confirmation()) << message.DebugString();
  EXPECT_EQ(message.confirmation().status(), v1::CONFIRM_STATUS_CONFIRMED);
  ASSERT_TRUE(client.Read(&message));
  ASSERT_TRUE(message.has_outcome()) << message.DebugString();
  EXPECT_EQ(message.outcome().transaction_id(), id);
  EXPECT_EQ(message.outcome().kind(), v1::OUTCOME_KIND_VERIFIED);
}

TEST_F(ServerTest, SubmitBatchConfirmsInOrderAndEachConfirmedGetsOneOutcome) {
  StartServer();
  TestClient client(port());
  ASSERT_TRUE(client.Hello("batcher"));
  v1::ClientMessage submit;
  for (uint64_t id = 1; id <= 20; ++id) {
    *submit.mutable_submit()->add_transactions() = WireTransfer(id, id % 50 + 1, id % 50 + 2, 10);
  }
  *submit.mutable_submit()->add_transactions() = WireTransfer(21, 1, 2, 0);  // Malformed.
  ASSERT_TRUE(client.Send(submit));
  v1::ServerMessage message;
  for (uint64_t id = 1; id <= 21; ++id) {
    ASSERT_TRUE(client.Read(&message));
    ASSERT_TRUE(message.has_confirmation());
    EXPECT_EQ(message.confirmation().transaction_id(), id) << "in submission order";
  }
  EXPECT_EQ(message.confirmation().status(), v1::CONFIRM_STATUS_REJECTED);
  EXPECT_EQ(message.confirmation().reason(), v1::REASON_MALFORMED_AMOUNT);
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    ASSERT_TRUE(client.Read(&message));
    ASSERT_TRUE(message.has_outcome());
    EXPECT_EQ(message.outcome().seq(), seq) << "in sequence order";
  }
  EXPECT_FALSE(client.Read(&message, 200)) << "exactly one outcome each";
}

TEST_F(ServerTest, QueryReturnsTheStateHistoryAndPingIsAnswered) {
  StartServer();
  ExpectHealthyRoundTrip(port(), 7);
  TestClient client(port());
  ASSERT_TRUE(client.Hello());
  v1::ClientMessage query;
  query.mutable_query()->set_transaction_id(7);
  ASSERT_TRUE(client.Send(query));
  v1::ClientMessage ping;
  ping.mutable_ping()->set_nonce(99);
  ping.mutable_ping()->set_client_time_ns(1234);
  ASSERT_TRUE(client.Send(ping));
  v1::ServerMessage message;
  ASSERT_TRUE(client.Read(&message));
  ASSERT_TRUE(message.has_status());
  EXPECT_TRUE(message.status().found());
  ASSERT_GE(message.status().history_size(), 3);
  EXPECT_EQ(message.status().history(0).state(), v1::STATE_KIND_RECEIVED);
  EXPECT_EQ(message.status().history(1).state(), v1::STATE_KIND_CONFIRMED);
  EXPECT_EQ(message.status().history().rbegin()->state(), v1::STATE_KIND_VERIFIED);
  ASSERT_TRUE(client.Read(&message));
  ASSERT_TRUE(message.has_pong());
  EXPECT_EQ(message.pong().nonce(), 99u);
  EXPECT_EQ(message.pong().client_time_ns(), 1234);
  EXPECT_GT(message.pong().server_time_ns(), 0);
}

TEST_F(ServerTest, SubscribeFeedsLateFailuresOfOtherSessions) {
  StartServer();
  TestClient monitor(port());
  ASSERT_TRUE(monitor.Hello("monitor"));
  v1::ClientMessage subscribe;
  subscribe.mutable_subscribe();
  ASSERT_TRUE(monitor.Send(subscribe));
  v1::ClientMessage ping;  // Answered only after the Subscribe was handled.
  ping.mutable_ping();
  ASSERT_TRUE(monitor.Send(ping));
  v1::ServerMessage message;
  ASSERT_TRUE(monitor.Read(&message));
  ASSERT_TRUE(message.has_pong());

  ExpectHealthyRoundTrip(port(), 1);  // Verified: not in the failure feed.
  TestClient payer(port());
  ASSERT_TRUE(payer.Hello("payer"));
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() = WireTransfer(2, 3, 4, 100, kBlockedMerchant);
  ASSERT_TRUE(payer.Send(submit));
  ASSERT_TRUE(monitor.Read(&message));
  ASSERT_TRUE(message.has_outcome());
  EXPECT_EQ(message.outcome().transaction_id(), 2u);
  EXPECT_EQ(message.outcome().kind(), v1::OUTCOME_KIND_LATE_FAILED);
  EXPECT_EQ(message.outcome().reason(), v1::REASON_BLOCKED_MERCHANT);
  EXPECT_TRUE(message.outcome().account_held());
  EXPECT_EQ(message.outcome().source_account(), 3u);
  EXPECT_EQ(server_->Stats().feed_outcomes, 1u);
}

TEST_F(ServerTest, FrameAboveTheMaximumIsRefusedBeforeItsPayloadArrives) {
  ServerOptions options;
  options.frame_bytes_max = 1024;
  options.submit_batch_max = 8;  // Fits the small frame (ServerOptions::Validate).
  StartServer(options);
  TestClient bad(port());
  ASSERT_TRUE(bad.Hello());
  ASSERT_TRUE(bad.SendRaw(std::string("\x81\x08", 2)));  // Varint 1025, and nothing more.
  EXPECT_EQ(bad.ReadError(), v1::ERROR_CODE_FRAME_TOO_LARGE);
  EXPECT_TRUE(bad.ClosedByPeer());
  ExpectHealthyRoundTrip(port(), 1);
  EXPECT_EQ(server_->Stats().errors[v1::ERROR_CODE_FRAME_TOO_LARGE], 1u);
}

TEST_F(ServerTest, MalformedVarintUnparsableAndUnknownMessagesAreRefused) {
  StartServer();
  struct Case {
    std::string bytes;
    v1::ErrorCode code;
  };
  const Case cases[] = {
      {std::string("\xff\xff\xff\xff\xff\x01", 6), v1::ERROR_CODE_MALFORMED_FRAME},  // Varint.
      {std::string("\x03\xff\xff\xff", 4), v1::ERROR_CODE_MALFORMED_FRAME},          // Payload.
      {std::string("\x02\x08\x01", 3), v1::ERROR_CODE_MALFORMED_FRAME},  // Body of wrong type.
      {std::string("\x03\x4a\x01\x00", 4), v1::ERROR_CODE_UNKNOWN_MESSAGE},  // Field 9 only.
      {std::string("\x00", 1), v1::ERROR_CODE_UNKNOWN_MESSAGE},              // No body at all.
  };
  for (const Case& c : cases) {
    TestClient bad(port());
    ASSERT_TRUE(bad.Hello());
    ASSERT_TRUE(bad.SendRaw(c.bytes));
    EXPECT_EQ(bad.ReadError(), c.code) << ::testing::PrintToString(c.bytes);
    EXPECT_TRUE(bad.ClosedByPeer());
  }
  ExpectHealthyRoundTrip(port(), 1);
  const ServerStats stats = server_->Stats();
  EXPECT_EQ(stats.errors[v1::ERROR_CODE_MALFORMED_FRAME], 3u);
  EXPECT_EQ(stats.errors[v1::ERROR_CODE_UNKNOWN_MESSAGE], 2u);
}

TEST_F(ServerTest, EverythingBeforeHelloIsRefused) {
  StartServer();
  TestClient early(port());
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() = WireTransfer(1, 1, 2, 100);
  ASSERT_TRUE(early.Send(submit));
  EXPECT_EQ(early.ReadError(), v1::ERROR_CODE_HELLO_REQUIRED);
  EXPECT_TRUE(early.ClosedByPeer());
  EXPECT_EQ(server_->engine().Stats().confirmed, 0u) << "nothing was submitted";
  ExpectHealthyRoundTrip(port(), 2);
}

TEST_F(ServerTest, BadHellosAndEmptySubmitsAreRefused) {
  ServerOptions options;
  options.auth_token = "s3cret";
  StartServer(options);
  {
    TestClient wrong(port());
    ASSERT_TRUE(wrong.Hello("x", 0, "guess"));
    EXPECT_EQ(wrong.ReadError(), v1::ERROR_CODE_NOT_AUTHENTICATED);
  }
  {
    TestClient missing(port());
    ASSERT_TRUE(missing.Hello("x"));
    EXPECT_EQ(missing.ReadError(), v1::ERROR_CODE_NOT_AUTHENTICATED);
  }
  {
    TestClient unnamed_resume(port());
    ASSERT_TRUE(unnamed_resume.Hello("", 5, "s3cret"));
    EXPECT_EQ(unnamed_resume.ReadError(), v1::ERROR_CODE_INVALID_MESSAGE);
  }
  {
    TestClient twice(port());
    ASSERT_TRUE(twice.Hello("", 0, "s3cret"));
    ASSERT_TRUE(twice.Hello("", 0, "s3cret"));
    EXPECT_EQ(twice.ReadError(), v1::ERROR_CODE_INVALID_MESSAGE);
  }
  {
    TestClient empty(port());
    ASSERT_TRUE(empty.Hello("", 0, "s3cret"));
    v1::ClientMessage submit;
    submit.mutable_submit();
    ASSERT_TRUE(empty.Send(submit));
    EXPECT_EQ(empty.ReadError(), v1::ERROR_CODE_INVALID_MESSAGE);
  }
  TestClient good(port());
  ASSERT_TRUE(good.Hello("good", 0, "s3cret"));
  v1::ClientMessage ping;
  ping.mutable_ping()->set_nonce(5);
  ASSERT_TRUE(good.Send(ping));
  v1::ServerMessage message;
  ASSERT_TRUE(good.Read(&message));
  EXPECT_TRUE(message.has_pong());
  EXPECT_EQ(server_->Stats().errors[v1::ERROR_CODE_NOT_AUTHENTICATED], 2u);
  EXPECT_EQ(server_->Stats().errors[v1::ERROR_CODE_INVALID_MESSAGE], 3u);
}

TEST_F(ServerTest, ConnectionsOverTheMaximumAreRefused) {
  ServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  TestClient first(port());
  TestClient second(port());
  ASSERT_TRUE(first.Hello());
  ASSERT_TRUE(second.Hello());
  TestClient third(port());
  EXPECT_EQ(third.ReadError(), v1::ERROR_CODE_TOO_MANY_CONNECTIONS);
  EXPECT_TRUE(third.ClosedByPeer());
  v1::ClientMessage ping;
  ping.mutable_ping();
  ASSERT_TRUE(first.Send(ping));
  v1::ServerMessage message;
  ASSERT_TRUE(first.Read(&message));
  EXPECT_TRUE(message.has_pong()) << "the connections inside the limit are served";
  EXPECT_EQ(server_->Stats().errors[v1::ERROR_CODE_TOO_MANY_CONNECTIONS], 1u);
}

TEST_F(ServerTest, ClientThatStopsReadingIsCutOffAndItsOutcomesAreNotLost) {
  ServerOptions options;
  options.frame_bytes_max = 2560;
  options.submit_batch_max = 20;  // Fits the small frame (ServerOptions::Validate).
  options.outbound_bytes_max = 64 * 1024;
  options.send_buffer_bytes = 16 * 1024;  // Else the kernel buffers megabytes for the stalled peer.
  StartServer(options, [] {
    Options engine = vouch::testing::BankOptions(100);
    engine.in_flight_capacity = 1 << 14;
    // The flood is not what this test is about. Its 1-unit transfers would also make the healthy
    // round trip's 100 an amount anomaly, once enough of them got through (they do under TSan).
    engine.fraud_rules.velocity_enabled = false;
    engine.fraud_rules.anomaly_enabled = false;
    return engine;
  }());
  TestClient stalled(port(), /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(stalled.Hello("stalled"));
  // Keep submitting, never read: output piles up in the server until the cap is passed.
  uint64_t id = 1;
  for (int batch = 0; batch < 400 && server_->Stats().errors[v1::ERROR_CODE_SLOW_CONSUMER] == 0;
       ++batch) {
    v1::ClientMessage submit;
    for (int i = 0; i < 20; ++i, ++id) {
      *submit.mutable_submit()->add_transactions() = WireTransfer(id, id % 90 + 1, id % 90 + 2, 1);
    }
    if (!stalled.Send(submit)) break;  // The server stopped reading, then closed.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (int i = 0; i < 500 && server_->Stats().errors[v1::ERROR_CODE_SLOW_CONSUMER] == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(server_->Stats().errors[v1::ERROR_CODE_SLOW_CONSUMER], 1u);
  ExpectHealthyRoundTrip(port(), 1'000'000);
  const ShutdownReport report = Shutdown();
  EXPECT_TRUE(report.engine.drained);
  const EngineStats engine = server_->engine().Stats();
  EXPECT_GT(engine.confirmed, 0u);
  EXPECT_EQ(engine.outcomes_total(), engine.confirmed) << "every confirmed one reached its outcome";
}

TEST_F(ServerTest, FrameHeldIncompleteTooLongTimesOut) {
  ServerOptions options;
  options.partial_frame_timeout_ns = 200'000'000;
  StartServer(options);
  TestClient slowloris(port());
  ASSERT_TRUE(slowloris.Hello());
  ASSERT_TRUE(slowloris.SendRaw(std::string("\x10\x12", 2)));  // 16 bytes promised, 1 sent.
  for (int i = 0; i < 3; ++i) {  // A byte now and then does not reset the clock.
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    ASSERT_TRUE(slowloris.SendRaw(std::string("\x0a", 1)));
  }
  EXPECT_EQ(slowloris.ReadError(), v1::ERROR_CODE_TIMEOUT);
  EXPECT_EQ(server_->Stats().partial_frame_timeouts, 1u);
  ExpectHealthyRoundTrip(port(), 1);
}

TEST_F(ServerTest, IdleConnectionTimesOutButAPingingOneStays) {
  ServerOptions options;
  options.idle_timeout_ns = 300'000'000;
  StartServer(options);
  TestClient idle(port());
  ASSERT_TRUE(idle.Hello());
  TestClient pinging(port());
  ASSERT_TRUE(pinging.Hello());
  v1::ServerMessage message;
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    v1::ClientMessage ping;
    ping.mutable_ping()->set_nonce(i);
    ASSERT_TRUE(pinging.Send(ping));
    ASSERT_TRUE(pinging.Read(&message));
    ASSERT_TRUE(message.has_pong()) << "a client that pings is not idle";
  }
  EXPECT_EQ(idle.ReadError(100), v1::ERROR_CODE_TIMEOUT);
  EXPECT_TRUE(idle.ClosedByPeer());
  EXPECT_EQ(server_->Stats().idle_timeouts, 1u);
}

TEST_F(ServerTest, NewerConnectionTakesTheSessionOver) {
  StartServer();
  TestClient old_connection(port());
  ASSERT_TRUE(old_connection.Hello("desk-7"));
  v1::ClientMessage ping;
  ping.mutable_ping();
  ASSERT_TRUE(old_connection.Send(ping));
  v1::ServerMessage message;
  ASSERT_TRUE(old_connection.Read(&message));
  TestClient new_connection(port());
  ASSERT_TRUE(new_connection.Hello("desk-7"));
  EXPECT_EQ(old_connection.ReadError(), v1::ERROR_CODE_SESSION_TAKEN_OVER);
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() = WireTransfer(1, 1, 2, 100);
  ASSERT_TRUE(new_connection.Send(submit));
  ASSERT_TRUE(new_connection.Read(&message));
  EXPECT_TRUE(message.has_confirmation());
  ASSERT_TRUE(new_connection.Read(&message));
  EXPECT_TRUE(message.has_outcome());
}

TEST_F(ServerTest, EventLogRecordsLateFailuresHoldsReleasesAndConnectionErrors) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/events.jsonl";
  std::remove(path.c_str());
  ServerOptions options;
  options.event_log = path;
  StartServer(options);
  TestClient payer(port());
  ASSERT_TRUE(payer.Hello("payer"));
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() =
      WireTransfer(77, 5, 6, 100, vouch::testing::kBlockedMerchant);
  ASSERT_TRUE(payer.Send(submit));
  v1::ServerMessage message;
  while (payer.Read(&message) && !message.has_outcome()) {}
  v1::ClientMessage release;
  release.mutable_release_hold()->set_account(5);
  ASSERT_TRUE(payer.Send(release));
  ASSERT_TRUE(payer.Read(&message));
  ASSERT_TRUE(message.has_hold_released());
  EXPECT_TRUE(message.hold_released().was_held());
  TestClient early(port());
  ASSERT_TRUE(early.Send(submit));  // No Hello: refused, and logged.
  EXPECT_EQ(early.ReadError(), v1::ERROR_CODE_HELLO_REQUIRED);
  Shutdown();  // Stops the log after writing everything.
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string log = text.str();
  for (const char* expected :
       {"\"event\":\"start\"", "\"event\":\"late_failure\",\"seq\":1,\"id\":77",
        "\"reason\":\"blocked_merchant\"", "\"event\":\"hold\",\"account\":5",
        "\"event\":\"hold_released\",\"account\":5", "\"event\":\"connection_error\"",
        "ERROR_CODE_HELLO_REQUIRED", "\"event\":\"shutdown\""}) {
    EXPECT_NE(log.find(expected), std::string::npos) << expected << " in:\n" << log;
  }
  // One JSON object per line.
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(line.front(), '{');
    EXPECT_EQ(line.back(), '}');
  }
}

}  // namespace
}  // namespace vouch::server::testing
