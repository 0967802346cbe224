// Fuzzes the parsers of what the agent reads from the node (core/node_readers.h): meminfo,
// cgroup v1/v2 limits and counters, memory.events, PSI, /proc/PID/status and the
// /proc/self/cgroup lookup. Every parser gets the same bytes; none may crash.
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "core/node_readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)memload::ParseMeminfo(text);
  (void)memload::ParseCgroupV2Max(text);
  (void)memload::ParseCgroupV1Limit(text);
  (void)memload::ParseCgroupCounter(text);
  (void)memload::ParseOomKillCount(text);
  (void)memload::ParsePressure(text);
  (void)memload::ParseProcStatus(text);
  // /proc/self/cgroup and /proc/self/mountinfo: the input split at its first NUL byte.
  const size_t split = text.find('\0');
  if (split != absl::string_view::npos) {
    (void)memload::FindMemoryCgroupPath(text.substr(0, split), text.substr(split + 1));
  } else {
    (void)memload::FindMemoryCgroupPath(text, text);
  }
  return 0;
}
