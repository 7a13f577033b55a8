// vouch::client::Client: one connection to a vouch server, speaking the wire contract of
// proto/vouch.proto.
//
// Connect() opens the TCP connection (TCP_NODELAY), sends Hello and, unless
// ClientOptions::await_hello is false, makes sure the server accepted it: Connect sends a Ping
// behind it and waits for the Pong (a refusal arrives as an Error instead). The server's Welcome,
// the reply to an accepted Hello, comes before the Pong and is kept (welcome()); servers older
// than Welcome send none, which is why the Pong, not the Welcome, is awaited.
//
// Two ways to talk:
// - Blocking: Submit, Query, Ping, ReadBalances, AccountTransactions and the account calls
//   (CreateAccounts, LookupAccount, ChangeAccount) send one request and wait up to a timeout for
//   its answer.
// - Pipelined: SubmitAsync (a batch in one frame), QueryAsync, PingAsync and Subscribe return as
//   soon as the frame is written; their answers, and every Outcome, arrive as events.
// The server answers each kind of request in order, so every Confirmation, Status and Pong goes
// to the oldest request still waiting for that kind (one FIFO of pending requests per kind). A
// blocking call that times out leaves its place in the FIFO; its late answer is dropped there.
//
// Events. One reader thread per Client (named "vouch-client") reads the socket, decodes each
// frame into a reused message and dispatches it. A kind of event that has a handler in Handlers
// is passed to it on the reader thread, with the time its bytes were received; the message
// reference is valid during the call only. Every other event is copied into a bounded queue that
// NextEvent() reads. When that queue is full, the reader waits for room and stops reading the
// socket: TCP back-pressure then slows the server, which closes a connection whose output it
// cannot send (ERROR_CODE_SLOW_CONSUMER). So read the queue promptly, or install handlers.
//
// Errors. absl::Status carries every operating error. A server Error ends the connection (the
// server closes it after sending one): it is delivered as an event, and every call still
// waiting, and every later call, fails with ServerErrorStatus(error): kUnauthenticated for a
// wrong token, kNotFound for a VerifierHello naming no remote verifier (the remote verifier
// worker's, client/remote_verifier.h), kUnavailable (reconnect and retry) for shutdown, overload, timeouts and take-over,
// kFailedPrecondition for a resume window exceeded or a resume position from the future
// (ERROR_CODE_RESUME_AHEAD: resume from 0), kInvalidArgument for a client bug, kInternal
// for a server fault. The last event of every connection is a Disconnect, however it ended.
//
// Thread safety: every method may be called from any number of threads at once. Frames are
// written whole, one at a time, in the order the callers take the write mutex. Handlers run one
// at a time, on the reader thread; they must be quick (the socket is not read meanwhile) and
// must not call the blocking calls, Close() or the destructor, which wait for the reader thread
// (the blocking calls detect this and return kFailedPrecondition). A handler may call the async
// calls, but they wait while the socket's send buffer is full, and the socket is not read
// meanwhile: keep such sends small.
//
// Keep-alive: the server closes a connection that sends no complete frame for a while (60 s by
// default); a Client does not ping by itself.
//
// Times: *_ns values are CLOCK_MONOTONIC nanoseconds, the timeline of vouch::MonotonicClock
// (engine/types/clock.h) and of Client::NowNs().
#ifndef VOUCH_CLIENT_CLIENT_H_
#define VOUCH_CLIENT_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/internal/pending.h"
#include "engine/net/frame_codec.h"
#include "proto/vouch.pb.h"

