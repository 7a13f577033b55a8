// IoThread: one event loop (epoll, level-triggered) serving a share of the connections.
//
// A turn: wait for events (or not, when work is pending); read what each readable connection
// sent and answer every complete frame at once on this thread, Submit included (the engine's
// confirm path is lock-free and, in async mode, never blocks); route the outcomes the engine has
// published since the last turn; then write each connection's output once. Reads and writes are
// thereby coalesced per turn, and the decode and encode messages are reused, so steady state
// allocates nothing per message.
//
// Sessions. Every session key maps to one I/O thread (OwnerThread). Outcomes carry their
// submitter's key as origin, and every I/O thread scans the whole outcome window: it routes the
// outcomes of the sessions it owns and feeds every failure to its Subscribe connections. A
// connection that says Hello for a named session owned by another thread is handed to that
// thread, buffered input and all, at the end of the turn.
//
// Balance reads (ReadBalances) are the one request that waits: the ledger stage takes the
// snapshot on its own thread, at the start of its next turn, and this thread waits for it, up to
// ServerOptions::balance_read_timeout_ns (10 ms by default; typically tens of microseconds).
// Other connections of this thread wait meanwhile; a read is an occasional audit, not a hot
// path, and the wait is bounded either way (TIMEOUT is answered after it).
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
#include "engine/server/options.h"
#include "engine/server/event_log.h"
#include "engine/server/outcome_window.h"
#include "engine/server/server_stats.h"
#include "proto/vouch.pb.h"

namespace vouch::server::internal {

class IoThread;

// The server's lifecycle, as the I/O threads see it.
enum class Phase : int {
  kServing = 0,
  kStopAccepting = 1,  // Release the listener, count down listener_released, keep serving.
  kFlushing = 2,       // The engine has drained: route the rest, flush, say goodbye, exit.
};

// State shared by the server and all I/O threads. Constant after Start except the atomics.
struct Shared {
  const ServerOptions* options = nullptr;
  Engine* engine = nullptr;
  OutcomeWindow* window = nullptr;
  std::vector<IoThread*> threads;
  int listen_fd = -1;
  int64_t mono_to_unix_offset_ns = 0;
  EventLog* event_log = nullptr;  // Optional.

  std::atomic<Phase> phase{Phase::kServing};
  absl::BlockingCounter* listener_released = nullptr;  // Set before kStopAccepting.
  int64_t flush_deadline_ns = 0;                       // Set before kFlushing.
  std::atomic<size_t> open_connections{0};
  std::atomic<uint64_t> next_serial{1};
};

// The I/O thread that owns a session key.
int OwnerThread(uint64_t session, int io_threads);
// Stable keys: a named session's key is a function of its name (so every thread and a restarted
// server agree); an unnamed one's is unique and encodes the accepting thread.
uint64_t NamedSessionKey(std::string_view client_name);
uint64_t UnnamedSessionKey(uint64_t serial, int thread);

// Counters written by the owning I/O thread only; relaxed everywhere: statistics, which publish
// no other data.
struct IoCounters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> frames_in{0};
  std::atomic<uint64_t> frames_out{0};
  std::atomic<uint64_t> transactions_in{0};
  std::atomic<uint64_t> queries{0};
  std::atomic<uint64_t> pings{0};
  std::atomic<uint64_t> balance_reads[v1::BalancesResult_ARRAYSIZE] = {};  // By result.
  std::atomic<uint64_t> outcomes_routed{0};
  std::atomic<uint64_t> outcomes_unrouted{0};
  std::atomic<uint64_t> outcomes_resent{0};
  std::atomic<uint64_t> feed_outcomes{0};
  std::atomic<uint64_t> handoffs{0};
  std::atomic<uint64_t> resumes{0};
  std::atomic<uint64_t> partial_frame_timeouts{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> errors[kErrorCodeCount] = {};

  static void Add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void AddTo(ServerStats* stats) const;
};

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
  const IoCounters& counters() const { return counters_; }

 private:
  void Turn(int timeout_ms);
  void OnEvent(uint64_t tag, uint32_t events);
  void AcceptAll();
  void AdoptInbox() ABSL_LOCKS_EXCLUDED(inbox_mu_);
  void Register(Connection& connection);

  void OnReadable(Connection& connection);
  void HandleFrames(Connection& connection);
  void HandleFrame(Connection& connection, const char* data, size_t size);
  void OnHello(Connection& connection);
  void BindSession(Connection& connection);
  void OnSubmit(Connection& connection);
  void OnQuery(Connection& connection);
  void OnSubscribe(Connection& connection);
  void OnPing(Connection& connection);
  void OnListHolds(Connection& connection);
  void OnReleaseHold(Connection& connection);
  void OnReadBalances(Connection& connection);
  void FillBalances(v1::Balances* balances);

  void RouteOutcomes();
  void Route(const Outcome& outcome);
  void ResendStep(Connection& connection);
  void AppendOutcome(Connection& connection, const v1::Outcome& outcome);

  void Append(Connection& connection, int field, const google::protobuf::MessageLite& body);
  void Fail(Connection& connection, v1::ErrorCode code, absl::string_view message);
  void Flush(Connection& connection);
  void FlushDirty();
  // The journal failed: drops this turn's output (its confirmations were never kept) and fails
  // every open connection with ERROR_CODE_JOURNAL_FAILED and the reason.
  void FailAllJournalFailed();
  bool JournalFailed() const;
  void SetInterest(Connection& connection);
  void Detach(Connection& connection);
  void Close(Connection& connection);
  void ReapAndHandOff();
  void Tick(int64_t now_ns);
  bool OnPhase(int64_t now_ns);

  const int index_;
  Shared* const shared_;
  const ServerOptions& options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool listening_ = false;

  std::vector<std::unique_ptr<Connection>> connections_;
  absl::flat_hash_map<uint64_t, Connection*> sessions_;  // Live connection per owned session.
  std::vector<Connection*> subscribers_;
  std::vector<Connection*> resending_;
  std::vector<Connection*> dirty_;
  std::vector<Connection*> handing_off_;
  std::vector<Connection*> closed_;
  Sequence cursor_ = 1;  // Outcomes below this have been routed.
  Sequence turn_ack_seq_ = 0;  // Highest sequence number confirmed this turn (journal wait).
  int64_t now_ns_ = 0;
  int64_t last_event_ns_ = 0;  // Busy polling continues busy_poll_ns past this.
  int64_t next_tick_ns_ = 0;
  bool flush_started_ = false;
  FlushReport flush_report_;

  // Reused for every frame: parsing into these keeps their allocated fields.
  struct Scratch {
    v1::Hello hello;
    v1::Submit submit;
    v1::Query query;
    v1::Subscribe subscribe;
    v1::Ping ping;
    v1::ListHolds list_holds;
    v1::ReleaseHold release_hold;
    v1::Holds holds;
    v1::HoldReleased hold_released;
    v1::ReadBalances read_balances;
    v1::Balances balances;
    BalanceSnapshot snapshot;  // Reserved for kBalanceReadAccountsMax accounts.
    v1::Confirmation confirmation;
    v1::Outcome outcome;
    v1::Status status;
    v1::Pong pong;
    v1::Error error;
    char discard[4096];
  } scratch_;

  absl::Mutex inbox_mu_;
  std::vector<std::unique_ptr<Connection>> inbox_ ABSL_GUARDED_BY(inbox_mu_);

  IoCounters counters_;
};

}  // namespace vouch::server::internal

#endif  // VOUCH_ENGINE_SERVER_INTERNAL_IO_THREAD_H_
