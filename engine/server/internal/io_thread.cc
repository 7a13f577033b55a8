#include "engine/server/internal/io_thread.h"

#include <errno.h>
#include <fcntl.h>
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

namespace vouch::server::internal {
namespace {

constexpr uint64_t kListenerTag = 0;
constexpr uint64_t kWakeTag = 1;
constexpr int kEventsMax = 256;
constexpr int kTickMs = 50;

}  // namespace

IoThread::IoThread(int index, Shared* shared)
    : index_(index), shared_(shared), options_(*shared->options), handler_(index, shared) {
  connections_.reserve(options_.max_connections);
}

IoThread::~IoThread() {
  if (reserve_fd_ >= 0) close(reserve_fd_);
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
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake) != 0 || !ListenerInterest(true)) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
  }
  listener_ = ListenerState::kListening;
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (reserve_fd_ < 0) {
    return absl::InternalError(absl::StrCat("open /dev/null (reserve): ", strerror(errno)));
  }
  v1::Error refusal;
  refusal.set_code(v1::ERROR_CODE_TOO_MANY_CONNECTIONS);
  refusal.set_message("the server is out of file descriptors; retry later");
  (void)net::AppendEnvelopeFrame(v1::ServerMessage::kError, refusal, options_.frame_bytes_max,
                                 &descriptor_refusal_);
  handler_.StartAt(shared_->window->end());  // After recovery the first outcome is not seq 1.
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
    const bool busy =
        handler_.has_work() || now_ns_ - last_event_ns_ < options_.busy_poll_ns;
    int timeout_ms = 0;
    if (!busy) {
      timeout_ms = shared_->window->PrepareToSleep(index_, handler_.cursor()) ? kTickMs : 0;
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
  handler_.SetNow(now_ns_);
  for (int i = 0; i < ready; ++i) OnEvent(events[i].data.u64, events[i].events);
  handler_.RouteOutcomes();
  handler_.FeedVerifiers();
  handler_.ResendAll();
  handler_.AwaitTurnAck();  // Before the output is written: it may hold confirmations.
  if (JournalFailed()) FailAllJournalFailed();
  FlushDirty();
  if (now_ns_ >= next_tick_ns_) {
    ResumeListener();
    Tick(now_ns_);
    next_tick_ns_ = now_ns_ + int64_t{kTickMs} * 1'000'000;
  }
  ReapAndHandOff();
}

void IoThread::OnEvent(uint64_t tag, uint32_t events) {
  if (tag == kListenerTag) {
    if (listener_ == ListenerState::kListening) AcceptAll();
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
  if ((events & EPOLLOUT) && connection.state != ConnectionState::kClosed) {
    handler_.MarkDirty(connection);
  }
}

void IoThread::AcceptAll() {
  for (;;) {
    const int fd = accept4(shared_->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;  // That one is gone; next.
      if (errno == EMFILE || errno == ENFILE) {
        // The listener is level-triggered: returning would wake this loop again at once.
        IoCounters::Add(handler_.counters().accept_descriptors_exhausted);
        if (RefuseWithReserve()) continue;
        if (reserve_fd_ < 0) PauseListener();
      } else if (errno == ENOBUFS || errno == ENOMEM) {
        PauseListener();
      }
      return;  // EAGAIN: another thread took it, or none left.
    }
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
    IoCounters::Add(handler_.counters().connections_accepted);
    // relaxed: a count; the limit is approximate by at most the threads accepting at once.
    if (shared_->open_connections.fetch_add(1, std::memory_order_relaxed) >=
        options_.max_connections) {
      handler_.Fail(connection, v1::ERROR_CODE_TOO_MANY_CONNECTIONS,
           absl::StrCat("the server's limit of ", options_.max_connections,
                        " connections is reached"));
    }
  }
}

bool IoThread::JournalFailed() const {
  return shared_->engine->journal_failed();
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
    handler_.Fail(connection, v1::ERROR_CODE_JOURNAL_FAILED, reason);
  }
}

// Out of descriptors: frees the reserve, accepts one queued connection with it, tells it why
// (best effort: one non-blocking send), closes it and takes the reserve back. Returns true if it
// refused one and holds the reserve again; false if none was queued (EMFILE is reported before
// the queue is looked at), or there was no reserve, or it could not be taken back.
bool IoThread::RefuseWithReserve() {
  if (reserve_fd_ < 0) return false;
  close(reserve_fd_);
  const int fd = accept4(shared_->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    (void)!send(fd, descriptor_refusal_.data(), descriptor_refusal_.size(), MSG_NOSIGNAL);
    close(fd);
    IoCounters::Add(handler_.counters().errors[v1::ERROR_CODE_TOO_MANY_CONNECTIONS]);
  }
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0 && reserve_fd_ >= 0;
}

