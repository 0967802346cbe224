// The agent's metrics scraped by a real Prometheus server (Debian's `prometheus`), as an
// operator would run it: two agent processes with --metrics-listen, a Prometheus on
// loopback with a config written here (scrape_interval 1s), a 64 MiB plan on one agent,
// then a PromQL query through Prometheus's HTTP API compared with what /proc says.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/node_readers.h"
#include "core/testing/sanitizers.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/http_get.h"
#include "tests/testing/loopback_port.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kPlanId[] = "prometheus-64";
constexpr double kMiB = 1 << 20;

// Polls `condition` until it holds or `timeout` passes; a short pause between looks.
// "metrics on HOST:PORT" from the agent's log; "" on timeout or early exit.
std::string WaitForMetricsAddress(Subprocess& agent, absl::Duration timeout) {
  std::string address;
  Eventually(
      [&] {
        const std::string log = agent.Stderr();
        const size_t at = log.find("metrics on ");
        if (at == std::string::npos) return !agent.running();
        const size_t begin = at + std::strlen("metrics on ");
        address = log.substr(begin, log.find(' ', begin) - begin);
        return true;
      },
      timeout);
  return address;
}

// One series of an instant query: its labels and value.
struct Series {
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Runs `promql` through Prometheus's HTTP API (GET /api/v1/query).
absl::StatusOr<std::vector<Series>> Query(const std::string& prometheus,
                                          const std::string& promql) {
  absl::StatusOr<HttpResponse> response =
      HttpGet(prometheus, "/api/v1/query?query=" + UrlEncode(promql), absl::Seconds(10));
  if (!response.ok()) return response.status();
  google::protobuf::Struct document;
  if (!google::protobuf::util::JsonStringToMessage(response->body, &document).ok() ||
      document.fields().at("status").string_value() != "success") {
    return absl::InternalError(absl::StrCat("query ", promql, " failed: ", response->body));
  }
  std::vector<Series> series;
  for (const google::protobuf::Value& one :
       document.fields().at("data").struct_value().fields().at("result").list_value().values()) {
    Series item;
    for (const auto& [name, value] :
         one.struct_value().fields().at("metric").struct_value().fields()) {
      item.labels[name] = value.string_value();
    }
    // "value": [<unix time>, "<value as a string>"]
    item.value =
        std::stod(one.struct_value().fields().at("value").list_value().values(1).string_value());
    series.push_back(std::move(item));
  }
  return series;
}

TEST(PrometheusTest, ScrapesTwoAgentsAndAgreesWithProc) {
  ASSERT_EQ(access(kPrometheus, X_OK), 0)
      << kPrometheus << " is missing: this test needs a real Prometheus server, Debian's "
      << "`prometheus` package (bash bazel/install_deps.sh installs it)";
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp != nullptr ? tmp : "/tmp";

  // Two agents, metrics on ports the OS picks.
  std::vector<Subprocess> agents;
  std::vector<std::string> grpc_addresses, metrics_addresses;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Subprocess> agent =
        Subprocess::Start({AgentBinary(), "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                           absl::StrCat("--node-name=prom-node-", i + 1), "--reserve=64MiB"});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agents.push_back(*std::move(agent));
    grpc_addresses.push_back(WaitForAgentAddress(agents.back(), absl::Seconds(10)));
    metrics_addresses.push_back(WaitForMetricsAddress(agents.back(), absl::Seconds(10)));
    ASSERT_FALSE(metrics_addresses.back().empty()) << agents.back().Stderr();
  }

  // Prometheus on loopback, scraping both every second.
  const std::string config = dir + "/prometheus.yml";
  {
    std::ofstream file(config);
    file << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
         << "scrape_configs:\n  - job_name: memload\n    static_configs:\n"
         << "      - targets: ['" << metrics_addresses[0] << "', '" << metrics_addresses[1]
         << "']\n";
  }
  const std::string prometheus = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  absl::StatusOr<Subprocess> server = Subprocess::Start(
      {kPrometheus, "--config.file=" + config, "--web.listen-address=" + prometheus,
       "--storage.tsdb.path=" + dir + "/prometheus-data", "--log.level=warn"});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<HttpResponse> ready = HttpGet(prometheus, "/-/ready", absl::Seconds(2));
        return (ready.ok() && ready->status == 200) || !server->running();
      },
      absl::Seconds(30)));
  ASSERT_TRUE(server->running()) << server->Stderr();

  // Both targets scraped and up.
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<std::vector<Series>> up = Query(prometheus, "up{job=\"memload\"} == 1");
        return up.ok() && up->size() == 2;
      },
      absl::Seconds(30)))
      << server->Stderr();

  // 64 MiB, page-touched, on the first agent.
  CommandResult start = RunCommand(
      {CtlBinary(), "start", "--targets=" + grpc_addresses[0], "--kind=retained", "--target=64MiB",
       "--touch=page", "--hold=forever", "--lease=60s", absl::StrCat("--plan-id=", kPlanId)},
      absl::Seconds(30));
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<std::vector<Series>> holding = Query(
            prometheus,
            absl::StrCat("memload_plan_state{plan_id=\"", kPlanId, "\",state=\"holding\"} == 1"));
        return holding.ok() && holding->size() == 1;
      },
      absl::Seconds(30)));
  const std::vector<pid_t> workers = WorkersOf(agents[0].pid());
  ASSERT_EQ(workers.size(), 1u);

  // Prometheus's latest sample against /proc/<worker>/status (RssAnon + RssShmem).
  const std::string promql = absl::StrCat("memload_plan_resident_bytes{plan_id=\"", kPlanId, "\"}");
  double from_proc = 0;
  std::vector<Series> answer;
  const bool agree = Eventually(
      [&] {
        absl::StatusOr<ProcessMemory> memory = ReadProcessMemory(workers[0]);
        if (!memory.ok()) return false;
        from_proc = static_cast<double>(memory->rss_anon_bytes + memory->rss_shmem_bytes);
        absl::StatusOr<std::vector<Series>> result = Query(prometheus, promql);
        if (!result.ok() || result->size() != 1) return false;
        answer = *result;
        return std::fabs(answer[0].value - from_proc) <= 0.05 * from_proc;
      },
      absl::Seconds(30));
  ASSERT_EQ(answer.size(), 1u) << promql;
  const double difference = (answer[0].value - from_proc) / from_proc * 100;
  std::cout << "PromQL " << promql << " = " << answer[0].value / kMiB << " MiB; /proc says "
            << from_proc / kMiB << " MiB; difference " << difference << "%\n";
  EXPECT_TRUE(agree) << "Prometheus " << answer[0].value << " vs /proc " << from_proc;
  EXPECT_GE(answer[0].value, 64 * kMiB);
  EXPECT_EQ(answer[0].labels["node"], "prom-node-1");
  EXPECT_EQ(answer[0].labels["kind"], "retained");
  EXPECT_EQ(answer[0].labels["instance"], metrics_addresses[0]);
  absl::StatusOr<std::vector<Series>> other =
      Query(prometheus, "memload_node_memory_total_bytes{node=\"prom-node-2\"}");
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_EQ(other->size(), 1u);
  EXPECT_GT((*other)[0].value, 0);

  // SIGTERM → exit 0 within the agent's 2 s promise, metrics server included, while
  // Prometheus keeps scraping.
  for (Subprocess& agent : agents) {
    const absl::Time begin = absl::Now();
    agent.Signal(SIGTERM);
    EXPECT_EQ(agent.Wait(absl::Seconds(5)).value_or(-1), 0) << agent.Stderr();
    const absl::Duration took = absl::Now() - begin;
    std::cout << "agent SIGTERM -> exit: " << absl::FormatDuration(took) << "\n";
    // Under TSan (agent and the plan's 64 MiB worker both instrumented, 5-15x slower) this
    // took 2.56 s once on the shared 2-core machine; the exit is still bounded by the 5 s
    // wait above, and the 2 s promise is checked in the unsanitized and ASan passes.
    if (!kThreadSanitizer) {
      EXPECT_LT(took, absl::Seconds(2));
    }
  }
  server->Signal(SIGTERM);
  EXPECT_TRUE(server->Wait(absl::Seconds(20)).has_value());
}

}  // namespace
}  // namespace testing
}  // namespace memload
