// The reconciler's join, per transaction: take the fraud verdict and the ledger verdict off their
// queues, decide the outcome, write the history, emit the outcome, queue the settlement and free
// the ring entry.
//
// Method. The Reconciler is driven through its ports on the benchmark thread, with no stage
// threads. An inline Engine's Step would also run the fraud rules and the ledger's reservation
// for every transaction, which cost more than the join itself (see docs/BENCHMARKS.md), and
// would measure them, not the reconciler. Here the verdicts are made up and queued outside the
// timed region, as the verifier threads would queue them, and so is the ingest side's Claim +
// Publish of the ring entries. One iteration is one batch of kBatch transactions (the engine's
// default stage_batch_max): set up the batch, then time the DoWork turns that retire it (one,
// unless a queue runs short), then drain the settlements (the ledger stage's work) and the poll
// queue (the embedder's), untimed. Time/op is per batch; ns_per_txn is the figure to read.
// Sizes are the engine's defaults except the history ring (1 << 16 records, ~10 MB, past L2:
// the default 1 << 20 would take longer to build than the benchmark runs), so history writes
// miss the near caches as they do in the engine.
//
// Cases: verified (both pass; the ledger reservation is committed), fraud_failed (LATE_FAILED:
// the source account is put on hold and the reservation reversed), ledger_failed (LATE_FAILED,
// nothing reserved), each emitting to an OutcomeSink (a counter) or to the poll queue (a
// moodycamel::ConcurrentQueue, as Engine::PollOutcomes reads it).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "benchmark/benchmark.h"
#include "engine/history/history_ring.h"
#include "engine/accounts/account_directory.h"
#include "engine/reconcile/reconciler.h"
#include "engine/ring/in_flight_ring.h"
#include "engine/types/clock.h"
#include "engine/verify/queues.h"

namespace vouch {
namespace {

constexpr int kBatch = 256;                        // Options::stage_batch_max default.
constexpr size_t kInFlightCapacity = 1 << 16;      // Options::in_flight_capacity default.
constexpr size_t kHistoryCapacity = 1 << 16;       // See the method note.
constexpr size_t kOutcomeQueueCapacity = 1 << 16;  // Options::outcome_queue_capacity default.
constexpr uint64_t kAccounts = 1000;               // Source accounts cycled (the hold table's).
constexpr int64_t kDeadlineNs = 10'000'000'000;    // Far beyond the run: nothing times out.

enum class Mix { kVerified, kFraudFailed, kLedgerFailed };
enum class Emit { kSink, kPollQueue };

class CountingSink final : public OutcomeSink {
 public:
  void OnOutcome(const Outcome& outcome) override {
    last_seq = outcome.seq;
    ++count;
  }
  Sequence last_seq = 0;
  uint64_t count = 0;
};

// Everything the reconciler is wired to, sized as the engine sizes it.
// Thread safety: one thread (the benchmark's) plays every stage.
class Pipeline {
 public:
  explicit Pipeline(Emit emit)
      : ring_(kInFlightCapacity),
        fraud_verdicts_(kInFlightCapacity),
        ledger_verdicts_(kInFlightCapacity),
        settlements_(kInFlightCapacity),
        accounts_(kAccounts),
        history_(kHistoryCapacity, HistoryRecordBytes(kBuiltinVerifierCount)) {
    if (emit == Emit::kPollQueue) {
      // As EngineImpl::Init: one explicit producer, so try_enqueue never allocates.
      poll_queue_ = std::make_unique<OutcomeQueue>(kOutcomeQueueCapacity, 1, 0);
    }
    ReconcilerPorts ports;
    ports.ring = &ring_;
    ports.verdicts[VerifierSlot(VerifierId::kFraud)] = &fraud_verdicts_;
    ports.verdicts[VerifierSlot(VerifierId::kLedger)] = &ledger_verdicts_;
    ports.settlements = &settlements_;
    for (uint64_t id = 1; id <= kAccounts; ++id) {
      accounts_.Insert({.id = id, .currency = PackCurrency("USD")}, 0);
    }
    ports.accounts = &accounts_;
    ports.history = &history_;
    ports.sink = emit == Emit::kSink ? &sink_ : nullptr;
    ports.poll_queue = poll_queue_.get();
    ports.clock = clock_;
    reconciler_ = std::make_unique<Reconciler>(ports, kBatch);
  }

