// A tiny blocking HTTP/1.0 GET client for tests on loopback: the agent's /metrics and
// Prometheus's HTTP API. HTTP/1.0 keeps it small: the server closes the connection after
// the body, so there is no chunked encoding to undo.
//
//   absl::StatusOr<HttpResponse> response =
//       HttpGet("127.0.0.1:9470", "/metrics", absl::Seconds(5));
//   if (response.ok() && response->status == 200) ... response->body ...
//
// Thread-safety: thread-safe (no shared state).
#ifndef MEMLOAD_TESTS_TESTING_HTTP_GET_H_
#define MEMLOAD_TESTS_TESTING_HTTP_GET_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memload {
namespace testing {

struct HttpResponse {
  int status = 0;                              // 200, 404, ...
  std::map<std::string, std::string> headers;  // Names in lower case.
  std::string body;
};

// GETs `target` ("/api/v1/query?query=...") from `address` ("HOST:PORT", "[::1]:PORT").
// The whole exchange is bounded by `timeout` (DeadlineExceeded); Unavailable when the
// connection fails; InvalidArgument for a malformed answer.
absl::StatusOr<HttpResponse> HttpGet(const std::string& address, const std::string& target,
                                     absl::Duration timeout);

// Percent-encodes a query parameter value (everything but A-Z a-z 0-9 - _ . ~).
std::string UrlEncode(absl::string_view value);

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_HTTP_GET_H_
