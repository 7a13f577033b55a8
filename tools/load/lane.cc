#include "tools/load/lane.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace vouch::load {
namespace {

// Counts by enum value; a value this build does not know (a newer server) is an error.
template <size_t N>
bool CountIn(std::array<uint64_t, N>& counts, int value) {
  if (value < 0 || value >= static_cast<int>(N)) return false;
  ++counts[value];
  return true;
}

}  // namespace

void Tally::Merge(const Tally& other) {
  sent += other.sent;
  unsent += other.unsent;
  answered += other.answered;
  confirmed += other.confirmed;
  duplicates += other.duplicates;
  held += other.held;
  outcomes += other.outcomes;
  unexpected_outcomes += other.unexpected_outcomes;
  unanswered += other.unanswered;
  awaiting_outcomes += other.awaiting_outcomes;
  errors += other.errors;
  for (const std::string& message : other.error_messages) {
    if (error_messages.size() < kErrorMessagesMax) error_messages.push_back(message);
  }
  for (const uint64_t id : other.confirmed_sample) {
    if (confirmed_sample.size() < kConfirmedSampleMax) confirmed_sample.push_back(id);
  }
  for (int s = 0; s < kStatusCount; ++s) {
    for (int r = 0; r < kReasonCount; ++r) confirm_counts[s][r] += other.confirm_counts[s][r];
  }
  for (int k = 0; k < kKindCount; ++k) {
    for (int r = 0; r < kReasonCount; ++r) outcome_counts[k][r] += other.outcome_counts[k][r];
  }
  confirm_from_intended.Merge(other.confirm_from_intended);
  confirm_from_send.Merge(other.confirm_from_send);
  confirm_to_outcome.Merge(other.confirm_to_outcome);
  last_answer_ns = std::max(last_answer_ns, other.last_answer_ns);
}

void Tally::AddError(std::string message) {
  ++errors;
  if (error_messages.size() < kErrorMessagesMax) error_messages.push_back(std::move(message));
}

absl::Status Lane::Connect(const client::ClientOptions& options) {
  client::Handlers handlers;
  handlers.on_confirmation = [this](const v1::Confirmation& confirmation, int64_t received_ns) {
    OnConfirmation(confirmation, received_ns);
  };
  handlers.on_outcome = [this](const v1::Outcome& outcome, int64_t received_ns) {
    OnOutcome(outcome, received_ns);
  };
  handlers.on_error = [this](const v1::Error& error, int64_t) { OnError(error); };
  handlers.on_disconnect = [this](const absl::Status& why, int64_t) { OnDisconnect(why); };
  // Status and Pong have no handler: this lane never asks for them.
  absl::StatusOr<std::unique_ptr<client::Client>> client =
      client::Client::Connect(options, std::move(handlers));
  if (!client.ok()) return client.status();
  client_ = std::move(*client);
  return absl::OkStatus();
}

void Lane::Begin(const Schedule& schedule) {
  absl::MutexLock lock(&mu_);
  schedule_ = schedule;
}

void Lane::ExpectBatch(uint64_t first_id, uint32_t count, int64_t sent_ns) {
  absl::MutexLock lock(&mu_);
  in_flight_.push_back({first_id, first_id + count, sent_ns});
  tally_.sent += count;
}

void Lane::ForgetNewestBatch(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  const Batch& batch = in_flight_.back();
  tally_.sent -= batch.end_id - batch.next_id;
  tally_.unsent += batch.end_id - batch.next_id;
  in_flight_.pop_back();
  // One error per lane: after the first, every send fails the same way.
  if (!send_failed_) tally_.AddError(absl::StrCat("send failed: ", why.ToString()));
  send_failed_ = true;
}

