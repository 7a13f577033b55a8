// Counts heap allocations (every operator new, from every thread) while counting is on.
// Linking this library replaces the global operator new of the test binary.
#ifndef VOUCH_TESTS_TESTING_ALLOCATION_COUNTER_H_
#define VOUCH_TESTS_TESTING_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace vouch::testing {

void StartCountingAllocations();  // Resets the count.
// Stops counting; returns the allocations since StartCountingAllocations.
uint64_t StopCountingAllocations();

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_TESTING_ALLOCATION_COUNTER_H_
