#include "client/internal/socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vouch::client::internal {
namespace {

absl::Status ConnectBy(int fd, const addrinfo& address, absl::Time deadline) {
  if (connect(fd, address.ai_addr, address.ai_addrlen) == 0) return absl::OkStatus();
  if (errno != EINPROGRESS) return ErrnoStatus("connect");
  if (absl::Status status = PollFor(fd, POLLOUT, deadline); !status.ok()) return status;
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return ErrnoStatus("getsockopt");
  if (error != 0) return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(error)));
  return absl::OkStatus();
}

// Blocking from here on (readers block in recv; sends poll with MSG_DONTWAIT), and TCP_NODELAY.
absl::Status MakeBlockingNoDelay(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) return ErrnoStatus("fcntl");
  const int on = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) {
    return ErrnoStatus("setsockopt(TCP_NODELAY)");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> DialOne(const addrinfo& address, absl::Time deadline) {
  const int fd = socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        address.ai_protocol);
  if (fd < 0) return ErrnoStatus("socket");
  absl::Status status = ConnectBy(fd, address, deadline);
  if (status.ok()) status = MakeBlockingNoDelay(fd);
  if (!status.ok()) {
    close(fd);
    return status;
  }
  return fd;
}

}  // namespace

absl::Status ErrnoStatus(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
  return static_cast<int>(std::min<int64_t>(
      absl::Ceil(left, absl::Milliseconds(1)) / absl::Milliseconds(1), INT_MAX));
}

absl::Status PollFor(int fd, short events, absl::Time deadline) {
  pollfd entry{fd, events, 0};
  for (;;) {
    const int ready = poll(&entry, 1, PollTimeoutMs(deadline));
    if (ready > 0) return absl::OkStatus();
    if (ready == 0) return absl::DeadlineExceededError("timed out waiting for the socket");
    if (errno != EINTR) return ErrnoStatus("poll");
  }
}

absl::StatusOr<int> Dial(const std::string& host, int port, absl::Time deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port_text = absl::StrCat(port);
  if (const int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolving ", host, ": ", gai_strerror(rc)));
  }
  absl::StatusOr<int> fd = absl::UnavailableError("no address");
  for (const addrinfo* address = found; address != nullptr; address = address->ai_next) {
    fd = DialOne(*address, deadline);
    if (fd.ok()) break;
  }
  freeaddrinfo(found);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        absl::StrCat(host, ":", port, ": ", fd.status().message()));
  }
  return fd;
}

absl::Status SendAll(int fd, absl::string_view data, absl::Time deadline, size_t* written) {
  while (*written < data.size()) {
    const ssize_t sent =
        send(fd, data.data() + *written, data.size() - *written, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      *written += static_cast<size_t>(sent);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (absl::Status status = PollFor(fd, POLLOUT, deadline); !status.ok()) return status;
    } else if (errno != EINTR) {
      return ErrnoStatus("send");
    }
  }
  return absl::OkStatus();
}

}  // namespace vouch::client::internal
