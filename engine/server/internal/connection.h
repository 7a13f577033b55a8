// One client connection, owned by one I/O thread (see io_thread.h). Not thread-safe: only the
// owning I/O thread touches it; a hand-off moves it, with everything buffered, to another thread.
#ifndef VOUCH_ENGINE_SERVER_INTERNAL_CONNECTION_H_
#define VOUCH_ENGINE_SERVER_INTERNAL_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/net/frame_codec.h"
#include "engine/server/remote_verifier.h"
#include "engine/types/results.h"

namespace vouch::server::internal {

enum class ConnectionState : uint8_t {
  kOpen,        // Reading and answering frames.
  kHandingOff,  // Said Hello for a session another I/O thread owns; moves at the end of the turn.
  kClosing,     // Sent an Error: flushing it, then waiting (up to linger) for the peer to close.
  kClosed,      // Closed; freed at the end of the turn.
};

struct Connection {
  Connection(int fd, uint64_t serial, size_t frame_bytes_max, int64_t now_ns)
      : fd(fd), serial(serial), decoder(frame_bytes_max), last_frame_ns(now_ns) {}

  size_t pending_bytes() const { return outbound.size() - outbound_sent; }

  const int fd;
  const uint64_t serial;  // Per server, for logs and anonymous session keys.
  ConnectionState state = ConnectionState::kOpen;
  size_t index = 0;  // Position in the owning thread's connection list.

  // Session (after Hello).
  bool said_hello = false;
  uint64_t session = 0;      // Routing key; the origin of every transaction it submits.
  std::string client_name;   // Empty for an unnamed session.
  bool resuming = false;      // Hello.resume, or (older clients) resume_from_seq > 0.
  Sequence resume_from_seq = 0;
  uint64_t resume_epoch = 0;  // Hello.epoch: the epoch resume_from_seq was seen under.
  Sequence resend_next = 0;  // Non-zero while missed outcomes are being resent from here.
  bool subscribed = false;
  bool include_verified = false;

  // A verifier connection (after VerifierHello; vouch.proto "Remote verifiers"): the remote
  // verifier it serves, which it takes requests from and answers. Null for a client. A verifier
  // connection has no session and is never handed off.
  RemoteVerifier* verifier = nullptr;

  // Input.
  net::FrameDecoder decoder;
  int64_t last_frame_ns;          // Last complete frame (idle timeout).
  int64_t partial_since_ns = 0;   // An incomplete frame has been buffered since; 0 if none.

  // Confirmations in submission order (vouch.proto): while a held transaction's answer is
  // pending (ConfirmStatus::kPending, answered when its outcome is routed), the Confirmations
  // submitted after it wait here behind it. [queued_head, size) are waiting; empty, and no
  // allocation, unless a held transaction is pending.
  std::vector<Confirmation> queued_answers;
  size_t queued_head = 0;
  size_t queued_count() const { return queued_answers.size() - queued_head; }

  // Output: frames appended during a turn, written once at its end.
  std::string outbound;
  size_t outbound_sent = 0;
  bool dirty = false;             // On the thread's flush list this turn.
  size_t turn_start_bytes = 0;    // outbound.size() before this turn's first frame.
  bool waiting_writable = false;  // EPOLLOUT registered.
  bool write_shut = false;        // shutdown(SHUT_WR) done (closing only).
  int64_t closing_since_ns = 0;
};

}  // namespace vouch::server::internal

#endif  // VOUCH_ENGINE_SERVER_INTERNAL_CONNECTION_H_
