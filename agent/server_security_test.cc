// ServerSecurity without certificates: the listen policy, flag combinations and bad files.
// TLS and tokens against a running agent: tests/agent_security_test.cc.
#include "agent/server_security.h"

#include <functional>
#include <string>

#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"

namespace memload {
namespace agent {
namespace {

using ::memload::testing::WriteTestFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ServerSecurityTest, LoopbackAddresses) {
  for (const char* address : {"127.0.0.1:7070", "127.1.2.3:0", "localhost:7070", "[::1]:7070",
                              "[::ffff:127.0.0.1]:7070", "unix:/run/memload.sock"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
  for (const char* address :
       {"0.0.0.0:7070", "[::]:7070", ":7070", "10.0.0.5:7070", "[2001:db8::1]:7070",
        "node-1.example:7070", "128.0.0.1:7070", "[::1:7070", "7070"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
}

TEST(ServerSecurityTest, PlaintextWithoutTokensIsRefusedOffLoopback) {
  ServerSecurityOptions options;
  EXPECT_THAT(ServerSecurity::Load(options, "0.0.0.0:7070"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("refusing to serve 0.0.0.0:7070"), HasSubstr("in plaintext"),
                             HasSubstr("--auth-token-file"), HasSubstr("--insecure"))));
  absl::StatusOr<ServerSecurity> loopback = ServerSecurity::Load(options, "127.0.0.1:0");
  ASSERT_THAT(loopback, IsOk());
  EXPECT_EQ(loopback->summary(), "tls=off tokens=none");
  EXPECT_EQ(loopback->warning(), "");
}

TEST(ServerSecurityTest, InsecureAcceptsTheRiskAndSaysSo) {
  ServerSecurityOptions options;
  options.insecure = true;
  absl::StatusOr<ServerSecurity> security = ServerSecurity::Load(options, "0.0.0.0:7070");
  ASSERT_THAT(security, IsOk());
  EXPECT_THAT(security->warning(), HasSubstr("anyone who can reach 0.0.0.0:7070"));
}

TEST(ServerSecurityTest, TokensMayGoOverPlaintextWithAWarning) {
  ServerSecurityOptions options;
  options.auth_token_file =
      WriteTestFile("tokens", "0123456789abcdef0123\nfedcba9876543210fedc:read-only\n");
  absl::StatusOr<ServerSecurity> security = ServerSecurity::Load(options, "0.0.0.0:7070");
  ASSERT_THAT(security, IsOk());
  EXPECT_EQ(security->summary(), "tls=off tokens=2 (1 read-only)");
  EXPECT_THAT(security->warning(), HasSubstr("tokens travel unencrypted"));
}

// Flags that do not go together, and files that are missing or hold no token or certificate.
TEST(ServerSecurityTest, RefusedOptionsAreClearErrors) {
  struct Case {
    const char* name;
    std::function<void(ServerSecurityOptions&)> set;
    absl::StatusCode code;
    const char* message;
  };
  const std::string empty_tokens = WriteTestFile("empty-tokens", "# nothing yet\n");
  const std::string not_a_cert = WriteTestFile("not-a-cert.pem", "hello\n");
  const Case cases[] = {
      {"a certificate without its key",
       [](ServerSecurityOptions& o) { o.tls_cert_file = "/etc/memload/tls.crt"; },
       absl::StatusCode::kInvalidArgument, "go together"},
      {"a client CA without TLS",
       [](ServerSecurityOptions& o) { o.tls_client_ca_file = "/etc/memload/ca.crt"; },
       absl::StatusCode::kInvalidArgument, "--tls-client-ca needs"},
      {"a missing token file",
       [](ServerSecurityOptions& o) { o.auth_token_file = "/nonexistent/tokens"; },
       absl::StatusCode::kNotFound, "/nonexistent/tokens"},
      {"a token file without tokens",
       [&](ServerSecurityOptions& o) { o.auth_token_file = empty_tokens; },
       absl::StatusCode::kInvalidArgument, "no token"},
      {"a missing certificate",
       [](ServerSecurityOptions& o) {
         o.tls_cert_file = "/nonexistent/tls.crt";
         o.tls_key_file = "/nonexistent/tls.key";
       },
       absl::StatusCode::kNotFound, "/nonexistent/tls.crt"},
      {"a certificate file without a certificate",
       [&](ServerSecurityOptions& o) {
         o.tls_cert_file = not_a_cert;
         o.tls_key_file = "/nonexistent/tls.key";
       },
       absl::StatusCode::kInvalidArgument, "no PEM certificate"},
  };
  for (const Case& c : cases) {
    ServerSecurityOptions options;
    c.set(options);
    EXPECT_THAT(ServerSecurity::Load(options, "127.0.0.1:0"),
                StatusIs(c.code, HasSubstr(c.message)))
        << c.name;
  }
}

}  // namespace
}  // namespace agent
}  // namespace memload
