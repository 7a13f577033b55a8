#include "engine/common/json.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vouch {

std::string JsonQuoted(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void JsonWriter::Uint(absl::string_view key, uint64_t value) { Raw(key, absl::StrCat(value)); }

void JsonWriter::Int(absl::string_view key, int64_t value) { Raw(key, absl::StrCat(value)); }

void JsonWriter::Double(absl::string_view key, double value) {
  Raw(key, std::isfinite(value) ? absl::StrFormat("%.6g", value) : "null");
}

void JsonWriter::Prefix(absl::string_view key) {
  if (!first_.empty() && !first_.back()) out_ += ',';
  if (!first_.empty()) first_.back() = false;
  if (!key.empty()) absl::StrAppend(&out_, JsonQuoted(key), ":");
}

void JsonWriter::Open(absl::string_view key, char bracket) {
  Prefix(key);
  out_ += bracket;
  first_.push_back(true);
}

void JsonWriter::Close(char bracket) {
  out_ += bracket;
  first_.pop_back();
}

void JsonWriter::Raw(absl::string_view key, absl::string_view value) {
  Prefix(key);
  absl::StrAppend(&out_, value);
}

}  // namespace vouch
