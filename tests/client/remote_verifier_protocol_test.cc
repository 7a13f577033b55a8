// RemoteVerifierWorker against a scripted fake server: the verifier side of the protocol under
// conditions a real server does not produce on demand (a batch too large for one Verdicts
// frame, a refused VerifierHello, a connection dropped right after the welcome, a Stop() while
// the check is running).
//
// Method: FakeServer (tests/client/fake_server.h) accepts the worker's connections and reads
// exactly what it sent; the test writes the VerifierWelcome, VerifyBatch and Error frames. Each
// test checks the frames the worker sent, what AwaitWelcome and status() return, and the
// counters. The only timings are bounds: a 20 ms ping interval must produce a Ping within the
// patience, and "no reconnect" is watched for 300 ms, six times the 50 ms first back-off.
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/remote_verifier.h"
#include "gtest/gtest.h"
#include "proto/vouch.pb.h"
#include "tests/client/fake_server.h"

namespace vouch::client {
namespace {

using ::vouch::testing::FakeServer;
using ::vouch::testing::Frame;

constexpr absl::Duration kPatience = absl::Seconds(10);  // Never reached when things work.

RemoteVerifierOptions OptionsFor(const FakeServer& server) {
  RemoteVerifierOptions options;
  options.port = server.port();
  options.verifier = "sanctions";
  options.auth_token = "secret";
  options.window = 7;
  options.worker_name = "worker-a";
  return options;
}

v1::ServerMessage WelcomeMessage() {
  v1::ServerMessage message;
  v1::VerifierWelcome* welcome = message.mutable_verifier_welcome();
  welcome->set_verifier(v1::VERIFIER_EMBEDDER_2);
  welcome->set_epoch(99);
  welcome->set_window(7);
  welcome->set_batch_max(64);
  welcome->set_frame_bytes_max(64 * 1024);
  welcome->set_deadline_ns(50'000'000);
  welcome->set_policy(1);
  return message;
}

v1::ServerMessage BatchOf(uint64_t first_seq, int count, bool redelivered = false) {
  v1::ServerMessage message;
  for (int i = 0; i < count; ++i) {
    v1::VerifyRequest* request = message.mutable_verify_batch()->add_requests();
    request->set_seq(first_seq + static_cast<uint64_t>(i));
    request->mutable_transaction()->set_id(1000 + first_seq + static_cast<uint64_t>(i));
    request->set_redelivered(redelivered);
  }
  return message;
}

v1::ServerMessage ErrorOf(v1::ErrorCode code) {
  v1::ServerMessage message;
  message.mutable_error()->set_code(code);
  message.mutable_error()->set_message("scripted");
  return message;
}

// Fails seqs divisible by 3 with code seq % 1000 + 1; passes the rest.
uint16_t ThirdsFail(const v1::VerifyRequest& request) {
  return request.seq() % 3 == 0 ? static_cast<uint16_t>(request.seq() % 1000 + 1) : 0;
}

// Reads the next frame, skipping Pings; it must be Verdicts.
v1::Verdicts ReadVerdicts(FakeServer& server) {
  for (;;) {
    const v1::ClientMessage message = server.Read();
    if (message.has_ping()) continue;
    EXPECT_TRUE(message.has_verdicts()) << message.ShortDebugString();
    return message.verdicts();
  }
}

TEST(RemoteVerifierProtocolTest, HelloWelcomeAndOneVerdictsFramePerBatch) {
  FakeServer server;
  std::thread script([&] {
    server.Accept();
    const v1::ClientMessage hello = server.Read();
    ASSERT_TRUE(hello.has_verifier_hello());
    EXPECT_EQ(hello.verifier_hello().verifier(), "sanctions");
    EXPECT_EQ(hello.verifier_hello().auth_token(), "secret");
    EXPECT_EQ(hello.verifier_hello().window(), 7u);
    EXPECT_EQ(hello.verifier_hello().worker_name(), "worker-a");
    server.Send(Frame(WelcomeMessage()));
    server.Send(Frame(BatchOf(10, 3)) + Frame(BatchOf(20, 2, /*redelivered=*/true)));
    const v1::Verdicts first = ReadVerdicts(server);
    ASSERT_EQ(first.verdicts_size(), 3);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(first.verdicts(i).seq(), 10u + static_cast<uint64_t>(i));  // Arrival order.
    }
    EXPECT_EQ(first.verdicts(0).code(), 0u);
    EXPECT_EQ(first.verdicts(2).code(), 13u);  // seq 12.
    const v1::Verdicts second = ReadVerdicts(server);
    ASSERT_EQ(second.verdicts_size(), 2);
    EXPECT_EQ(second.verdicts(0).seq(), 20u);
    EXPECT_EQ(second.verdicts(1).code(), 22u);  // seq 21.
  });
  absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker =
      RemoteVerifierWorker::Start(OptionsFor(server), ThirdsFail);
  ASSERT_TRUE(worker.ok()) << worker.status();
  absl::StatusOr<v1::VerifierWelcome> welcome = (*worker)->AwaitWelcome(kPatience);
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  EXPECT_EQ(welcome->verifier(), v1::VERIFIER_EMBEDDER_2);
  EXPECT_EQ(welcome->epoch(), 99u);
  script.join();
  EXPECT_TRUE((*worker)->connected());
  (*worker)->Stop();
  const RemoteVerifierCounters counters = (*worker)->counters();
  EXPECT_EQ(counters.requests, 5u);
  EXPECT_EQ(counters.redelivered, 2u);
  EXPECT_EQ(counters.verdicts, 5u);
  EXPECT_EQ(counters.verdict_frames, 2u);
  EXPECT_EQ(counters.connections, 1u);
  EXPECT_EQ(counters.reconnects, 0u);
  EXPECT_TRUE(absl::IsCancelled((*worker)->status())) << (*worker)->status();
}

// With a 256-byte frame maximum, 18 verdicts of the longest kind (10-byte seq varints, code
// 65535) do not fit one frame: they come in several, each within the maximum (the fake server's
// decoder refuses a longer one), in order; whether the 256 bytes are the worker's own
// frame_bytes_max or the one the VerifierWelcome states. Parameter: the worker's is the small one.
class VerdictSplitTest : public ::testing::TestWithParam<bool> {};

TEST_P(VerdictSplitTest, VerdictsOfALargeBatchAreSplitToFitTheSmallerFrameMaximum) {
  constexpr size_t kSmallFrame = 256;
  const bool ours_is_small = GetParam();
  FakeServer server(kSmallFrame);
  RemoteVerifierOptions options = OptionsFor(server);
  if (ours_is_small) options.frame_bytes_max = kSmallFrame;
  options.window = 18;
  constexpr uint64_t kFirstSeq = ~uint64_t{0} - 255;  // 10-byte varints.
  std::thread script([&] {
    server.Accept();
    ASSERT_TRUE(server.Read().has_verifier_hello());
    v1::ServerMessage welcome = WelcomeMessage();
    welcome.mutable_verifier_welcome()->set_frame_bytes_max(
        ours_is_small ? 64 * 1024 : kSmallFrame);
    server.Send(Frame(welcome, kSmallFrame));
    v1::ServerMessage batch = BatchOf(kFirstSeq, 18);
    for (v1::VerifyRequest& request : *batch.mutable_verify_batch()->mutable_requests()) {
      request.clear_transaction();  // So that the batch itself fits 256 bytes.
    }
    server.Send(Frame(batch, kSmallFrame));
    uint64_t next_seq = kFirstSeq;
    int frames = 0;
    while (next_seq < kFirstSeq + 18) {
      const v1::Verdicts verdicts = ReadVerdicts(server);
      ASSERT_GT(verdicts.verdicts_size(), 0);
      for (const v1::Verdict& verdict : verdicts.verdicts()) EXPECT_EQ(verdict.seq(), next_seq++);
      ++frames;
    }
    EXPECT_GT(frames, 1);
  });
  absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker =
      RemoteVerifierWorker::Start(options, [](const v1::VerifyRequest&) { return 65535; });
  ASSERT_TRUE(worker.ok()) << worker.status();
  script.join();
  (*worker)->Stop();
  EXPECT_EQ((*worker)->counters().verdicts, 18u);
  EXPECT_GT((*worker)->counters().verdict_frames, 1u);
}

INSTANTIATE_TEST_SUITE_P(SmallSide, VerdictSplitTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Ours" : "Servers";
                         });

