// AccountDirectory: every account ever created, by id, at a stable address.
//
// Design: two fixed arrays sized at construction and never resized. `records_` holds the
// account records in creation order (record i is the i-th account created; its address never
// changes, so the confirm path may keep a pointer). `slots_` is an open-addressing index,
// id -> record index, of the next power of two >= 2 x capacity (load factor <= 1/2, so a probe
// sequence is short), probed linearly from Mix64(id) (the splitmix64 finaliser: every bit of
// the id moves the slot, unlike the old account_slots.h hash that read bits 20..35 only).
// Accounts are permanent (closing keeps the record), so a slot is claimed once and never
// freed: an empty slot ends a chain, and capacity bounds the accounts ever created. Insert
// beyond it returns nullptr (the engine answers kTableFull and counts it).
//
// Memory: both arrays come from calloc, so the kernel hands out zero pages only as they are
// touched: sizeof(AccountRecord) (kRecordBytes, ~192 B) per created account plus 16 B per
// slot, 2-4 slots per account of capacity (capacity 10 million: 512 MiB of index, up to
// 1.9 GB of records once all exist). A zero-filled atomic is a valid atomic holding 0 on every
// platform vouch builds for (gcc, x86-64 / aarch64); records are constructed in place on insert.
//
// Thread safety: Find, size, opened_below and the record accessors from any thread, lock-free:
// one hash and usually one or two loads. Insert, SetOpenedBelow and the mutable parts of a
// record (state, limits, history) are written by one writer at a time: the engine's account
// mutex, or the replayer before the engine runs (REQUIRES below). Holds and exposure are
// atomics any thread may change (the reconciler and ingest).
//
// Publication: Insert fills the record, stores the slot's index, then the slot's id with
// release; Find's acquire load of the id therefore sees the index and the record's constant
// fields. A record's creation is *kept* (journaled as the ack policy promises) before it is
// usable by transactions: its state moves from kCreating to kOpen with release, and ingest
// refuses kCreating as an unknown account, so no transaction record can precede its account's
// creation record in the journal.
#ifndef VOUCH_ENGINE_ACCOUNTS_ACCOUNT_DIRECTORY_H_
#define VOUCH_ENGINE_ACCOUNTS_ACCOUNT_DIRECTORY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/accounts/account.h"
#include "engine/accounts/daily_usage.h"

namespace vouch {

// The creation and the newest changes an account's history keeps.
inline constexpr int kAccountHistoryMax = 8;

// An account's record. The constant part is written once before the record is published.
struct AccountRecord {
  // Internal states: kCreating (created, creation record not kept yet: not usable) and
  // kClosing (a close is under way: refused like a closed account; reverted if it fails).
  static constexpr uint8_t kCreating = 0;
  static constexpr uint8_t kClosing = 4;

  // Constant once published.
  NewAccount fields;  // fields.limits: as created (the current ones are below).
  uint32_t index = 0;

  // One writer at a time (see the class comment); relaxed loads from any thread: each is a
  // single value read on its own, and nothing else is published through it, except
  // `state`: release by the writer, acquire on the confirm path (see Usable).
  std::atomic<uint8_t> state{kCreating};
  std::atomic<int64_t> transaction_minor_max{0};
  std::atomic<int64_t> daily_minor_max{0};
  std::atomic<uint32_t> daily_count_max{0};

  // Any thread; relaxed: counters and a flag that publish no other data.
  std::atomic<bool> on_hold{false};            // Written by the reconciler (and replay).
  std::atomic<uint64_t> unverified_count{0};   // Risk exposure: ingest adds, reconciler removes.
  std::atomic<int64_t> unverified_minor{0};
  std::atomic<uint32_t> in_flight{0};          // Admitted as source or destination, not retired.
  DailyUsage daily;  // What the account spent today as a source (ingest charges; lock-free).
  // The head of the account's chain in the account activity index: its newest indexed seq, 0
  // for none this process life (the index is not persisted). Written only by AccountActivity
  // (engine/history/account_activity.h), which documents its ordering.
  std::atomic<uint64_t> newest_activity_seq{0};

  // Written by the one writer; read under the same exclusion (LookupAccount).
  AccountChange history[kAccountHistoryMax];
  uint32_t history_count = 0;  // Changes ever recorded (the array keeps the first and newest).

