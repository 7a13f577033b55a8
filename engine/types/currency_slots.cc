#include "engine/types/currency_slots.h"

#include <array>
#include <cassert>
#include <string>

namespace vouch {
namespace {

struct CurrencySlots {
  std::array<CurrencyCode, kCurrencySlotCount> codes = {};  // Ascending; then 0s.
  int count = 0;
};

// Built once from IsSupportedCurrency, the one list of currencies, by trying every code of three
// capital letters (17,576 lookups, on first use).
const CurrencySlots& Slots() {
  static const CurrencySlots slots = [] {
    CurrencySlots built;
    std::string code = "AAA";
    for (code[0] = 'A'; code[0] <= 'Z'; ++code[0]) {
      for (code[1] = 'A'; code[1] <= 'Z'; ++code[1]) {
        for (code[2] = 'A'; code[2] <= 'Z'; ++code[2]) {
          const CurrencyCode packed = PackCurrency(code);
          if (!IsSupportedCurrency(packed)) continue;
          assert(built.count < kCurrencySlotCount && "raise kCurrencySlotCount");
          if (built.count < kCurrencySlotCount) built.codes[built.count++] = packed;
        }
      }
    }
    return built;
  }();
  return slots;
}

}  // namespace

int CurrencySlot(CurrencyCode code) {
  const CurrencySlots& slots = Slots();
  const auto end = slots.codes.begin() + slots.count;
  const auto it = std::lower_bound(slots.codes.begin(), end, code);
  return it != end && *it == code ? static_cast<int>(it - slots.codes.begin()) : -1;
}

CurrencyCode SlotCurrency(int slot) {
  return slot >= 0 && slot < kCurrencySlotCount ? Slots().codes[slot] : 0;
}

}  // namespace vouch
