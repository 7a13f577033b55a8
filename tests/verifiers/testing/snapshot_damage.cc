#include "tests/verifiers/testing/snapshot_damage.h"

#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "engine/common/snapshot_format.h"

namespace vouch::verifiers::testing {

using ::testing::HasSubstr;

struct Header {
  uint64_t magic;
  uint32_t version;
  uint64_t payload_bytes;
};

Header ReadHeader(absl::string_view snapshot) {
  snapshot::ByteReader in(snapshot);
  Header header;
  header.magic = in.Get<uint64_t>();
  header.version = in.Get<uint32_t>();
  header.payload_bytes = in.Get<uint64_t>();
  EXPECT_TRUE(in.ok());
  return header;
}

std::string EditPayload(absl::string_view snapshot,
                        absl::FunctionRef<void(std::string& payload)> edit) {
  const Header header = ReadHeader(snapshot);
  const snapshot::Versions versions = {header.version, header.version, header.version};
  const absl::StatusOr<snapshot::OpenedSnapshot> opened =
      snapshot::OpenSnapshot(snapshot, header.magic, versions, "test");
  EXPECT_TRUE(opened.ok()) << opened.status();
  std::string edited(opened.ok() ? opened->payload : "");
  edit(edited);
  std::string out;
  const size_t payload_offset = snapshot::BeginSnapshot(header.magic, header.version, &out);
  out += edited;
  snapshot::FinishSnapshot(payload_offset, &out);
  return out;
}

std::string WithVersion(absl::string_view snapshot, uint32_t version) {
  std::string bytes(snapshot);
  Overwrite(bytes, /*offset=*/8, version);
  return bytes;
}

void ExpectRefusesDamage(absl::string_view snapshot,
                         absl::FunctionRef<absl::Status(absl::string_view)> restore,
                         absl::FunctionRef<uint64_t()> state_hash) {
  const uint64_t hash_before = state_hash();
  const auto expect_refused = [&](absl::string_view bytes, absl::string_view message,
                                  absl::string_view damage) {
    const absl::Status status = restore(bytes);
    ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << damage << ": " << status;
    ASSERT_THAT(std::string(status.message()), HasSubstr(std::string(message))) << damage;
    ASSERT_EQ(state_hash(), hash_before) << damage << " changed the state";
  };
  for (size_t size = 0; size < snapshot.size(); ++size) {
    expect_refused(snapshot.substr(0, size), "truncated",
                   "truncated to " + std::to_string(size) + " bytes");
    if (::testing::Test::HasFatalFailure()) return;  // One report, not one per byte.
  }
  std::string flipped(snapshot);
  for (size_t i = 0; i < snapshot::kHeaderBytes; ++i) {
    flipped[i] ^= 0x10;
    expect_refused(flipped, "", "byte " + std::to_string(i) + " flipped");
    flipped[i] ^= 0x10;
    if (::testing::Test::HasFatalFailure()) return;
  }
  expect_refused(std::string(snapshot) + "x", "trailing", "one trailing byte");
}

void ExpectOldFormatReadsAsCurrent(
    absl::string_view golden, uint32_t old_version, absl::string_view current,
    absl::FunctionRef<absl::StatusOr<std::string>(absl::string_view)> restore_and_save) {
  const Header old_header = ReadHeader(golden);
  ASSERT_EQ(old_header.version, old_version);
  ASSERT_EQ(golden.size(),
            snapshot::kHeaderBytes + old_header.payload_bytes + snapshot::kOldTrailerBytes);
  const Header current_header = ReadHeader(current);
  ASSERT_EQ(current_header.version, old_version + 1);
  ASSERT_EQ(current.size(), snapshot::kHeaderBytes + current_header.payload_bytes);

  std::string damaged_trailer(golden);
  damaged_trailer.back() ^= 0x10;
  for (absl::string_view bytes : {golden, absl::string_view(damaged_trailer)}) {
    const absl::StatusOr<std::string> saved = restore_and_save(bytes);
    ASSERT_TRUE(saved.ok()) << saved.status();
    EXPECT_EQ(*saved, current) << "the restored state differs from the current snapshot's";
  }
}

std::string ReadTestFile(absl::string_view path) {
  std::ifstream file{std::string(path), std::ios::binary};
  EXPECT_TRUE(file.good()) << "cannot open " << path;
  std::ostringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

}  // namespace vouch::verifiers::testing
