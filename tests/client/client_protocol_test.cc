// Client against a scripted fake server: the decoding and matching logic under conditions a real
// server does not produce on demand.
//
// Method: FakeServer (tests/client/fake_server.h) is a loopback listener that the test drives
// step by step: it accepts the client's connection, reads the ClientMessages the client sent, and
// writes exactly the bytes the test chooses (answers interleaved with outcomes, a frame split
// into single bytes, an Error in place of an answer, garbage). Each test scripts the server on a thread of its own while the
// test thread makes the client calls, and checks what the calls return and which events arrive
// in which order. Nothing here depends on timing except the one timeout test, which only needs
// a 50 ms timeout to expire while the server stays silent.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "engine/net/frame_codec.h"
#include "gtest/gtest.h"
#include "proto/vouch.pb.h"
#include "tests/client/fake_server.h"

namespace vouch::client {
namespace {

constexpr size_t kFrameBytesMax = 64 * 1024;
constexpr absl::Duration kPatience = absl::Seconds(10);  // Never reached when things work.

using ::vouch::testing::FakeServer;
using ::vouch::testing::Frame;

v1::ServerMessage ConfirmationOf(uint64_t id) {
  v1::ServerMessage message;
  message.mutable_confirmation()->set_transaction_id(id);
  message.mutable_confirmation()->set_seq(id);
  message.mutable_confirmation()->set_status(v1::CONFIRM_STATUS_CONFIRMED);
  return message;
}

v1::ServerMessage OutcomeOf(uint64_t id) {
  v1::ServerMessage message;
  message.mutable_outcome()->set_transaction_id(id);
  message.mutable_outcome()->set_seq(id);
  message.mutable_outcome()->set_kind(v1::OUTCOME_KIND_VERIFIED);
  return message;
}

v1::ServerMessage StatusOf(uint64_t id) {
  v1::ServerMessage message;
  message.mutable_status()->set_transaction_id(id);
  message.mutable_status()->set_found(true);
  return message;
}

v1::ServerMessage PongOf(uint64_t nonce) {
  v1::ServerMessage message;
  message.mutable_pong()->set_nonce(nonce);
  return message;
}

v1::ServerMessage ErrorOf(v1::ErrorCode code) {
  v1::ServerMessage message;
  message.mutable_error()->set_code(code);
  message.mutable_error()->set_message("scripted");
  return message;
}

v1::Transaction TransactionOf(uint64_t id) {
  v1::Transaction transaction;
  transaction.set_id(id);
  transaction.set_source_account(1);
  transaction.set_destination_account(2);
  transaction.set_amount(100);
  transaction.set_currency("USD");
  return transaction;
}

ClientOptions OptionsFor(const FakeServer& server, bool await_hello) {
  ClientOptions options;
  options.port = server.port();
  options.frame_bytes_max = kFrameBytesMax;
  options.await_hello = await_hello;
  return options;
}

// A short description of an event, to compare sequences.
std::string Describe(const Event& event) {
  struct Visitor {
    std::string operator()(const v1::Confirmation& c) {
      return "confirmation " + std::to_string(c.transaction_id());
    }
    std::string operator()(const v1::Outcome& o) {
      return "outcome " + std::to_string(o.transaction_id());
    }
    std::string operator()(const v1::Status& s) {
      return "status " + std::to_string(s.transaction_id());
    }
    std::string operator()(const v1::Pong& p) { return "pong " + std::to_string(p.nonce()); }
    std::string operator()(const v1::Error& e) { return "error " + v1::ErrorCode_Name(e.code()); }
    std::string operator()(const Disconnect& d) {
      return "disconnect " + std::string(absl::StatusCodeToString(d.status.code()));
    }
  };
  return std::visit(Visitor{}, event.body);
}

std::vector<std::string> TakeEvents(Client& client, size_t count) {
  std::vector<std::string> events;
  Event event;
  while (events.size() < count && client.NextEvent(&event, kPatience).ok()) {
    events.push_back(Describe(event));
  }
  return events;
}

TEST(ClientProtocolTest, BlockingCallsGetTheirAnswersAcrossSplitFrames) {
  FakeServer server;
  std::thread script([&] {
    server.AcceptHello(/*answer_ping=*/true);
    ASSERT_EQ(server.Read().submit().transactions(0).id(), 7u);
    server.Trickle(Frame(ConfirmationOf(7)));
    ASSERT_EQ(server.Read().query().transaction_id(), 7u);
    server.Trickle(Frame(StatusOf(7)));
    const uint64_t nonce = server.Read().ping().nonce();
    server.Trickle(Frame(PongOf(nonce)));
  });
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor(server, /*await_hello=*/true));
  ASSERT_TRUE(client.ok()) << client.status();

