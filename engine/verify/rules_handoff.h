// RulesHandoff: a rule reload of the stateful verifier (the fraud rules), from the caller to its
// stage and to the journal.
//
// The rules a reload brings judge every transaction from a sequence number F on, and the journal
// must say so at a place where a replay (recovery, the snapshot shadow) switches rules at
// exactly F: before the outcome of F. Outcomes are journaled by the reconciler in sequence
// order, and one can be decided (a ledger failure, a timeout) before the fraud stage has judged
// its transaction, so F cannot simply be "where the fraud stage is". Protocol:
//  1. The caller posts the rules and their text under the mutex and sets `posted` (seq_cst).
//  2. The fraud stage, at the start of its next turn (stalled or not), sees `posted`, reads
//     `journal_claim` (seq_cst) and picks F = max(its next sequence number, journal_claim): no
//     transaction from F on has been judged, and no outcome from F on has been journaled. It
//     keeps the rules to apply just before it judges F, and records F (`decided`).
//  3. The reconciler, each turn before it journals outcomes, stores in `journal_claim` (seq_cst)
//     the end of what it will journal this turn, then loads `posted` (seq_cst). While a reload is
//     posted and not yet decided it journals nothing; once decided, it queues the rules record
//     (at F) to the journal ahead of the turn's outcomes, completes the reload and clears
//     `posted`. The seq_cst pair is a Dekker handshake: either the reconciler sees `posted` and
//     waits, or the fraud stage's F is at least the claim of every outcome the reconciler
//     journaled without seeing it.
// Without a journal the reconciler completes the reload the same way and records nothing.
//
// Thread safety: the atomics as above; every other field under `mu`.
#ifndef VOUCH_ENGINE_VERIFY_RULES_HANDOFF_H_
#define VOUCH_ENGINE_VERIFY_RULES_HANDOFF_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/types/results.h"

namespace vouch {

struct RulesHandoff {
  std::atomic<bool> posted{false};
  std::atomic<Sequence> journal_claim{0};

  absl::Mutex mu;
  uint64_t posted_generation ABSL_GUARDED_BY(mu) = 0;
  // The rules' text: the stage applies it (StatefulVerifier::ApplyRules), the reconciler
  // journals it. Posted and not `decided`: the stage has not taken it yet.
  std::string text ABSL_GUARDED_BY(mu);
  bool decided ABSL_GUARDED_BY(mu) = false;
  Sequence from ABSL_GUARDED_BY(mu) = 0;  // F, once decided.
  uint64_t done_generation ABSL_GUARDED_BY(mu) = 0;  // Reloads the reconciler completed.
  Sequence done_from ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_VERIFY_RULES_HANDOFF_H_
