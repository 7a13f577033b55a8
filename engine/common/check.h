// VOUCH_CHECK: an assertion that stays on in every build, `-c opt` included.
//
// `assert` is for programmer errors whose only cost is a confusing failure later; NDEBUG removes
// it. VOUCH_CHECK is for invariants whose failure would lose or move money, or hand out an
// answer that contradicts one already given (a sequence number reused, a posting out of balance,
// an outcome decided twice). Continuing past such a failure turns a bug into a wrong ledger, so
// the process stops at once with the condition, the file and the line, as TigerBeetle's
// assertions do. The cost is one predictable branch; keep the condition cheap.
//
// Not for operating errors (bad input, a full disk, a peer that misbehaves): those are
// absl::Status results for the caller to act on.
#ifndef VOUCH_ENGINE_COMMON_CHECK_H_
#define VOUCH_ENGINE_COMMON_CHECK_H_

#include "absl/base/optimization.h"

namespace vouch::internal {
// Prints "vouch: check failed at FILE:LINE: CONDITION (MESSAGE)" to stderr, hands the same
// message to the log sink (engine/common/logger.h) at kFatal if one is installed, and aborts.
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const char* message);
}  // namespace vouch::internal

// VOUCH_CHECK(condition, "what it protects"): the message is a string literal.
#define VOUCH_CHECK(condition, message)                                          \
  do {                                                                           \
    if (ABSL_PREDICT_FALSE(!(condition))) {                                      \
      ::vouch::internal::CheckFailed(__FILE__, __LINE__, #condition, message);   \
    }                                                                            \
  } while (false)

#endif  // VOUCH_ENGINE_COMMON_CHECK_H_
