#include "tools/load/phase.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "client/client.h"
#include "engine/wire/convert.h"
#include "tools/load/format.h"

namespace vouch::load {
namespace {

using Lanes = std::vector<std::unique_ptr<Lane>>;

constexpr int64_t kNsPerS = 1'000'000'000;
// Closer than this to a due time the sender yields instead of sleeping: a sleep can overshoot
// by about this much.
constexpr int64_t kSpinBelowNs = 50'000;
// The first transaction is due this long after the connections are up.
constexpr int64_t kStartDelayNs = 10'000'000;
constexpr auto kSettlePoll = std::chrono::milliseconds(5);

int64_t NowNs() { return client::Client::NowNs(); }

Tally Merged(const Lanes& lanes) {
  Tally total;
  for (const auto& lane : lanes) total.Merge(lane->Snapshot());
  return total;
}

// The progress line, once a second on stderr.
class Progress {
 public:
  Progress(const LoadConfig& config, const std::string& phase, int64_t start_ns)
      : quiet_(config.quiet), rate_(config.rate), phase_(phase), start_ns_(start_ns),
        next_ns_(start_ns + kNsPerS) {}

  // REQUIRES: called from the sender thread only.
  void MaybePrint(const Lanes& lanes, int64_t now_ns) {
    if (now_ns < next_ns_) return;
    if (!quiet_) Print(lanes, now_ns);
    next_ns_ += kNsPerS * ((now_ns - next_ns_) / kNsPerS + 1);
  }

  // When MaybePrint has something to do next.
  int64_t next_ns() const { return next_ns_; }

 private:
  void Print(const Lanes& lanes, int64_t now_ns) {
    const Tally tally = Merged(lanes);
    const uint64_t busy = Sum(tally.confirm_counts[v1::CONFIRM_STATUS_BUSY]);
    const uint64_t rejected = Sum(tally.confirm_counts[v1::CONFIRM_STATUS_REJECTED]);
    const double interval_s = static_cast<double>(now_ns - last_ns_) / 1e9;
    std::fprintf(stderr,
                 "[%s %3llds] offered %.0f/s achieved %.0f/s | sent %lu confirmed %lu outcomes %lu"
                 " busy %lu rejected %lu errors %lu | confirm p99 %s (from intended)\n",
                 phase_.c_str(), static_cast<long long>((now_ns - start_ns_) / kNsPerS), rate_,
                 static_cast<double>(tally.answered - last_answered_) / interval_s, tally.sent,
                 tally.confirmed, tally.outcomes, busy, rejected, tally.errors,
                 FormatNs(tally.confirm_from_intended.Percentile(99)).c_str());
    last_answered_ = tally.answered;
    last_ns_ = now_ns;
  }

  template <typename Counts>
  static uint64_t Sum(const Counts& counts) {
    uint64_t sum = 0;
    for (uint64_t n : counts) sum += n;
    return sum;
  }

  const bool quiet_;
  const double rate_;
  const std::string phase_;
  const int64_t start_ns_;
  int64_t next_ns_;
  int64_t last_ns_ = start_ns_;
  uint64_t last_answered_ = 0;
};

absl::StatusOr<Lanes> ConnectLanes(const LoadConfig& config, const PhaseSpec& spec) {
  Lanes lanes;
  for (int i = 0; i < config.connections; ++i) {
    client::ClientOptions options;
    options.host = config.host;
    options.port = config.port;
    options.auth_token = config.auth_token;
    // Named, so that outcomes follow the session (vouch.proto, Hello).
    options.client_name = absl::StrCat("vouch-load-", getpid(), "-", spec.first_session + i);
    lanes.push_back(std::make_unique<Lane>());
    lanes.back()->PublishConfirmedTo(config.latest_confirmed);
    if (absl::Status status = lanes.back()->Connect(options); !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("connection ", i, ": ", status.message()));
    }
  }
  return lanes;
}

// Waits until `due_ns`, printing progress meanwhile.
void WaitUntil(int64_t due_ns, const Lanes& lanes, Progress& progress) {
  for (;;) {
    const int64_t now_ns = NowNs();
    progress.MaybePrint(lanes, now_ns);
    const int64_t ahead_ns = due_ns - now_ns;
    if (ahead_ns <= 0) return;
    if (ahead_ns > kSpinBelowNs) {
      const int64_t sleep_ns = std::min(ahead_ns - kSpinBelowNs, progress.next_ns() - now_ns);
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::max<int64_t>(sleep_ns, 0)));
    } else {
      std::this_thread::yield();
    }
  }
}

