// The server's frame handling allocates nothing at steady state: decoding Submit frames into
// reused messages, the engine's confirm path and stages, routing outcomes and encoding
// Confirmation and Outcome frames into reused output buffers.
//
// Method: this binary replaces the global operator new with one that counts calls (from every
// thread) while a flag is set. A threaded server is warmed up with 10,000 transactions, so that
// one-time growth (output buffers, the reused messages' fields, the engine's queue blocks) is
// done. Then 20,000 more go through with counting on. The client side is built not to allocate
// either: every frame is encoded before counting starts, and replies are only classified
// (ParseEnvelope on a FrameDecoder's fixed buffer), never parsed into messages.
#include <vector>

#include "tests/engine/server/server_fixture.h"
#include "tests/testing/allocation_counter.h"

namespace vouch::server::testing {
namespace {

constexpr int kBatch = 50;

// Sends each pre-encoded Submit frame and reads until all of its confirmations and outcomes
// have arrived. Returns false on a timeout or an unexpected message.
bool RunBatches(int fd, const std::vector<std::string>& frames, net::FrameDecoder& decoder) {
  for (const std::string& frame : frames) {
    if (send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size())) {
      return false;
    }
    int confirmations = 0, outcomes = 0;
    while (confirmations < kBatch || outcomes < kBatch) {
      const char* data = nullptr;
      size_t size = 0;
      const auto result = decoder.NextFrame(&data, &size);
      if (result == net::FrameDecoder::Result::kError) return false;
      if (result == net::FrameDecoder::Result::kFrame) {
        net::EnvelopeBody body;
        if (!net::ParseEnvelope(data, size, v1::ServerMessage::kWelcome, &body)) return false;
        if (body.field == v1::ServerMessage::kConfirmation) {
          ++confirmations;
        } else if (body.field == v1::ServerMessage::kOutcome) {
          ++outcomes;
        } else if (body.field != v1::ServerMessage::kWelcome) {  // Welcome: the Hello's reply.
          return false;
        }
        continue;
      }
      pollfd poll_fd = {fd, POLLIN, 0};
      if (poll(&poll_fd, 1, 5'000) <= 0) return false;
      const ssize_t n = read(fd, decoder.WritePointer(), decoder.WritableBytes());
      if (n <= 0) return false;
      decoder.Commit(static_cast<size_t>(n));
    }
  }
  return true;
}

std::vector<std::string> SubmitFrames(uint64_t first_id, int batches) {
  std::vector<std::string> frames;
  uint64_t id = first_id;
  for (int b = 0; b < batches; ++b) {
    v1::ClientMessage submit;
    for (int i = 0; i < kBatch; ++i, ++id) {
      *submit.mutable_submit()->add_transactions() =
          WireTransfer(id, 1 + id % 100, 1 + (id + 7) % 100, 10);
    }
    frames.emplace_back();
    net::AppendFrame(submit, kTestFrameMax, &frames.back());
  }
  return frames;
}

TEST_F(ServerTest, SteadyStateFrameHandlingDoesNotAllocate) {
  Options engine = vouch::testing::BankOptions(100);
  engine.fraud_rules.velocity_enabled = false;
  StartServer({}, engine);
  TestClient client(port());
  ASSERT_TRUE(client.Hello("allocation"));
  const std::vector<std::string> warm_up = SubmitFrames(1, 200);
  const std::vector<std::string> measured = SubmitFrames(1'000'000, 400);
  net::FrameDecoder decoder(kTestFrameMax);
  ASSERT_TRUE(RunBatches(client.fd(), warm_up, decoder));
  vouch::testing::StartCountingAllocations();
  const bool ok = RunBatches(client.fd(), measured, decoder);
  const uint64_t allocations = vouch::testing::StopCountingAllocations();
  ASSERT_TRUE(ok);
  EXPECT_EQ(allocations, 0u) << "heap allocations over 20,000 transactions";
  EXPECT_EQ(server_->engine().Stats().confirmed, 30'000u);
}

}  // namespace
}  // namespace vouch::server::testing
