#include "tools/workload/workload.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace vouch::workload {
namespace {

constexpr CountryCode Country(const char (&code)[3]) {
  return static_cast<CountryCode>((code[0] << 8) | code[1]);
}

// Where accounts live. Impossible travel pays from one of the others.
constexpr std::array<CountryCode, 12> kHomeCountries = {
    Country("US"), Country("GB"), Country("DE"), Country("FR"), Country("NL"), Country("CA"),
    Country("JP"), Country("AU"), Country("SE"), Country("ES"), Country("IT"), Country("SG"),
};
// Sanctioned jurisdictions: never a home country.
constexpr std::array<CountryCode, 4> kBlockedCountries = {
    Country("KP"), Country("IR"), Country("SY"), Country("CU"),
};

// Normal merchants are 1..kMerchantCount; the blocked ones sit above, so they never collide.
constexpr uint64_t kMerchantCount = 100'000;
constexpr std::array<uint64_t, 8> kBlockedMerchants = {
    9'900'001, 9'900'002, 9'900'003, 9'900'004, 9'900'005, 9'900'006, 9'900'007, 9'900'008,
};
// Everyday MCCs (grocery, restaurants, fuel, misc retail, transit, electronics, pharmacy,
// telecom); a merchant keeps one. Blocked merchants are betting shops.
constexpr std::array<uint32_t, 8> kMerchantCategories = {5411, 5812, 5541, 5999,
                                                         4111, 5732, 5912, 4814};
constexpr uint32_t kBlockedMerchantCategory = 7995;

// Home devices are kHomeDeviceBase + account (accounts are below 2^32); blocked devices sit far
// above that range.
constexpr uint64_t kHomeDeviceBase = uint64_t{1} << 44;
constexpr std::array<uint64_t, 8> kBlockedDevices = {
    0xBAD0'0000'0001, 0xBAD0'0000'0002, 0xBAD0'0000'0003, 0xBAD0'0000'0004,
    0xBAD0'0000'0005, 0xBAD0'0000'0006, 0xBAD0'0000'0007, 0xBAD0'0000'0008,
};
static_assert(kHomeDeviceBase + (uint64_t{1} << 32) < kBlockedDevices[0]);

// Velocity: a 1 s window. At the demo's 50,000 tx/s over 10,000 accounts an account pays about
// 5 times a second, so 40 leaves normal traffic a wide margin while a burst still trips it.
constexpr int64_t kVelocityWindowNs = 1'000'000'000;
constexpr uint32_t kVelocityCountMax = 40;
static_assert(kBurstLength >= static_cast<int>(kVelocityCountMax) + 10,
              "a burst must be long enough to fail velocity_count");

// Normal amounts: 100 * 50^x with x the mean of two uniforms, so 100..5,000 minor units, a
// median near 700 and a thin tail towards 5,000 (a log-triangular stand-in for log-normal).
constexpr double kAmountMinMinor = 100.0;
constexpr double kAmountSpread = 50.0;

// A fixed bijective mix (the splitmix64 finalizer): per-account attributes must not depend on
// any generator's seed.
constexpr uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9;
  x ^= x >> 27;
  x *= 0x94d049bb133111eb;
  x ^= x >> 31;
  return x;
}

size_t HomeCountryIndex(uint64_t account) { return Mix(account) % kHomeCountries.size(); }

uint32_t MerchantCategory(uint64_t merchant) {
  return kMerchantCategories[Mix(merchant) % kMerchantCategories.size()];
}

absl::Status Invalid(std::string_view field, std::string_view why) {
  // std::string: this Abseil's AlphaNum does not take a std::string_view.
  return absl::InvalidArgumentError(
      absl::StrCat("workload ", std::string(field), ": ", std::string(why)));
}

bool IsShare(double share) { return share >= 0.0 && share <= 1.0; }  // False for NaN too.

}  // namespace

