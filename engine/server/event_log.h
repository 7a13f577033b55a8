// EventLog: JSON lines for what operators must see. Late failures and the holds they place,
// hold releases, and operational events (start, shutdown, refused or cut-off connections, rule
// reloads) are written as one JSON object per line, by the log's own thread, so no hot-path
// thread formats or writes anything.
//
// Outcomes reach the log the way they reach the I/O threads: the log is one more reader of the
// OutcomeWindow with its own cursor, polled every 10 ms. The window's writer never waits for a
// reader: a log that falls a whole window behind (a disk that stalls) reads the lapped outcomes
// from the engine's history, and writes an `outcome_lost` line (counted in dropped()) for one
// that left the history too; nothing is dropped silently. Held transactions' outcomes are their
// answers, not late failures, and are not logged. Operational events come through a bounded queue of fixed-size records; when it is
// full the event is dropped and counted in dropped() (they are rare, and the journal, not the
// log, is the record of money).
//
// Line format: {"ts":"2026-11-23T16:55:45.778494Z","event":"late_failure",...}, written by the
// shared JsonWriter (engine/common/json.h), so every string is escaped. Events:
//   late_failure   seq, id, kind (LATE_FAILED | LATE_TIMEOUT), verifier, reason, account,
//                  amount, currency, reversed, account_held
//   hold           account, seq (the failure that placed it)
//   hold_released  account
//   account_changed account, action (an operator froze, unfroze, closed or re-limited it:
//                  ACCOUNT_ACTION_FREEZE ...)
//   outcome_lost   seq (the log fell too far behind to know whether it was a failure)
//   and operational events with a free-form "detail": start, shutdown, connection_error,
//   rules_reloaded, rules_reload_refused, daily_limit (a transaction refused by its source
//   account's daily limit: account, id, reason).
//
// This is vouchd's operator log, written only where the server was told to write it
// (`--event_log`; empty by default: no log). It is not the library's log: the engine's own
// messages go to the sink of engine/common/logger.h.
//
// Thread safety: Event() from any thread; Start/Stop by the owner.
#ifndef VOUCH_ENGINE_SERVER_EVENT_LOG_H_
#define VOUCH_ENGINE_SERVER_EVENT_LOG_H_

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "concurrentqueue/concurrentqueue.h"
#include "engine/common/json.h"
#include "engine/engine.h"
#include "engine/server/outcome_window.h"

namespace vouch::server {

class EventLog {
 public:
  // `path` "-" is standard error. Reads outcomes as window reader `reader`, and lapped ones from
  // `history` (Engine::FinalOutcome; may be null).
  static absl::StatusOr<std::unique_ptr<EventLog>> Open(const std::string& path,
                                                        OutcomeWindow* window, int reader,
                                                        int64_t mono_to_unix_offset_ns,
                                                        const Engine* history = nullptr);
  ~EventLog();

  void Start();
  // Writes everything published so far, then stops the thread.
  void Stop();

  // Any thread. `event` and `detail` are copied (truncated to fit a record).
  void Event(absl::string_view event, absl::string_view detail);
  void HoldReleased(uint64_t account);
  // An operator's ChangeAccount took effect: "account_changed", the account, and the action.
  void AccountChanged(uint64_t account, absl::string_view action);

  uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Record {
    int64_t unix_ns = 0;
    uint64_t account = 0;  // hold_released only.
    char event[24] = {};
    char detail[232] = {};
  };

  EventLog(std::FILE* out, bool owned, OutcomeWindow* window, int reader, int64_t offset_ns,
           const Engine* history);
  void Run();
  int Drain();
  void WriteOutcome(const Outcome& outcome);
  void WriteLost(Sequence seq);
  void WriteRecord(const Record& record);
  // Closes `line`, writes it and its newline, and counts it.
  void WriteLine(JsonWriter& line);

  std::FILE* const out_;
  const bool owned_;
  OutcomeWindow* const window_;
  const Engine* const history_;
  const int reader_;
  const int64_t mono_to_unix_offset_ns_;
  moodycamel::ConcurrentQueue<Record> events_;
  Sequence cursor_;  // Log thread only.
  std::thread thread_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // relaxed: statistics.
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_EVENT_LOG_H_
