// The binaries' one file reader. ReadFileUpTo reads a whole file that a user or operator
// names (a token file, a target list, a labels file, a PEM file, a plan, /proc files...)
// but never more than a limit, so that `/dev/zero`, a FIFO that never ends or a 200 MB
// file by mistake is a clear error at once, not minutes of reading and a std::bad_alloc.
// ReadLinesUpTo streams a file of any length (a recording) holding one line at a time.
//
//   MEMLOAD_ASSIGN_OR_RETURN(std::string text,
//                            ReadFileUpTo(path, kMaxTokenFileBytes, "--token-file"));
//
// Thread-safety: thread-safe (no shared state).
#ifndef MEMLOAD_CORE_BOUNDED_READ_H_
#define MEMLOAD_CORE_BOUNDED_READ_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {

// Limits of the small files the binaries read: far above any real one, far below what
// would hurt.
constexpr uint64_t kMaxTokenFileBytes = uint64_t{1} << 20;     // --token-file, --auth-token-file
constexpr uint64_t kMaxTargetsFileBytes = uint64_t{16} << 20;  // --targets=@FILE
constexpr uint64_t kMaxLabelsFileBytes = uint64_t{1} << 20;    // --labels-file
constexpr uint64_t kMaxPemFileBytes = uint64_t{1} << 20;       // --tls-* certificates and keys
constexpr uint64_t kMaxPlanFileBytes = uint64_t{1} << 20;      // memloadctl --plan
// /proc and cgroup files (ReadFileToString in core/node_readers.h): a busy node's
// /proc/self/mountinfo is a few MB at most.
constexpr uint64_t kMaxKernelFileBytes = uint64_t{64} << 20;

// The file's contents. Errors name `what` (e.g. "--token-file"; may be empty) and the path:
// InvalidArgument when it holds more than `max_bytes` (found after reading at most
// max_bytes + 1 of them), and when it cannot be opened or read, absl::ErrnoToStatus's code
// for the errno (NotFound, PermissionDenied, FailedPrecondition for a directory, ...) with
// strerror's text: "--token-file /etc/t: cannot read: No such file or directory". This is
// the one errno mapping of the code base: other code that turns an errno into a status
// calls absl::ErrnoToStatus too.
absl::StatusOr<std::string> ReadFileUpTo(const std::string& path, uint64_t max_bytes,
                                         absl::string_view what);

// ReadFileUpTo for a file that must be a regular file (memloadctl's config): a FIFO, a
// device or a directory is FailedPrecondition "WHAT PATH: not a regular file", found
// without blocking (a FIFO with no writer is not waited for).
absl::StatusOr<std::string> ReadRegularFileUpTo(const std::string& path, uint64_t max_bytes,
                                                absl::string_view what);

// Calls `each` with every line of `path`, in order, without its '\n' (a last line without
// one too), holding one line at a time: a line longer than `max_line_bytes` is passed cut
// to max_line_bytes + 1 bytes (so `each` can tell it is too long and say where) and the
// rest of it is skipped. Stops at the first error `each` returns and returns it; read
// errors as ReadFileUpTo's.
absl::Status ReadLinesUpTo(const std::string& path, size_t max_line_bytes, absl::string_view what,
                           const std::function<absl::Status(absl::string_view line)>& each);

}  // namespace memload

#endif  // MEMLOAD_CORE_BOUNDED_READ_H_
