// The agent's audit trail: one line for every call that changes what the agent does
// (StartPlan, ResizePlan, StopPlan, RenewLeases) once its status is known, and one for every
// call refused for want of a valid token. Who (token name, client certificate subject),
// what (method), which plans, from where, and how it ended:
//
//   audit: StartPlan plan=drill-1 token=token-1a2b cert="CN=memloadctl" peer=ipv4:10.0.0.9:51234
//       -> OK                                                               (one line, cut here)
//   audit: StopPlan plan=- token=token-77c0 cert=- peer=- -> PERMISSION_DENIED (read-only token)
//
// A field that is not known is "-"; a value with characters other than [A-Za-z0-9._:/@-]
// is quoted and C-escaped, so a client-chosen plan id cannot forge a line. Tokens never
// appear: only their names (agent/access_policy.h).
//
// AuditInterceptorFactory writes the lines for calls that reached the service; the token
// check (agent/server_security.h) writes those it refused, which never get that far,
// through a RefusedCallAudit (below): anyone who reaches the port can provoke a refusal,
// so those lines are rate-limited. Calls that were let in are always logged one by one.
//
// Thread-safety: FormatAuditLine is a pure function; the factory and its interceptors may
// be used from any thread; `log` is called from gRPC's threads and must be thread-safe.
#ifndef MEMLOAD_AGENT_AUDIT_LOG_H_
#define MEMLOAD_AGENT_AUDIT_LOG_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/access_policy.h"
#include "core/clock.h"
#include "core/sync/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"

namespace memload {
namespace agent {

// Receives one audit line (no trailing newline).
using AuditLog = std::function<void(const std::string& line)>;

struct AuditRecord {
  std::string method;  // "/memload.v1.Agent/StartPlan"; printed without the service.
  std::vector<std::string> plan_ids;
  std::string token_name;
  std::string cert_subject;
  std::string peer;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string detail;  // Why a call was refused; "" otherwise.
};

std::string FormatAuditLine(const AuditRecord& record);

class AuditInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `policy` names the callers' tokens; null when the agent has no token file.
  AuditInterceptorFactory(std::shared_ptr<const AccessPolicy> policy, AuditLog log);
  // An interceptor for mutating methods; nullptr (none) for the others.
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  const std::shared_ptr<const AccessPolicy> policy_;
  const AuditLog log_;
};

// The audit lines of refused calls (UNAUTHENTICATED, PERMISSION_DENIED), at most
// kLinesPerSecond a second for each (method, outcome): the first ones of a second are
// written one by one, the rest only counted, and when that second is over one line says
// how many were not written:
//
//   audit: StartPlan -> UNAUTHENTICATED (no token): 19,990 more in the last 1s
//       (not logged one by one)                                             (one line, cut here)
//
// Without it 20,000 refused calls wrote 20,000 lines (2 MB) in seconds: anyone who reaches
// the port could push the real audit trail out of a container log's rotation, or into
// journald's rate limit, which then drops the agent's own lines too.
//
// A second is a window that opens at a key's first refusal after the last one closed. Its
// summary is written by a thread of this object as soon as the window is over (so it comes
// out even if no further call arrives), by a later refusal of any key if that runs first,
// and by Close() (the server's shutdown; the destructor too) for windows still open: a
// count is never left only in memory.
//
// Keys are bounded: a method the agent serves that needs a token (memload.v1.Agent's, the
// two reflection services') is its own key; any other name (the client chose it) shares
// one key, "(other methods)". At most (8 + 2 + 1) methods times 3 outcomes (no token,
// invalid token, read-only token), and never more than kMaxKeys.
//
// Thread-safety: Log() may be called from any thread. Lines are written with this
// object's mutex held (so a key's summary precedes its next second's lines); `log` must
// not call back into it.
class RefusedCallAudit {
 public:
  // 10 lines a second per key: enough to see who is knocking (peer, certificate, token
  // name) and a misconfigured client's first calls in full, while a flood of one kind costs
  // 11 lines a second (1 KB), and of every kind at once at most 65 keys x 11 (the worst
  // case, far under journald's default of 10,000 lines in 30 s).
  static constexpr int kLinesPerSecond = 10;
  // A backstop over the bound above (a service or outcome added later): past it, every new
  // kind shares one more key, "(refusals past the cap of kinds)".
  static constexpr size_t kMaxKeys = 64;

  // `log` receives every line; `clock` must outlive Close() and every Log().
  explicit RefusedCallAudit(AuditLog log, Clock* clock = Clock::Real());
  // Close().
  ~RefusedCallAudit();
  RefusedCallAudit(const RefusedCallAudit&) = delete;
  RefusedCallAudit& operator=(const RefusedCallAudit&) = delete;

  // One refused call: its line is written now (FormatAuditLine), or counted for the
  // summary of its key's window.
  void Log(const AuditRecord& record) ABSL_LOCKS_EXCLUDED(mutex_);

  // Stops the thread, then writes the summary of every window with a count, open or not.
  // For when no more calls can come (the server has shut down): a Log() after it still
  // limits, but its count waits for the next Log() or Close(). Idempotent.
  void Close() ABSL_LOCKS_EXCLUDED(mutex_);

  // How many (method, outcome) keys are known now; for tests of the bound.
  size_t keys() ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  // (method as printed, status code, detail).
  using Key = std::tuple<std::string, int, std::string>;
  struct Window {
    absl::Time start;
    int logged = 0;
    int64_t suppressed = 0;
  };

  // Writes the summary of every window that is over at `now` (every window if `all`).
  void FlushEnded(absl::Time now, bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void WriteSummary(const Key& key, Window& window) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Run() ABSL_LOCKS_EXCLUDED(mutex_);

  const AuditLog log_;
  Clock* const clock_;
  Mutex mutex_;
  std::condition_variable wake_;  // A first suppression (a new deadline) or stopping_.
  std::map<Key, Window> windows_ ABSL_GUARDED_BY(mutex_);
  bool rearm_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;  // Run(); started last, joined by the first Close().
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_AUDIT_LOG_H_
