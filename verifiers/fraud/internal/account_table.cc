#include "verifiers/fraud/internal/account_table.h"

#include <algorithm>
#include <bit>
#include <cassert>

namespace vouch::fraud::internal {

void AccountState::HashInto(StateHasher& hasher) const {
  velocity.HashInto(hasher);
  amounts.HashInto(hasher);
  hasher.Add(uint64_t{last_country});
  hasher.Add(last_country_ns);
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

}  // namespace vouch::fraud::internal
