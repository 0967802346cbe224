#include "agent/testing/local_agent.h"

#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"

namespace memload {
namespace agent {

AgentOptions LocalAgentOptions() {
  AgentOptions options;
  options.listen_address = "127.0.0.1:0";
  options.worker_binary = kTestWorkerBinary;
  return options;
}

std::chrono::system_clock::time_point CallDeadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(10);
}

void LocalAgentTest::SetUp() {
  absl::StatusOr<std::unique_ptr<AgentServer>> server = AgentServer::Start(Options());
  ASSERT_THAT(server, IsOk());
  server_ = *std::move(server);
  channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  stub_ = v1::Agent::NewStub(channel_);
}

void LocalAgentTest::TearDown() {
  if (server_) server_->Shutdown(absl::Seconds(2));
}

}  // namespace agent
}  // namespace memload
