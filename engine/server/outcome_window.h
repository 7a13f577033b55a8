// OutcomeWindow: every outcome the engine emits, in sequence order, for the server's I/O threads
// to route to their connections, and kept for a while so a client that reconnects can be sent
// what it missed.
//
// The engine emits exactly one outcome per sequence number, in order, starting at 1, so the
// window is a ring indexed by sequence number (a SeqlockRing) plus `end`, the next sequence
// number to be written. Each reader (an I/O thread, the event log) keeps its own cursor.
//
// The writer never waits for a reader. It is the engine's reconciler, and a reconciler that
// waits on an I/O thread can deadlock with it (issue 12: an I/O thread that blocks on anything
// the reconciler must do first). It overwrites the oldest slot; a reader that finds its next
// outcome overwritten ("lapped") reads it from the engine's history instead
// (Engine::FinalOutcome), and only where that is gone too are the reader's sessions cut off
// (io_thread.h). The window is sized (--retained_outcomes) to hold what a reader needs for
// resume; an I/O thread that keeps up never gets near the writer.
//
// Thread safety: OnOutcome is called by one writer thread (the engine's reconciler). Each reader
// index is used by one reader thread (PrepareToSleep, Awake). end(), Read() and
// oldest_readable() may be called from any thread.
//
// Sleeping readers. A reader that has nothing to do blocks in epoll_wait on its eventfd. It first
// calls PrepareToSleep, which publishes "sleeping" and then re-reads end (both seq_cst); the
// writer publishes end (seq_cst) and then reads "sleeping" (seq_cst). That is Dekker's pattern:
// the seq_cst operations fall in one total order, so either the reader sees the new outcome and
// does not sleep, or the writer sees the sleeper and writes its eventfd. Only the writer that
// swaps "sleeping" back to false pays for the write(2).
#ifndef VOUCH_ENGINE_SERVER_OUTCOME_WINDOW_H_
#define VOUCH_ENGINE_SERVER_OUTCOME_WINDOW_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "engine/history/seqlock_ring.h"
#include "engine/reconcile/reconciler.h"
#include "engine/types/results.h"

namespace vouch::server {

class OutcomeWindow final : public OutcomeSink {
 public:
  // `capacity` is rounded up to a power of two. REQUIRES: readers >= 1.
  OutcomeWindow(size_t capacity, int readers);
  OutcomeWindow(const OutcomeWindow&) = delete;
  OutcomeWindow& operator=(const OutcomeWindow&) = delete;

  // Reader `reader` is woken through `eventfd` (written with 1) while it sleeps.
  // REQUIRES: before the first OnOutcome.
  void SetWakeFd(int reader, int eventfd);
  // The engine's first outcome will be `first_seq` (after recovery, the one after the last
  // journaled outcome). REQUIRES: before the first OnOutcome.
  void StartAt(Sequence first_seq);
  // Before StartAt: adds an outcome decided before a restart, so a session can still resume from
  // it. Seeded outcomes count as routed. REQUIRES: seeded in order, with no gaps.
  void Seed(const Outcome& outcome);

  // Writer thread. Never waits: overwrites the slot of outcome.seq - capacity.
  // REQUIRES: outcome.seq == end().
  void OnOutcome(const Outcome& outcome) override;

  // One past the highest sequence number written. seq_cst: see "Sleeping readers".
  Sequence end() const { return end_.load(std::memory_order_seq_cst); }
  // The outcome for `seq`, unless it was never written or has been overwritten.
  std::optional<Outcome> Read(Sequence seq) const { return ring_.Read(seq); }
  // The lowest sequence number that can still be read (a lower bound: the writer may overwrite
  // it at any moment).
  Sequence oldest_readable() const;
  size_t capacity() const { return ring_.capacity(); }

  // Reader thread: returns true if the reader may block (nothing at or past `cursor` yet).
  // Every call, whatever it returns, is followed by Awake() once the reader runs again.
  [[nodiscard]] bool PrepareToSleep(int reader, Sequence cursor);
  void Awake(int reader);

 private:
  // alignas(64): each reader writes its own flag before every sleep; sharing a line with another
  // reader's would make the two threads contend for it.
  struct alignas(64) Reader {
    std::atomic<bool> sleeping{false};
    int wake_fd = -1;  // Constant once the writer starts.
  };

  void WakeSleepers();

  SeqlockRing<Outcome> ring_;
  const int reader_count_;
  Sequence first_seq_ = 1;  // Constant once the writer starts.
  bool seeded_ = false;
  std::unique_ptr<Reader[]> readers_;
  // Written by the writer only.
  alignas(64) std::atomic<Sequence> end_{1};
};

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_OUTCOME_WINDOW_H_
