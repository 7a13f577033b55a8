#include "tools/load/server_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vouch::load {
namespace {

constexpr size_t kResponseBytesMax = 4 << 20;  // A scrape is tens of KiB; this bounds a bad one.

absl::StatusOr<std::string> HttpGet(const std::string& host, int port, absl::string_view path,
                                    absl::Duration timeout) {
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("metrics host is not IPv4: ", host));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  const timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string response;
  absl::Status status;
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\n\r\n");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
    status = absl::UnavailableError(
        absl::StrCat("metrics ", host, ":", port, ": ", strerror(errno)));
  }
  char buffer[16384];
  while (status.ok()) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::UnavailableError(absl::StrCat("metrics read: ", strerror(errno)));
    } else if (response.size() + static_cast<size_t>(n) > kResponseBytesMax) {
      status = absl::ResourceExhaustedError("metrics response above 4 MiB");
    } else {
      response.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  if (!status.ok()) return status;
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos ||
      response.find(" 200 ") > response.find("\r\n")) {
    return absl::UnavailableError(
        absl::StrCat("metrics: not an HTTP 200 response: ", response.substr(0, 80)));
  }
  return response.substr(body + 4);
}

}  // namespace

absl::StatusOr<MetricSamples> ScrapeMetrics(const std::string& host, int port,
                                            absl::Duration timeout) {
  absl::StatusOr<std::string> body = HttpGet(host, port, "/metrics", timeout);
  if (!body.ok()) return body.status();
  MetricSamples samples;
  for (absl::string_view line : absl::StrSplit(*body, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') continue;
    // "series value [timestamp]": the series ends at the first space after its labels (no
    // label value of vouch's metrics holds a space).
    const size_t labels_end = line.find('}');
    const size_t series_end =
        line.find(' ', labels_end == absl::string_view::npos ? 0 : labels_end);
    if (series_end == absl::string_view::npos) continue;
    absl::string_view value = line.substr(series_end + 1);
    value = value.substr(0, value.find(' '));
    double parsed = 0;
    if (!absl::SimpleAtod(value, &parsed)) continue;
    samples[std::string(line.substr(0, series_end))] = parsed;
  }
  return samples;
}

double SampleOr0(const MetricSamples& samples, const std::string& series) {
  const auto it = samples.find(series);
  return it == samples.end() ? 0 : it->second;
}

}  // namespace vouch::load
