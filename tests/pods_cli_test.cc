// memloadctl --pods against an e2e cluster: two agents ("nodes"), each with a fake kubepods
// tree holding one pod, and `kubectl get pods -o json` fixtures naming those pods, plus a
// pod on a node without an agent.
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"
#include "tests/fake_kubepods.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;

std::string PodJson(const std::string& name, const std::string& uid, const std::string& node,
                    const std::string& container_id, const std::string& request) {
  return absl::StrCat(R"({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": ")",
                      name, R"(", "namespace": "shop", "uid": ")", uid, R"("},
    "spec": {"nodeName": ")",
                      node, R"(", "containers": [{"name": "app", "image": "web",
      "resources": {"requests": {"memory": ")",
                      request, R"("}, "limits": {"memory": "512Mi"}}}]},
    "status": {"phase": "Running", "containerStatuses": [{"name": "app",
      "containerID": "containerd://)",
                      container_id, R"(", "state": {"running": {}}}]}})");
}

class PodsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"n1", "n2"}) {
      absl::StatusOr<std::unique_ptr<FakeKubepods>> pods = FakeKubepods::Create(
          name, name[1] == '1' ? FakeKubepods::Scheme::kCgroupfs : FakeKubepods::Scheme::kSystemd,
          512 * kMiB);
      if (!pods.ok()) GTEST_SKIP() << "no memory cgroups here: " << pods.status();
      pods_.push_back(std::move(*pods));
    }
    ClusterOptions options;
    for (size_t i = 0; i < pods_.size(); ++i) {
      NodeOptions node{absl::StrCat("node-", i + 1), "", 1024 * kMiB};
      node.agent_flags.push_back("--cgroup_root=" + pods_[i]->root());
      options.nodes.push_back(node);
    }
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    if (IsNoCgroups(cluster.status())) GTEST_SKIP() << cluster.status();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    // kubectl get pods -o json: web-1 (request 100Mi) on node-1, web-2 (request 160Mi) on
    // node-2, web-3 on node-9, which has no agent.
    file_ = absl::StrCat(::testing::TempDir(), "/pods-", getpid(), ".json");
    std::ofstream out(file_);
    out << R"({"apiVersion": "v1", "kind": "List", "items": [)"
        << PodJson("web-1", pods_[0]->pod_uid(), "node-1", pods_[0]->container_id(), "100Mi") << ","
        << PodJson("web-2", pods_[1]->pod_uid(), "node-2", pods_[1]->container_id(), "160Mi") << ","
        << PodJson("web-3", "77777777-0000-0000-0000-000000000000", "node-9", "abcdef0123456789",
                   "100Mi")
        << R"(], "metadata": {"resourceVersion": ""}})";
  }
  void TearDown() override {
    cluster_.reset();
    pods_.clear();
  }

  std::vector<std::unique_ptr<FakeKubepods>> pods_;
  std::unique_ptr<Cluster> cluster_;
  std::string file_;
};