namespace vouch::client {

struct ClientOptions {
  std::string host = "127.0.0.1";  // A name or a numeric IPv4/IPv6 address.
  int port = 7411;
  // Non-empty: a named session, which outlives the connection (see Hello in vouch.proto).
  std::string client_name;
  std::string auth_token;        // Required when the server has one.
  // Resume the named session (see Hello in vouch.proto): resend its Outcomes above
  // resume_from_seq that the server still retains; resume_from_seq 0 means every one retained.
  // Save the highest Outcome.seq seen together with welcome()->epoch(), and pass both back here;
  // when a later welcome() has another epoch, the saved position means nothing: reset it to 0.
  bool resume = false;
  uint64_t resume_from_seq = 0;  // Only with resume.
  uint64_t resume_epoch = 0;     // The epoch resume_from_seq was seen under; 0: unknown.
  // Longest frame sent or accepted; match the server's (Welcome.frame_bytes_max says it).
  size_t frame_bytes_max = 64 * 1024;
  absl::Duration connect_timeout = absl::Seconds(5);  // TCP connect plus the Hello check.
  bool await_hello = true;  // Connect waits until the server has accepted Hello.
  size_t event_queue_capacity = 64 * 1024;  // Events held for NextEvent(); see the top.

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Why the connection ended: kCancelled after this client's Close(), otherwise the error.
struct Disconnect {
  absl::Status status;
};

// One event from the queue that NextEvent() reads.
struct Event {
  int64_t received_ns = 0;
  std::variant<v1::Confirmation, v1::Outcome, v1::Status, v1::Pong, v1::Error, Disconnect> body;
};

// Optional per-kind handlers, called on the reader thread (see the top). A kind without a
// handler goes to the event queue. Confirmations, Statuses and Pongs that answer a blocking call
// go to that call, not here.
struct Handlers {
  std::function<void(const v1::Confirmation&, int64_t received_ns)> on_confirmation;
  std::function<void(const v1::Outcome&, int64_t received_ns)> on_outcome;
  std::function<void(const v1::Status&, int64_t received_ns)> on_status;
  std::function<void(const v1::Pong&, int64_t received_ns)> on_pong;
  std::function<void(const v1::Error&, int64_t received_ns)> on_error;
  std::function<void(const absl::Status& why, int64_t received_ns)> on_disconnect;
};

// The Status a server Error maps to (see the top); its message names the code, and
// ServerErrorCode() reads the code back.
absl::Status ServerErrorStatus(const v1::Error& error);
// The server's ErrorCode behind `status`; ERROR_CODE_UNSPECIFIED if it did not come from one.
v1::ErrorCode ServerErrorCode(const absl::Status& status);

class Client {
 public:
  // Connects, starts the reader thread, sends Hello and (options.await_hello) waits until the
  // server accepted it. Handlers may run before Connect returns (a resumed session's Outcomes).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options, Handlers handlers = {});

  // Close()s. REQUIRES: not called from a handler.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Blocking calls: send one request and wait up to `timeout` for its answer. kDeadlineExceeded
  // when it does not come in time (the connection stays usable); the connection's Status once
  // it has ended. A REJECTED or BUSY Confirmation is an answer, returned as a value. The
  // timeout covers writing the frame and waiting for the answer, not waiting for the write
  // mutex behind other callers.
  [[nodiscard]] absl::StatusOr<v1::Confirmation> Submit(const v1::Transaction& transaction,
                                                        absl::Duration timeout);
  [[nodiscard]] absl::StatusOr<v1::Status> Query(uint64_t transaction_id, absl::Duration timeout);
  [[nodiscard]] absl::StatusOr<v1::Pong> Ping(absl::Duration timeout);
  // One consistent snapshot of `accounts` (empty: every account, up to 1024) and of each
  // currency's total and clearing balance; see ReadBalances in vouch.proto. The server's
  // BUSY, TIMEOUT and UNAVAILABLE results come back as kUnavailable (retry); the Balances
  // returned always has result BALANCES_RESULT_OK.
  [[nodiscard]] absl::StatusOr<v1::Balances> ReadBalances(absl::Span<const uint64_t> accounts,
                                                          absl::Duration timeout);
  // Accounts (see "Accounts" in vouch.proto). Results are answers, returned as values: an
  // AccountsCreated entry per account in order (RETRY: send the same accounts again), an
  // AccountInfo or AccountChanged with its result (NOT_FOUND, CLOSED, NOT_EMPTY, RETRY ...).
  // CreateAccounts: kInvalidArgument, nothing sent, for 0 or more than kCreateAccountsMax
  // accounts. The server may take up to 5 s per request: pass a timeout above that.
  static constexpr size_t kCreateAccountsMax = 512;
  [[nodiscard]] absl::StatusOr<v1::AccountsCreated> CreateAccounts(
      absl::Span<const v1::Account> accounts, absl::Duration timeout);
  [[nodiscard]] absl::StatusOr<v1::AccountInfo> LookupAccount(uint64_t account,
                                                              absl::Duration timeout);
  // `limits` is read for ACCOUNT_ACTION_SET_LIMITS only.
  [[nodiscard]] absl::StatusOr<v1::AccountChanged> ChangeAccount(
      uint64_t account, v1::AccountAction action, const v1::AccountLimits& limits,
      absl::Duration timeout);
  // One page of an account's recent transactions, newest first, each with its state now; see
  // QueryAccount in vouch.proto (what is kept, limits, paging with before_seq). An invalid
  // query (account 0, until below since) ends the connection with kInvalidArgument.
  [[nodiscard]] absl::StatusOr<v1::AccountTransactions> AccountTransactions(
      const v1::QueryAccount& query, absl::Duration timeout);

