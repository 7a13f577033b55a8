// The journal recovery fuzzer's input format, shared by the fuzzer (which unpacks inputs into a
// data directory) and make_corpus (which packs real data directories into seeds).
//
// Input: one flags byte, then up to kFilesMax file entries, each
//   kind u8 (even: journal segment, odd: snapshot) | name index u32 LE | length u16 LE | bytes
// A short last entry is cut at the input's end. The name index is the segment's first record
// index or the snapshot's covered index, as in the file name.
//
// Checksums would stop nearly every mutation at the first CRC check, so the flags ask the
// unpacker to make some of them right again; mutations then reach the record decoders, the
// replay and the snapshot restore. The flags are input bytes too, so the fuzzer explores both.
//
// Thread safety: pure functions.
#ifndef VOUCH_TESTS_FUZZ_JOURNAL_INPUT_H_
#define VOUCH_TESTS_FUZZ_JOURNAL_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/options.h"

namespace vouch::fuzz {

inline constexpr uint8_t kFixRecordCrcs = 1;     // Every record whose length fits the file.
inline constexpr uint8_t kFixSegmentHeaders = 2;
inline constexpr uint8_t kFixSnapshots = 4;      // Its length field and its CRC.
inline constexpr size_t kFilesMax = 6;

struct JournalFile {
  bool snapshot = false;
  uint32_t index = 0;
  std::string bytes;
};

struct JournalInput {
  uint8_t flags = 0;
  std::vector<JournalFile> files;
};

JournalInput UnpackJournalInput(const uint8_t* data, size_t size);
std::string PackJournalInput(const JournalInput& input);
// Applies input.flags to the files' bytes.
void FixChecksums(JournalInput* input);
// The file's name in a data directory.
std::string JournalFileName(const JournalFile& file);

// The engine that wrote the seeds and that recovers every input: inline, kAccounts USD accounts
// (testing::BankOptions), ack policy written, small tables so each run is cheap.
inline constexpr int kAccounts = 8;
Options RecoveryOptions(const std::string& dir, const Clock* clock);

}  // namespace vouch::fuzz

#endif  // VOUCH_TESTS_FUZZ_JOURNAL_INPUT_H_
