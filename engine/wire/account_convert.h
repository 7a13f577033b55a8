// Conversion between the wire's account messages (proto/vouch.proto, "Accounts") and the
// engine's account types (engine/accounts/account.h).
//
// Account requests are operator-grade calls, not the hot path: these functions may allocate.
//
// Thread safety: stateless; concurrent calls are safe on distinct messages.
#ifndef VOUCH_ENGINE_WIRE_ACCOUNT_CONVERT_H_
#define VOUCH_ENGINE_WIRE_ACCOUNT_CONVERT_H_

#include <string>

#include "engine/accounts/account.h"
#include "proto/vouch.pb.h"

namespace vouch::wire {

// Fills *out from `in`. Returns "" when the fields are ones the engine may accept, otherwise
// why not, in words for CreateAccountResult INVALID's message: a currency that is not a
// settled ISO 4217 code, a negative amount or limit, unknown flag bits, both flags. The engine
// checks the rest (it answers kInvalid for anything else it refuses).
std::string FromProto(const v1::Account& in, NewAccount* out);
// Returns "" or why the limits are refused (a negative value).
std::string FromProto(const v1::AccountLimits& in, AccountLimits* out);

void ToProto(const NewAccount& in, v1::Account* out);
void ToProto(const AccountLimits& in, v1::AccountLimits* out);
v1::CreateAccountResult ToProto(CreateResult result);
v1::AccountState ToProto(AccountState state);
v1::AccountChangeKind ToProto(AccountChange::Kind kind);

}  // namespace vouch::wire

#endif  // VOUCH_ENGINE_WIRE_ACCOUNT_CONVERT_H_
