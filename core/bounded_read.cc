#include "core/bounded_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/size.h"

namespace memload {

namespace {

// What one read() asks for. The buffer is on the heap: these readers run on threads whose
// stacks are not ours (the metrics endpoint's civetweb workers), and a 64 KiB array on the
// stack overflowed one under ASan at -O0 (metrics_server_test).
constexpr size_t kReadChunkBytes = 64 * 1024;

// Opens `path` for reading without waiting for a FIFO's writer (a FIFO nobody writes to
// blocked open() for good: attack note N6), then makes reads blocking again: a FIFO without
// a writer then reads as empty at once, a pipe with one (`--targets=@<(...)`) as usual.
// A negative fd and errno on failure.
int OpenForReading(const std::string& path) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return fd;
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

// Reads `path` up to `max_bytes`; with `regular_only`, refuses anything but a regular file.
absl::StatusOr<std::string> ReadUpTo(const std::string& path, uint64_t max_bytes,
                                     absl::string_view what, bool regular_only) {
  const std::string name = what.empty() ? path : absl::StrCat(what, " ", path);
  const int fd = OpenForReading(path);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(name, ": cannot read"));
  if (regular_only) {
    struct stat info;
    if (fstat(fd, &info) != 0) {
      const int error = errno;
      close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat(name, ": cannot read"));
    }
    if (!S_ISREG(info.st_mode)) {
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(name, ": not a regular file"));
    }
  }
  std::string contents;
  const std::unique_ptr<char[]> buffer(new char[kReadChunkBytes]);
  while (true) {
    // One byte past the limit is enough to know the file is too large.
    const uint64_t left = max_bytes - contents.size();
    const size_t want = left >= kReadChunkBytes ? kReadChunkBytes : static_cast<size_t>(left) + 1;
    const ssize_t n = read(fd, buffer.get(), want);
    if (n > 0) {
      contents.append(buffer.get(), static_cast<size_t>(n));
      if (contents.size() > max_bytes) {
        close(fd);
        return absl::InvalidArgumentError(absl::StrCat(name, ": larger than the limit of ",
                                                       FormatSize(max_bytes),
                                                       " (is it the right file?)"));
      }
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int error = errno;
      close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat(name, ": cannot read"));
    }
  }
  close(fd);
  return contents;
}

}  // namespace

absl::StatusOr<std::string> ReadFileUpTo(const std::string& path, uint64_t max_bytes,
                                         absl::string_view what) {
  return ReadUpTo(path, max_bytes, what, /*regular_only=*/false);
}

absl::StatusOr<std::string> ReadRegularFileUpTo(const std::string& path, uint64_t max_bytes,
                                                absl::string_view what) {
  return ReadUpTo(path, max_bytes, what, /*regular_only=*/true);
}

absl::Status ReadLinesUpTo(const std::string& path, size_t max_line_bytes, absl::string_view what,
                           const std::function<absl::Status(absl::string_view line)>& each) {
  const std::string name = what.empty() ? path : absl::StrCat(what, " ", path);
  const int fd = OpenForReading(path);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(name, ": cannot read"));
  std::string line;  // At most max_line_bytes + 1 bytes.
  bool cut = false;  // The current line was too long and has been passed on.
  absl::Status status;
  const std::unique_ptr<char[]> buffer(new char[kReadChunkBytes]);
  while (status.ok()) {
    const ssize_t n = read(fd, buffer.get(), kReadChunkBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = absl::ErrnoToStatus(errno, absl::StrCat(name, ": cannot read"));
      break;
    }
    if (n == 0) {
      if (!cut && !line.empty()) status = each(line);  // A last line without '\n'.
      break;
    }
    const char* next = buffer.get();
    const char* const end = buffer.get() + n;
    while (next < end && status.ok()) {
      const char* newline = static_cast<const char*>(memchr(next, '\n', end - next));
      const char* const piece_end = newline != nullptr ? newline : end;
      if (!cut) {
        const size_t room = max_line_bytes + 1 - line.size();
        line.append(next, std::min(static_cast<size_t>(piece_end - next), room));
        if (line.size() > max_line_bytes) {
          status = each(line);
          cut = true;
          line.clear();
        }
      }
      next = piece_end;
      if (newline != nullptr) {
        ++next;
        if (!cut && status.ok()) status = each(line);
        line.clear();
        cut = false;
      }
    }
  }
  close(fd);
  return status;
}

}  // namespace memload