  // Pipelined calls: write one frame and return; answers arrive as events. They wait only for
  // room in the socket's send buffer (TCP back-pressure), with no timeout. kInvalidArgument if
  // the batch is empty, holds more than the server's Welcome.submit_batch_max, or does not fit
  // in one frame (nothing is sent).
  [[nodiscard]] absl::Status SubmitAsync(absl::Span<const v1::Transaction> transactions);
  [[nodiscard]] absl::Status QueryAsync(uint64_t transaction_id);
  [[nodiscard]] absl::Status PingAsync(uint64_t nonce);
  // Adds the late-failure feed of every session (all outcomes with include_verified) to this
  // connection's Outcome events; the server never sends one Outcome twice on a connection.
  [[nodiscard]] absl::Status Subscribe(bool include_verified);

  // Takes the oldest queued event into *event. kDeadlineExceeded if none came within `timeout`;
  // kUnavailable once the connection has ended and its Disconnect has been taken.
  [[nodiscard]] absl::Status NextEvent(Event* event, absl::Duration timeout);

  // Ends the connection and joins the reader thread; calls still waiting fail with kCancelled.
  // Idempotent. REQUIRES: not called from a handler.
  void Close();

  // The server's Welcome, once it has arrived: before Connect returns with await_hello, unless
  // the server predates Welcome. Its epoch goes with every resume position (see ClientOptions).
  std::optional<v1::Welcome> welcome() const;

  // OK while connected; then why the connection ended.
  absl::Status status() const;
  // Transactions submitted on this connection (either way) whose Confirmation has not come;
  // 0 once the connection has ended.
  uint64_t transactions_unanswered() const;

  // Monotonic time, on the timeline of the received_ns the handlers get.
  static int64_t NowNs();

 private:
  Client(int fd, const ClientOptions& options, Handlers handlers);

