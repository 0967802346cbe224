// The agent's audit trail: one line for every call that changes what the agent does
// (StartPlan, ResizePlan, StopPlan, RenewLeases) once its status is known, and one for every
// call refused for want of a valid token. Who (token name, client certificate subject),
// what (method), which plans, from where, and how it ended:
//
//   audit: StartPlan plan=drill-1 token=token-1a2b cert="CN=memloadctl" peer=ipv4:10.0.0.9:51234 ->
//   OK audit: StopPlan plan=- token=token-77c0 cert=- peer=- -> PERMISSION_DENIED (read-only token)
//
// A field that is not known is "-"; a value with characters other than [A-Za-z0-9._:/@-]
// is quoted and C-escaped, so a client-chosen plan id cannot forge a line. Tokens never
// appear: only their names (agent/access_policy.h).
//
// AuditInterceptorFactory writes the lines for calls that reached the service; the token
// check (agent/server_security.h) writes those it refused, which never get that far.
//
// Thread-safety: FormatAuditLine is a pure function; the factory and its interceptors may
// be used from any thread; `log` is called from gRPC's threads and must be thread-safe.
#ifndef MEMLOAD_AGENT_AUDIT_LOG_H_
#define MEMLOAD_AGENT_AUDIT_LOG_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/access_policy.h"
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

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_AUDIT_LOG_H_
