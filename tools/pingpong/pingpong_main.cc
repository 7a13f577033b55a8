// vouch-pingpong: the physical reference for vouch's confirm round trip over TCP.
//
// Phase 1 measures a raw loopback ping-pong, twice: with the echo thread blocking in read(2), and
// with it polling (the physical floor; the ratio is taken against this one). A thread in this process echoes frames back, and
// the client sends a frame the size of a one-transaction Submit and reads back a frame the size
// of a Confirmation. One message is outstanding at a time, each socket has TCP_NODELAY, and the
// reads and writes are blocking. Nothing can be faster than this on the machine.
//
// Phase 2, when --port names a running vouchd, does the same closed-loop round trip with vouch
// itself: Submit one transaction, wait for its Confirmation, skip the Outcomes in between.
// It prints both percentile rows and the ratio of the p50s, all from one run.
//
//   bazel run -c opt //tools/pingpong:vouch-pingpong -- --port=7411 --round_trips=20000
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "engine/metrics/histogram.h"
#include "engine/net/frame_codec.h"
#include "proto/vouch.pb.h"

ABSL_FLAG(int, round_trips, 20'000, "Round trips per phase.");
ABSL_FLAG(int, port, 0, "A running vouchd to measure against (0: only the raw ping-pong).");
ABSL_FLAG(std::string, json, "", "Also write the results as JSON to this file.");

namespace vouch {
namespace {

constexpr size_t kFrameMax = 64 * 1024;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// The client polls its socket instead of blocking, in every phase: a blocked reader's wake-up on
// this VM costs ~25 us (an idle vCPU has to be woken), which would swamp what is measured.
ssize_t SpinRead(int fd, char* buffer, size_t size) {
  for (;;) {
    const ssize_t n = recv(fd, buffer, size, MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EINTR)) return n;
  }
}

bool SendAll(int fd, const std::string& bytes) {
  for (size_t sent = 0; sent < bytes.size();) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Reads frames until one whose envelope body is `field`; false on close or a bad frame.
bool ReadUntil(int fd, net::FrameDecoder& decoder, int field) {
  for (;;) {
    const char* data = nullptr;
    size_t size = 0;
    const auto result = decoder.NextFrame(&data, &size);
    if (result == net::FrameDecoder::Result::kError) return false;
    if (result == net::FrameDecoder::Result::kFrame) {
      net::EnvelopeBody body;
      if (!net::ParseEnvelope(data, size, 5, &body)) return false;
      if (body.field == field) return true;
      if (body.field == v1::ServerMessage::kError) return false;
      continue;
    }
    const ssize_t n = SpinRead(fd, decoder.WritePointer(), decoder.WritableBytes());
    if (n <= 0) return false;
    decoder.Commit(static_cast<size_t>(n));
  }
}

v1::ClientMessage SubmitOne(uint64_t id) {
  v1::ClientMessage message;
  v1::Transaction* txn = message.mutable_submit()->add_transactions();
  txn->set_id(id);
  txn->set_source_account(1 + id % 9'000);
  txn->set_destination_account(2 + id % 9'000);
  txn->set_amount(100);
  txn->set_currency("USD");
  txn->set_merchant_id(1);
  txn->set_merchant_category(5411);
  txn->set_country("GB");
  return message;
}

// The request and reply frames vouch exchanges for one transaction, byte for byte in size.
void ReferenceFrames(std::string* request, std::string* reply) {
  net::AppendFrame(SubmitOne(1'000'000'000'000), kFrameMax, request);
  v1::ServerMessage confirmation;
  confirmation.mutable_confirmation()->set_transaction_id(1'000'000'000'000);
  confirmation.mutable_confirmation()->set_seq(1'000'000);
  confirmation.mutable_confirmation()->set_status(v1::CONFIRM_STATUS_CONFIRMED);
  confirmation.mutable_confirmation()->set_deadline_unix_ns(1'800'000'000'000'000'000);
  net::AppendFrame(confirmation, kFrameMax, reply);
}

// Phase 1: an echo thread answers each request frame with the reply frame. With `spin`, the
// echo thread polls its socket without blocking (the floor: no wake-up on the server side);
// without, it blocks in read(2) as a plain server would.
LatencyHistogram RawPingPong(int round_trips, bool spin) {
  std::string request, reply;
  ReferenceFrames(&request, &reply);
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  listen(listener, 1);
  socklen_t length = sizeof(address);
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::thread echo([&] {
    const int fd = accept(listener, nullptr, nullptr);
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string buffer(request.size(), '\0');
    for (int i = 0; i < round_trips; ++i) {
      for (size_t got = 0; got < buffer.size();) {
        const ssize_t n =
            recv(fd, buffer.data() + got, buffer.size() - got, spin ? MSG_DONTWAIT : 0);
        if (n < 0 && spin && errno == EAGAIN) continue;
        if (n <= 0) return;
        got += static_cast<size_t>(n);
      }
      if (!SendAll(fd, reply)) return;
    }
    close(fd);
  });
  const int fd = Connect(ntohs(address.sin_port));
  LatencyHistogram histogram;
  std::string buffer(reply.size(), '\0');
  for (int i = 0; i < round_trips; ++i) {
    const int64_t start_ns = NowNs();
    if (!SendAll(fd, request)) break;
    for (size_t got = 0; got < buffer.size();) {
      const ssize_t n = SpinRead(fd, buffer.data() + got, buffer.size() - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    histogram.Record(NowNs() - start_ns);
  }
  echo.join();
  close(fd);
  close(listener);
  return histogram;
}

// Phase 2: closed-loop Submit -> Confirmation against vouchd.
bool VouchRoundTrips(int port, int round_trips, LatencyHistogram* histogram) {
  const int fd = Connect(port);
  if (fd < 0) return false;
  v1::ClientMessage hello;
  hello.mutable_hello()->set_client_name(absl::StrFormat("vouch-pingpong-%d", getpid()));
  std::string frame;
  net::AppendFrame(hello, kFrameMax, &frame);
  net::FrameDecoder decoder(kFrameMax);
  bool ok = SendAll(fd, frame);
  // Ids from the wall clock, so that runs against one server never collide.
  const uint64_t first_id = static_cast<uint64_t>(NowNs()) / 1000 * 1000 + 7'000'000'000'000'000;
  for (int i = 0; ok && i < round_trips; ++i) {
    frame.clear();
    net::AppendFrame(SubmitOne(first_id + i), kFrameMax, &frame);
    const int64_t start_ns = NowNs();
    ok = SendAll(fd, frame) && ReadUntil(fd, decoder, v1::ServerMessage::kConfirmation);
    if (ok) histogram->Record(NowNs() - start_ns);
  }
  close(fd);
  return ok;
}

std::string Row(const char* name, const LatencyHistogram& h) {
  return absl::StrFormat("  %-22s %8lld %9.1fus %9.1fus %9.1fus %9.1fus %9.1fus", name,
                         static_cast<long long>(h.count()), h.Percentile(50) / 1e3,
                         h.Percentile(90) / 1e3, h.Percentile(99) / 1e3,
                         h.Percentile(99.9) / 1e3, h.Percentile(100) / 1e3);
}

std::string Json(const char* name, const LatencyHistogram& h) {
  return absl::StrFormat(
      "\"%s\": {\"count\": %lld, \"p50_ns\": %lld, \"p90_ns\": %lld, \"p99_ns\": %lld, "
      "\"p999_ns\": %lld, \"max_ns\": %lld}",
      name, static_cast<long long>(h.count()), static_cast<long long>(h.Percentile(50)),
      static_cast<long long>(h.Percentile(90)), static_cast<long long>(h.Percentile(99)),
      static_cast<long long>(h.Percentile(99.9)), static_cast<long long>(h.Percentile(100)));
}

int Run() {
  const int round_trips = absl::GetFlag(FLAGS_round_trips);
  if (round_trips < 1) {
    std::fprintf(stderr, "vouch-pingpong: --round_trips must be at least 1\n");
    return 2;
  }
  const LatencyHistogram blocking = RawPingPong(round_trips, /*spin=*/false);
  const LatencyHistogram raw = RawPingPong(round_trips, /*spin=*/true);
  std::printf("round trips, one outstanding    count       p50       p90       p99     p99.9       max\n");
  std::printf("%s\n", Row("raw_loopback_blocking", blocking).c_str());
  std::printf("%s\n", Row("raw_loopback_spinning", raw).c_str());
  std::string json = absl::StrFormat("{%s, %s", Json("raw_loopback_blocking", blocking),
                                     Json("raw_loopback_spinning", raw));
  const int port = absl::GetFlag(FLAGS_port);
  int status = 0;
  if (port != 0) {
    LatencyHistogram vouch;
    if (!VouchRoundTrips(port, round_trips, &vouch)) {
      std::fprintf(stderr, "vouch-pingpong: the vouchd round trips failed (port %d)\n", port);
      status = 1;
    }
    const double ratio = static_cast<double>(vouch.Percentile(50)) /
                         static_cast<double>(raw.Percentile(50) > 0 ? raw.Percentile(50) : 1);
    std::printf("%s\n", Row("vouch_confirm", vouch).c_str());
    std::printf("vouch confirm p50 / raw spinning p50 = %.2f (target: at most 2)\n", ratio);
    json += absl::StrFormat(", %s, \"p50_ratio\": %.3f", Json("vouch_confirm", vouch), ratio);
  }
  json += "}\n";
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream(path) << json;
  }
  return status;
}

}  // namespace
}  // namespace vouch

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vouch-pingpong [--port=VOUCHD_PORT] [--round_trips=N] [--json=PATH]: raw loopback "
      "ping-pong vs vouch's confirm round trip, same frame sizes, one run.");
  absl::ParseCommandLine(argc, argv);
  return vouch::Run();
}
