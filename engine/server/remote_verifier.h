// RemoteVerifier: one of the server's remote verifiers (ServerOptions::remote_verifiers), a
// verifier that runs in another process and speaks proto/vouch.proto ("Remote verifiers").
//
// It is two things at once. To the engine it is an AsyncVerifier: the verifier's stage thread
// hands it each confirmed transaction (Begin), and it answers through the engine's VerdictSink.
// To the server's I/O threads it is the hub the verifier connections of its name share: a
// connection takes requests (Take) while its window has room, gives verdicts back (Answer), and
// when it closes (Detach) the requests it held unanswered go back to be taken by the next
// connection, before newer ones.
//
//   stage thread --Begin--> [ requests, by seq ] --Take--> verifier connections (I/O threads)
//                                                  <-Answer-- verdicts --> engine VerdictSink
//
// Requests live in a ring of `capacity` slots indexed by seq (capacity is the engine's in-flight
// capacity, a power of two). A slot is reused only for a seq `capacity` later, which the engine
// can confirm only once the earlier one has retired: so a reused slot never held a transaction
// that is still undecided. A request whose deadline has passed is not sent (its outcome was
// decided without it). Nothing allocates after construction: the ring, the list of requests
// handed back and the verdicts waiting for room in the engine's queue are all sized at
// construction, and a connection's window bounds what it holds.
//
// Delivery is at least once. A request handed back after a connection closed is marked
// redelivered; the engine keeps the first verdict per seq and ignores (and counts) the rest.
//
// Thread safety: every public call may come from any thread; one mutex guards all state. Begin
// (the stage thread, once per transaction), Take (each I/O thread with a verifier connection,
// once per turn), Answer (per verdict) and Detach (per closed connection) hold it briefly;
// Detach scans the ring once (a disconnect is rare). The waker is called with the mutex held
// and must not call back (IoThread::Wake writes an eventfd).
#ifndef VOUCH_ENGINE_SERVER_REMOTE_VERIFIER_H_
#define VOUCH_ENGINE_SERVER_REMOTE_VERIFIER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/metrics/histogram.h"
#include "engine/types/transaction.h"
#include "engine/verify/verifier.h"

namespace vouch::server {

// What a remote verifier counts (Server::Stats; vouch_remote_verifier_* metrics).
struct RemoteVerifierStats {
  std::string name;
  uint64_t connections = 0;       // Verifier connections attached right now.
  uint64_t requests_sent = 0;     // VerifyRequests sent, redelivered ones included.
  uint64_t redelivered = 0;       // Sent again after the connection that held them closed.
  uint64_t expired = 0;           // Never sent: the deadline passed first (no connection in time).
  uint64_t verdicts = 0;          // Verdicts received.
  uint64_t verdicts_unmatched = 0;  // For a seq not outstanding (a repeat, or after a handback).
  uint64_t verdicts_dropped = 0;  // The engine's answer queue and the retry list were both full.
  LatencyHistogram::ExportCounts round_trip;  // Request sent -> its verdict received.
};

class RemoteVerifier final : public AsyncVerifier {
 public:
  // What Take hands a connection.
  struct Request {
    uint64_t seq = 0;
    Transaction txn;
    int64_t confirmed_ns = 0;  // Engine (monotonic) time.
    bool redelivered = false;
  };

  // `capacity`: a power of two, at least the engine's in-flight capacity. `deadline_ns`: the
  // engine's verification deadline (a request older than that is not sent).
  RemoteVerifier(std::string name, size_t capacity, int64_t deadline_ns);
  RemoteVerifier(const RemoteVerifier&) = delete;
  RemoteVerifier& operator=(const RemoteVerifier&) = delete;

  const std::string& name() const { return name_; }

  // AsyncVerifier: the stage thread's hand-off, in seq order. Never blocks for long (the mutex).
  void Begin(uint64_t seq, const Transaction& txn, int64_t confirmed_ns,
             VerdictSink& sink) override;

  // Called once, before the engine starts: wakes an I/O thread (by index) that may have a
  // connection waiting for requests.
  void SetWaker(std::function<void(int thread)> waker);

  // A verifier connection said VerifierHello. `connection` is unique per server (its serial),
  // `thread` its I/O thread, `window` the most requests it may hold unanswered (>= 1).
  void Attach(uint64_t connection, int thread, uint32_t window);
  // Appends to *out up to `max` requests for `connection` (and as many as its window has room
  // for): those handed back by a closed connection first, oldest first, then new ones in seq
  // order. Skips what expired by `now_ns`. Returns how many it appended. When it runs out of
  // requests with room left, the next Begin wakes the connection's thread.
  size_t Take(uint64_t connection, size_t max, int64_t now_ns, std::vector<Request>* out);
  // A verdict from `connection` (0 passes; else the failure code). Always passed on to the
  // engine, which keeps the first verdict per seq. Frees a place in the window of the
  // connection that held the request, if one did.
  void Answer(uint64_t connection, uint64_t seq, uint16_t code, int64_t now_ns);
  // The connection closed: what it held unanswered goes back to be taken again.
  void Detach(uint64_t connection);

  RemoteVerifierStats Stats() const;

 private:
  struct Slot {
    uint64_t seq = 0;  // 0: never used.
    Transaction txn;
    int64_t confirmed_ns = 0;
    int64_t sent_ns = 0;
    uint64_t owner = 0;  // The connection holding it unanswered; 0: none.
    bool answered = false;
    bool handed_back = false;  // Its owner closed: the next Take sends it as redelivered.
  };
  struct Attached {
    uint64_t connection = 0;
    int thread = 0;
    uint32_t window = 0;
    uint32_t outstanding = 0;
  };
  struct PendingVerdict {
    uint64_t seq = 0;
    uint16_t code = 0;
  };

  Attached* Find(uint64_t connection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Clears the slot's owner, freeing its place in that connection's window.
  void Release(Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Give(Slot& slot, Attached& to, int64_t now_ns, bool redelivered,
            std::vector<Request>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Passes verdicts the engine's queue refused earlier on to it again.
  void RetryPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forward(uint64_t seq, uint16_t code) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  const uint64_t mask_;
  const int64_t deadline_ns_;
  std::function<void(int)> waker_;  // Set before the engine starts; constant after.

  mutable absl::Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);  // capacity slots, by seq & mask_.
  uint64_t next_unsent_ ABSL_GUARDED_BY(mu_) = 0;  // Every seq below was taken or skipped.
  uint64_t newest_ ABSL_GUARDED_BY(mu_) = 0;       // The highest seq begun.
  // Seqs handed back by closed connections, oldest first from handed_back_head_.
  std::vector<uint64_t> handed_back_ ABSL_GUARDED_BY(mu_);
  size_t handed_back_head_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Attached> attached_ ABSL_GUARDED_BY(mu_);
  // A connection ran out of requests with room left: the next Begin wakes the threads.
  bool wake_armed_ ABSL_GUARDED_BY(mu_) = false;
  VerdictSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;  // The engine's; set by the first Begin.
  std::vector<PendingVerdict> pending_ ABSL_GUARDED_BY(mu_);  // Refused by a full sink.
  RemoteVerifierStats stats_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram round_trip_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_REMOTE_VERIFIER_H_
