// Risk-exposure caps (Options::risk): how much may be confirmed but not yet verified, per account
// and in total (engine/ingest/risk_table.h enforces them). A cap of 0 is no cap.
#ifndef VOUCH_ENGINE_TYPES_RISK_LIMITS_H_
#define VOUCH_ENGINE_TYPES_RISK_LIMITS_H_

#include <cstdint>

namespace vouch {

struct RiskLimits {
  uint64_t account_count_max = 0;  // Unverified transactions from one account.
  int64_t account_minor_max = 0;   // Their amount.
  uint64_t total_count_max = 0;    // Unverified transactions in the engine.
  int64_t total_minor_max = 0;     // Their amount, per currency.

  bool any() const {
    return account_count_max || account_minor_max || total_count_max || total_minor_max;
  }
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_RISK_LIMITS_H_
