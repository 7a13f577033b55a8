#include "engine/server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "engine/server/epoch.h"
#include "engine/types/clock.h"

namespace vouch::server {
namespace {

// Descriptors the server needs besides its connections and those open before it starts: the
// listener, journal segments and their directory, snapshot files, the event log, the lock file,
// and the connections refused over the limit while they linger (each I/O thread's epoll set,
// eventfd and reserve descriptor are counted apart).
constexpr rlim_t kServerDescriptorsSpare = 64;

rlim_t OpenDescriptors() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  rlim_t count = 0;
  while (const dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
  closedir(dir);
  return count > 0 ? count - 1 : 0;  // Less the directory stream's own descriptor.
}

}  // namespace

// Raises the soft RLIMIT_NOFILE as far as max_connections needs, or refuses the option when the
// hard limit is too low: running out of descriptors would refuse connections the option allows.
absl::Status Server::FitDescriptorLimit(const ServerOptions& options) {
  const rlim_t needed = OpenDescriptors() + options.max_connections + kServerDescriptorsSpare +
                        3 * static_cast<rlim_t>(options.io_threads);
  rlimit limit = {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", strerror(errno)));
  }
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= needed) return absl::OkStatus();
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
    const rlim_t fits = limit.rlim_max > needed - options.max_connections
                            ? limit.rlim_max - (needed - options.max_connections)
                            : 0;
    return absl::InvalidArgumentError(absl::StrCat(
        "server option max_connections: ", options.max_connections, " connections need ",
        needed, " file descriptors (with those open and the server's own), above the hard "
        "limit RLIMIT_NOFILE of ", limit.rlim_max, "; lower max_connections to at most ", fits,
        " or raise the hard limit (ulimit -Hn, systemd LimitNOFILE=)"));
  }
  limit.rlim_cur = needed;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("setrlimit(RLIMIT_NOFILE, ", needed,
                                            "): ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options,
                                                       vouch::Options engine_options) {
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  if (absl::Status status = FitDescriptorLimit(options); !status.ok()) return status;
  if (engine_options.inline_mode) {
    return absl::InvalidArgumentError("the server needs the engine's stage threads (inline_mode)");
  }
  auto server = std::unique_ptr<Server>(new Server(std::move(options)));
  engine_options.outcome_sink = server->window_.get();
  // Each remote verifier is one of the engine's asynchronous verifiers, after the embedder's.
  for (const RemoteVerifierOptions& remote : server->options_.remote_verifiers) {
    auto hub = std::make_shared<RemoteVerifier>(remote.name, engine_options.in_flight_capacity,
                                                engine_options.verification_deadline_ns);
    VerifierSpec spec;
    spec.name = remote.name;
    spec.policy = remote.policy;
    spec.hold_account_on_failure = remote.hold_account_on_failure;
    spec.async_verifier = hub;
    engine_options.verifiers.push_back(std::move(spec));
    server->remote_verifiers_.push_back(std::move(hub));
  }
  // A failed journal: every I/O thread tells its clients why (ERROR_CODE_JOURNAL_FAILED) at its
  // next turn, then the embedder hears of it and stops the server.
  engine_options.on_fatal = [raw = server.get(), embedder = std::move(engine_options.on_fatal)](
                                const absl::Status& status) {
    if (raw->event_log_ != nullptr) raw->event_log_->Event("journal_failed", status.ToString());
    for (internal::IoThread* thread : raw->shared_.threads) thread->Wake();
    if (embedder) embedder(status);
  };
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(std::move(engine_options));
  if (!engine.ok()) return engine.status();
  server->engine_ = *std::move(engine);
  server->SeedWindow();
  absl::StatusOr<uint64_t> epoch =
      LoadOrCreateEpoch(server->engine_->options(), server->engine_->recovery());
  if (!epoch.ok()) return epoch.status();
  server->epoch_ = *epoch;
  if (!server->options_.event_log.empty()) {
    absl::StatusOr<std::unique_ptr<EventLog>> log =
        EventLog::Open(server->options_.event_log, server->window_.get(),
                       server->options_.io_threads, server->engine_->unix_offset_ns(),
                       server->engine_.get());
    if (!log.ok()) return log.status();
    server->event_log_ = *std::move(log);
  }
  if (absl::Status status = server->Listen(); !status.ok()) return status;
  return server;
}

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      // The event log, if any, is one more reader of the window.
      window_(std::make_unique<OutcomeWindow>(options_.retained_outcomes,
                                              options_.io_threads +
                                                  (options_.event_log.empty() ? 0 : 1))) {}

// After a restart, the outcomes decided before it are in the engine's history: put the most
// recent ones in the window, so that a session that lost its connection in the crash can resume.
void Server::SeedWindow() {
  const Sequence last = engine_->recovery().outcomes;
  const Sequence keep =
      std::min<Sequence>(window_->capacity(), engine_->options().history_capacity);
  Sequence seq = last > keep ? last - keep + 1 : 1;
  // The oldest of them may have left the history already; seed the contiguous rest.
  while (seq <= last && !engine_->FinalOutcome(seq).has_value()) ++seq;
  for (; seq <= last; ++seq) {
    const std::optional<Outcome> outcome = engine_->FinalOutcome(seq);
    if (!outcome.has_value()) break;
    window_->Seed(*outcome);
  }
  window_->StartAt(last + 1);
}

