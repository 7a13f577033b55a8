#include "engine/journal/stage/journal_stage.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/common/logger.h"
#include "engine/journal/records.h"

namespace vouch {
namespace {

// The largest payload of any record type.
constexpr size_t kPayloadBytesMax =
    std::max({journal::kConfirmedRecordBytesMax, journal::kOutcomeWithCodeRecordBytes,
              journal::kHoldReleasedRecordBytes, journal::kHoldPlacedRecordBytes,
              journal::kRefusedWithFingerprintRecordBytes});

void SetMax(std::atomic<uint64_t>& counter, uint64_t value) {
  // relaxed: a statistic with a single writer.
  if (value > counter.load(std::memory_order_relaxed)) {
    counter.store(value, std::memory_order_relaxed);
  }
}

void Add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  // relaxed: a statistic with a single writer.
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace

absl::StatusOr<AckPolicy> ParseAckPolicy(std::string_view name) {
  if (name == "memory") return AckPolicy::kMemory;
  if (name == "written") return AckPolicy::kWritten;
  if (name == "durable") return AckPolicy::kDurable;
  return absl::InvalidArgumentError(
      absl::StrCat("ack policy \"", absl::string_view(name.data(), name.size()),
                   "\": expected memory, written or durable"));
}

std::string_view AckPolicyName(AckPolicy policy) {
  switch (policy) {
    case AckPolicy::kMemory: return "memory";
    case AckPolicy::kWritten: return "written";
    case AckPolicy::kDurable: return "durable";
  }
  return "?";
}

JournalStage::JournalStage(std::unique_ptr<journal::SegmentWriter> writer, AckPolicy policy,
                           InFlightRing* ring, Sequence confirmed_below, Sequence outcomes_below,
                           int64_t mono_to_unix_offset_ns, size_t ring_capacity, int batch_max)
    : writer_(std::move(writer)),
      policy_(policy),
      ring_(ring),
      mono_to_unix_offset_ns_(mono_to_unix_offset_ns),
      batch_max_(batch_max),
      // An outcome and a hold per live ring entry, and the releases (OutcomeJournal).
      entries_(2 * ring_capacity + kOperatorEntriesQueuedMax),
      refusal_mask_(ring_capacity - 1),
      refusals_(new RefusalSlot[ring_capacity]),
      next_confirmed_(confirmed_below),
      outcomes_written_(outcomes_below),
      read_below_(confirmed_below),
      confirmed_acked_below_(confirmed_below),
      outcomes_acked_below_(outcomes_below) {
  assert(policy != AckPolicy::kMemory && batch_max > 0);
  assert(ring_capacity >= 2 && (ring_capacity & refusal_mask_) == 0);
  for (size_t pos = 0; pos < ring_capacity; ++pos) {
    // relaxed: construction happens-before any thread is handed the stage.
    refusals_[pos].turn.store(pos, std::memory_order_relaxed);
  }
}

bool JournalStage::RecordOutcome(const Outcome& outcome) {
  Entry entry;
  entry.outcome = outcome;
  const bool queued = entries_.try_enqueue(entry);
  if (queued && self_ != nullptr) self_->Unpark();
  return queued;
}

bool JournalStage::RecordHoldChange(const HoldChange& change) {
  Entry entry;
  entry.kind = Entry::Kind::kHold;
  entry.hold = change;
  const bool queued = entries_.try_enqueue(entry);
  if (queued && self_ != nullptr) self_->Unpark();
  return queued;
}

// The in-flight ring's claim (InFlightRing::Claim), on the refusal ring.
uint64_t JournalStage::RecordRefusal(uint64_t id, Reason reason, int64_t now_ns,
                                     uint64_t fingerprint) {
  // relaxed: the head is only a hint of where to try; the CAS below decides.
  uint64_t pos = refusal_head_.load(std::memory_order_relaxed);
  for (;;) {
    RefusalSlot& slot = refusals_[pos & refusal_mask_];
    // acquire: pairs with the stage's release, so it is done reading the slot's last lap.
    const int64_t lag =
        static_cast<int64_t>(slot.turn.load(std::memory_order_acquire) - pos);
    if (lag < 0) return 0;  // The slot still holds the refusal of the previous lap: full.
    if (lag > 0) {
      pos = refusal_head_.load(std::memory_order_relaxed);  // Another producer took pos.
      continue;
    }
    // release: refusals_queued() readers see the number only after it was taken; the slot's
    // data is ordered by its own turn.
    if (refusal_head_.compare_exchange_weak(pos, pos + 1, std::memory_order_release,
                                            std::memory_order_relaxed)) {
      slot.id = id;
      slot.reason = reason;
      slot.refused_ns = now_ns;
      slot.fingerprint = fingerprint;
      // release: the stage that acquires the turn sees the slot's data. The wake-up needs no
      // stronger order: the Parker's fences make any publication safe (parker.h).
      slot.turn.store(pos + 1, std::memory_order_release);
      if (self_ != nullptr) self_->Unpark();
      return pos + 1;
    }
  }
}

uint64_t JournalStage::RecordAccount(journal::RecordType type, const char* payload, size_t size) {
  assert(size <= journal::kAccountRecordBytesMax);
  uint64_t number = 0;
  {
    absl::MutexLock lock(&account_mu_);
    if (account_records_.size() >= kAccountRecordsQueuedMax) return 0;
    AccountRecordEntry& entry = account_records_.emplace_back();
    entry.type = type;
    entry.size = static_cast<uint8_t>(size);
    std::memcpy(entry.payload, payload, size);
    number = ++account_records_queued_;
    // release: the stage's acquire load sees that there is something under the mutex.
    account_records_posted_.store(number, std::memory_order_release);
  }
  if (self_ != nullptr) self_->Unpark();
  return number;
}

bool JournalStage::AwaitAccountRecord(uint64_t number, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (account_records_acked() >= number) return true;
    if (failed() || absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Microseconds(50));
  }
}

// Account records depend on nothing else in the batch (an account is used only once its
// creation is kept), so they go first.
int JournalStage::GatherAccountRecords(int gathered) {
  // acquire: pairs with RecordAccount's release.
  if (account_records_posted_.load(std::memory_order_acquire) == account_records_written_) {
    return gathered;
  }
  absl::MutexLock lock(&account_mu_);
  while (gathered < batch_max_ && !account_records_.empty()) {
    const AccountRecordEntry& entry = account_records_.front();
    if (!writer_->Add(entry.type, 0, entry.payload, entry.size)) break;
    account_records_.pop_front();
    ++account_records_written_;
    ++gathered;
  }
  return gathered;
}

bool JournalStage::AwaitAcked(const AckPosition& position) const {
  for (int spin = 0; spin < 1000; ++spin) {
    if (IsAcked(position)) return true;
  }
  for (;;) {
    // acquire: pairs with WakeWaiters' release. The epoch is read before the state it guards,
    // so a change after these reads moves the epoch and the wait returns.
    const uint32_t epoch = wake_epoch_.load(std::memory_order_acquire);
    if (IsAcked(position)) return true;
    if (failed()) return false;
    wake_epoch_.wait(epoch, std::memory_order_acquire);
  }
}

absl::Status JournalStage::status() const {
  return failed() ? status_ : absl::OkStatus();
}

void JournalStage::WakeWaiters() {
  // release: a waiter that acquires the new epoch sees the change made before it.
  wake_epoch_.fetch_add(1, std::memory_order_release);
  wake_epoch_.notify_all();
}

bool JournalStage::RecordRules(Sequence from, const std::string& text) {
  Entry entry;
  entry.kind = Entry::Kind::kRules;
  entry.rules_from = from;
  entry.rules_text = text;
  const bool queued = entries_.try_enqueue(std::move(entry));
  if (queued && self_ != nullptr) self_->Unpark();
  return queued;
}

// Adds what is ready to the writer's buffer, in the order recovery relies on: transactions from
// the ring, then the reconciler's entries in its order (an outcome waits for its transaction).
int JournalStage::Gather() {
  char record[kPayloadBytesMax];
  int gathered = GatherAccountRecords(0);
  while (gathered < batch_max_ && ring_->IsPublished(next_confirmed_)) {
    const InFlightPayload& payload = ring_->At(next_confirmed_).payload;
    journal::ConfirmedRecord confirmed;
    confirmed.seq = next_confirmed_;
    confirmed.txn = payload.txn;
    confirmed.confirmed_unix_ns = payload.confirmed_ns + mono_to_unix_offset_ns_;
    confirmed.held = payload.held;
    confirmed.origin = payload.origin;
    const size_t size = journal::EncodeConfirmedRecord(confirmed, record);
    if (!writer_->Add(journal::RecordType::kConfirmed, next_confirmed_, record, size)) break;
    ++next_confirmed_;
    ++gathered;
  }
  // release: the entries below are copied; the reconciler may free them.
  read_below_.store(next_confirmed_, std::memory_order_release);
  while (gathered < batch_max_) {
    const Entry* entry = entries_.peek();
    if (entry == nullptr) break;
    if (entry->kind == Entry::Kind::kOutcome) {
      const Outcome& outcome = entry->outcome;
      if (outcome.seq >= next_confirmed_) break;
      journal::OutcomeRecord record_value;
      record_value.outcome = outcome;
      record_value.confirmed_unix_ns = outcome.confirmed_ns + mono_to_unix_offset_ns_;
      record_value.decided_unix_ns = outcome.decided_ns + mono_to_unix_offset_ns_;
      const size_t size = journal::EncodeOutcomeRecord(record_value, record);
      if (!writer_->Add(journal::RecordType::kOutcome, outcome.seq, record, size)) break;
      outcomes_written_ = outcome.seq + 1;
    } else if (entry->kind == Entry::Kind::kRules) {
      // The text is the payload as it is (records.h); ReplaceFraudRules bounds its size.
      if (!writer_->Add(journal::RecordType::kFraudRules, entry->rules_from,
                        entry->rules_text.data(), entry->rules_text.size())) {
        break;
      }
    } else if (const HoldChange& hold = entry->hold; hold.placed) {
      const size_t size = journal::EncodeHoldPlacedRecord(
          {hold.account, hold.at_ns + mono_to_unix_offset_ns_}, record);
      if (!writer_->Add(journal::RecordType::kHoldPlaced, hold.seq, record, size)) break;
    } else {
      const size_t size = journal::EncodeHoldReleasedRecord(
          {hold.account, hold.at_ns + mono_to_unix_offset_ns_}, record);
      if (!writer_->Add(journal::RecordType::kHoldReleased, 0, record, size)) break;
    }
    const bool operator_entry = entry->kind == Entry::Kind::kRules ||
                                (entry->kind == Entry::Kind::kHold && !entry->hold.placed);
    entries_.pop();
    if (operator_entry) {
      // release: the pop is done; the reconciler that acquires this may fill the room. The
      // relaxed load: this stage is the only writer.
      operator_entries_taken_.store(operator_entries_taken_.load(std::memory_order_relaxed) + 1,
                                 std::memory_order_release);
    }
    ++gathered;
  }
  return GatherRefusals(gathered, record);
}

// Refusals depend on no other record: they follow whatever else this turn gathered.
int JournalStage::GatherRefusals(int gathered, char* record) {
  while (gathered < batch_max_) {
    RefusalSlot& slot = refusals_[next_refusal_pos_ & refusal_mask_];
    // acquire: pairs with the producer's release of the turn; the slot's data is visible.
    if (slot.turn.load(std::memory_order_acquire) != next_refusal_pos_ + 1) break;
    const journal::RefusedRecord refused{slot.id, slot.reason,
                                         slot.refused_ns + mono_to_unix_offset_ns_,
                                         slot.fingerprint};
    const size_t size = journal::EncodeRefusedRecord(refused, record);
    if (!writer_->Add(journal::RecordType::kRefusedWithFingerprint, 0, record, size)) break;
    // release: the slot is copied; its producer's next lap may overwrite it.
    slot.turn.store(next_refusal_pos_ + refusal_mask_ + 1, std::memory_order_release);
    ++next_refusal_pos_;
    ++gathered;
  }
  return gathered;
}

void JournalStage::Commit(int gathered) {
  if (absl::Status status = writer_->Write(); !status.ok()) return Fail(status);
  Add(counters_.writes);
  Add(counters_.records, static_cast<uint64_t>(gathered));
  if (policy_ == AckPolicy::kDurable) {
    const auto start = std::chrono::steady_clock::now();
    if (absl::Status status = writer_->Sync(); !status.ok()) return Fail(status);
    Add(counters_.syncs);
    SetMax(counters_.synced_records_max, static_cast<uint64_t>(gathered));
    SetMax(counters_.sync_ns_max,
           static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - start)
                                     .count()));
  }
}

