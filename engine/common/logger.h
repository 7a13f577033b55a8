// The library's log: where vouch's few messages go, instead of straight to standard error.
//
// The engine says something only when an operator must know of a problem off the confirm path:
// a snapshot failed (tried again), snapshots stopped, the journal failed, a VOUCH_CHECK is about
// to abort. By default each message is written to standard error as "vouch: <message>\n". An
// embedder with its own log installs a sink, once, before it creates an engine:
//
//   void ToMyLog(vouch::LogSeverity severity, std::string_view message, void* context) {
//     static_cast<MyLog*>(context)->Write(severity, message);
//   }
//   static const vouch::LogSink kSink{&ToMyLog, &my_log};
//   vouch::SetLogSink(&kSink);
//
// One sink for the whole process, not an Options field (LevelDB's per-database
// Options::info_log): a VOUCH_CHECK fails where no engine is at hand, and the engines of one
// process already share the one standard error a sink replaces. So there is one place to look,
// and no constructor has to carry a logger down to the snapshot thread or the journal stage.
//
// Thread safety: Log() may be called from any thread, and from several at once, so a sink must
// be safe to call concurrently. SetLogSink() is safe at any time too (the sink is an atomic
// pointer), but a Log() already under way may still finish with the sink it replaced: a sink and
// its context must stay valid as long as anything of vouch may log. In practice: a static, or one
// that is removed (SetLogSink(nullptr)) only once every engine is destroyed, as tests do.
//
// Cost: none until something is logged. The messages come from rare paths, which format them
// (absl::StrFormat) only then; Log() itself neither allocates nor locks, and the default sink
// writes each message with one fprintf, so lines from two threads do not interleave.
#ifndef VOUCH_ENGINE_COMMON_LOGGER_H_
#define VOUCH_ENGINE_COMMON_LOGGER_H_

#include <string_view>

namespace vouch {

enum class LogSeverity {
  kInfo,     // Nothing to act on. (Nothing is logged at this level today.)
  kWarning,  // Something failed and is being tried again; no promise is broken (a snapshot).
  kError,    // Something stopped for the rest of the process (the journal, snapshots).
  kFatal,    // A VOUCH_CHECK failed: the process aborts once the sink returns.
};

// The sink's function: `message` has no "vouch: " prefix and no newline, and is valid only for
// the call. It must return (a failed check aborts only after it).
using LogFunction = void (*)(LogSeverity severity, std::string_view message, void* context);

struct LogSink {
  LogFunction write = nullptr;  // Must not be null.
  void* context = nullptr;      // Passed to every call of `write`.
};

// Sends every later message to `*sink` (not copied: it must outlive its use, see above);
// nullptr restores the default, standard error.
void SetLogSink(const LogSink* sink);

// Hands `message` to the installed sink. Any thread.
void Log(LogSeverity severity, std::string_view message);

namespace internal {
// True while no sink is installed, so messages go to standard error (used by VOUCH_CHECK,
// which writes there itself whatever the sink).
bool LogSinkIsDefault();
}  // namespace internal

}  // namespace vouch

#endif  // VOUCH_ENGINE_COMMON_LOGGER_H_
