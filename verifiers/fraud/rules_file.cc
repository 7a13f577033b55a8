#include "verifiers/fraud/rules_file.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/types/transaction.h"

namespace vouch::fraud {
namespace {

bool ParseBool(absl::string_view value, bool* out) {
  if (value == "true") return *out = true, true;
  if (value == "false") return *out = false, true;
  return false;
}

template <typename T>
bool ParseList(absl::string_view value, std::vector<T>* out,
               bool (*parse_one)(absl::string_view, T*)) {
  out->clear();
  if (value.empty()) return true;
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    T parsed;
    if (!parse_one(absl::StripAsciiWhitespace(item), &parsed)) return false;
    out->push_back(parsed);
  }
  return true;
}

bool ParseId(absl::string_view text, uint64_t* out) { return absl::SimpleAtoi(text, out); }

bool ParseCountry(absl::string_view text, CountryCode* out) {
  *out = PackCountry(std::string_view(text.data(), text.size()));
  return *out != 0;
}

// Applies one `key = value`; false if the key is unknown or the value malformed.
bool Apply(absl::string_view key, absl::string_view value, FraudRules* r) {
  int64_t ms = 0;
  if (key == "velocity_enabled") return ParseBool(value, &r->velocity_enabled);
  if (key == "velocity_window_ms") {
    if (!absl::SimpleAtoi(value, &ms)) return false;
    r->velocity_window_ns = ms * 1'000'000;
    return true;
  }
  if (key == "velocity_count_max") return absl::SimpleAtoi(value, &r->velocity_count_max);
  if (key == "velocity_amount_max_minor") {
    return absl::SimpleAtoi(value, &r->velocity_amount_max_minor);
  }
  if (key == "anomaly_enabled") return ParseBool(value, &r->anomaly_enabled);
  if (key == "anomaly_z_max") return absl::SimpleAtod(value, &r->anomaly_z_max);
  if (key == "anomaly_min_samples") return absl::SimpleAtoi(value, &r->anomaly_min_samples);
  if (key == "blocked_merchants") return ParseList(value, &r->blocked_merchants, &ParseId);
  if (key == "blocked_countries") return ParseList(value, &r->blocked_countries, &ParseCountry);
  if (key == "blocked_devices") return ParseList(value, &r->blocked_devices, &ParseId);
  if (key == "travel_enabled") return ParseBool(value, &r->travel_enabled);
  if (key == "travel_window_ms") {
    if (!absl::SimpleAtoi(value, &ms)) return false;
    r->travel_window_ns = ms * 1'000'000;
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<FraudRules> ParseFraudRules(absl::string_view text) {
  FraudRules rules;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const size_t equals = line.find('=');
    if (equals == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("fraud rules line ", line_number, ": expected `key = value`"));
    }
    const absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, equals));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(equals + 1));
    if (!Apply(key, value, &rules)) {
      return absl::InvalidArgumentError(absl::StrCat("fraud rules line ", line_number,
                                                     ": unknown key or bad value in `", line,
                                                     "`"));
    }
  }
  if (absl::Status status = rules.Validate(); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("fraud rules: ", status.message()));
  }
  return rules;
}

absl::StatusOr<FraudRules> LoadFraudRulesFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("fraud rules file ", path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<FraudRules> rules = ParseFraudRules(text.str());
  if (!rules.ok()) {
    return absl::Status(rules.status().code(),
                        absl::StrCat(path, ": ", rules.status().message()));
  }
  return rules;
}

std::string FormatFraudRules(const FraudRules& r) {
  auto sorted = [](auto values) {
    std::sort(values.begin(), values.end());
    return values;
  };
  std::vector<std::string> countries;
  for (const CountryCode country : sorted(r.blocked_countries)) {
    countries.push_back(CountryToString(country));
  }
  return absl::StrCat(
      "velocity_enabled = ", r.velocity_enabled ? "true" : "false", "\n",
      "velocity_window_ms = ", r.velocity_window_ns / 1'000'000, "\n",
      "velocity_count_max = ", r.velocity_count_max, "\n",
      "velocity_amount_max_minor = ", r.velocity_amount_max_minor, "\n",
      "anomaly_enabled = ", r.anomaly_enabled ? "true" : "false", "\n",
      "anomaly_z_max = ", r.anomaly_z_max, "\n",
      "anomaly_min_samples = ", r.anomaly_min_samples, "\n",
      "blocked_merchants = ", absl::StrJoin(sorted(r.blocked_merchants), ", "), "\n",
      "blocked_countries = ", absl::StrJoin(countries, ", "), "\n",
      "blocked_devices = ", absl::StrJoin(sorted(r.blocked_devices), ", "), "\n",
      "travel_enabled = ", r.travel_enabled ? "true" : "false", "\n",
      "travel_window_ms = ", r.travel_window_ns / 1'000'000, "\n");
}

}  // namespace vouch::fraud
