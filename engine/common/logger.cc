#include "engine/common/logger.h"

#include <atomic>
#include <cstdio>

namespace vouch {
namespace {

// nullptr: the default, standard error. Constant-initialized, so a Log() from another static's
// constructor finds it ready.
std::atomic<const LogSink*> installed_sink{nullptr};

// Memory ordering: SetLogSink stores with release and Log loads with acquire, so the thread that
// calls a sink sees the LogSink's fields (and what its context points to) as written before it
// was installed. On x86 both are plain moves.
const LogSink* LoadSink() { return installed_sink.load(std::memory_order_acquire); }

}  // namespace

void SetLogSink(const LogSink* sink) { installed_sink.store(sink, std::memory_order_release); }

void Log(LogSeverity severity, std::string_view message) {
  if (const LogSink* sink = LoadSink(); sink != nullptr) {
    sink->write(severity, message, sink->context);
    return;
  }
  // One call, so concurrent messages do not interleave (stdio locks the stream for each call).
  std::fprintf(stderr, "vouch: %.*s\n", static_cast<int>(message.size()), message.data());
}

namespace internal {
bool LogSinkIsDefault() { return LoadSink() == nullptr; }
}  // namespace internal

}  // namespace vouch
