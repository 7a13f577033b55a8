#include "engine/server/remote_verifier.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace vouch::server {

RemoteVerifier::RemoteVerifier(std::string name, size_t capacity, int64_t deadline_ns)
    : name_(std::move(name)), mask_(capacity - 1), deadline_ns_(deadline_ns) {
  assert(capacity > 0 && (capacity & (capacity - 1)) == 0 && "capacity is a power of two");
  absl::MutexLock lock(&mu_);
  slots_.resize(capacity);
  handed_back_.reserve(capacity);
  pending_.reserve(capacity);
  stats_.name = name_;
}

void RemoteVerifier::SetWaker(std::function<void(int thread)> waker) {
  absl::MutexLock lock(&mu_);
  waker_ = std::move(waker);
}

void RemoteVerifier::Begin(uint64_t seq, const Transaction& txn, int64_t confirmed_ns,
                           VerdictSink& sink) {
  absl::MutexLock lock(&mu_);
  sink_ = &sink;
  Slot& slot = slots_[seq & mask_];
  // The seq `capacity` earlier has retired in the engine (see the header): forget it, freeing
  // the place it held in a window if its verifier never answered.
  if (slot.owner != 0) Release(slot);
  slot = Slot{};
  slot.seq = seq;
  slot.txn = txn;
  slot.confirmed_ns = confirmed_ns;
  if (next_unsent_ == 0 || seq < next_unsent_) next_unsent_ = seq;  // The first, or a restart.
  newest_ = std::max(newest_, seq);
  if (wake_armed_ && waker_) {
    wake_armed_ = false;
    for (const Attached& attached : attached_) {
      if (attached.outstanding < attached.window) waker_(attached.thread);
    }
  }
}

void RemoteVerifier::Attach(uint64_t connection, int thread, uint32_t window) {
  assert(window >= 1);
  absl::MutexLock lock(&mu_);
  attached_.push_back({connection, thread, window, 0});
  stats_.connections = attached_.size();
}

RemoteVerifier::Attached* RemoteVerifier::Find(uint64_t connection) {
  for (Attached& attached : attached_) {
    if (attached.connection == connection) return &attached;
  }
  return nullptr;
}

void RemoteVerifier::Release(Slot& slot) {
  if (Attached* owner = Find(slot.owner)) {
    assert(owner->outstanding > 0);
    --owner->outstanding;
  }
  slot.owner = 0;
}

void RemoteVerifier::Give(Slot& slot, Attached& to, int64_t now_ns, bool redelivered,
                          std::vector<Request>* out) {
  slot.owner = to.connection;
  slot.sent_ns = now_ns;
  slot.handed_back = false;
  ++to.outstanding;
  ++stats_.requests_sent;
  if (redelivered) ++stats_.redelivered;
  out->push_back({slot.seq, slot.txn, slot.confirmed_ns, redelivered});
}

size_t RemoteVerifier::Take(uint64_t connection, size_t max, int64_t now_ns,
                            std::vector<Request>* out) {
  absl::MutexLock lock(&mu_);
  RetryPending();
  Attached* to = Find(connection);
  if (to == nullptr) return 0;
  size_t taken = 0;
  auto room = [&] { return taken < max && to->outstanding < to->window; };
  auto expired = [&](const Slot& slot) { return now_ns - slot.confirmed_ns >= deadline_ns_; };
  // Handed back by a closed connection: still undecided, and older than anything unsent.
  while (room() && handed_back_head_ < handed_back_.size()) {
    const uint64_t seq = handed_back_[handed_back_head_++];
    Slot& slot = slots_[seq & mask_];
    if (slot.seq != seq || !slot.handed_back || slot.answered || slot.owner != 0) continue;
    slot.handed_back = false;
    if (expired(slot)) {
      ++stats_.expired;
      continue;
    }
    Give(slot, *to, now_ns, /*redelivered=*/true, out);
    ++taken;
  }
  if (handed_back_head_ == handed_back_.size()) {
    handed_back_.clear();  // Keeps the capacity.
    handed_back_head_ = 0;
  }
  while (room() && next_unsent_ != 0 && next_unsent_ <= newest_) {
    const uint64_t seq = next_unsent_++;
    Slot& slot = slots_[seq & mask_];
    if (slot.seq != seq) continue;  // Not handed to this verifier (decided before its stage).
    if (expired(slot)) {
      ++stats_.expired;
      continue;
    }
    Give(slot, *to, now_ns, /*redelivered=*/false, out);
    ++taken;
  }
  if (room()) wake_armed_ = true;  // Out of requests with room left: wake it on the next Begin.
  return taken;
}

void RemoteVerifier::Answer(uint64_t connection, uint64_t seq, uint16_t code, int64_t now_ns) {
  absl::MutexLock lock(&mu_);
  ++stats_.verdicts;
  Slot& slot = slots_[seq & mask_];
  if (slot.seq == seq && !slot.answered && slot.owner != 0) {
    if (slot.owner == connection) round_trip_.Record(now_ns - slot.sent_ns);
    Release(slot);  // Also when another connection held it: its later verdict is a repeat.
    slot.answered = true;
  } else {
    ++stats_.verdicts_unmatched;  // The engine still records it (first verdict, or late).
    if (slot.seq == seq) slot.answered = true;
  }
  RetryPending();
  Forward(seq, code);
}

void RemoteVerifier::Forward(uint64_t seq, uint16_t code) {
  if (sink_ == nullptr) return;  // Nothing was ever begun: a verdict for a seq never handed out.
  if (pending_.empty() && sink_->Answer(seq, code)) return;
  if (pending_.size() < pending_.capacity()) {
    pending_.push_back({seq, code});  // Keeps its order behind the ones refused before it.
  } else {
    ++stats_.verdicts_dropped;  // The deadline decides it.
  }
}

void RemoteVerifier::RetryPending() {
  size_t done = 0;
  while (done < pending_.size() && sink_->Answer(pending_[done].seq, pending_[done].code)) {
    ++done;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(done));
}

void RemoteVerifier::Detach(uint64_t connection) {
  absl::MutexLock lock(&mu_);
  const auto it = std::find_if(attached_.begin(), attached_.end(),
                               [&](const Attached& a) { return a.connection == connection; });
  if (it == attached_.end()) return;
  attached_.erase(it);
  stats_.connections = attached_.size();
  // Compact what is left of the list first, so that the handed back seqs fit its capacity.
  handed_back_.erase(handed_back_.begin(),
                     handed_back_.begin() + static_cast<ptrdiff_t>(handed_back_head_));
  handed_back_head_ = 0;
  const size_t first_new = handed_back_.size();
  for (Slot& slot : slots_) {
    if (slot.owner != connection) continue;
    slot.owner = 0;
    slot.handed_back = true;
    if (handed_back_.size() < handed_back_.capacity()) handed_back_.push_back(slot.seq);
  }
  std::sort(handed_back_.begin() + static_cast<ptrdiff_t>(first_new), handed_back_.end());
  std::inplace_merge(handed_back_.begin(),
                     handed_back_.begin() + static_cast<ptrdiff_t>(first_new),
                     handed_back_.end());
  if (!handed_back_.empty()) wake_armed_ = false;
  if (!handed_back_.empty() && waker_) {
    for (const Attached& attached : attached_) {
      if (attached.outstanding < attached.window) waker_(attached.thread);
    }
  }
}

RemoteVerifierStats RemoteVerifier::Stats() const {
  absl::MutexLock lock(&mu_);
  RemoteVerifierStats stats = stats_;
  stats.round_trip = round_trip_.ReadExportCounts();
  return stats;
}

}  // namespace vouch::server
