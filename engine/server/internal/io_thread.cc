#include "engine/server/internal/io_thread.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/types/mix.h"
#include "engine/wire/convert.h"

namespace vouch::server::internal {
namespace {

static_assert(v1::ErrorCode_ARRAYSIZE == kErrorCodeCount);
static_assert(v1::BalancesResult_ARRAYSIZE ==
              sizeof(ServerStats::balance_reads) / sizeof(ServerStats::balance_reads[0]));

constexpr uint64_t kListenerTag = 0;
constexpr uint64_t kWakeTag = 1;
constexpr int kEventsMax = 256;
constexpr int kTickMs = 50;
constexpr int kRouteBudget = 4096;   // Outcomes routed per turn, so a burst cannot starve reads.
constexpr int kResendBudget = 4096;  // Window entries scanned per resuming connection per turn.
constexpr uint64_t kUnnamedBit = uint64_t{1} << 63;

v1::StateKind ToWire(StateKind kind) {
  switch (kind) {
    case StateKind::kReceived: return v1::STATE_KIND_RECEIVED;
    case StateKind::kRejected: return v1::STATE_KIND_REJECTED;
    case StateKind::kConfirmed: return v1::STATE_KIND_CONFIRMED;
    case StateKind::kHeld: return v1::STATE_KIND_HELD;
    case StateKind::kFraudVerdict: return v1::STATE_KIND_FRAUD_VERDICT;
    case StateKind::kLedgerVerdict: return v1::STATE_KIND_LEDGER_VERDICT;
    case StateKind::kVerified: return v1::STATE_KIND_VERIFIED;
    case StateKind::kLateFailed: return v1::STATE_KIND_LATE_FAILED;
    case StateKind::kLateTimeout: return v1::STATE_KIND_LATE_TIMEOUT;
    case StateKind::kCompensated: return v1::STATE_KIND_COMPENSATED;
    case StateKind::kAccountHeld: return v1::STATE_KIND_ACCOUNT_HELD;
    case StateKind::kLateVerdict: return v1::STATE_KIND_LATE_VERDICT;
  }
  return v1::STATE_KIND_UNSPECIFIED;
}

// Compares without an early exit, so the time taken does not reveal how much of a guess matched.
bool TokensEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

v1::ErrorCode ToErrorCode(net::FrameError error) {
  return error == net::FrameError::kTooLarge ? v1::ERROR_CODE_FRAME_TOO_LARGE
                                             : v1::ERROR_CODE_MALFORMED_FRAME;
}

const char* FrameErrorMessage(net::FrameError error) {
  switch (error) {
    case net::FrameError::kTooLarge: return "frame length is above the server's maximum";
    case net::FrameError::kMalformedVarint: return "frame length is not a valid varint32";
    case net::FrameError::kUnparsable: return "frame is not a valid ClientMessage";
    case net::FrameError::kNone: break;
  }
  return "frame error";
}

}  // namespace

int OwnerThread(uint64_t session, int io_threads) {
  if (session & kUnnamedBit) return static_cast<int>(session & 0xff);
  return static_cast<int>(session % static_cast<uint64_t>(io_threads));
}

uint64_t NamedSessionKey(std::string_view client_name) {
  uint64_t hash = 0xcbf29ce484222325;  // FNV-1a, finished with Mix64 to spread the bits.
  for (const char c : client_name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3;
  const uint64_t key = Mix64(hash) & ~kUnnamedBit;
  return key == 0 ? 1 : key;  // 0 is "no origin".
}

uint64_t UnnamedSessionKey(uint64_t serial, int thread) {
  assert(thread >= 0 && thread < 256);
  return kUnnamedBit | (serial << 8) | static_cast<uint64_t>(thread);
}

void IoCounters::AddTo(ServerStats* stats) const {
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  stats->connections_accepted += get(connections_accepted);
  stats->frames_in += get(frames_in);
  stats->frames_out += get(frames_out);
  stats->transactions_in += get(transactions_in);
  stats->queries += get(queries);
  stats->pings += get(pings);
  for (int i = 0; i < v1::BalancesResult_ARRAYSIZE; ++i) {
    stats->balance_reads[i] += get(balance_reads[i]);
  }
  stats->outcomes_routed += get(outcomes_routed);
  stats->outcomes_unrouted += get(outcomes_unrouted);
  stats->outcomes_resent += get(outcomes_resent);
  stats->feed_outcomes += get(feed_outcomes);
  stats->handoffs += get(handoffs);
  stats->resumes += get(resumes);
  stats->partial_frame_timeouts += get(partial_frame_timeouts);
  stats->idle_timeouts += get(idle_timeouts);
  for (int i = 0; i < kErrorCodeCount; ++i) stats->errors[i] += get(errors[i]);
}

IoThread::IoThread(int index, Shared* shared)
    : index_(index), shared_(shared), options_(*shared->options) {
  connections_.reserve(options_.max_connections);
  dirty_.reserve(options_.max_connections);
  sessions_.reserve(options_.max_connections);
  scratch_.snapshot.accounts.reserve(kBalanceReadAccountsMax);
  scratch_.snapshot.currencies.reserve(kCurrencySlotCount);
}

IoThread::~IoThread() {
  for (auto& connection : connections_) close(connection->fd);
  absl::MutexLock lock(&inbox_mu_);
  for (auto& connection : inbox_) close(connection->fd);  // Handed off while shutting down.
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status IoThread::Init() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  epoll_event wake = {};
  wake.events = EPOLLIN;
  wake.data.u64 = kWakeTag;
  epoll_event listener = {};
  // EPOLLEXCLUSIVE: with several I/O threads, a new connection wakes one of them, not all.
  listener.events = EPOLLIN | EPOLLEXCLUSIVE;
  listener.data.u64 = kListenerTag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake) != 0 ||
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, shared_->listen_fd, &listener) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
  }
  listening_ = true;
  cursor_ = shared_->window->end();  // After recovery the first outcome is not seq 1.
  return absl::OkStatus();
}