  // What ingest and the two verifier threads would have done for the next kBatch transactions.
  void Prepare(Mix mix) {
    const int64_t now_ns = clock_->NowNs();
    for (int i = 0; i < kBatch; ++i) {
      Sequence seq = 0;
      InFlightEntry* entry = ring_.Claim(&seq);
      if (entry == nullptr) std::abort();  // Each batch is retired before the next.
      Transaction txn;
      txn.id = seq;
      txn.source_account = 1 + seq % kAccounts;
      txn.destination_account = 1 + (seq + 1) % kAccounts;
      txn.amount_minor = 100;
      entry->payload = {txn, now_ns, now_ns + kDeadlineNs, false, 0};
      entry->reconcile = {};
      entry->reconcile.record.seq = seq;
      entry->reconcile.record.id = txn.id;
      ring_.Publish(entry, seq);
      const bool fraud_pass = mix != Mix::kFraudFailed;
      const bool ledger_pass = mix != Mix::kLedgerFailed;
      Enqueue(fraud_verdicts_, {seq, VerifierId::kFraud, fraud_pass,
                                fraud_pass ? Reason::kNone : Reason::kBlockedMerchant, now_ns});
      Enqueue(ledger_verdicts_, {seq, VerifierId::kLedger, ledger_pass,
                                 ledger_pass ? Reason::kNone : Reason::kInsufficientFunds, now_ns});
    }
    batch_end_ = ring_.claimed() + 1;
  }

  // The timed part: reconciler turns until the batch is retired.
  void Reconcile() {
    while (reconciler_->retired_below() < batch_end_) reconciler_->DoWork();
  }

  // The ledger stage's and the embedder's share, so the queues never fill.
  void Drain() {
    Settlement settlement;
    while (settlements_.try_dequeue(settlement)) {}
    if (poll_queue_ != nullptr) {
      Outcome outcomes[kBatch];
      while (poll_queue_->try_dequeue_bulk(outcomes, kBatch) > 0) {}
    } else if (sink_.last_seq + 1 != batch_end_) {
      std::abort();  // Every outcome of the batch was emitted, in order.
    }
  }

 private:
  static void Enqueue(VerdictQueue& queue, const Verdict& verdict) {
    if (!queue.try_enqueue(verdict)) std::abort();  // Sized for the whole ring.
  }

  const Clock* const clock_ = MonotonicClock::Default();
  InFlightRing ring_;
  VerdictQueue fraud_verdicts_;
  VerdictQueue ledger_verdicts_;
  SettlementQueue settlements_;
  AccountDirectory accounts_;
  HistoryRing history_;
  CountingSink sink_;
  std::unique_ptr<OutcomeQueue> poll_queue_;
  std::unique_ptr<Reconciler> reconciler_;
  Sequence batch_end_ = 1;  // One past the last sequence of the batch being reconciled.
};

void BM_ReconcileJoin(benchmark::State& state, Mix mix, Emit emit) {
  Pipeline pipeline(emit);
  double reconcile_ns = 0;
  for (auto _ : state) {
    pipeline.Prepare(mix);
    const auto start = std::chrono::steady_clock::now();
    pipeline.Reconcile();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(elapsed.count());
    reconcile_ns += elapsed.count() * 1e9;
    pipeline.Drain();
  }
  const double transactions = static_cast<double>(state.iterations()) * kBatch;
  state.SetItemsProcessed(static_cast<int64_t>(transactions));
  state.counters["ns_per_txn"] = reconcile_ns / transactions;
}
BENCHMARK_CAPTURE(BM_ReconcileJoin, verified_sink, Mix::kVerified, Emit::kSink)->UseManualTime();
BENCHMARK_CAPTURE(BM_ReconcileJoin, verified_poll_queue, Mix::kVerified, Emit::kPollQueue)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_ReconcileJoin, fraud_failed_sink, Mix::kFraudFailed, Emit::kSink)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_ReconcileJoin, ledger_failed_sink, Mix::kLedgerFailed, Emit::kSink)
    ->UseManualTime();

}  // namespace
}  // namespace vouch
