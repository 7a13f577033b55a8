// What the server counts, summed over its I/O threads by Server::Stats().
#ifndef VOUCH_ENGINE_SERVER_SERVER_STATS_H_
#define VOUCH_ENGINE_SERVER_SERVER_STATS_H_

#include <cstdint>
#include <vector>

#include "engine/server/remote_verifier.h"

namespace vouch::server {

// One more than the highest vouch.v1.ErrorCode value (asserted in io_thread.cc).
inline constexpr int kErrorCodeCount = 17;

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;      // Right now.
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t transactions_in = 0;       // Transactions in Submit frames (each got a Confirmation).
  uint64_t queries = 0;
  uint64_t account_queries = 0;       // QueryAccount requests (answered or refused).
  uint64_t pings = 0;
  uint64_t balance_reads[5] = {};     // ReadBalances answered, by vouch.v1.BalancesResult.
  uint64_t account_creations[7] = {}; // CreateAccounts entries, by vouch.v1.CreateAccountResult.
  uint64_t account_lookups[7] = {};   // LookupAccount answered, by vouch.v1.AccountRequestResult.
  uint64_t account_changes[7] = {};   // ChangeAccount answered, by vouch.v1.AccountRequestResult.
  uint64_t outcomes_routed = 0;       // Sent to the session that submitted them.
  uint64_t outcomes_unrouted = 0;     // Their session had no connection; kept for resume only.
  uint64_t outcomes_resent = 0;       // Sent again to a resuming session.
  uint64_t feed_outcomes = 0;         // Sent to Subscribe connections.
  uint64_t handoffs = 0;              // Connections moved to the I/O thread owning their session.
  uint64_t resumes = 0;
  uint64_t resume_epoch_changes = 0;  // Resumes whose Hello.epoch was another: all resent.
  uint64_t partial_frame_timeouts = 0;
  uint64_t idle_timeouts = 0;
  // accept4 failed with EMFILE/ENFILE (out of file descriptors). Each such connection is refused
  // with TOO_MANY_CONNECTIONS (counted in errors[6]) by means of a reserve descriptor.
  uint64_t accept_descriptors_exhausted = 0;
  // Listener paused for a tick: not even the reserve descriptor was left, or accept4 failed
  // with ENOBUFS/ENOMEM (the kernel short of socket memory).
  uint64_t listener_pauses = 0;
  uint64_t errors[kErrorCodeCount] = {};  // Error frames sent, by vouch.v1.ErrorCode.
  uint64_t held_answers = 0;          // Held transactions' final Confirmations sent.
  uint64_t held_answers_unrouted = 0; // Held answers whose connection was gone (resubmit/Query).
  uint64_t outcomes_lapped = 0;       // Overwritten in the window; read from the engine history.
  uint64_t outcomes_lost = 0;         // Overwritten and out of the history: sessions cut off.
  uint64_t verify_batches = 0;        // VerifyBatch frames sent to remote verifiers.
  std::vector<RemoteVerifierStats> remote_verifiers;  // In ServerOptions::remote_verifiers order.
};

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_SERVER_STATS_H_
