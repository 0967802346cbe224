#include "agent/server_security.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/security/tls_files.h"
#include "grpc/grpc.h"
#include "grpc/grpc_security.h"

namespace memload {
namespace agent {
namespace {

absl::string_view View(const grpc_slice& slice) {
  return absl::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
                           GRPC_SLICE_LENGTH(slice));
}

// The state of the auth-metadata processor; owned by the core credentials, which free it
// through its destroy hook.
struct TokenCheck {
  std::shared_ptr<const AccessPolicy> policy;
  std::shared_ptr<RefusedCallAudit> refused;  // Null without an audit log.
};

// gRPC's server auth-metadata processor: runs for every call, before any handler, on a
// gRPC thread. It never blocks, so it answers `done` at once.
void CheckToken(void* state, grpc_auth_context* context, const grpc_metadata* metadata,
                size_t count, grpc_process_auth_metadata_done_cb done, void* user_data) {
  const auto* check = static_cast<const TokenCheck*>(state);
  absl::string_view method;
  std::optional<absl::string_view> authorization;
  for (size_t i = 0; i < count; ++i) {
    const absl::string_view key = View(metadata[i].key);
    if (key == ":path") method = View(metadata[i].value);
    if (key == "authorization" && !authorization.has_value()) {
      authorization = View(metadata[i].value);
    }
  }
  const absl::StatusOr<Caller> caller = check->policy->Authorize(method, authorization);
  if (caller.ok()) {
    done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  if (check->refused != nullptr) {
    AuditRecord record;
    record.method = std::string(method);
    record.token_name = check->policy->NameOf(authorization);
    grpc_auth_property_iterator subjects =
        grpc_auth_context_find_properties_by_name(context, GRPC_X509_SUBJECT_PROPERTY_NAME);
    if (const grpc_auth_property* subject = grpc_auth_property_iterator_next(&subjects)) {
      record.cert_subject.assign(subject->value, subject->value_length);
    }
    record.code = static_cast<grpc::StatusCode>(caller.status().code());
    record.detail = caller.status().code() == absl::StatusCode::kPermissionDenied
                        ? "read-only token"
                    : authorization.has_value() ? "invalid token"
                                                : "no token";
    check->refused->Log(record);  // Rate-limited: anyone can provoke these lines.
  }
  // gRPC copies the message before `done` returns.
  const std::string message(caller.status().message());
  done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(caller.status().code()),
       message.c_str());
}

// grpc::ServerCredentials over core credentials built here, so that the token check can be
// installed on plaintext ports as well as TLS ones (see the header).
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  // TLS when `pair` is set (and mutual TLS when `client_ca` is not empty); plaintext
  // otherwise. `check` may be null: no token check.
  CoreServerCredentials(const std::optional<KeyCertPair>& pair, const std::string& client_ca,
                        std::unique_ptr<TokenCheck> check) {
    // After the base constructor, which initialises gRPC.
    if (pair.has_value()) {
      grpc_ssl_pem_key_cert_pair key_cert = {pair->private_key_pem.c_str(),
                                             pair->cert_chain_pem.c_str()};
      core_ = grpc_ssl_server_credentials_create_ex(
          client_ca.empty() ? nullptr : client_ca.c_str(), &key_cert, 1,
          client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY,
          nullptr);
    } else {
      core_ = grpc_insecure_server_credentials_create();
    }
    if (check != nullptr) {
      grpc_auth_metadata_processor processor;
      processor.process = CheckToken;
      processor.destroy = [](void* state) { delete static_cast<TokenCheck*>(state); };
      processor.state = check.release();
      grpc_server_credentials_set_auth_metadata_processor(core_, processor);
    }
  }
  ~CoreServerCredentials() override { grpc_server_credentials_release(core_); }

  // memload installs its own processor (above); another one is a programming error, and
  // gRPC's C++ processors would bypass the token check, so it is ignored.
  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {}

