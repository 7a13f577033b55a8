// One phase of vouch-load: an open-loop load at a fixed offered rate over several connections,
// then a wait for the remaining answers and outcomes.
//
// Threads: the caller's thread is the only sender. It paces every connection in turn (batch k
// goes to connection k mod N), sleeping until the next batch is due when that is more than
// kSpinBelowNs away and yielding otherwise, and prints the progress line between batches. Each
// connection's Client reader thread tallies what comes back (see lane.h). That is 1 + N threads,
// few enough to leave the server the cores on a small machine.
//
// Open loop: batch k leaves when its last transaction is due, whatever happened to the batches
// before it. A sender held up (by the server's back-pressure, by the scheduler) does not skip
// anything: it sends its backlog at once, and every transaction is still measured from its
// intended time. A BUSY answer is counted, not retried: retrying would add load the schedule
// did not offer.
#ifndef VOUCH_TOOLS_LOAD_PHASE_H_
#define VOUCH_TOOLS_LOAD_PHASE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tools/load/bad_peers.h"
#include "tools/load/lane.h"
#include "tools/workload/workload.h"

namespace vouch::load {

struct LoadConfig {
  std::string host = "127.0.0.1";
  int port = 7411;
  std::string auth_token;
  double rate = 1'000;  // Offered transactions per second, over all connections.
  int duration_s = 10;
  int connections = 4;
  int batch = 1;  // Transactions per Submit frame.
  workload::WorkloadConfig workload;  // first_id: the first phase's first id.
  int outcome_wait_s = 5;
  bool quiet = false;  // No progress line.
  bool isolation_check = false;
  int bad_peers = 4;
  // Transactions per second from each non-reader bad peer. By default what one healthy
  // connection offers: its harm is that it does not read, not its volume.
  double bad_peer_rate = 250;
  // Optional: every lane stores each CONFIRMED id here (Lane::PublishConfirmedTo).
  std::atomic<uint64_t>* latest_confirmed = nullptr;

  uint64_t scheduled() const { return static_cast<uint64_t>(rate * duration_s + 0.5); }
};

struct PhaseSpec {
  std::string name;
  uint64_t first_id = 0;
  int first_session = 0;  // Connection i is the session vouch-load-<pid>-<first_session + i>.
};

struct PhaseReport {
  std::string name;
  uint64_t scheduled = 0;
  int64_t answer_span_ns = 0;  // From the first transaction's due time to the last answer.
  int64_t send_span_ns = 0;    // From the first transaction's due time to the last send.
  Tally tally;                 // Every connection's, merged.
  bool with_bad_peers = false;
  BadPeerReport bad_peers{};  // When with_bad_peers.

  // Confirmations per second over answer_span_ns.
  double achieved_rate() const;
  // Transactions per second the sender really wrote, over send_span_ns: below the offered rate
  // when this machine cannot generate the load it was asked for.
  double sent_rate() const;
  // No missing or unexpected outcome, nothing unanswered, no error.
  bool passed() const;
};

// Connects, runs the load, waits up to config.outcome_wait_s for the rest, closes. An error
// only if a connection could not be opened; everything after is in the report.
absl::StatusOr<PhaseReport> RunPhase(const LoadConfig& config, const PhaseSpec& spec);

}  // namespace vouch::load

#endif  // VOUCH_TOOLS_LOAD_PHASE_H_
