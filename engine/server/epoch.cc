#include "engine/server/epoch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "engine/journal/sync_hook.h"

namespace vouch::server {
namespace {

constexpr char kEpochPrefix[] = "vouch epoch ";

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Through the storage layer's sync hook, like every sync of the data directory, so the
// simulation's power loss (engine/journal/sync_hook.h) knows the file is durable.
absl::Status SyncDirectory(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  const bool synced = journal::DirectorySync(fd, path) == 0;
  close(fd);
  return synced ? absl::OkStatus() : ErrnoError("fsync", path);
}

absl::Status WriteEpochFile(const std::string& dir, uint64_t epoch) {
  const std::string path = absl::StrCat(dir, "/", kEpochFileName);
  const std::string temporary = absl::StrCat(path, ".tmp");
  const std::string text = absl::StrFormat("%s%016x\n", kEpochPrefix, epoch);
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create", temporary);
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool synced = written && journal::DataSync(fd, temporary) == 0;
  close(fd);
  if (!synced) return ErrnoError("write", temporary);
  if (rename(temporary.c_str(), path.c_str()) != 0) return ErrnoError("rename", temporary);
  return SyncDirectory(dir);
}

}  // namespace

uint64_t NewEpoch() {
  std::random_device device;
  for (;;) {
    const uint64_t epoch = (uint64_t{device()} << 32) ^ device();
    if (epoch != 0) return epoch;  // 0 means "unknown" in Hello.epoch.
  }
}

absl::StatusOr<uint64_t> LoadOrCreateEpoch(const Options& options,
                                           const RecoveryReport& recovery) {
  if (!recovery.journal) return NewEpoch();
  const std::string& dir = options.durability.dir;
  const std::string path = absl::StrCat(dir, "/", kEpochFileName);
  const bool empty_journal = recovery.records == 0 && recovery.snapshot_file.empty();
  std::ifstream in(path);
  if (!empty_journal && in.is_open()) {
    std::stringstream text;
    text << in.rdbuf();
    const std::string contents = text.str();
    absl::string_view value = absl::StripTrailingAsciiWhitespace(contents);
    uint64_t epoch = 0;
    if (!absl::ConsumePrefix(&value, kEpochPrefix) || !absl::SimpleHexAtoi(value, &epoch) ||
        epoch == 0) {
      return absl::DataLossError(absl::StrCat(
          path, " does not hold an epoch (\"", kEpochPrefix, "<16 hex digits>\"); it is damaged"));
    }
    return epoch;
  }
  const uint64_t epoch = NewEpoch();
  if (absl::Status status = WriteEpochFile(dir, epoch); !status.ok()) return status;
  return epoch;
}

}  // namespace vouch::server