  absl::StatusOr<v1::Confirmation> confirmation = (*client)->Submit(TransactionOf(7), kPatience);
  ASSERT_TRUE(confirmation.ok()) << confirmation.status();
  EXPECT_EQ(confirmation->transaction_id(), 7u);
  EXPECT_EQ(confirmation->status(), v1::CONFIRM_STATUS_CONFIRMED);
  absl::StatusOr<v1::Status> status = (*client)->Query(7, kPatience);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->found());
  EXPECT_TRUE((*client)->Ping(kPatience).ok());
  EXPECT_EQ((*client)->transactions_unanswered(), 0u);
  script.join();
}

TEST(ClientProtocolTest, InterleavedAnswersGoToTheirRequestsInOrder) {
  FakeServer server;
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor(server, /*await_hello=*/false));
  ASSERT_TRUE(client.ok()) << client.status();
  server.AcceptHello(/*answer_ping=*/false);

  const std::vector<v1::Transaction> batch = {TransactionOf(1), TransactionOf(2)};
  ASSERT_TRUE((*client)->SubmitAsync(batch).ok());
  ASSERT_TRUE((*client)->QueryAsync(1).ok());
  ASSERT_TRUE((*client)->PingAsync(77).ok());
  EXPECT_EQ(server.Read().submit().transactions_size(), 2);
  EXPECT_TRUE(server.Read().has_query());
  EXPECT_EQ(server.Read().ping().nonce(), 77u);
  // A blocking Submit queued behind the async ones gets the third Confirmation.
  absl::StatusOr<v1::Confirmation> blocking;
  std::thread caller([&] { blocking = (*client)->Submit(TransactionOf(3), kPatience); });
  EXPECT_EQ(server.Read().submit().transactions(0).id(), 3u);
  server.Send(Frame(ConfirmationOf(1)) + Frame(OutcomeOf(1)) + Frame(PongOf(77)) +
              Frame(ConfirmationOf(2)) + Frame(StatusOf(1)) + Frame(ConfirmationOf(3)) +
              Frame(OutcomeOf(2)));
  caller.join();

  ASSERT_TRUE(blocking.ok()) << blocking.status();
  EXPECT_EQ(blocking->transaction_id(), 3u);
  EXPECT_EQ(TakeEvents(**client, 6),
            (std::vector<std::string>{"confirmation 1", "outcome 1", "pong 77", "confirmation 2",
                                      "status 1", "outcome 2"}));
}

TEST(ClientProtocolTest, ServerErrorFailsTheWaitingCallAndEveryLaterOne) {
  FakeServer server;
  std::atomic<int> errors{0};
  Handlers handlers;
  handlers.on_error = [&](const v1::Error& error, int64_t) {
    EXPECT_EQ(error.code(), v1::ERROR_CODE_SHUTTING_DOWN);
    errors.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after the reader ended.
  };
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor(server, /*await_hello=*/false), handlers);
  ASSERT_TRUE(client.ok()) << client.status();
  std::thread script([&] {
    server.AcceptHello(/*answer_ping=*/false);
    EXPECT_TRUE(server.Read().has_submit());
    server.Send(Frame(ErrorOf(v1::ERROR_CODE_SHUTTING_DOWN)));
    server.CloseConnection();
  });

  absl::StatusOr<v1::Confirmation> confirmation = (*client)->Submit(TransactionOf(5), kPatience);
  script.join();
  EXPECT_TRUE(absl::IsUnavailable(confirmation.status())) << confirmation.status();
  EXPECT_EQ(ServerErrorCode(confirmation.status()), v1::ERROR_CODE_SHUTTING_DOWN);
  EXPECT_EQ(TakeEvents(**client, 1), std::vector<std::string>{"disconnect UNAVAILABLE"});
  EXPECT_EQ(errors.load(std::memory_order_relaxed), 1);
  // The connection is over: later calls fail at once with the same reason.
  const absl::Status later = (*client)->SubmitAsync({TransactionOf(6)});
  EXPECT_EQ(ServerErrorCode(later), v1::ERROR_CODE_SHUTTING_DOWN);
  Event event;
  EXPECT_TRUE(absl::IsUnavailable((*client)->NextEvent(&event, absl::ZeroDuration())));
}

