#include "agent/testing/light_agents.h"

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/memload.grpc.pb.h"

namespace memload {
namespace agent {
namespace {

std::unique_ptr<v1::Agent::Stub> StubFor(int port) {
  return v1::Agent::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
}

void Bound(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
}

TEST(LightAgentHostTest, EveryPortServesTheAgentServiceAndSharesOnePlanTable) {
  LightAgentOptions options;
  options.ports = 3;
  options.node_name = "light-test";
  absl::StatusOr<std::unique_ptr<LightAgentHost>> host = LightAgentHost::Start(options);
  ASSERT_THAT(host.status(), IsOk());
  const std::vector<int>& ports = (*host)->ports();
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(std::set<int>(ports.begin(), ports.end()).size(), 3u) << "ports must differ";

  v1::StartPlanRequest start;
  v1::PlanSpec* spec = start.mutable_spec();
  spec->set_plan_id("light-1");
  spec->mutable_lease()->set_seconds(60);
  v1::Phase* phase = spec->mutable_retained()->add_phases();
  phase->mutable_target()->set_bytes(1 << 20);
  phase->set_hold_forever(true);

  int created = 0;
  for (int port : ports) {
    std::unique_ptr<v1::Agent::Stub> stub = StubFor(port);
    grpc::ClientContext usage_context;
    Bound(&usage_context);
    v1::NodeUsage usage;
    ASSERT_TRUE(stub->GetUsage(&usage_context, v1::GetUsageRequest(), &usage).ok()) << port;
    EXPECT_EQ(usage.node().node_name(), "light-test");
    EXPECT_EQ(usage.node().listen_address(), absl::StrCat("127.0.0.1:", ports.front()));

    grpc::ClientContext start_context;
    Bound(&start_context);
    v1::StartPlanResponse started;
    grpc::Status status = stub->StartPlan(&start_context, start, &started);
    ASSERT_TRUE(status.ok()) << port << ": " << status.error_message();
    created += started.created() ? 1 : 0;
  }
  // One plan table behind every port: the first start made the plan, the others found it.
  EXPECT_EQ(created, 1);
  EXPECT_EQ((*host)->plans_started(), 1u);

  for (int port : ports) {
    grpc::ClientContext stop_context;
    Bound(&stop_context);
    v1::StopPlanRequest stop;
    stop.set_plan_id("light-1");
    v1::StopPlanResponse stopped;
    grpc::Status status = StubFor(port)->StopPlan(&stop_context, stop, &stopped);
    EXPECT_TRUE(status.ok()) << port << ": " << status.error_message();
  }
  (*host)->Shutdown();
}

TEST(LightAgentHostTest, RefusesAPortCountOutsideItsBounds) {
  LightAgentOptions options;
  options.ports = 0;
  EXPECT_THAT(LightAgentHost::Start(options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, testing::HasSubstr("0 ports")));
  options.ports = kMaxLightAgentPorts + 1;
  EXPECT_THAT(LightAgentHost::Start(options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, testing::HasSubstr("ports")));
}

}  // namespace
}  // namespace agent
}  // namespace memload
