#include "controller/pods.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

constexpr uint64_t kMi = uint64_t{1} << 20;

// What `kubectl get pods -o json` prints, trimmed to the fields memloadctl reads plus a few
// it must ignore.
std::string PodJson(const std::string& name, const std::string& uid, const std::string& node,
                    const std::string& containers, const std::string& statuses) {
  return absl::StrCat(R"({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": ")",
                      name, R"(", "namespace": "shop", "uid": ")", uid, R"(",
                 "labels": {"app": "web"}},
    "spec": {"nodeName": ")",
                      node, R"(", "containers": [)", containers, R"(]},
    "status": {"phase": "Running", "containerStatuses": [)",
                      statuses, R"(]}})");
}

std::string Container(const std::string& name, const std::string& request,
                      const std::string& limit) {
  std::string resources;
  if (!request.empty())
    resources += absl::StrCat(R"("requests": {"cpu": "100m", "memory": ")", request, "\"}");
  if (!limit.empty()) {
    resources +=
        absl::StrCat(resources.empty() ? "" : ", ", R"("limits": {"memory": ")", limit, "\"}");
  }
  return absl::StrCat(R"({"name": ")", name, R"(", "image": "nginx", "resources": {)", resources,
                      "}}");
}

std::string Status(const std::string& name, const std::string& id) {
  return absl::StrCat(R"({"name": ")", name, R"(", "containerID": "containerd://)", id,
                      R"(", "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}}})");
}

TEST(ParseKubernetesQuantityTest, Units) {
  EXPECT_EQ(*ParseKubernetesQuantity("128Mi"), 128 * kMi);
  EXPECT_EQ(*ParseKubernetesQuantity("1Gi"), 1024 * kMi);
  EXPECT_EQ(*ParseKubernetesQuantity("1.5Gi"), 1536 * kMi);
  EXPECT_EQ(*ParseKubernetesQuantity("500M"), 500000000u);
  EXPECT_EQ(*ParseKubernetesQuantity("64k"), 64000u);
  EXPECT_EQ(*ParseKubernetesQuantity("4096"), 4096u);
  EXPECT_EQ(*ParseKubernetesQuantity("1e9"), 1000000000u);
  EXPECT_EQ(*ParseKubernetesQuantity("1500m"), 2u);  // 1.5 bytes, rounded up.
  for (const char* bad : {"", "-1Mi", "12Q", "Mi", "1 Gi", "1e999", "99999Ei"}) {
    EXPECT_THAT(ParseKubernetesQuantity(bad), StatusIs(absl::StatusCode::kInvalidArgument, _))
        << bad;
  }
}

TEST(ParsePodsTest, PodListAndSinglePod) {
  const std::string a = PodJson("web-1", "uid-aaaa1111", "node-1",
                                Container("app", "256Mi", "512Mi"), Status("app", "abc123"));
  const std::string b = PodJson("web-2", "uid-bbbb2222", "node-2", Container("app", "", "1Gi"),
                                Status("app", "def456"));
  absl::StatusOr<std::vector<Pod>> pods =
      ParsePods(absl::StrCat(R"({"apiVersion": "v1", "kind": "List", "items": [)", a, ",", b,
                             R"(], "metadata": {"resourceVersion": ""}})"),
                "pods.json");
  ASSERT_THAT(pods, IsOk());
  ASSERT_EQ(pods->size(), 2u);
  EXPECT_EQ((*pods)[0].DisplayName(), "shop/web-1");
  EXPECT_EQ((*pods)[0].uid, "uid-aaaa1111");
  EXPECT_EQ((*pods)[0].node_name, "node-1");
  EXPECT_EQ((*pods)[0].containers[0].memory_request_bytes, 256 * kMi);
  EXPECT_EQ((*pods)[0].containers[0].memory_limit_bytes, 512 * kMi);
  EXPECT_EQ((*pods)[0].containers[0].container_id, "containerd://abc123");
  EXPECT_TRUE((*pods)[0].containers[0].running);
  // Only a limit: the request defaults to it, as the API server does.
  EXPECT_EQ((*pods)[1].containers[0].memory_request_bytes, 1024 * kMi);

  absl::StatusOr<std::vector<Pod>> one = ParsePods(a, "-");
  ASSERT_THAT(one, IsOk());
  EXPECT_EQ(one->size(), 1u);
}

TEST(ParsePodsTest, Errors) {
  EXPECT_THAT(ParsePods("not json", "pods.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pods.json: not JSON")));
  EXPECT_THAT(ParsePods(R"({"items": [{"metadata": {"name": "x"}}]})", "f"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("f: items[0]")));
  EXPECT_THAT(ParsePods(R"({"kind": "Deployment", "metadata": {"name": "x", "uid": "u"}})", "f"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("want Pod")));
  EXPECT_THAT(ParsePods(PodJson("p", "u", "n", Container("app", "12Q", ""), ""), "f"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("requests.memory")));
}

