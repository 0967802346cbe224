// ClientSecurityOptions without certificates: token files, MEMLOAD_TOKEN and flag
// combinations. TLS against a running agent: tests/agent_security_test.cc.
#include "controller/client_security.h"

#include "controller/grpc_agent_client.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"

namespace memload {
namespace controller {
namespace {

using ::memload::testing::WriteTestFile;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClientSecurityTest, TokenFileHoldsOneToken) {
  EXPECT_THAT(ParseClientToken("# ops token\n  s3cret-0123456789  \n\n"), IsOk());
  EXPECT_EQ(*ParseClientToken("s3cret-0123456789\n"), "s3cret-0123456789");
  EXPECT_THAT(ParseClientToken("\n# none\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no token")));
  EXPECT_THAT(ParseClientToken("one-0123456789\ntwo-0123456789\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("want one token")));
  EXPECT_THAT(ParseClientToken("s3cret-0123456789:read-only\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("agent's token file"), Not(HasSubstr("s3cret")))));
  EXPECT_THAT(ParseClientToken("two words\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("visible ASCII")));
}

TEST(ClientSecurityTest, TokenFromFileWinsOverEnvironment) {
  ClientSecurityOptions security;
  security.token = "from-the-environment";
  security.token_file = WriteTestFile("token", "from-the-file\n");
  GrpcClientOptions options;
  ASSERT_THAT(ApplyClientSecurity(security, &options), IsOk());
  EXPECT_EQ(options.bearer_token, "from-the-file");

  security.token_file.clear();
  security.token = " from-the-environment\n";
  options = GrpcClientOptions();
  ASSERT_THAT(ApplyClientSecurity(security, &options), IsOk());
  EXPECT_EQ(options.bearer_token, "from-the-environment");

  security.token = "bad token";
  EXPECT_THAT(ApplyClientSecurity(security, &options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("MEMLOAD_TOKEN"), Not(HasSubstr("bad token")))));
}

TEST(ClientSecurityTest, NoFlagsMeansPlaintextWithoutToken) {
  GrpcClientOptions options;
  ASSERT_THAT(ApplyClientSecurity(ClientSecurityOptions(), &options), IsOk());
  EXPECT_EQ(options.bearer_token, "");
}

TEST(ClientSecurityTest, BadFilesAndCombinations) {
  GrpcClientOptions options;
  ClientSecurityOptions security;
  security.token_file = "/nonexistent/token";
  EXPECT_THAT(ApplyClientSecurity(security, &options),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("--token-file"), HasSubstr("/nonexistent/token"))));
  security.token_file = WriteTestFile("empty-token", "");
  EXPECT_THAT(ApplyClientSecurity(security, &options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no token")));

  security = ClientSecurityOptions();
  security.tls_cert_file = "client.crt";
  EXPECT_THAT(ApplyClientSecurity(security, &options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("go together")));
  security.tls_key_file = "client.key";
  EXPECT_THAT(ApplyClientSecurity(security, &options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("need --tls-ca")));
  security = ClientSecurityOptions();
  security.tls_server_name = "agent.example";
  EXPECT_THAT(ApplyClientSecurity(security, &options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("need --tls-ca")));
  security = ClientSecurityOptions();
  security.tls_ca_file = "/nonexistent/ca.crt";
  EXPECT_THAT(ApplyClientSecurity(security, &options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/ca.crt")));
}

}  // namespace
}  // namespace controller
}  // namespace memload
