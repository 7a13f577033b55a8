// vouch::client::RemoteVerifierWorker: one connection of a remote verifier (proto/vouch.proto,
// "Remote verifiers"), kept up until Stop(), that judges every transaction the server sends it
// with a check of the caller's.
//
// What it does. The worker's thread connects to the server, sends VerifierHello{verifier,
// auth_token, window, worker_name} and waits for the VerifierWelcome, which welcome() then
// returns (the verifier's VERIFIER_EMBEDDER_n, the window and batch maximum in force, the
// deadline, the policy). It then reads VerifyBatch frames, calls the check once per request, in
// the order received, and answers each batch with Verdicts (one frame per batch; a batch whose
// verdicts do not fit one frame is split). When it has sent nothing for ping_interval it sends a
// Ping, well inside the server's idle timeout (60 s by default). When the connection ends for
// any other reason than Stop() or a permanent error, it reconnects after a back-off that doubles
// from reconnect_delay_min up to reconnect_delay_max and starts again at the minimum once a
// connection is welcomed. The server redelivers what a closed connection held unanswered (to
// another connection of the verifier, or to this one when it is back), so delivery is at least
// once: the check may see a seq twice and must give the same answer (the server keeps the first).
//
// Errors. absl::Status throughout. A permanent error ends the worker instead of a retry, and
// status() and AwaitWelcome() return it: kNotFound (ERROR_CODE_UNKNOWN_VERIFIER: the server runs
// no remote verifier of that name; the message lists the ones it runs), kUnauthenticated
// (ERROR_CODE_NOT_AUTHENTICATED: a wrong token) and kInvalidArgument (the server refused what
// this worker sent, e.g. a server that predates remote verifiers; retrying would repeat it).
// Everything else (no server yet, shutdown, a lost connection, timeouts) is retried;
// last_error() says why the latest connection ended.
//
// Thread safety. Start() starts one thread, named "vouch-verifier", that owns the socket, the
// frame decoder and every reused message; the check runs on it, one call at a time, so a check
// needs no locking of its own but must not call Stop() or the destructor (which join that
// thread). Every public method may be called from any thread. Stop() ends the connection at
// once: the check in progress (if any) returns, the verdicts of the batch at hand are not sent,
// and the server redelivers every request the connection held unanswered; a TCP connect in
// progress is not interrupted (it ends within connect_timeout). The counters are single-writer
// (the worker thread) statistics, read without ordering.
//
// Allocation: the steady state reuses the batch, verdict and write-buffer messages; a reconnect
// allocates a new frame decoder.
#ifndef VOUCH_CLIENT_REMOTE_VERIFIER_H_
#define VOUCH_CLIENT_REMOTE_VERIFIER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/net/frame_codec.h"
#include "proto/vouch.pb.h"

namespace vouch::client {

struct RemoteVerifierOptions {
  std::string host = "127.0.0.1";  // A name or a numeric IPv4/IPv6 address.
  int port = 7411;
  std::string verifier;            // One of the server's --remote_verifiers names; required.
  std::string auth_token;          // Required when the server has one.
  // Requests the connection may hold unanswered, 1..65536 (VerifierHello.window). The check is
  // synchronous, so a window above one batch only helps while a batch is being judged.
  uint32_t window = 256;
  std::string worker_name;         // For the server's logs; at most 256 bytes.
  // Longest frame sent or accepted; match the server's (VerifierWelcome.frame_bytes_max).
  size_t frame_bytes_max = 64 * 1024;
  absl::Duration connect_timeout = absl::Seconds(5);  // TCP connect plus the VerifierWelcome.
  absl::Duration send_timeout = absl::Seconds(10);    // One frame; then the connection is lost.
  absl::Duration ping_interval = absl::Seconds(5);    // Idle time before a Ping.
  absl::Duration reconnect_delay_min = absl::Milliseconds(50);
  absl::Duration reconnect_delay_max = absl::Seconds(2);

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// The verdict on one request: 0 passes, 1..65535 fails with that code (the verifier's own
// namespace; Outcome.verifier_reason). Called on the worker's thread; see the top.
using VerifyFunction = std::function<uint16_t(const v1::VerifyRequest& request)>;

// A snapshot of the worker's counters.
struct RemoteVerifierCounters {
  uint64_t requests = 0;        // VerifyRequests received.
  uint64_t redelivered = 0;     // ... of which had redelivered set.
  uint64_t verdicts = 0;        // Verdicts sent (written whole to the socket).
  uint64_t verdict_frames = 0;  // Verdicts frames sent.
  uint64_t pings = 0;           // Pings sent on idle connections.
  uint64_t connections = 0;     // Connections welcomed by the server.
  uint64_t reconnects = 0;      // Welcomed connections after the first.
  uint64_t connect_failures = 0;  // Attempts that ended before a VerifierWelcome.
};

class RemoteVerifierWorker {
 public:
  // Validates the options and starts the worker's thread, which connects (and keeps
  // reconnecting) in the background: Start does not wait for the server. Use AwaitWelcome to
  // wait for the first connection or a permanent error.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> Start(
      const RemoteVerifierOptions& options, VerifyFunction check);

