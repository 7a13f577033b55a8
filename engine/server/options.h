// Server configuration. Every field has a working default; Validate() refuses bad values with an
// InvalidArgument status that names the field.
#ifndef VOUCH_ENGINE_SERVER_OPTIONS_H_
#define VOUCH_ENGINE_SERVER_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/verify/verifier.h"

namespace vouch::server {

// The longest Submit entry a realistic Transaction takes: every integer field at its longest
// varint (10 bytes; 5 for merchant_category), a 3-byte currency, a 2-byte country and
// attributes of the most bytes (kAttributesBytesMax, 24), each field behind a 1-byte tag (and a
// length), is 118 bytes, plus the entry's own tag and length. Checked against the generated code
// by //tests/engine/server:server_limits_test.
inline constexpr size_t kSubmitEntryBytesMax = 120;
// The ClientMessage envelope around a Submit body: its tag and a varint32 length.
inline constexpr size_t kSubmitEnvelopeBytesMax = 1 + 5;
// The longest frame payload a Submit of `count` realistic transactions takes.
constexpr size_t SubmitFrameBytesMax(size_t count) {
  return count * kSubmitEntryBytesMax + kSubmitEnvelopeBytesMax;
}
inline constexpr size_t kFrameBytesMaxDefault = 64 * 1024;
inline constexpr size_t kSubmitBatchMaxDefault = 512;
static_assert(SubmitFrameBytesMax(kSubmitBatchMaxDefault) <= kFrameBytesMaxDefault,
              "the default batch maximum must fit in the default frame maximum");

// A VerifyBatch entry of a realistic transaction (as kSubmitEntryBytesMax) takes at most this:
// the Transaction, seq, two times and the redelivered flag, with their tags and lengths.
inline constexpr size_t kVerifyEntryBytesMax = kSubmitEntryBytesMax + 40;
inline constexpr size_t kVerifyBatchMaxDefault = 256;
// The most requests in one VerifyBatch: as many as fit a frame, at most kVerifyBatchMaxDefault.
constexpr size_t VerifyBatchMax(size_t frame_bytes_max) {
  const size_t fit = (frame_bytes_max - kSubmitEnvelopeBytesMax) / kVerifyEntryBytesMax;
  return fit < kVerifyBatchMaxDefault ? fit : kVerifyBatchMaxDefault;
}
inline constexpr uint32_t kVerifierWindowDefault = 256;
inline constexpr uint32_t kVerifierWindowMax = 65536;

// A verifier served over the wire (remote_verifier.h; vouch.proto "Remote verifiers").
struct RemoteVerifierOptions {
  std::string name;  // As VerifierSpec::name: what VerifierHello.verifier names.
  VerifierPolicy policy = VerifierPolicy::kRequired;
  bool hold_account_on_failure = false;
};

// Parses vouchd's --remote_verifiers: a comma-separated list of name[:policy][:hold], policy
// one of required (the default), advisory, shadow; "hold": a failure holds the source account.
// Empty: none. InvalidArgument naming the entry for anything else (a name's own rules are
// checked by the engine, as VerifierSpec::name).
absl::StatusOr<std::vector<RemoteVerifierOptions>> ParseRemoteVerifiers(absl::string_view list);

struct ServerOptions {
  std::string host = "127.0.0.1";  // Loopback by default: exposing the port is a decision.
  int port = 7411;                 // 0 binds an ephemeral port; see Server::port().
  int io_threads = 1;              // Event loops; each owns its connections.
  // After its last event, an I/O thread keeps polling (epoll_wait with no timeout) this long
  // before it blocks. Blocking costs a wake-up (~15-25 us on a VM) on the next request; polling
  // costs a core while the link is quiet. 0: block at once.
  int64_t busy_poll_ns = 0;

  // Per connection.
  size_t max_connections = 1024;                // Open at once, over every I/O thread.
  size_t frame_bytes_max = kFrameBytesMaxDefault;  // Longest frame accepted (and sent).
  // Transactions in one Submit. A Submit of this many must fit in one frame
  // (SubmitFrameBytesMax(submit_batch_max) <= frame_bytes_max; Validate refuses less), so a
  // client that keeps to the batch limit never meets the frame limit.
  size_t submit_batch_max = kSubmitBatchMaxDefault;
  size_t outbound_bytes_max = 8 * 1024 * 1024;  // Unsent bytes before the client is cut off.
  int64_t partial_frame_timeout_ns = 5'000'000'000;  // A frame must complete within this.
  int64_t idle_timeout_ns = 60'000'000'000;          // No complete frame for this long: close.
  int64_t linger_ns = 1'000'000'000;  // After an Error: wait this long for the peer to close.
  size_t client_name_bytes_max = 256;
  // ReadBalances: how long the I/O thread waits for the ledger stage's snapshot before it
  // answers BALANCES_RESULT_TIMEOUT (its other connections wait meanwhile; see io_thread.h).
  int64_t balance_read_timeout_ns = 10'000'000;
  // SO_SNDBUF of each connection; 0 leaves the kernel's autotuning (up to net.ipv4.tcp_wmem).
  int send_buffer_bytes = 0;

  // JSON lines for late failures, holds, releases and operational events (event_log.h):
  // a file path, "-" for standard error, or empty for none.
  std::string event_log;

  // Empty: no authentication. Otherwise Hello must carry exactly this token.
  std::string auth_token;

  // Recent outcomes kept for Hello{resume} (rounded up to a power of two). An I/O thread that
  // falls further behind than this reads what it missed from the engine's history, or, where
  // that has lost it too, cuts its sessions off (ERROR_CODE_SLOW_CONSUMER); the reconciler never
  // waits for it.
  size_t retained_outcomes = 1 << 20;

  // Verifiers run by other processes that connect with VerifierHello. Each becomes one of the
  // engine's verifiers (after vouch::Options::verifiers, in this order), so together they count
  // towards its kVerifiersMax.
  std::vector<RemoteVerifierOptions> remote_verifiers;

  // Shutdown: after the engine drained, how long to keep delivering and flushing.
  int64_t flush_timeout_ns = 2'000'000'000;

  absl::Status Validate() const;
};

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_OPTIONS_H_
