// The agent's open-files limit (RLIMIT_NOFILE), raised at start.
//
// Every gRPC connection holds a descriptor. gRPC 1.51's accept loop stops for good at the
// first accept4() that fails with EMFILE (src/core/lib/iomgr/tcp_server_posix.cc, on_read:
// any error other than EINTR/EAGAIN leaves the listener without a read notification), so a
// flood of connections past the limit deafens the agent until it restarts (README
// "Limits"). The agent cannot cap connections in this gRPC version; what it can do is make
// the limit as high as it is allowed to: the soft limit up to the hard one, as Go's runtime
// does for every Go program, but not past kMaxRaisedOpenFiles. More is not better: each
// idle connection costs the agent ~13 KB (1,100 of them: +14 MB), so 1,048,576 would let a
// flood hold ~13 GB in a process the OOM killer may not take (oom_score_adj -1000); and on
// kernels without close_range (< 5.11) a worker's start marks every descriptor up to the
// soft limit close-on-exec one by one (1,048,576 fcntl calls took 2.3 s on a development
// VM, 65,536 took 0.12 s). A soft limit already above it is kept. memload's workers inherit
// the limit; they do not use select().
//
//   OpenFilesLimit limit = RaiseOpenFilesLimit();
//   for (const std::string& line : DescribeOpenFilesLimit(limit)) MEMLOAD_LOG("%s", line);
//
// Thread-safety: RaiseOpenFilesLimit changes the process's limit: call it once, at start,
// before other threads open descriptors. DescribeOpenFilesLimit is a pure function.
#ifndef MEMLOAD_AGENT_OPEN_FILES_LIMIT_H_
#define MEMLOAD_AGENT_OPEN_FILES_LIMIT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace memload {
namespace agent {

// The most the agent raises its soft limit to: the systemd unit's LimitNOFILE.
inline constexpr uint64_t kMaxRaisedOpenFiles = 65536;

// Below this many open files the agent warns: a few thousand connections from one
// controller's fan-out or a flood are enough to reach it.
inline constexpr uint64_t kLowOpenFilesLimit = 4096;

// The limit before and after the raise. RLIM_INFINITY is kept as
// std::numeric_limits<uint64_t>::max().
struct OpenFilesLimit {
  uint64_t soft_before = 0;
  uint64_t soft = 0;  // In force now.
  uint64_t hard = 0;
  std::string error;  // Why the limit could not be read or raised; "" when it could.
};

// Raises the soft RLIMIT_NOFILE to min(hard limit, `at_most`) when it is lower; never lowers
// it. Never fails: a limit that cannot be read or raised is reported in `error`, and the one
// in force is kept.
OpenFilesLimit RaiseOpenFilesLimit(uint64_t at_most = kMaxRaisedOpenFiles);

// The log lines for `limit`: one line with both values, then a line starting "warning:"
// when the limit in force is below `low` or could not be raised.
std::vector<std::string> DescribeOpenFilesLimit(const OpenFilesLimit& limit,
                                                uint64_t low = kLowOpenFilesLimit);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_OPEN_FILES_LIMIT_H_
