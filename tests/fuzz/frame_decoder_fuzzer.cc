// Fuzz target: the wire protocol's frame decoder (engine/net/frame_codec.h) on arbitrary bytes.
//
// Method: the first input byte picks the decoder's frame maximum (small, so "too large" is
// reachable), the next kPatternBytes pick the sizes of the chunks the stream arrives in (as
// read(2) would split it), and the rest is the stream. The stream is decoded twice, in one
// Append and in those chunks through WritePointer/Commit (the server's path), and both must give
// exactly the frames and the final error of a reference decoder written here from the protocol's
// definition: frames are never longer than the maximum, never read outside the buffer (ASan),
// and bad input ends in a clear, sticky error. Every frame also goes through ParseEnvelope,
// whose body must lie inside the frame and agree with protobuf's own parse of ClientMessage.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "engine/net/frame_codec.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/fuzz_check.h"
#include "proto/vouch.pb.h"

namespace vouch::net {
namespace {

constexpr size_t kPatternBytes = 8;

struct Decoded {
  std::vector<std::string> frames;
  FrameError error = FrameError::kNone;
};

// The protocol, read straight: varint32 length (at most 5 bytes, at most 32 bits), then that
// many bytes; a length above the maximum is an error; an incomplete tail waits for more.
Decoded ReferenceDecode(const uint8_t* data, size_t size, size_t frame_bytes_max) {
  Decoded out;
  size_t at = 0;
  while (at < size) {
    uint64_t length = 0;
    size_t prefix = 0;
    bool done = false;
    for (; prefix < 5 && at + prefix < size; ++prefix) {
      length |= uint64_t{data[at + prefix] & 0x7fu} << (7 * prefix);
      if ((data[at + prefix] & 0x80) == 0) {
        done = true;
        ++prefix;
        break;
      }
    }
    if (!done) {
      if (prefix == 5) out.error = FrameError::kMalformedVarint;
      return out;  // Otherwise the prefix is incomplete.
    }
    if (length > UINT32_MAX) {
      out.error = FrameError::kMalformedVarint;
      return out;
    }
    if (length > frame_bytes_max) {
      out.error = FrameError::kTooLarge;
      return out;
    }
    if (size - at - prefix < length) return out;
    out.frames.emplace_back(reinterpret_cast<const char*>(data + at + prefix), length);
    at += prefix + length;
  }
  return out;
}

// Takes every complete frame out of the decoder. Returns false once it is in error.
bool Drain(FrameDecoder& decoder, size_t frame_bytes_max, Decoded* out) {
  for (;;) {
    const char* frame = nullptr;
    size_t size = 0;
    switch (decoder.NextFrame(&frame, &size)) {
      case FrameDecoder::Result::kFrame:
        FUZZ_CHECK(size <= frame_bytes_max);
        out->frames.emplace_back(frame, size);
        break;
      case FrameDecoder::Result::kNeedMore:
        FUZZ_CHECK(decoder.WritableBytes() > 0);  // Room for the rest of the frame.
        return true;
      case FrameDecoder::Result::kError:
        out->error = decoder.error();
        FUZZ_CHECK(out->error != FrameError::kNone);
        FUZZ_CHECK(decoder.NextFrame(&frame, &size) == FrameDecoder::Result::kError);  // Sticky.
        return false;
    }
  }
}

Decoded DecodeWhole(const uint8_t* data, size_t size, size_t frame_bytes_max) {
  FrameDecoder decoder(frame_bytes_max);
  Decoded out;
  const char* cursor = reinterpret_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    const size_t taken = decoder.Append(cursor, left);
    cursor += taken;
    left -= taken;
    if (!Drain(decoder, frame_bytes_max, &out)) return out;
  }
  Drain(decoder, frame_bytes_max, &out);
  return out;
}

Decoded DecodeChunked(const uint8_t* data, size_t size, size_t frame_bytes_max,
                      const uint8_t* pattern) {
  FrameDecoder decoder(frame_bytes_max);
  Decoded out;
  size_t at = 0;
  for (size_t turn = 0; at < size; ++turn) {
    const size_t want = 1 + pattern[turn % kPatternBytes] % 97;
    const size_t chunk = std::min({want, size - at, decoder.WritableBytes()});
    std::memcpy(decoder.WritePointer(), data + at, chunk);
    decoder.Commit(chunk);
    at += chunk;
    if (!Drain(decoder, frame_bytes_max, &out)) return out;
  }
  return out;
}

// The highest field number of ClientMessage's body, from the schema itself, so that a new
// message type is fuzzed as a body (not as an unknown field) without touching this file.
// ClientMessage's body fields (the oneof's numbers have gaps: a field in one is unknown).
uint64_t BodyFields() {
  static const uint64_t fields = [] {
    const google::protobuf::OneofDescriptor* oneof =
        v1::ClientMessage::descriptor()->FindOneofByName("body");
    uint64_t mask = 0;
    for (int i = 0; i < oneof->field_count(); ++i) mask |= uint64_t{1} << oneof->field(i)->number();
    return mask;
  }();
  return fields;
}

void CheckEnvelope(const std::string& frame) {
  EnvelopeBody body;
  const bool parsed = ParseEnvelopeFields(frame.data(), frame.size(), BodyFields(), &body);
  if (parsed && body.field != 0) {
    FUZZ_CHECK(body.field >= 1 && body.field < 64 && ((BodyFields() >> body.field) & 1) != 0);
    FUZZ_CHECK(body.data >= frame.data());
    FUZZ_CHECK(body.size <= frame.size());
    FUZZ_CHECK(body.data + body.size <= frame.data() + frame.size());
  }
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // Each invalid UTF-8 string would log a line.
    return true;
  }();
  (void)quiet;
  v1::ClientMessage message;
  if (parsed && message.ParseFromString(frame)) {
    // Both take the last body field, and both skip unknown fields.
    FUZZ_CHECK(static_cast<int>(message.body_case()) == body.field);
  }
}

}  // namespace
}  // namespace vouch::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vouch::net;
  if (size < 1 + kPatternBytes) return 0;
  const size_t frame_bytes_max = 1 + size_t{data[0]} * 8;  // 1 .. 2041 bytes.
  const uint8_t* pattern = data + 1;
  const uint8_t* stream = data + 1 + kPatternBytes;
  const size_t stream_size = size - 1 - kPatternBytes;

  const Decoded expected = ReferenceDecode(stream, stream_size, frame_bytes_max);
  const Decoded whole = DecodeWhole(stream, stream_size, frame_bytes_max);
  const Decoded chunked = DecodeChunked(stream, stream_size, frame_bytes_max, pattern);
  FUZZ_CHECK(whole.error == expected.error);
  FUZZ_CHECK(whole.frames == expected.frames);
  FUZZ_CHECK(chunked.error == expected.error);
  FUZZ_CHECK(chunked.frames == expected.frames);
  for (const std::string& frame : expected.frames) CheckEnvelope(frame);
  return 0;
}
