// Running out of file descriptors (EMFILE) neither spins the I/O thread nor stalls the server,
// and RLIMIT_NOFILE is fitted to --max_connections at start.
//
// Method: this binary lowers its own hard RLIMIT_NOFILE (process-wide, and not to be raised
// again, hence a binary of its own) and runs the server in process. To run the server out of
// descriptors, the test takes every free descriptor itself (dups of /dev/null) after opening
// client sockets whose connections then wait in the listener's queue. The listener is
// level-triggered, so a loop that only retries accept4 on EMFILE would run at 100 % of a core:
// the I/O thread's CPU time (from /proc, read through descriptors opened beforehand) over one
// second of wall time must stay far below that, and accept4 must have failed only about once
// per queued connection. Each queued client must get a clear refusal, and once descriptors are
// free again a new connection must be served.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

constexpr rlim_t kHardLimit = 512;

void LowerHardLimit() {
  rlimit limit = {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max > kHardLimit) limit.rlim_max = kHardLimit;
  limit.rlim_cur = std::min(limit.rlim_cur, limit.rlim_max);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
}

rlim_t SoftLimit() {
  rlimit limit = {};
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

// The /proc stat file of the thread named `name`, opened now (reading it later needs no free
// descriptor); -1 if there is none.
int OpenThreadStat(const std::string& name) {
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return -1;
  int fd = -1;
  while (const dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    const std::string dir = std::string("/proc/self/task/") + entry->d_name;
    char comm[64] = {};
    const int comm_fd = open((dir + "/comm").c_str(), O_RDONLY | O_CLOEXEC);
    if (comm_fd < 0) continue;
    const ssize_t n = read(comm_fd, comm, sizeof(comm) - 1);
    close(comm_fd);
    if (n > 0 && std::string(comm, static_cast<size_t>(n)) == name + "\n") {
      fd = open((dir + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
      break;
    }
  }
  closedir(tasks);
  return fd;
}

// User plus system CPU time of the thread, in clock ticks.
long CpuTicks(int stat_fd) {
  char buffer[1024] = {};
  const ssize_t n = pread(stat_fd, buffer, sizeof(buffer) - 1, 0);
  if (n <= 0) return -1;
  const std::string stat(buffer, static_cast<size_t>(n));
  // Fields after "(comm) ": state is field 3; utime and stime are fields 14 and 15.
  size_t at = stat.rfind(')') + 2;
  for (int field = 3; field < 14; ++field) at = stat.find(' ', at) + 1;
  const long utime = std::stol(stat.substr(at));
  const long stime = std::stol(stat.substr(stat.find(' ', at) + 1));
  return utime + stime;
}

int ConnectedSocket(int port, int fd) {
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  return connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
}

TEST(DescriptorLimitTest, MaxConnectionsAboveTheHardLimitIsRefusedNamingTheFlag) {
  LowerHardLimit();
  ServerOptions options;
  options.port = 0;
  options.max_connections = kHardLimit;  // Plus the server's own: more than the hard limit.
  auto created = Server::Create(options, vouch::testing::BankOptions(10));
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(created.status()));
  EXPECT_NE(created.status().message().find("max_connections"), absl::string_view::npos)
      << created.status();
  EXPECT_NE(created.status().message().find("RLIMIT_NOFILE"), absl::string_view::npos)
      << created.status();
}

TEST(DescriptorLimitTest, TheSoftLimitIsRaisedToWhatMaxConnectionsNeeds) {
  LowerHardLimit();
  rlimit limit = {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  limit.rlim_cur = 128;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  ServerOptions options;
  options.port = 0;
  options.max_connections = 200;
  auto created = Server::Create(options, vouch::testing::BankOptions(10));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_GE(SoftLimit(), rlim_t{200 + 64});
  EXPECT_LE(SoftLimit(), kHardLimit);
}

class DescriptorExhaustionTest : public ServerTest {
 protected:
  void TearDown() override {
    for (const int fd : fillers_) close(fd);
    ServerTest::TearDown();
  }
  // Takes every free descriptor.
  void Exhaust() {
    for (;;) {
      const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
    ASSERT_EQ(errno, EMFILE);
  }
  void Release(size_t count) {
    for (size_t i = 0; i < count && !fillers_.empty(); ++i) {
      close(fillers_.back());
      fillers_.pop_back();
    }
  }
  std::vector<int> fillers_;
};

TEST_F(DescriptorExhaustionTest, OutOfDescriptorsTheListenerRefusesWithoutSpinning) {
  LowerHardLimit();
  ServerOptions options;
  options.max_connections = 64;
  StartServer(options, vouch::testing::BankOptions(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // The I/O thread has its name.
  const int stat_fd = OpenThreadStat("vouch-io-0");
  ASSERT_GE(stat_fd, 0);
  constexpr int kQueued = 3;
  int sockets[kQueued];
  for (int& fd : sockets) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    const timeval patience = {5, 0};  // A server that never accepts fails the test, not hangs.
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
  }
  Exhaust();
  // The kernel completes these handshakes; the server cannot accept them into a descriptor.
  for (const int fd : sockets) ASSERT_EQ(ConnectedSocket(port(), fd), 0);

  const long ticks_before = CpuTicks(stat_fd);
  const auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long ticks = CpuTicks(stat_fd) - ticks_before;
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  const double cpu_share = static_cast<double>(ticks) / sysconf(_SC_CLK_TCK) / wall_s;
  EXPECT_LT(cpu_share, 0.3) << "the I/O thread spun: " << ticks << " ticks in " << wall_s << " s";
  const ServerStats stats = server_->Stats();
  EXPECT_GE(stats.accept_descriptors_exhausted, 1u);
  EXPECT_LE(stats.accept_descriptors_exhausted, 2u * kQueued) << "about one per queued client";

  // Each queued client was told why (read without a descriptor: the socket is already open).
  for (const int fd : sockets) {
    char buffer[256];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    ASSERT_GT(n, 1) << "no refusal";
    v1::ServerMessage message;
    ASSERT_TRUE(message.ParseFromArray(buffer + 1, static_cast<int>(n - 1)));
    EXPECT_EQ(message.error().code(), v1::ERROR_CODE_TOO_MANY_CONNECTIONS);
    close(fd);
  }
  EXPECT_EQ(server_->Stats().errors[v1::ERROR_CODE_TOO_MANY_CONNECTIONS],
            static_cast<uint64_t>(kQueued));

  // Descriptors free again: a new connection is accepted and served.
  Release(8);
  TestClient client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Hello());
  v1::ClientMessage ping;
  ping.mutable_ping()->set_nonce(9);
  ASSERT_TRUE(client.Send(ping));
  v1::ServerMessage message;
  ASSERT_TRUE(client.Read(&message));
  EXPECT_TRUE(message.has_pong()) << message.DebugString();
  close(stat_fd);
}

}  // namespace
}  // namespace vouch::server::testing