void IoThread::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));  // Fails only if already signalled.
}

void IoThread::Adopt(std::unique_ptr<Connection> connection) {
  {
    absl::MutexLock lock(&inbox_mu_);
    inbox_.push_back(std::move(connection));
  }
  Wake();
}

FlushReport IoThread::Run() {
  for (;;) {
    now_ns_ = shared_->engine->clock().NowNs();
    if (!OnPhase(now_ns_)) break;
    const bool busy = !dirty_.empty() || !resending_.empty() ||
                      shared_->window->end() > cursor_ ||
                      now_ns_ - last_event_ns_ < options_.busy_poll_ns;
    int timeout_ms = 0;
    if (!busy) {
      timeout_ms = shared_->window->PrepareToSleep(index_, cursor_) ? kTickMs : 0;
    }
    Turn(timeout_ms);
  }
  return flush_report_;
}

void IoThread::Turn(int timeout_ms) {
  epoll_event events[kEventsMax];
  const int ready = epoll_wait(epoll_fd_, events, kEventsMax, timeout_ms);
  shared_->window->Awake(index_);
  now_ns_ = shared_->engine->clock().NowNs();
  if (ready > 0) last_event_ns_ = now_ns_;
  for (int i = 0; i < ready; ++i) OnEvent(events[i].data.u64, events[i].events);
  RouteOutcomes();
  for (size_t i = 0; i < resending_.size();) {
    Connection* connection = resending_[i];
    ResendStep(*connection);
    if (connection->resend_next == 0) {
      resending_[i] = resending_.back();
      resending_.pop_back();
    } else {
      ++i;
    }
  }
  if (turn_ack_seq_ != 0) {
    // False only if the journal failed, which the check below handles.
    (void)shared_->engine->AwaitAck(turn_ack_seq_);
    turn_ack_seq_ = 0;
  }
  if (JournalFailed()) FailAllJournalFailed();
  FlushDirty();
  if (now_ns_ >= next_tick_ns_) {
    Tick(now_ns_);
    next_tick_ns_ = now_ns_ + int64_t{kTickMs} * 1'000'000;
  }
  ReapAndHandOff();
}

void IoThread::OnEvent(uint64_t tag, uint32_t events) {
  if (tag == kListenerTag) {
    if (listening_) AcceptAll();
    return;
  }
  if (tag == kWakeTag) {
    uint64_t count;
    (void)!read(wake_fd_, &count, sizeof(count));
    AdoptInbox();
    return;
  }
  Connection& connection = *reinterpret_cast<Connection*>(tag);
  if (connection.state == ConnectionState::kClosed ||
      connection.state == ConnectionState::kHandingOff) {
    return;  // Changed earlier in this turn.
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable(connection);
  // Written at the end of the turn, after the journal wait: output may hold confirmations.
  if ((events & EPOLLOUT) && connection.state != ConnectionState::kClosed && !connection.dirty) {
    connection.dirty = true;
    dirty_.push_back(&connection);
  }
}

void IoThread::AcceptAll() {
  for (;;) {
    const int fd = accept4(shared_->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: another thread took it, or none left. Errors: retry later.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (options_.send_buffer_bytes > 0) {
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &options_.send_buffer_bytes, sizeof(int));
    }
    // relaxed: serials only need to be unique; they publish no other data.
    const uint64_t serial = shared_->next_serial.fetch_add(1, std::memory_order_relaxed);
    auto owned = std::make_unique<Connection>(fd, serial, options_.frame_bytes_max, now_ns_);
    Connection& connection = *owned;
    connection.index = connections_.size();
    connections_.push_back(std::move(owned));
    Register(connection);
    IoCounters::Add(counters_.connections_accepted);
    // relaxed: a count; the limit is approximate by at most the threads accepting at once.
    if (shared_->open_connections.fetch_add(1, std::memory_order_relaxed) >=
        options_.max_connections) {
      Fail(connection, v1::ERROR_CODE_TOO_MANY_CONNECTIONS,
           absl::StrCat("the server's limit of ", options_.max_connections,
                        " connections is reached"));
    }
  }
}

void IoThread::Register(Connection& connection) {
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = reinterpret_cast<uint64_t>(&connection);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, connection.fd, &event) != 0) Close(connection);
}