 private:
  int AddPortToServer(const std::string& address, grpc_server* server) override {
    return grpc_server_add_http2_port(server, address.c_str(), core_);
  }

  grpc_server_credentials* core_ = nullptr;
};

}  // namespace

bool IsLoopbackAddress(absl::string_view listen_address) {
  if (absl::StartsWith(listen_address, "unix:") ||
      absl::StartsWith(listen_address, "unix-abstract:")) {
    return true;
  }
  const size_t colon = listen_address.rfind(':');
  absl::string_view host = listen_address.substr(0, colon == absl::string_view::npos ? 0 : colon);
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]")) return false;
  }
  if (host == "localhost") return true;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::StatusOr<ServerSecurity> ServerSecurity::Load(const ServerSecurityOptions& options,
                                                    absl::string_view listen_address) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together: give both");
  }
  if (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)");
  }
  ServerSecurity security;
  security.audit_log_ = options.audit_log;

  std::optional<KeyCertPair> pair;
  std::string client_ca;
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<KeyCertPair> read = ReadKeyCertPair(options.tls_cert_file, options.tls_key_file);
    if (!read.ok()) return read.status();
    pair = *std::move(read);
  }
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> read = ReadCaCertificates(options.tls_client_ca_file);
    if (!read.ok()) return read.status();
    client_ca = *std::move(read);
  }
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<AccessPolicy> policy = AccessPolicy::ReadTokenFile(options.auth_token_file);
    if (!policy.ok()) return policy.status();
    security.policy_ = std::make_shared<const AccessPolicy>(*std::move(policy));
  }

  const bool tls = pair.has_value();
  const bool clients_authenticated = security.policy_ != nullptr || !client_ca.empty();
  const bool loopback = IsLoopbackAddress(listen_address);
  if (!loopback && !clients_authenticated && !options.insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve ", listen_address, " (not a loopback address) ",
        tls ? "" : "in plaintext ",
        "without authenticating clients: anyone who can reach it could start plans and "
        "exhaust this node's memory. Give --auth-token-file and/or --tls-client-ca, or "
        "--insecure to accept that risk (README: \"Securing a deployment\")"));
  }

  security.summary_ = absl::StrCat("tls=", !tls ? "off" : client_ca.empty() ? "on" : "mutual");
  if (tls) {
    absl::StrAppend(&security.summary_, " cert=\"", pair->subject, "\" expires=",
                    absl::FormatTime("%Y-%m-%d", pair->not_after, absl::UTCTimeZone()));
  }
  if (security.policy_ != nullptr) {
    absl::StrAppend(&security.summary_, " tokens=", security.policy_->tokens(), " (",
                    security.policy_->read_only_tokens(), " read-only)");
  } else {
    absl::StrAppend(&security.summary_, " tokens=none");
  }
  if (!loopback && !clients_authenticated) {
    security.warning_ = absl::StrCat("--insecure: anyone who can reach ", listen_address,
                                     " may start plans on this node");
  } else if (!loopback && !tls) {
    security.warning_ =
        absl::StrCat("tokens travel unencrypted to ", listen_address,
                     "; anyone on the path can read and reuse them (give --tls-cert/--tls-key)");
  }

  std::unique_ptr<TokenCheck> check;
  if (security.policy_ != nullptr) {
    check = std::make_unique<TokenCheck>();
    check->policy = security.policy_;
    if (options.audit_log) {
      security.refused_call_audit_ = std::make_shared<RefusedCallAudit>(
          options.audit_log, options.audit_clock != nullptr ? options.audit_clock : Clock::Real());
      check->refused = security.refused_call_audit_;
    }
  }
  security.credentials_ =
      std::make_shared<CoreServerCredentials>(pair, client_ca, std::move(check));
  return security;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ServerSecurity::NewAuditInterceptorFactory() const {
  return std::make_unique<AuditInterceptorFactory>(policy_, audit_log_);
}

}  // namespace agent
}  // namespace memload
