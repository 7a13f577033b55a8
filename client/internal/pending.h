// The requests a Client has sent and not yet had answered, one FIFO per kind of answer.
//
// The server answers each kind in the order the requests came, so the answer at hand always
// belongs to the front of its FIFO. A Submit of n transactions is one request due n
// Confirmations; a Query or Ping is due one answer.
//
// Thread safety: a PendingFifo is guarded by its Client's mutex. A Waiter is shared by the
// blocking caller and the reader thread: the reader writes `result` once and then notifies;
// Notify/WaitForNotification order that write before the caller's read. A caller that gave up
// (timeout) no longer reads it, and the shared_ptr keeps it alive for the late answer.
#ifndef VOUCH_CLIENT_INTERNAL_PENDING_H_
#define VOUCH_CLIENT_INTERNAL_PENDING_H_

#include <cassert>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"

namespace vouch::client::internal {

template <typename Reply>
struct Waiter {
  absl::Notification done;
  absl::StatusOr<Reply> result;  // Written once, before done.Notify().

  void Resolve(absl::StatusOr<Reply> value) {
    result = std::move(value);
    done.Notify();
  }
};

template <typename Reply>
struct PendingRequest {
  uint32_t answers_left = 0;              // Answers still due; > 0 while queued.
  std::shared_ptr<Waiter<Reply>> waiter;  // Null: the answers are events (an async call).
};

template <typename Reply>
class PendingFifo {
 public:
  bool empty() const { return requests_.empty(); }

  void Push(PendingRequest<Reply> request) {
    assert(request.answers_left > 0);
    requests_.push_back(std::move(request));
  }
  // Takes back the newest request; its frame was never written.
  void PopBack() { requests_.pop_back(); }

  // Counts one answer against the oldest request; returns its waiter (null for an async
  // request). REQUIRES: !empty().
  std::shared_ptr<Waiter<Reply>> Answer() {
    assert(!requests_.empty());
    PendingRequest<Reply>& front = requests_.front();
    assert(front.waiter == nullptr || front.answers_left == 1);  // Blocking calls ask for one.
    std::shared_ptr<Waiter<Reply>> waiter = std::move(front.waiter);
    if (--front.answers_left == 0) requests_.pop_front();
    return waiter;
  }

  // Empties the FIFO; returns the waiters, to be failed outside the lock.
  std::vector<std::shared_ptr<Waiter<Reply>>> TakeWaiters() {
    std::vector<std::shared_ptr<Waiter<Reply>>> waiters;
    for (PendingRequest<Reply>& request : requests_) {
      if (request.waiter != nullptr) waiters.push_back(std::move(request.waiter));
    }
    requests_.clear();
    return waiters;
  }

 private:
  std::deque<PendingRequest<Reply>> requests_;
};

}  // namespace vouch::client::internal

#endif  // VOUCH_CLIENT_INTERNAL_PENDING_H_