void IoThread::AdoptInbox() {
  std::vector<std::unique_ptr<Connection>> arrived;
  {
    absl::MutexLock lock(&inbox_mu_);
    arrived.swap(inbox_);
  }
  for (auto& owned : arrived) {
    Connection& connection = *owned;
    connection.index = connections_.size();
    connections_.push_back(std::move(owned));
    connection.state = ConnectionState::kOpen;
    Register(connection);
    if (connection.state != ConnectionState::kOpen) continue;
    BindSession(connection);
    HandleFrames(connection);  // Frames that arrived behind the Hello.
  }
}

void IoThread::OnReadable(Connection& connection) {
  if (connection.state == ConnectionState::kClosing) {
    // Discard input until the peer closes; see Fail.
    const ssize_t n = read(connection.fd, scratch_.discard, sizeof(scratch_.discard));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) Close(connection);
    return;
  }
  net::FrameDecoder& decoder = connection.decoder;
  assert(decoder.WritableBytes() > 0 && "HandleFrames leaves room for the next frame");
  const ssize_t n = read(connection.fd, decoder.WritePointer(), decoder.WritableBytes());
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    Close(connection);  // The peer closed (or reset); its session's outcomes stay in the window.
    return;
  }
  if (n < 0) return;
  decoder.Commit(static_cast<size_t>(n));
  HandleFrames(connection);
}

void IoThread::HandleFrames(Connection& connection) {
  bool completed_any = false;
  while (connection.state == ConnectionState::kOpen) {
    const char* data = nullptr;
    size_t size = 0;
    const net::FrameDecoder::Result result = connection.decoder.NextFrame(&data, &size);
    if (result == net::FrameDecoder::Result::kNeedMore) break;
    if (result == net::FrameDecoder::Result::kError) {
      const net::FrameError error = connection.decoder.error();
      Fail(connection, ToErrorCode(error), FrameErrorMessage(error));
      return;
    }
    completed_any = true;
    IoCounters::Add(counters_.frames_in);
    HandleFrame(connection, data, size);
  }
  if (completed_any) connection.last_frame_ns = now_ns_;
  // A slow sender is timed from the first byte of a frame that is still incomplete; a client
  // streaming frames back to back always has a partial one, so completing any restarts the clock.
  if (connection.decoder.buffered_bytes() == 0) {
    connection.partial_since_ns = 0;
  } else if (completed_any || connection.partial_since_ns == 0) {
    connection.partial_since_ns = now_ns_;
  }
}

void IoThread::HandleFrame(Connection& connection, const char* data, size_t size) {
  net::EnvelopeBody body;
  if (!net::ParseEnvelope(data, size, v1::ClientMessage::kReadBalances, &body)) {
    Fail(connection, v1::ERROR_CODE_MALFORMED_FRAME, "frame is not a valid ClientMessage");
    return;
  }
  if (body.field == 0) {
    Fail(connection, v1::ERROR_CODE_UNKNOWN_MESSAGE, "ClientMessage has no known body set");
    return;
  }
  if (body.field != v1::ClientMessage::kHello && !connection.said_hello) {
    Fail(connection, v1::ERROR_CODE_HELLO_REQUIRED, "the first message must be Hello");
    return;
  }
  google::protobuf::MessageLite* message = nullptr;
  switch (body.field) {
    case v1::ClientMessage::kHello: message = &scratch_.hello; break;
    case v1::ClientMessage::kSubmit: message = &scratch_.submit; break;
    case v1::ClientMessage::kQuery: message = &scratch_.query; break;
    case v1::ClientMessage::kSubscribe: message = &scratch_.subscribe; break;
    case v1::ClientMessage::kPing: message = &scratch_.ping; break;
    case v1::ClientMessage::kListHolds: message = &scratch_.list_holds; break;
    case v1::ClientMessage::kReleaseHold: message = &scratch_.release_hold; break;
    case v1::ClientMessage::kReadBalances: message = &scratch_.read_balances; break;
  }
  assert(message != nullptr);
  if (!message->ParseFromArray(body.data, static_cast<int>(body.size))) {
    Fail(connection, v1::ERROR_CODE_MALFORMED_FRAME, "message body does not parse");
    return;
  }
  switch (body.field) {
    case v1::ClientMessage::kHello: OnHello(connection); break;
    case v1::ClientMessage::kSubmit: OnSubmit(connection); break;
    case v1::ClientMessage::kQuery: OnQuery(connection); break;
    case v1::ClientMessage::kSubscribe: OnSubscribe(connection); break;
    case v1::ClientMessage::kPing: OnPing(connection); break;
    case v1::ClientMessage::kListHolds: OnListHolds(connection); break;
    case v1::ClientMessage::kReleaseHold: OnReleaseHold(connection); break;
    case v1::ClientMessage::kReadBalances: OnReadBalances(connection); break;
  }
}

