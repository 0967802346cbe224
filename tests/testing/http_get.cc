#include "tests/testing/http_get.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace memload {
namespace testing {
namespace {

// Waits until `fd` is ready for `events`, at most until `deadline`.
absl::Status WaitFor(int fd, short events, absl::Time deadline) {
  while (true) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return absl::DeadlineExceededError("HTTP request timed out");
    pollfd one{fd, events, 0};
    const int ready = poll(&one, 1, static_cast<int>(ms));
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) return absl::UnavailableError(strerror(errno));
  }
}

absl::StatusOr<HttpResponse> Parse(const std::string& raw) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("no end of headers in: ", raw.substr(0, 200)));
  }
  std::vector<std::string> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
  HttpResponse response;
  std::vector<std::string> status = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status.size() < 2 || !absl::StartsWith(status[0], "HTTP/") ||
      !absl::SimpleAtoi(status[1], &response.status)) {
    return absl::InvalidArgumentError(absl::StrCat("bad status line: ", lines[0]));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  response.body = raw.substr(end + 4);
  return response;
}

}  // namespace

absl::StatusOr<HttpResponse> HttpGet(const std::string& address, const std::string& target,
                                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("want HOST:PORT, got ", address));
  }
  const std::string host(absl::StripSuffix(absl::StripPrefix(address.substr(0, colon), "["), "]"));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), address.substr(colon + 1).c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", address));
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int connected = fd < 0 ? -1 : connect(fd, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  if (fd < 0) return absl::UnavailableError(strerror(errno));
  auto fail = [fd](absl::Status status) {
    close(fd);
    return status;
  };
  if (connected != 0 && errno != EINPROGRESS) {
    return fail(absl::UnavailableError(absl::StrCat("connect ", address, ": ", strerror(errno))));
  }
  if (absl::Status ready = WaitFor(fd, POLLOUT, deadline); !ready.ok()) return fail(ready);
  int error = 0;
  socklen_t length = sizeof(error);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) {
    return fail(absl::UnavailableError(absl::StrCat("connect ", address, ": ", strerror(error))));
  }
  const std::string request =
      absl::StrCat("GET ", target, " HTTP/1.0\r\nHost: ", address, "\r\nAccept: */*\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    if (absl::Status ready = WaitFor(fd, POLLOUT, deadline); !ready.ok()) return fail(ready);
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return fail(absl::UnavailableError(absl::StrCat("send: ", strerror(errno))));
    }
    if (n > 0) sent += n;
  }
  std::string raw;
  char buffer[16384];
  while (true) {
    if (absl::Status ready = WaitFor(fd, POLLIN, deadline); !ready.ok()) return fail(ready);
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail(absl::UnavailableError(absl::StrCat("recv: ", strerror(errno))));
    }
    raw.append(buffer, n);
  }
  close(fd);
  return Parse(raw);
}

std::string UrlEncode(absl::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

}  // namespace testing
}  // namespace memload
