// BadPeers: misbehaving connections for vouch-load's isolation check ("a slow or malicious client
// does not raise a healthy client's p99 confirm round trip by more than 2x").
//
// Peers take the kinds in turn:
//  - non-reader: says Hello, then submits at a steady rate and never reads a byte, so its answers
//    pile up in the server (its receive buffer is made small so that happens early).
//  - slowloris: says Hello, then sends a Submit frame one byte every 250 ms, so the server holds
//    an incomplete frame for it all the time.
//  - idle: connects and never sends anything.
// A peer the server closes reconnects after 100 ms, so the pressure lasts as long as the peers
// run. Peers speak raw frames over non-blocking sockets, not through the Client library, which
// would read.
//
// Thread safety: Start and Stop are called from one thread; between them a single thread
// ("vouch-load-bad") drives every peer, waking every 5 ms. report() after Stop().
#ifndef VOUCH_TOOLS_LOAD_BAD_PEERS_H_
#define VOUCH_TOOLS_LOAD_BAD_PEERS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "proto/vouch.pb.h"
#include "tools/workload/workload.h"

namespace vouch::load {

enum class BadPeerKind : int { kNonReader = 0, kSlowloris = 1, kIdle = 2 };
inline constexpr int kBadPeerKindCount = 3;
const char* BadPeerKindName(BadPeerKind kind);  // "non_reader", "slowloris", "idle".

struct BadPeerConfig {
  std::string host;
  int port = 0;
  std::string auth_token;
  int count = 0;                  // Peers; kinds in turn.
  double non_reader_rate = 0;     // Transactions per second from each non-reader.
  workload::WorkloadConfig workload;  // Ids from workload.first_id on.
  size_t frame_bytes_max = 64 * 1024;
};

struct BadPeerCounts {
  uint64_t peers = 0;
  uint64_t connections = 0;       // Opened, reconnections included.
  uint64_t closed_by_server = 0;
  uint64_t connect_failures = 0;
  uint64_t transactions_sent = 0;  // Put in Submit frames (a slowloris never finishes one).
  uint64_t bytes_sent = 0;
};
using BadPeerReport = std::array<BadPeerCounts, kBadPeerKindCount>;  // By BadPeerKind.

class BadPeers {
 public:
  explicit BadPeers(const BadPeerConfig& config);
  ~BadPeers();  // Stop()s.
  BadPeers(const BadPeers&) = delete;
  BadPeers& operator=(const BadPeers&) = delete;

  void Start();
  void Stop();  // Closes every peer. Idempotent.
  const BadPeerReport& report() const { return report_; }

 private:
  struct Peer {
    BadPeerKind kind = BadPeerKind::kIdle;
    int fd = -1;
    std::string out;       // Bytes queued for the socket.
    size_t out_sent = 0;
    int64_t next_ns = 0;   // Reconnect (closed) or next trickled byte (slowloris).
    int64_t last_ns = 0;   // Non-reader: when transactions were last added.
    double credit = 0;     // Non-reader: transactions due but not yet queued.
  };

  void Run();
  void Step(Peer& peer, int64_t now_ns);
  void Open(Peer& peer, int64_t now_ns);
  void Closed(Peer& peer, int64_t now_ns);
  void StepNonReader(Peer& peer, int64_t now_ns);
  void StepSlowloris(Peer& peer, int64_t now_ns);
  // Sends up to `limit` queued bytes; false if the server has closed the connection.
  bool Flush(Peer& peer, size_t limit);
  // Reads and discards; false if the server has closed the connection.
  bool Drain(Peer& peer);
  void AppendSubmit(std::string* out, int transactions);

  const BadPeerConfig config_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  // The peer thread only, until joined.
  std::vector<Peer> peers_;
  workload::WorkloadGenerator generator_;
  v1::Submit submit_;
  BadPeerReport report_{};
};

}  // namespace vouch::load

#endif  // VOUCH_TOOLS_LOAD_BAD_PEERS_H_
