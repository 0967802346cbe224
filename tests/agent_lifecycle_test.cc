// The in-process agent (AgentServer) started and stopped many times with everything a
// deployment turns on — mutual TLS, bearer tokens (gRPC's auth-metadata processor), the
// audit and RPC-counting interceptors, /metrics — while clients are busy at the moment it
// stops: unary calls in flight from several threads (good, read-only and wrong tokens), a
// WatchUsage stream and a health Watch stream open. Then the process exits normally (no
// _exit), so static destructors run after gRPC's threads.
//
// Regression test of issue 17: it died with glibc's "double free or corruption" in 5 of 30
// runs (ASan: "attempting double-free" in grpc_cq_internal_unref, or a hang, 3 of 3). The
// cause: a caller's GrpcAgentClient call, freed inside its callback, dropped the process's
// last channel on a thread of gRPC's process-wide callback queue, which then took itself
// down (controller/grpc_agent_client.cc, Releaser). bazel/test.sh runs it unsanitized, under
// ASan and under TSan.
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/agent_server.h"
#include "controller/client_security.h"
#include "controller/grpc_agent_client.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/memload.grpc.pb.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_certs.h"

namespace memload {
namespace testing {
namespace {

constexpr char kFullToken[] = "full-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
constexpr char kReadOnlyToken[] = "reader-00112233445566778899aabbccddeeff";
constexpr int kCycles = 25;
constexpr int kCallerThreads = 3;

struct Pki {
  TestPki pki;
  std::string tokens;
};

const Pki& TestFiles() {
  static const Pki* files = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/lifecycle-pki");
    mkdir(dir.c_str(), 0700);
    absl::StatusOr<TestPki> pki = MakeTestPki(dir);
    EXPECT_THAT(pki, IsOk());
    auto* made = new Pki{pki.ok() ? *pki : TestPki(), dir + "/tokens"};
    WriteFile(made->tokens, absl::StrCat(kFullToken, "\n", kReadOnlyToken, ":read-only\n"));
    return made;
  }();
  return *files;
}

std::unique_ptr<agent::AgentServer> StartSecureAgent(std::atomic<int>* audit_lines) {
  const Pki& files = TestFiles();
  agent::AgentOptions options;
  options.listen_address = "127.0.0.1:0";
  options.node_name = "lifecycle";
  options.worker_binary = WorkerBinary();
  options.metrics_listen_address = "127.0.0.1:0";
  options.security.tls_cert_file = files.pki.server.cert;
  options.security.tls_key_file = files.pki.server.key;
  options.security.tls_client_ca_file = files.pki.ca_cert;
  options.security.auth_token_file = files.tokens;
  options.security.audit_log = [audit_lines](const std::string&) { ++*audit_lines; };
  absl::StatusOr<std::unique_ptr<agent::AgentServer>> server = agent::AgentServer::Start(options);
  EXPECT_THAT(server, IsOk());
  return server.ok() ? *std::move(server) : nullptr;
}

controller::GrpcClientOptions ClientOptions(const std::string& token) {
  const Pki& files = TestFiles();
  controller::ClientSecurityOptions security;
  security.tls_ca_file = files.pki.ca_cert;
  security.tls_cert_file = files.pki.client.cert;
  security.tls_key_file = files.pki.client.key;
  security.token = token;
  controller::GrpcClientOptions options;
  EXPECT_THAT(controller::ApplyClientSecurity(security, &options), IsOk());
  return options;
}

TEST(AgentLifecycleTest, StartsAndStopsWhileClientsAreBusy) {
  std::atomic<int> audit_lines{0};
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE(absl::StrCat("cycle ", cycle));
    std::unique_ptr<agent::AgentServer> server = StartSecureAgent(&audit_lines);
    ASSERT_NE(server, nullptr);
    const std::string target = server->address();

    // Callers hammer the agent until it stops: reads, a mutating call refused to a
    // read-only token (audited), and a wrong token (refused by the token check).
    std::atomic<bool> stop{false};
    // Rounds answered; the test waits until every caller has had one.
    std::mutex answered_mutex;
    std::condition_variable answered_changed;
    int answered = 0;  // Guarded by answered_mutex.
    std::vector<std::thread> callers;
    const std::string tokens[] = {kFullToken, kReadOnlyToken, "wrong-token"};
    for (int i = 0; i < kCallerThreads; ++i) {
      callers.emplace_back([&, token = tokens[i % 3]] {
        controller::GrpcAgentClient client(target, ClientOptions(token));
        while (!stop.load()) {
          std::promise<void> usage_done;
          client.GetUsage(v1::GetUsageRequest(), absl::Seconds(2),
                          [&](absl::StatusOr<v1::NodeUsage>) { usage_done.set_value(); });
          v1::StopPlanRequest request;
          request.set_plan_id("no-such-plan");
          std::promise<void> stop_done;
          client.StopPlan(request, absl::Seconds(2),
                          [&](absl::StatusOr<v1::StopPlanResponse>) { stop_done.set_value(); });
          usage_done.get_future().wait();
          stop_done.get_future().wait();
          std::lock_guard<std::mutex> lock(answered_mutex);
          ++answered;
          answered_changed.notify_all();
        }
      });
    }
    // Open streams at the moment of shutdown.
    controller::GrpcAgentClient watcher(target, ClientOptions(kReadOnlyToken));
    std::promise<void> first_usage;
    std::atomic<bool> got_usage{false};
    std::unique_ptr<controller::UsageWatch> watch = watcher.WatchUsage(
        v1::WatchUsageRequest(),
        [&](const v1::NodeUsage&) {
          if (!got_usage.exchange(true)) first_usage.set_value();
        },
        [](absl::Status) {});
    ASSERT_EQ(first_usage.get_future().wait_for(std::chrono::seconds(30)),
              std::future_status::ready);
    {
      std::unique_lock<std::mutex> lock(answered_mutex);
      ASSERT_TRUE(answered_changed.wait_for(lock, std::chrono::seconds(30),
                                            [&] { return answered >= kCallerThreads; }));
    }

    // Alternate the two ways an agent ends: an explicit Shutdown, and the destructor alone.
    if (cycle % 2 == 0) server->Shutdown(absl::Milliseconds(200));
    server.reset();
    stop = true;
    for (std::thread& caller : callers) caller.join();
    watch.reset();
  }
  EXPECT_GT(audit_lines.load(), 0);
}

}  // namespace
}  // namespace testing
}  // namespace memload
