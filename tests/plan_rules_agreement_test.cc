// memloadctl and the agent apply the same plan rules (proto/plan_rules.h): every malformed
// plan below is refused by memloadctl's check (before anything is sent) and by a real
// in-process agent over gRPC, with the same message. The messages are built from
// plan_rules' own limits, so a rule changed there changes both sides and this test still
// holds; a copy of a rule on either side that drifts makes it fail.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agent/agent_server.h"
#include "agent/testing/local_agent.h"
#include "controller/plan_builder.h"
#include "core/block_cost.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/memload.grpc.pb.h"
#include "proto/plan_rules.h"

namespace memload {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

class PlanRulesAgreementTest : public agent::LocalAgentTest {
 protected:
  agent::AgentOptions Options() override {
    agent::AgentOptions options = agent::LocalAgentOptions();
    options.node_name = "rules-node";
    options.plans.reserve_bytes = 64 * kMiB;
    options.plans.max_memory_bytes = 256 * kMiB;
    return options;
  }

  // The agent's answer to StartPlan(spec), as a status.
  grpc::Status AgentStart(const v1::PlanSpec& spec) {
    grpc::ClientContext context;
    context.set_deadline(agent::CallDeadline());
    v1::StartPlanRequest request;
    *request.mutable_spec() = spec;
    v1::StartPlanResponse response;
    return stub_->StartPlan(&context, request, &response);
  }
};

v1::PlanSpec Streaming(const std::string& id) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  spec.mutable_streaming()->set_block_size(4096);
  return spec;
}

v1::PlanSpec Retained(const std::string& id) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  spec.mutable_retained()->add_phases()->mutable_target()->set_bytes(kMiB);
  return spec;
}