TEST(ClientProtocolTest, RefusedHelloFailsConnect) {
  FakeServer server;
  std::thread script([&] {
    server.Accept();
    EXPECT_EQ(server.Read().hello().auth_token(), "wrong");
    EXPECT_TRUE(server.Read().has_ping());
    server.Send(Frame(ErrorOf(v1::ERROR_CODE_NOT_AUTHENTICATED)));
    server.CloseConnection();
  });
  ClientOptions options = OptionsFor(server, /*await_hello=*/true);
  options.auth_token = "wrong";
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  script.join();
  EXPECT_TRUE(absl::IsUnauthenticated(client.status())) << client.status();
  EXPECT_EQ(ServerErrorCode(client.status()), v1::ERROR_CODE_NOT_AUTHENTICATED);
}

TEST(ClientProtocolTest, TimedOutCallKeepsItsPlaceSoTheNextCallGetsItsOwnAnswer) {
  FakeServer server;
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor(server, /*await_hello=*/false));
  ASSERT_TRUE(client.ok()) << client.status();
  server.AcceptHello(/*answer_ping=*/false);

  EXPECT_TRUE(absl::IsDeadlineExceeded((*client)->Ping(absl::Milliseconds(50)).status()));
  absl::StatusOr<v1::Pong> second;
  std::thread caller([&] { second = (*client)->Ping(kPatience); });
  const uint64_t first_nonce = server.Read().ping().nonce();
  const uint64_t second_nonce = server.Read().ping().nonce();
  server.Send(Frame(PongOf(first_nonce)) + Frame(PongOf(second_nonce)));
  caller.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->nonce(), second_nonce);
  EXPECT_NE(first_nonce, second_nonce);
}

TEST(ClientProtocolTest, FullEventQueueHoldsTheReaderBackWithoutLosingEvents) {
  FakeServer server;
  ClientOptions options = OptionsFor(server, /*await_hello=*/false);
  options.event_queue_capacity = 4;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  server.AcceptHello(/*answer_ping=*/false);

  constexpr uint64_t kOutcomes = 2000;
  std::thread script([&] {
    std::string bytes;
    for (uint64_t id = 1; id <= kOutcomes; ++id) bytes += Frame(OutcomeOf(id));
    server.Send(bytes);
    server.CloseConnection();
  });
  std::vector<std::string> expected;
  for (uint64_t id = 1; id <= kOutcomes; ++id) expected.push_back("outcome " + std::to_string(id));
  expected.push_back("disconnect UNAVAILABLE");
  EXPECT_EQ(TakeEvents(**client, expected.size()), expected);
  script.join();
}

TEST(ClientProtocolTest, GarbageFromTheServerEndsTheConnection) {
  FakeServer server;
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor(server, /*await_hello=*/false));
  ASSERT_TRUE(client.ok()) << client.status();
  server.AcceptHello(/*answer_ping=*/false);
  std::thread script([&] {
    EXPECT_TRUE(server.Read().has_ping());
    server.Send(std::string(6, '\xff'));  // A varint longer than five bytes.
  });
  const absl::Status status = (*client)->Ping(kPatience).status();
  script.join();
  EXPECT_TRUE(absl::IsInternal(status)) << status;
  EXPECT_TRUE(absl::IsInternal((*client)->status()));
}

TEST(ClientProtocolTest, AnswerNobodyAskedForIsAProtocolError) {
  FakeServer server;
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor(server, /*await_hello=*/false));
  ASSERT_TRUE(client.ok()) << client.status();
  server.AcceptHello(/*answer_ping=*/false);
  server.Send(Frame(ConfirmationOf(9)));
  EXPECT_EQ(TakeEvents(**client, 1), std::vector<std::string>{"disconnect INTERNAL"});
}

