#include "engine/verify/verifier_stage.h"

#include <cassert>

namespace vouch {

VerifierStage::VerifierStage(VerifierId verifier, std::string_view role_name, InFlightRing* ring,
                             VerdictQueue* verdicts, const Clock* clock, int batch_max)
    : verifier_(verifier),
      role_name_(role_name),
      ring_(ring),
      verdicts_(verdicts),
      clock_(clock),
      batch_max_(batch_max) {
  assert(batch_max > 0);
}

void VerifierStage::StallFor(int64_t duration_ns) {
  // relaxed: the stage reads it on its next turn; nothing else is published with it.
  stall_until_ns_.store(clock_->NowNs() + duration_ns, std::memory_order_relaxed);
}

bool VerifierStage::SendPending() {
  if (!unsent_.has_value()) return true;
  if (!verdicts_->try_enqueue(*unsent_)) return false;
  unsent_.reset();
  return true;
}

int VerifierStage::DoWork() {
  const int64_t now_ns = clock_->NowNs();
  // relaxed: see StallFor.
  if (now_ns < stall_until_ns_.load(std::memory_order_relaxed)) return 0;
  int work = Housekeeping();
  if (!SendPending()) return work;
  int checked = 0;
  while (checked < batch_max_ && ring_->IsPublished(next_) && CanCheck()) {
    const Reason reason = Check(next_, ring_->At(next_).payload, now_ns);
    const Verdict verdict{next_, verifier_, reason == Reason::kNone, reason, now_ns};
    ++next_;
    ++checked;
    // The queue holds one verdict per live ring entry, so it is full only in a transient; keep
    // the verdict and stop rather than drop it.
    if (!verdicts_->try_enqueue(verdict)) {
      unsent_ = verdict;
      break;
    }
  }
  // A verdict queue is not a seq_cst publication, so a wake-up can be missed; the reconciler
  // then finds the verdicts when its park times out (park_max_ns), which bounds the delay.
  if (checked > 0 && downstream_ != nullptr) downstream_->Unpark();
  return work + checked;
}

int LedgerStage::Housekeeping() {
  int settled = 0;
  Settlement settlement;
  while (settled < batch_max() && settlements_->try_dequeue(settlement)) {
    if (settlement.commit) {
      ledger_->Commit(settlement.seq);
    } else {
      ledger_->Void(settlement.seq);
    }
    ++settled;
  }
  return settled;
}

}  // namespace vouch
