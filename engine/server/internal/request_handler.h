// RequestHandler: the server's request handling and outcome routing for one I/O thread, with no
// sockets. The I/O thread (io_thread.h) reads bytes into a Connection's decoder, calls
// HandleFrames, RouteOutcomes, ResendAll and AwaitTurnAck once per turn, and writes what the
// handler appended to each connection's `outbound` (the dirty() list). A test or a simulation
// drives the same object with Connections that have no file descriptor (fd -1), feeding bytes
// and reading `outbound` itself, and stepping an inline engine in between: every interleaving
// of requests, verification and routing is then reachable deterministically.
//
// Held transactions (hybrid/sync). Their final Confirmation is sent when their outcome is routed
// (the engine emits only outcomes the journal has kept, so the answer is as durable as the ack
// policy promises), in place of an Outcome frame: a held transaction gets one answer and no
// Outcome, and it is not fed to Subscribe or the event log (it is no late failure). Confirmations
// keep submission order per connection: those submitted after a pending held one wait behind it
// (Connection::queued_answers; pending output, bounded by outbound_bytes_max like other output).
// A held answer whose connection is gone is not sent anywhere (counted as held_answers_unrouted):
// the client gets it by submitting the id again, or by Query.
//
// Lapped. The outcome window's writer never waits (outcome_window.h). A thread that finds its
// next outcome overwritten reads it from the engine's history (outcomes_lapped); if the history
// no longer has it either (outcomes_lost), every session and subscriber of this thread may have
// missed an outcome, and each is cut off with ERROR_CODE_SLOW_CONSUMER.
//
// Sessions start with a Welcome (epoch, resume position, limits), appended by the owning thread
// in BindSession, before any resent or routed Outcome; a resume position is checked there
// against this epoch's history (RESUME_AHEAD) and the window (RESUME_WINDOW_EXCEEDED).
//
// Sessions. Every session key maps to one I/O thread (OwnerThread). Outcomes carry their
// submitter's key as origin, and every I/O thread scans the whole outcome window: it routes the
// outcomes of the sessions it owns and feeds every failure to its Subscribe connections. A
// connection that says Hello for a named session owned by another thread is handed to that
// thread, buffered input and all, at the end of the turn.
//
// Account requests (CreateAccounts, LookupAccount, ChangeAccount) wait too, like ReleaseHold:
// for the journal to keep a creation or a change, and (LookupAccount, CLOSE) for the ledger, up
// to kAccountRequestTimeout each. They are operator-grade calls; batch creations.
//
// Balance reads (ReadBalances) wait as well: the ledger stage takes the
// snapshot on its own thread, at the start of its next turn, and this thread waits for it, up to
// ServerOptions::balance_read_timeout_ns (10 ms by default; typically tens of microseconds).
// Other connections of this thread wait meanwhile; a read is an occasional audit, not a hot
// path, and the wait is bounded either way (TIMEOUT is answered after it).
//
// Thread safety: one thread (the owning I/O thread, or the test) calls everything; the
// counters are single-writer and may be read from any thread (Server::Stats).
#ifndef VOUCH_ENGINE_SERVER_INTERNAL_REQUEST_HANDLER_H_
#define VOUCH_ENGINE_SERVER_INTERNAL_REQUEST_HANDLER_H_

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/blocking_counter.h"
#include "engine/engine.h"
#include "engine/server/event_log.h"
#include "engine/server/internal/connection.h"
#include "engine/server/options.h"
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

