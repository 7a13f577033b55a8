// Lane: one connection of a vouch-load phase. It owns the Client, remembers the batches sent on
// it that still await Confirmations, the confirmed transactions that still await Outcomes, and
// tallies everything that comes back.
//
// Measurement: transaction ids are first_id + i, and transaction i is due at
// start_ns + i / rate (Schedule). A Confirmation's round trip is measured from that intended
// time, so a stall anywhere (the sender, the network, the server) shows up in full, however many
// transactions it held back (no coordinated omission). It is also measured from the moment its
// batch was written. Confirm-to-outcome runs from the receipt of the Confirmation to the receipt
// of the Outcome.
//
// Checks: Confirmations must come in the order sent (each is matched to the id expected next);
// every CONFIRMED transaction, and every one the hybrid policy held whatever its answer, must
// get exactly one Outcome (vouch.proto, Session). An Outcome nobody awaits (a second one, or one
// before its Confirmation) is counted as unexpected. A duplicate Confirmation is the stored
// answer to an earlier Submit, whose Outcome went to that Submit, so none is awaited.
//
// Thread safety: the sender thread calls ExpectBatch/ForgetNewestBatch; the Client's reader
// thread calls the handlers; any thread may call Snapshot. One mutex guards all of it: it is
// taken once per batch and once per answer, uncontended but for the once-a-second Snapshot.
#ifndef VOUCH_TOOLS_LOAD_LANE_H_
#define VOUCH_TOOLS_LOAD_LANE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"
#include "engine/metrics/histogram.h"
#include "proto/vouch.pb.h"

namespace vouch::load {

// When each transaction of a phase is due.
struct Schedule {
  int64_t start_ns = 0;  // Monotonic (Client::NowNs()).
  double rate = 0;       // Transactions per second, over all lanes.
  uint64_t first_id = 0;

  int64_t IntendedNs(uint64_t id) const {
    return start_ns + static_cast<int64_t>(static_cast<double>(id - first_id) * 1e9 / rate);
  }
};

inline constexpr int kStatusCount = v1::ConfirmStatus_ARRAYSIZE;
inline constexpr int kKindCount = v1::OutcomeKind_ARRAYSIZE;
inline constexpr int kReasonCount = v1::Reason_ARRAYSIZE;
inline constexpr size_t kErrorMessagesMax = 8;  // Kept per tally; the rest are only counted.
// Every kConfirmedSampleEvery-th confirmed id is kept, the newest kConfirmedSampleMax per lane,
// so that the overload check can Query confirmed ids that are still inside the server's
// idempotency table (every id of the last 24 h by default, up to 2^22 ids).
inline constexpr uint64_t kConfirmedSampleEvery = 1024;
inline constexpr size_t kConfirmedSampleMax = 64;

// What came back on one lane, or (merged) on all of them.
struct Tally {
  uint64_t sent = 0;       // Transactions written.
  uint64_t unsent = 0;     // Transactions whose SubmitAsync failed (the connection had ended).
  uint64_t answered = 0;   // Confirmations received, any status.
  uint64_t confirmed = 0;  // CONFIRMED and not duplicate: each is due an Outcome.
  // (So is every held one, REJECTED included; held counts those.)
  uint64_t duplicates = 0;
  uint64_t held = 0;
  uint64_t outcomes = 0;  // Received and awaited.
  uint64_t unexpected_outcomes = 0;
  uint64_t unanswered = 0;        // Sent, no Confirmation yet (or ever, at the end).
  uint64_t awaiting_outcomes = 0;  // Due an Outcome, none yet; at the end: missing.
  uint64_t errors = 0;  // Server Errors, lost connections, protocol violations, failed sends.
  std::vector<std::string> error_messages;  // The first kErrorMessagesMax.
  std::vector<uint64_t> confirmed_sample;    // See kConfirmedSampleEvery; in no order.
  std::array<std::array<uint64_t, kReasonCount>, kStatusCount> confirm_counts{};
  std::array<std::array<uint64_t, kReasonCount>, kKindCount> outcome_counts{};
  LatencyHistogram confirm_from_intended;
  LatencyHistogram confirm_from_send;
  LatencyHistogram confirm_to_outcome;
  int64_t last_answer_ns = 0;  // Receipt of the latest Confirmation; 0 if none.

  void Merge(const Tally& other);
  void AddError(std::string message);
};

class Lane {
 public:
  Lane() = default;
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  // Connects, with this lane's handlers. REQUIRES: called once, before anything else.
  absl::Status Connect(const client::ClientOptions& options);
  client::Client& client() { return *client_; }
  // Closes the connection (joins its reader thread); the tallies stay.
  void Close() { client_->Close(); }

  // Sender thread: the schedule, once known (the connections are up). REQUIRES: before the
  // first ExpectBatch.
  void Begin(const Schedule& schedule) ABSL_LOCKS_EXCLUDED(mu_);
  // Every CONFIRMED id is also stored here (relaxed), for a probe that wants a recent one.
  // REQUIRES: before Begin; `latest` outlives the lane's connection.
  void PublishConfirmedTo(std::atomic<uint64_t>* latest) { latest_confirmed_ = latest; }
  // Sender thread: before SubmitAsync of transactions first_id.. first_id + count - 1.
  void ExpectBatch(uint64_t first_id, uint32_t count, int64_t sent_ns) ABSL_LOCKS_EXCLUDED(mu_);
  // Sender thread: SubmitAsync of the newest expected batch failed.
  void ForgetNewestBatch(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);

  // Nothing sent is unanswered and nothing confirmed lacks its Outcome (or the connection has
  // ended, so nothing more will come).
  bool Settled() const ABSL_LOCKS_EXCLUDED(mu_);
  Tally Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Batch {
    uint64_t next_id;  // The id whose Confirmation is due next.
    uint64_t end_id;   // One past the last id.
    int64_t sent_ns;
  };

  void OnConfirmation(const v1::Confirmation& confirmation, int64_t received_ns)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnOutcome(const v1::Outcome& outcome, int64_t received_ns) ABSL_LOCKS_EXCLUDED(mu_);
  void OnError(const v1::Error& error) ABSL_LOCKS_EXCLUDED(mu_);
  void OnDisconnect(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);
  void CountConfirmation(const v1::Confirmation& confirmation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<client::Client> client_;  // Set by Connect, before any other call.
  std::atomic<uint64_t>* latest_confirmed_ = nullptr;  // Optional; set before Begin.

  mutable absl::Mutex mu_;
  Schedule schedule_ ABSL_GUARDED_BY(mu_);
  std::deque<Batch> in_flight_ ABSL_GUARDED_BY(mu_);
  // Transactions due an Outcome: id -> receipt of the Confirmation.
  absl::flat_hash_map<uint64_t, int64_t> awaited_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;              // The connection is over.
  bool send_failed_ ABSL_GUARDED_BY(mu_) = false;
  Tally tally_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vouch::load

#endif  // VOUCH_TOOLS_LOAD_LANE_H_
