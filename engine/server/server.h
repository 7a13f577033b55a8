// Server: the vouch engine behind a TCP port, speaking the wire protocol of proto/vouch.proto.
//
//   clients --TCP--> I/O threads (epoll) --Submit--> Engine --outcomes--> OutcomeWindow
//                         ^                                                     |
//                         +------------- route by session, feed, resume --------+
//
// Each I/O thread answers the frames of its connections inline (Confirmations are produced on
// the I/O thread, by the engine's lock-free confirm path) and routes the outcomes the engine
// publishes to the sessions that submitted them. See docs/SERVER.md for the protocol rules and
// every way a connection is refused or closed.
//
// Thread safety: Create, Start and Shutdown are called by the owner, in that order, once each.
// Stats, port and engine may be called from any thread between Start and the end of Shutdown.
#ifndef VOUCH_ENGINE_SERVER_SERVER_H_
#define VOUCH_ENGINE_SERVER_SERVER_H_

#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/options.h"
#include "engine/server/event_log.h"
#include "engine/server/internal/io_thread.h"
#include "engine/server/options.h"
#include "engine/server/outcome_window.h"
#include "engine/server/remote_verifier.h"
#include "engine/server/server_stats.h"

namespace vouch::server {

// What a graceful shutdown did.
struct ShutdownReport {
  DrainReport engine;             // Whether every confirmed transaction reached its outcome.
  uint64_t outcomes = 0;          // Outcomes the engine emitted over its life.
  uint64_t outcomes_routed = 0;   // Of those, sent to a connected session.
  uint64_t outcomes_unrouted = 0; // Their session was not connected (kept until exit).
  uint64_t connections_closed = 0;
  uint64_t bytes_unflushed = 0;   // Output that could not be written before the flush deadline.
  int64_t elapsed_ns = 0;
};

class Server {
 public:
  // Validates both option sets, raises the soft RLIMIT_NOFILE to what max_connections needs
  // (process-wide; InvalidArgument naming max_connections if the hard limit is too low),
  // creates the engine (whose outcome sink becomes the server's outcome window), loads or
  // creates the epoch and binds the listening socket.
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options,
                                                        vouch::Options engine_options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts the engine and the I/O threads. If the journal fails later (engine Options::on_fatal,
  // which is still called), each I/O thread drops the turn's unkept confirmations, sends every
  // connection ERROR_CODE_JOURNAL_FAILED with the reason and closes it; the embedder then calls
  // Shutdown, which does not wait for a drain.
  absl::Status Start();
  // Stops accepting connections, stops the engine (nothing new is confirmed: Submit answers
  // BUSY / SHUTTING_DOWN; every confirmed transaction reaches its outcome, up to the engine's
  // drain timeout), routes and flushes every outcome until flush_timeout, then sends each
  // connection ERROR_CODE_SHUTTING_DOWN and closes it.
  ShutdownReport Shutdown();

  int port() const { return port_; }  // The bound port (useful with port 0).
  uint64_t epoch() const { return epoch_; }  // The sequence space's identity (epoch.h).
  ServerStats Stats() const;
  Engine& engine() { return *engine_; }
  EventLog* event_log() { return event_log_.get(); }  // Null without --event_log.

 private:
  explicit Server(ServerOptions options);
  static absl::Status FitDescriptorLimit(const ServerOptions& options);
  absl::Status Listen();
  void SeedWindow();

  const ServerOptions options_;
  // ServerOptions::remote_verifiers, in order; the engine holds them too (as AsyncVerifiers).
  std::vector<std::shared_ptr<RemoteVerifier>> remote_verifiers_;
  std::unique_ptr<OutcomeWindow> window_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<EventLog> event_log_;
  internal::Shared shared_;
  std::vector<std::unique_ptr<internal::IoThread>> io_threads_;
  std::vector<std::thread> threads_;
  std::vector<internal::FlushReport> flush_reports_;  // Written by each thread as it exits.
  int listen_fd_ = -1;
  int port_ = 0;
  uint64_t epoch_ = 0;
  bool started_ = false;
  bool shut_down_ = false;
};

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_SERVER_H_
