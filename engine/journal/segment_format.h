// On-disk framing of the journal: segment file names, the segment header and the record
// header. Shared by SegmentWriter and ScanJournal (one definition of the format) and by tests
// that damage files on purpose.
//
// A data directory holds segment files named journal-<first record index, 20 digits>.log.
// Record indices count records across the whole journal (0, 1, 2, ...), so consecutive segments
// must chain: a segment's first index is its predecessor's first index plus its record count.
//
// Segment header (kSegmentHeaderBytes, little-endian):
//   magic "VOUCHJ01" (8) | format version u32 | first record index u64 | masked crc32c u32
//   (the CRC covers the 20 bytes before it).
// Record (kRecordHeaderBytes + length):
//   length u32 (payload bytes) | masked crc32c u32 over type + seq + payload | type u8 |
//   seq u64 | payload
//
// Thread safety: pure functions.
#ifndef VOUCH_ENGINE_JOURNAL_SEGMENT_FORMAT_H_
#define VOUCH_ENGINE_JOURNAL_SEGMENT_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "engine/journal/records.h"

namespace vouch::journal {

inline constexpr char kSegmentMagic[8] = {'V', 'O', 'U', 'C', 'H', 'J', '0', '1'};
inline constexpr uint32_t kSegmentFormatVersion = 1;
inline constexpr size_t kSegmentHeaderBytes = 8 + 4 + 8 + 4;
inline constexpr size_t kRecordHeaderBytes = 4 + 4 + 1 + 8;
// Offsets inside the record header.
inline constexpr size_t kRecordLengthOffset = 0;
inline constexpr size_t kRecordCrcOffset = 4;
inline constexpr size_t kRecordTypeOffset = 8;  // The CRC covers from here to the payload's end.

// Far above any record type's payload; a larger length field is damage, not a record.
inline constexpr size_t kRecordPayloadBytesMax = 64 * 1024;
inline constexpr size_t kRecordBytesMax = kRecordHeaderBytes + kRecordPayloadBytesMax;
static_assert(kConfirmedRecordBytesMax <= kRecordPayloadBytesMax);
static_assert(kOutcomeWithCodeRecordBytes <= kRecordPayloadBytesMax);
static_assert(kHoldReleasedRecordBytes <= kRecordPayloadBytesMax);
static_assert(kOpeningRecordBytesMax <= kRecordPayloadBytesMax);
static_assert(kRefusedRecordBytes <= kRecordPayloadBytesMax);
static_assert(kRefusedWithFingerprintRecordBytes <= kRecordPayloadBytesMax);
static_assert(kHoldPlacedRecordBytes <= kRecordPayloadBytesMax);

// "journal-00000000000000000042.log".
std::string SegmentFileName(uint64_t first_record_index);
// Inverse of SegmentFileName; false for any other name (which the journal ignores).
[[nodiscard]] bool ParseSegmentFileName(absl::string_view name, uint64_t* first_record_index);

// REQUIRES: out has kSegmentHeaderBytes of room.
void EncodeSegmentHeader(uint64_t first_record_index, char* out);
// Returns false if the magic, version or CRC is wrong.
[[nodiscard]] bool DecodeSegmentHeader(const char* data, uint64_t* first_record_index);

// The masked CRC stored in a record header.
uint32_t RecordCrc(uint8_t type, uint64_t seq, const char* payload, size_t size);

// Writes a record header for `payload` into out[0, kRecordHeaderBytes).
void EncodeRecordHeader(RecordType type, uint64_t seq, const char* payload, size_t size,
                        char* out);

}  // namespace vouch::journal

#endif  // VOUCH_ENGINE_JOURNAL_SEGMENT_FORMAT_H_
