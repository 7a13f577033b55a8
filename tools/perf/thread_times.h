// Per-thread CPU time and run-queue wait of this process, from /proc/self/task/*/schedstat:
// where a step's CPU went, and how long each thread was runnable but had no core. On the 2-core
// machine this is what tells a saturated CPU from a slow stage.
//
// Thread safety: any thread; each call reads /proc afresh. Allocates: not for a hot path.
#ifndef VOUCH_TOOLS_PERF_THREAD_TIMES_H_
#define VOUCH_TOOLS_PERF_THREAD_TIMES_H_

#include <cstdint>
#include <map>
#include <string>

namespace vouch::perf {

struct ThreadTimes {
  int64_t run_ns = 0;   // On a CPU.
  int64_t wait_ns = 0;  // Runnable, waiting for a CPU.
};

// By thread id; the name is the thread's comm.
struct ThreadSample {
  std::map<int, std::pair<std::string, ThreadTimes>> by_tid;
};

// Empty when /proc is unreadable (the report then has no thread times).
ThreadSample SampleThreads();

// The calling thread's times since it started; zero when /proc is unreadable.
ThreadTimes SampleThisThread();

// Busy CPU time of the whole machine (every process; /proc/stat: all but idle and iowait), so a
// step can tell how much of the machine other processes took. 0 when unreadable.
int64_t MachineBusyNs();

// What each thread name used between two samples (threads born after `from` count from zero),
// summed over threads of the same name.
std::map<std::string, ThreadTimes> TimesBetween(const ThreadSample& from, const ThreadSample& to);

}  // namespace vouch::perf

#endif  // VOUCH_TOOLS_PERF_THREAD_TIMES_H_
