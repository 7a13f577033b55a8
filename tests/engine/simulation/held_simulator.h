// Deterministic simulation of the held path (hybrid and sync) through the server's request
// handler, without sockets.
//
// Method: one seed chooses the policy mode, the ack policy, the outcome window's size (small, so
// the window's writer laps the handler), the verification deadline, and every step: which client
// connection submits what (new ids, resubmitted ones, large held amounts, blocked merchants),
// which engine stage is stepped next (fraud, ledger, reconcile, journal: verdicts and the journal
// race the requests in any order), when the handler routes, and how far the ManualClock moves
// (deadlines expire: held timeouts). The engine runs inline with the server's OutcomeWindow as its
// sink, and a RequestHandler answers three named sessions. After every step the simulator checks
// what each connection was sent against its model:
//   1. every transaction gets exactly one Confirmation, in submission order per connection, and
//      the handler never waits for verification (Submit returns at once);
//   2. a held transaction's Confirmation is final (CONFIRMED or REJECTED, held set) and is sent
//      only once its outcome record is kept (journal outcomes_acked_below past its seq);
//   3. a held transaction gets no Outcome frame, every other CONFIRMED one exactly one;
//   4. a resubmitted id gets BUSY duplicate_in_flight or its original answer, never another one;
//   5. at the end every held result is counted in held_results, none as a late failure, and no
//      account was put on hold by a held failure.
// This file is separate from simulator.cc (the engine simulation); both share only the seed
// convention and DefaultWorkDir.
#ifndef VOUCH_TESTS_ENGINE_SIMULATION_HELD_SIMULATOR_H_
#define VOUCH_TESTS_ENGINE_SIMULATION_HELD_SIMULATOR_H_

#include <cstdint>
#include <string>

namespace vouch::simulation {

struct HeldSeedResult {
  uint64_t seed = 0;
  bool ok = true;
  std::string failure;  // The broken invariant, the step, the details.
  uint64_t steps = 0;
  uint64_t held_answers = 0;   // Held transactions' final Confirmations seen.
  uint64_t outcomes = 0;       // Outcome frames seen.
  uint64_t duplicates = 0;     // Resubmissions answered.
  uint64_t lapped = 0;         // Outcomes the handler read from the engine history.
};

// Journals (ack written/durable) go in <work_dir>/held-seed-<seed>/, removed after the run.
HeldSeedResult RunHeldSeed(uint64_t seed, const std::string& work_dir);

}  // namespace vouch::simulation

#endif  // VOUCH_TESTS_ENGINE_SIMULATION_HELD_SIMULATOR_H_
