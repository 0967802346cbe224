// memloadctl's side of memload-agent's security: TLS toward the agents (--tls-ca), a
// client certificate for mutual TLS (--tls-cert, --tls-key), the name to expect in the
// agents' certificates (--tls-server-name) and the bearer token (--token-file or
// MEMLOAD_TOKEN). Every file is read and checked here, before anything is sent.
//
//   ClientSecurityOptions security;
//   security.tls_ca_file = "ca.crt";
//   security.token_file = "token";
//   GrpcClientOptions options;
//   MEMLOAD_RETURN_IF_ERROR(ApplyClientSecurity(security, &options));
//   AgentClientFactory factory = GrpcAgentClientFactory(options);
//
// Thread-safety: thread-safe free functions.
#ifndef MEMLOAD_CONTROLLER_CLIENT_SECURITY_H_
#define MEMLOAD_CONTROLLER_CLIENT_SECURITY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {
namespace controller {

struct GrpcClientOptions;  // controller/grpc_agent_client.h

struct ClientSecurityOptions {
  // PEM CA certificate(s) that signed the agents' certificates: talk TLS. "" = plaintext.
  std::string tls_ca_file;
  // This client's PEM certificate and unencrypted key, for agents with --tls-client-ca.
  // Both or neither; they need tls_ca_file.
  std::string tls_cert_file;
  std::string tls_key_file;
  // The name the agents' certificates must carry, instead of each target's host (agents
  // addressed by IP whose certificates name a DNS name; tests). Needs tls_ca_file.
  std::string tls_server_name;
  // A file holding the bearer token (wins over `token`), or the token itself (from the
  // MEMLOAD_TOKEN environment variable). "" = no token.
  std::string token_file;
  std::string token;
};

// Sets `options`' credentials, bearer token and target-name override. InvalidArgument
// for options that do not go together or a malformed token; the errors of
// core/security/tls_files.h for bad PEM files; NotFound for an unreadable token file. Messages
// name the flag or file, never the token.
absl::Status ApplyClientSecurity(const ClientSecurityOptions& security, GrpcClientOptions* options);

// The token in a token file's text: the one line that is neither blank nor a '#' comment,
// without surrounding whitespace. InvalidArgument for none, several, or a bad token.
absl::StatusOr<std::string> ParseClientToken(absl::string_view text);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_CLIENT_SECURITY_H_