void IoThread::OnHello(Connection& connection) {
  const v1::Hello& hello = scratch_.hello;
  if (connection.said_hello) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE, "Hello was already received");
    return;
  }
  if (!options_.auth_token.empty() && !TokensEqual(hello.auth_token(), options_.auth_token)) {
    Fail(connection, v1::ERROR_CODE_NOT_AUTHENTICATED, "Hello.auth_token is missing or wrong");
    return;
  }
  if (hello.client_name().size() > options_.client_name_bytes_max) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("Hello.client_name is longer than ", options_.client_name_bytes_max,
                      " bytes"));
    return;
  }
  if (hello.client_name().empty() && hello.resume_from_seq() != 0) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         "Hello.resume_from_seq needs a client_name: only named sessions can be resumed");
    return;
  }
  connection.said_hello = true;
  connection.client_name = hello.client_name();
  connection.resume_from_seq = hello.resume_from_seq();
  connection.session = connection.client_name.empty()
                           ? UnnamedSessionKey(connection.serial, index_)
                           : NamedSessionKey(connection.client_name);
  if (OwnerThread(connection.session, static_cast<int>(shared_->threads.size())) != index_) {
    connection.state = ConnectionState::kHandingOff;  // Stops HandleFrames; moved in Reap.
    handing_off_.push_back(&connection);
    return;
  }
  BindSession(connection);
}

void IoThread::BindSession(Connection& connection) {
  auto [it, inserted] = sessions_.try_emplace(connection.session, &connection);
  if (!inserted) {
    Connection& previous = *it->second;
    it->second = &connection;
    Fail(previous, v1::ERROR_CODE_SESSION_TAKEN_OVER,
         absl::StrCat("a newer connection said Hello as \"", connection.client_name, "\""));
  }
  if (connection.resume_from_seq == 0) return;
  IoCounters::Add(counters_.resumes);
  const Sequence oldest = shared_->window->oldest_readable();
  if (connection.resume_from_seq + 1 < oldest) {
    Fail(connection, v1::ERROR_CODE_RESUME_WINDOW_EXCEEDED,
         absl::StrCat("resume_from_seq ", connection.resume_from_seq,
                      " is older than the oldest outcome the server keeps (seq ", oldest, ")"));
    return;
  }
  // Outcomes below cursor_ were routed (to no one, or to the previous connection); resend the
  // session's ones above resume_from_seq. Newer outcomes wait in the window until the resend has
  // caught up with the cursor, so the connection sees its outcomes in sequence order.
  connection.resend_next = connection.resume_from_seq + 1;
  resending_.push_back(&connection);
}

void IoThread::ResendStep(Connection& connection) {
  if (connection.state != ConnectionState::kOpen) {
    connection.resend_next = 0;
    return;
  }
  for (int scanned = 0; scanned < kResendBudget && connection.resend_next < cursor_; ++scanned) {
    if (connection.pending_bytes() > options_.outbound_bytes_max / 2) return;  // Next turn.
    const Sequence seq = connection.resend_next;
    const std::optional<Outcome> outcome = shared_->window->Read(seq);
    if (!outcome) {
      Fail(connection, v1::ERROR_CODE_RESUME_WINDOW_EXCEEDED,
           absl::StrCat("outcome seq ", seq, " left the server's window during the resend"));
      connection.resend_next = 0;
      return;
    }
    if (outcome->origin == connection.session) {
      wire::ToProto(*outcome, shared_->mono_to_unix_offset_ns, &scratch_.outcome);
      AppendOutcome(connection, scratch_.outcome);
      IoCounters::Add(counters_.outcomes_resent);
    }
    ++connection.resend_next;
  }
  if (connection.resend_next >= cursor_) connection.resend_next = 0;  // Caught up: live now.
}

