// Damaged copies of a verifier snapshot, and the checks that a restore refuses each of them; and
// the golden snapshots of older format versions.
//
// Shared by the fraud and ledger snapshot tests, which must refuse damage the same way: with
// InvalidArgument and a message naming the problem, and without changing the restored object.
#ifndef VOUCH_TESTS_VERIFIERS_TESTING_SNAPSHOT_DAMAGE_H_
#define VOUCH_TESTS_VERIFIERS_TESTING_SNAPSHOT_DAMAGE_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/common/snapshot_format.h"

namespace vouch::verifiers::testing {

// `snapshot` with its payload passed through `edit`, then framed again with a valid length: a
// state that breaks an invariant.
// REQUIRES: `snapshot` is well framed, in a version without the old checksum trailer.
std::string EditPayload(absl::string_view snapshot,
                        absl::FunctionRef<void(std::string& payload)> edit);

// Overwrites the field at `offset` of a payload with `value`, encoded as the snapshot encodes it.
template <typename T>
void Overwrite(std::string& payload, size_t offset, T value) {
  std::string bytes;
  snapshot::ByteWriter(&bytes).Put(value);
  payload.replace(offset, bytes.size(), bytes);
}

// `snapshot` with its format version replaced.
std::string WithVersion(absl::string_view snapshot, uint32_t version);

// Tries `restore` on every truncation of `snapshot`, on a copy with each single byte of the header
// (magic, version, payload length) flipped, and on one with a trailing byte. Expects
// InvalidArgument every time ("truncated" and "trailing" in the messages where they apply), and
// `state_hash()` unchanged after every attempt. A flipped payload byte may decode into another
// valid state: catching it is the engine snapshot file's CRC32C's job (snapshot_format.h).
void ExpectRefusesDamage(absl::string_view snapshot,
                         absl::FunctionRef<absl::Status(absl::string_view)> restore,
                         absl::FunctionRef<uint64_t()> state_hash);

// Checks that a snapshot in an older format version that ended with the checksum trailer still
// reads. `golden` is such a snapshot, as the build before wrote it (a file under testdata/, never
// regenerated), and `current` is this build's snapshot of the same state. Expects: `golden`
// carries `old_version` and kOldTrailerBytes after its payload; `current` carries the next
// version and nothing after its payload; `restore_and_save` (restore into a fresh verifier, then
// save it) turns `golden`, and `golden` with its trailer damaged (skipped, not verified), into
// `current` byte for byte.
void ExpectOldFormatReadsAsCurrent(
    absl::string_view golden, uint32_t old_version, absl::string_view current,
    absl::FunctionRef<absl::StatusOr<std::string>(absl::string_view)> restore_and_save);

// The bytes of a file in the test's runfiles, by its path from the workspace root
// ("tests/verifiers/fraud/testdata/..."); empty, with a test failure, if it cannot be read.
std::string ReadTestFile(absl::string_view path);

}  // namespace vouch::verifiers::testing

#endif  // VOUCH_TESTS_VERIFIERS_TESTING_SNAPSHOT_DAMAGE_H_