// The open-loop schedule: batch k leaves when its last transaction is due, on lane k mod N.
void SendAll(const LoadConfig& config, const Schedule& schedule, const Lanes& lanes,
             Progress& progress) {
  workload::WorkloadConfig workload = config.workload;
  workload.first_id = schedule.first_id;
  workload::WorkloadGenerator generator(workload);
  std::vector<v1::Transaction> batch(config.batch);  // Reused: ToProto keeps string capacity.
  const uint64_t scheduled = config.scheduled();
  size_t lane_index = 0;
  for (uint64_t first = 0; first < scheduled; first += config.batch) {
    const auto count = static_cast<uint32_t>(std::min<uint64_t>(config.batch, scheduled - first));
    for (uint32_t i = 0; i < count; ++i) wire::ToProto(generator.Next(), &batch[i]);
    const uint64_t first_id = schedule.first_id + first;
    WaitUntil(schedule.IntendedNs(first_id + count - 1), lanes, progress);
    Lane& lane = *lanes[lane_index];
    lane_index = (lane_index + 1) % lanes.size();
    lane.ExpectBatch(first_id, count, NowNs());
    const absl::Status status = lane.client().SubmitAsync(absl::MakeConstSpan(batch.data(), count));
    if (!status.ok()) lane.ForgetNewestBatch(status);
  }
}

// Until every lane has its answers and outcomes, or the deadline.
void AwaitSettled(const Lanes& lanes, int64_t deadline_ns, Progress& progress) {
  for (;;) {
    const int64_t now_ns = NowNs();
    progress.MaybePrint(lanes, now_ns);
    const bool settled = std::all_of(lanes.begin(), lanes.end(),
                                     [](const auto& lane) { return lane->Settled(); });
    if (settled || now_ns >= deadline_ns) return;
    std::this_thread::sleep_for(kSettlePoll);
  }
}

}  // namespace

double PhaseReport::achieved_rate() const {
  if (answer_span_ns <= 0) return 0;
  return static_cast<double>(tally.answered) * 1e9 / static_cast<double>(answer_span_ns);
}

double PhaseReport::sent_rate() const {
  if (send_span_ns <= 0) return 0;
  return static_cast<double>(tally.sent) * 1e9 / static_cast<double>(send_span_ns);
}

bool PhaseReport::passed() const {
  return tally.awaiting_outcomes == 0 && tally.unexpected_outcomes == 0 &&
         tally.unanswered == 0 && tally.errors == 0;
}

absl::StatusOr<PhaseReport> RunPhase(const LoadConfig& config, const PhaseSpec& spec) {
  absl::StatusOr<Lanes> lanes = ConnectLanes(config, spec);
  if (!lanes.ok()) return lanes.status();
  const Schedule schedule{NowNs() + kStartDelayNs, config.rate, spec.first_id};
  for (const auto& lane : *lanes) lane->Begin(schedule);
  Progress progress(config, spec.name, schedule.start_ns);
  SendAll(config, schedule, *lanes, progress);
  const int64_t send_end_ns = NowNs();
  AwaitSettled(*lanes, NowNs() + int64_t{config.outcome_wait_s} * kNsPerS, progress);
  for (const auto& lane : *lanes) lane->Close();

  PhaseReport report;
  report.name = spec.name;
  report.scheduled = config.scheduled();
  report.tally = Merged(*lanes);
  report.send_span_ns = send_end_ns - schedule.start_ns;
  if (report.tally.last_answer_ns > 0) {
    report.answer_span_ns = report.tally.last_answer_ns - schedule.start_ns;
  }
  return report;
}

}  // namespace vouch::load