void IoThread::OnSubmit(Connection& connection) {
  const v1::Submit& submit = scratch_.submit;
  const int count = submit.transactions_size();
  if (count == 0 || static_cast<size_t>(count) > options_.submit_batch_max) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("Submit must carry 1..", options_.submit_batch_max,
                      " transactions; it carried ", count));
    return;
  }
  IoCounters::Add(counters_.transactions_in, static_cast<uint64_t>(count));
  for (const v1::Transaction& in : submit.transactions()) {
    Transaction txn;
    // A currency that is not three letters comes out as 0, which the engine rejects as
    // UNKNOWN_CURRENCY in its own order of checks, so the answer does not depend on the path.
    (void)wire::FromProto(in, &txn);
    // The journal wait (ack policy written/durable) is taken once per turn, before the
    // confirmations are written out: every Submit of the turn shares one sync (group commit).
    const Confirmation confirmation =
        shared_->engine->Submit(txn, connection.session, AckWait::kCaller);
    if (confirmation.seq > turn_ack_seq_) turn_ack_seq_ = confirmation.seq;
    wire::ToProto(confirmation, shared_->mono_to_unix_offset_ns, &scratch_.confirmation);
    Append(connection, v1::ServerMessage::kConfirmation, scratch_.confirmation);
  }
}

void IoThread::OnQuery(Connection& connection) {
  IoCounters::Add(counters_.queries);
  const uint64_t id = scratch_.query.transaction_id();
  v1::Status& status = scratch_.status;
  status.Clear();
  status.set_transaction_id(id);
  if (const auto found = shared_->engine->Query(id)) {
    status.set_found(true);
    for (const StateChange& change : found->history) {
      v1::StateChange* out = status.add_history();
      out->set_state(ToWire(change.kind));
      out->set_unix_ns(change.at_ns + shared_->mono_to_unix_offset_ns);
      out->set_reason(wire::ToProto(change.reason));
      out->set_verifier(wire::ToProto(change.verifier));
      out->set_pass(change.pass);
    }
  }
  Append(connection, v1::ServerMessage::kStatus, status);
}

void IoThread::OnSubscribe(Connection& connection) {
  connection.include_verified = scratch_.subscribe.include_verified();
  if (!connection.subscribed) {
    connection.subscribed = true;
    subscribers_.push_back(&connection);
  }
}

void IoThread::OnPing(Connection& connection) {
  IoCounters::Add(counters_.pings);
  v1::Pong& pong = scratch_.pong;
  pong.set_nonce(scratch_.ping.nonce());
  pong.set_client_time_ns(scratch_.ping.client_time_ns());
  pong.set_server_time_ns(now_ns_ + shared_->mono_to_unix_offset_ns);
  Append(connection, v1::ServerMessage::kPong, pong);
}

// Operator requests: rare, so they may allocate (the hold list).
void IoThread::OnListHolds(Connection& connection) {
  std::vector<uint64_t> accounts = shared_->engine->Holds();
  std::sort(accounts.begin(), accounts.end());
  v1::Holds& holds = scratch_.holds;
  holds.Clear();
  for (const uint64_t account : accounts) holds.add_accounts(account);
  Append(connection, v1::ServerMessage::kHolds, holds);
}

void IoThread::OnReleaseHold(Connection& connection) {
  const uint64_t account = scratch_.release_hold.account();
  v1::HoldReleased& released = scratch_.hold_released;
  released.set_account(account);
  const absl::StatusOr<bool> was_held = shared_->engine->ReleaseHold(account);
  released.set_was_held(was_held.value_or(false));
  released.set_refused(was_held.ok() ? "" : std::string(was_held.status().message()));
  if (released.was_held() && shared_->event_log != nullptr) {
    shared_->event_log->HoldReleased(account);
  }
  Append(connection, v1::ServerMessage::kHoldReleased, released);
}

