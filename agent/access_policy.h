// AccessPolicy: who may call what on memload-agent, from its bearer-token file.
//
// Token file (--auth-token-file): one token per line, "TOKEN" (full access) or
// "TOKEN:read-only"; blank lines and lines starting with '#' are ignored. A token is 16 to
// 4096 visible ASCII characters without ':' (make one with `openssl rand -hex 32`). Each
// token gets a name for logs, "token-" + the first 4 hex digits of its SHA-256
// (`printf %s TOKEN | sha256sum | cut -c1-4`), longer when two would collide; the token
// itself never appears in a log line or an error message.
//
// Rules (Authorize):
//   grpc.health.v1.Health/*                     anyone, no token (load balancers, probes)
//   memload.v1.Agent/{GetUsage,WatchUsage,ListPlans,GetNodeInfo}, server reflection
//                                               any valid token
//   anything else (StartPlan, ResizePlan, StopPlan, RenewLeases, future methods)
//                                               a full-access token
// A missing or unknown token is UNAUTHENTICATED; a read-only token calling anything else
// is PERMISSION_DENIED. Tokens are compared as SHA-256 digests with CRYPTO_memcmp against
// every entry, so neither a token's length nor its matching prefix shows in the timing.
//
//   MEMLOAD_ASSIGN_OR_RETURN(AccessPolicy policy, AccessPolicy::ReadTokenFile(path));
//   absl::StatusOr<Caller> caller =
//       policy.Authorize("/memload.v1.Agent/StartPlan", "Bearer 3f9c...");
//
// Thread-safety: immutable after construction; every method is const and thread-safe.
#ifndef MEMLOAD_AGENT_ACCESS_POLICY_H_
#define MEMLOAD_AGENT_ACCESS_POLICY_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {
namespace agent {

// "/grpc.health.v1.Health/Check" and its siblings.
bool IsHealthMethod(absl::string_view method);
// The methods a read-only token may call: usage, watch, list, node info, reflection.
bool IsReadOnlyMethod(absl::string_view method);
// Calls that change what the agent does (every memload.v1.Agent method that is not
// read-only): the ones the audit log records.
bool IsMutatingMethod(absl::string_view method);

// Who a call came from, as far as the token says.
struct Caller {
  std::string token_name;  // "" when the call needed no token (health).
  bool read_only = false;
};

class AccessPolicy {
 public:
  // Parses a token file's text. InvalidArgument naming the line for a malformed token, a
  // token given twice, or a file without any token.
  static absl::StatusOr<AccessPolicy> Parse(absl::string_view text);
  // Parse() of the file; NotFound when it cannot be read. Messages name the file.
  static absl::StatusOr<AccessPolicy> ReadTokenFile(const std::string& path);

  // May a call to `method` ("/package.Service/Method") that carried `authorization` (the
  // "authorization" metadata value, "Bearer TOKEN"; nullopt when absent) proceed?
  // UNAUTHENTICATED or PERMISSION_DENIED as described above; messages never contain the
  // token.
  absl::StatusOr<Caller> Authorize(absl::string_view method,
                                   std::optional<absl::string_view> authorization) const;
  // The name of the token in `authorization`; "" when there is none or it is unknown.
  std::string NameOf(std::optional<absl::string_view> authorization) const;

  int tokens() const { return static_cast<int>(entries_.size()); }
  int read_only_tokens() const;

 private:
  struct Entry {
    std::array<uint8_t, 32> digest;  // SHA-256 of the token.
    std::string name;
    bool read_only = false;
  };

  AccessPolicy() = default;
  // The entry whose token `authorization` carries, or nullptr.
  const Entry* Find(std::optional<absl::string_view> authorization) const;

  std::vector<Entry> entries_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_ACCESS_POLICY_H_
