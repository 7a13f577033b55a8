// Frame codec for the wire protocol: each frame is a varint32 length followed by that many
// bytes of one protobuf message (the framing of protobuf's delimited_message_util and Java's
// writeDelimitedTo).
//
// FrameDecoder accumulates the bytes read from one connection into a fixed buffer and yields
// complete frames, parsed into a caller-owned, reused message, so steady state does not
// allocate per frame. Bad input is reported, never skipped: a length above the configured
// maximum, a varint longer than 5 bytes or above 32 bits, or a payload that does not parse puts
// the decoder in a failed state with the reason; the connection is then answered with an Error
// and closed (nothing the connection sent before stays unanswered).
//
// Thread safety: one decoder per connection, used by that connection's I/O thread only.
#ifndef VOUCH_ENGINE_NET_FRAME_CODEC_H_
#define VOUCH_ENGINE_NET_FRAME_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "google/protobuf/message_lite.h"

namespace vouch::net {

enum class FrameError {
  kNone = 0,
  kTooLarge,        // The length prefix exceeds the maximum frame size.
  kMalformedVarint, // More than 5 bytes, or a value that does not fit 32 bits.
  kUnparsable,      // The payload is not a valid message.
};

class FrameDecoder {
 public:
  // REQUIRES: frame_bytes_max > 0.
  explicit FrameDecoder(size_t frame_bytes_max);

  // Space to read into and its size; after a read(2) of n bytes, call Commit(n).
  // The space is at least 1 byte unless a full frame is pending (call Next first).
  char* WritePointer() { return buffer_.get() + end_; }
  size_t WritableBytes() const { return capacity_ - end_; }
  void Commit(size_t bytes);
  // Copies bytes in (for tests and embedders that already hold the bytes). Returns how many
  // were taken; fewer than `size` means Next must be called to make room.
  size_t Append(const char* data, size_t size);

  enum class Result { kFrame, kNeedMore, kError };
  // Parses the next complete frame into `message`. kError is sticky: see error().
  Result Next(google::protobuf::MessageLite* message);
  // The next complete frame's payload, unparsed. *data stays valid until the next call to any
  // non-const member. kError (too large, malformed varint) is sticky.
  Result NextFrame(const char** data, size_t* size);
  // Marks the decoder failed because the caller could not parse the payload NextFrame gave.
  void FailUnparsable() { error_ = FrameError::kUnparsable; }

  FrameError error() const { return error_; }
  // Bytes of an incomplete frame held right now (for slow-sender timeouts).
  size_t buffered_bytes() const { return end_ - begin_; }

 private:
  void Compact();

  const size_t frame_bytes_max_;
  const size_t capacity_;  // frame_bytes_max_ plus the longest varint prefix.
  std::unique_ptr<char[]> buffer_;
  size_t begin_ = 0;  // First unconsumed byte.
  size_t end_ = 0;    // One past the last received byte.
  FrameError error_ = FrameError::kNone;
};

// Envelopes. ClientMessage and ServerMessage are a oneof of sub-messages, so on the wire a frame
// is one (tag, length, body) field. Parsing into the oneof would allocate a fresh body message per
// frame (clearing a oneof deletes its member); reading the field directly lets the body go into a
// reused message of its own type, which keeps the steady state free of allocations.
struct EnvelopeBody {
  int field = 0;  // The oneof field number; 0 if the frame holds no body (or only unknown ones).
  const char* data = nullptr;
  size_t size = 0;
};
// Reads the body field of an envelope frame. Known fields are 1..field_max and must be
// length-delimited; other fields are skipped, as protobuf skips unknown fields. If several body
// fields are present the last wins, as for a oneof. Returns false if the bytes do not parse.
[[nodiscard]] bool ParseEnvelope(const char* data, size_t size, int field_max,
                                 EnvelopeBody* body);
// As ParseEnvelope, for a oneof whose field numbers have gaps: the body fields are the bits set
// in `body_fields` (bit n for field n, 1 <= n < 64; see EnvelopeFields), and every other field,
// one in a gap included, is skipped as unknown.
[[nodiscard]] bool ParseEnvelopeFields(const char* data, size_t size, uint64_t body_fields,
                                       EnvelopeBody* body);
// The body_fields mask of `fields`. REQUIRES: each in [1, 64).
constexpr uint64_t EnvelopeFields(std::initializer_list<int> fields) {
  uint64_t mask = 0;
  for (const int field : fields) mask |= uint64_t{1} << field;
  return mask;
}
// Appends one frame holding an envelope whose body is `body` in oneof field `field`: the same
// bytes as serializing the envelope message. Returns false (appending nothing) if the frame
// would exceed frame_bytes_max.
bool AppendEnvelopeFrame(int field, const google::protobuf::MessageLite& body,
                         size_t frame_bytes_max, std::string* out);

// Appends one frame (varint32 length + serialized message) to `out`, reusing its capacity.
// Returns false if the message is larger than frame_bytes_max (nothing is appended).
bool AppendFrame(const google::protobuf::MessageLite& message, size_t frame_bytes_max,
                 std::string* out);

}  // namespace vouch::net

#endif  // VOUCH_ENGINE_NET_FRAME_CODEC_H_
