#include "core/bounded_read.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/size.h"

namespace memload {

absl::StatusOr<std::string> ReadFileUpTo(const std::string& path, uint64_t max_bytes,
                                         absl::string_view what) {
  const std::string name = what.empty() ? path : absl::StrCat(what, " ", path);
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(name, ": cannot read"));
  std::string contents;
  char buffer[64 * 1024];
  while (true) {
    // One byte past the limit is enough to know the file is too large.
    const uint64_t left = max_bytes - contents.size();
    const size_t want = left >= sizeof(buffer) ? sizeof(buffer) : static_cast<size_t>(left) + 1;
    const ssize_t n = read(fd, buffer, want);
    if (n > 0) {
      contents.append(buffer, static_cast<size_t>(n));
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

}  // namespace memload