TEST_F(PlanRulesAgreementTest, BothSidesRefuseWithTheSameMessage) {
  struct Case {
    std::string name;
    v1::PlanSpec spec;
    std::string message;  // What both must say (a substring: the agent may add context).
  };
  std::vector<Case> cases;
  {
    Case c{"plan id", Streaming("a b"), "plan_id: must be 1-"};
    cases.push_back(c);
  }
  {
    Case c{"oom_score_adj", Streaming("oom"), ""};
    c.spec.set_oom_score_adj(static_cast<int32_t>(plan_rules::kMaxOomScoreAdj + 1));
    c.message = absl::StrCat("oom_score_adj: ",
                             *plan_rules::OomScoreAdjProblem(plan_rules::kMaxOomScoreAdj + 1));
    cases.push_back(c);
  }
  {
    Case c{"lease", Streaming("lease"), "lease: must be positive, got 0s"};
    c.spec.mutable_lease();
    cases.push_back(c);
  }
  {
    // Below the shortest lease: accepted, then expired at the agent's next tick (N11).
    Case c{"short lease", Streaming("short-lease"), ""};
    c.spec.mutable_lease()->set_nanos(1);
    c.message = absl::StrCat("lease: ", *plan_rules::LeaseProblem(absl::Nanoseconds(1)));
    cases.push_back(c);
  }
  {
    Case c{"label key", Streaming("label-key"), ""};
    const std::string key(plan_rules::kMaxLabelKeyBytes + 1, 'k');
    (*c.spec.mutable_labels())[key] = "v";
    c.message = std::string(plan_rules::CheckPlanLabel(key, "v").message());
    cases.push_back(c);
  }
  {
    Case c{"workers", Streaming("workers"), ""};
    c.spec.mutable_streaming()->set_workers(plan_rules::kMaxStreamWorkers + 1);
    c.message = absl::StrCat("streaming.workers: must be 1..", plan_rules::kMaxStreamWorkers,
                             ", got ", plan_rules::kMaxStreamWorkers + 1);
    cases.push_back(c);
  }
  {
    // 2^64-1 was refused deep in the cost arithmetic, named as streaming.window (attack F4).
    Case c{"block size", Streaming("block-size"), ""};
    c.spec.mutable_streaming()->set_block_size(UINT64_MAX);
    c.message = absl::StrCat("streaming.block_size: ", *plan_rules::BlockSizeProblem(UINT64_MAX));
    cases.push_back(c);
  }
  {
    Case c{"retained block size", Retained("retained-block-size"), ""};
    c.spec.mutable_retained()->set_block_size(plan_rules::kMaxBlockSize + 1);
    c.message = absl::StrCat("retained.block_size: ",
                             *plan_rules::BlockSizeProblem(plan_rules::kMaxBlockSize + 1));
    cases.push_back(c);
  }
  {
    Case c{"amount", Streaming("amount"), "streaming.amount_bytes: must be a multiple"};
    c.spec.mutable_streaming()->set_amount_bytes(5000);
    cases.push_back(c);
  }
  {
    Case c{"both ramps", Retained("ramps"), ""};
    v1::Phase* phase = c.spec.mutable_retained()->mutable_phases(0);
    phase->set_ramp_bytes_per_sec(kMiB);
    phase->mutable_ramp_duration()->set_seconds(1);
    c.message = absl::StrCat("retained.phases[0]: ", plan_rules::kBothRamps);
    cases.push_back(c);
  }
  {
    Case c{"percent", Retained("percent"), "percent must be in [0.001, 100], got 120"};
    c.spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(120);
    cases.push_back(c);
  }
  {
    Case c{"untouched utilization", v1::PlanSpec(), ""};
    c.spec.set_plan_id("util");
    c.spec.mutable_utilization()->set_target_percent(50);
    c.spec.mutable_utilization()->set_touch(v1::TOUCH_MODE_NONE);
    c.message = absl::StrCat("utilization.touch: ", plan_rules::kUntouchedUtilization);
    cases.push_back(c);
  }
  {
    // Real cost (core/block_cost): 100 MiB of 1-byte blocks is 104,857,600 blocks, more
    // than a plan may hold, though its payload is within this agent's --max-memory.
    Case c{"block count", Retained("tiny-blocks"), ""};
    c.spec.mutable_retained()->set_block_size(1);
    c.spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_bytes(100 * kMiB);
    c.message = absl::StrCat("retained: ", 100 * kMiB, " blocks of 1 B is more than the ",
                             kMaxBlocks, " blocks a plan may hold; use a block size of at least");
    cases.push_back(c);
  }
  {
    // The bounds on what a plan may make the agent store (plan_rules::CheckPlanBounds).
    Case c{"labels", Streaming("labels"), ""};
    for (size_t i = 0; i <= plan_rules::kMaxLabels; ++i) {
      (*c.spec.mutable_labels())[absl::StrCat("k", i)] = "v";
    }
    c.message = absl::StrCat("labels: at most ", plan_rules::kMaxLabels, " labels, got ",
                             plan_rules::kMaxLabels + 1);
    cases.push_back(c);
  }
  {
    Case c{"phases", Retained("phases"), ""};
    for (int i = 0; i < plan_rules::kMaxPhases; ++i) {
      *c.spec.mutable_retained()->add_phases() = c.spec.retained().phases(0);
    }
    c.message = absl::StrCat("retained.phases: at most ", plan_rules::kMaxPhases, " phases");
    cases.push_back(c);
  }
  {
    Case c{"no kind", v1::PlanSpec(), "the plan has no kind"};
    c.spec.set_plan_id("kindless");
    cases.push_back(c);
  }

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const absl::Status cli = controller::ValidatePlanSpec(c.spec);
    EXPECT_THAT(cli, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
    const grpc::Status agent = AgentStart(c.spec);
    EXPECT_EQ(agent.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    // The same words: the agent is the authority, memloadctl fails early with its message.
    EXPECT_EQ(agent.error_message(), std::string(cli.message()));
  }
}

// A plan's --lease and --labels and the agent apply one rule each (N11, N13): what the flag
// refuses it refuses with the agent's words after the quoted flag; what the API accepts the
// flag can write, and the agent takes it.
TEST_F(PlanRulesAgreementTest, LeaseAndLabelFlagsFollowTheAgentsRule) {
  struct Case {
    std::string name;
    std::string lease, labels;  // Flag values.
    v1::PlanSpec spec;          // The same plan, as the API would get it.
  };
  std::vector<Case> cases;
  {
    Case c{"1ns lease", "1ns", "", Streaming("flag-lease")};
    c.spec.mutable_lease()->set_nanos(1);
    cases.push_back(c);
  }
  {
    Case c{"999ms lease", "999ms", "", Streaming("flag-lease")};
    c.spec.mutable_lease()->set_nanos(999000000);
    cases.push_back(c);
  }
  {
    const std::string key(plan_rules::kMaxLabelKeyBytes + 1, 'k');
    Case c{"long key", "", key + "=v", Streaming("flag-labels")};
    (*c.spec.mutable_labels())[key] = "v";
    cases.push_back(c);
  }
  {
    const std::string value(plan_rules::kMaxLabelValueBytes + 1, 'v');
    Case c{"long value", "", "k=" + value, Streaming("flag-labels")};
    (*c.spec.mutable_labels())["k"] = value;
    cases.push_back(c);
  }
  {
    Case c{"too many", "", "", Streaming("flag-labels")};
    for (size_t i = 0; i <= plan_rules::kMaxLabels; ++i) {
      absl::StrAppend(&c.labels, i == 0 ? "" : ",", "k", i, "=v");
      (*c.spec.mutable_labels())[absl::StrCat("k", i)] = "v";
    }
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const grpc::Status agent = AgentStart(c.spec);
    ASSERT_EQ(agent.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << agent.error_message();
    controller::PlanFlags flags;
    flags.kind = "streaming";
    flags.block_size = "4096";
    flags.plan_id = c.spec.plan_id();
    flags.lease = c.lease;
    flags.labels = c.labels;
    // A flag error is `--NAME="TEXT": PROBLEM`; the agent's, `FIELD: PROBLEM`. The labels'
    // problems name the label ("labels[\"k\"]: ..."), so they keep the agent's whole text.
    const std::string agent_words = agent.error_message();  // By value: keep it.
    absl::string_view words = agent_words;
    if (!c.lease.empty()) {
      EXPECT_TRUE(absl::ConsumePrefix(&words, "lease: ")) << words;
    }
    const std::string flag = c.lease.empty() ? absl::StrCat("--labels=\"", c.labels, "\"")
                                             : absl::StrCat("--lease=\"", c.lease, "\"");
    EXPECT_THAT(controller::BuildPlanFromFlags(flags, absl::UnixEpoch(), /*random=*/0),
                StatusIs(absl::StatusCode::kInvalidArgument, absl::StrCat(flag, ": ", words)));
  }

  // Labels of any bytes but ',' within the bounds, the longest key and value, 32 of them:
  // the flag writes them and the agent takes them (refusing this plan for its size only,
  // after every plan rule passed).
  controller::PlanFlags flags;
  flags.kind = "retained";
  flags.target = "1GiB";  // Beyond this agent's --max-memory of 256 MiB.
  flags.plan_id = "labelled";
  flags.lease = absl::FormatDuration(plan_rules::kMinLease);
  flags.labels =
      absl::StrCat("owner=team blue: a/b@c,", std::string(plan_rules::kMaxLabelKeyBytes, 'k'), "=",
                   std::string(plan_rules::kMaxLabelValueBytes, 'v'));
  for (size_t i = 2; i < plan_rules::kMaxLabels; ++i) absl::StrAppend(&flags.labels, ",k", i, "=");
  absl::StatusOr<v1::PlanSpec> spec =
      controller::BuildPlanFromFlags(flags, absl::UnixEpoch(), /*random=*/0);
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(static_cast<size_t>(spec->labels_size()), plan_rules::kMaxLabels);
  EXPECT_EQ(spec->labels().at("owner"), "team blue: a/b@c");
  const grpc::Status agent = AgentStart(*spec);
  EXPECT_EQ(agent.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << agent.error_message();
}

// The flag path quotes the flag, then says what plan_rules says.
TEST(PlanRulesFlagsTest, FlagsQuoteTheSharedProblem) {
  controller::PlanFlags flags;
  flags.kind = "streaming";
  flags.workers = absl::StrCat(plan_rules::kMaxStreamWorkers + 1);
  EXPECT_THAT(
      controller::BuildPlanFromFlags(flags, absl::UnixEpoch(), /*random=*/0),
      StatusIs(absl::StatusCode::kInvalidArgument,
               absl::StrCat("--workers=\"", flags.workers, "\": ",
                            *plan_rules::WorkersProblem(plan_rules::kMaxStreamWorkers + 1))));
  flags = controller::PlanFlags();
  flags.kind = "streaming";
  flags.oom_score_adj = "5000";
  EXPECT_THAT(
      controller::BuildPlanFromFlags(flags, absl::UnixEpoch(), /*random=*/0),
      StatusIs(absl::StatusCode::kInvalidArgument,
               absl::StrCat("--oom_score_adj=\"5000\": ", *plan_rules::OomScoreAdjProblem(5000))));
}

}  // namespace
}  // namespace memload
