#include "tests/client/vouchd_process.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace vouch::testing {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(15);
constexpr absl::Duration kPoll = absl::Milliseconds(10);

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

// The port once vouchd has written it ("PORT" or "HOST:PORT" and a newline); 0 before.
int ReadPort(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  if (!std::getline(file, line)) return 0;
  absl::string_view text = line;
  if (const size_t colon = text.rfind(':'); colon != absl::string_view::npos) {
    text.remove_prefix(colon + 1);
  }
  int port = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) ? port : 0;
}

// waitpid without blocking: true once the child has exited, with its status.
bool Reaped(pid_t pid, int* status) { return waitpid(pid, status, WNOHANG) == pid; }

}  // namespace

absl::StatusOr<std::unique_ptr<VouchdProcess>> VouchdProcess::Start(
    const std::vector<std::string>& flags) {
  static std::atomic<int> started{0};
  const std::string binary = EnvOr("TEST_SRCDIR", ".") + "/vouch/tools/vouchd/vouchd";
  // relaxed: only makes the file names distinct.
  const std::string port_file =
      absl::StrCat(EnvOr("TEST_TMPDIR", "/tmp"), "/vouchd-", getpid(), "-",
                   started.fetch_add(1, std::memory_order_relaxed), ".port");
  std::remove(port_file.c_str());

  std::vector<std::string> args = {binary, "--port=0", "--port_file=" + port_file};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (const int rc = posix_spawn(&pid, binary.c_str(), nullptr, nullptr, argv.data(), environ);
      rc != 0) {
    return absl::InternalError(absl::StrCat("posix_spawn ", binary, ": error ", rc));
  }
  std::unique_ptr<VouchdProcess> process(new VouchdProcess(pid, 0));
  const absl::Time deadline = absl::Now() + kStartTimeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (Reaped(pid, &status)) {
      process->pid_ = -1;
      return absl::InternalError(absl::StrCat("vouchd exited at start, status ", status));
    }
    process->port_ = ReadPort(port_file);
    if (process->port_ > 0) return process;
    absl::SleepFor(kPoll);
  }
  return absl::DeadlineExceededError("vouchd did not write its port in time");
}

VouchdProcess::~VouchdProcess() {
  if (pid_ < 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
}

absl::StatusOr<int> VouchdProcess::Stop(absl::Duration timeout) {
  if (pid_ < 0) return absl::FailedPreconditionError("vouchd has already been stopped");
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (!Reaped(pid_, &status)) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("vouchd still runs after SIGTERM and the timeout");
    }
    absl::SleepFor(kPoll);
  }
  pid_ = -1;
  if (!WIFEXITED(status)) {
    return absl::InternalError(absl::StrCat("vouchd died of signal ", WTERMSIG(status)));
  }
  return WEXITSTATUS(status);
}

}  // namespace vouch::testing