  // The account's state for the confirm path. acquire: pairs with the writer's release, so a
  // transaction admitted on kOpen follows the creation's ack in the happens-before order.
  uint8_t LoadState() const { return state.load(std::memory_order_acquire); }
  AccountLimits Limits() const;
  // The one writer (see the class comment); Limits() reads them back.
  void StoreLimits(const AccountLimits& limits);
  void AddHistory(AccountChange change);
  std::vector<AccountChange> History() const;
};

class AccountDirectory {
 public:
  // REQUIRES: capacity >= 1 and < 2^31.
  explicit AccountDirectory(size_t capacity);
  ~AccountDirectory();
  AccountDirectory(const AccountDirectory&) = delete;
  AccountDirectory& operator=(const AccountDirectory&) = delete;

  // The record of `id`, or nullptr (also for 0). Any thread.
  const AccountRecord* Find(uint64_t id) const;
  AccountRecord* FindMutable(uint64_t id) const;
  // Adds a record for `account` in state kCreating, created at `created_ns` (its first history
  // entry). nullptr when capacity accounts exist. REQUIRES: the one writer; Find(id) is null.
  AccountRecord* Insert(const NewAccount& account, int64_t created_ns);

  size_t capacity() const { return capacity_; }
  // Accounts created (any state). acquire: the records below it are fully written.
  size_t size() const { return size_.load(std::memory_order_acquire); }
  // Record i, for i < size(). Any thread.
  const AccountRecord& At(size_t i) const { return records_[i]; }
  AccountRecord& AtMutable(size_t i) const { return records_[i]; }
  // Records below this index are open (their creation kept), in creation order: the ledger
  // stage opens them in its ledger in that order. acquire/release: pairs with SetOpenedBelow.
  size_t opened_below() const { return opened_below_.load(std::memory_order_acquire); }
  // REQUIRES: the one writer; n >= opened_below(), records below n are no longer kCreating.
  void SetOpenedBelow(size_t n) { opened_below_.store(n, std::memory_order_release); }

  // The hold flag (a late fraud failure places it, an operator releases it): returns whether
  // the account was on hold before; false, changing nothing, for an unknown id. Any thread.
  bool SetHold(uint64_t id, bool held) const;
  bool IsHeld(uint64_t id) const;
  // Accounts on hold, in creation order: a scan, for the operator's ListHolds.
  std::vector<uint64_t> Holds() const;

  // Snapshots: every record's fields, state, hold flag, current limits and history.
  // Times are written in Unix ns: `mono_to_unix_ns` is added to each (and subtracted back).
  void SaveState(int64_t mono_to_unix_ns, std::string* out) const;
  // Restores what SaveState wrote into this directory: records it already has (the configured
  // accounts, inserted before recovery) must have the same fields at the same index; the rest
  // are inserted. REQUIRES: the one writer, before the engine runs.
  absl::Status RestoreState(absl::string_view bytes, int64_t mono_to_unix_ns);

  // Bytes of memory per account of capacity (index) and per created account (record).
  static constexpr size_t kRecordBytes = sizeof(AccountRecord);
  size_t slot_bytes_per_account() const;

 private:
  struct Slot {
    std::atomic<uint64_t> id{0};       // 0: free. Claimed once, never freed.
    std::atomic<uint32_t> index{0};
  };
  // The slot holding id, or the free slot ending its chain; *key_seen is the id its acquire load
  // saw there (id or 0): use it, not a second load.
  Slot* Probe(uint64_t id, uint64_t* key_seen) const;

  const size_t capacity_;
  const uint64_t slot_mask_;
  AccountRecord* const records_;  // calloc'd, capacity_ records.
  Slot* const slots_;             // calloc'd, slot_mask_ + 1 slots.
  std::atomic<size_t> size_{0};
  std::atomic<size_t> opened_below_{0};
};

// Limits are >= 0 and a daily amount limit fits DailyUsage (kMinorMax).
bool IsValidAccountLimits(const AccountLimits& limits);
// The checks behind CreateResult::kInvalid (a ledger open can still refuse an overflow).
bool IsValidNewAccount(const NewAccount& account);

}  // namespace vouch

#endif  // VOUCH_ENGINE_ACCOUNTS_ACCOUNT_DIRECTORY_H_
