#include "tests/engine/simulation/power_loss.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace vouch::simulation {

namespace fs = std::filesystem;

std::string PowerLossReport::Describe() const {
  return absl::StrCat(files_cut, " files cut (", bytes_dropped, " unsynced bytes dropped, ",
                      files_garbled, " with a garbage tail), ", files_vanished,
                      " unsynced directory entries gone");
}

void DiskModel::Track(const fs::path& dir) {
  dir_ = dir.lexically_normal();
  durable_entries_.clear();
  synced_bytes_.clear();
  std::error_code error;
  if (!fs::exists(dir_, error)) return;
  RecordEntries();
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    struct stat info;
    if (::stat(entry.path().c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
      synced_bytes_[info.st_ino] = static_cast<uint64_t>(info.st_size);
    }
  }
}

void DiskModel::RecordEntries() {
  durable_entries_.clear();
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    struct stat info;
    if (::stat(entry.path().c_str(), &info) == 0) {
      durable_entries_[entry.path().filename().string()] = info.st_ino;
    }
  }
}

void DiskModel::ArmPowerCut(int skip, std::function<void()> cut) {
  syncs_before_cut_ = skip;
  cut_ = std::move(cut);
}

void DiskModel::MaybeCut() {
  if (cut_ == nullptr || syncs_before_cut_-- > 0) return;
  const std::function<void()> cut = std::move(cut_);
  cut_ = nullptr;
  cut();
}

// By inode, not `path`: the snapshot writer syncs a temporary file and then renames it.
int DiskModel::SyncFile(int fd, const std::string& /*path*/) {
  MaybeCut();
  struct stat info;
  if (::fstat(fd, &info) != 0) return -1;
  synced_bytes_[info.st_ino] = static_cast<uint64_t>(info.st_size);
  return 0;
}

// Other directories (the parent the engine syncs after creating the data directory) hold nothing
// the model cuts.
int DiskModel::SyncDirectory(int /*dir_fd*/, const std::string& path) {
  MaybeCut();
  if (fs::path(path).lexically_normal() == dir_) RecordEntries();
  return 0;
}

PowerLossReport DiskModel::PowerLoss(const fs::path& copy, std::mt19937_64& rng) const {
  PowerLossReport report;
  auto random = [&rng](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  // In name order, so the choices are a function of the seed.
  std::map<std::string, struct stat> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    struct stat info;
    if (::stat(entry.path().c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
      files[entry.path().filename().string()] = info;
    }
  }
  for (const auto& [name, info] : files) {
    const fs::path file = copy / name;
    const auto durable = durable_entries_.find(name);
    if ((durable == durable_entries_.end() || durable->second != info.st_ino) && random(2) == 0) {
      fs::remove(file);
      ++report.files_vanished;
      continue;
    }
    const auto synced = synced_bytes_.find(info.st_ino);
    const uint64_t synced_bytes = synced != synced_bytes_.end() ? synced->second : 0;
    const uint64_t written_bytes = static_cast<uint64_t>(info.st_size);
    if (written_bytes <= synced_bytes) continue;
    // A third of the time nothing unsynced reached the disk, a third of the time all of it did,
    // else any prefix of it.
    uint64_t cut = written_bytes;
    switch (random(3)) {
      case 0: cut = synced_bytes; break;
      case 1: break;
      default: cut = synced_bytes + random(written_bytes - synced_bytes + 1); break;
    }
    if (cut < written_bytes) {
      fs::resize_file(file, cut);
      ++report.files_cut;
      report.bytes_dropped += written_bytes - cut;
    }
    if (cut > synced_bytes && random(3) == 0) {
      std::string bytes(std::min<uint64_t>(cut - synced_bytes, 1 + random(64)), '\0');
      if (random(2) == 0) {
        for (char& c : bytes) c = static_cast<char>(random(256));
      }
      std::FILE* out = std::fopen(file.c_str(), "r+b");
      std::fseek(out, static_cast<long>(cut - bytes.size()), SEEK_SET);
      std::fwrite(bytes.data(), 1, bytes.size(), out);
      std::fclose(out);
      ++report.files_garbled;
    }
  }
  return report;
}

}  // namespace vouch::simulation