// Waits for the ledger stage (see the class comment). The answer may allocate (currency
// strings, a first use of the reused message); reads are occasional.
void IoThread::OnReadBalances(Connection& connection) {
  const auto& accounts = scratch_.read_balances.accounts();
  if (static_cast<size_t>(accounts.size()) > kBalanceReadAccountsMax) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("ReadBalances names at most ", kBalanceReadAccountsMax, " accounts; it named ",
                      accounts.size()));
    return;
  }
  const absl::Status status = shared_->engine->ReadBalances(
      absl::MakeConstSpan(accounts.data(), static_cast<size_t>(accounts.size())),
      &scratch_.snapshot, absl::Nanoseconds(options_.balance_read_timeout_ns));
  v1::Balances& balances = scratch_.balances;
  balances.Clear();
  switch (status.code()) {
    case absl::StatusCode::kOk: FillBalances(&balances); break;
    case absl::StatusCode::kDeadlineExceeded:
      balances.set_result(v1::BALANCES_RESULT_TIMEOUT);
      break;
    case absl::StatusCode::kUnavailable:
      // Every slot taken, or the engine stopping, which it does only after the server left
      // kServing. acquire: pairs with the server's release of the phase.
      balances.set_result(shared_->phase.load(std::memory_order_acquire) == Phase::kServing
                              ? v1::BALANCES_RESULT_BUSY
                              : v1::BALANCES_RESULT_UNAVAILABLE);
      break;
    default:
      assert(false && "ReadBalances' other errors are checked above");
      balances.set_result(v1::BALANCES_RESULT_UNAVAILABLE);
  }
  IoCounters::Add(counters_.balance_reads[balances.result()]);
  Append(connection, v1::ServerMessage::kBalances, balances);
}

void IoThread::FillBalances(v1::Balances* balances) {
  const BalanceSnapshot& snapshot = scratch_.snapshot;
  balances->set_result(v1::BALANCES_RESULT_OK);
  balances->set_checked_below_seq(snapshot.checked_below);
  balances->set_truncated(snapshot.truncated);
  for (const ledger::AccountView& view : snapshot.accounts) {
    v1::AccountBalance* out = balances->add_accounts();
    out->set_account(view.id);
    out->set_currency(CurrencyToString(view.currency));
    out->set_balance_minor(view.balance_minor);
    out->set_overdraft_limit_minor(view.overdraft_limit_minor);
  }
  for (const CurrencyBalance& currency : snapshot.currencies) {
    v1::CurrencyTotal* out = balances->add_currencies();
    out->set_currency(CurrencyToString(currency.currency));
    out->set_total_minor(currency.total_minor);
    out->set_clearing_minor(currency.clearing_minor);
  }
  // A small frame_bytes_max may not hold every account: send what fits and say so.
  constexpr size_t kEnvelopeBytesMax = 16;  // Field tag and varint length around the body.
  while (balances->accounts_size() > 0 &&
         balances->ByteSizeLong() + kEnvelopeBytesMax > options_.frame_bytes_max) {
    balances->mutable_accounts()->RemoveLast();
    balances->set_truncated(true);
  }
}

void IoThread::RouteOutcomes() {
  const Sequence end = shared_->window->end();
  int routed = 0;
  for (; cursor_ < end && routed < kRouteBudget; ++cursor_, ++routed) {
    const std::optional<Outcome> outcome = shared_->window->Read(cursor_);
    assert(outcome && "the writer does not overwrite what this reader has not routed");
    Route(*outcome);
  }
  if (routed > 0) shared_->window->Advance(index_, cursor_);
}

void IoThread::Route(const Outcome& outcome) {
  Connection* owner = nullptr;
  if (OwnerThread(outcome.origin, static_cast<int>(shared_->threads.size())) == index_) {
    const auto it = sessions_.find(outcome.origin);
    if (it != sessions_.end()) owner = it->second;
    if (owner == nullptr) IoCounters::Add(counters_.outcomes_unrouted);
  }
  const bool failure = outcome.kind != OutcomeKind::kVerified;
  bool converted = false;
  if (owner != nullptr && owner->resend_next == 0) {
    wire::ToProto(outcome, shared_->mono_to_unix_offset_ns, &scratch_.outcome);
    converted = true;
    AppendOutcome(*owner, scratch_.outcome);
    IoCounters::Add(counters_.outcomes_routed);
  }
  // A resuming owner picks this outcome up from the window when its resend reaches it.
  for (Connection* subscriber : subscribers_) {
    if (subscriber == owner || !(failure || subscriber->include_verified)) continue;
    if (!converted) {
      wire::ToProto(outcome, shared_->mono_to_unix_offset_ns, &scratch_.outcome);
      converted = true;
    }
    AppendOutcome(*subscriber, scratch_.outcome);
    IoCounters::Add(counters_.feed_outcomes);
  }
}

void IoThread::AppendOutcome(Connection& connection, const v1::Outcome& outcome) {
  Append(connection, v1::ServerMessage::kOutcome, outcome);
}

void IoThread::Append(Connection& connection, int field,
                      const google::protobuf::MessageLite& body) {
  const size_t before_bytes = connection.outbound.size();
  const bool appended =
      net::AppendEnvelopeFrame(field, body, options_.frame_bytes_max, &connection.outbound);
  assert(appended && "server messages are far below the frame maximum");
  (void)appended;
  IoCounters::Add(counters_.frames_out);
  if (!connection.dirty) {
    connection.dirty = true;
    connection.turn_start_bytes = before_bytes;
    dirty_.push_back(&connection);
  }
}

