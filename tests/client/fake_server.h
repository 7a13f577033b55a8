// FakeServer: a scripted loopback listener for the client library's protocol tests. The test
// drives it step by step: it accepts a connection, reads the ClientMessages the client sent, and
// writes exactly the bytes the test chooses (answers interleaved with outcomes, a frame split
// into single bytes, an Error in place of an answer, garbage).
//
// Thread safety: one thread (the test's script thread) owns a FakeServer; port() is constant.
#ifndef VOUCH_TESTS_CLIENT_FAKE_SERVER_H_
#define VOUCH_TESTS_CLIENT_FAKE_SERVER_H_

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "engine/net/frame_codec.h"
#include "gtest/gtest.h"
#include "proto/vouch.pb.h"

namespace vouch::testing {

inline constexpr size_t kFakeFrameBytesMax = 64 * 1024;

inline std::string Frame(const v1::ServerMessage& message,
                         size_t frame_bytes_max = kFakeFrameBytesMax) {
  std::string out;
  EXPECT_TRUE(net::AppendFrame(message, frame_bytes_max, &out));
  return out;
}

class FakeServer {
 public:
  // frame_bytes_max: the longest frame the client may send (a longer one fails the test).
  explicit FakeServer(size_t frame_bytes_max = kFakeFrameBytesMax)
      : frame_bytes_max_(frame_bytes_max) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
    EXPECT_EQ(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
  }
  ~FakeServer() {
    CloseConnection();
    close(listen_fd_);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  int port() const { return port_; }

  // Accepts the next connection (closing the one at hand), with a fresh decoder.
  void Accept() {
    CloseConnection();
    fd_ = accept(listen_fd_, nullptr, nullptr);
    decoder_ = std::make_unique<net::FrameDecoder>(frame_bytes_max_);
  }
  // Whether a connection is waiting to be accepted within `timeout`.
  bool ConnectionWaiting(absl::Duration timeout) {
    pollfd entry{listen_fd_, POLLIN, 0};
    return poll(&entry, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) > 0;
  }

  // The next message the client sent; blocks until it is complete. False (and no failure) if
  // the client closed the connection first.
  bool ReadOrClosed(v1::ClientMessage* message) {
    for (;;) {
      const net::FrameDecoder::Result result = decoder_->Next(message);
      if (result == net::FrameDecoder::Result::kFrame) return true;
      EXPECT_NE(result, net::FrameDecoder::Result::kError);
      if (result == net::FrameDecoder::Result::kError) return false;
      const ssize_t got = recv(fd_, decoder_->WritePointer(), decoder_->WritableBytes(), 0);
      if (got <= 0) return false;
      decoder_->Commit(static_cast<size_t>(got));
    }
  }
  // As ReadOrClosed, failing the test if the client closed first.
  v1::ClientMessage Read() {
    v1::ClientMessage message;
    if (!ReadOrClosed(&message)) ADD_FAILURE() << "the client closed before sending a message";
    return message;
  }
  // Accepts, and reads the Hello (and, for a client that awaits Hello, answers its Ping).
  void AcceptHello(bool answer_ping) {
    Accept();
    EXPECT_TRUE(Read().has_hello());
    if (!answer_ping) return;
    const v1::ClientMessage ping = Read();
    EXPECT_TRUE(ping.has_ping());
    v1::ServerMessage pong;
    pong.mutable_pong()->set_nonce(ping.ping().nonce());
    Send(Frame(pong));
  }

  void Send(const std::string& bytes) {
    EXPECT_EQ(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // One byte per send(2): the client sees every frame boundary inside a read.
  void Trickle(const std::string& bytes) {
    for (char byte : bytes) ASSERT_EQ(send(fd_, &byte, 1, MSG_NOSIGNAL), 1);
  }
  void CloseConnection() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  const size_t frame_bytes_max_;
  int listen_fd_ = -1;
  int port_ = 0;
  int fd_ = -1;
  std::unique_ptr<net::FrameDecoder> decoder_;
};

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_CLIENT_FAKE_SERVER_H_
