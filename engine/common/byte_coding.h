// Little-endian field-by-field encoding, the one used by every on-disk format (the journal's
// records and segment framing, the snapshots): never a struct memcpy, so padding, byte order and
// compiler never reach the bytes. Doubles are stored as their IEEE-754 bit pattern, so a
// restored double is the same double.
//
// Two ways in, one encoding: PutFixed/GetFixed write and read a field at a pointer, for formats
// laid out in a caller's fixed buffer (the journal, which must not allocate); ByteWriter and
// ByteReader append to a string and read back with bounds checks, for snapshots of any size.
// The second pair is built on the first.
//
// Thread safety: the free functions are pure; ByteWriter and ByteReader are plain values, used
// by one thread at a time.
#ifndef VOUCH_ENGINE_COMMON_BYTE_CODING_H_
#define VOUCH_ENGINE_COMMON_BYTE_CODING_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace vouch {

// Swaps a word's bytes on a big-endian host, so that memcpy of the result gives (and of the
// argument, read back, took) the bytes in little-endian order. One 8-byte move instead of a loop
// of byte shifts that compilers do not always merge.
inline uint64_t ToLittleEndian(uint64_t word) {
  if constexpr (std::endian::native == std::endian::big) return __builtin_bswap64(word);
  return word;
}

// Writes `value` as sizeof(T) little-endian bytes at `out` and returns the position after them.
// REQUIRES: `out` has room for sizeof(T) bytes.
template <typename T>
inline char* PutFixed(char* out, T value) {
  static_assert(std::is_integral_v<T> && sizeof(T) <= 8);
  const uint64_t bits = ToLittleEndian(static_cast<uint64_t>(value));
  // The low sizeof(T) bytes of a little-endian word are its first ones.
  std::memcpy(out, &bits, sizeof(T));
  return out + sizeof(T);
}

// Reads what PutFixed wrote at `in` into *value and returns the position after it.
// REQUIRES: `in` has sizeof(T) readable bytes.
template <typename T>
inline const char* GetFixed(const char* in, T* value) {
  static_assert(std::is_integral_v<T> && sizeof(T) <= 8);
  uint64_t bits = 0;
  std::memcpy(&bits, in, sizeof(T));
  *value = static_cast<T>(ToLittleEndian(bits));
  return in + sizeof(T);
}

inline uint32_t DecodeFixed32(const char* in) {
  uint32_t value;
  GetFixed(in, &value);
  return value;
}

inline uint64_t DecodeFixed64(const char* in) {
  uint64_t value;
  GetFixed(in, &value);
  return value;
}

// Appends fields to a string.
class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  template <typename T>
  void Put(T value) {
    char bytes[sizeof(T)];
    PutFixed(bytes, value);
    out_->append(bytes, sizeof(T));
  }
  void PutDouble(double value) { Put(std::bit_cast<uint64_t>(value)); }
  // A u64 length, then the bytes.
  void PutBytes(absl::string_view bytes) {
    Put<uint64_t>(bytes.size());
    out_->append(bytes.data(), bytes.size());
  }

  size_t size() const { return out_->size(); }

 private:
  std::string* out_;
};

// Reads fields back. Errors are sticky: a read past the end yields 0 (or empty bytes), and so
// does every read after it, and ok() turns false. So a decoder reads a whole record, then checks
// ok() once.
class ByteReader {
 public:
  explicit ByteReader(absl::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  T Get() {
    if (!ok_ || bytes_.size() < sizeof(T)) {
      ok_ = false;
      return 0;
    }
    T value;
    GetFixed(bytes_.data(), &value);
    bytes_.remove_prefix(sizeof(T));
    return value;
  }
  double GetDouble() { return std::bit_cast<double>(Get<uint64_t>()); }
  // What PutBytes wrote; a view into the reader's bytes.
  absl::string_view GetBytes() {
    const uint64_t size = Get<uint64_t>();
    if (!ok_ || bytes_.size() < size) {
      ok_ = false;
      return {};
    }
    const absl::string_view bytes = bytes_.substr(0, size);
    bytes_.remove_prefix(size);
    return bytes;
  }

  // Passes over `size` bytes (not ok if fewer remain).
  void Skip(uint64_t size) {
    if (!ok_ || bytes_.size() < size) {
      ok_ = false;
      return;
    }
    bytes_.remove_prefix(size);
  }

  bool ok() const { return ok_; }
  size_t remaining() const { return bytes_.size(); }

 private:
  absl::string_view bytes_;
  bool ok_ = true;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_COMMON_BYTE_CODING_H_
