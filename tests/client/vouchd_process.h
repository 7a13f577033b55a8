// VouchdProcess: the real vouchd (a data dependency of the test) as a child process on an
// ephemeral loopback port, for tests that go over the wire end to end.
//
// Thread safety: one thread owns a VouchdProcess.
#ifndef VOUCH_TESTS_CLIENT_VOUCHD_PROCESS_H_
#define VOUCH_TESTS_CLIENT_VOUCHD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vouch::testing {

class VouchdProcess {
 public:
  // Starts $TEST_SRCDIR/vouch/tools/vouchd/vouchd --port=0 --port_file=... plus `flags`, and
  // waits until it has written its port.
  static absl::StatusOr<std::unique_ptr<VouchdProcess>> Start(
      const std::vector<std::string>& flags);
  ~VouchdProcess();  // Kills it if it still runs.
  VouchdProcess(const VouchdProcess&) = delete;
  VouchdProcess& operator=(const VouchdProcess&) = delete;

  int port() const { return port_; }
  // SIGTERM, then waits up to `timeout`; the exit status (kDeadlineExceeded if still running,
  // kInternal if it died of a signal).
  absl::StatusOr<int> Stop(absl::Duration timeout);

 private:
  VouchdProcess(pid_t pid, int port) : pid_(pid), port_(port) {}

  pid_t pid_;  // -1 once reaped.
  int port_;
};

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_CLIENT_VOUCHD_PROCESS_H_