// No descriptor even for a refusal, or no kernel memory for a socket: stop watching the listener
// (the kernel keeps queueing connections, up to the backlog) and look again at the next tick.
void IoThread::PauseListener() {
  if (listener_ != ListenerState::kListening) return;
  (void)ListenerInterest(false);
  listener_ = ListenerState::kPaused;
  IoCounters::Add(handler_.counters().listener_pauses);
}

// Each tick while paused: listen again once the reserve could be taken back.
void IoThread::ResumeListener() {
  if (listener_ != ListenerState::kPaused) return;
  if (reserve_fd_ < 0) reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (reserve_fd_ < 0) return;
  if (ListenerInterest(true)) listener_ = ListenerState::kListening;
}

bool IoThread::ListenerInterest(bool on) {
  if (!on) return epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, shared_->listen_fd, nullptr) == 0;
  epoll_event listener = {};
  // EPOLLEXCLUSIVE: with several I/O threads, a new connection wakes one of them, not all.
  listener.events = EPOLLIN | EPOLLEXCLUSIVE;
  listener.data.u64 = kListenerTag;
  return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, shared_->listen_fd, &listener) == 0;
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
    handler_.BindSession(connection);
    handler_.HandleFrames(connection);  // Frames that arrived behind the Hello.
  }
}

void IoThread::OnReadable(Connection& connection) {
  if (connection.state == ConnectionState::kClosing) {
    // Discard input until the peer closes; see Fail.
    const ssize_t n = read(connection.fd, discard_, sizeof(discard_));
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
  handler_.HandleFrames(connection);
}

void IoThread::FlushDirty() {
  // By index: a Flush that fails the connection (slow consumer) appends its Error, which puts it
  // on the list again, to be flushed in this same loop.
  std::vector<Connection*>& dirty = handler_.dirty();
  for (size_t i = 0; i < dirty.size(); ++i) {
    Connection& connection = *dirty[i];
    connection.dirty = false;
    if (connection.state != ConnectionState::kClosed) Flush(connection);
  }
  dirty.clear();
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
    handler_.Fail(connection, v1::ERROR_CODE_SLOW_CONSUMER,
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
  handler_.Detach(connection);
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
    handler_.Forget(connection);
    remove(connection);
  }
  closed_.clear();
  for (Connection* connection : handler_.handing_off()) {
    if (connection->state != ConnectionState::kHandingOff) continue;  // Closed since.
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection->fd, nullptr);
    assert(!connection->dirty && connection->pending_bytes() == 0 &&
           "nothing is answered before Hello, so there is no output to carry");
    IoCounters::Add(handler_.counters().handoffs);
    const int owner = OwnerThread(connection->session, static_cast<int>(shared_->threads.size()));
    shared_->threads[owner]->Adopt(remove(connection));
  }
  handler_.handing_off().clear();
}

void IoThread::Tick(int64_t now_ns) {
  for (auto& owned : connections_) {
    Connection& connection = *owned;
    if (connection.state == ConnectionState::kClosing) {
      if (now_ns - connection.closing_since_ns > options_.linger_ns) Close(connection);
    } else if (connection.state == ConnectionState::kOpen) {
      if (connection.partial_since_ns != 0 &&
          now_ns - connection.partial_since_ns > options_.partial_frame_timeout_ns) {
        IoCounters::Add(handler_.counters().partial_frame_timeouts);
        handler_.Fail(connection, v1::ERROR_CODE_TIMEOUT,
             absl::StrCat("a frame stayed incomplete for more than ",
                          options_.partial_frame_timeout_ns / 1'000'000, " ms"));
        Flush(connection);
      } else if (now_ns - connection.last_frame_ns > options_.idle_timeout_ns) {
        IoCounters::Add(handler_.counters().idle_timeouts);
        handler_.Fail(connection, v1::ERROR_CODE_TIMEOUT,
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
  if (phase >= Phase::kStopAccepting && listener_ != ListenerState::kReleased) {
    if (listener_ == ListenerState::kListening) (void)ListenerInterest(false);
    listener_ = ListenerState::kReleased;
    shared_->listener_released->DecrementCount();
  }
  if (phase != Phase::kFlushing) return true;
  // The engine has stopped: window end() is final. Route all of it, flush, then say goodbye.
  const bool routed = handler_.caught_up();
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
      handler_.Fail(connection, v1::ERROR_CODE_SHUTTING_DOWN, "the server is shutting down");
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
