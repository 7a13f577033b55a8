// The server's epoch: the identity of its sequence space (Welcome.epoch in proto/vouch.proto).
// A client's saved resume position (an Outcome.seq) means something only under the epoch it was
// seen in.
//
// With a journal (ack policy written or durable) sequence numbers continue across restarts, so
// the epoch does too: it is kept in <data_dir>/epoch, written atomically (temporary file,
// fsync, rename, fsync of the directory). It is replaced by a new one only when the journal
// holds nothing (no record and no snapshot), which starts a new sequence space from 1; a
// directory from before epochs existed gets one on its next start. With ack policy memory every
// start numbers from 1 again, so every start has a new epoch.
#ifndef VOUCH_ENGINE_SERVER_EPOCH_H_
#define VOUCH_ENGINE_SERVER_EPOCH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/options.h"

namespace vouch::server {

// The name of the epoch file in the data directory.
inline constexpr char kEpochFileName[] = "epoch";

// A random non-zero epoch.
uint64_t NewEpoch();

// The epoch of an engine created with `options` whose recovery found `recovery`. Writes the
// epoch file when it is new. DataLoss for an epoch file that does not parse; Internal for an
// I/O error.
absl::StatusOr<uint64_t> LoadOrCreateEpoch(const Options& options,
                                           const RecoveryReport& recovery);

}  // namespace vouch::server

#endif  // VOUCH_ENGINE_SERVER_EPOCH_H_
