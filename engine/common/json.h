// Minimal JSON output for reports and logs: a quoted string, and a writer for objects, arrays,
// numbers, strings, booleans and null. Output only; nothing in vouch parses JSON.
//
// Thread safety: a JsonWriter belongs to one thread; JsonQuoted is a pure function.
#ifndef VOUCH_ENGINE_COMMON_JSON_H_
#define VOUCH_ENGINE_COMMON_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace vouch {

// `text` as a JSON string literal: quotes, backslashes and control characters escaped.
std::string JsonQuoted(absl::string_view text);

class JsonWriter {
 public:
  void BeginObject(absl::string_view key = {}) { Open(key, '{'); }
  void EndObject() { Close('}'); }
  void BeginArray(absl::string_view key) { Open(key, '['); }
  void EndArray() { Close(']'); }
  void Uint(absl::string_view key, uint64_t value);
  void Int(absl::string_view key, int64_t value);
  // NaN or infinity: null.
  void Double(absl::string_view key, double value);
  void Bool(absl::string_view key, bool value) { Raw(key, value ? "true" : "false"); }
  void Null(absl::string_view key) { Raw(key, "null"); }
  void String(absl::string_view key, absl::string_view value) { Raw(key, JsonQuoted(value)); }

  std::string Take() { return std::move(out_); }

 private:
  // A comma before every member but the first; the key, inside an object.
  void Prefix(absl::string_view key);
  void Open(absl::string_view key, char bracket);
  void Close(char bracket);
  void Raw(absl::string_view key, absl::string_view value);

  std::string out_;
  std::vector<bool> first_;  // Per open bracket: nothing written inside it yet.
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_COMMON_JSON_H_
