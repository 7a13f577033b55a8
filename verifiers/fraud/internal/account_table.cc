#include "verifiers/fraud/internal/account_table.h"

#include <algorithm>
#include <bit>
#include <cassert>

#include "absl/strings/str_format.h"

namespace vouch::fraud::internal {

using verifiers::snapshot::ByteReader;
using verifiers::snapshot::ByteWriter;

void AccountState::HashInto(StateHasher& hasher) const {
  velocity.HashInto(hasher);
  amounts.HashInto(hasher);
  hasher.Add(uint64_t{last_country});
  hasher.Add(last_country_ns);
}

void AccountState::Save(ByteWriter& out) const {
  velocity.Save(out);
  amounts.Save(out);
  out.Put(last_country);
  out.Put(last_country_ns);
}

absl::Status AccountState::Restore(ByteReader& in, int64_t clock_ns, int64_t velocity_bucket_ns) {
  const absl::Status velocity_status = velocity.Restore(in, clock_ns / velocity_bucket_ns);
  const absl::Status amounts_status = amounts.Restore(in);
  last_country = in.Get<CountryCode>();
  last_country_ns = in.Get<int64_t>();
  if (!velocity_status.ok()) return velocity_status;
  if (!amounts_status.ok()) return amounts_status;
  // The travel rule asserts that the account clock never goes back past last_country_ns.
  if (last_country_ns < 0 || last_country_ns > clock_ns) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "country seen at %d ns, outside the account clock's [0, %d]", last_country_ns, clock_ns));
  }
  return absl::OkStatus();
}

AccountTable::AccountTable(size_t capacity_min) {
  assert(capacity_min > 0 && capacity_min <= kCapacityMax);
  const size_t capacity = std::bit_ceil(std::max(capacity_min, kWays));
  sets_.resize(capacity / kWays);
  states_.resize(capacity);
  set_mask_ = sets_.size() - 1;
}

AccountTable::Entry AccountTable::FindOrInsert(uint64_t account, int64_t now_ns) {
  assert(account != 0);
  // Mix first: account ids are often sequential, and their low bits alone would crowd sets.
  const size_t set_index = Mix64(account) & set_mask_;
  Set& set = sets_[set_index];
  const size_t state_index_first = set_index * kWays;
  const auto found = std::find(set.accounts.begin(), set.accounts.end(), account);
  if (found == set.accounts.end()) {
    const size_t way = Claim(set, account, now_ns, state_index_first);
    return {states_[state_index_first + way], now_ns};
  }
  const size_t way = found - set.accounts.begin();
  set.last_seen_ns[way] = std::max(set.last_seen_ns[way], now_ns);
  return {states_[state_index_first + way], set.last_seen_ns[way]};
}

size_t AccountTable::Claim(Set& set, uint64_t account, int64_t now_ns,
                           size_t state_index_first) {
  const size_t way = VictimWay(set);
  if (set.accounts[way] != 0) {
    ++evictions_;
    states_[state_index_first + way] = AccountState{};
  }
  set.accounts[way] = account;
  set.last_seen_ns[way] = now_ns;
  return way;
}

// The first free way, else the least recently seen one (the lowest way on a tie, so the choice
// is deterministic).
size_t AccountTable::VictimWay(const Set& set) {
  size_t victim = 0;
  for (size_t way = 0; way < kWays; ++way) {
    if (set.accounts[way] == 0) return way;
    if (set.last_seen_ns[way] < set.last_seen_ns[victim]) victim = way;
  }
  return victim;
}

void AccountTable::ClearVelocity() {
  for (AccountState& state : states_) state.velocity.Clear();
}

uint64_t AccountTable::Hash() const {
  StateHasher hasher;
  for (size_t set_index = 0; set_index < sets_.size(); ++set_index) {
    const Set& set = sets_[set_index];
    for (size_t way = 0; way < kWays; ++way) {
      if (set.accounts[way] == 0) continue;
      hasher.Add(uint64_t{set_index * kWays + way});
      hasher.Add(set.accounts[way]);
      hasher.Add(set.last_seen_ns[way]);
      states_[set_index * kWays + way].HashInto(hasher);
    }
  }
  return hasher.hash();
}

// Table order, not account order: the layout is a function of the history and the capacity alone
// (Mix64 has no per-process seed), so the bytes are deterministic without a sort, and saving
// reads the table once, front to back.
void AccountTable::Save(ByteWriter& out) const {
  uint64_t count = 0;
  for (const Set& set : sets_) {
    count += kWays - std::count(set.accounts.begin(), set.accounts.end(), uint64_t{0});
  }
  out.Put(uint64_t{capacity()});
  out.Put(evictions_);
  out.Put(count);
  for (size_t slot = 0; slot < capacity(); ++slot) {
    const Set& set = sets_[slot / kWays];
    if (set.accounts[slot % kWays] == 0) continue;
    out.Put(static_cast<uint32_t>(slot));
    out.Put(set.accounts[slot % kWays]);
    out.Put(set.last_seen_ns[slot % kWays]);
    states_[slot].Save(out);
  }
}

