// The documented size limits fit each other, and each holds at its edge.
//
// Method: the worst realistic Transaction (every integer field at its longest varint, a 3-byte
// currency, a 2-byte country) is encoded by the generated code to pin kSubmitEntryBytesMax;
// then a real server gets exactly the batch maximum of such transactions (answered in full,
// connection still open), one more (refused with an Error naming the limit), a frame of exactly
// frame_bytes_max (answered) and one byte more (refused naming the limit).
#include <cstdint>
#include <limits>
#include <string>

#include "engine/server/options.h"
#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

v1::Transaction Longest(uint64_t id) {
  v1::Transaction txn;
  txn.set_id(id);
  txn.set_source_account(std::numeric_limits<uint64_t>::max());
  txn.set_destination_account(std::numeric_limits<uint64_t>::max() - 1);
  txn.set_amount(-1);  // A negative int64 takes the longest varint, 10 bytes.
  txn.set_currency("USD");
  txn.set_merchant_id(std::numeric_limits<uint64_t>::max());
  txn.set_merchant_category(std::numeric_limits<uint32_t>::max());
  txn.set_country("GB");
  txn.set_device_id(std::numeric_limits<uint64_t>::max());
  txn.set_client_timestamp_ns(-1);
  txn.set_attributes(std::string(kAttributesBytesMax, '\xff'));
  return txn;
}

v1::ClientMessage LongestSubmit(size_t count) {
  v1::ClientMessage message;
  for (size_t i = 0; i < count; ++i) {
    *message.mutable_submit()->add_transactions() =
        Longest(std::numeric_limits<uint64_t>::max() - i);
  }
  return message;
}

std::string Varint(uint64_t value) {
  std::string out;
  for (; value >= 0x80; value >>= 7) out.push_back(static_cast<char>(value | 0x80));
  out.push_back(static_cast<char>(value));
  return out;
}

// A frame whose payload is exactly `payload_bytes`: a Ping, padded with an unknown field that
// the server skips, as protobuf skips unknown fields.
std::string PingFrameOf(size_t payload_bytes) {
  v1::ClientMessage ping;
  ping.mutable_ping()->set_nonce(7);
  std::string payload = ping.SerializeAsString();
  payload.push_back(static_cast<char>((15 << 3) | 2));  // Field 15, length-delimited.
  const size_t room = payload_bytes - payload.size();
  size_t padding = room - 1;
  while (Varint(padding).size() + padding > room) --padding;
  payload += Varint(padding);
  payload.append(padding, 'x');
  EXPECT_EQ(payload.size(), payload_bytes);
  return Varint(payload.size()) + payload;
}

TEST(SubmitSizeTest, TheLongestRealisticTransactionTakesTheDocumentedBytes) {
  EXPECT_EQ(Longest(std::numeric_limits<uint64_t>::max()).ByteSizeLong() + 2,
            kSubmitEntryBytesMax);
  for (const size_t count : {size_t{1}, size_t{512}, size_t{546}}) {
    EXPECT_LE(LongestSubmit(count).ByteSizeLong(), SubmitFrameBytesMax(count)) << count;
  }
  // The old documented pair did not fit: 4,096 such transactions are 6 frames of 64 KiB.
  EXPECT_GT(LongestSubmit(4096).ByteSizeLong(), size_t{64 * 1024});
}

// A VerifyBatch of VerifyBatchMax(frame) of the longest requests fits the frame.
TEST(VerifyBatchSizeTest, TheLongestRequestTakesAtMostTheDocumentedBytes) {
  v1::ServerMessage message;
  v1::VerifyRequest longest;
  longest.set_seq(std::numeric_limits<uint64_t>::max());
  *longest.mutable_transaction() = Longest(std::numeric_limits<uint64_t>::max());
  longest.set_confirmed_unix_ns(-1);
  longest.set_deadline_unix_ns(-1);
  longest.set_redelivered(true);
  EXPECT_LE(longest.ByteSizeLong() + 3, kVerifyEntryBytesMax);  // Its tag and a 2-byte length.
  for (const size_t frame : {size_t{64 * 1024}, size_t{4096}, size_t{1024}}) {
    const size_t count = VerifyBatchMax(frame);
    ASSERT_GE(count, 1u) << frame;
    message.mutable_verify_batch()->clear_requests();
    for (size_t i = 0; i < count; ++i) *message.mutable_verify_batch()->add_requests() = longest;
    EXPECT_LE(message.ByteSizeLong(), frame) << count << " requests";
  }
  EXPECT_EQ(VerifyBatchMax(64 * 1024), kVerifyBatchMaxDefault);
}

