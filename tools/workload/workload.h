// Workload: a deterministic stream of realistic transactions, for the demo, benchmarks and tests.
//
// Normal traffic is small transfers (100..5,000 minor units, skewed towards the low end as card
// payments are) between random accounts. Each account pays from its home country and home device,
// both fixed functions of the account id, so several generators with different seeds agree on
// them. A share of the stream carries a fraud pattern that DemoFraudRules() catches, and a share
// asks for more money than any account holds, which the ledger refuses.
//
// Fraud comes only from a small set of compromised accounts (the highest account ids). A fraud
// failure puts its source account on hold; spread over every account, a 2% fraud share would
// hold most of the bank within seconds and the stream would turn into ingest rejections. A
// compromised account also pays normally, as its owner does, so impossible travel has a recent
// home-country payment to compare against.
//
// Thread safety: a WorkloadGenerator belongs to one thread. Give each producer thread its own,
// with its own seed and a first_id range that does not overlap the others'.
//
// Determinism: the stream is a function of the config alone. The generator draws only the raw
// output of std::mt19937_64, whose sequence the standard fixes, and never uses the std::
// distributions, whose algorithms differ between standard libraries.
#ifndef VOUCH_TOOLS_WORKLOAD_WORKLOAD_H_
#define VOUCH_TOOLS_WORKLOAD_WORKLOAD_H_

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "engine/types/transaction.h"
#include "verifiers/fraud/fraud_rules.h"
#include "engine/ledger/ledger.h"

namespace vouch::workload {

struct WorkloadConfig {
  uint64_t seed = 1;
  size_t accounts = 10'000;  // Account ids 1..accounts.
  int64_t opening_balance_minor = 1'000'000;
  int64_t overdraft_limit_minor = 0;
  double fraud_share = 0.02;                // Of all transactions.
  double insufficient_funds_share = 0.01;   // Of all transactions.
  double compromised_account_share = 0.02;  // Of the accounts: the sources of fraud (at least 1).
  std::string currency = "USD";
  uint64_t first_id = 1;  // Transaction ids are first_id, first_id + 1, ...

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// What a generated transaction is meant to exercise.
enum class Pattern : uint8_t {
  kNormal = 0,
  kBlockedMerchant,
  kBlockedCountry,
  kBlockedDevice,
  kImpossibleTravel,   // Paid from a country other than the account's home.
  kVelocityBurst,      // One of kBurstLength back-to-back payments from one account.
  kInsufficientFunds,  // More than twice the opening balance plus overdraft.
};
inline constexpr int kPatternCount = 7;
std::string_view PatternName(Pattern pattern);

// A velocity burst is this many consecutive transactions from one compromised account; more
// than DemoFraudRules().velocity_count_max, so its tail fails velocity_count.
inline constexpr int kBurstLength = 50;

// The stream of producer `index` among several: its own seed and a disjoint id range (2^40 ids
// each), so producers never submit the same id.
WorkloadConfig ForProducer(const WorkloadConfig& config, int index);

// The opened accounts: ids 1..config.accounts, all with the opening balance and overdraft limit.
// REQUIRES: config.Validate().ok().
std::vector<ledger::AccountSpec> Accounts(const WorkloadConfig& config);

// Fraud rules matched to the generator: its blocked merchants, countries and devices, a
// velocity window that normal traffic stays well inside, and no amount-anomaly rule (see .cc).
fraud::FraudRules DemoFraudRules();

// The account's home country and device, the same for every generator.
CountryCode HomeCountry(uint64_t account);
uint64_t HomeDevice(uint64_t account);

class WorkloadGenerator {
 public:
  // REQUIRES: config.Validate().ok().
  explicit WorkloadGenerator(const WorkloadConfig& config);

  // The next transaction, with a fresh id. Never allocates.
  Transaction Next();
  // The pattern of the transaction the last Next() returned (kNormal before the first).
  Pattern last_pattern() const { return last_pattern_; }

 private:
  Transaction Normal(uint64_t source);
  Transaction Fraud(Pattern pattern, uint64_t source);
  Transaction InsufficientFunds();
  Pattern PickFraudPattern();
  uint64_t RandomAccount();                           // Any account.
  uint64_t RandomCompromisedAccount();                // A source of fraud.
  uint64_t RandomAccountOtherThan(uint64_t account);  // A destination.
  uint64_t Below(uint64_t n);                         // Uniform in [0, n).
  double Unit();                                      // Uniform in [0, 1).

  // Constant after construction.
  uint64_t accounts_;
  uint64_t compromised_first_;  // Accounts compromised_first_..accounts_ are compromised.
  CurrencyCode currency_;
  int64_t insufficient_amount_min_minor_;
  // Per-call probabilities outside a burst, scaled up so that the shares hold over all calls
  // (burst calls included); see the constructor.
  double fraud_start_probability_;
  double insufficient_probability_;
  double burst_start_weight_;  // Chance that a started fraud pattern is a burst.

  // Changed by Next().
  std::mt19937_64 rng_;
  uint64_t next_id_;
  uint64_t burst_account_ = 0;
  int burst_left_ = 0;
  Pattern last_pattern_ = Pattern::kNormal;
};

}  // namespace vouch::workload

#endif  // VOUCH_TOOLS_WORKLOAD_WORKLOAD_H_
