#include "engine/accounts/account_directory.h"

#include <cassert>
#include <cstdlib>
#include <new>

#include "absl/strings/str_cat.h"
#include "engine/common/byte_coding.h"
#include "engine/common/check.h"
#include "engine/types/mix.h"

namespace vouch {
namespace {

size_t SlotCount(size_t capacity) {
  size_t slots = 2;
  while (slots < 2 * capacity) slots *= 2;
  return slots;
}

template <typename T>
T* Zeroed(size_t n) {
  void* memory = std::calloc(n, sizeof(T));
  if (memory == nullptr) throw std::bad_alloc();
  return static_cast<T*>(memory);
}

constexpr uint64_t kSnapshotMagic = 0x31524944434f5644ULL;  // "DVOCDIR1", little-endian.

}  // namespace

bool IsValidAccountLimits(const AccountLimits& limits) {
  return limits.transaction_minor_max >= 0 && limits.daily_minor_max >= 0 &&
         limits.daily_minor_max <= DailyUsage::kMinorMax;
}

bool IsValidNewAccount(const NewAccount& a) {
  if (a.id == 0 || !IsSupportedCurrency(a.currency)) return false;
  if (!IsValidAccountLimits(a.limits) || a.overdraft_limit_minor < 0) return false;
  if ((a.flags & ~kAccountFlagsKnown) != 0 || a.flags == kAccountFlagsKnown) return false;
  const int64_t floor_minor =
      (a.flags & kAccountDebitsMustNotExceedCredits) ? 0 : -a.overdraft_limit_minor;
  if (a.opening_balance_minor < floor_minor) return false;
  if ((a.flags & kAccountCreditsMustNotExceedDebits) && a.opening_balance_minor > 0) return false;
  return true;
}

void AccountRecord::StoreLimits(const AccountLimits& limits) {
  // relaxed: each limit is one value read on its own; a new record's are published by the
  // release store of its slot's id (Insert).
  transaction_minor_max.store(limits.transaction_minor_max, std::memory_order_relaxed);
  daily_minor_max.store(limits.daily_minor_max, std::memory_order_relaxed);
  daily_count_max.store(limits.daily_count_max, std::memory_order_relaxed);
}

AccountLimits AccountRecord::Limits() const {
  // relaxed: each limit is one value read on its own (see AccountRecord).
  return {transaction_minor_max.load(std::memory_order_relaxed),
          daily_minor_max.load(std::memory_order_relaxed),
          daily_count_max.load(std::memory_order_relaxed)};
}

// Keeps the first entry (the creation) and the newest kAccountHistoryMax - 1 after it, in a
// ring over history[1..].
void AccountRecord::AddHistory(AccountChange change) {
  constexpr uint32_t kRing = kAccountHistoryMax - 1;
  if (history_count == 0) {
    history[0] = change;
  } else {
    history[1 + (history_count - 1) % kRing] = change;
  }
  ++history_count;
}

std::vector<AccountChange> AccountRecord::History() const {
  constexpr uint32_t kRing = kAccountHistoryMax - 1;
  std::vector<AccountChange> out;
  if (history_count == 0) return out;
  out.push_back(history[0]);
  const uint32_t later = history_count - 1;
  const uint32_t kept = later < kRing ? later : kRing;
  for (uint32_t i = later - kept; i < later; ++i) out.push_back(history[1 + i % kRing]);
  return out;
}

AccountDirectory::AccountDirectory(size_t capacity)
    : capacity_(capacity),
      slot_mask_(SlotCount(capacity) - 1),
      records_(Zeroed<AccountRecord>(capacity)),
      slots_(Zeroed<Slot>(SlotCount(capacity))) {
  assert(capacity >= 1 && capacity < (size_t{1} << 31));
}

AccountDirectory::~AccountDirectory() {
  const size_t n = size_.load(std::memory_order_relaxed);  // relaxed: no other thread is left.
  for (size_t i = 0; i < n; ++i) records_[i].~AccountRecord();
  std::free(records_);
  std::free(slots_);
}

size_t AccountDirectory::slot_bytes_per_account() const {
  return (slot_mask_ + 1) * sizeof(Slot) / capacity_;
}

AccountDirectory::Slot* AccountDirectory::Probe(uint64_t id, uint64_t* key_seen) const {
  uint64_t index = Mix64(id);
  for (;; ++index) {
    Slot& slot = slots_[index & slot_mask_];
    // acquire: pairs with Insert's release; the index and the record are visible.
    const uint64_t key = slot.id.load(std::memory_order_acquire);
    // The table is at most half full, so a free slot always ends the probe.
    if (key == id || key == 0) {
      *key_seen = key;
      return &slot;
    }
  }
}

AccountRecord* AccountDirectory::FindMutable(uint64_t id) const {
  if (id == 0) return nullptr;
  uint64_t key = 0;
  Slot* slot = Probe(id, &key);
  // The key Probe's acquire load saw, not a second load: one that saw the id published only
  // after Probe's load would carry no ordering, and the record could read as unwritten (found
  // by TSan in account_directory_test).
  if (key != id) return nullptr;
  // relaxed: ordered by the acquire load of the id in Probe.
  return &records_[slot->index.load(std::memory_order_relaxed)];
}

const AccountRecord* AccountDirectory::Find(uint64_t id) const { return FindMutable(id); }

AccountRecord* AccountDirectory::Insert(const NewAccount& account, int64_t created_ns) {
  assert(account.id != 0);
  const size_t n = size_.load(std::memory_order_relaxed);  // relaxed: the one writer.
  if (n >= capacity_) return nullptr;
  uint64_t key = 0;
  Slot* slot = Probe(account.id, &key);
  VOUCH_CHECK(key == 0, "an account id is inserted once: its first answer is its only one");
  AccountRecord* record = new (&records_[n]) AccountRecord();
  record->fields = account;
  record->index = static_cast<uint32_t>(n);
  // relaxed: published by the release store of the slot's id below.
  record->StoreLimits(account.limits);
  record->AddHistory({AccountChange::Kind::kCreated, created_ns});
  slot->index.store(static_cast<uint32_t>(n), std::memory_order_relaxed);  // relaxed: as above.
  // release: Find's acquire of the id sees the index and the record.
  slot->id.store(account.id, std::memory_order_release);
  // release: size() readers see the record complete.
  size_.store(n + 1, std::memory_order_release);
  return record;
}

bool AccountDirectory::SetHold(uint64_t id, bool held) const {
  AccountRecord* record = FindMutable(id);
  // relaxed: a flag that publishes no other data.
  return record != nullptr && record->on_hold.exchange(held, std::memory_order_relaxed);
}

bool AccountDirectory::IsHeld(uint64_t id) const {
  const AccountRecord* record = Find(id);
  // relaxed: as above.
  return record != nullptr && record->on_hold.load(std::memory_order_relaxed);
}

std::vector<uint64_t> AccountDirectory::Holds() const {
  std::vector<uint64_t> held;
  const size_t n = size();
  for (size_t i = 0; i < n; ++i) {
    // relaxed: a flag read on its own.
    if (records_[i].on_hold.load(std::memory_order_relaxed)) held.push_back(records_[i].fields.id);
  }
  return held;
}

// Layout: magic u64 | count u64 | per record: id u64 | currency u32 | opening i64 |
// overdraft i64 | flags u32 | created limits (i64, i64, u32) | user_data u64 | state u8 |
// on_hold u8 | current limits (i64, i64, u32) | daily usage (amount word u64, count word u64)
// | history_count u32 | kept u8 | kept x (kind u8 | at_unix_ns i64).
void AccountDirectory::SaveState(int64_t mono_to_unix_ns, std::string* out) const {
  out->clear();
  ByteWriter w(out);
  w.Put<uint64_t>(kSnapshotMagic);
  const size_t n = size();
  w.Put<uint64_t>(n);
  for (size_t i = 0; i < n; ++i) {
    const AccountRecord& r = records_[i];
    const NewAccount& f = r.fields;
    w.Put(f.id);
    w.Put(f.currency);
    w.Put(f.opening_balance_minor);
    w.Put(f.overdraft_limit_minor);
    w.Put(f.flags);
    w.Put(f.limits.transaction_minor_max);
    w.Put(f.limits.daily_minor_max);
    w.Put(f.limits.daily_count_max);
    w.Put(f.user_data);
    // relaxed (all): the snapshot's replayer is the one writer of this directory.
    w.Put<uint8_t>(r.state.load(std::memory_order_relaxed));
    w.Put<uint8_t>(r.on_hold.load(std::memory_order_relaxed) ? 1 : 0);
    const AccountLimits limits = r.Limits();
    w.Put(limits.transaction_minor_max);
    w.Put(limits.daily_minor_max);
    w.Put(limits.daily_count_max);
    w.Put<uint64_t>(r.daily.amount_word());
    w.Put<uint64_t>(r.daily.count_word());
    w.Put(r.history_count);
    const std::vector<AccountChange> history = r.History();
    w.Put<uint8_t>(static_cast<uint8_t>(history.size()));
    for (const AccountChange& change : history) {
      w.Put<uint8_t>(static_cast<uint8_t>(change.kind));
      w.Put<int64_t>(change.at_ns + mono_to_unix_ns);
    }
  }
}

absl::Status AccountDirectory::RestoreState(absl::string_view bytes, int64_t mono_to_unix_ns) {
  ByteReader in(bytes);
  auto invalid = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("account directory snapshot: ", what));
  };
  if (in.Get<uint64_t>() != kSnapshotMagic) return invalid("bad magic");
  const uint64_t n = in.Get<uint64_t>();
  if (n > capacity_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "account directory snapshot: ", n, " accounts, above account_capacity ", capacity_));
  }
  for (uint64_t i = 0; i < n; ++i) {
    NewAccount f;
    f.id = in.Get<uint64_t>();
    f.currency = in.Get<CurrencyCode>();
    f.opening_balance_minor = in.Get<int64_t>();
    f.overdraft_limit_minor = in.Get<int64_t>();
    f.flags = in.Get<uint32_t>();
    f.limits.transaction_minor_max = in.Get<int64_t>();
    f.limits.daily_minor_max = in.Get<int64_t>();
    f.limits.daily_count_max = in.Get<uint32_t>();
    f.user_data = in.Get<uint64_t>();
    const uint8_t state = in.Get<uint8_t>();
    const uint8_t on_hold = in.Get<uint8_t>();
    AccountLimits limits;
    limits.transaction_minor_max = in.Get<int64_t>();
    limits.daily_minor_max = in.Get<int64_t>();
    limits.daily_count_max = in.Get<uint32_t>();
    const uint64_t daily_amount_word = in.Get<uint64_t>();
    const uint64_t daily_count_word = in.Get<uint64_t>();
    (void)in.Get<uint32_t>();  // Changes ever recorded; the kept ones are what counts.
    const uint8_t kept = in.Get<uint8_t>();
    if (!in.ok() || kept > kAccountHistoryMax || state > AccountRecord::kClosing ||
        on_hold > 1 || !IsValidNewAccount(f)) {
      return invalid(absl::StrCat("record ", i, " is damaged"));
    }
    AccountRecord* r = FindMutable(f.id);
    if (r == nullptr) {
      if (size() != i) return invalid(absl::StrCat("record ", i, " is out of creation order"));
      r = Insert(f, 0);
    } else if (r->index != i || !(r->fields == f)) {
      return invalid(absl::StrCat("account ", f.id, " differs from the configured one"));
    }
    // relaxed (all): before the engine runs; published with the directory.
    r->state.store(state == AccountRecord::kClosing ? static_cast<uint8_t>(AccountState::kOpen)
                                                     : state,
                   std::memory_order_relaxed);
    r->on_hold.store(on_hold != 0, std::memory_order_relaxed);
    r->StoreLimits(limits);
    r->daily.Restore(daily_amount_word, daily_count_word);
    r->history_count = 0;
    for (uint8_t k = 0; k < kept; ++k) {
      const uint8_t kind = in.Get<uint8_t>();
      const int64_t at_unix_ns = in.Get<int64_t>();
      if (kind < 1 || kind > 5) return invalid("bad history entry");
      r->AddHistory({static_cast<AccountChange::Kind>(kind), at_unix_ns - mono_to_unix_ns});
    }
  }
  if (!in.ok() || in.remaining() != 0) return invalid("truncated or trailing bytes");
  return absl::OkStatus();
}

}  // namespace vouch
