// The agent end to end in one process: a real AgentServer on 127.0.0.1:0, real
// memload-worker processes, a real gRPC client. Resident memory is read from /proc.
#include "agent/agent_server.h"

#include <signal.h>
#include <sys/types.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/testing/stock_services.pb.h"
#include "core/node_readers.h"
#include "core/sanitizers.h"
#include "core/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/memload.grpc.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/sizes.h"
#include "tests/testing/process_memory.h"

namespace memload {
namespace agent {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::memload::testing::Eventually;
using ::memload::testing::kMiB;
using ::memload::testing::ResidentOf;

// Sanitized workers also hold shadow memory, so their RSS has no tight upper bound.
constexpr bool kSanitized = kAddressSanitizer || kThreadSanitizer;
// Bazel runs tests from the workspace root of their runfiles.
constexpr char kWorkerBinary[] = "agent/memload-worker";

// Exists, zombies included (the agent reaps its workers): what "gone" means here.
bool ProcessExists(int pid) { return pid > 0 && kill(pid, 0) == 0; }

class AgentServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AgentOptions options;
    options.listen_address = "127.0.0.1:0";
    options.node_name = "test-node";
    options.labels = {{"zone", "a"}};
    options.worker_binary = kWorkerBinary;
    options.plans.reserve_bytes = 64 * kMiB;
    options.plans.max_memory_bytes = 1024 * kMiB;
    options.plans.tick = absl::Milliseconds(20);
    absl::StatusOr<std::unique_ptr<AgentServer>> server = AgentServer::Start(options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::Agent::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(2));
  }

  grpc::Status Start(const v1::PlanSpec& spec, v1::StartPlanResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::StartPlanRequest request;
    *request.mutable_spec() = spec;
    return stub_->StartPlan(&context, request, response);
  }

  grpc::Status Stop(const std::string& id, v1::StopPlanResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::StopPlanRequest request;
    request.set_plan_id(id);
    return stub_->StopPlan(&context, request, response);
  }

  v1::NodeUsage Usage() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::NodeUsage usage;
    EXPECT_TRUE(stub_->GetUsage(&context, v1::GetUsageRequest(), &usage).ok());
    return usage;
  }

  std::optional<v1::PlanStatus> Plan(const std::string& id, bool include_ended = true) {
    grpc::ClientContext context;
    v1::ListPlansRequest request;
    request.set_include_ended(include_ended);
    v1::ListPlansResponse response;
    if (!stub_->ListPlans(&context, request, &response).ok()) return std::nullopt;
    for (const v1::PlanStatus& plan : response.plans()) {
      if (plan.plan_id() == id) return plan;
    }
    return std::nullopt;
  }

  static v1::PlanSpec Retained(const std::string& id, uint64_t bytes) {
    v1::PlanSpec spec;
    spec.set_plan_id(id);
    spec.mutable_lease()->set_seconds(60);
    v1::RetainedPlan* retained = spec.mutable_retained();
    retained->set_touch(v1::TOUCH_MODE_PAGE);
    v1::Phase* phase = retained->add_phases();
    phase->mutable_target()->set_bytes(bytes);
    phase->set_hold_forever(true);
    return spec;
  }

  std::unique_ptr<AgentServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
};

TEST_F(AgentServerTest, RetainedPlanIsResidentInItsWorkerAndStopReturnsIt) {
  v1::StartPlanResponse started;
  ASSERT_TRUE(Start(Retained("resident-128", 128 * kMiB), &started).ok());
  EXPECT_TRUE(started.created());
  const int pid = started.plan().worker_pid();
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(Eventually([&] {
    auto plan = Plan("resident-128");
    return plan && plan->state() == v1::PLAN_STATE_HOLDING &&
           plan->resident_bytes() >= 128 * kMiB;
  }));
  // Measured from /proc by the test itself, not only by the agent.
  EXPECT_GE(ResidentOf(pid), 128 * kMiB);
  v1::NodeUsage usage = Usage();
  EXPECT_EQ(usage.node().node_name(), "test-node");
  ASSERT_EQ(usage.plans_size(), 1);
  EXPECT_EQ(usage.plans(0).payload_bytes(), 128 * kMiB);
  EXPECT_GE(usage.plans_resident_bytes(), 128 * kMiB);
  EXPECT_GT(usage.meminfo().total_bytes(), 0u);
  EXPECT_GT(usage.agent_rss_bytes(), 0u);
  EXPECT_TRUE(usage.plans(0).has_target_reached());

  v1::StopPlanResponse stopped;
  ASSERT_TRUE(Stop("resident-128", &stopped).ok());
  EXPECT_EQ(stopped.plan().state(), v1::PLAN_STATE_STOPPED);
  EXPECT_TRUE(stopped.plan().outcome_ok());
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_EQ(Usage().plans_size(), 0);
}

