#include "client/remote_verifier.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/internal/socket.h"
#include "engine/types/clock.h"

namespace vouch::client {
namespace {

constexpr int kVerifierHelloField = v1::ClientMessage::kVerifierHelloFieldNumber;
constexpr int kVerdictsField = v1::ClientMessage::kVerdictsFieldNumber;
constexpr int kPingField = v1::ClientMessage::kPingFieldNumber;
constexpr int kErrorField = v1::ServerMessage::kErrorFieldNumber;
constexpr int kPongField = v1::ServerMessage::kPongFieldNumber;
constexpr int kVerifierWelcomeField = v1::ServerMessage::kVerifierWelcomeFieldNumber;
constexpr int kVerifyBatchField = v1::ServerMessage::kVerifyBatchFieldNumber;
// ServerMessage's body fields a verifier connection can carry; others are skipped.
constexpr uint64_t kServerBodyFields =
    net::EnvelopeFields({kErrorField, kPongField, kVerifierWelcomeField, kVerifyBatchField});

constexpr uint32_t kWindowMax = 65536;  // VerifierHello.window.
constexpr size_t kWorkerNameBytesMax = 256;
// The longest Verdict inside Verdicts: tag and length (2), seq (tag + 10-byte varint), code
// (tag + 3-byte varint for 65535). The envelope and frame add a 2-byte tag and two 5-byte
// length varints at most.
constexpr size_t kVerdictEntryBytesMax = 2 + 11 + 4;
constexpr size_t kEnvelopeBytesMax = 2 + 5 + 5;
static_assert(kVerdictsField < 2048, "the envelope tag (field << 3 | 2) fits a 2-byte varint");

int64_t NowNs() { return MonotonicClock::Default()->NowNs(); }

// Verdicts that fit one frame of the smaller maximum (a server's 0: not stated, ours applies).
// Validate() keeps ours at 256 bytes or more, so that is at least 14.
size_t VerdictsPerFrameMax(size_t ours, uint32_t servers) {
  const size_t frame_bytes_max = servers == 0 ? ours : std::min<size_t>(ours, servers);
  if (frame_bytes_max <= kEnvelopeBytesMax + kVerdictEntryBytesMax) return 1;
  return (frame_bytes_max - kEnvelopeBytesMax) / kVerdictEntryBytesMax;
}

// The errors a retry would only repeat (see the header).
bool IsPermanent(const absl::Status& status) {
  return absl::IsNotFound(status) || absl::IsUnauthenticated(status) ||
         absl::IsInvalidArgument(status);
}

}  // namespace

absl::Status RemoteVerifierOptions::Validate() const {
  const auto bad = [](absl::string_view field, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("remote verifier option ", field, ": ", why));
  };
  if (host.empty()) return bad("host", "must not be empty");
  if (port < 1 || port > 65535) return bad("port", "must be in 1..65535");
  if (verifier.empty()) return bad("verifier", "must name one of the server's remote verifiers");
  if (window < 1 || window > kWindowMax) return bad("window", "must be in 1..65536");
  if (worker_name.size() > kWorkerNameBytesMax) return bad("worker_name", "at most 256 bytes");
  if (frame_bytes_max < 256 || frame_bytes_max > (64u << 20)) {
    return bad("frame_bytes_max", "must be in 256 B..64 MiB");
  }
  if (connect_timeout <= absl::ZeroDuration()) return bad("connect_timeout", "must be positive");
  if (send_timeout <= absl::ZeroDuration()) return bad("send_timeout", "must be positive");
  if (ping_interval <= absl::ZeroDuration()) return bad("ping_interval", "must be positive");
  if (reconnect_delay_min <= absl::ZeroDuration() ||
      reconnect_delay_max < reconnect_delay_min) {
    return bad("reconnect_delay_min", "must be positive and at most reconnect_delay_max");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping.

absl::StatusOr<std::unique_ptr<RemoteVerifierWorker>> RemoteVerifierWorker::Start(
    const RemoteVerifierOptions& options, VerifyFunction check) {
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  if (!check) return absl::InvalidArgumentError("remote verifier: no check given");
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) return internal::ErrnoStatus("eventfd");
  std::unique_ptr<RemoteVerifierWorker> worker(
      new RemoteVerifierWorker(options, std::move(check), wake_fd));
  absl::MutexLock lock(&worker->join_mu_);
  worker->thread_ = std::thread([self = worker.get()] { self->Run(); });
  return worker;
}

RemoteVerifierWorker::RemoteVerifierWorker(const RemoteVerifierOptions& options,
                                           VerifyFunction check, int wake_fd)
    : options_(options), check_(std::move(check)), wake_fd_(wake_fd) {}

RemoteVerifierWorker::~RemoteVerifierWorker() {
  Stop();
  close(wake_fd_);
}

void RemoteVerifierWorker::Stop() {
  // release: pairs with stop_requested()'s acquire (nothing else is published by it, but the
  // worker must not miss it once the eventfd or the shutdown woke it).
  stop_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));  // Wakes a poll or a back-off sleep.
  {
    absl::MutexLock lock(&mu_);
    if (fd_ >= 0) (void)shutdown(fd_, SHUT_RDWR);  // Ends a send blocked on a full buffer.
  }
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

