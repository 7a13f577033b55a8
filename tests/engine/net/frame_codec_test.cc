// Frame codec: round trips under arbitrary read boundaries, byte compatibility with protobuf's
// own delimited_message_util (the contract other-language clients rely on), and every kind of
// bad input named in the wire contract.
#include "engine/net/frame_codec.h"

#include <random>
#include <sstream>
#include <string>

#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/delimited_message_util.h"
#include "gtest/gtest.h"
#include "proto/vouch.pb.h"

namespace vouch::net {
namespace {

constexpr size_t kMax = 64 * 1024;

v1::ClientMessage SubmitMessage(uint64_t id, int transactions) {
  v1::ClientMessage message;
  for (int i = 0; i < transactions; ++i) {
    v1::Transaction* txn = message.mutable_submit()->add_transactions();
    txn->set_id(id + i);
    txn->set_source_account(1);
    txn->set_destination_account(2);
    txn->set_amount(100 + i);
    txn->set_currency("USD");
  }
  return message;
}

TEST(FrameCodecTest, RoundTripAcrossArbitraryReadBoundaries) {
  std::string wire;
  for (uint64_t i = 1; i <= 200; ++i) {
    ASSERT_TRUE(AppendFrame(SubmitMessage(i * 1000, 1 + i % 7), kMax, &wire));
  }
  std::mt19937 rng(3);
  FrameDecoder decoder(kMax);
  v1::ClientMessage message;  // Reused for every frame.
  uint64_t next = 1;
  for (size_t offset = 0; offset < wire.size();) {
    const size_t chunk = std::min<size_t>(1 + rng() % 40, wire.size() - offset);
    ASSERT_EQ(decoder.Append(wire.data() + offset, chunk), chunk);
    offset += chunk;
    while (decoder.Next(&message) == FrameDecoder::Result::kFrame) {
      ASSERT_EQ(message.submit().transactions(0).id(), next * 1000);
      ASSERT_EQ(message.submit().transactions_size(), static_cast<int>(1 + next % 7));
      ++next;
    }
  }
  EXPECT_EQ(next, 201u);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameCodecTest, BytesMatchProtobufDelimitedMessageUtil) {
  const v1::ClientMessage message = SubmitMessage(42, 3);
  std::string ours;
  ASSERT_TRUE(AppendFrame(message, kMax, &ours));
  std::ostringstream theirs;
  ASSERT_TRUE(google::protobuf::util::SerializeDelimitedToOstream(message, &theirs));
  EXPECT_EQ(ours, theirs.str());

  google::protobuf::io::ArrayInputStream input(ours.data(), static_cast<int>(ours.size()));
  v1::ClientMessage parsed;
  bool clean_eof = false;
  ASSERT_TRUE(google::protobuf::util::ParseDelimitedFromZeroCopyStream(&parsed, &input, &clean_eof));
  EXPECT_EQ(parsed.submit().transactions(2).id(), 44u);
}

TEST(FrameCodecTest, FrameOfExactlyTheMaximumIsAcceptedOneMoreIsRefusedEarly) {
  v1::ClientMessage big;
  big.mutable_hello()->set_client_name(std::string(100, 'x'));
  const size_t size = big.ByteSizeLong();
  std::string wire;
  ASSERT_TRUE(AppendFrame(big, size, &wire));
  FrameDecoder exact(size);
  ASSERT_EQ(exact.Append(wire.data(), wire.size()), wire.size());
  v1::ClientMessage message;
  EXPECT_EQ(exact.Next(&message), FrameDecoder::Result::kFrame);

  EXPECT_FALSE(AppendFrame(big, size - 1, &wire)) << "the sender refuses too";
  FrameDecoder small(size - 1);
  // Only the length prefix has arrived: the frame is refused before its payload is read.
  ASSERT_EQ(small.Append(wire.data(), 2), 2u);
  EXPECT_EQ(small.Next(&message), FrameDecoder::Result::kError);
  EXPECT_EQ(small.error(), FrameError::kTooLarge);
}

TEST(FrameCodecTest, MalformedVarintsAreRefused) {
  v1::ClientMessage message;
  const char six_bytes[] = {'\xff', '\xff', '\xff', '\xff', '\xff', '\x01'};
  FrameDecoder too_long(kMax);
  too_long.Append(six_bytes, sizeof(six_bytes));
  EXPECT_EQ(too_long.Next(&message), FrameDecoder::Result::kError);
  EXPECT_EQ(too_long.error(), FrameError::kMalformedVarint);

  const char over_32_bits[] = {'\xff', '\xff', '\xff', '\xff', '\x1f'};
  FrameDecoder wide(kMax);
  wide.Append(over_32_bits, sizeof(over_32_bits));
  EXPECT_EQ(wide.Next(&message), FrameDecoder::Result::kError);
  EXPECT_EQ(wide.error(), FrameError::kMalformedVarint);

  const char partial[] = {'\xff', '\xff'};
  FrameDecoder waiting(kMax);
  waiting.Append(partial, sizeof(partial));
  EXPECT_EQ(waiting.Next(&message), FrameDecoder::Result::kNeedMore) << "could still be valid";
}

TEST(FrameCodecTest, UnparsablePayloadIsRefusedAndTheErrorIsSticky) {
  std::string wire;
  ASSERT_TRUE(AppendFrame(SubmitMessage(1, 1), kMax, &wire));
  const char garbage[] = {'\x03', '\xff', '\xff', '\xff'};
  wire.append(garbage, sizeof(garbage));
  ASSERT_TRUE(AppendFrame(SubmitMessage(2, 1), kMax, &wire));
  FrameDecoder decoder(kMax);
  decoder.Append(wire.data(), wire.size());
  v1::ClientMessage message;
  EXPECT_EQ(decoder.Next(&message), FrameDecoder::Result::kFrame) << "frames before it count";
  EXPECT_EQ(decoder.Next(&message), FrameDecoder::Result::kError);
  EXPECT_EQ(decoder.error(), FrameError::kUnparsable);
  EXPECT_EQ(decoder.Next(&message), FrameDecoder::Result::kError) << "no resynchronising";
}

TEST(FrameCodecTest, EmptyMessageIsAValidFrame) {
  std::string wire;
  ASSERT_TRUE(AppendFrame(v1::ClientMessage(), kMax, &wire));
  EXPECT_EQ(wire, std::string(1, '\0'));
  FrameDecoder decoder(kMax);
  decoder.Append(wire.data(), wire.size());
  v1::ClientMessage message;
  EXPECT_EQ(decoder.Next(&message), FrameDecoder::Result::kFrame);
  EXPECT_EQ(message.body_case(), v1::ClientMessage::BODY_NOT_SET);
}

TEST(FrameCodecTest, EnvelopeFrameHasTheBytesOfTheOneofMessage) {
  v1::ServerMessage server;
  v1::Outcome* outcome = server.mutable_outcome();
  outcome->set_transaction_id(7);
  outcome->set_seq(99);
  outcome->set_currency("EUR");
  std::string expected;
  ASSERT_TRUE(AppendFrame(server, kMax, &expected));
  std::string actual;
  ASSERT_TRUE(AppendEnvelopeFrame(v1::ServerMessage::kOutcome, server.outcome(), kMax, &actual));
  EXPECT_EQ(actual, expected);
  EXPECT_FALSE(AppendEnvelopeFrame(v1::ServerMessage::kOutcome, server.outcome(), 8, &actual))
      << "too large for the maximum";
  EXPECT_EQ(actual, expected) << "nothing appended on refusal";
}

TEST(FrameCodecTest, EnvelopeBodyIsFoundLikeTheOneofParserFindsIt) {
  const v1::ClientMessage submit = SubmitMessage(5, 3);
  const std::string bytes = submit.SerializeAsString();
  EnvelopeBody body;
  ASSERT_TRUE(ParseEnvelope(bytes.data(), bytes.size(), 5, &body));
  EXPECT_EQ(body.field, v1::ClientMessage::kSubmit);
  v1::Submit parsed;
  ASSERT_TRUE(parsed.ParseFromArray(body.data, static_cast<int>(body.size)));
  EXPECT_EQ(parsed.transactions_size(), 3);
  EXPECT_EQ(parsed.transactions(2).id(), 7u);

  ASSERT_TRUE(ParseEnvelope("", 0, 5, &body));
  EXPECT_EQ(body.field, 0) << "no body";
  const std::string unknown("\x32\x01\x00", 3);  // Field 6, length 1: unknown to field_max 5.
  ASSERT_TRUE(ParseEnvelope(unknown.data(), unknown.size(), 5, &body));
  EXPECT_EQ(body.field, 0) << "an unknown body is skipped, as protobuf skips it";
  const std::string wrong_type = "\x08\x01";  // Field 1 as a varint.
  EXPECT_FALSE(ParseEnvelope(wrong_type.data(), wrong_type.size(), 5, &body));
  const std::string truncated("\x12\x05\x00", 3);  // Field 2 claims 5 bytes, has 1.
  EXPECT_FALSE(ParseEnvelope(truncated.data(), truncated.size(), 5, &body));
  const std::string zero_tag = std::string(1, '\0');
  EXPECT_FALSE(ParseEnvelope(zero_tag.data(), zero_tag.size(), 5, &body));
}

// A oneof with gaps in its field numbers (ClientMessage: 1..8, 20, 30..32): a field in a gap is
// an unknown field, skipped, not a body (a padded Ping stays a Ping).
TEST(FrameCodecTest, AFieldInAGapOfTheOneofIsSkippedAsUnknown) {
  constexpr uint64_t kFields = EnvelopeFields({1, 5, 20, 30});
  v1::ClientMessage ping;
  ping.mutable_ping()->set_nonce(7);
  std::string bytes = ping.SerializeAsString();
  bytes += std::string("\x7a\x02xx", 4);  // Field 15, length-delimited: in a gap.
  EnvelopeBody body;
  ASSERT_TRUE(ParseEnvelopeFields(bytes.data(), bytes.size(), kFields, &body));
  EXPECT_EQ(body.field, v1::ClientMessage::kPing);
  const std::string gap_only("\x7a\x02xx", 4);
  ASSERT_TRUE(ParseEnvelopeFields(gap_only.data(), gap_only.size(), kFields, &body));
  EXPECT_EQ(body.field, 0) << "no known body";
  const std::string field_30("\xf2\x01\x00", 3);  // Field 30, length 0.
  ASSERT_TRUE(ParseEnvelopeFields(field_30.data(), field_30.size(), kFields, &body));
  EXPECT_EQ(body.field, 30);
}

}  // namespace
}  // namespace vouch::net