TEST(ClientProtocolTest, BatchTooLargeForAFrameIsRefusedBeforeSending) {
  FakeServer server;
  ClientOptions options = OptionsFor(server, /*await_hello=*/false);
  options.frame_bytes_max = 64;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<v1::Transaction> batch;
  for (uint64_t id = 1; id <= 10; ++id) batch.push_back(TransactionOf(id));
  EXPECT_TRUE(absl::IsInvalidArgument((*client)->SubmitAsync(batch)));
  EXPECT_TRUE(absl::IsInvalidArgument((*client)->SubmitAsync({})));
  EXPECT_EQ((*client)->transactions_unanswered(), 0u);
  EXPECT_TRUE((*client)->status().ok());
}

TEST(ClientProtocolTest, WelcomeIsKeptAndItsBatchMaximumIsEnforced) {
  FakeServer server;
  std::thread script([&] {
    server.Accept();
    const v1::ClientMessage hello = server.Read();
    EXPECT_TRUE(hello.hello().resume());
    EXPECT_EQ(hello.hello().resume_from_seq(), 0u);
    EXPECT_EQ(hello.hello().epoch(), 0u);
    v1::ServerMessage welcome;
    welcome.mutable_welcome()->set_epoch(77);
    welcome.mutable_welcome()->set_resuming(true);
    welcome.mutable_welcome()->set_submit_batch_max(2);
    server.Send(Frame(welcome));
    const uint64_t nonce = server.Read().ping().nonce();
    server.Send(Frame(PongOf(nonce)));
  });
  ClientOptions options = OptionsFor(server, /*await_hello=*/true);
  options.client_name = "resumer";
  options.resume = true;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  script.join();
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->welcome().has_value());
  EXPECT_EQ((*client)->welcome()->epoch(), 77u);
  const std::vector<v1::Transaction> batch = {TransactionOf(1), TransactionOf(2),
                                              TransactionOf(3)};
  EXPECT_TRUE(absl::IsInvalidArgument((*client)->SubmitAsync(batch)));
  EXPECT_EQ((*client)->transactions_unanswered(), 0u);
}

TEST(ClientProtocolTest, ResumeOptionsAreChecked) {
  ClientOptions options;
  options.resume_from_seq = 5;
  EXPECT_TRUE(absl::IsInvalidArgument(options.Validate())) << "a position needs resume";
  options.resume = true;
  EXPECT_TRUE(absl::IsInvalidArgument(options.Validate())) << "resume needs a name";
  options.client_name = "till";
  EXPECT_TRUE(options.Validate().ok());
}

TEST(ClientProtocolTest, BlockingCallFromAHandlerIsRefused) {
  FakeServer server;
  absl::Mutex mu;
  absl::Status from_handler = absl::UnknownError("handler did not run");
  Client* client_in_handler = nullptr;
  Handlers handlers;
  handlers.on_outcome = [&](const v1::Outcome&, int64_t) {
    absl::MutexLock lock(&mu);
    from_handler = client_in_handler->Ping(kPatience).status();
  };
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor(server, /*await_hello=*/false), handlers);
  ASSERT_TRUE(client.ok()) << client.status();
  {
    absl::MutexLock lock(&mu);
    client_in_handler = client->get();
  }
  server.AcceptHello(/*answer_ping=*/false);
  server.Send(Frame(OutcomeOf(1)));
  absl::MutexLock lock(&mu);
  mu.AwaitWithTimeout(absl::Condition(
                          +[](absl::Status* status) { return !absl::IsUnknown(*status); },
                          &from_handler),
                      kPatience);
  EXPECT_TRUE(absl::IsFailedPrecondition(from_handler)) << from_handler;
}

TEST(ClientProtocolTest, CloseFailsWaitingCallsWithCancelled) {
  FakeServer server;
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor(server, /*await_hello=*/false));
  ASSERT_TRUE(client.ok()) << client.status();
  server.AcceptHello(/*answer_ping=*/false);
  absl::Status waiting;
  std::thread caller([&] { waiting = (*client)->Ping(kPatience).status(); });
  EXPECT_TRUE(server.Read().has_ping());  // The call is now waiting for its Pong.
  (*client)->Close();
  caller.join();
  EXPECT_TRUE(absl::IsCancelled(waiting)) << waiting;
}

}  // namespace
}  // namespace vouch::client