TEST(RemoteVerifierProtocolTest, PingsWhenIdle) {
  FakeServer server;
  RemoteVerifierOptions options = OptionsFor(server);
  options.ping_interval = absl::Milliseconds(20);
  std::thread script([&] {
    server.Accept();
    ASSERT_TRUE(server.Read().has_verifier_hello());
    server.Send(Frame(WelcomeMessage()));
    EXPECT_TRUE(server.Read().has_ping());
    EXPECT_TRUE(server.Read().has_ping());
  });
  absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker =
      RemoteVerifierWorker::Start(options, ThirdsFail);
  ASSERT_TRUE(worker.ok()) << worker.status();
  script.join();
  (*worker)->Stop();
  EXPECT_GE((*worker)->counters().pings, 2u);
}

// A refused VerifierHello is permanent: AwaitWelcome and status() say why, and the worker does
// not dial again.
void ExpectPermanent(v1::ErrorCode code, bool (*is_code)(const absl::Status&)) {
  FakeServer server;
  std::thread script([&] {
    server.Accept();
    ASSERT_TRUE(server.Read().has_verifier_hello());
    server.Send(Frame(ErrorOf(code)));
    server.CloseConnection();
    EXPECT_FALSE(server.ConnectionWaiting(absl::Milliseconds(300))) << "it dialled again";
  });
  absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker =
      RemoteVerifierWorker::Start(OptionsFor(server), ThirdsFail);
  ASSERT_TRUE(worker.ok()) << worker.status();
  absl::StatusOr<v1::VerifierWelcome> welcome = (*worker)->AwaitWelcome(kPatience);
  EXPECT_TRUE(is_code(welcome.status())) << welcome.status();
  EXPECT_EQ(ServerErrorCode(welcome.status()), code);
  script.join();
  EXPECT_TRUE(is_code((*worker)->status())) << (*worker)->status();
  EXPECT_EQ((*worker)->counters().connections, 0u);
  EXPECT_FALSE((*worker)->welcome().has_value());
}

