#include "agent/testing/light_agents.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace memload {
namespace agent {

absl::StatusOr<std::unique_ptr<LightAgentHost>> LightAgentHost::Start(
    const LightAgentOptions& options) {
  if (options.ports < 1 || options.ports > kMaxLightAgentPorts) {
    return absl::InvalidArgumentError(
        absl::StrCat("light agents: ", options.ports, " ports; want 1..", kMaxLightAgentPorts));
  }
  std::unique_ptr<LightAgentHost> host(new LightAgentHost());
  PlanManagerOptions plans;
  // The fake workers need no frequent look; a second keeps the host's idle cost near zero.
  plans.tick = absl::Seconds(1);
  host->manager_ = std::make_unique<PlanManager>(plans, &host->probe_, &host->launcher_);
  v1::NodeInfo identity;
  identity.set_node_name(options.node_name);
  identity.set_incarnation(absl::StrCat(options.node_name, "-", absl::ToUnixNanos(absl::Now())));
  host->service_ =
      std::make_unique<AgentService>(host->manager_.get(), &host->probe_, std::move(identity));

  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("light-agents");
  quota.SetMaxThreads(std::max(2, options.max_threads));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // AddListeningPort keeps a pointer to where the bound port goes: size the table first.
  host->ports_.assign(options.ports, 0);
  for (int& port : host->ports_) {
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  }
  builder.RegisterService(host->service_.get());
  host->server_ = builder.BuildAndStart();
  if (host->server_ == nullptr) {
    host->manager_->Shutdown();
    return absl::UnavailableError(absl::StrCat(
        "light agents: cannot listen on ", options.ports,
        " ports of 127.0.0.1 (out of fds? each port is one, each connection one more)"));
  }
  for (int port : host->ports_) {
    if (port == 0) {
      host->Shutdown(absl::ZeroDuration());
      return absl::UnavailableError("light agents: a port did not bind");
    }
  }
  host->service_->set_listen_address(absl::StrCat("127.0.0.1:", host->ports_.front()));
  return host;
}

LightAgentHost::~LightAgentHost() { Shutdown(); }

void LightAgentHost::Shutdown(absl::Duration deadline) {
  MutexLock lock(&shutdown_mutex_);
  if (shut_down_) return;
  shut_down_ = true;
  if (manager_) manager_->Shutdown();
  if (service_) service_->StopWatches(std::min(absl::Milliseconds(250), deadline / 4));
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(absl::ToInt64Milliseconds(deadline)));
  }
}

}  // namespace agent
}  // namespace memload
