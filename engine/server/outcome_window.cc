#include "engine/server/outcome_window.h"

#include <unistd.h>

#include <cassert>

#include "engine/common/check.h"

namespace vouch::server {

OutcomeWindow::OutcomeWindow(size_t capacity, int readers)
    : ring_(capacity), reader_count_(readers), readers_(new Reader[readers]) {
  assert(readers >= 1);
}

void OutcomeWindow::SetWakeFd(int reader, int eventfd) { readers_[reader].wake_fd = eventfd; }

void OutcomeWindow::Seed(const Outcome& outcome) {
  // relaxed: before the writer and the readers run.
  assert(!seeded_ || outcome.seq == end_.load(std::memory_order_relaxed));
  if (!seeded_) first_seq_ = outcome.seq;
  seeded_ = true;
  ring_.Write(outcome);
  StartAt(outcome.seq + 1);
}

void OutcomeWindow::StartAt(Sequence first_seq) {
  // relaxed: before the writer and the readers run.
  if (!seeded_) first_seq_ = first_seq;
  end_.store(first_seq, std::memory_order_relaxed);
}

void OutcomeWindow::OnOutcome(const Outcome& outcome) {
  // relaxed: end_ is written by this thread only.
  const Sequence seq = end_.load(std::memory_order_relaxed);
  // Out of order, a client would be routed another transaction's outcome.
  VOUCH_CHECK(outcome.seq == seq, "the engine emits every sequence number once, in order");
  // The slot for seq last held seq - capacity; a reader still behind it reads that one from the
  // engine's history (see the header). The seqlock makes a torn read impossible.
  ring_.Write(outcome);
  // seq_cst: see "Sleeping readers" in the header.
  end_.store(seq + 1, std::memory_order_seq_cst);
  WakeSleepers();
}

void OutcomeWindow::WakeSleepers() {
  for (int i = 0; i < reader_count_; ++i) {
    Reader& reader = readers_[i];
    // seq_cst (load and exchange): see "Sleeping readers" in the header.
    if (reader.sleeping.load(std::memory_order_seq_cst) &&
        reader.sleeping.exchange(false, std::memory_order_seq_cst) && reader.wake_fd >= 0) {
      const uint64_t one = 1;
      // An eventfd write only fails if the counter would overflow, i.e. it is already signalled.
      (void)!write(reader.wake_fd, &one, sizeof(one));
    }
  }
}

Sequence OutcomeWindow::oldest_readable() const {
  const Sequence end = this->end();
  const Sequence oldest = end > ring_.capacity() ? end - ring_.capacity() : 1;
  return oldest > first_seq_ ? oldest : first_seq_;  // Older ones belong to a previous run.
}

bool OutcomeWindow::PrepareToSleep(int reader, Sequence cursor) {
  // seq_cst (store, then end()'s load): see "Sleeping readers" in the header.
  readers_[reader].sleeping.store(true, std::memory_order_seq_cst);
  return end() <= cursor;
}

void OutcomeWindow::Awake(int reader) {
  // relaxed: only this reader sets the flag; a writer's exchange that raced it at worst costs
  // one spurious eventfd wake-up.
  readers_[reader].sleeping.store(false, std::memory_order_relaxed);
}

}  // namespace vouch::server
