// IoThread: one event loop (epoll, level-triggered) serving a share of the connections.
//
// A turn: wait for events (or not, when work is pending); read what each readable connection
// sent and answer every complete frame at once on this thread, Submit included (the engine's
// confirm path is lock-free and never blocks: a held transaction is submitted with
// HeldAnswer::kLater); route the outcomes the engine has published since the last turn; then
// write each connection's output once. Reads and writes are thereby coalesced per turn, and the
// decode and encode messages are reused, so steady state allocates nothing per message.
//
// Request handling and outcome routing, with everything they mean for held transactions,
// sessions, Subscribe and lapped outcomes, live in RequestHandler (request_handler.h); this
// class does the socket I/O around it.
//
// Out of descriptors. The listener is level-triggered, so an accept4 that fails with EMFILE and
// returns would be woken again at once. Each thread keeps a reserve descriptor: it closes it,
// accepts one queued connection, sends it TOO_MANY_CONNECTIONS and closes it, then reopens the
// reserve, until the queue is empty. Without even a reserve, the listener leaves the epoll set
// until a tick finds the reserve again (ListenerState).
//
// Thread safety: everything here is owned by the loop thread, except Adopt() and Wake(), which
// any thread may call. The counters are single-writer (this thread) and read by Server::Stats.
#ifndef VOUCH_ENGINE_SERVER_INTERNAL_IO_THREAD_H_
#define VOUCH_ENGINE_SERVER_INTERNAL_IO_THREAD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/server/internal/connection.h"
#include "engine/server/internal/request_handler.h"
#include "engine/server/options.h"
#include "engine/server/event_log.h"
#include "engine/server/outcome_window.h"
#include "engine/server/server_stats.h"
#include "proto/vouch.pb.h"

namespace vouch::server::internal {

// What one I/O thread did at shutdown.
struct FlushReport {
  uint64_t connections_closed = 0;
  uint64_t bytes_unflushed = 0;  // Output still unsent when the flush deadline passed.
};

class IoThread {
 public:
  IoThread(int index, Shared* shared);
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // Creates the epoll set and the wake eventfd and registers the listener.
  absl::Status Init();
  // The loop; returns after the kFlushing phase has finished.
  FlushReport Run();

  // Any thread: moves a connection (which has said Hello) to this thread.
  void Adopt(std::unique_ptr<Connection> connection) ABSL_LOCKS_EXCLUDED(inbox_mu_);
  // Any thread: ends the current or next epoll_wait.
  void Wake();

  int wake_fd() const { return wake_fd_; }
  const IoCounters& counters() const { return handler_.counters(); }

 private:
  void Turn(int timeout_ms);
  void OnEvent(uint64_t tag, uint32_t events);
  void AcceptAll();
  bool RefuseWithReserve();
  void PauseListener();
  void ResumeListener();
  bool ListenerInterest(bool on);
  void AdoptInbox() ABSL_LOCKS_EXCLUDED(inbox_mu_);
  void Register(Connection& connection);
  void OnReadable(Connection& connection);
  void Flush(Connection& connection);
  void FlushDirty();
  // The journal failed: drops this turn's output (its confirmations were never kept) and fails
  // every open connection with ERROR_CODE_JOURNAL_FAILED and the reason.
  void FailAllJournalFailed();
  bool JournalFailed() const;
  void SetInterest(Connection& connection);
  void Close(Connection& connection);
  void ReapAndHandOff();
  void Tick(int64_t now_ns);
  bool OnPhase(int64_t now_ns);

  const int index_;
  Shared* const shared_;
  const ServerOptions& options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  // The listener in this thread's epoll set: watched; paused for want of file descriptors (the
  // reserve is gone; retried each tick); released at shutdown.
  enum class ListenerState : uint8_t { kListening, kPaused, kReleased };
  ListenerState listener_ = ListenerState::kReleased;
  // Reserve file descriptor (/dev/null): when accept4 fails with EMFILE/ENFILE it is closed to
  // accept one queued connection, refuse it with descriptor_refusal_ and close it, then opened
  // again, so running out of descriptors costs one refusal per connection, not a spin.
  int reserve_fd_ = -1;
  std::string descriptor_refusal_;  // Encoded Error frame, TOO_MANY_CONNECTIONS.

  RequestHandler handler_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> closed_;
  int64_t now_ns_ = 0;
  int64_t last_event_ns_ = 0;  // Busy polling continues busy_poll_ns past this.
  int64_t next_tick_ns_ = 0;
  FlushReport flush_report_;
  char discard_[4096];  // Input of a closing connection, read and dropped.

  absl::Mutex inbox_mu_;
  std::vector<std::unique_ptr<Connection>> inbox_ ABSL_GUARDED_BY(inbox_mu_);
};

}  // namespace vouch::server::internal

#endif  // VOUCH_ENGINE_SERVER_INTERNAL_IO_THREAD_H_
