// A minimal logger for memload's binaries (Abseil 20220623 has no absl/log). Not used by
// core's libraries, which report through absl::Status instead.
//
//   MEMLOAD_LOG("listening on %s", address);   // "2026-11-25T15:04:05.123Z memload: ..."
//
// Thread-safe: each line is written with a single fwrite to stderr.
#ifndef MEMLOAD_CORE_BASE_LOG_H_
#define MEMLOAD_CORE_BASE_LOG_H_

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace memload {

inline void LogLine(const std::string& message) {
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace memload

#define MEMLOAD_LOG(...) ::memload::LogLine(::absl::StrFormat(__VA_ARGS__))

#endif  // MEMLOAD_CORE_BASE_LOG_H_
