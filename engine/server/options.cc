#include "engine/server/options.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vouch::server {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("server option ", field, ": ", why));
}

}  // namespace

absl::StatusOr<std::vector<RemoteVerifierOptions>> ParseRemoteVerifiers(absl::string_view list) {
  std::vector<RemoteVerifierOptions> remotes;
  if (list.empty()) return remotes;
  for (const absl::string_view entry : absl::StrSplit(list, ',')) {
    const std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    auto invalid = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("--remote_verifiers entry \"", entry,
                                                     "\": ", why,
                                                     " (name[:required|advisory|shadow][:hold])"));
    };
    if (parts.size() > 3 || parts[0].empty()) return invalid("malformed");
    RemoteVerifierOptions remote;
    remote.name = std::string(parts[0]);
    if (parts.size() >= 2) {
      if (parts[1] == "required") {
        remote.policy = VerifierPolicy::kRequired;
      } else if (parts[1] == "advisory") {
        remote.policy = VerifierPolicy::kAdvisory;
      } else if (parts[1] == "shadow") {
        remote.policy = VerifierPolicy::kShadow;
      } else {
        return invalid(absl::StrCat("unknown policy \"", parts[1], "\""));
      }
    }
    if (parts.size() == 3) {
      if (parts[2] != "hold") return invalid(absl::StrCat("unknown flag \"", parts[2], "\""));
      remote.hold_account_on_failure = true;
    }
    for (const RemoteVerifierOptions& earlier : remotes) {
      if (earlier.name == remote.name) return invalid("the name is listed twice");
    }
    remotes.push_back(std::move(remote));
  }
  return remotes;
}

absl::Status ServerOptions::Validate() const {
  if (host.empty()) return Invalid("host", "must not be empty");
  if (port < 0 || port > 65535) return Invalid("port", "must be in 0..65535");
  if (io_threads < 1 || io_threads > 64) return Invalid("io_threads", "must be in 1..64");
  if (busy_poll_ns < 0 || busy_poll_ns > 1'000'000'000) {
    return Invalid("busy_poll", "must be in 0..1 s");
  }
  if (max_connections < 1) return Invalid("max_connections", "must be at least 1");
  if (frame_bytes_max < 64 || frame_bytes_max > (64u << 20)) {
    return Invalid("frame_bytes_max", "must be in 64 B..64 MiB");
  }
  if (submit_batch_max < 1) return Invalid("submit_batch_max", "must be at least 1");
  if (SubmitFrameBytesMax(submit_batch_max) > frame_bytes_max) {
    return Invalid("submit_batch_max",
                   absl::StrCat("a Submit of ", submit_batch_max, " transactions takes up to ",
                                SubmitFrameBytesMax(submit_batch_max),
                                " bytes, more than frame_bytes_max (", frame_bytes_max,
                                "); lower it to at most ",
                                (frame_bytes_max - kSubmitEnvelopeBytesMax) / kSubmitEntryBytesMax,
                                " or raise frame_bytes_max to at least ",
                                SubmitFrameBytesMax(submit_batch_max)));
  }
  if (outbound_bytes_max < 4 * frame_bytes_max) {
    return Invalid("outbound_bytes_max", "must be at least 4 frames (4 * frame_bytes_max)");
  }
  if (partial_frame_timeout_ns <= 0) return Invalid("partial_frame_timeout", "must be positive");
  if (idle_timeout_ns <= 0) return Invalid("idle_timeout", "must be positive");
  if (send_buffer_bytes < 0) return Invalid("send_buffer_bytes", "must not be negative");
  if (balance_read_timeout_ns <= 0 || balance_read_timeout_ns > 1'000'000'000) {
    return Invalid("balance_read_timeout", "must be in (0, 1 s]");
  }
  if (linger_ns < 0) return Invalid("linger", "must not be negative");
  if (retained_outcomes < 1024) return Invalid("retained_outcomes", "must be at least 1024");
  if (!remote_verifiers.empty() && VerifyBatchMax(frame_bytes_max) < 1) {
    return Invalid("frame_bytes_max", absl::StrCat("with remote verifiers it must hold one "
                                                   "VerifyRequest: at least ",
                                                   kVerifyEntryBytesMax + kSubmitEnvelopeBytesMax));
  }
  if (flush_timeout_ns < 0) return Invalid("flush_timeout", "must not be negative");
  return absl::OkStatus();
}

}  // namespace vouch::server
