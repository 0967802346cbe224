// ServerSecurity: how memload-agent's gRPC port is protected, from its flags: TLS
// (--tls-cert, --tls-key), mutual TLS (--tls-client-ca: clients must present a certificate
// signed by that CA), bearer tokens (--auth-token-file, see agent/access_policy.h), the
// audit log (agent/audit_log.h), and the refusal at start of a port that anyone could
// drive.
//
//   ServerSecurityOptions options;
//   options.tls_cert_file = "/etc/memload/tls.crt";
//   options.tls_key_file = "/etc/memload/tls.key";
//   options.auth_token_file = "/etc/memload/tokens";
//   MEMLOAD_ASSIGN_OR_RETURN(ServerSecurity security,
//                            ServerSecurity::Load(options, "0.0.0.0:7070"));
//   builder.AddListeningPort("0.0.0.0:7070", security.credentials(), &port);
//
// Tokens are checked in one place for every service, before any handler runs: gRPC's
// server auth-metadata processor, which sees each call's method and metadata and fails the
// call with UNAUTHENTICATED or PERMISSION_DENIED. It is installed through gRPC's C API
// because the C++ InsecureServerCredentials() refuses a processor, and tokens must work
// over plaintext too (on loopback, or behind a TLS-terminating proxy).
//
// Thread-safety: immutable after Load(); the credentials and the interceptor factories may
// be used from any thread.
#ifndef MEMLOAD_AGENT_SERVER_SECURITY_H_
#define MEMLOAD_AGENT_SERVER_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/access_policy.h"
#include "agent/audit_log.h"
#include "core/clock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/support/server_interceptor.h"

namespace memload {
namespace agent {

struct ServerSecurityOptions {
  // PEM certificate (chain) and unencrypted key: serve TLS. Both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM CA certificate(s): mutual TLS, every client must present a certificate they
  // signed. Needs the two above.
  std::string tls_client_ca_file;
  // Bearer tokens (agent/access_policy.h); "" = no token check.
  std::string auth_token_file;
  // Serve a non-loopback address even though clients are not authenticated (neither
  // tokens nor client certificates).
  bool insecure = false;
  // Receives the audit lines; empty = no audit log. Refused calls' lines are
  // rate-limited (RefusedCallAudit, agent/audit_log.h) on `audit_clock` (null: the real
  // clock; tests give a simulated one).
  AuditLog audit_log;
  Clock* audit_clock = nullptr;
};

// True for 127.0.0.0/8, ::1, "localhost" and unix: sockets; false for wildcard addresses
// (0.0.0.0, [::], ":7070"), other addresses and other host names.
bool IsLoopbackAddress(absl::string_view listen_address);

class ServerSecurity {
 public:
  // Reads and checks every file (see core/security/tls_files.h, AccessPolicy::ReadTokenFile), then
  // refuses with FailedPrecondition to serve a non-loopback `listen_address` without
  // tokens or client certificates unless `insecure`. InvalidArgument for flags that do not
  // go together.
  static absl::StatusOr<ServerSecurity> Load(const ServerSecurityOptions& options,
                                             absl::string_view listen_address);

  // Plaintext or TLS, with the token check when there are tokens. Each call returns the
  // same object.
  std::shared_ptr<grpc::ServerCredentials> credentials() const { return credentials_; }
  // The token check's audit of refused calls (agent/audit_log.h); null without tokens or
  // an audit log. Close() it once the server has shut down: it writes the counts still due.
  const std::shared_ptr<RefusedCallAudit>& refused_call_audit() const {
    return refused_call_audit_;
  }
  // Audits mutating calls (see agent/audit_log.h); give it to the server builder.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewAuditInterceptorFactory() const;

  // One line for the start log: "tls=mutual cert=\"CN=node-1\" expires=2027-11-25 tokens=2
  // (1 read-only)".
  const std::string& summary() const { return summary_; }
  // What an operator should know about this setup (plaintext tokens off loopback,
  // --insecure in use); "" when nothing.
  const std::string& warning() const { return warning_; }

 private:
  ServerSecurity() = default;

  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::shared_ptr<const AccessPolicy> policy_;  // Null without a token file.
  AuditLog audit_log_;
  std::shared_ptr<RefusedCallAudit> refused_call_audit_;  // Shared with the token check.
  std::string summary_;
  std::string warning_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_SERVER_SECURITY_H_