TEST(RemoteVerifierProtocolTest, UnknownVerifierIsPermanentNotFound) {
  ExpectPermanent(v1::ERROR_CODE_UNKNOWN_VERIFIER, absl::IsNotFound);
}

TEST(RemoteVerifierProtocolTest, WrongTokenIsPermanentUnauthenticated) {
  ExpectPermanent(v1::ERROR_CODE_NOT_AUTHENTICATED, absl::IsUnauthenticated);
}

// A lost connection (and a retryable Error) is followed by a new connection that says
// VerifierHello again and serves what the server redelivers.
TEST(RemoteVerifierProtocolTest, ReconnectsAfterALostConnectionAndARetryableError) {
  FakeServer server;
  std::thread script([&] {
    server.Accept();
    ASSERT_TRUE(server.Read().has_verifier_hello());
    server.Send(Frame(WelcomeMessage()) + Frame(BatchOf(5, 1)));
    EXPECT_EQ(ReadVerdicts(server).verdicts(0).seq(), 5u);
    server.Send(Frame(BatchOf(6, 2)));
    server.CloseConnection();  // Perhaps before the worker answered: it must not matter.

    server.Accept();
    ASSERT_TRUE(server.Read().has_verifier_hello());
    server.Send(Frame(ErrorOf(v1::ERROR_CODE_SHUTTING_DOWN)));
    server.CloseConnection();

    server.Accept();
    ASSERT_TRUE(server.Read().has_verifier_hello());
    server.Send(Frame(WelcomeMessage()) + Frame(BatchOf(6, 2, /*redelivered=*/true)));
    const v1::Verdicts verdicts = ReadVerdicts(server);
    ASSERT_EQ(verdicts.verdicts_size(), 2);
    EXPECT_EQ(verdicts.verdicts(1).seq(), 7u);
  });
  absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker =
      RemoteVerifierWorker::Start(OptionsFor(server), ThirdsFail);
  ASSERT_TRUE(worker.ok()) << worker.status();
  script.join();
  (*worker)->Stop();
  const RemoteVerifierCounters counters = (*worker)->counters();
  EXPECT_EQ(counters.connections, 2u);
  EXPECT_EQ(counters.reconnects, 1u);
  EXPECT_EQ(counters.connect_failures, 1u);  // The SHUTTING_DOWN refusal.
  EXPECT_GE(counters.redelivered, 2u);
}

