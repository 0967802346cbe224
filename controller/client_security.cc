#include "controller/client_security.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "controller/grpc_agent_client.h"
#include "core/bounded_read.h"
#include "core/security/tls_files.h"

namespace memload {
namespace controller {
namespace {

// Why `token` cannot be sent, or "" when it can: it must be a valid HTTP/2 header value.
// Says nothing of the token's content.
std::string TokenProblem(absl::string_view token) {
  if (token.empty()) return "the token is empty";
  if (absl::EndsWith(token, ":read-only")) {
    return "give the token alone; \":read-only\" belongs in the agent's token file";
  }
  for (char c : token) {
    if (c < 0x21 || c > 0x7e)
      return "a token is visible ASCII only (no spaces or control characters)";
  }
  return "";
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  // Bounded (issue 12.7): a 200 MB "token" is refused, never sent.
  absl::StatusOr<std::string> text = ReadFileUpTo(path, kMaxTokenFileBytes, "--token-file");
  if (!text.ok()) return text.status();
  absl::StatusOr<std::string> token = ParseClientToken(*text);
  if (!token.ok()) {
    return absl::Status(token.status().code(),
                        absl::StrCat("--token-file=", path, ": ", token.status().message()));
  }
  return token;
}

}  // namespace

absl::StatusOr<std::string> ParseClientToken(absl::string_view text) {
  std::vector<absl::string_view> tokens;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty() && line[0] != '#') tokens.push_back(line);
  }
  if (tokens.empty()) return absl::InvalidArgumentError("no token in it");
  if (tokens.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("want one token, found ", tokens.size(), " lines ('#' starts a comment)"));
  }
  if (const std::string problem = TokenProblem(tokens[0]); !problem.empty()) {
    return absl::InvalidArgumentError(problem);
  }
  return std::string(tokens[0]);
}

absl::Status ApplyClientSecurity(const ClientSecurityOptions& security,
                                 GrpcClientOptions* options) {
  if (security.tls_cert_file.empty() != security.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together: give both");
  }
  if (security.tls_ca_file.empty() &&
      (!security.tls_cert_file.empty() || !security.tls_server_name.empty())) {
    return absl::InvalidArgumentError(
        "--tls-cert, --tls-key and --tls-server-name need --tls-ca (the CA that signed the "
        "agents' certificates)");
  }
  if (!security.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> roots = ReadCaCertificates(security.tls_ca_file);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
    if (!security.tls_cert_file.empty()) {
      absl::StatusOr<KeyCertPair> pair =
          ReadKeyCertPair(security.tls_cert_file, security.tls_key_file);
      if (!pair.ok()) return pair.status();
      ssl.pem_cert_chain = std::move(pair->cert_chain_pem);
      ssl.pem_private_key = std::move(pair->private_key_pem);
    }
    options->credentials = grpc::SslCredentials(ssl);
    if (!security.tls_server_name.empty()) {
      options->channel_args.SetSslTargetNameOverride(security.tls_server_name);
    }
  }
  if (!security.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(security.token_file);
    if (!token.ok()) return token.status();
    options->bearer_token = *std::move(token);
  } else if (!security.token.empty()) {
    const absl::string_view token = absl::StripAsciiWhitespace(security.token);
    if (const std::string problem = TokenProblem(token); !problem.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("MEMLOAD_TOKEN: ", problem));
    }
    options->bearer_token = std::string(token);
  }
  return absl::OkStatus();
}

}  // namespace controller
}  // namespace memload
