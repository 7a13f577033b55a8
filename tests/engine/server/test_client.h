// A blocking test client over a real loopback socket: it sends raw bytes or ClientMessages and
// reads ServerMessages with a timeout, so server tests can also misbehave on purpose.
#ifndef VOUCH_TESTS_ENGINE_SERVER_TEST_CLIENT_H_
#define VOUCH_TESTS_ENGINE_SERVER_TEST_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "engine/net/frame_codec.h"
#include "proto/vouch.pb.h"

namespace vouch::server::testing {

inline constexpr size_t kTestFrameMax = 1 << 20;

class TestClient {
 public:
  explicit TestClient(int port, int receive_buffer_bytes = 0) : decoder_(kTestFrameMax) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer_bytes > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(int));
    }
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~TestClient() { close(fd_); }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  bool SendRaw(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  bool Send(const v1::ClientMessage& message) {
    std::string frame;
    net::AppendFrame(message, kTestFrameMax, &frame);
    return SendRaw(frame);
  }
  bool Hello(const std::string& name = "", uint64_t resume_from_seq = 0,
             const std::string& token = "") {
    v1::ClientMessage message;
    message.mutable_hello()->set_client_name(name);
    message.mutable_hello()->set_resume_from_seq(resume_from_seq);
    message.mutable_hello()->set_auth_token(token);
    return Send(message);
  }
  // Hello{resume: true}: resend the session's outcomes above `from_seq` (0: all retained), a
  // position seen under `epoch` (0: unknown).
  bool Resume(const std::string& name, uint64_t from_seq, uint64_t epoch) {
    v1::ClientMessage message;
    message.mutable_hello()->set_client_name(name);
    message.mutable_hello()->set_resume(true);
    message.mutable_hello()->set_resume_from_seq(from_seq);
    message.mutable_hello()->set_epoch(epoch);
    return Send(message);
  }

  // The next message other than a Welcome (kept in welcome()), or false on timeout, close or a
  // bad frame.
  bool Read(v1::ServerMessage* message, int timeout_ms = 5'000) {
    while (ReadAny(message, timeout_ms)) {
      if (!message->has_welcome()) return true;
      welcome_ = message->welcome();
      ++welcomes_;
    }
    return false;
  }
  // The last Welcome Read() passed over, and how many it passed over.
  const v1::Welcome& welcome() const { return welcome_; }
  int welcomes() const { return welcomes_; }

  // The next message of any kind.
  bool ReadAny(v1::ServerMessage* message, int timeout_ms = 5'000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      switch (decoder_.Next(message)) {
        case net::FrameDecoder::Result::kFrame: return true;
        case net::FrameDecoder::Result::kError: return false;
        case net::FrameDecoder::Result::kNeedMore: break;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd poll_fd = {fd_, POLLIN, 0};
      if (poll(&poll_fd, 1, static_cast<int>(left.count())) <= 0) return false;
      const ssize_t n = read(fd_, decoder_.WritePointer(), decoder_.WritableBytes());
      if (n <= 0) {
        closed_ = true;
        return false;
      }
      decoder_.Commit(static_cast<size_t>(n));
    }
  }
  // Reads until an Error arrives (skipping other messages); returns its code or UNSPECIFIED.
  v1::ErrorCode ReadError(int timeout_ms = 5'000) {
    v1::ServerMessage message;
    while (Read(&message, timeout_ms)) {
      if (message.has_error()) return message.error().code();
    }
    return v1::ERROR_CODE_UNSPECIFIED;
  }
  // True once the server has closed the connection (reads return end of file).
  bool ClosedByPeer(int timeout_ms = 5'000) {
    v1::ServerMessage message;
    while (!closed_ && Read(&message, timeout_ms)) {}
    return closed_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  net::FrameDecoder decoder_;
  v1::Welcome welcome_;
  int welcomes_ = 0;
};

inline v1::Transaction WireTransfer(uint64_t id, uint64_t from, uint64_t to, int64_t amount,
                                    uint64_t merchant = 1) {
  v1::Transaction txn;
  txn.set_id(id);
  txn.set_source_account(from);
  txn.set_destination_account(to);
  txn.set_amount(amount);
  txn.set_currency("USD");
  txn.set_merchant_id(merchant);
  txn.set_merchant_category(5411);
  txn.set_country("GB");
  txn.set_device_id(77);
  return txn;
}

}  // namespace vouch::server::testing

#endif  // VOUCH_TESTS_ENGINE_SERVER_TEST_CLIENT_H_
