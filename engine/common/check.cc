#include "engine/common/check.h"

#include <cstdio>
#include <cstdlib>

namespace vouch::internal {

void CheckFailed(const char* file, int line, const char* condition, const char* message) {
  std::fprintf(stderr, "vouch: check failed at %s:%d: %s (%s)\n", file, line, condition, message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace vouch::internal