absl::Status WorkloadConfig::Validate() const {
  if (accounts < 2 || accounts > (uint64_t{1} << 32)) {
    return Invalid("accounts", "must be in [2, 2^32]");
  }
  if (opening_balance_minor <= 0) return Invalid("opening_balance_minor", "must be > 0");
  if (overdraft_limit_minor < 0) return Invalid("overdraft_limit_minor", "must be >= 0");
  // Keeps 3 * (balance + overdraft), the largest insufficient-funds amount, far from overflow.
  if (opening_balance_minor > 1'000'000'000'000'000 ||
      overdraft_limit_minor > 1'000'000'000'000'000) {
    return Invalid("opening_balance_minor", "and overdraft_limit_minor must be <= 10^15");
  }
  if (!IsShare(fraud_share)) return Invalid("fraud_share", "must be in [0, 1]");
  if (!IsShare(insufficient_funds_share)) {
    return Invalid("insufficient_funds_share", "must be in [0, 1]");
  }
  if (fraud_share + insufficient_funds_share > 1.0) {
    return Invalid("fraud_share", "plus insufficient_funds_share must be <= 1");
  }
  if (!IsShare(compromised_account_share)) {
    return Invalid("compromised_account_share", "must be in [0, 1]");
  }
  if (!IsSupportedCurrency(PackCurrency(currency))) {
    return Invalid("currency", absl::StrCat("'", currency, "' is not a supported currency"));
  }
  if (first_id == 0) return Invalid("first_id", "must be > 0");
  return absl::OkStatus();
}

std::string_view PatternName(Pattern pattern) {
  switch (pattern) {
    case Pattern::kNormal: return "normal";
    case Pattern::kBlockedMerchant: return "blocked_merchant";
    case Pattern::kBlockedCountry: return "blocked_country";
    case Pattern::kBlockedDevice: return "blocked_device";
    case Pattern::kImpossibleTravel: return "impossible_travel";
    case Pattern::kVelocityBurst: return "velocity_burst";
    case Pattern::kInsufficientFunds: return "insufficient_funds";
  }
  return "unknown";
}

WorkloadConfig ForProducer(const WorkloadConfig& config, int index) {
  WorkloadConfig producer = config;
  producer.seed += index;
  producer.first_id = (uint64_t(index) << 40) + 1;
  return producer;
}

std::vector<ledger::AccountSpec> Accounts(const WorkloadConfig& config) {
  assert(config.Validate().ok());
  const CurrencyCode currency = PackCurrency(config.currency);
  std::vector<ledger::AccountSpec> accounts;
  accounts.reserve(config.accounts);
  for (uint64_t id = 1; id <= config.accounts; ++id) {
    accounts.push_back({id, currency, config.opening_balance_minor, config.overdraft_limit_minor});
  }
  return accounts;
}

fraud::FraudRules DemoFraudRules() {
  fraud::FraudRules rules;
  rules.velocity_window_ns = kVelocityWindowNs;
  rules.velocity_count_max = kVelocityCountMax;
  // Off: the stream's insufficient-funds transfers are thousands of times an account's usual
  // amount, so the anomaly rule would race the ledger to fail them and, winning, put innocent
  // accounts on hold. With it off, each pattern fails in exactly one verifier.
  rules.anomaly_enabled = false;
  rules.blocked_merchants.assign(kBlockedMerchants.begin(), kBlockedMerchants.end());
  rules.blocked_countries.assign(kBlockedCountries.begin(), kBlockedCountries.end());
  rules.blocked_devices.assign(kBlockedDevices.begin(), kBlockedDevices.end());
  return rules;
}

CountryCode HomeCountry(uint64_t account) { return kHomeCountries[HomeCountryIndex(account)]; }

uint64_t HomeDevice(uint64_t account) { return kHomeDeviceBase + account; }

WorkloadGenerator::WorkloadGenerator(const WorkloadConfig& config)
    : accounts_(config.accounts),
      currency_(PackCurrency(config.currency)),
      insufficient_amount_min_minor_(2 * (config.opening_balance_minor +
                                          config.overdraft_limit_minor)),
      rng_(config.seed),
      next_id_(config.first_id) {
  assert(config.Validate().ok());
  const auto compromised = std::max<uint64_t>(
      1, static_cast<uint64_t>(static_cast<double>(accounts_) * config.compromised_account_share));
  compromised_first_ = accounts_ - std::min(compromised, accounts_) + 1;

  // Each of the five fraud patterns should be a fifth of the fraud transactions, but a burst is
  // kBurstLength transactions, so a burst starts kBurstLength times less often than a single
  // pattern: of every (4 + 1/B) pattern starts, 1/B is a burst. A start then yields
  // 5 / (4 + 1/B) transactions on average, so starts per call must be
  //   s = fraud_share * (4 + 1/B) / 5,
  // and burst continuations take c = fraud_share - s of all calls. The draw below happens only
  // on the other (1 - c) of the calls, so both probabilities are divided by (1 - c).
  const double b = kBurstLength;
  burst_start_weight_ = (1.0 / b) / (4.0 + 1.0 / b);
  const double starts = config.fraud_share * (4.0 + 1.0 / b) / 5.0;
  const double not_continuing = 1.0 - (config.fraud_share - starts);
  fraud_start_probability_ = starts / not_continuing;
  insufficient_probability_ = config.insufficient_funds_share / not_continuing;
}

