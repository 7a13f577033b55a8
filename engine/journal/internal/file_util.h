// POSIX file helpers shared by SegmentWriter and ScanJournal. Every error names the operation
// and the path and carries the errno text, because these messages end up in front of an
// operator deciding whether a disk is full, failing or misconfigured.
//
// Thread safety: stateless; safe from any thread on distinct files.
#ifndef VOUCH_ENGINE_JOURNAL_INTERNAL_FILE_UTIL_H_
#define VOUCH_ENGINE_JOURNAL_INTERNAL_FILE_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch::journal::internal {

// absl::ErrnoToStatus(error_number, "<operation> <path>: <strerror>").
absl::Status ErrnoError(int error_number, absl::string_view operation, absl::string_view path);

std::string JoinPath(absl::string_view dir, absl::string_view name);

struct SegmentFile {
  uint64_t first_record_index = 0;
  std::string name;  // Base name, e.g. "journal-00000000000000000000.log".
};

// The segment files in `dir`, in index order. Other files are ignored. A missing directory is
// an empty list.
absl::StatusOr<std::vector<SegmentFile>> ListSegments(const std::string& dir);

// Creates `dir` and any missing parents (mode 0755), making each new entry durable by syncing
// its parent. An existing directory is fine.
absl::Status CreateDirectories(const std::string& dir);

// fsync(2) of a directory: makes the entries created or removed in it durable.
absl::Status SyncDirectory(const std::string& dir);

// write(2) until all bytes are written, retrying partial writes and EINTR.
absl::Status WriteFully(int fd, const char* data, size_t size, absl::string_view path);

// Replaces *contents with the whole file.
absl::Status ReadFile(const std::string& path, std::string* contents);

// ftruncate(2) to `size`, then fsync, so a repaired tail stays repaired after a power loss.
absl::Status TruncateFile(const std::string& path, uint64_t size);

}  // namespace vouch::journal::internal

#endif  // VOUCH_ENGINE_JOURNAL_INTERNAL_FILE_UTIL_H_
