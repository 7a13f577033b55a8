// Subject: one design under test for one vouch-bench step, behind the calls the harness makes.
// Designs: the vouch engine in each policy mode (async, hybrid, sync) and the baseline design
// (bench/baseline), all built over the same accounts and fraud rules.
//
// Thread safety: Submit from any number of producer threads; Start, Poll, confirmed and Stop
// from the harness's main thread only.
#ifndef VOUCH_TOOLS_PERF_SUBJECT_H_
#define VOUCH_TOOLS_PERF_SUBJECT_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "tools/workload/workload.h"

namespace vouch::perf {

enum class Design : uint8_t { kAsync = 0, kHybrid = 1, kSync = 2, kBaseline = 3 };
inline constexpr int kDesignCount = 4;
std::string_view DesignName(Design design);  // async | hybrid | sync | baseline
absl::StatusOr<Design> ParseDesign(std::string_view name);

// An outcome and, for a sampled transaction, when each verdict was decided (0 when not
// sampled or when the verdict came after the outcome).
struct PolledOutcome {
  Outcome outcome;
  int64_t fraud_decided_ns = 0;
  int64_t ledger_decided_ns = 0;
};

struct StopReport {
  bool drained = false;
  uint64_t confirmed = 0;
  uint64_t not_drained = 0;
};

class Subject {
 public:
  virtual ~Subject() = default;
  virtual absl::Status Start() = 0;
  virtual Confirmation Submit(const Transaction& txn) = 0;
  // Moves up to `max` outcomes into `out`; fills the verdict times of every transaction whose
  // id is a multiple of `sample_every`.
  virtual size_t Poll(PolledOutcome* out, size_t max, uint64_t sample_every) = 0;
  // Sequence numbers handed out so far.
  virtual uint64_t confirmed() const = 0;
  virtual StopReport Stop() = 0;
};

// A started-ready subject over workload::Accounts(workload) and workload::DemoFraudRules().
// `poll_batch_max` bounds Poll's `max`.
// `verifiers`: in all, as StepConfig::verifiers (the baseline ignores it).
absl::StatusOr<std::unique_ptr<Subject>> MakeSubject(Design design,
                                                     const workload::WorkloadConfig& workload,
                                                     size_t poll_batch_max, int verifiers = 2);

}  // namespace vouch::perf

#endif  // VOUCH_TOOLS_PERF_SUBJECT_H_
