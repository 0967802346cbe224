// ReadFileUpTo: reads a whole file that a user or operator names (a token file, a target
// list, a labels file, ...) but never more than a limit, so that `/dev/zero`, a FIFO that
// never ends or a 200 MB file by mistake is a clear error at once, not minutes of reading
// and a std::bad_alloc. Every file the binaries read goes through it (or another bounded
// reader: PEM files, plan files, recordings read as a stream).
//
//   MEMLOAD_ASSIGN_OR_RETURN(std::string text,
//                            ReadFileUpTo(path, kMaxTokenFileBytes, "--token-file"));
//
// Thread-safety: thread-safe (no shared state).
#ifndef MEMLOAD_CORE_BOUNDED_READ_H_
#define MEMLOAD_CORE_BOUNDED_READ_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {

// Limits of the small files the binaries read: far above any real one, far below what
// would hurt.
constexpr uint64_t kMaxTokenFileBytes = uint64_t{1} << 20;    // --token-file, --auth-token-file
constexpr uint64_t kMaxTargetsFileBytes = uint64_t{16} << 20;  // --targets=@FILE
constexpr uint64_t kMaxLabelsFileBytes = uint64_t{1} << 20;   // --labels-file

// The file's contents. Errors name `what` (e.g. "--token-file") and the path:
// InvalidArgument when it holds more than `max_bytes` (found after reading at most
// max_bytes + 1 of them), the errno's code when it cannot be opened or read (NotFound,
// PermissionDenied, ...).
absl::StatusOr<std::string> ReadFileUpTo(const std::string& path, uint64_t max_bytes,
                                         absl::string_view what);

}  // namespace memload

#endif  // MEMLOAD_CORE_BOUNDED_READ_H_
