// The metrics endpoint over real HTTP on 127.0.0.1:0: MetricsServer alone, then a whole
// AgentServer whose /metrics reflects its plans and RPCs.
#include "agent/metrics_server.h"

#include <civetweb.h>

#include <atomic>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/agent_server.h"
#include "agent/testing/local_agent.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/memload.grpc.pb.h"
#include "tests/testing/http_get.h"
#include "tests/testing/sizes.h"

namespace memload {
namespace agent {
namespace {

using ::memload::testing::HttpGet;
using ::memload::testing::HttpResponse;
using ::memload::testing::kMiB;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The value of the sample line that starts with `series` ("name{labels}"), if any.
std::optional<double> Sample(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      double value = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
    }
  }
  return std::nullopt;
}

TEST(MetricsServerTest, ServesMetricsAndNothingElse) {
  std::atomic<int> renders{0};
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", [&renders] {
        ++renders;
        return std::string("# HELP x X.\n# TYPE x gauge\nx 1\n");
      });
  ASSERT_THAT(server, IsOk());
  EXPECT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), absl::StrCat("127.0.0.1:", (*server)->port()));

  absl::StatusOr<HttpResponse> metrics =
      HttpGet((*server)->address(), "/metrics", absl::Seconds(10));
  ASSERT_THAT(metrics, IsOk());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics->body, "# HELP x X.\n# TYPE x gauge\nx 1\n");
  EXPECT_EQ(renders.load(), 1);

  absl::StatusOr<HttpResponse> other = HttpGet((*server)->address(), "/", absl::Seconds(10));
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ(other->status, 404);
  EXPECT_EQ(renders.load(), 1);

  // civetweb alone takes ~2 s to stop; the poke makes it prompt.
  const absl::Time begin = absl::Now();
  (*server)->Shutdown();
  EXPECT_LT(absl::Now() - begin, absl::Milliseconds(500));
  EXPECT_THAT(HttpGet((*server)->address(), "/metrics", absl::Seconds(2)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("refused")));
  (*server)->Shutdown();  // Idempotent.
}

TEST(MetricsServerTest, RefusesBadAddresses) {
  auto render = [] { return std::string(); };
  for (const char* bad : {"", "9470", ":9470", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000"}) {
    EXPECT_THAT(MetricsServer::Start(bad, render),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HOST:PORT")))
        << bad;
  }
  if (mg_check_feature(8) == 0) {  // Debian's civetweb: IPv4 only, and it says so.
    EXPECT_THAT(MetricsServer::Start("[::]:0", render),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0.0.0.0:0")));
  }
  absl::StatusOr<std::unique_ptr<MetricsServer>> first =
      MetricsServer::Start("127.0.0.1:0", render);
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(MetricsServer::Start((*first)->address(), render),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr((*first)->address())));
}

class AgentMetricsEndpointTest : public LocalAgentTest {
 protected:
  AgentOptions Options() override {
    AgentOptions options = LocalAgentOptions();
    options.metrics_listen_address = "127.0.0.1:0";
    options.node_name = "metrics-node";
    options.plans.reserve_bytes = 64 * kMiB;
    options.plans.tick = absl::Milliseconds(20);
    return options;
  }

  std::string Scrape() {
    absl::StatusOr<HttpResponse> response =
        HttpGet(server_->metrics_address(), "/metrics", absl::Seconds(10));
    EXPECT_THAT(response, IsOk());
    if (!response.ok()) return "";
    EXPECT_EQ(response->status, 200);
    return response->body;
  }

  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(CallDeadline());
    return context;
  }
};

TEST_F(AgentMetricsEndpointTest, ShowsNodePlansAndRpcs) {
  ASSERT_THAT(server_->metrics_address(), StartsWith("127.0.0.1:"));
  const std::string node = "{node=\"metrics-node\"}";
  std::string text = Scrape();
  EXPECT_GT(Sample(text, "memload_node_memory_total_bytes" + node).value_or(0), 0);
  EXPECT_GT(Sample(text, "memload_node_memory_available_bytes" + node).value_or(0), 0);
  EXPECT_GT(Sample(text, "memload_agent_resident_bytes" + node).value_or(0), 0);
  EXPECT_EQ(Sample(text, "memload_plans_started_total" + node), 0);
  EXPECT_THAT(text, HasSubstr("# TYPE memload_plans_started_total counter\n"));

  // RPCs are counted by method and code.
  v1::NodeUsage usage;
  ASSERT_TRUE(stub_->GetUsage(Context().get(), v1::GetUsageRequest(), &usage).ok());
  v1::StopPlanRequest stop;
  stop.set_plan_id("nobody");
  v1::StopPlanResponse stopped;
  EXPECT_EQ(stub_->StopPlan(Context().get(), stop, &stopped).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A plan of 8 MiB shows up with its numbers and state.
  v1::StartPlanRequest start;
  start.mutable_spec()->set_plan_id("metered");
  v1::Phase* phase = start.mutable_spec()->mutable_retained()->add_phases();
  phase->mutable_target()->set_bytes(8 * kMiB);
  phase->set_hold_forever(true);
  v1::StartPlanResponse started;
  ASSERT_TRUE(stub_->StartPlan(Context().get(), start, &started).ok());

  const std::string plan = "{node=\"metrics-node\",plan_id=\"metered\",kind=\"retained\"}";
  const std::string holding =
      "{node=\"metrics-node\",plan_id=\"metered\",kind=\"retained\",state=\"holding\"}";
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  do {
    text = Scrape();
  } while (Sample(text, "memload_plan_state" + holding) != 1 && absl::Now() < deadline);
  EXPECT_EQ(Sample(text, "memload_plan_state" + holding), 1) << text;
  EXPECT_EQ(Sample(text, "memload_plan_target_bytes" + plan), 8 * kMiB);
  EXPECT_EQ(Sample(text, "memload_plan_payload_bytes" + plan), 8 * kMiB);
  EXPECT_GE(Sample(text, "memload_plan_resident_bytes" + plan).value_or(0), 8 * kMiB);
  EXPECT_EQ(Sample(text, "memload_plan_allocations_total" + plan), 8);
  EXPECT_EQ(Sample(text, "memload_plans_started_total" + node), 1);
  EXPECT_EQ(Sample(text,
                   "memload_rpcs_total{node=\"metrics-node\",method=\"memload.v1.Agent/"
                   "GetUsage\",code=\"OK\"}"),
            1);
  EXPECT_EQ(Sample(text,
                   "memload_rpcs_total{node=\"metrics-node\",method=\"memload.v1.Agent/"
                   "StopPlan\",code=\"NOT_FOUND\"}"),
            1);
  EXPECT_EQ(Sample(text,
                   "memload_rpcs_total{node=\"metrics-node\",method=\"memload.v1.Agent/"
                   "StartPlan\",code=\"OK\"}"),
            1);

  // Shutting the agent down stops plans and the metrics endpoint, well within 2 s.
  const std::string address = server_->metrics_address();
  const absl::Time begin = absl::Now();
  server_->Shutdown(absl::Seconds(1));
  EXPECT_LT(absl::Now() - begin, absl::Seconds(1));
  EXPECT_THAT(HttpGet(address, "/metrics", absl::Seconds(2)),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

TEST(AgentServerMetricsTest, BadMetricsAddressFailsStart) {
  AgentOptions options = LocalAgentOptions();
  options.metrics_listen_address = "nonsense";
  EXPECT_THAT(AgentServer::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nonsense")));
}

}  // namespace
}  // namespace agent
}  // namespace memload
