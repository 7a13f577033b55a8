#include "engine/server/event_log.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/common/json.h"
#include "engine/types/clock.h"
#include "engine/types/reason.h"
#include "engine/types/transaction.h"

namespace vouch::server {
namespace {

constexpr size_t kEventQueueCapacity = 4096;

void Copy(absl::string_view from, char* to, size_t size) {
  const size_t n = std::min(from.size(), size - 1);
  std::memcpy(to, from.data(), n);
  to[n] = '\0';
}

// The type names are std::string_view, which Debian's absl::string_view is not.
absl::string_view View(std::string_view name) { return {name.data(), name.size()}; }

// {"ts":...,"event":...: every line starts so; the caller adds its fields, then WriteLine.
JsonWriter BeginLine(absl::string_view ts, absl::string_view event) {
  JsonWriter line;
  line.BeginObject();
  line.String("ts", ts);
  line.String("event", event);
  return line;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLog>> EventLog::Open(const std::string& path,
                                                         OutcomeWindow* window, int reader,
                                                         int64_t mono_to_unix_offset_ns,
                                                         const Engine* history) {
  std::FILE* out = stderr;
  if (path != "-") {
    out = std::fopen(path.c_str(), "a");
    if (out == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("event log ", path, ": ", std::strerror(errno)));
    }
  }
  return std::unique_ptr<EventLog>(
      new EventLog(out, path != "-", window, reader, mono_to_unix_offset_ns, history));
}

EventLog::EventLog(std::FILE* out, bool owned, OutcomeWindow* window, int reader,
                   int64_t offset_ns, const Engine* history)
    : out_(out),
      owned_(owned),
      window_(window),
      history_(history),
      reader_(reader),
      mono_to_unix_offset_ns_(offset_ns),
      events_(kEventQueueCapacity),
      cursor_(window->end()) {}

EventLog::~EventLog() {
  Stop();
  if (owned_) std::fclose(out_);
}

void EventLog::Start() {
  cursor_ = window_->end();
  thread_ = std::thread([this] { Run(); });
}

void EventLog::Stop() {
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void EventLog::Event(absl::string_view event, absl::string_view detail) {
  Record record;
  record.unix_ns = absl::ToUnixNanos(absl::Now());
  Copy(event, record.event, sizeof(record.event));
  Copy(detail, record.detail, sizeof(record.detail));
  if (!events_.try_enqueue(record)) dropped_.fetch_add(1, std::memory_order_relaxed);
}

void EventLog::HoldReleased(uint64_t account) {
  Record record;
  record.unix_ns = absl::ToUnixNanos(absl::Now());
  record.account = account;
  Copy("hold_released", record.event, sizeof(record.event));
  if (!events_.try_enqueue(record)) dropped_.fetch_add(1, std::memory_order_relaxed);
}

void EventLog::AccountChanged(uint64_t account, absl::string_view action) {
  Record record;
  record.unix_ns = absl::ToUnixNanos(absl::Now());
  record.account = account;
  Copy("account_changed", record.event, sizeof(record.event));
  Copy(action, record.detail, sizeof(record.detail));
  if (!events_.try_enqueue(record)) dropped_.fetch_add(1, std::memory_order_relaxed);
}

void EventLog::Run() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    const bool stopping = stop_;
    mu_.Unlock();
    while (Drain() > 0) {}
    std::fflush(out_);
    mu_.Lock();
    if (stopping) return;
    mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(10));
  }
}

int EventLog::Drain() {
  int written = 0;
  const Sequence end = window_->end();
  for (; cursor_ < end && written < 4096; ++cursor_) {
    std::optional<Outcome> outcome = window_->Read(cursor_);
    if (!outcome.has_value() && history_ != nullptr) outcome = history_->FinalOutcome(cursor_);
    if (!outcome.has_value()) {
      WriteLost(cursor_);
      ++written;
      continue;
    }
    // A held transaction's failure was its answer (REJECTED), not a late failure.
    if (outcome.has_value() && outcome->kind != OutcomeKind::kVerified && !outcome->held) {
      WriteOutcome(*outcome);
      ++written;
    }
  }
  Record record;
  while (written < 8192 && events_.try_dequeue(record)) {
    WriteRecord(record);
    ++written;
  }
  return written;
}

void EventLog::WriteLine(JsonWriter& line) {
  line.EndObject();
  std::string text = line.Take();
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), out_);
  lines_.fetch_add(1, std::memory_order_relaxed);
}

void EventLog::WriteOutcome(const Outcome& o) {
  const std::string ts = FormatUnixTimeNs(o.decided_ns + mono_to_unix_offset_ns_);
  JsonWriter line = BeginLine(ts, "late_failure");
  line.Uint("seq", o.seq);
  line.Uint("id", o.id);
  line.String("kind", View(OutcomeKindName(o.kind)));
  line.String("verifier", View(VerifierName(o.verifier)));
  line.String("reason", View(ReasonName(o.reason)));
  line.Uint("account", o.source_account);
  line.Int("amount", o.amount_minor);
  line.String("currency", CurrencyToString(o.currency));
  line.Bool("reversed", (o.compensation & kCompensationReversed) != 0);
  line.Bool("account_held", (o.compensation & kCompensationAccountHeld) != 0);
  WriteLine(line);
  if (o.compensation & kCompensationAccountHeld) {
    JsonWriter hold = BeginLine(ts, "hold");
    hold.Uint("account", o.source_account);
    hold.Uint("seq", o.seq);
    WriteLine(hold);
  }
}

void EventLog::WriteLost(Sequence seq) {
  // Now on the engine's clock, which the offset belongs to (the process's clock without one).
  const int64_t now_ns =
      history_ != nullptr ? history_->clock().NowNs() : MonotonicClock::Default()->NowNs();
  const std::string ts = FormatUnixTimeNs(now_ns + mono_to_unix_offset_ns_);
  JsonWriter line = BeginLine(ts, "outcome_lost");
  line.Uint("seq", seq);
  WriteLine(line);
  dropped_.fetch_add(1, std::memory_order_relaxed);
}

void EventLog::WriteRecord(const Record& record) {
  JsonWriter line = BeginLine(FormatUnixTimeNs(record.unix_ns), record.event);
  if (record.account != 0) {
    line.Uint("account", record.account);
    if (record.detail[0] != '\0') line.String("action", record.detail);
  } else {
    line.String("detail", record.detail);
  }
  WriteLine(line);
}

}  // namespace vouch::server
