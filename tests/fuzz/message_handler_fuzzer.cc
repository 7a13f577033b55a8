// Fuzz target: the server's handling of one connection's bytes (engine/server/internal/
// io_thread.cc: framing, envelopes, Hello and the session rules, Submit, Query, Subscribe,
// Ping, ListHolds, ReleaseHold), on arbitrary client bytes.
//
// Method: one real in-process Server (one I/O thread, a threaded 8-account bank on the loopback
// interface) serves every input. Each input is one connection: the bytes are sent, the write side
// is shut, and everything the server says is read until it closes. Driving the real server
// rather than a unit cut out of the I/O thread keeps the production code untouched and checks
// what a client sees; it costs a TCP connection per input (see docs/RELIABILITY.md for exec/s).
// Checks: the server never crashes, hangs or says anything but well-formed ServerMessages; an
// Error carries a code and a message and is the last thing said; every transaction the server
// answered CONFIRMED is found by Query under that sequence number.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/net/frame_codec.h"
#include "google/protobuf/stubs/logging.h"
#include "engine/server/server.h"
#include "proto/vouch.pb.h"
#include "tests/engine/engine_test_util.h"
#include "tests/fuzz/fuzz_check.h"

namespace vouch::fuzz {
namespace {

// The server closes at once after EOF or an Error; below libFuzzer's -timeout=10 (s), so a hang
// is reported with this check's message.
constexpr int kReplyTimeoutMs = 8'000;

server::Server& TheServer() {
  static server::Server* const instance = [] {
    google::protobuf::SetLogHandler(nullptr);  // Each invalid UTF-8 string would log a line.
    server::ServerOptions options;
    options.port = 0;
    options.frame_bytes_max = 4096;  // Small, so a fuzzed length can exceed it.
    options.submit_batch_max = 32;  // Fits the frame: SubmitFrameBytesMax(32) <= 4096.
    Options engine = vouch::testing::BankOptions(8);
    auto created = server::Server::Create(options, std::move(engine));
    FUZZ_CHECK(created.ok());
    FUZZ_CHECK((*created)->Start().ok());
    return created->release();  // Lives until the process exits.
  }();
  return *instance;
}

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  FUZZ_CHECK(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  return fd;
}

// libFuzzer checks for timeouts with SIGALRM. Landing on this thread, it would interrupt
// connect(), poll() or read() (EINTR), which looked like a server that had stopped answering (a
// rare false "hang" in CI). Blocked here while we talk to the server, it goes to one of the
// server's threads instead (they were started with it unblocked), where the check works the same.
class AlarmBlocked {
 public:
  AlarmBlocked() {
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, &previous_);
  }
  ~AlarmBlocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

 private:
  sigset_t previous_;
};

// Sends everything, shuts the write side, returns everything the server said before closing.
// Input is at most a few KiB and so is output, so the socket buffers hold both: no deadlock.
std::string Exchange(const uint8_t* data, size_t size) {
  const int port = TheServer().port();  // Starts the server threads before the block below.
  const AlarmBlocked alarm_blocked;
  const int fd = Connect(port);
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // The server may have closed already (an Error, then linger).
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string reply;
  char buffer[16 * 1024];
  for (;;) {
    pollfd readable = {fd, POLLIN, 0};
    FUZZ_CHECK(poll(&readable, 1, kReplyTimeoutMs) == 1);  // Otherwise the server hung.
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;  // EOF, or a reset after the server's linger.
    reply.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

void CheckReply(const std::string& reply) {
  net::FrameDecoder decoder(1 << 20);
  size_t taken = 0;
  v1::ServerMessage message;
  bool error_seen = false;
  while (taken < reply.size() || decoder.buffered_bytes() > 0) {
    taken += decoder.Append(reply.data() + taken, reply.size() - taken);
    const net::FrameDecoder::Result result = decoder.Next(&message);
    if (result == net::FrameDecoder::Result::kNeedMore) {
      FUZZ_CHECK(taken < reply.size());  // Replies end on a frame boundary.
      continue;
    }
    FUZZ_CHECK(result == net::FrameDecoder::Result::kFrame);
    FUZZ_CHECK(!error_seen);  // Nothing follows an Error.
    switch (message.body_case()) {
      case v1::ServerMessage::kError:
        error_seen = true;
        FUZZ_CHECK(message.error().code() != v1::ERROR_CODE_UNSPECIFIED);
        FUZZ_CHECK(!message.error().message().empty());
        break;
      case v1::ServerMessage::kConfirmation: {
        const v1::Confirmation& confirmation = message.confirmation();
        if (confirmation.status() != v1::CONFIRM_STATUS_CONFIRMED) break;
        const auto status = TheServer().engine().Query(confirmation.transaction_id());
        FUZZ_CHECK(status.has_value());
        FUZZ_CHECK(status->seq == confirmation.seq());
        break;
      }
      case v1::ServerMessage::BODY_NOT_SET:
        FUZZ_CHECK(false);
        break;
      default:
        break;
    }
  }
}

}  // namespace
}  // namespace vouch::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vouch::fuzz;
  CheckReply(Exchange(data, size));
  return 0;
}