Transaction WorkloadGenerator::Next() {
  Transaction txn;
  if (burst_left_ > 0) {
    --burst_left_;
    last_pattern_ = Pattern::kVelocityBurst;
    txn = Normal(burst_account_);
  } else {
    const double draw = Unit();
    if (draw < fraud_start_probability_) {
      last_pattern_ = PickFraudPattern();
      txn = Fraud(last_pattern_, RandomCompromisedAccount());
    } else if (draw < fraud_start_probability_ + insufficient_probability_) {
      last_pattern_ = Pattern::kInsufficientFunds;
      txn = InsufficientFunds();
    } else {
      last_pattern_ = Pattern::kNormal;
      txn = Normal(RandomAccount());
    }
  }
  txn.id = next_id_++;
  return txn;
}

Transaction WorkloadGenerator::Normal(uint64_t source) {
  Transaction txn;
  txn.source_account = source;
  txn.destination_account = RandomAccountOtherThan(source);
  const double x = (Unit() + Unit()) / 2.0;
  txn.amount_minor = std::llround(kAmountMinMinor * std::pow(kAmountSpread, x));
  txn.currency = currency_;
  txn.merchant_id = 1 + Below(kMerchantCount);
  txn.merchant_category = MerchantCategory(txn.merchant_id);
  txn.country = HomeCountry(source);
  txn.device_id = HomeDevice(source);
  return txn;
}

Transaction WorkloadGenerator::Fraud(Pattern pattern, uint64_t source) {
  Transaction txn = Normal(source);
  switch (pattern) {
    case Pattern::kBlockedMerchant:
      txn.merchant_id = kBlockedMerchants[Below(kBlockedMerchants.size())];
      txn.merchant_category = kBlockedMerchantCategory;
      break;
    case Pattern::kBlockedCountry:
      txn.country = kBlockedCountries[Below(kBlockedCountries.size())];
      break;
    case Pattern::kBlockedDevice:
      txn.device_id = kBlockedDevices[Below(kBlockedDevices.size())];
      break;
    case Pattern::kImpossibleTravel: {
      // Any home country but this account's: an offset in [1, n) never wraps back to it.
      const size_t n = kHomeCountries.size();
      txn.country = kHomeCountries[(HomeCountryIndex(source) + 1 + Below(n - 1)) % n];
      break;
    }
    case Pattern::kVelocityBurst:
      // This is the burst's first transaction; Next() sends the rest back to back.
      burst_account_ = source;
      burst_left_ = kBurstLength - 1;
      break;
    case Pattern::kNormal:
    case Pattern::kInsufficientFunds:
      assert(false && "not a fraud pattern");
      break;
  }
  return txn;
}

Transaction WorkloadGenerator::InsufficientFunds() {
  Transaction txn = Normal(RandomAccount());
  // Two to three times balance plus overdraft: even an account that has received far more than
  // it paid out cannot cover it.
  txn.amount_minor = insufficient_amount_min_minor_ +
                     static_cast<int64_t>(Below(insufficient_amount_min_minor_ / 2 + 1));
  return txn;
}

Pattern WorkloadGenerator::PickFraudPattern() {
  if (Unit() < burst_start_weight_) return Pattern::kVelocityBurst;
  constexpr Pattern kSingles[] = {Pattern::kBlockedMerchant, Pattern::kBlockedCountry,
                                  Pattern::kBlockedDevice, Pattern::kImpossibleTravel};
  return kSingles[Below(std::size(kSingles))];
}

uint64_t WorkloadGenerator::RandomAccount() { return 1 + Below(accounts_); }

uint64_t WorkloadGenerator::RandomCompromisedAccount() {
  return compromised_first_ + Below(accounts_ - compromised_first_ + 1);
}

uint64_t WorkloadGenerator::RandomAccountOtherThan(uint64_t account) {
  // Uniform over the other accounts: draw from n - 1 and skip over `account`.
  const uint64_t other = 1 + Below(accounts_ - 1);
  return other >= account ? other + 1 : other;
}

uint64_t WorkloadGenerator::Below(uint64_t n) {
  // Multiply-shift (Lemire) without the rejection step: the bias is below n / 2^64.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng_()) * n) >> 64);
}

double WorkloadGenerator::Unit() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

}  // namespace vouch::workload
