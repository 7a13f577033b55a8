// Damaged copies of a verifier snapshot, and the checks that a restore refuses each of them.
//
// Shared by the fraud and ledger snapshot tests, which must refuse damage the same way: with
// InvalidArgument and a message naming the problem, and without changing the restored object.
#ifndef VOUCH_TESTS_VERIFIERS_TESTING_SNAPSHOT_DAMAGE_H_
#define VOUCH_TESTS_VERIFIERS_TESTING_SNAPSHOT_DAMAGE_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "verifiers/common/snapshot_format.h"

namespace vouch::verifiers::testing {

// `snapshot` with its payload passed through `edit`, then framed again with a valid length and
// checksum: for damage the checksum cannot see, a state that breaks an invariant.
// REQUIRES: `snapshot` is well framed.
std::string EditPayload(absl::string_view snapshot,
                        absl::FunctionRef<void(std::string& payload)> edit);

// Overwrites the field at `offset` of a payload with `value`, encoded as the snapshot encodes it.
template <typename T>
void Overwrite(std::string& payload, size_t offset, T value) {
  std::string bytes;
  snapshot::ByteWriter(&bytes).Put(value);
  payload.replace(offset, bytes.size(), bytes);
}

// `snapshot` with its format version replaced (the checksum is left alone: the version is
// checked first).
std::string WithVersion(absl::string_view snapshot, uint32_t version);

// Tries `restore` on every truncation of `snapshot`, on a copy with each single byte flipped, and
// on one with a trailing byte. Expects InvalidArgument every time ("truncated" and "trailing" in
// the messages where they apply), and `state_hash()` unchanged after every attempt.
void ExpectRefusesDamage(absl::string_view snapshot,
                         absl::FunctionRef<absl::Status(absl::string_view)> restore,
                         absl::FunctionRef<uint64_t()> state_hash);

}  // namespace vouch::verifiers::testing

#endif  // VOUCH_TESTS_VERIFIERS_TESTING_SNAPSHOT_DAMAGE_H_
