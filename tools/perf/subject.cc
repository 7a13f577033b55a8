#include "tools/perf/subject.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/baseline/baseline_engine.h"
#include "engine/engine.h"
#include "engine/options.h"

namespace vouch::perf {
namespace {

// The vouch engine with its default options, in one policy mode, polled for outcomes.
//
// Stage times come from Engine::Query, asked on the polling thread as each sampled outcome
// arrives: the engine exposes verdict times only through its history, which keeps the last
// history_capacity (2^20) sequence numbers, so a query after a multi-million-transaction step
// would find the early samples overwritten. A per-stage latency hook in the engine (the
// verdict's decided_ns carried in the Outcome) would make this sampling unnecessary.
class VouchSubject final : public Subject {
 public:
  VouchSubject(std::unique_ptr<Engine> engine, size_t poll_batch_max)
      : engine_(std::move(engine)), batch_(poll_batch_max) {}

  absl::Status Start() override { return engine_->Start(); }
  Confirmation Submit(const Transaction& txn) override { return engine_->Submit(txn); }

  size_t Poll(PolledOutcome* out, size_t max, uint64_t sample_every) override {
    const size_t n = engine_->PollOutcomes(batch_.data(), std::min(max, batch_.size()));
    for (size_t i = 0; i < n; ++i) {
      out[i] = {batch_[i], 0, 0};
      if (batch_[i].id % sample_every == 0) FillVerdictTimes(&out[i]);
    }
    return n;
  }

  uint64_t confirmed() const override { return engine_->Stats().confirmed; }

  StopReport Stop() override {
    const DrainReport drain = engine_->Stop();
    return {drain.drained, drain.confirmed, drain.not_drained};
  }

 private:
  void FillVerdictTimes(PolledOutcome* polled) const {
    const std::optional<TransactionStatus> status = engine_->Query(polled->outcome.id);
    if (!status.has_value()) return;
    for (const StateChange& change : status->history) {
      // A verdict after the outcome (kLateVerdict) is not a stage time of this outcome.
      if (change.kind == StateKind::kFraudVerdict) polled->fraud_decided_ns = change.at_ns;
      if (change.kind == StateKind::kLedgerVerdict) polled->ledger_decided_ns = change.at_ns;
    }
  }

  std::unique_ptr<Engine> engine_;
  std::vector<Outcome> batch_;  // Poll's buffer, sized once.
};

class BaselineSubject final : public Subject {
 public:
  BaselineSubject(std::unique_ptr<baseline::BaselineEngine> engine, size_t poll_batch_max)
      : engine_(std::move(engine)), batch_(poll_batch_max) {}

  absl::Status Start() override {
    engine_->Start();
    return absl::OkStatus();
  }
  Confirmation Submit(const Transaction& txn) override { return engine_->Submit(txn); }

  size_t Poll(PolledOutcome* out, size_t max, uint64_t sample_every) override {
    const size_t n = engine_->PollOutcomes(batch_.data(), std::min(max, batch_.size()));
    for (size_t i = 0; i < n; ++i) {
      const baseline::BaselineOutcome& polled = batch_[i];
      const bool sampled = polled.outcome.id % sample_every == 0;
      out[i] = {polled.outcome, sampled ? polled.fraud_decided_ns : 0,
                sampled ? polled.ledger_decided_ns : 0};
    }
    return n;
  }

  uint64_t confirmed() const override { return engine_->Stats().confirmed; }

  StopReport Stop() override {
    const baseline::BaselineDrainReport drain = engine_->Stop();
    return {drain.drained, drain.confirmed, drain.not_drained};
  }

 private:
  std::unique_ptr<baseline::BaselineEngine> engine_;
  std::vector<baseline::BaselineOutcome> batch_;
};

}  // namespace

std::string_view DesignName(Design design) {
  switch (design) {
    case Design::kAsync: return "async";
    case Design::kHybrid: return "hybrid";
    case Design::kSync: return "sync";
    case Design::kBaseline: return "baseline";
  }
  return "?";
}

absl::StatusOr<Design> ParseDesign(std::string_view name) {
  for (int i = 0; i < kDesignCount; ++i) {
    if (DesignName(static_cast<Design>(i)) == name) return static_cast<Design>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown design '", absl::string_view(name.data(), name.size()),
                   "' (async|hybrid|sync|baseline)"));
}

// An embedder's verifier that does the least a real check does: reads the transaction.
class ReadsTheTransaction final : public Verifier {
 public:
  uint16_t Check(const Transaction& txn, int64_t) override {
    return txn.amount_minor < 0 ? 1 : 0;  // Never: amounts are positive.
  }
};

absl::StatusOr<std::unique_ptr<Subject>> MakeSubject(Design design,
                                                     const workload::WorkloadConfig& workload,
                                                     size_t poll_batch_max, int verifiers) {
  if (design == Design::kBaseline) {
    baseline::BaselineOptions options;
    options.accounts = workload::Accounts(workload);
    options.fraud_rules = workload::DemoFraudRules();
    absl::StatusOr<std::unique_ptr<baseline::BaselineEngine>> engine =
        baseline::BaselineEngine::Create(std::move(options));
    if (!engine.ok()) return engine.status();
    return std::make_unique<BaselineSubject>(*std::move(engine), poll_batch_max);
  }
  Options options;
  options.accounts = workload::Accounts(workload);
  options.fraud_rules = workload::DemoFraudRules();
  // Throughput runs go past the default table (2^22 ids) within seconds; with a 24 h retention
  // they would measure BUSY idempotency_retention. The baseline keeps a plain window too.
  options.idempotency_retention_ns = 0;
  options.policy.mode = design == Design::kAsync    ? PolicyMode::kAsync
                        : design == Design::kHybrid ? PolicyMode::kHybrid
                                                    : PolicyMode::kSync;
  for (int i = 0; i < verifiers - kBuiltinVerifierCount; ++i) {
    options.verifiers.push_back({absl::StrCat("check_", i), VerifierPolicy::kRequired, false, -1,
                                 std::make_shared<ReadsTheTransaction>()});
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(std::move(options));
  if (!engine.ok()) return engine.status();
  return std::make_unique<VouchSubject>(*std::move(engine), poll_batch_max);
}

}  // namespace vouch::perf
