#include "tests/verifiers/testing/snapshot_damage.h"

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "verifiers/common/snapshot_format.h"

namespace vouch::verifiers::testing {

using ::testing::HasSubstr;

struct Header {
  uint64_t magic;
  uint32_t version;
};

Header ReadHeader(absl::string_view snapshot) {
  snapshot::ByteReader in(snapshot);
  Header header;
  header.magic = in.Get<uint64_t>();
  header.version = in.Get<uint32_t>();
  EXPECT_TRUE(in.ok());
  return header;
}

std::string EditPayload(absl::string_view snapshot,
                        absl::FunctionRef<void(std::string& payload)> edit) {
  const Header header = ReadHeader(snapshot);
  const absl::StatusOr<absl::string_view> payload =
      snapshot::OpenSnapshot(snapshot, header.magic, header.version, "test");
  EXPECT_TRUE(payload.ok()) << payload.status();
  std::string edited(payload.value_or(""));
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
  for (size_t i = 0; i < flipped.size(); ++i) {
    flipped[i] ^= 0x10;
    expect_refused(flipped, "", "byte " + std::to_string(i) + " flipped");
    flipped[i] ^= 0x10;
    if (::testing::Test::HasFatalFailure()) return;
  }
  expect_refused(std::string(snapshot) + "x", "trailing", "one trailing byte");
}

}  // namespace vouch::verifiers::testing
