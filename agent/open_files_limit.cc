#include "agent/open_files_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace memload {
namespace agent {
namespace {

uint64_t FromRlim(rlim_t value) {
  return value == RLIM_INFINITY ? std::numeric_limits<uint64_t>::max()
                                : static_cast<uint64_t>(value);
}

std::string Text(uint64_t value) {
  return value == std::numeric_limits<uint64_t>::max() ? std::string("unlimited")
                                                       : absl::StrCat(value);
}

}  // namespace

OpenFilesLimit RaiseOpenFilesLimit(uint64_t at_most) {
  OpenFilesLimit limit;
  struct rlimit current {};
  if (getrlimit(RLIMIT_NOFILE, &current) != 0) {
    limit.error = absl::StrCat("getrlimit(RLIMIT_NOFILE): ", std::strerror(errno));
    return limit;
  }
  limit.soft_before = limit.soft = FromRlim(current.rlim_cur);
  limit.hard = FromRlim(current.rlim_max);
  const uint64_t wanted = std::min(limit.hard, at_most);
  if (limit.soft >= wanted) return limit;
  struct rlimit raised = current;
  raised.rlim_cur =
      wanted == std::numeric_limits<uint64_t>::max() ? RLIM_INFINITY : static_cast<rlim_t>(wanted);
  if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    limit.error =
        absl::StrCat("setrlimit(RLIMIT_NOFILE) to ", Text(wanted), ": ", std::strerror(errno));
    return limit;
  }
  limit.soft = wanted;
  return limit;
}

std::vector<std::string> DescribeOpenFilesLimit(const OpenFilesLimit& limit, uint64_t low) {
  std::vector<std::string> lines;
  if (limit.soft == 0 && !limit.error.empty()) {  // Not even read.
    lines.push_back(absl::StrCat("warning: open files: ", limit.error));
    return lines;
  }
  if (limit.soft != limit.soft_before && limit.soft == limit.hard) {
    lines.push_back(absl::StrFormat("open files: soft limit %s raised to the hard limit %s",
                                    Text(limit.soft_before), Text(limit.hard)));
  } else if (limit.soft != limit.soft_before) {
    lines.push_back(absl::StrFormat(
        "open files: soft limit %s raised to %s, the most the agent asks for (hard limit %s)",
        Text(limit.soft_before), Text(limit.soft), Text(limit.hard)));
  } else {
    lines.push_back(absl::StrFormat("open files: soft limit %s, hard limit %s", Text(limit.soft),
                                    Text(limit.hard)));
  }
  if (!limit.error.empty()) {
    lines.push_back(
        absl::StrCat("warning: open files: cannot raise the soft limit: ", limit.error));
  }
  if (limit.soft < low) {
    lines.push_back(absl::StrFormat(
        "warning: open files: a limit of %s is low: about that many connections (a flood "
        "needs no token) stop gRPC accepting connections until the agent restarts; raise the "
        "hard limit to at least %d (systemd LimitNOFILE=, ulimit -Hn)",
        Text(limit.soft), low));
  }
  return lines;
}

}  // namespace agent
}  // namespace memload
