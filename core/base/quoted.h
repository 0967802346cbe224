// Text that a client or a user gave, quoted for an error message or a log line: C-escaped
// (no control character reaches a terminal or a log), in double quotes, and cut after
// kMaxQuotedBytes bytes with the whole size said. No input can then make a message
// unbounded — nor a gRPC status, whose metadata a client refuses past 8 KiB, so that a
// 1 MB plan id would otherwise hide the real error behind RESOURCE_EXHAUSTED.
//
//   Quoted("drill-1")        == "\"drill-1\""
//   Quoted("a\nb")           == "\"a\\nb\""
//   Quoted(6000 x 'a')       == "\"aaaa(the first 64 bytes)...\" (6000 bytes)"
//
// Thread-safety: a pure function.
#ifndef MEMLOAD_CORE_BASE_QUOTED_H_
#define MEMLOAD_CORE_BASE_QUOTED_H_

#include <cstddef>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace memload {

inline constexpr size_t kMaxQuotedBytes = 64;

inline std::string Quoted(absl::string_view text) {
  if (text.size() <= kMaxQuotedBytes) return absl::StrCat("\"", absl::CHexEscape(text), "\"");
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMaxQuotedBytes)), "...\" (",
                      text.size(), " bytes)");
}

}  // namespace memload

#endif  // MEMLOAD_CORE_BASE_QUOTED_H_