// One of the server's remote verifiers, as the I/O threads see it.
struct RemoteVerifierEntry {
  RemoteVerifier* hub = nullptr;  // Owned by the server.
  VerifierId id = VerifierId::kNone;  // Its number in outcomes (VerifierWelcome.verifier).
  VerifierPolicy policy = VerifierPolicy::kRequired;
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
  std::vector<RemoteVerifierEntry> remote_verifiers;
  uint64_t epoch = 0;                // Welcome.epoch (epoch.h).
  Sequence recovered_confirmed = 0;  // Highest seq confirmed before this start (resume bound).

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
  std::atomic<uint64_t> account_queries{0};  // QueryAccount requests.
  std::atomic<uint64_t> pings{0};
  std::atomic<uint64_t> balance_reads[v1::BalancesResult_ARRAYSIZE] = {};  // By result.
  std::atomic<uint64_t> account_creations[v1::CreateAccountResult_ARRAYSIZE] = {};
  std::atomic<uint64_t> account_lookups[v1::AccountRequestResult_ARRAYSIZE] = {};
  std::atomic<uint64_t> account_changes[v1::AccountRequestResult_ARRAYSIZE] = {};
  std::atomic<uint64_t> outcomes_routed{0};
  std::atomic<uint64_t> outcomes_unrouted{0};
  std::atomic<uint64_t> outcomes_resent{0};
  std::atomic<uint64_t> held_answers{0};           // Held Confirmations sent.
  std::atomic<uint64_t> held_answers_unrouted{0};  // Held answers whose connection was gone.
  std::atomic<uint64_t> outcomes_lapped{0};        // Read from the history, not the window.
  std::atomic<uint64_t> outcomes_lost{0};          // In neither: this thread's sessions cut off.
  std::atomic<uint64_t> feed_outcomes{0};
  std::atomic<uint64_t> handoffs{0};
  std::atomic<uint64_t> resumes{0};
  std::atomic<uint64_t> resume_epoch_changes{0};
  std::atomic<uint64_t> partial_frame_timeouts{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> accept_descriptors_exhausted{0};  // accept4 failed with EMFILE/ENFILE.
  std::atomic<uint64_t> listener_pauses{0};  // The listener left epoll for want of descriptors.
  std::atomic<uint64_t> errors[kErrorCodeCount] = {};
  std::atomic<uint64_t> verify_batches{0};  // VerifyBatch frames sent.

  static void Add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void AddTo(ServerStats* stats) const;
};

class RequestHandler {
 public:
  // `index` is the owning I/O thread's (OwnerThread, the window reader index).
  RequestHandler(int index, Shared* shared);
  RequestHandler(const RequestHandler&) = delete;
  RequestHandler& operator=(const RequestHandler&) = delete;

  // The first outcome to route (the window's end when the thread starts).
  void StartAt(Sequence cursor) { cursor_ = cursor; }
  // The time stamped on what the handler does until the next call (engine clock).
  void SetNow(int64_t now_ns) { now_ns_ = now_ns; }

  // Answers every complete frame buffered in `connection`'s decoder.
  void HandleFrames(Connection& connection);
  // A connection that said Hello on another thread and was handed to this one.
  void BindSession(Connection& connection);
  // Routes the outcomes published since the last call (at most a budget per call).
  void RouteOutcomes();
  // One paced step of every resuming connection's resend.
  void ResendAll();
  // Sends each verifier connection the requests its window has room for (one VerifyBatch per
  // connection per call).
  void FeedVerifiers();
  // Waits until every answer given since the last call is kept as the ack policy promises
  // (one journal wait per turn: group commit). REQUIRES: before that output is written.
  void AwaitTurnAck();

  // Sends an Error, stops routing to the connection, and marks it closing.
  // REQUIRES: connection.state == kOpen.
  void Fail(Connection& connection, v1::ErrorCode code, absl::string_view message);
  // Stops routing to the connection: it is leaving this thread or closing.
  void Detach(Connection& connection);
  // The connection has output to write this turn.
  void MarkDirty(Connection& connection);
  // Forgets a connection that is being freed (or moved) from every list.
  void Forget(Connection* connection);