Server::~Server() {
  if (started_ && !shut_down_) (void)Shutdown();
  if (listen_fd_ >= 0) close(listen_fd_);
}

absl::Status Server::Listen() {
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(options_.port));
  if (inet_pton(AF_INET, options_.host.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("server option host: \"", options_.host, "\" is not an IPv4 address"));
  }
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return absl::UnavailableError(absl::StrCat("bind ", options_.host, ":", options_.port, ": ",
                                               strerror(errno)));
  }
  if (listen(listen_fd_, SOMAXCONN) != 0) {
    return absl::InternalError(absl::StrCat("listen: ", strerror(errno)));
  }
  socklen_t length = sizeof(address);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  return absl::OkStatus();
}

absl::Status Server::Start() {
  assert(!started_);
  shared_.options = &options_;
  shared_.engine = engine_.get();
  shared_.window = window_.get();
  shared_.listen_fd = listen_fd_;
  shared_.epoch = epoch_;
  shared_.recovered_confirmed = engine_->recovery().confirmed;
  shared_.mono_to_unix_offset_ns = engine_->unix_offset_ns();
  shared_.event_log = event_log_.get();
  for (size_t i = 0; i < remote_verifiers_.size(); ++i) {
    internal::RemoteVerifierEntry entry;
    entry.hub = remote_verifiers_[i].get();
    entry.policy = options_.remote_verifiers[i].policy;
    for (int slot = 0; slot < engine_->verifier_count(); ++slot) {
      if (engine_->VerifierName(VerifierAtSlot(slot)) == entry.hub->name()) {
        entry.id = VerifierAtSlot(slot);
      }
    }
    assert(entry.id != VerifierId::kNone && "Create registered it with the engine");
    entry.hub->SetWaker([this](int thread) { shared_.threads[thread]->Wake(); });
    shared_.remote_verifiers.push_back(entry);
  }
  for (int i = 0; i < options_.io_threads; ++i) {
    io_threads_.push_back(std::make_unique<internal::IoThread>(i, &shared_));
    if (absl::Status status = io_threads_.back()->Init(); !status.ok()) return status;
    window_->SetWakeFd(i, io_threads_.back()->wake_fd());
    shared_.threads.push_back(io_threads_.back().get());
  }
  if (absl::Status status = engine_->Start(); !status.ok()) return status;
  flush_reports_.resize(io_threads_.size());
  if (event_log_ != nullptr) {
    event_log_->Start();
    event_log_->Event("start", absl::StrCat("listening on ", options_.host, ":", port_));
  }
  for (size_t i = 0; i < io_threads_.size(); ++i) {
    threads_.emplace_back([this, i] {
      pthread_setname_np(pthread_self(), absl::StrCat("vouch-io-", i).c_str());
      flush_reports_[i] = io_threads_[i]->Run();
    });
  }
  started_ = true;
  return absl::OkStatus();
}

ShutdownReport Server::Shutdown() {
  assert(started_ && !shut_down_);
  shut_down_ = true;
  const int64_t start_ns = engine_->clock().NowNs();
  ShutdownReport report;

  absl::BlockingCounter listener_released(static_cast<int>(io_threads_.size()));
  shared_.listener_released = &listener_released;
  // release: the threads that acquire the phase see listener_released.
  shared_.phase.store(internal::Phase::kStopAccepting, std::memory_order_release);
  for (auto& thread : io_threads_) thread->Wake();
  listener_released.Wait();
  close(listen_fd_);
  listen_fd_ = -1;

  report.engine = engine_->Stop();  // The I/O threads keep routing while the engine drains.

  shared_.flush_deadline_ns = engine_->clock().NowNs() + options_.flush_timeout_ns;
  // release: the threads that acquire the phase see the deadline.
  shared_.phase.store(internal::Phase::kFlushing, std::memory_order_release);
  for (auto& thread : io_threads_) thread->Wake();
  for (auto& thread : threads_) thread.join();

  for (const internal::FlushReport& flush : flush_reports_) {
    report.connections_closed += flush.connections_closed;
    report.bytes_unflushed += flush.bytes_unflushed;
  }
  const ServerStats stats = Stats();
  report.outcomes = window_->end() - 1;
  report.outcomes_routed = stats.outcomes_routed;
  report.outcomes_unrouted = stats.outcomes_unrouted;
  report.elapsed_ns = engine_->clock().NowNs() - start_ns;
  if (event_log_ != nullptr) {
    event_log_->Event("shutdown",
                      absl::StrCat(report.engine.drained ? "drained" : "NOT drained",
                                   "; confirmed ", report.engine.confirmed, ", outcomes ",
                                   report.outcomes, ", connections closed ",
                                   report.connections_closed));
    event_log_->Stop();
  }
  return report;
}

ServerStats Server::Stats() const {
  ServerStats stats;
  for (const auto& thread : io_threads_) thread->counters().AddTo(&stats);
  // relaxed: a gauge.
  stats.connections_open = shared_.open_connections.load(std::memory_order_relaxed);
  for (const auto& remote : remote_verifiers_) stats.remote_verifiers.push_back(remote->Stats());
  return stats;
}

}  // namespace vouch::server
