// ServerSecurity without certificates: the listen policy, flag combinations and bad files.
// TLS and tokens against a running agent: tests/agent_security_test.cc.
#include "agent/server_security.h"

#include <cstdlib>
#include <fstream>

#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string WriteTempFile(const std::string& name, const std::string& text) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

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
      WriteTempFile("tokens", "0123456789abcdef0123\nfedcba9876543210fedc:read-only\n");
  absl::StatusOr<ServerSecurity> security = ServerSecurity::Load(options, "0.0.0.0:7070");
  ASSERT_THAT(security, IsOk());
  EXPECT_EQ(security->summary(), "tls=off tokens=2 (1 read-only)");
  EXPECT_THAT(security->warning(), HasSubstr("tokens travel unencrypted"));
}

TEST(ServerSecurityTest, FlagsThatDoNotGoTogether) {
  ServerSecurityOptions options;
  options.tls_cert_file = "/etc/memload/tls.crt";
  EXPECT_THAT(ServerSecurity::Load(options, "127.0.0.1:0"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("go together")));
  options = ServerSecurityOptions();
  options.tls_client_ca_file = "/etc/memload/ca.crt";
  EXPECT_THAT(ServerSecurity::Load(options, "127.0.0.1:0"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-client-ca needs")));
}

TEST(ServerSecurityTest, BadFilesAreClearErrors) {
  ServerSecurityOptions options;
  options.auth_token_file = "/nonexistent/tokens";
  EXPECT_THAT(ServerSecurity::Load(options, "127.0.0.1:0"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/tokens")));
  options.auth_token_file = WriteTempFile("empty-tokens", "# nothing yet\n");
  EXPECT_THAT(ServerSecurity::Load(options, "127.0.0.1:0"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no token")));
  options = ServerSecurityOptions();
  options.tls_cert_file = "/nonexistent/tls.crt";
  options.tls_key_file = "/nonexistent/tls.key";
  EXPECT_THAT(ServerSecurity::Load(options, "127.0.0.1:0"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/tls.crt")));
  options.tls_cert_file = WriteTempFile("not-a-cert.pem", "hello\n");
  EXPECT_THAT(ServerSecurity::Load(options, "127.0.0.1:0"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no PEM certificate")));
}

}  // namespace
}  // namespace agent
}  // namespace memload
