// A real memload agent inside a test: an AgentServer on 127.0.0.1:0 (the OS picks the port)
// running the real memload-worker from the test's runfiles, and an insecure client of it.
//
//   class NodeTest : public LocalAgentTest {
//    protected:
//     AgentOptions Options() override {
//       AgentOptions options = LocalAgentOptions();
//       options.node_name = "node-a";
//       return options;
//     }
//   };
//
//   TEST_F(NodeTest, Answers) {
//     grpc::ClientContext context;
//     context.set_deadline(CallDeadline());
//     v1::NodeInfo info;
//     EXPECT_TRUE(stub_->GetNodeInfo(&context, v1::GetNodeInfoRequest(), &info).ok());
//   }
//
// Thread-safety: a fixture, used from the test's thread; the agent itself is thread-safe.
#ifndef MEMLOAD_AGENT_TESTING_LOCAL_AGENT_H_
#define MEMLOAD_AGENT_TESTING_LOCAL_AGENT_H_

#include <chrono>
#include <memory>

#include "agent/agent_server.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/memload.grpc.pb.h"

namespace memload {
namespace agent {

// The worker binary, relative to the runfiles' root (Bazel runs tests from there).
inline constexpr char kTestWorkerBinary[] = "agent/memload-worker";

// An agent on 127.0.0.1:0 with kTestWorkerBinary; the rest is AgentOptions' defaults.
AgentOptions LocalAgentOptions();

// The deadline of one unary call of a test: 10 s from now.
std::chrono::system_clock::time_point CallDeadline();

// Starts an agent with Options() before each test (the test fails at once if it does not
// start), connects `channel_` and `stub_` to it, and shuts it down (2 s deadline) after.
class LocalAgentTest : public ::testing::Test {
 protected:
  // The options the agent starts with; LocalAgentOptions() unless overridden.
  virtual AgentOptions Options() { return LocalAgentOptions(); }

  void SetUp() override;
  void TearDown() override;

  std::unique_ptr<AgentServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_TESTING_LOCAL_AGENT_H_
