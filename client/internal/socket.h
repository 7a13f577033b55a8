// The TCP plumbing the client library's connections share (client/client.h and
// client/remote_verifier.h): dialling a host with a deadline, waiting on a socket, and writing a
// buffer whole without blocking past a deadline.
//
// Sockets are left blocking (readers block in recv) with TCP_NODELAY: every write is a whole
// frame, so there is nothing for Nagle's algorithm to coalesce. Sends use MSG_DONTWAIT and poll,
// so that a deadline holds, and MSG_NOSIGNAL, so that a closed peer is a status, not SIGPIPE.
//
// Thread safety: stateless functions; callers own the file descriptors.
#ifndef VOUCH_CLIENT_INTERNAL_SOCKET_H_
#define VOUCH_CLIENT_INTERNAL_SOCKET_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vouch::client::internal {

// kUnavailable naming `what` and errno's text.
absl::Status ErrnoStatus(absl::string_view what);

// Milliseconds for poll(2) until `deadline`, rounded up; -1 for absl::InfiniteFuture().
int PollTimeoutMs(absl::Time deadline);

// Waits until `fd` has any of `events`; kDeadlineExceeded at the deadline.
absl::Status PollFor(int fd, short events, absl::Time deadline);

// Connects to host:port (each resolved address in turn) by `deadline`: a blocking, CLOEXEC
// socket with TCP_NODELAY, owned by the caller. kUnavailable naming host:port when none connects.
absl::StatusOr<int> Dial(const std::string& host, int port, absl::Time deadline);

// Writes data[*written..] whole by `deadline`, advancing *written as bytes go out (so a caller
// can tell "nothing sent" from a partly written frame, which leaves the stream unusable).
absl::Status SendAll(int fd, absl::string_view data, absl::Time deadline, size_t* written);

}  // namespace vouch::client::internal

#endif  // VOUCH_CLIENT_INTERNAL_SOCKET_H_
