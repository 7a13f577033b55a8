// Conversion between the wire messages (proto/vouch.proto, package vouch.v1) and the engine's
// value types (engine/types).
//
// The hot direction does not allocate: FromProto reads a decoded message in place, and ToProto
// into a message that is reused across calls (the server keeps one per connection) writes its
// string fields into the capacity they already have. Only the first ToProto into a fresh message
// allocates its string fields.
//
// Thread safety: every function is stateless; concurrent calls are safe on distinct messages.
//
// Times: the engine keeps monotonic nanoseconds, the wire carries Unix nanoseconds. Callers
// pass the offset between the two (Engine::unix_offset_ns(), from its Clock); 0 on one
// side stays 0 on the other, because 0 means "not set" in both.
#ifndef VOUCH_ENGINE_WIRE_CONVERT_H_
#define VOUCH_ENGINE_WIRE_CONVERT_H_

#include <cstdint>

#include "engine/types/reason.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "proto/vouch.pb.h"

namespace vouch::wire {

// Fills *out from `in`, including when it fails, so the caller can still answer with out->id.
// Returns Reason::kUnknownCurrency when in.currency() is not three letters A-Z (out->currency is
// then 0), kNone otherwise. Whether the currency is one the engine settles is the engine's check.
// A country that is not two letters A-Z becomes 0 (unknown); that is not an error.
[[nodiscard]] Reason FromProto(const v1::Transaction& in, Transaction* out);

void ToProto(const Transaction& in, v1::Transaction* out);
void ToProto(const Confirmation& in, int64_t mono_to_unix_offset_ns, v1::Confirmation* out);
void ToProto(const Outcome& in, int64_t mono_to_unix_offset_ns, v1::Outcome* out);

// Enums. The wire values equal the engine's (asserted at compile time), so these are casts.
v1::Reason ToProto(Reason reason);
v1::ConfirmStatus ToProto(ConfirmStatus status);
v1::OutcomeKind ToProto(OutcomeKind kind);
v1::Verifier ToProto(VerifierId verifier);

// The reverse, for values read from a peer. proto3 enums are open, so a peer built from a newer
// vouch.proto can send values this build does not know, and *_UNSPECIFIED has no engine value:
// both return false and leave *out unchanged.
[[nodiscard]] bool FromProto(v1::Reason in, Reason* out);
[[nodiscard]] bool FromProto(v1::ConfirmStatus in, ConfirmStatus* out);
[[nodiscard]] bool FromProto(v1::OutcomeKind in, OutcomeKind* out);
[[nodiscard]] bool FromProto(v1::Verifier in, VerifierId* out);

}  // namespace vouch::wire

#endif  // VOUCH_ENGINE_WIRE_CONVERT_H_
