#include "tools/load/bad_peers.h"

#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "engine/net/frame_codec.h"
#include "engine/wire/convert.h"

namespace vouch::load {
namespace {

constexpr int64_t kTickNs = 5'000'000;
constexpr int64_t kReconnectDelayNs = 100'000'000;
// Slow enough that a Submit frame (about 50 bytes) takes far longer than the server's 5 s
// partial-frame timeout.
constexpr int64_t kTrickleIntervalNs = 250'000'000;
constexpr int kSubmitBatchMax = 64;
// A non-reader stops queueing once this much is unsent: the server is not reading it either.
constexpr size_t kNonReaderBacklogMax = 1 << 20;
constexpr int kNonReaderReceiveBufferBytes = 4096;

int64_t NowNs() { return client::Client::NowNs(); }

// A blocking connect (loopback, or a near server: quick), then non-blocking for the peer loop.
int ConnectTo(const BadPeerConfig& config, bool small_receive_buffer) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = absl::StrCat(config.port);
  if (getaddrinfo(config.host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (const addrinfo* address = found; address != nullptr && fd < 0; address = address->ai_next) {
    fd = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC, address->ai_protocol);
    if (fd < 0) continue;
    if (small_receive_buffer) {
      // Set before connect, so the window the server sees is small from the start.
      (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kNonReaderReceiveBufferBytes,
                       sizeof(kNonReaderReceiveBufferBytes));
    }
    if (connect(fd, address->ai_addr, address->ai_addrlen) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

bool Closing(int error) { return error == EPIPE || error == ECONNRESET || error == ENOTCONN; }

}  // namespace

const char* BadPeerKindName(BadPeerKind kind) {
  switch (kind) {
    case BadPeerKind::kNonReader:
      return "non_reader";
    case BadPeerKind::kSlowloris:
      return "slowloris";
    case BadPeerKind::kIdle:
      return "idle";
  }
  return "unknown";
}

BadPeers::BadPeers(const BadPeerConfig& config) : config_(config), generator_(config.workload) {
  for (int i = 0; i < config.count; ++i) {
    Peer peer;
    peer.kind = static_cast<BadPeerKind>(i % kBadPeerKindCount);
    peers_.push_back(std::move(peer));
    ++report_[i % kBadPeerKindCount].peers;
  }
}

BadPeers::~BadPeers() { Stop(); }

void BadPeers::Start() {
  thread_ = std::thread([this] {
    (void)pthread_setname_np(pthread_self(), "vouch-load-bad");
    Run();
  });
}

void BadPeers::Stop() {
  // relaxed: a request to stop, which publishes no data; join() orders the peers' state.
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

void BadPeers::Run() {
  // relaxed: see Stop().
  while (!stop_.load(std::memory_order_relaxed)) {
    const int64_t now_ns = NowNs();
    for (Peer& peer : peers_) Step(peer, now_ns);
    std::this_thread::sleep_for(std::chrono::nanoseconds(kTickNs));
  }
  for (Peer& peer : peers_) {
    if (peer.fd >= 0) close(peer.fd);
    peer.fd = -1;
  }
}

void BadPeers::Step(Peer& peer, int64_t now_ns) {
  if (peer.fd < 0) {
    if (now_ns >= peer.next_ns) Open(peer, now_ns);
    return;
  }
  switch (peer.kind) {
    case BadPeerKind::kNonReader:
      StepNonReader(peer, now_ns);
      break;
    case BadPeerKind::kSlowloris:
      StepSlowloris(peer, now_ns);
      break;
    case BadPeerKind::kIdle:
      if (!Drain(peer)) Closed(peer, now_ns);
      break;
  }
}

void BadPeers::Open(Peer& peer, int64_t now_ns) {
  BadPeerCounts& counts = report_[static_cast<int>(peer.kind)];
  peer.fd = ConnectTo(config_, peer.kind == BadPeerKind::kNonReader);
  if (peer.fd < 0) {
    ++counts.connect_failures;
    peer.next_ns = now_ns + kReconnectDelayNs;
    return;
  }
  ++counts.connections;
  peer.out.clear();
  peer.out_sent = 0;
  peer.last_ns = now_ns;
  peer.credit = 0;
  peer.next_ns = now_ns;
  if (peer.kind == BadPeerKind::kIdle) return;
  v1::Hello hello;
  hello.set_auth_token(config_.auth_token);
  (void)net::AppendEnvelopeFrame(v1::ClientMessage::kHelloFieldNumber, hello,
                                 config_.frame_bytes_max, &peer.out);
  if (!Flush(peer, peer.out.size())) Closed(peer, now_ns);  // The Hello goes whole, at once.
}

void BadPeers::Closed(Peer& peer, int64_t now_ns) {
  close(peer.fd);
  peer.fd = -1;
  peer.next_ns = now_ns + kReconnectDelayNs;
  ++report_[static_cast<int>(peer.kind)].closed_by_server;
}

void BadPeers::StepNonReader(Peer& peer, int64_t now_ns) {
  peer.credit += config_.non_reader_rate * static_cast<double>(now_ns - peer.last_ns) / 1e9;
  peer.last_ns = now_ns;
  while (peer.credit >= 1 && peer.out.size() - peer.out_sent < kNonReaderBacklogMax) {
    const int transactions = std::min(kSubmitBatchMax, static_cast<int>(peer.credit));
    AppendSubmit(&peer.out, transactions);
    peer.credit -= transactions;
    report_[static_cast<int>(peer.kind)].transactions_sent += transactions;
  }
  peer.credit = std::min(peer.credit, 1.0);  // Blocked: what could not be queued is dropped.
  if (!Flush(peer, peer.out.size())) Closed(peer, now_ns);
}

void BadPeers::StepSlowloris(Peer& peer, int64_t now_ns) {
  if (!Drain(peer)) return Closed(peer, now_ns);
  if (now_ns < peer.next_ns) return;
  peer.next_ns = now_ns + kTrickleIntervalNs;
  if (peer.out_sent == peer.out.size()) {  // The last frame is out (or none yet): start another.
    AppendSubmit(&peer.out, 1);
    ++report_[static_cast<int>(peer.kind)].transactions_sent;
  }
  if (!Flush(peer, peer.out_sent + 1)) Closed(peer, now_ns);
}

bool BadPeers::Flush(Peer& peer, size_t limit) {
  while (peer.out_sent < limit) {
    const ssize_t sent = send(peer.fd, peer.out.data() + peer.out_sent, limit - peer.out_sent,
                              MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      peer.out_sent += static_cast<size_t>(sent);
      report_[static_cast<int>(peer.kind)].bytes_sent += static_cast<uint64_t>(sent);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else if (errno != EINTR) {
      return !Closing(errno);
    }
  }
  if (peer.out_sent == peer.out.size()) {  // Everything is out: reuse the buffer.
    peer.out.clear();
    peer.out_sent = 0;
  }
  return true;
}

bool BadPeers::Drain(Peer& peer) {
  char discard[4096];
  for (;;) {
    const ssize_t got = recv(peer.fd, discard, sizeof(discard), MSG_DONTWAIT);
    if (got > 0) continue;
    if (got == 0) return false;
    if (errno == EINTR) continue;
    return !Closing(errno);  // EAGAIN: nothing more for now.
  }
}

void BadPeers::AppendSubmit(std::string* out, int transactions) {
  submit_.mutable_transactions()->Clear();
  for (int i = 0; i < transactions; ++i) wire::ToProto(generator_.Next(), submit_.add_transactions());
  (void)net::AppendEnvelopeFrame(v1::ClientMessage::kSubmitFieldNumber, submit_,
                                 config_.frame_bytes_max, out);
}

}  // namespace vouch::load
