// Scenario 8: bad input at every door of a running cluster (tests/cluster.h) — memloadctl
// flags, plan files, and raw gRPC requests to the agents — each answered with its exit
// code or status code; afterwards every agent still runs, none started anything it should
// not have, and 1000 bad requests leave the agent's RSS (from /proc) where it was.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "controller/agent_requests.h"
#include "core/testing/sanitizers.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// No cgroups of their own: bad input needs none, so these run wherever loopback does.
ClusterOptions TwoNodes() {
  ClusterOptions options;
  options.nodes = {{"node-1", "zone=a"}, {"node-2", "zone=b"}};
  return options;
}

std::string WriteTempFile(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
  std::ofstream(path) << text;
  return path;
}

// Every agent answers and knows no plan but `except`.
void ExpectAgentsUntouched(Cluster& cluster, const std::string& except = "") {
  for (size_t i = 0; i < cluster.size(); ++i) {
    ClusterNode& node = cluster.node(i);
    EXPECT_TRUE(node.agent().running())
        << node.options().name << " crashed: " << node.agent().Stderr();
    absl::StatusOr<std::vector<v1::PlanStatus>> plans = node.Plans();
    ASSERT_TRUE(plans.ok()) << node.options().name << ": " << plans.status();
    for (const v1::PlanStatus& plan : *plans) {
      EXPECT_EQ(plan.plan_id(), except) << node.options().name << " started a plan";
    }
  }
}