TEST(ParsePodRelativeTargetTest, RequestAndLimit) {
  absl::StatusOr<std::optional<PodRelativeTarget>> t = ParsePodRelativeTarget("120%request");
  ASSERT_THAT(t, IsOk());
  ASSERT_TRUE(t->has_value());
  EXPECT_EQ((*t)->percent, 120);
  EXPECT_EQ((*t)->of, PodRelativeTarget::Of::kRequest);
  t = ParsePodRelativeTarget("90%limit");
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ((*t)->of, PodRelativeTarget::Of::kLimit);
  t = ParsePodRelativeTarget("80%");
  ASSERT_THAT(t, IsOk());
  EXPECT_FALSE(t->has_value());
  EXPECT_THAT(ParsePodRelativeTarget("0%request"), StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_THAT(ParsePodRelativeTarget("x%limit"), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

v1::PlanSpec BaseSpec() {
  v1::PlanSpec spec;
  spec.set_plan_id("hpa");
  v1::Phase* phase = spec.mutable_retained()->add_phases();
  phase->mutable_target()->set_bytes(1);
  phase->set_hold_forever(true);
  return spec;
}

TEST(PlanPodsTest, PercentOfRequestAndLimitPerPod) {
  std::vector<Pod> pods =
      *ParsePods(absl::StrCat(R"({"items": [)",
                              PodJson("web-1", "0a1b2c3d-0000", "node-1",
                                      Container("app", "200Mi", "1Gi"), Status("app", "abc123")),
                              ",",
                              PodJson("web-2", "1a1b2c3d-0000", "node-2",
                                      Container("app", "300Mi", "600Mi"), Status("app", "def456")),
                              "]}"),
                 "f");
  const std::map<std::string, std::string> agents = {{"node-1", "127.0.0.2:7070"},
                                                     {"node-2", "127.0.0.3:7070"}};
  std::vector<PodPlan> plans = PlanPods(pods, agents, BaseSpec(), "",
                                        PodRelativeTarget{120, PodRelativeTarget::Of::kRequest});
  ASSERT_EQ(plans.size(), 2u);
  ASSERT_THAT(plans[0].status, IsOk());
  EXPECT_EQ(plans[0].agent, "127.0.0.2:7070");
  EXPECT_EQ(plans[0].spec.retained().phases(0).target().bytes(), 240 * kMi);  // 120% of 200Mi
  EXPECT_EQ(plans[1].spec.retained().phases(0).target().bytes(), 360 * kMi);  // 120% of 300Mi
  EXPECT_EQ(plans[0].spec.placement().pod().pod_uid(), "0a1b2c3d-0000");
  EXPECT_EQ(plans[0].spec.placement().pod().container_id(), "containerd://abc123");
  EXPECT_EQ(plans[0].spec.placement().pod().container_name(), "app");
  EXPECT_EQ(plans[0].spec.plan_id(), "hpa-web-1-0a1b2c3d");
  EXPECT_NE(plans[0].spec.plan_id(), plans[1].spec.plan_id());

  plans = PlanPods(pods, agents, BaseSpec(), "app",
                   PodRelativeTarget{90, PodRelativeTarget::Of::kLimit});
  EXPECT_EQ(plans[1].spec.retained().phases(0).target().bytes(), 540 * kMi);  // 90% of 600Mi
  // Not a whole percent: rounded down to the byte.
  plans = PlanPods(pods, agents, BaseSpec(), "",
                   PodRelativeTarget{33.3, PodRelativeTarget::Of::kRequest});
  EXPECT_EQ(plans[0].spec.retained().phases(0).target().bytes(),
            static_cast<uint64_t>(200 * kMi * 0.333));
}

TEST(PlanPodsTest, FailedRowsAreNeverSkipped) {
  std::vector<Pod> pods = *ParsePods(
      absl::StrCat(
          R"({"items": [)",
          PodJson("elsewhere", "u1", "node-9", Container("app", "1Gi", ""), Status("app", "abc")),
          ",",
          PodJson("two", "u2", "node-1",
                  absl::StrCat(Container("app", "1Gi", ""), ",", Container("proxy", "", "")),
                  Status("app", "abc")),
          ",", PodJson("norequest", "u3", "node-1", Container("app", "", ""), Status("app", "abc")),
          ",", PodJson("pending", "u4", "", Container("app", "1Gi", ""), ""), ",",
          PodJson("notstarted", "u5", "node-1", Container("app", "1Gi", ""), ""), "]}"),
      "f");
  std::vector<PodPlan> plans = PlanPods(pods, {{"node-1", "127.0.0.2:7070"}}, BaseSpec(), "",
                                        PodRelativeTarget{50, PodRelativeTarget::Of::kRequest});
  ASSERT_EQ(plans.size(), 5u);
  EXPECT_THAT(plans[0].status,
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no agent on node \"node-9\"")));
  EXPECT_THAT(plans[1].status, StatusIs(absl::StatusCode::kFailedPrecondition,
                                        HasSubstr("2 containers (app, proxy)")));
  EXPECT_THAT(plans[2].status,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("sets no memory request")));
  EXPECT_THAT(plans[3].status,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not scheduled")));
  EXPECT_THAT(plans[4].status,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("has not started")));
  // --container picks one; a missing one is named.
  plans = PlanPods({pods[1]}, {{"node-1", "x:1"}}, BaseSpec(), "sidecar", std::nullopt);
  EXPECT_THAT(plans[0].status, StatusIs(absl::StatusCode::kFailedPrecondition,
                                        HasSubstr("no container \"sidecar\"")));
  plans = PlanPods({pods[1]}, {{"node-1", "x:1"}}, BaseSpec(), "app", std::nullopt);
  EXPECT_THAT(plans[0].status, IsOk());
  EXPECT_EQ(plans[0].spec.retained().phases(0).target().bytes(), 1u);  // Not relative.
}

}  // namespace
}  // namespace controller
}  // namespace memload
