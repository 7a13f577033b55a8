// Currency slots: one index per currency the engine settles, for per-currency sums kept in
// fixed arrays (the reconciler's, ingest's and EngineStats' value at risk).
#ifndef VOUCH_ENGINE_TYPES_CURRENCY_SLOTS_H_
#define VOUCH_ENGINE_TYPES_CURRENCY_SLOTS_H_

#include "engine/types/transaction.h"

namespace vouch {

// Per-currency sums live in fixed arrays with one slot per currency the engine settles
// (IsSupportedCurrency), so that counting an amount needs no map and no allocation. The slots
// are derived from IsSupportedCurrency once, in code order; the ingest path and the reconciler
// use the same slots.
inline constexpr int kCurrencySlotCount = 16;  // At least the number of supported currencies.
// The slot of a supported currency, -1 for any other code. No lock, no allocation.
int CurrencySlot(CurrencyCode code);
// The currency in `slot`, or 0 for a slot no currency uses.
CurrencyCode SlotCurrency(int slot);

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_CURRENCY_SLOTS_H_