TEST(SubmitSizeTest, OptionsRefuseABatchMaximumThatDoesNotFitTheFrame) {
  ServerOptions options;
  EXPECT_TRUE(options.Validate().ok()) << "the defaults fit each other";
  options.submit_batch_max = 4096;
  const absl::Status refused = options.Validate();
  EXPECT_TRUE(absl::IsInvalidArgument(refused));
  EXPECT_NE(refused.message().find("submit_batch_max"), absl::string_view::npos) << refused;
  EXPECT_NE(refused.message().find("frame_bytes_max"), absl::string_view::npos) << refused;
  options.frame_bytes_max = SubmitFrameBytesMax(4096);
  EXPECT_TRUE(options.Validate().ok()) << "a larger frame makes room";
  options.frame_bytes_max = 64 * 1024;
  options.submit_batch_max = 546;  // (65536 - 6) / 120.
  EXPECT_TRUE(options.Validate().ok());
  options.submit_batch_max = 547;
  EXPECT_FALSE(options.Validate().ok());
}

TEST_F(ServerTest, ExactlyTheBatchMaximumOfTheLongestTransactionsIsAnswered) {
  StartServer();
  const size_t batch_max = ServerOptions{}.submit_batch_max;
  TestClient client(port());
  ASSERT_TRUE(client.Hello());
  const v1::ClientMessage submit = LongestSubmit(batch_max);
  ASSERT_LE(submit.ByteSizeLong(), ServerOptions{}.frame_bytes_max);
  ASSERT_TRUE(client.Send(submit));
  v1::ClientMessage ping;
  ping.mutable_ping()->set_nonce(1);
  ASSERT_TRUE(client.Send(ping));
  v1::ServerMessage message;
  size_t confirmations = 0;
  bool pong = false;
  while (!pong && client.Read(&message)) {
    ASSERT_FALSE(message.has_error()) << message.DebugString();
    confirmations += message.has_confirmation();
    pong = message.has_pong();
  }
  EXPECT_EQ(confirmations, batch_max);
  EXPECT_TRUE(pong) << "the connection is still served";
  EXPECT_EQ(client.welcome().submit_batch_max(), batch_max);
  EXPECT_EQ(client.welcome().frame_bytes_max(), ServerOptions{}.frame_bytes_max);
}

TEST_F(ServerTest, OneTransactionAboveTheBatchMaximumIsRefusedNamingTheLimit) {
  StartServer();
  const size_t batch_max = ServerOptions{}.submit_batch_max;
  TestClient client(port());
  ASSERT_TRUE(client.Hello());
  ASSERT_TRUE(client.Send(LongestSubmit(batch_max + 1)));
  v1::ServerMessage message;
  ASSERT_TRUE(client.Read(&message));
  ASSERT_TRUE(message.has_error()) << "refused whole, before any Confirmation";
  EXPECT_EQ(message.error().code(), v1::ERROR_CODE_INVALID_MESSAGE);
  EXPECT_NE(message.error().message().find(std::to_string(batch_max)), std::string::npos)
      << message.error().message();
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(ServerTest, AFrameOfExactlyTheMaximumIsAnsweredAndOneByteMoreIsRefused) {
  StartServer();
  const size_t frame_max = ServerOptions{}.frame_bytes_max;
  {
    TestClient client(port());
    ASSERT_TRUE(client.Hello());
    ASSERT_TRUE(client.SendRaw(PingFrameOf(frame_max)));
    v1::ServerMessage message;
    ASSERT_TRUE(client.Read(&message));
    EXPECT_TRUE(message.has_pong()) << message.DebugString();
  }
  TestClient client(port());
  ASSERT_TRUE(client.Hello());
  ASSERT_TRUE(client.SendRaw(PingFrameOf(frame_max + 1)));
  v1::ServerMessage message;
  ASSERT_TRUE(client.Read(&message));
  ASSERT_TRUE(message.has_error()) << message.DebugString();
  EXPECT_EQ(message.error().code(), v1::ERROR_CODE_FRAME_TOO_LARGE);
  EXPECT_NE(message.error().message().find(std::to_string(frame_max)), std::string::npos)
      << message.error().message();
}

}  // namespace
}  // namespace vouch::server::testing
