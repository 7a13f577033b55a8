#include "engine/wire/account_convert.h"

#include "absl/strings/str_cat.h"
#include "engine/types/transaction.h"

namespace vouch::wire {
namespace {

template <typename EngineEnum, typename WireEnum>
constexpr bool SameValue(EngineEnum engine, WireEnum wire) {
  return static_cast<int>(engine) == static_cast<int>(wire);
}

static_assert(SameValue(kAccountDebitsMustNotExceedCredits,
                        v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS));
static_assert(SameValue(kAccountCreditsMustNotExceedDebits,
                        v1::ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS));
static_assert(SameValue(CreateResult::kCreated, v1::CREATE_ACCOUNT_RESULT_CREATED));
static_assert(SameValue(CreateResult::kExists, v1::CREATE_ACCOUNT_RESULT_EXISTS));
static_assert(SameValue(CreateResult::kExistsWithDifferentFields,
                        v1::CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_FIELDS));
static_assert(SameValue(CreateResult::kInvalid, v1::CREATE_ACCOUNT_RESULT_INVALID));
static_assert(SameValue(CreateResult::kTableFull, v1::CREATE_ACCOUNT_RESULT_TABLE_FULL));
static_assert(SameValue(CreateResult::kBusy, v1::CREATE_ACCOUNT_RESULT_RETRY));
static_assert(SameValue(AccountState::kOpen, v1::ACCOUNT_STATE_OPEN));
static_assert(SameValue(AccountState::kFrozen, v1::ACCOUNT_STATE_FROZEN));
static_assert(SameValue(AccountState::kClosed, v1::ACCOUNT_STATE_CLOSED));
static_assert(SameValue(AccountChange::Kind::kCreated, v1::ACCOUNT_CHANGE_KIND_CREATED));
static_assert(SameValue(AccountChange::Kind::kFrozen, v1::ACCOUNT_CHANGE_KIND_FROZEN));
static_assert(SameValue(AccountChange::Kind::kUnfrozen, v1::ACCOUNT_CHANGE_KIND_UNFROZEN));
static_assert(SameValue(AccountChange::Kind::kClosed, v1::ACCOUNT_CHANGE_KIND_CLOSED));
static_assert(SameValue(AccountChange::Kind::kLimitsChanged,
                        v1::ACCOUNT_CHANGE_KIND_LIMITS_CHANGED));

constexpr uint32_t kKnownFlags = kAccountDebitsMustNotExceedCredits |
                                 kAccountCreditsMustNotExceedDebits;

}  // namespace

std::string FromProto(const v1::AccountLimits& in, AccountLimits* out) {
  out->transaction_minor_max = in.transaction_minor_max();
  out->daily_minor_max = in.daily_minor_max();
  out->daily_count_max = in.daily_count_max();
  if (in.transaction_minor_max() < 0) return "limits.transaction_minor_max is negative";
  if (in.daily_minor_max() < 0) return "limits.daily_minor_max is negative";
  return "";
}

std::string FromProto(const v1::Account& in, NewAccount* out) {
  out->id = in.id();
  out->currency = PackCurrency(in.currency());
  out->opening_balance_minor = in.opening_balance_minor();
  out->overdraft_limit_minor = in.overdraft_limit_minor();
  out->flags = in.flags();
  out->user_data = in.user_data();
  std::string limits_error = FromProto(in.limits(), &out->limits);
  if (in.id() == 0) return "id is 0";
  if (!IsSupportedCurrency(out->currency)) {
    return absl::StrCat("currency \"", in.currency(), "\" is not one the server settles");
  }
  if (in.opening_balance_minor() < 0) return "opening_balance_minor is negative";
  if (in.overdraft_limit_minor() < 0) return "overdraft_limit_minor is negative";
  if ((in.flags() & ~kKnownFlags) != 0) return absl::StrCat("unknown flag bits in ", in.flags());
  if (in.flags() == kKnownFlags) return "both balance flags are set";
  return limits_error;
}

void ToProto(const AccountLimits& in, v1::AccountLimits* out) {
  out->set_transaction_minor_max(in.transaction_minor_max);
  out->set_daily_minor_max(in.daily_minor_max);
  out->set_daily_count_max(in.daily_count_max);
}

void ToProto(const NewAccount& in, v1::Account* out) {
  out->set_id(in.id);
  out->set_currency(CurrencyToString(in.currency));
  out->set_opening_balance_minor(in.opening_balance_minor);
  out->set_overdraft_limit_minor(in.overdraft_limit_minor);
  out->set_flags(in.flags);
  ToProto(in.limits, out->mutable_limits());
  out->set_user_data(in.user_data);
}

v1::CreateAccountResult ToProto(CreateResult result) {
  return static_cast<v1::CreateAccountResult>(result);
}
v1::AccountState ToProto(AccountState state) { return static_cast<v1::AccountState>(state); }
v1::AccountChangeKind ToProto(AccountChange::Kind kind) {
  return static_cast<v1::AccountChangeKind>(kind);
}

}  // namespace vouch::wire
