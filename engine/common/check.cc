#include "engine/common/check.h"

#include <cstdio>
#include <cstdlib>

#include "engine/common/logger.h"

namespace vouch::internal {
namespace {
// Set while this thread is telling the sink of a failed check: a sink that fails a check of its
// own then only gets the standard-error line, instead of recursing.
thread_local bool telling_sink = false;
}  // namespace

// Standard error first, then the sink, then abort. A failed check is never silent: the line
// reaches standard error even if the installed sink crashes, drops it or buffers it. The message
// is formatted into a stack buffer because the heap may be what the check caught broken.
void CheckFailed(const char* file, int line, const char* condition, const char* message) {
  char text[1024];
  std::snprintf(text, sizeof(text), "check failed at %s:%d: %s (%s)", file, line, condition,
                message);
  std::fprintf(stderr, "vouch: %s\n", text);
  std::fflush(stderr);
  if (!LogSinkIsDefault() && !telling_sink) {
    telling_sink = true;
    Log(LogSeverity::kFatal, text);
  }
  std::abort();
}

}  // namespace vouch::internal
