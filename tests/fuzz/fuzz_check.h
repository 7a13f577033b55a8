// FUZZ_CHECK: the fuzz targets' invariant check. Unlike assert it stays on in every build
// (NDEBUG included), and it aborts, which libFuzzer reports as a crash with the input saved.
#ifndef VOUCH_TESTS_FUZZ_FUZZ_CHECK_H_
#define VOUCH_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                       \
  do {                                                                              \
    if (!(condition)) {                                                             \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

#endif  // VOUCH_TESTS_FUZZ_FUZZ_CHECK_H_