TEST(E2eBadInputTest, CommandLineAndPlanFilesExitTwoNamingTheFlagOrFieldAndSendNothing) {
  START_CLUSTER_OR_SKIP(cluster, TwoNodes());
  const std::string targets = "--targets=" + cluster.DnsTarget();
  struct CliCase {
    std::vector<std::string> args;
    std::string names;  // In the error message ('_' and '-' alike).
  };
  const std::vector<CliCase> cli = {
      {{"usage", targets, "--bogus-flag"}, "unknown flag --bogus-flag"},
      {{"usage", targets, "--timeout=soon"}, "--timeout=\"soon\""},
      {{"usage", targets, "--timeout"}, "--timeout needs a value"},
      {{"usage", targets, "--parallelism=many"}, "--parallelism"},
      {{"usage", targets, "--output=yaml"}, "--output"},
      {{"usage", targets, "--selector=zone"}, "--selector"},
      {{"usage", "--targets=127.0.0.2"}, "127.0.0.2"},
      {{"usage", absl::StrCat("--targets=dns://127.0.0.1:", cluster.dns_port(),
                              "/nosuch.memload.test:", cluster.agent_port())},
       "nosuch.memload.test"},
      {{"usage"}, "--targets"},
      {{"launch", targets}, "launch"},
      {{"start", targets, "--kind=retained", "--target=64MiB", "--expect-oom=maybe"},
       "--expect-oom"},
      {{"start", targets, "--kind=retained", "--target=80%cgroups"}, "--target"},
      {{"start", targets, "--kind=retained", "--target=64MiB", "--lease=0s"}, "--lease"},
      // Refused by the agent only, in raw seconds, before (attack N12).
      {{"start", targets, "--kind=retained", "--target=64MiB", "--lease=1193h"},
       "--lease=\"1193h\": must be at most 24h, got 1193h"},
      // Started, reported started, expired at the agent's next tick, before (attack N11).
      {{"start", targets, "--kind=retained", "--target=64MiB", "--lease=1ns"},
       "--lease=\"1ns\": must be at least 1s, got 1ns"},
      {{"start", targets, "--kind=retained", "--target=64MiB", "--oom-score-adj=2000"},
       "--oom-score-adj"},
      {{"start", targets, "--kind=retained", "--target=64MiB", "--window=3"}, "--window"},
      {{"start", targets, "--kind=utilization", "--target=100%"}, "--target"},
      {{"start", targets, "--kind=streaming", "--block-size=0"}, "--block-size"},
      {{"start", targets, "--kind=sometimes"}, "--kind"},
      {{"run", targets, "--kind=retained", "--target=64MiB", "--rollout=wave:2"}, "--rollout"},
      {{"run", targets, "--kind=retained", "--target=64MiB", "--stagger=soon"}, "--stagger"},
      {{"run", targets, "--kind=retained", "--target=64MiB", "--max-failures=lots"},
       "--max-failures"},
      {{"resize", targets, "--plan-id=x"}, "--target"},
      {{"stop", targets}, "--plan-id"},
  };
  struct FileCase {
    std::string name;
    std::string text;
    std::string names;
  };
  const std::string one_phase = R"("phases": [{"target": {"bytes": "1048576"}}])";
  const std::vector<FileCase> files = {
      {"malformed.json", R"({"planId": "x", "retained": {)", "malformed.json:1:30"},
      {"empty.json", "", "empty.json:1:1"},
      {"array.json", "[1, 2]", "array.json"},
      {"unknown-field.json", absl::StrCat(R"({"retained": {)", one_phase, R"(}, "colour": "red"})"),
       "colour"},
      {"percent.json", R"({"retained": {"phases": [{"target": {"percentOfTotal": 150}}]}})",
       "retained.phases[0].target.percent_of_total"},
      {"touch.json",
       absl::StrCat(R"({"retained": {"touch": "TOUCH_MODE_SOMETIMES", )", one_phase, "}}"),
       "retained.touch"},
      {"block-size.json", absl::StrCat(R"({"retained": {"blockSize": "lots", )", one_phase, "}}"),
       "retained.block_size"},
      {"no-phase.json", R"({"retained": {"phases": []}})", "retained.phases"},
      {"two-ramps.json",
       R"({"retained": {"phases": [{"target": {"bytes": "1"}, "rampBytesPerSec": "1", "rampDuration": "1s"}]}})",
       "retained.phases[0]"},
      {"lease.json", absl::StrCat(R"({"lease": "-5s", "retained": {)", one_phase, "}}"), "lease"},
      {"plan-id.json", absl::StrCat(R"({"planId": "has space", "retained": {)", one_phase, "}}"),
       "plan_id"},
      {"streaming.json", R"({"streaming": {"blockSize": "0"}})", "streaming.block_size"},
      {"utilization.json", R"({"utilization": {"targetPercent": 100}})",
       "utilization.target_percent"},
      // protobuf kept the last of the two, silently (attack N15).
      {"twice.json",
       absl::StrCat(R"({"planId": "x", "plan_id": "y", "retained": {)", one_phase, "}}"),
       R"(twice.json:1:17: key "plan_id" given twice in one object (first as "planId" at 1:2))"},
      {"short-lease.json",
       absl::StrCat(R"({"lease": "0.000000001s", "retained": {)", one_phase, "}}"),
       "lease: must be at least 1s, got 1ns"},
  };
  std::vector<CliCase> all = cli;
  for (const FileCase& file : files) {
    all.push_back(
        {{"start", targets, "--plan=" + WriteTempFile(file.name, file.text)}, file.names});
  }
  all.push_back({{"start", targets, "--plan=/nonexistent/plan.json"}, "/nonexistent/plan.json"});
  for (const CliCase& one : all) {
    const std::string command = absl::StrJoin(one.args, " ");
    CommandResult result = cluster.Ctl(one.args, absl::Seconds(20));
    EXPECT_EQ(result.exit_code, 2) << command << "\n" << result.out << result.err;
    EXPECT_THAT(absl::StrReplaceAll(result.err, {{"_", "-"}}),
                HasSubstr(absl::StrReplaceAll(one.names, {{"_", "-"}})))
        << command;
  }
  // JSON output says the same to scripts.
  CommandResult json = cluster.Ctl({"usage", targets, "--parallelism=many", "--output=json"});
  EXPECT_EQ(json.exit_code, 2);
  EXPECT_EQ(Get(ParseJson(json.out), {"error", "code"}).string_value(), "INVALID_ARGUMENT");
  std::printf("[figure] bad input: %zu command lines and plan files, every one exit 2\n",
              all.size());
  ExpectAgentsUntouched(cluster);
}

// One malformed request and the status it must get.
struct ApiCase {
  std::string name;
  std::function<grpc::Status(v1::Agent::Stub&, grpc::ClientContext&)> call;
  grpc::StatusCode code;
  bool explained = true;  // The status carries a message (gRPC's own answers may not).
};

grpc::Status Start(v1::Agent::Stub& stub, grpc::ClientContext& context, const v1::PlanSpec& spec,
                   bool with_spec = true) {
  v1::StartPlanRequest request;
  if (with_spec) *request.mutable_spec() = spec;
  v1::StartPlanResponse response;
  return stub.StartPlan(&context, request, &response);
}

v1::PlanSpec Retained(const std::string& id, uint64_t bytes) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  spec.mutable_retained()->add_phases()->mutable_target()->set_bytes(bytes);
  return spec;
}

