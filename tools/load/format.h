// Number formatting shared by vouch-load's progress line and report.
#ifndef VOUCH_TOOLS_LOAD_FORMAT_H_
#define VOUCH_TOOLS_LOAD_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"

namespace vouch::load {

// "850ns", "12.3us", "4.5ms", "1.20s".
inline std::string FormatNs(int64_t ns) {
  if (ns < 1'000) return absl::StrFormat("%dns", ns);
  if (ns < 1'000'000) return absl::StrFormat("%.1fus", ns / 1e3);
  if (ns < 1'000'000'000) return absl::StrFormat("%.1fms", ns / 1e6);
  return absl::StrFormat("%.2fs", ns / 1e9);
}

}  // namespace vouch::load

#endif  // VOUCH_TOOLS_LOAD_FORMAT_H_