int JournalStage::DoWork() {
  // relaxed: this thread is the one that sets it.
  if (failed_.load(std::memory_order_relaxed)) return 0;
  const int gathered = Gather();
  if (gathered == 0) return 0;
  Commit(gathered);
  if (failed_.load(std::memory_order_relaxed)) return gathered;  // Nothing is acknowledged.
  // release: a thread that acquires these sees the records kept (and, for the reconciler, may
  // then tell the outcomes).
  confirmed_acked_below_.store(next_confirmed_, std::memory_order_release);
  refusals_acked_.store(next_refusal_pos_, std::memory_order_release);
  account_records_acked_.store(account_records_written_, std::memory_order_release);
  WakeWaiters();
  if (outcomes_written_ > outcomes_acked_below_.load(std::memory_order_relaxed)) {
    outcomes_acked_below_.store(outcomes_written_, std::memory_order_release);
    if (downstream_ != nullptr) downstream_->Unpark();
  }
  return gathered;
}

void JournalStage::Flush() {
  while (DoWork() > 0) {}
}

void JournalStage::Fail(const absl::Status& status) {
  Log(LogSeverity::kError,
      absl::StrCat("journal I/O failed; nothing more is acknowledged: ", status.ToString()));
  status_ = status;
  // Before the failure is published: a caller that sees it ("not kept") knows the embedder was
  // already told why.
  if (on_fatal_) on_fatal_(status_);
  // release: a thread that acquires the flag reads status_.
  failed_.store(true, std::memory_order_release);
  WakeWaiters();
  if (downstream_ != nullptr) downstream_->Unpark();
}

}  // namespace vouch
