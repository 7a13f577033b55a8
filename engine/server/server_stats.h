// What the server counts, summed over its I/O threads by Server::Stats().
#ifndef VOUCH_ENGINE_SERVER_SERVER_STATS_H_
#define VOUCH_ENGINE_SERVER_SERVER_STATS_H_

#include <cstdint>

namespace vouch::server {

// One more than the highest vouch.v1.ErrorCode value (asserted in io_thread.cc).
inline constexpr int kErrorCodeCount = 15;

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;      // Right now.
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t transactions_in = 0;       // Transactions in Submit frames (each got a Confirmation).
  uint64_t queries = 0;
  uint64_t pings = 0;
  uint64_t balance_reads[5] = {};     // ReadBalances answered, by vouch.v1.BalancesResult.
  uint64_t outcomes_routed = 0;       // Sent to the session that submitted them.
  uint64_t outcomes_unrouted = 0;     // Their session had no connection; kept for resume only.
  uint64_t outcomes_resent = 0;       // Sent again to a resuming session.
  uint64_t feed_outcomes = 0;         // Sent to Subscribe connections.
  uint64_t handoffs = 0;              // Connections moved to the I/O thread owning their session.
  uint64_t resumes = 0;
  uint64_t partial_frame_timeouts = 0;
  uint64_t idle_timeouts = 0;
  uint64_t errors[kErrorCodeCount] = {};  // Error frames sent, by vouch.v1.ErrorCode.
  uint64_t window_writer_waits = 0;   // Times the reconciler waited for a slow I/O thread.
};

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_SERVER_STATS_H_