bool RemoteVerifierWorker::stop_requested() const {
  return stop_requested_.load(std::memory_order_acquire);  // acquire: pairs with Stop().
}

// ---------------------------------------------------------------------------------------------
// State seen by the callers.

absl::StatusOr<v1::VerifierWelcome> RemoteVerifierWorker::AwaitWelcome(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &RemoteVerifierWorker::WelcomedOrEnded), timeout);
  if (connected_) return *welcome_;
  if (ended_) return status_;
  return absl::DeadlineExceededError(absl::StrCat(
      "remote verifier ", options_.verifier, ": no VerifierWelcome in time; latest error: ",
      last_error_.ToString()));
}

bool RemoteVerifierWorker::WelcomedOrEnded() const { return connected_ || ended_; }

std::optional<v1::VerifierWelcome> RemoteVerifierWorker::welcome() const {
  absl::MutexLock lock(&mu_);
  return welcome_;
}

bool RemoteVerifierWorker::connected() const {
  absl::MutexLock lock(&mu_);
  return connected_;
}

absl::Status RemoteVerifierWorker::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

absl::Status RemoteVerifierWorker::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

RemoteVerifierCounters RemoteVerifierWorker::counters() const {
  // relaxed: statistics; each value is one the worker wrote, with no order between them.
  RemoteVerifierCounters counters;
  counters.requests = requests_.load(std::memory_order_relaxed);
  counters.redelivered = redelivered_.load(std::memory_order_relaxed);
  counters.verdicts = verdicts_.load(std::memory_order_relaxed);
  counters.verdict_frames = verdict_frames_.load(std::memory_order_relaxed);
  counters.pings = pings_.load(std::memory_order_relaxed);
  counters.connections = connections_.load(std::memory_order_relaxed);
  counters.reconnects = counters.connections > 0 ? counters.connections - 1 : 0;
  counters.connect_failures = connect_failures_.load(std::memory_order_relaxed);
  return counters;
}

