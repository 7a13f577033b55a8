// Embedding vouch with a verifier of your own: a deny list of destination accounts, run next
// to the built-in fraud and ledger verifiers. A transfer to a denied account is confirmed at
// once (async policy) and then fails verification: LATE_FAILED by "deny_list", with the deny
// list's own reason code. Exits 0 when both outcomes are as expected.
#include <cstdio>
#include <memory>
#include <thread>

#include "engine/engine.h"
#include "engine/verify/verifier.h"

namespace {

constexpr uint16_t kDeniedDestination = 1;  // This verifier's own reason code.

class DenyList final : public vouch::Verifier {
 public:
  uint16_t Check(const vouch::Transaction& txn, int64_t /*confirmed_ns*/) override {
    return txn.destination_account == 3 ? kDeniedDestination : 0;
  }
};

vouch::Transaction Transfer(uint64_t id, uint64_t to) {
  vouch::Transaction txn;
  txn.id = id;
  txn.source_account = 1;
  txn.destination_account = to;
  txn.amount_minor = 2'500;  // 25.00
  txn.currency = vouch::PackCurrency("USD");
  return txn;
}

}  // namespace

int main() {
  vouch::Options options;
  for (uint64_t id = 1; id <= 3; ++id) {
    options.accounts.push_back({id, vouch::PackCurrency("USD"), 100'000, 0});
  }
  options.verifiers.push_back({"deny_list", vouch::VerifierPolicy::kRequired,
                               /*hold_account_on_failure=*/false, /*cpu=*/-1,
                               std::make_shared<DenyList>()});
  auto engine = vouch::Engine::Create(std::move(options));
  if (!engine.ok() || !(*engine)->Start().ok()) return 1;

  for (const vouch::Transaction& txn : {Transfer(1, 2), Transfer(2, 3)}) {
    const vouch::Confirmation answer = (*engine)->Submit(txn);
    std::printf("transaction %llu: %s\n", static_cast<unsigned long long>(txn.id),
                std::string(vouch::ConfirmStatusName(answer.status)).c_str());
  }
  int verified = 0, denied = 0;
  for (int waited_ms = 0; verified + denied < 2 && waited_ms < 5'000; ++waited_ms) {
    vouch::Outcome outcome;
    while ((*engine)->PollOutcomes(&outcome, 1) == 1) {
      std::printf("outcome %llu: %s by %s, code %u\n",
                  static_cast<unsigned long long>(outcome.id),
                  std::string(vouch::OutcomeKindName(outcome.kind)).c_str(),
                  std::string((*engine)->VerifierName(outcome.verifier)).c_str(),
                  outcome.verifier_code);
      verified += outcome.id == 1 && outcome.kind == vouch::OutcomeKind::kVerified;
      denied += outcome.id == 2 && outcome.kind == vouch::OutcomeKind::kLateFailed &&
                outcome.verifier_code == kDeniedDestination;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const bool drained = (*engine)->Stop().drained;
  return drained && verified == 1 && denied == 1 ? 0 : 1;
}