TEST_F(AgentServerTest, ResizeGrowsAndShrinksInPlace) {
  v1::StartPlanResponse started;
  ASSERT_TRUE(Start(Retained("resize", 32 * kMiB), &started).ok());
  const int pid = started.plan().worker_pid();
  ASSERT_TRUE(Eventually([&] { return Plan("resize")->state() == v1::PLAN_STATE_HOLDING; }));
  for (uint64_t target : {96 * kMiB, 16 * kMiB}) {
    grpc::ClientContext context;
    v1::ResizePlanRequest request;
    request.set_plan_id("resize");
    request.mutable_target()->set_bytes(target);
    v1::ResizePlanResponse response;
    ASSERT_TRUE(stub_->ResizePlan(&context, request, &response).ok());
    ASSERT_TRUE(Eventually([&] {
      auto plan = Plan("resize");
      return plan->state() == v1::PLAN_STATE_HOLDING && plan->payload_bytes() == target;
    }));
    EXPECT_EQ(Plan("resize")->worker_pid(), pid);  // In place: the same worker.
    EXPECT_GE(ResidentOf(pid), target);
    if (!kSanitized) EXPECT_LT(ResidentOf(pid), target + 16 * kMiB);
  }
}

TEST_F(AgentServerTest, LeaseExpiryReturnsTheMemory) {
  v1::PlanSpec spec = Retained("short-lease", 32 * kMiB);
  spec.mutable_lease()->set_seconds(0);
  spec.mutable_lease()->set_nanos(300'000'000);
  v1::StartPlanResponse started;
  ASSERT_TRUE(Start(spec, &started).ok());
  const int pid = started.plan().worker_pid();
  ASSERT_TRUE(Eventually([&] {
    auto plan = Plan("short-lease");
    return plan && plan->state() == v1::PLAN_STATE_LEASE_EXPIRED;
  }));
  EXPECT_FALSE(Plan("short-lease")->outcome_ok());
  EXPECT_FALSE(ProcessExists(pid));
}

TEST_F(AgentServerTest, BadRequestsGetPreciseStatuses) {
  v1::StartPlanResponse started;
  ASSERT_TRUE(Start(Retained("keeps-running", 16 * kMiB), &started).ok());

  struct Case {
    std::string name;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    std::string message;
  };
  v1::PlanSpec no_kind;
  no_kind.set_plan_id("no-kind");
  v1::PlanSpec too_big = Retained("too-big", 2048 * kMiB);
  v1::PlanSpec bad_id = Retained("bad id", kMiB);
  v1::PlanSpec both_ramps = Retained("both", kMiB);
  both_ramps.mutable_retained()->mutable_phases(0)->set_ramp_bytes_per_sec(1);
  both_ramps.mutable_retained()->mutable_phases(0)->mutable_ramp_duration()->set_seconds(1);
  v1::PlanSpec stream;
  stream.set_plan_id("stream");
  stream.mutable_streaming()->set_block_size(kMiB);
  stream.mutable_streaming()->set_rate_bytes_per_sec(kMiB);
  ASSERT_TRUE(Start(stream, &started).ok());
  std::vector<Case> cases = {
      {"empty request",
       [&] {
         grpc::ClientContext context;
         v1::StartPlanResponse response;
         return stub_->StartPlan(&context, v1::StartPlanRequest(), &response);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "spec"},
      {"no kind", [&] { return Start(no_kind, &started); }, grpc::StatusCode::INVALID_ARGUMENT,
       "kind"},
      {"bad id", [&] { return Start(bad_id, &started); }, grpc::StatusCode::INVALID_ARGUMENT,
       "plan_id"},
      {"both ramps", [&] { return Start(both_ramps, &started); },
       grpc::StatusCode::INVALID_ARGUMENT, "phases[0]"},
      {"over the cap", [&] { return Start(too_big, &started); },
       grpc::StatusCode::RESOURCE_EXHAUSTED, "--max-memory"},
      {"same id, other spec", [&] { return Start(Retained("keeps-running", kMiB), &started); },
       grpc::StatusCode::ALREADY_EXISTS, "different spec"},
      {"unknown stop",
       [&] {
         v1::StopPlanResponse response;
         return Stop("nobody", &response);
       },
       grpc::StatusCode::NOT_FOUND, "nobody"},
      {"resize a stream",
       [&] {
         grpc::ClientContext context;
         v1::ResizePlanRequest request;
         request.set_plan_id("stream");
         request.mutable_target()->set_bytes(kMiB);
         v1::ResizePlanResponse response;
         return stub_->ResizePlan(&context, request, &response);
       },
       grpc::StatusCode::FAILED_PRECONDITION, "streaming"},
      {"watch too fast",
       [&] {
         grpc::ClientContext context;
         v1::WatchUsageRequest request;
         request.mutable_interval()->set_nanos(1'000'000);
         auto reader = stub_->WatchUsage(&context, request);
         v1::NodeUsage usage;
         while (reader->Read(&usage)) {
         }
         return reader->Finish();
       },
       grpc::StatusCode::INVALID_ARGUMENT, "interval"},
  };
  for (const Case& c : cases) {
    grpc::Status status = c.call();
    EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message)) << c.name;
  }
  // Nothing above disturbed the running plan.
  auto plan = Plan("keeps-running");
  ASSERT_TRUE(plan.has_value());
  EXPECT_TRUE(ProcessExists(plan->worker_pid()));
  EXPECT_NE(plan->state(), v1::PLAN_STATE_FAILED);
}