  // Connections with output this turn; the I/O thread writes and clears them. Appending during
  // that loop (a slow-consumer Error) adds to it; iterate by index.
  std::vector<Connection*>& dirty() { return dirty_; }
  // Connections that said Hello for a session another thread owns; moved at the end of the turn.
  std::vector<Connection*>& handing_off() { return handing_off_; }
  // Something to do without waiting for input: output, a resend, or outcomes to route.
  bool has_work() const;
  // Every published outcome routed and every resend finished.
  bool caught_up() const;
  Sequence cursor() const { return cursor_; }
  IoCounters& counters() { return counters_; }
  const IoCounters& counters() const { return counters_; }

 private:
  void HandleFrame(Connection& connection, const char* data, size_t size);
  void OnHello(Connection& connection);
  bool StartResume(Connection& connection);
  void Welcome(Connection& connection);
  void OnSubmit(Connection& connection);
  void OnQuery(Connection& connection);
  void OnSubscribe(Connection& connection);
  void OnPing(Connection& connection);
  void OnListHolds(Connection& connection);
  void OnReleaseHold(Connection& connection);
  void OnReadBalances(Connection& connection);
  void OnCreateAccounts(Connection& connection);
  void OnLookupAccount(Connection& connection);
  void OnChangeAccount(Connection& connection);
  void OnQueryAccount(Connection& connection);
  void OnVerifierHello(Connection& connection);
  void OnVerdicts(Connection& connection);
  void FillBalances(v1::Balances* balances);

  void QueueOrSendAnswer(Connection& connection, const Confirmation& confirmation);
  void SendQueuedAnswers(Connection& connection);
  void SendConfirmation(Connection& connection, const Confirmation& confirmation);
  void AnswerHeld(Connection& connection, const Outcome& outcome);
  void CutOffLapped(Sequence seq);
  void Route(const Outcome& outcome);
  void ResendStep(Connection& connection);
  void AppendOutcome(Connection& connection, const v1::Outcome& outcome);
  void Append(Connection& connection, int field, const google::protobuf::MessageLite& body);

  const int index_;
  Shared* const shared_;
  const ServerOptions& options_;
  int64_t now_ns_ = 0;

  absl::flat_hash_map<uint64_t, Connection*> sessions_;  // Live connection per owned session.
  std::vector<Connection*> subscribers_;
  std::vector<Connection*> resending_;
  std::vector<Connection*> dirty_;
  std::vector<Connection*> handing_off_;
  std::vector<Connection*> verifier_connections_;
  const size_t verify_batch_max_;    // VerifyBatchMax(frame_bytes_max).
  const uint32_t verifier_window_max_;  // What the output limit holds (see OnVerifierHello).
  bool verifier_backlog_ = false;    // A batch was full at the last FeedVerifiers: more may wait.
  Sequence cursor_ = 1;        // Outcomes below this have been routed.
  AckPosition turn_ack_;       // Covers every answer of this turn (journal wait).

  // Reused for every frame: parsing into these keeps their allocated fields.
  struct Scratch {
    v1::Hello hello;
    v1::Welcome welcome;
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
    v1::QueryAccount query_account;
    v1::AccountTransactions account_transactions;
    BalanceSnapshot snapshot;  // Reserved for kBalanceReadAccountsMax accounts.
    v1::CreateAccounts create_accounts;
    v1::AccountsCreated accounts_created;
    std::vector<NewAccount> new_accounts;
    std::vector<CreateResult> create_results;
    v1::LookupAccount lookup_account;
    v1::AccountInfo account_info;
    v1::ChangeAccount change_account;
    v1::AccountChanged account_changed;
    v1::Confirmation confirmation;
    v1::Outcome outcome;
    v1::Status status;
    v1::Pong pong;
    v1::Error error;
    v1::VerifierHello verifier_hello;
    v1::VerifierWelcome verifier_welcome;
    v1::Verdicts verdicts;
    v1::VerifyBatch verify_batch;
    std::vector<RemoteVerifier::Request> requests;  // Reserved for verify_batch_max_.
  } scratch_;

  IoCounters counters_;
};

}  // namespace vouch::server::internal

#endif  // VOUCH_ENGINE_SERVER_INTERNAL_REQUEST_HANDLER_H_
