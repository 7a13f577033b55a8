// The bank workload over TCP, shared by the bank tests (bank_test.cc): writer clients that move
// money between a few accounts, reader clients that audit every balance read, and a model of
// what the clients were told, from which the final balances must follow.
//
// Thread safety: Model is guarded by its mutex and may be used from every client thread and
// handler. Bank's Run() is called by one thread; it starts and joins the client threads, which
// share the model and the atomics below.
#ifndef VOUCH_TESTS_TOOLS_BANK_BANK_H_
#define VOUCH_TESTS_TOOLS_BANK_BANK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/vouch.pb.h"

namespace vouch::bank {

struct BankConfig {
  int accounts = 16;                      // Ids 1..accounts, USD.
  int64_t opening_balance_minor = 100'000;
  int64_t overdraft_limit_minor = 50'000;
  int writers = 4;
  int readers = 2;
  absl::Duration duration = absl::Seconds(8);   // Of the transfer phase.
  absl::Duration settle_timeout = absl::Seconds(30);  // For every outcome to arrive after it.
  uint64_t seed = 1;
  int64_t total_minor() const { return accounts * opening_balance_minor; }
};

// The answers the clients got, by transaction id.
class Model {
 public:
  struct Transfer {
    uint64_t from = 0;
    uint64_t to = 0;
    int64_t amount_minor = 0;
  };

  void Sent(uint64_t id, const Transfer& transfer) ABSL_LOCKS_EXCLUDED(mu_);
  void Confirmed(uint64_t id, uint64_t seq) ABSL_LOCKS_EXCLUDED(mu_);
  void Rejected() ABSL_LOCKS_EXCLUDED(mu_);
  void Decided(const v1::Outcome& outcome) ABSL_LOCKS_EXCLUDED(mu_);

  // Every confirmed transfer has an outcome.
  bool Settled() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<uint64_t> ConfirmedIds() const ABSL_LOCKS_EXCLUDED(mu_);
  // The balances that the VERIFIED outcomes imply, indexed by account id (0 unused).
  std::vector<int64_t> ExpectedBalances(const BankConfig& config) const ABSL_LOCKS_EXCLUDED(mu_);
  // Empty when every confirmed transfer got exactly one outcome and every outcome belongs to a
  // confirmed transfer; otherwise what is wrong.
  std::string ExactlyOnceProblems() const ABSL_LOCKS_EXCLUDED(mu_);

  struct Counts {
    uint64_t sent = 0, confirmed = 0, rejected = 0;
    uint64_t outcomes[4] = {};  // By OutcomeKind.
    uint64_t reversed = 0;
    uint64_t insufficient_funds = 0;
  };
  Counts counts() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Transfer> sent_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, uint64_t> confirmed_ ABSL_GUARDED_BY(mu_);  // id -> seq.
  absl::flat_hash_map<uint64_t, v1::OutcomeKind> outcomes_ ABSL_GUARDED_BY(mu_);
  uint64_t second_outcomes_ ABSL_GUARDED_BY(mu_) = 0;
  Counts counts_ ABSL_GUARDED_BY(mu_);
};

// Audits balance reads. Every violation is counted and the first one described.
class Auditor {
 public:
  explicit Auditor(const BankConfig& config) : config_(config) {}
  // Checks one OK read: all accounts present, sum + clearing == the initial total, every balance
  // at or above -overdraft. Returns false on a violation.
  bool Check(const v1::Balances& balances) ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t violations() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string first_violation() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const BankConfig config_;
  mutable absl::Mutex mu_;
  uint64_t violations_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_violation_ ABSL_GUARDED_BY(mu_);
};

// What a run did.
struct RunReport {
  Model::Counts counts;
  uint64_t reads = 0;          // OK reads, each audited.
  uint64_t reads_retried = 0;  // BUSY / TIMEOUT / UNAVAILABLE answers.
  uint64_t reconnects = 0;
  uint64_t violations = 0;
  std::string first_violation;
  bool settled = false;             // Every confirmed transfer got its outcome in time.
  std::string exactly_once_problems;
  bool final_read = false;          // A read with clearing 0 came after settling.
  int64_t final_clearing_minor = -1;
  std::string final_balance_problems;  // Empty when the balances match the outcomes.
  std::string Summary() const;
};

// Runs the workload against the server at *port (read on every (re)connect, so a restarted
// server may move). `during` runs on the calling thread while the writers submit, and gets a
// stop time; it injects the faults (stalls, kills) and returns before then.
class Bank {
 public:
  Bank(const BankConfig& config, const std::atomic<int>* port);
  RunReport Run(const std::function<void(absl::Time end)>& during);
  Model& model() { return model_; }
  Auditor& auditor() { return auditor_; }

  // Any thread: counted OK reads; read_hook runs after each (e.g. to count reads in a stall).
  std::function<void()> read_hook;

 private:
  void Writer(int index, absl::Time end);
  void Reader(int index);
  void FinalCheck(RunReport* report);

  const BankConfig config_;
  const std::atomic<int>* const port_;
  Model model_;
  Auditor auditor_;
  // relaxed (all): counters and a stop flag that publishes no data; joins order the rest.
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> reads_retried_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<int> submitting_{0};  // Writers still in their transfer phase.
};

}  // namespace vouch::bank

#endif  // VOUCH_TESTS_TOOLS_BANK_BANK_H_