bool IoThread::JournalFailed() const {
  const JournalStage* journal = shared_->engine->journal();
  return journal != nullptr && journal->failed();
}

void IoThread::FailAllJournalFailed() {
  const std::string reason =
      absl::StrCat("the journal failed and the server is stopping; confirmations not sent were "
                   "never kept (resubmit them after the restart): ",
                   shared_->engine->health().message());
  for (auto& owned : connections_) {
    Connection& connection = *owned;
    if (connection.state != ConnectionState::kOpen) continue;
    if (connection.dirty) {
      // What earlier turns appended was acknowledged; a frame already partly sent stays whole.
      connection.outbound.resize(
          std::max(connection.turn_start_bytes, connection.outbound_sent));
    }
    Fail(connection, v1::ERROR_CODE_JOURNAL_FAILED, reason);
  }
}

void IoThread::Fail(Connection& connection, v1::ErrorCode code, absl::string_view message) {
  assert(connection.state == ConnectionState::kOpen);
  IoCounters::Add(counters_.errors[code]);
  if (shared_->event_log != nullptr) {
    shared_->event_log->Event(
        "connection_error", absl::StrCat(v1::ErrorCode_Name(code), ": ", message,
                                         " (connection ", connection.serial, ")"));
  }
  scratch_.error.set_code(code);
  scratch_.error.set_message(message.data(), message.size());
  Append(connection, v1::ServerMessage::kError, scratch_.error);
  Detach(connection);
  // Lingering close: the Error is flushed, then the write side shut, and input is discarded
  // until the peer closes. Closing at once with unread input would reset the connection, and a
  // reset can destroy the Error before the peer reads it.
  connection.state = ConnectionState::kClosing;
  connection.closing_since_ns = now_ns_;
  SetInterest(connection);
}

// Stops routing to the connection: it is leaving this thread or closing.
void IoThread::Detach(Connection& connection) {
  const auto it = sessions_.find(connection.session);
  if (it != sessions_.end() && it->second == &connection) sessions_.erase(it);
  if (connection.subscribed) {
    subscribers_.erase(std::find(subscribers_.begin(), subscribers_.end(), &connection));
    connection.subscribed = false;
  }
  connection.resend_next = 0;  // The resend loop drops it from resending_.
}

void IoThread::FlushDirty() {
  // By index: a Flush that fails the connection (slow consumer) appends its Error, which puts it
  // on the list again, to be flushed in this same loop.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Connection& connection = *dirty_[i];
    connection.dirty = false;
    if (connection.state != ConnectionState::kClosed) Flush(connection);
  }
  dirty_.clear();
}

void IoThread::Flush(Connection& connection) {
  while (connection.pending_bytes() > 0) {
    const ssize_t n = send(connection.fd, connection.outbound.data() + connection.outbound_sent,
                           connection.pending_bytes(), MSG_NOSIGNAL);
    if (n > 0) {
      connection.outbound_sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    Close(connection);  // EPIPE, ECONNRESET: the peer is gone.
    return;
  }
  if (connection.pending_bytes() == 0) {
    connection.outbound.clear();  // Keeps the capacity.
    connection.outbound_sent = 0;
  } else if (connection.outbound_sent > connection.outbound.size() / 2) {
    connection.outbound.erase(0, connection.outbound_sent);  // Bounds the buffer's growth.
    connection.outbound_sent = 0;
  }
  if (connection.state == ConnectionState::kOpen &&
      connection.pending_bytes() > options_.outbound_bytes_max) {
    Fail(connection, v1::ERROR_CODE_SLOW_CONSUMER,
         absl::StrCat("more than ", options_.outbound_bytes_max,
                      " bytes of output are waiting for the client to read them"));
  }
  if (connection.state == ConnectionState::kClosing && connection.pending_bytes() == 0 &&
      !connection.write_shut) {
    shutdown(connection.fd, SHUT_WR);
    connection.write_shut = true;
  }
  SetInterest(connection);
}

// Level-triggered interest: always readable (a client that sends but does not read is cut off
// by the output cap, not left stalled); writable while output is pending.
void IoThread::SetInterest(Connection& connection) {
  if (connection.state == ConnectionState::kClosed) return;
  const bool writable = connection.pending_bytes() > 0;
  if (writable == connection.waiting_writable) return;
  connection.waiting_writable = writable;
  epoll_event event = {};
  event.events = EPOLLIN | (writable ? EPOLLOUT : 0u);
  event.data.u64 = reinterpret_cast<uint64_t>(&connection);
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, connection.fd, &event);
}