TEST_F(PodsCliTest, StartPlacesOnePlanPerPodAndReportsTheUnknownNode) {
  const uint64_t before1 = pods_[0]->LeafUsage();
  const uint64_t before2 = pods_[1]->LeafUsage();
  CommandResult start = cluster_->Ctl({"start", "--targets=" + cluster_->DnsTarget(),
                                       "--pods=" + file_, "--kind=retained", "--target=150%request",
                                       "--plan_id=hpa", "--lease=60s", "--output=json"});
  EXPECT_EQ(start.exit_code, 1) << start.out << start.err;  // web-3 failed.
  const google::protobuf::Struct doc = ParseJson(start.out);
  const auto& rows = Get(doc, {"pods"}).list_value().values();
  ASSERT_EQ(rows.size(), 3) << start.out;
  const auto row = [&](int i, const char* key) -> const google::protobuf::Value& {
    return Get(rows[i].struct_value(), {key});
  };
  EXPECT_TRUE(row(0, "ok").bool_value()) << start.out;
  EXPECT_TRUE(row(1, "ok").bool_value()) << start.out;
  EXPECT_FALSE(row(2, "ok").bool_value());
  // The same counts as every command: in the document and on stderr.
  EXPECT_EQ(Get(doc, {"summary", "ok"}).number_value(), 2) << start.out;
  EXPECT_EQ(Get(doc, {"summary", "failed"}).number_value(), 1) << start.out;
  EXPECT_EQ(start.err, "2 ok, 1 failed\n");
  EXPECT_EQ(row(2, "errorCode").string_value(), "NOT_FOUND");
  EXPECT_THAT(row(2, "error").string_value(), HasSubstr("no agent on node \"node-9\""));
  // 150% of each container's request, in its own container's cgroup.
  EXPECT_EQ(Get(row(0, "plan").struct_value(), {"targetBytes"}).string_value(),
            absl::StrCat(150 * kMiB));
  EXPECT_EQ(Get(row(1, "plan").struct_value(), {"targetBytes"}).string_value(),
            absl::StrCat(240 * kMiB));
  ASSERT_TRUE(Eventually([&] {
    return pods_[0]->LeafUsage() >= before1 + 150 * kMiB &&
           pods_[1]->LeafUsage() >= before2 + 240 * kMiB;
  })) << pods_[0]->LeafUsage()
      << " " << pods_[1]->LeafUsage();

  // The table has one row per pod.
  CommandResult table =
      cluster_->Ctl({"start", "--targets=" + cluster_->Targets(), "--pods=" + file_,
                     "--kind=retained", "--target=150%request", "--plan_id=hpa", "--lease=60s"});
  EXPECT_THAT(table.out, HasSubstr("shop/web-1"));
  EXPECT_THAT(table.out, HasSubstr("shop/web-3"));
  EXPECT_THAT(table.out, HasSubstr("WORKING SET"));
  // The failed pod's row first, marked.
  const std::vector<std::string> lines = absl::StrSplit(table.out, '\n');
  ASSERT_GE(lines.size(), 2u) << table.out;
  EXPECT_THAT(lines[1], ::testing::ContainsRegex("^shop/web-3 .* FAILED ")) << table.out;
  EXPECT_EQ(table.err, "2 ok, 1 failed\n");
  EXPECT_EQ(cluster_->Ctl({"stop", "--targets=" + cluster_->Targets(), "--all"}).exit_code, 0);
}

TEST_F(PodsCliTest, RunHoldsThenStopsEveryPod) {
  CommandResult run = cluster_->Ctl({"run", "--targets=" + cluster_->Targets(), "--pods=" + file_,
                                     "--kind=retained", "--target=64MiB", "--for=2s",
                                     "--interval=200ms", "--output=json"});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;  // web-3 still has no agent.
  const google::protobuf::Struct doc = ParseJson(run.out);
  const auto& rows = Get(doc, {"pods"}).list_value().values();
  ASSERT_EQ(rows.size(), 3);
  for (int i = 0; i < 2; ++i) {
    const auto& plan = Get(rows[i].struct_value(), {"plan"}).struct_value();
    EXPECT_EQ(Get(plan, {"state"}).string_value(), "PLAN_STATE_STOPPED") << run.out;
    EXPECT_EQ(Get(plan, {"target", "path"}).string_value(), pods_[i]->leaf());
  }
  EXPECT_TRUE(cluster_->node(0).Workers().empty());
  EXPECT_TRUE(cluster_->node(1).Workers().empty());
}

TEST_F(PodsCliTest, RecordedRunReportsOneRowPerPod) {
  const std::string recording = absl::StrCat(::testing::TempDir(), "/pods-", getpid(), ".jsonl");
  const std::string html = recording + ".html";
  CommandResult run = cluster_->Ctl({"run", "--targets=" + cluster_->Targets(), "--pods=" + file_,
                                     "--kind=retained", "--target=32MiB", "--for=1s",
                                     "--interval=200ms", "--record=" + recording});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;  // web-3: no agent.
  CommandResult report = cluster_->Ctl({"report", recording, "--html=" + html});
  EXPECT_EQ(report.exit_code, 0) << report.out << report.err;
  std::ifstream in(html);
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(page, HasSubstr("shop/web-1"));
  EXPECT_THAT(page, HasSubstr("shop/web-2"));
}

TEST_F(PodsCliTest, UsageErrors) {
  CommandResult bad = cluster_->Ctl({"start", "--targets=" + cluster_->Targets(),
                                     "--pods=/no/such/file", "--kind=retained", "--target=1MiB"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("/no/such/file"));
  bad = cluster_->Ctl({"usage", "--targets=" + cluster_->Targets(), "--pods=" + file_});
  EXPECT_EQ(bad.exit_code, 2);
  bad = cluster_->Ctl({"start", "--targets=" + cluster_->Targets(), "--kind=retained",
                       "--target=1MiB", "--container=app"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--container needs --pods"));
  bad = cluster_->Ctl({"run", "--targets=" + cluster_->Targets(), "--pods=" + file_,
                       "--kind=retained", "--target=1MiB", "--rollout=serial"});  // Not for pods.
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--rollout is not available with --pods"));
}

}  // namespace
}  // namespace testing
}  // namespace memload