// A case of one unary call: `method` with `request`.
template <typename Request, typename Response>
ApiCase UnaryCase(std::string name,
                  grpc::Status (v1::Agent::Stub::*method)(grpc::ClientContext*, const Request&,
                                                          Response*),
                  Request request, grpc::StatusCode code) {
  return ApiCase{
      std::move(name),
      [method, request = std::move(request)](v1::Agent::Stub& stub, grpc::ClientContext& context) {
        Response response;
        return (stub.*method)(&context, request, &response);
      },
      code};
}

// ResizePlanRequest of `plan_id` (none when empty) to `target` (none when unset).
v1::ResizePlanRequest Resize(const std::string& plan_id, const v1::Quantity& target) {
  v1::ResizePlanRequest request;
  request.set_plan_id(plan_id);
  if (target.ByteSizeLong() > 0) *request.mutable_target() = target;
  return request;
}
v1::Quantity Bytes(uint64_t bytes) {
  v1::Quantity quantity;
  quantity.set_bytes(bytes);
  return quantity;
}
v1::Quantity PercentOfTotal(double percent) {
  v1::Quantity quantity;
  quantity.set_percent_of_total(percent);
  return quantity;
}

std::vector<ApiCase> ApiCases() {
  using Stub = v1::Agent::Stub;
  using Context = grpc::ClientContext;
  const grpc::StatusCode kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  auto spec_case = [](std::string name, std::function<void(v1::PlanSpec&)> mutate,
                      grpc::StatusCode code) {
    return ApiCase{name,
                   [mutate](Stub& stub, Context& context) {
                     v1::PlanSpec spec = Retained("bad", 1 << 20);
                     mutate(spec);
                     return Start(stub, context, spec);
                   },
                   code};
  };
  std::vector<std::string> many_ids;
  for (int i = 0; i < 1025; ++i) many_ids.push_back(absl::StrCat("p", i));
  v1::RenewLeasesRequest renew_for_1ns = controller::RenewRequest({"victim"});
  renew_for_1ns.mutable_lease()->set_nanos(1);  // Would end the plan it renews (N11).
  std::vector<ApiCase> cases = {
      {"StartPlan without spec",
       [](Stub& stub, Context& context) { return Start(stub, context, {}, false); }, kInvalid},
      spec_case(
          "empty plan_id", [](v1::PlanSpec& s) { s.clear_plan_id(); }, kInvalid),
      spec_case(
          "plan_id with a space", [](v1::PlanSpec& s) { s.set_plan_id("a b"); }, kInvalid),
      spec_case(
          "plan_id of 200 chars", [](v1::PlanSpec& s) { s.set_plan_id(std::string(200, 'x')); },
          kInvalid),
      spec_case(
          "no kind", [](v1::PlanSpec& s) { s.clear_retained(); }, kInvalid),
      spec_case(
          "target below one block",
          [](v1::PlanSpec& s) { s.mutable_retained()->set_block_size(uint64_t{1} << 30); },
          kInvalid),
      spec_case(
          "no phases", [](v1::PlanSpec& s) { s.mutable_retained()->clear_phases(); }, kInvalid),
      spec_case(
          "phase without target",
          [](v1::PlanSpec& s) { s.mutable_retained()->mutable_phases(0)->clear_target(); },
          kInvalid),
      spec_case(
          "150% of total",
          [](v1::PlanSpec& s) {
            s.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(150);
          },
          kInvalid),
      spec_case(
          "-1% of available",
          [](v1::PlanSpec& s) {
            s.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_available(-1);
          },
          kInvalid),
      spec_case(
          "two ramps",
          [](v1::PlanSpec& s) {
            v1::Phase* phase = s.mutable_retained()->mutable_phases(0);
            phase->set_ramp_bytes_per_sec(1);
            phase->mutable_ramp_duration()->set_seconds(1);
          },
          kInvalid),
      spec_case(
          "touch mode 99",
          [](v1::PlanSpec& s) { s.mutable_retained()->set_touch(static_cast<v1::TouchMode>(99)); },
          kInvalid),
      spec_case(
          "negative lease", [](v1::PlanSpec& s) { s.mutable_lease()->set_seconds(-1); }, kInvalid),
      spec_case(
          "zero lease", [](v1::PlanSpec& s) { s.mutable_lease(); }, kInvalid),
      spec_case(
          "1 ns lease", [](v1::PlanSpec& s) { s.mutable_lease()->set_nanos(1); }, kInvalid),
      spec_case(
          "oom_score_adj 5000", [](v1::PlanSpec& s) { s.set_oom_score_adj(5000); }, kInvalid),
      spec_case(
          "streaming block 0", [](v1::PlanSpec& s) { s.mutable_streaming()->set_block_size(0); },
          kInvalid),
      spec_case(
          "streaming 1000 workers",
          [](v1::PlanSpec& s) {
            s.mutable_streaming()->set_block_size(4096);
            s.mutable_streaming()->set_workers(1000);
          },
          kInvalid),
      spec_case(
          "utilization 100%",
          [](v1::PlanSpec& s) { s.mutable_utilization()->set_target_percent(100); }, kInvalid),
      spec_case(
          "utilization touch none",
          [](v1::PlanSpec& s) {
            s.mutable_utilization()->set_target_percent(50);
            s.mutable_utilization()->set_touch(v1::TOUCH_MODE_NONE);
          },
          kInvalid),
      spec_case(
          "1 PiB",
          [](v1::PlanSpec& s) {
            s.mutable_retained()->mutable_phases(0)->mutable_target()->set_bytes(uint64_t{1} << 50);
          },
          grpc::StatusCode::RESOURCE_EXHAUSTED),
      spec_case(
          "same id, other spec", [](v1::PlanSpec& s) { s = Retained("victim", 8 << 20); },
          grpc::StatusCode::ALREADY_EXISTS),
      UnaryCase("ResizePlan without plan_id", &Stub::ResizePlan, v1::ResizePlanRequest(), kInvalid),
      UnaryCase("ResizePlan of an unknown plan", &Stub::ResizePlan, Resize("nope", Bytes(1 << 20)),
                grpc::StatusCode::NOT_FOUND),
      UnaryCase("ResizePlan without target", &Stub::ResizePlan, Resize("victim", {}), kInvalid),
      UnaryCase("ResizePlan to 500%", &Stub::ResizePlan, Resize("victim", PercentOfTotal(500)),
                kInvalid),
      UnaryCase("ResizePlan to 1 PiB", &Stub::ResizePlan,
                Resize("victim", Bytes(uint64_t{1} << 50)), grpc::StatusCode::RESOURCE_EXHAUSTED),
      UnaryCase("StopPlan without plan_id", &Stub::StopPlan, v1::StopPlanRequest(), kInvalid),
      UnaryCase("StopPlan of an unknown plan", &Stub::StopPlan, controller::StopRequest("nope"),
                grpc::StatusCode::NOT_FOUND),
      // Ids past the id rule are refused as such, with the id cut in the message: echoed
      // whole, 100 KB would pass gRPC's 8 KiB metadata limit and the client would see
      // RESOURCE_EXHAUSTED instead (attack note N4).
      UnaryCase("StopPlan of a 100 KB plan id", &Stub::StopPlan,
                controller::StopRequest(std::string(100000, 'x')), kInvalid),
      UnaryCase("ResizePlan of a 100 KB plan id", &Stub::ResizePlan,
                Resize(std::string(100000, 'x'), Bytes(1 << 20)), kInvalid),
      UnaryCase("RenewLeases of 1025 plans", &Stub::RenewLeases, controller::RenewRequest(many_ids),
                kInvalid),
      UnaryCase("RenewLeases of a plan id with a newline", &Stub::RenewLeases,
                controller::RenewRequest({"victim\naudit: StopPlan plan=victim"}), kInvalid),
      UnaryCase("RenewLeases for 1 ns", &Stub::RenewLeases, renew_for_1ns, kInvalid),
  };
  for (int64_t nanos : {int64_t{1000000}, int64_t{-1000000000}}) {
    cases.push_back({absl::StrCat("WatchUsage every ", nanos / 1000000, " ms"),
                     [nanos](Stub& stub, Context& context) {
                       v1::WatchUsageRequest request;
                       request.mutable_interval()->set_seconds(nanos / 1000000000);
                       request.mutable_interval()->set_nanos(nanos % 1000000000);
                       std::unique_ptr<grpc::ClientReader<v1::NodeUsage>> reader =
                           stub.WatchUsage(&context, request);
                       v1::NodeUsage usage;
                       while (reader->Read(&usage)) {
                       }
                       return reader->Finish();
                     },
                     kInvalid});
  }
  return cases;
}

