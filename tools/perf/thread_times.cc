#include "tools/perf/thread_times.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>

namespace vouch::perf {
namespace {

bool ReadTask(const std::string& dir, std::string* name, ThreadTimes* times) {
  std::ifstream comm(dir + "/comm");
  std::ifstream schedstat(dir + "/schedstat");
  if (!std::getline(comm, *name)) return false;
  return static_cast<bool>(schedstat >> times->run_ns >> times->wait_ns);
}

}  // namespace

ThreadSample SampleThreads() {
  ThreadSample sample;
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return sample;
  while (const dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::string name;
    ThreadTimes times;
    if (ReadTask(std::string("/proc/self/task/") + entry->d_name, &name, &times)) {
      sample.by_tid[std::atoi(entry->d_name)] = {std::move(name), times};
    }
  }
  closedir(tasks);
  return sample;
}

int64_t MachineBusyNs() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  int64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal)) {
    return 0;
  }
  const int64_t ticks_per_s = sysconf(_SC_CLK_TCK);
  return (user + nice + system + irq + softirq + steal) * (1'000'000'000 / ticks_per_s);
}

ThreadTimes SampleThisThread() {
  std::string name;
  ThreadTimes times;
  if (!ReadTask("/proc/thread-self", &name, &times)) return {};
  return times;
}

std::map<std::string, ThreadTimes> TimesBetween(const ThreadSample& from, const ThreadSample& to) {
  std::map<std::string, ThreadTimes> by_name;
  for (const auto& [tid, named] : to.by_tid) {
    ThreadTimes used = named.second;
    if (auto it = from.by_tid.find(tid); it != from.by_tid.end()) {
      used.run_ns -= it->second.second.run_ns;
      used.wait_ns -= it->second.second.wait_ns;
    }
    ThreadTimes& sum = by_name[named.first];
    sum.run_ns += used.run_ns;
    sum.wait_ns += used.wait_ns;
  }
  return by_name;
}

}  // namespace vouch::perf