template <typename Visit>
absl::Status AccountTable::ReadSaved(ByteReader& in, int64_t velocity_bucket_ns,
                                     uint64_t* evictions, Visit visit) const {
  const auto capacity_saved = in.Get<uint64_t>();
  *evictions = in.Get<uint64_t>();
  const auto count = in.Get<uint64_t>();
  if (!in.ok()) return absl::InvalidArgumentError("truncated in the account table header");
  if (!std::has_single_bit(capacity_saved) || capacity_saved < kWays ||
      capacity_saved > kCapacityMax || count > capacity_saved) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "an account table of capacity %d cannot hold %d accounts", capacity_saved, count));
  }
  if (capacity_saved > capacity()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the snapshot's account table has capacity %d, this one %d: construct the checker with "
        "account_capacity >= %d",
        capacity_saved, capacity(), capacity_saved));
  }
  const uint64_t set_mask_saved = capacity_saved / kWays - 1;
  SavedEntry entry;
  int64_t slot_previous = -1;
  // The accounts read so far of the saved set being read: slots increase, so a set's entries
  // are consecutive, and an account (whose set is fixed by its id) can repeat only there.
  std::array<uint64_t, kWays> set_accounts{};
  for (uint64_t i = 0; i < count; ++i) {
    entry.slot = in.Get<uint32_t>();
    entry.account = in.Get<uint64_t>();
    entry.last_seen_ns = in.Get<int64_t>();
    const absl::Status state_status =
        entry.state.Restore(in, entry.last_seen_ns, velocity_bucket_ns);
    if (!in.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("truncated in account %d of %d", i, count));
    }
    const auto malformed = [&](absl::string_view problem) {
      return absl::InvalidArgumentError(absl::StrFormat("account %d of %d (id %d, slot %d): %s",
                                                        i, count, entry.account, entry.slot,
                                                        problem));
    };
    if (entry.slot <= slot_previous || entry.slot >= capacity_saved) {
      return malformed(absl::StrFormat("slot out of order or range (previous %d, capacity %d)",
                                       slot_previous, capacity_saved));
    }
    if (entry.account == 0 || (Mix64(entry.account) & set_mask_saved) != entry.slot / kWays) {
      return malformed("the account does not belong in that slot's set");
    }
    if (slot_previous < 0 || entry.slot / kWays != static_cast<uint64_t>(slot_previous) / kWays) {
      set_accounts.fill(0);
    }
    if (std::find(set_accounts.begin(), set_accounts.end(), entry.account) != set_accounts.end()) {
      return malformed("the account appears twice");
    }
    if (entry.last_seen_ns < 0) return malformed("negative account clock");
    if (!state_status.ok()) return malformed(state_status.message());
    set_accounts[entry.slot % kWays] = entry.account;
    slot_previous = entry.slot;
    visit(entry);
  }
  return absl::OkStatus();
}

absl::Status AccountTable::CheckSaved(ByteReader& in, int64_t velocity_bucket_ns) const {
  uint64_t evictions;
  return ReadSaved(in, velocity_bucket_ns, &evictions, [](const SavedEntry&) {});
}

void AccountTable::LoadSaved(ByteReader& in, int64_t velocity_bucket_ns) {
  std::fill(sets_.begin(), sets_.end(), Set{});
  std::fill(states_.begin(), states_.end(), AccountState{});
  [[maybe_unused]] const absl::Status status = ReadSaved(
      in, velocity_bucket_ns, &evictions_, [this](const SavedEntry& entry) { Place(entry); });
  assert(status.ok());
}

// The entry keeps its way; its set is its account's set in this table. Both capacities are
// powers of two, this one at least the saved one, so this table's set index extends the saved
// one by high bits: the accounts of one set here all come from one saved set, where their ways
// differed. So no two entries land on one way.
void AccountTable::Place(const SavedEntry& entry) {
  const size_t set_index = Mix64(entry.account) & set_mask_;
  const size_t way = entry.slot % kWays;
  Set& set = sets_[set_index];
  assert(set.accounts[way] == 0);
  set.accounts[way] = entry.account;
  set.last_seen_ns[way] = entry.last_seen_ns;
  states_[set_index * kWays + way] = entry.state;
}

}  // namespace vouch::fraud::internal