// Bytes that are no protobuf at all (a length-delimited field whose length is cut off),
// or a method the agent does not have, through the generic stub.
grpc::Status RawCall(std::shared_ptr<grpc::Channel> channel, const std::string& method,
                     const std::string& bytes) {
  grpc::GenericStub stub(std::move(channel));
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, method, request, &queue);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  queue.Next(&tag, &ok);
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  return status;
}

TEST(E2eBadInputTest, MalformedApiRequestsGetTheirStatusAndLeakNothing) {
  START_CLUSTER_OR_SKIP(cluster, TwoNodes());
  ClusterNode& node = cluster.node(0);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials());
  std::unique_ptr<v1::Agent::Stub> stub = v1::Agent::NewStub(channel);
  // A running plan to resize and to collide with.
  {
    grpc::ClientContext context;
    v1::PlanSpec victim = Retained("victim", 4 << 20);
    victim.mutable_retained()->mutable_phases(0)->set_hold_forever(true);
    victim.mutable_lease()->set_seconds(120);
    ASSERT_TRUE(Start(*stub, context, victim).ok());
  }
  std::vector<ApiCase> cases = ApiCases();
  // gRPC answers both before memload sees them: its callback API fails a request it
  // cannot parse with UNIMPLEMENTED and no message, as it does an unknown method.
  cases.push_back({"garbage bytes as StartPlan",
                   [&](v1::Agent::Stub&, grpc::ClientContext&) {
                     return RawCall(channel, "/memload.v1.Agent/StartPlan",
                                    std::string("\x0a\xff\xff", 3));
                   },
                   grpc::StatusCode::UNIMPLEMENTED, false});
  cases.push_back({"an unknown method",
                   [&](v1::Agent::Stub&, grpc::ClientContext&) {
                     return RawCall(channel, "/memload.v1.Agent/FormatDisk", "");
                   },
                   grpc::StatusCode::UNIMPLEMENTED, false});
  auto call = [&](const ApiCase& one) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return one.call(*stub, context);
  };
  for (const ApiCase& one : cases) {
    const grpc::Status status = call(one);
    EXPECT_EQ(status.error_code(), one.code) << one.name << ": " << status.error_message();
    if (one.explained) {
      EXPECT_FALSE(status.error_message().empty()) << one.name;
    }
    EXPECT_LT(status.error_message().size(), 1024u) << one.name << ": " << status.error_message();
  }

  // Leaks: warm up (gRPC and malloc settle), then 1000 bad requests.
  constexpr int kRequests = 1000;
  for (int i = 0; i < 200; ++i) call(cases[i % cases.size()]);
  const uint64_t before = RssOf(node.agent_pid());
  const absl::Time begin = absl::Now();
  int wrong = 0;
  for (int i = 0; i < kRequests; ++i) {
    const ApiCase& one = cases[i % cases.size()];
    wrong += call(one).error_code() != one.code;
  }
  const absl::Duration took = absl::Now() - begin;
  const uint64_t after = RssOf(node.agent_pid());
  EXPECT_EQ(wrong, 0);
  std::printf(
      "[figure] bad API requests: %zu kinds, %d more in %s; agent RSS %.1f MiB before, "
      "%.1f MiB after (%+.1f MiB)\n",
      cases.size(), kRequests, absl::FormatDuration(took).c_str(), before / double(kMiB),
      after / double(kMiB), (double(after) - double(before)) / kMiB);
  EXPECT_GT(before, 0u);
  EXPECT_LE(after, before + 4 * kMiB);

  // Nothing crashed, nothing started but the victim, which stops cleanly.
  ExpectAgentsUntouched(cluster, "victim");
  grpc::ClientContext context;
  v1::StopPlanRequest stop;
  stop.set_plan_id("victim");
  v1::StopPlanResponse stopped;
  ASSERT_TRUE(stub->StopPlan(&context, stop, &stopped).ok());
  EXPECT_EQ(stopped.plan().state(), v1::PLAN_STATE_STOPPED);
  EXPECT_TRUE(Eventually([&] { return node.Workers().empty(); }));

  if (kAddressSanitizer) {
    // The agent's LeakSanitizer runs as it exits (bazel/leak_check.h): exit 0, no report.
    node.agent().Signal(SIGTERM);
    EXPECT_EQ(node.agent().Wait(absl::Seconds(30)), std::optional<int>(0));
    EXPECT_THAT(node.agent().Stderr(), Not(HasSubstr("LeakSanitizer")));
  }
}

}  // namespace
}  // namespace testing
}  // namespace memload