void IoThread::Close(Connection& connection) {
  if (connection.state == ConnectionState::kClosed) return;
  Detach(connection);
  close(connection.fd);  // Also removes it from the epoll set.
  connection.state = ConnectionState::kClosed;
  closed_.push_back(&connection);
  // relaxed: a count.
  shared_->open_connections.fetch_sub(1, std::memory_order_relaxed);
}

void IoThread::ReapAndHandOff() {
  auto remove = [this](Connection* connection) {
    const size_t index = connection->index;
    std::unique_ptr<Connection> owned = std::move(connections_[index]);
    if (index + 1 != connections_.size()) {
      connections_[index] = std::move(connections_.back());
      connections_[index]->index = index;
    }
    connections_.pop_back();
    return owned;
  };
  for (Connection* connection : closed_) {
    // Lists that may still point at it (Close can run while they are being iterated).
    if (connection->dirty) dirty_.erase(std::find(dirty_.begin(), dirty_.end(), connection));
    const auto resending = std::find(resending_.begin(), resending_.end(), connection);
    if (resending != resending_.end()) resending_.erase(resending);
    remove(connection);
  }
  closed_.clear();
  for (Connection* connection : handing_off_) {
    if (connection->state != ConnectionState::kHandingOff) continue;  // Closed since.
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection->fd, nullptr);
    assert(!connection->dirty && connection->pending_bytes() == 0 &&
           "nothing is answered before Hello, so there is no output to carry");
    IoCounters::Add(counters_.handoffs);
    const int owner = OwnerThread(connection->session, static_cast<int>(shared_->threads.size()));
    shared_->threads[owner]->Adopt(remove(connection));
  }
  handing_off_.clear();
}

void IoThread::Tick(int64_t now_ns) {
  for (auto& owned : connections_) {
    Connection& connection = *owned;
    if (connection.state == ConnectionState::kClosing) {
      if (now_ns - connection.closing_since_ns > options_.linger_ns) Close(connection);
    } else if (connection.state == ConnectionState::kOpen) {
      if (connection.partial_since_ns != 0 &&
          now_ns - connection.partial_since_ns > options_.partial_frame_timeout_ns) {
        IoCounters::Add(counters_.partial_frame_timeouts);
        Fail(connection, v1::ERROR_CODE_TIMEOUT,
             absl::StrCat("a frame stayed incomplete for more than ",
                          options_.partial_frame_timeout_ns / 1'000'000, " ms"));
        Flush(connection);
      } else if (now_ns - connection.last_frame_ns > options_.idle_timeout_ns) {
        IoCounters::Add(counters_.idle_timeouts);
        Fail(connection, v1::ERROR_CODE_TIMEOUT,
             absl::StrCat("no frame for more than ", options_.idle_timeout_ns / 1'000'000,
                          " ms (send Ping to keep an idle connection)"));
        Flush(connection);
      }
    }
  }
}

// Returns false when the loop should exit.
bool IoThread::OnPhase(int64_t now_ns) {
  // acquire: pairs with the server's release; the fields it set before the phase are visible.
  const Phase phase = shared_->phase.load(std::memory_order_acquire);
  if (phase >= Phase::kStopAccepting && listening_) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, shared_->listen_fd, nullptr);
    listening_ = false;
    shared_->listener_released->DecrementCount();
  }
  if (phase != Phase::kFlushing) return true;
  // The engine has stopped: window end() is final. Route all of it, flush, then say goodbye.
  const bool routed = cursor_ >= shared_->window->end() && resending_.empty();
  bool flushed = true;
  for (auto& connection : connections_) {
    if (connection->state == ConnectionState::kOpen && connection->pending_bytes() > 0) {
      flushed = false;
    }
  }
  if (!(routed && flushed) && now_ns < shared_->flush_deadline_ns) return true;
  if (JournalFailed()) FailAllJournalFailed();  // Says why the server stops, not just that.
  for (auto& owned : connections_) {
    Connection& connection = *owned;
    if (connection.state == ConnectionState::kOpen) {
      Fail(connection, v1::ERROR_CODE_SHUTTING_DOWN, "the server is shutting down");
    }
    if (connection.state != ConnectionState::kClosed) Flush(connection);
    flush_report_.bytes_unflushed += connection.pending_bytes();
    if (connection.state != ConnectionState::kClosed) {
      Close(connection);
      ++flush_report_.connections_closed;
    }
  }
  ReapAndHandOff();
  AdoptInbox();  // A hand-off racing shutdown: close it too.
  for (auto& owned : connections_) {
    close(owned->fd);
    shared_->open_connections.fetch_sub(1, std::memory_order_relaxed);
    ++flush_report_.connections_closed;
  }
  connections_.clear();
  return false;
}

}  // namespace vouch::server::internal
