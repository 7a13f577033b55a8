#include "engine/net/frame_codec.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace vouch::net {
namespace {

constexpr size_t kVarint32BytesMax = 5;

enum class VarintParse { kDone, kNeedMore, kMalformed };

// Reads a varint32 from [data, data + size). On kDone, *value and *length are set.
VarintParse ParseVarint32(const char* data, size_t size, uint32_t* value, size_t* length) {
  uint64_t result = 0;
  for (size_t i = 0; i < kVarint32BytesMax; ++i) {
    if (i == size) return VarintParse::kNeedMore;
    const auto byte = static_cast<uint8_t>(data[i]);
    result |= uint64_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80) == 0) {
      if (result > UINT32_MAX) return VarintParse::kMalformed;
      *value = static_cast<uint32_t>(result);
      *length = i + 1;
      return VarintParse::kDone;
    }
  }
  return VarintParse::kMalformed;  // A sixth byte would be needed.
}

size_t Varint32Size(uint32_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// Writes `value` as a varint at `cursor`; returns one past the last byte written.
uint8_t* WriteVarint32(uint32_t value, uint8_t* cursor) {
  for (; value >= 0x80; value >>= 7) *cursor++ = static_cast<uint8_t>(value | 0x80);
  *cursor++ = static_cast<uint8_t>(value);
  return cursor;
}

}  // namespace

FrameDecoder::FrameDecoder(size_t frame_bytes_max)
    : frame_bytes_max_(frame_bytes_max),
      capacity_(frame_bytes_max + kVarint32BytesMax),
      buffer_(new char[capacity_]) {
  assert(frame_bytes_max > 0);
}

void FrameDecoder::Commit(size_t bytes) {
  assert(bytes <= WritableBytes());
  end_ += bytes;
}

size_t FrameDecoder::Append(const char* data, size_t size) {
  if (WritableBytes() < size) Compact();
  const size_t taken = std::min(size, WritableBytes());
  std::memcpy(WritePointer(), data, taken);
  Commit(taken);
  return taken;
}

void FrameDecoder::Compact() {
  if (begin_ == 0) return;
  std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
}

FrameDecoder::Result FrameDecoder::Next(google::protobuf::MessageLite* message) {
  const char* payload = nullptr;
  size_t length = 0;
  const Result result = NextFrame(&payload, &length);
  if (result != Result::kFrame) return result;
  if (!message->ParseFromArray(payload, static_cast<int>(length))) {
    error_ = FrameError::kUnparsable;
    return Result::kError;
  }
  return Result::kFrame;
}

FrameDecoder::Result FrameDecoder::NextFrame(const char** data, size_t* size) {
  if (error_ != FrameError::kNone) return Result::kError;
  uint32_t length = 0;
  size_t prefix = 0;
  switch (ParseVarint32(buffer_.get() + begin_, end_ - begin_, &length, &prefix)) {
    case VarintParse::kMalformed:
      error_ = FrameError::kMalformedVarint;
      return Result::kError;
    case VarintParse::kNeedMore:
      Compact();
      return Result::kNeedMore;
    case VarintParse::kDone:
      break;
  }
  if (length > frame_bytes_max_) {
    error_ = FrameError::kTooLarge;
    return Result::kError;
  }
  if (end_ - begin_ < prefix + length) {
    Compact();  // The whole frame fits: capacity_ covers the longest prefix plus the maximum.
    return Result::kNeedMore;
  }
  *data = buffer_.get() + begin_ + prefix;
  *size = length;
  // The payload stays where it is until the next call: only Next/NextFrame/Append/Commit move
  // bytes, and an emptied buffer is rewound lazily by the next Compact.
  begin_ += prefix + length;
  return Result::kFrame;
}

bool ParseEnvelope(const char* data, size_t size, int field_max, EnvelopeBody* body) {
  assert(field_max >= 1 && field_max < 64);
  const uint64_t below = (uint64_t{1} << (field_max + 1)) - 1;
  return ParseEnvelopeFields(data, size, below & ~uint64_t{1}, body);
}

bool ParseEnvelopeFields(const char* data, size_t size, uint64_t body_fields,
                         EnvelopeBody* body) {
  using google::protobuf::internal::WireFormatLite;
  *body = EnvelopeBody{};
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(data),
                                               static_cast<int>(size));
  while (input.CurrentPosition() < static_cast<int>(size)) {
    const uint32_t tag = input.ReadTag();
    if (tag == 0) return false;  // A malformed tag, or field number 0.
    const int field = static_cast<int>(WireFormatLite::GetTagFieldNumber(tag));
    const bool known = field >= 1 && field < 64 && ((body_fields >> field) & 1) != 0;
    if (known && WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t length = 0;
      if (!input.ReadVarint32(&length) || length > size) return false;
      const int offset = input.CurrentPosition();
      if (!input.Skip(static_cast<int>(length))) return false;
      *body = {field, data + offset, length};
    } else if (known || !WireFormatLite::SkipField(&input, tag)) {
      return false;  // A body field with the wrong wire type, or a truncated unknown field.
    }
  }
  return true;
}

bool AppendEnvelopeFrame(int field, const google::protobuf::MessageLite& body,
                         size_t frame_bytes_max, std::string* out) {
  using google::protobuf::internal::WireFormatLite;
  const size_t body_size = body.ByteSizeLong();
  const uint32_t tag = WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  if (body_size > UINT32_MAX) return false;
  const size_t envelope_size =
      Varint32Size(tag) + Varint32Size(static_cast<uint32_t>(body_size)) + body_size;
  if (envelope_size > frame_bytes_max) return false;
  const size_t start = out->size();
  out->resize(start + Varint32Size(static_cast<uint32_t>(envelope_size)) + envelope_size);
  auto* cursor = reinterpret_cast<uint8_t*>(out->data() + start);
  cursor = WriteVarint32(static_cast<uint32_t>(envelope_size), cursor);
  cursor = WriteVarint32(tag, cursor);
  cursor = WriteVarint32(static_cast<uint32_t>(body_size), cursor);
  body.SerializeWithCachedSizesToArray(cursor);
  return true;
}

bool AppendFrame(const google::protobuf::MessageLite& message, size_t frame_bytes_max,
                 std::string* out) {
  const size_t size = message.ByteSizeLong();
  if (size > frame_bytes_max || size > UINT32_MAX) return false;
  const size_t prefix = Varint32Size(static_cast<uint32_t>(size));
  const size_t start = out->size();
  out->resize(start + prefix + size);  // Reuses capacity once the buffer has grown.
  auto* cursor = reinterpret_cast<uint8_t*>(out->data() + start);
  message.SerializeWithCachedSizesToArray(WriteVarint32(static_cast<uint32_t>(size), cursor));
  return true;
}

}  // namespace vouch::net