void Lane::OnConfirmation(const v1::Confirmation& confirmation, int64_t received_ns) {
  absl::MutexLock lock(&mu_);
  if (in_flight_.empty() || confirmation.transaction_id() != in_flight_.front().next_id) {
    tally_.AddError(absl::StrCat("protocol: Confirmation for id ", confirmation.transaction_id(),
                                 " out of order (expected ",
                                 in_flight_.empty() ? 0 : in_flight_.front().next_id, ")"));
    return;
  }
  Batch& batch = in_flight_.front();
  tally_.confirm_from_intended.Record(received_ns - schedule_.IntendedNs(batch.next_id));
  tally_.confirm_from_send.Record(received_ns - batch.sent_ns);
  if (++batch.next_id == batch.end_id) in_flight_.pop_front();
  ++tally_.answered;
  tally_.last_answer_ns = received_ns;
  CountConfirmation(confirmation);

  if (confirmation.duplicate()) return;
  const bool confirmed = confirmation.status() == v1::CONFIRM_STATUS_CONFIRMED;
  if (confirmed) {
    ++tally_.confirmed;
    // relaxed: an id for a probe to Query; it publishes nothing else.
    if (latest_confirmed_ != nullptr) {
      latest_confirmed_->store(confirmation.transaction_id(), std::memory_order_relaxed);
    }
    if (tally_.confirmed % kConfirmedSampleEvery == 1) {
      const uint64_t k = tally_.confirmed / kConfirmedSampleEvery;  // Overwrites the oldest.
      if (tally_.confirmed_sample.size() < kConfirmedSampleMax) {
        tally_.confirmed_sample.push_back(confirmation.transaction_id());
      } else {
        tally_.confirmed_sample[k % kConfirmedSampleMax] = confirmation.transaction_id();
      }
    }
  }
  // A held transaction's Confirmation is its final answer: no Outcome follows.
  if (confirmed && !confirmation.held()) {
    awaited_[confirmation.transaction_id()] = received_ns;
  }
}

void Lane::CountConfirmation(const v1::Confirmation& confirmation) {
  if (confirmation.duplicate()) ++tally_.duplicates;
  if (confirmation.held()) ++tally_.held;
  if (confirmation.status() < 0 || confirmation.status() >= kStatusCount ||
      !CountIn(tally_.confirm_counts[confirmation.status()], confirmation.reason())) {
    tally_.AddError(absl::StrCat("protocol: unknown ConfirmStatus ", confirmation.status(),
                                 " or Reason ", confirmation.reason()));
  }
}

void Lane::OnOutcome(const v1::Outcome& outcome, int64_t received_ns) {
  absl::MutexLock lock(&mu_);
  const auto awaited = awaited_.find(outcome.transaction_id());
  if (awaited == awaited_.end()) {
    ++tally_.unexpected_outcomes;
    tally_.AddError(absl::StrCat("protocol: Outcome for id ", outcome.transaction_id(),
                                 ", which awaits none (a second one, or before its Confirmation)"));
    return;
  }
  tally_.confirm_to_outcome.Record(received_ns - awaited->second);
  awaited_.erase(awaited);
  ++tally_.outcomes;
  if (outcome.kind() < 0 || outcome.kind() >= kKindCount ||
      !CountIn(tally_.outcome_counts[outcome.kind()], outcome.reason())) {
    tally_.AddError(absl::StrCat("protocol: unknown OutcomeKind ", outcome.kind(), " or Reason ",
                                 outcome.reason()));
  }
}

void Lane::OnError(const v1::Error& error) {
  absl::MutexLock lock(&mu_);
  tally_.AddError(client::ServerErrorStatus(error).ToString());
}

void Lane::OnDisconnect(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  ended_ = true;
  // kCancelled: this tool closed it. A server Error was already counted by OnError.
  if (absl::IsCancelled(why) || client::ServerErrorCode(why) != v1::ERROR_CODE_UNSPECIFIED) return;
  tally_.AddError(absl::StrCat("connection lost: ", why.ToString()));
}

bool Lane::Settled() const {
  absl::MutexLock lock(&mu_);
  return ended_ || (in_flight_.empty() && awaited_.empty());
}

Tally Lane::Snapshot() const {
  absl::MutexLock lock(&mu_);
  Tally tally = tally_;
  for (const Batch& batch : in_flight_) tally.unanswered += batch.end_id - batch.next_id;
  tally.awaiting_outcomes = awaited_.size();
  return tally;
}

}  // namespace vouch::load
