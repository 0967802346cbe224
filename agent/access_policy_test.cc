#include "agent/access_policy.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFull[] = "full-access-token-0123456789abcdef";
constexpr char kReader[] = "read-only-token-0123456789abcdef";

std::string Bearer(const std::string& token) { return "Bearer " + token; }

AccessPolicy Policy() {
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(
      absl::StrCat("# memload tokens\n\n", kFull, "\n  ", kReader, ":read-only  \n# the end\n"));
  EXPECT_THAT(policy, IsOk());
  return *std::move(policy);
}

TEST(AccessPolicyTest, ParsesTokensCommentsAndReadOnlyMarkers) {
  AccessPolicy policy = Policy();
  EXPECT_EQ(policy.tokens(), 2);
  EXPECT_EQ(policy.read_only_tokens(), 1);
}

TEST(AccessPolicyTest, NamesATokenByItsDigestNeverByItself) {
  AccessPolicy policy = Policy();
  // printf %s full-access-token-0123456789abcdef | sha256sum | cut -c1-4
  const std::string name = policy.NameOf(Bearer(kFull));
  EXPECT_THAT(name, testing::MatchesRegex("token-[0-9a-f]{4}"));
  EXPECT_NE(name, policy.NameOf(Bearer(kReader)));
  EXPECT_EQ(policy.NameOf(Bearer("not-a-known-token-at-all")), "");
  EXPECT_EQ(policy.NameOf(std::nullopt), "");
}

TEST(AccessPolicyTest, FullTokenMayCallEverything) {
  AccessPolicy policy = Policy();
  for (const char* method : {"/memload.v1.Agent/StartPlan", "/memload.v1.Agent/ResizePlan",
                             "/memload.v1.Agent/StopPlan", "/memload.v1.Agent/RenewLeases",
                             "/memload.v1.Agent/GetUsage", "/memload.v1.Agent/WatchUsage",
                             "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}) {
    absl::StatusOr<Caller> caller = policy.Authorize(method, Bearer(kFull));
    ASSERT_THAT(caller, IsOk()) << method;
    EXPECT_FALSE(caller->read_only);
    EXPECT_EQ(caller->token_name, policy.NameOf(Bearer(kFull)));
  }
}

TEST(AccessPolicyTest, ReadOnlyTokenMayOnlyRead) {
  AccessPolicy policy = Policy();
  for (const char* method : {"/memload.v1.Agent/GetUsage", "/memload.v1.Agent/WatchUsage",
                             "/memload.v1.Agent/ListPlans", "/memload.v1.Agent/GetNodeInfo",
                             "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}) {
    EXPECT_THAT(policy.Authorize(method, Bearer(kReader)), IsOk()) << method;
  }
  for (const char* method : {"/memload.v1.Agent/StartPlan", "/memload.v1.Agent/ResizePlan",
                             "/memload.v1.Agent/StopPlan", "/memload.v1.Agent/RenewLeases",
                             "/memload.v1.Agent/SomethingNew", "/other.Service/Method"}) {
    EXPECT_THAT(policy.Authorize(method, Bearer(kReader)),
                StatusIs(absl::StatusCode::kPermissionDenied,
                         AllOf(HasSubstr("read-only"), HasSubstr(method), Not(HasSubstr(kReader)))))
        << method;
  }
}

TEST(AccessPolicyTest, MissingOrWrongTokenIsUnauthenticated) {
  AccessPolicy policy = Policy();
  const std::string method = "/memload.v1.Agent/GetUsage";
  EXPECT_THAT(policy.Authorize(method, std::nullopt),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("requires a bearer token")));
  EXPECT_THAT(policy.Authorize(method, std::string("Basic dXNlcjpwYXNz")),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("requires a bearer token")));
  EXPECT_THAT(policy.Authorize(method, std::string("Bearer ")),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("requires a bearer token")));
  const std::string wrong = "wrong-token-0123456789abcdef";
  EXPECT_THAT(policy.Authorize(method, Bearer(wrong)),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("not valid"), Not(HasSubstr(wrong)))));
  // A prefix or an extension of a real token is just as wrong.
  EXPECT_THAT(policy.Authorize(method, Bearer(std::string(kFull).substr(0, 20))),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not valid")));
  EXPECT_THAT(policy.Authorize(method, Bearer(std::string(kFull) + "x")),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not valid")));
  EXPECT_THAT(policy.Authorize("/memload.v1.Agent/StartPlan", Bearer(wrong)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not valid")));
}

TEST(AccessPolicyTest, SchemeIsCaseInsensitive) {
  AccessPolicy policy = Policy();
  EXPECT_THAT(policy.Authorize("/memload.v1.Agent/StartPlan", "bearer " + std::string(kFull)),
              IsOk());
  EXPECT_THAT(policy.Authorize("/memload.v1.Agent/StartPlan", "BEARER  " + std::string(kFull)),
              IsOk());
}

TEST(AccessPolicyTest, HealthNeedsNoToken) {
  AccessPolicy policy = Policy();
  EXPECT_THAT(policy.Authorize("/grpc.health.v1.Health/Check", std::nullopt), IsOk());
  EXPECT_THAT(policy.Authorize("/grpc.health.v1.Health/Watch", std::string("Bearer junk")), IsOk());
}

TEST(AccessPolicyTest, MethodClasses) {
  EXPECT_TRUE(IsMutatingMethod("/memload.v1.Agent/StartPlan"));
  EXPECT_TRUE(IsMutatingMethod("/memload.v1.Agent/RenewLeases"));
  EXPECT_FALSE(IsMutatingMethod("/memload.v1.Agent/GetUsage"));
  EXPECT_FALSE(IsMutatingMethod("/grpc.health.v1.Health/Check"));
  EXPECT_TRUE(IsReadOnlyMethod("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
  EXPECT_FALSE(IsReadOnlyMethod("/memload.v1.Agent/GetUsageX"));
  EXPECT_TRUE(IsHealthMethod("/grpc.health.v1.Health/Check"));
}

TEST(AccessPolicyTest, RefusesBadFilesNamingTheLineNotTheToken) {
  EXPECT_THAT(AccessPolicy::Parse(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no token")));
  EXPECT_THAT(AccessPolicy::Parse("# only a comment\n\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no token")));
  EXPECT_THAT(AccessPolicy::Parse("# tokens\nshort-secret\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 2"), HasSubstr("at least 16"),
                             Not(HasSubstr("short-secret")))));
  EXPECT_THAT(AccessPolicy::Parse("token with spaces in it 0123456789\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("visible ASCII")));
  EXPECT_THAT(AccessPolicy::Parse("0123456789abcdef0123:readonly\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 1"), HasSubstr(":read-only"))));
  EXPECT_THAT(AccessPolicy::Parse(std::string(kFull) + "\n" + kFull + ":read-only\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 2 repeats"), Not(HasSubstr(kFull)))));
  EXPECT_THAT(AccessPolicy::ReadTokenFile("/nonexistent/tokens"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/tokens")));
}

TEST(AccessPolicyTest, NamesStayUniqueWhenPrefixesCollide) {
  // Enough tokens that some share their first four hex digits (65,536 possibilities).
  std::string text;
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&text, "token-number-", 1000000 + i, "\n");
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(text);
  ASSERT_THAT(policy, IsOk());
  std::set<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    names.insert(policy->NameOf(absl::StrCat("Bearer token-number-", 1000000 + i)));
  }
  EXPECT_EQ(names.size(), 1000u);
}

}  // namespace
}  // namespace agent
}  // namespace memload