void RemoteVerifierWorker::Bump(std::atomic<uint64_t>& counter, uint64_t by) {
  // relaxed: single writer (the worker thread), so load-then-store loses nothing.
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// The worker thread.

void RemoteVerifierWorker::Run() {
  (void)pthread_setname_np(pthread_self(), "vouch-verifier");
  absl::Duration delay = options_.reconnect_delay_min;
  absl::Status why;
  for (;;) {
    bool welcomed = false;
    why = RunConnection(&welcomed);
    Lost(why);
    if (stop_requested()) {
      why = absl::CancelledError("stopped by this worker");
      break;
    }
    if (IsPermanent(why)) break;
    if (welcomed) {
      delay = options_.reconnect_delay_min;
    } else {
      Bump(connect_failures_);
    }
    if (!Sleep(delay)) {
      why = absl::CancelledError("stopped by this worker");
      break;
    }
    delay = std::min(delay * 2, options_.reconnect_delay_max);
  }
  absl::MutexLock lock(&mu_);
  status_ = why;
  ended_ = true;
}

bool RemoteVerifierWorker::Sleep(absl::Duration delay) {
  pollfd entry{wake_fd_, POLLIN, 0};
  const absl::Time deadline = absl::Now() + delay;
  while (!stop_requested()) {
    const int ready = poll(&entry, 1, internal::PollTimeoutMs(deadline));
    if (ready == 0) return !stop_requested();
    if (ready < 0 && errno != EINTR) return !stop_requested();
  }
  return false;
}

void RemoteVerifierWorker::SetSocket(int fd) {
  absl::MutexLock lock(&mu_);
  fd_ = fd;
}

void RemoteVerifierWorker::Welcomed(const v1::VerifierWelcome& welcome) {
  Bump(connections_);
  absl::MutexLock lock(&mu_);
  welcome_ = welcome;
  connected_ = true;
}

void RemoteVerifierWorker::Lost(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  connected_ = false;
  last_error_ = why;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

absl::Status RemoteVerifierWorker::RunConnection(bool* welcomed) {
  const absl::Time handshake_deadline = absl::Now() + options_.connect_timeout;
  absl::StatusOr<int> dialled = internal::Dial(options_.host, options_.port, handshake_deadline);
  if (!dialled.ok()) return dialled.status();
  const int fd = *dialled;
  SetSocket(fd);  // From here Lost() closes it.
  if (stop_requested()) return absl::CancelledError("stopped by this worker");
  decoder_ = std::make_unique<net::FrameDecoder>(options_.frame_bytes_max);

  v1::VerifierHello hello;
  hello.set_verifier(options_.verifier);
  hello.set_auth_token(options_.auth_token);
  hello.set_window(options_.window);
  hello.set_worker_name(options_.worker_name);
  if (absl::Status status = SendEnvelope(fd, kVerifierHelloField, hello); !status.ok()) {
    return status;
  }

  pollfd entries[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    if (stop_requested()) return absl::CancelledError("stopped by this worker");
    // Before the welcome: the handshake deadline. After it: the next Ping due.
    int timeout_ms = 0;
    if (*welcomed) {
      const int64_t idle_ns = NowNs() - last_send_ns_;
      const int64_t left_ns = absl::ToInt64Nanoseconds(options_.ping_interval) - idle_ns;
      if (left_ns <= 0) {
        if (absl::Status status = SendPing(fd); !status.ok()) return status;
        continue;
      }
      timeout_ms = static_cast<int>((left_ns + 999'999) / 1'000'000);
    } else {
      timeout_ms = internal::PollTimeoutMs(handshake_deadline);
      if (timeout_ms == 0) {
        return absl::DeadlineExceededError("no VerifierWelcome within connect_timeout");
      }
    }
    const int ready = poll(entries, 2, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return internal::ErrnoStatus("poll");
    }
    if (ready == 0) continue;  // A Ping is due, or the handshake timed out: checked above.
    if (entries[1].revents != 0) return absl::CancelledError("stopped by this worker");
    if (absl::Status status = ReadFrames(fd, welcomed); !status.ok()) return status;
  }
}

absl::Status RemoteVerifierWorker::ReadFrames(int fd, bool* welcomed) {
  const ssize_t got = recv(fd, decoder_->WritePointer(), decoder_->WritableBytes(), 0);
  if (got == 0) return absl::UnavailableError("the server closed the connection");
  if (got < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return internal::ErrnoStatus("recv");
  }
  decoder_->Commit(static_cast<size_t>(got));
  const char* data = nullptr;
  size_t size = 0;
  for (;;) {
    switch (decoder_->NextFrame(&data, &size)) {
      case net::FrameDecoder::Result::kNeedMore:
        return absl::OkStatus();
      case net::FrameDecoder::Result::kError:
        return absl::InternalError("bad frame from the server");
      case net::FrameDecoder::Result::kFrame:
        if (absl::Status status = HandleFrame(fd, data, size, welcomed); !status.ok()) {
          return status;
        }
        break;
    }
  }
}

absl::Status RemoteVerifierWorker::HandleFrame(int fd, const char* data, size_t size,
                                               bool* welcomed) {
  net::EnvelopeBody body;
  if (!net::ParseEnvelopeFields(data, size, kServerBodyFields, &body)) {
    return absl::InternalError("unparsable ServerMessage from the server");
  }
  const auto parse = [&](google::protobuf::MessageLite* message) {
    return message->ParseFromArray(body.data, static_cast<int>(body.size))
               ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("unparsable ", message->GetTypeName(),
                                                  " from the server"));
  };
  switch (body.field) {
    case kVerifierWelcomeField:
      if (absl::Status status = parse(&welcome_reply_); !status.ok()) return status;
      if (*welcomed) return absl::InternalError("protocol: a second VerifierWelcome");
      *welcomed = true;
      verdicts_per_frame_max_ = VerdictsPerFrameMax(options_.frame_bytes_max,
                                                    welcome_reply_.frame_bytes_max());
      Welcomed(welcome_reply_);
      return absl::OkStatus();
    case kVerifyBatchField:
      if (absl::Status status = parse(&batch_); !status.ok()) return status;
      if (!*welcomed) return absl::InternalError("protocol: a VerifyBatch before the welcome");
      return HandleBatch(fd);
    case kErrorField:
      if (absl::Status status = parse(&error_); !status.ok()) return status;
      return ServerErrorStatus(error_);  // The server closes after an Error.
    default:
      return absl::OkStatus();  // A Pong, or a body this build does not know: skipped.
  }
}

absl::Status RemoteVerifierWorker::HandleBatch(int fd) {
  const int count = batch_.requests_size();
  Bump(requests_, static_cast<uint64_t>(count));
  verdicts_message_.mutable_verdicts()->Clear();  // Keeps the elements for reuse.
  for (int i = 0; i < count; ++i) {
    // Stop() ends the connection now; what is left is redelivered (see the header).
    if (stop_requested()) return absl::CancelledError("stopped by this worker");
    const v1::VerifyRequest& request = batch_.requests(i);
    if (request.redelivered()) Bump(redelivered_);
    v1::Verdict* verdict = verdicts_message_.add_verdicts();
    verdict->set_seq(request.seq());
    verdict->set_code(check_(request));
    const bool full =
        static_cast<size_t>(verdicts_message_.verdicts_size()) == verdicts_per_frame_max_;
    if (full || i + 1 == count) {
      if (stop_requested()) return absl::CancelledError("stopped by this worker");
      if (absl::Status status = SendEnvelope(fd, kVerdictsField, verdicts_message_);
          !status.ok()) {
        return status;
      }
      Bump(verdicts_, static_cast<uint64_t>(verdicts_message_.verdicts_size()));
      Bump(verdict_frames_);
      verdicts_message_.mutable_verdicts()->Clear();
    }
  }
  return absl::OkStatus();
}

absl::Status RemoteVerifierWorker::SendPing(int fd) {
  ping_.set_nonce(ping_.nonce() + 1);
  ping_.set_client_time_ns(NowNs());
  if (absl::Status status = SendEnvelope(fd, kPingField, ping_); !status.ok()) return status;
  Bump(pings_);
  return absl::OkStatus();
}

absl::Status RemoteVerifierWorker::SendEnvelope(int fd, int field,
                                                const google::protobuf::MessageLite& body) {
  write_buffer_.clear();
  if (!net::AppendEnvelopeFrame(field, body, options_.frame_bytes_max, &write_buffer_)) {
    // Verdicts are split to fit and the others are small: a bug, not an operating error.
    assert(false && "a frame above frame_bytes_max");
    return absl::InternalError(absl::StrCat(body.GetTypeName(), " does not fit one frame"));
  }
  size_t written = 0;
  const absl::Status status = internal::SendAll(
      fd, write_buffer_, absl::Now() + options_.send_timeout, &written);
  last_send_ns_ = NowNs();
  return status;
}

}  // namespace vouch::client