TEST_F(AgentServerTest, WatchStreamsUsageAtTheInterval) {
  grpc::ClientContext context;
  v1::WatchUsageRequest request;
  request.mutable_interval()->set_nanos(50'000'000);
  auto reader = stub_->WatchUsage(&context, request);
  v1::NodeUsage usage;
  const absl::Time start = absl::Now();
  int messages = 0;
  while (messages < 4 && reader->Read(&usage)) ++messages;
  EXPECT_EQ(messages, 4);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(140));
  EXPECT_EQ(usage.node().node_name(), "test-node");
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(AgentServerTest, NodeInfoHealthAndReflectionWorkLikeStockServices) {
  grpc::ClientContext info_context;
  v1::NodeInfo info;
  ASSERT_TRUE(stub_->GetNodeInfo(&info_context, v1::GetNodeInfoRequest(), &info).ok());
  EXPECT_EQ(info.node_name(), "test-node");
  EXPECT_EQ(info.labels().at("zone"), "a");
  EXPECT_EQ(info.incarnation().size(), 32u);
  EXPECT_EQ(info.listen_address(), server_->address());
  EXPECT_EQ(info.max_memory_bytes(), 1024 * kMiB);

  grpc::TemplatedGenericStub<testing::HealthCheckRequest, testing::HealthCheckResponse> health(
      channel_);
  grpc::ClientContext health_context;
  testing::HealthCheckRequest health_request;
  testing::HealthCheckResponse health_response;
  std::promise<grpc::Status> health_done;
  health.UnaryCall(&health_context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                   &health_request, &health_response,
                   [&](grpc::Status status) { health_done.set_value(status); });
  ASSERT_TRUE(health_done.get_future().get().ok());
  EXPECT_EQ(health_response.status(), testing::HealthCheckResponse::SERVING);

  grpc::TemplatedGenericStub<testing::ServerReflectionRequest, testing::ServerReflectionResponse>
      reflection(channel_);
  grpc::ClientContext reflection_context;
  grpc::CompletionQueue queue;
  auto call = reflection.PrepareCall(
      &reflection_context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &queue);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  testing::ServerReflectionRequest list;
  list.set_list_services("*");
  call->Write(list, reinterpret_cast<void*>(2));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  testing::ServerReflectionResponse listed;
  call->Read(&listed, reinterpret_cast<void*>(3));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  std::vector<std::string> services;
  for (const auto& service : listed.list_services_response().service()) {
    services.push_back(service.name());
  }
  EXPECT_THAT(services, Contains("memload.v1.Agent"));
  EXPECT_THAT(services, Contains("grpc.health.v1.Health"));
  reflection_context.TryCancel();
  grpc::Status finished;
  call->Finish(&finished, reinterpret_cast<void*>(4));
  while (queue.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
  }
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

TEST_F(AgentServerTest, ShutdownStopsEveryPlanAndReturnsTheMemory) {
  v1::StartPlanResponse one, two;
  ASSERT_TRUE(Start(Retained("one", 16 * kMiB), &one).ok());
  ASSERT_TRUE(Start(Retained("two", 16 * kMiB), &two).ok());
  ASSERT_TRUE(Eventually([&] { return Plan("two")->state() == v1::PLAN_STATE_HOLDING; }));
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(2));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_FALSE(ProcessExists(one.plan().worker_pid()));
  EXPECT_FALSE(ProcessExists(two.plan().worker_pid()));
}

}  // namespace
}  // namespace agent
}  // namespace memload