  absl::Status SendHello();
  // Appends one envelope frame holding `body` to the write buffer; InvalidArgument if too big.
  absl::Status Frame(int field, const google::protobuf::MessageLite& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Queues `request` in `fifo` (unless fifo is null) and writes the framed buffer by
  // `deadline`. If nothing was written by then, the request is taken back out.
  template <typename Reply>
  absl::Status SendFrame(internal::PendingFifo<Reply>* fifo,
                         internal::PendingRequest<Reply> request, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // SendFrame for a request that has no answer (Hello, Subscribe).
  absl::Status SendUnanswered() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status FrameSubmit(absl::Span<const v1::Transaction> transactions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Writes write_buffer_ whole. *written says how far it got.
  absl::Status WriteAll(absl::Time deadline, size_t* written)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  template <typename Reply>
  absl::StatusOr<Reply> Await(internal::Waiter<Reply>& waiter, absl::Time deadline);
  // Frames `request` in envelope field `field` and sends it, due one answer to `waiter` in
  // `fifo`: the sending half of a blocking call; the caller then Awaits with no lock held.
  template <typename Reply>
  absl::Status SendRequest(int field, const google::protobuf::MessageLite& request,
                           internal::PendingFifo<Reply>* fifo,
                           std::shared_ptr<internal::Waiter<Reply>> waiter, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status CheckNotHandler() const;

  // Reader thread. Each returns why the connection must end, or OK to go on.
  void ReadLoop();
  absl::Status DispatchFrames(int64_t received_ns);
  absl::Status Dispatch(const char* data, size_t size, int64_t received_ns);
  // Hands `reply` to the oldest request waiting for one; a protocol error if none was.
  template <typename Reply>
  absl::Status Answer(internal::PendingFifo<Reply>& fifo, const Reply& reply, int64_t received_ns,
                      const std::function<void(const Reply&, int64_t)>& handler);
  template <typename Message>
  void Deliver(const Message& message, int64_t received_ns,
               const std::function<void(const Message&, int64_t)>& handler);
  void Enqueue(Event event) ABSL_LOCKS_EXCLUDED(mu_);
  bool HasRoomOrClosing() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool HasEventOrDone() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Fails every waiting call and delivers the Disconnect.
  void Finish(const absl::Status& why, int64_t received_ns) ABSL_LOCKS_EXCLUDED(mu_);
  // Records why the connection ends (the first reason wins) and wakes the reader.
  void Break(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const int fd_;  // Closed by the destructor only, so no thread can write to a reused fd.
  const ClientOptions options_;
  const Handlers handlers_;

  // Written only under write_mu_: the socket's output side and the reused request messages.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::string write_buffer_ ABSL_GUARDED_BY(write_mu_);
  v1::Submit submit_ ABSL_GUARDED_BY(write_mu_);
  v1::Query query_ ABSL_GUARDED_BY(write_mu_);
  v1::Ping ping_ ABSL_GUARDED_BY(write_mu_);
  v1::Subscribe subscribe_ ABSL_GUARDED_BY(write_mu_);
  v1::ReadBalances read_balances_ ABSL_GUARDED_BY(write_mu_);
  v1::CreateAccounts create_accounts_ ABSL_GUARDED_BY(write_mu_);
  v1::LookupAccount lookup_account_ ABSL_GUARDED_BY(write_mu_);
  v1::ChangeAccount change_account_ ABSL_GUARDED_BY(write_mu_);
  uint64_t ping_nonce_ ABSL_GUARDED_BY(write_mu_) = 0;

  // Shared between the callers and the reader thread.
  mutable absl::Mutex mu_;
  internal::PendingFifo<v1::Confirmation> confirmations_ ABSL_GUARDED_BY(mu_);
  internal::PendingFifo<v1::Status> statuses_ ABSL_GUARDED_BY(mu_);
  internal::PendingFifo<v1::Pong> pongs_ ABSL_GUARDED_BY(mu_);
  internal::PendingFifo<v1::Balances> balances_ ABSL_GUARDED_BY(mu_);  // Blocking calls only.
  // Blocking calls only, likewise.
  internal::PendingFifo<v1::AccountsCreated> accounts_created_ ABSL_GUARDED_BY(mu_);
  internal::PendingFifo<v1::AccountInfo> account_infos_ ABSL_GUARDED_BY(mu_);
  internal::PendingFifo<v1::AccountChanged> account_changes_ ABSL_GUARDED_BY(mu_);
  internal::PendingFifo<v1::AccountTransactions> account_pages_ ABSL_GUARDED_BY(mu_);  // Ditto.
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  uint64_t unanswered_ ABSL_GUARDED_BY(mu_) = 0;  // Transactions due a Confirmation.
  absl::Status status_ ABSL_GUARDED_BY(mu_);  // Why the connection ended (or is ending).
  std::optional<v1::Welcome> welcome_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;      // Close() was called: queue nothing more.
  bool finished_ ABSL_GUARDED_BY(mu_) = false;     // The reader has emptied the FIFOs for good.
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;  // ... and delivered the Disconnect.

  // Reader thread only: the decoder and the messages every frame is parsed into.
  net::FrameDecoder decoder_;
  v1::Confirmation confirmation_;
  v1::Outcome outcome_;
  v1::Status query_status_;
  v1::Pong pong_;
  v1::Balances balances_reply_;
  v1::AccountsCreated accounts_created_reply_;
  v1::AccountInfo account_info_reply_;
  v1::AccountChanged account_changed_reply_;
  v1::AccountTransactions account_page_reply_;
  v1::Error error_;
  v1::Welcome welcome_reply_;

  absl::Mutex join_mu_;  // Serializes Close()'s join; taken with no other lock held.
  std::thread reader_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace vouch::client

#endif  // VOUCH_CLIENT_CLIENT_H_