  // Stop()s. REQUIRES: not called from the check.
  ~RemoteVerifierWorker();
  RemoteVerifierWorker(const RemoteVerifierWorker&) = delete;
  RemoteVerifierWorker& operator=(const RemoteVerifierWorker&) = delete;

  // Waits until a connection is welcomed and returns its VerifierWelcome; the permanent error
  // if the worker ended on one; kCancelled after Stop(); kDeadlineExceeded (naming the latest
  // connection error) if neither happened within `timeout`.
  [[nodiscard]] absl::StatusOr<v1::VerifierWelcome> AwaitWelcome(absl::Duration timeout);

  // Ends the connection (see the top) and joins the worker's thread. Idempotent.
  // REQUIRES: not called from the check.
  void Stop();

  // The latest connection's VerifierWelcome; empty before the first.
  std::optional<v1::VerifierWelcome> welcome() const;
  // Whether a welcomed connection is up right now.
  bool connected() const;
  // OK while the worker runs (connected or retrying); then why it ended: the permanent error,
  // or kCancelled after Stop().
  absl::Status status() const;
  // Why the latest connection (or attempt) ended; OK before any ended.
  absl::Status last_error() const;
  RemoteVerifierCounters counters() const;

 private:
  RemoteVerifierWorker(const RemoteVerifierOptions& options, VerifyFunction check, int wake_fd);

  // Worker thread.
  void Run();
  // One connection from dial to end; returns why it ended. *welcomed: it got a VerifierWelcome.
  absl::Status RunConnection(bool* welcomed);
  // Reads and handles what the socket has; returns why the connection must end, or OK.
  absl::Status ReadFrames(int fd, bool* welcomed);
  absl::Status HandleFrame(int fd, const char* data, size_t size, bool* welcomed);
  absl::Status HandleBatch(int fd);
  absl::Status SendEnvelope(int fd, int field, const google::protobuf::MessageLite& body);
  absl::Status SendPing(int fd);
  // Sleeps up to `delay`; false if Stop() woke it.
  bool Sleep(absl::Duration delay);
  bool stop_requested() const;
  void SetSocket(int fd) ABSL_LOCKS_EXCLUDED(mu_);
  void Welcomed(const v1::VerifierWelcome& welcome) ABSL_LOCKS_EXCLUDED(mu_);
  void Lost(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);
  bool WelcomedOrEnded() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  static void Bump(std::atomic<uint64_t>& counter, uint64_t by = 1);

  // Constant after construction.
  const RemoteVerifierOptions options_;
  const VerifyFunction check_;
  const int wake_fd_;             // eventfd: Stop() writes it to wake the worker's poll.

  // release (Stop) / acquire (worker): the worker that sees it stops before sending more.
  std::atomic<bool> stop_requested_{false};

  // Shared between the worker thread and the callers.
  mutable absl::Mutex mu_;
  // The socket of the connection at hand, -1 when none: Stop() shuts it down to end a blocked
  // send or poll. Only the worker opens and closes it, under mu_, so a shutdown never hits a
  // reused descriptor.
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  std::optional<v1::VerifierWelcome> welcome_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;   // The worker thread has finished.
  absl::Status status_ ABSL_GUARDED_BY(mu_);  // Why it finished (OK while running).
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);

  // Counters: written by the worker thread only (relaxed: statistics, read without ordering).
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> redelivered_{0};
  std::atomic<uint64_t> verdicts_{0};
  std::atomic<uint64_t> verdict_frames_{0};
  std::atomic<uint64_t> pings_{0};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> connect_failures_{0};

  // Worker thread only: the decoder of the connection at hand and the reused messages.
  std::unique_ptr<net::FrameDecoder> decoder_;
  v1::VerifyBatch batch_;
  v1::Verdicts verdicts_message_;
  v1::VerifierWelcome welcome_reply_;
  v1::Error error_;
  v1::Ping ping_;
  std::string write_buffer_;
  int64_t last_send_ns_ = 0;  // Monotonic time of the latest frame sent.
  // So that a Verdicts frame fits both frame maximums, ours and the VerifierWelcome's.
  size_t verdicts_per_frame_max_ = 1;

  absl::Mutex join_mu_;  // Serializes Stop()'s join; taken with no other lock held.
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace vouch::client

#endif  // VOUCH_CLIENT_REMOTE_VERIFIER_H_