TEST(RemoteVerifierProtocolTest, KeepsRetryingWhileNoServerListensUntilStopped) {
  int port = 0;
  {
    FakeServer gone;  // Binds a free port and closes it: nothing listens there.
    port = gone.port();
  }
  RemoteVerifierOptions options;
  options.port = port;
  options.verifier = "sanctions";
  options.reconnect_delay_min = absl::Milliseconds(5);
  options.reconnect_delay_max = absl::Milliseconds(20);
  absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker =
      RemoteVerifierWorker::Start(options, ThirdsFail);
  ASSERT_TRUE(worker.ok()) << worker.status();
  absl::StatusOr<v1::VerifierWelcome> welcome = (*worker)->AwaitWelcome(absl::Milliseconds(200));
  EXPECT_TRUE(absl::IsDeadlineExceeded(welcome.status())) << welcome.status();
  EXPECT_TRUE((*worker)->status().ok()) << "still running";
  EXPECT_GE((*worker)->counters().connect_failures, 2u);
  EXPECT_TRUE(absl::IsUnavailable((*worker)->last_error())) << (*worker)->last_error();
  const absl::Time before = absl::Now();
  (*worker)->Stop();
  EXPECT_LT(absl::Now() - before, absl::Seconds(1));  // The back-off sleep is woken.
  EXPECT_TRUE(absl::IsCancelled((*worker)->status())) << (*worker)->status();
}

// Stop() during a check: the check returns, the batch's verdicts are not sent, and the
// connection closes, so the server redelivers the batch elsewhere.
TEST(RemoteVerifierProtocolTest, StopDuringACheckSendsNoVerdictsAndCloses) {
  FakeServer server;
  absl::Notification checking;
  absl::Notification release;
  std::thread script([&] {
    server.Accept();
    ASSERT_TRUE(server.Read().has_verifier_hello());
    server.Send(Frame(WelcomeMessage()) + Frame(BatchOf(1, 2)));
    v1::ClientMessage message;
    while (server.ReadOrClosed(&message)) {
      EXPECT_FALSE(message.has_verdicts()) << message.ShortDebugString();
    }
  });
  absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> worker = RemoteVerifierWorker::Start(
      OptionsFor(server), [&](const v1::VerifyRequest&) -> uint16_t {
        if (!checking.HasBeenNotified()) checking.Notify();
        release.WaitForNotification();
        return 0;
      });
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE(checking.WaitForNotificationWithTimeout(kPatience));
  std::thread stopper([&] { (*worker)->Stop(); });
  absl::SleepFor(absl::Milliseconds(20));  // Let Stop() start while the check still runs.
  release.Notify();
  stopper.join();
  script.join();
  EXPECT_EQ((*worker)->counters().verdicts, 0u);
  EXPECT_EQ((*worker)->counters().requests, 2u);
  EXPECT_TRUE(absl::IsCancelled((*worker)->status())) << (*worker)->status();
}

TEST(RemoteVerifierProtocolTest, OptionsAreValidated) {
  RemoteVerifierOptions options;
  EXPECT_TRUE(absl::IsInvalidArgument(options.Validate()));  // No verifier name.
  options.verifier = "sanctions";
  EXPECT_TRUE(options.Validate().ok());
  options.window = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(options.Validate()));
  options.window = 65537;
  EXPECT_TRUE(absl::IsInvalidArgument(options.Validate()));
  options.window = 65536;
  options.worker_name = std::string(257, 'w');
  EXPECT_TRUE(absl::IsInvalidArgument(options.Validate()));
  options.worker_name = "ok";
  EXPECT_FALSE(RemoteVerifierWorker::Start(options, nullptr).ok());
}

}  // namespace
}  // namespace vouch::client
