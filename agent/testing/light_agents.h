// LightAgentHost: many agent endpoints for the price of one, for fleet-scale fan-out
// measurements (controller/fanout_benchmark) on a single machine.
//
// One grpc::Server listens on `ports` loopback ports (127.0.0.1:0 each, the OS picks) and
// serves the real AgentService over a real PlanManager whose workers are fakes (no-op
// plans, agent/testing/fake_worker.h) and whose node is a FakeNodeProbe. Every port is a
// separate target to a client (its own connection, its own calls), but the host has one
// service, one plan manager thread and one gRPC thread pool: a target costs the host two
// fds (listener + accepted connection), not a server's worth of threads. Full AgentServers
// (health, reflection, sync thread pools, a plan manager each) cost ~10 threads apiece;
// 10,000 of them do not fit a small machine.
//
// What differs from real agents: the targets of one host share one identity (node name,
// incarnation) and one plan table, so a plan id started on all of them is one plan there
// (the later starts are idempotent repeats, the later stops answer with the ended plan's
// status) — the same calls on the wire, cheaper work behind them.
//
//   LightAgentOptions options;
//   options.ports = 2500;
//   MEMLOAD_ASSIGN_OR_RETURN(std::unique_ptr<LightAgentHost> host, LightAgentHost::Start(options));
//   for (int port : host->ports()) ...   // "127.0.0.1:<port>" is one target
//
// Thread-safety: thread-safe; Shutdown() is idempotent (the destructor calls it).
#ifndef MEMLOAD_AGENT_TESTING_LIGHT_AGENTS_H_
#define MEMLOAD_AGENT_TESTING_LIGHT_AGENTS_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/agent_service.h"
#include "agent/plan_manager.h"
#include "agent/testing/fake_worker.h"
#include "core/sync/mutex.h"
#include "grpcpp/grpcpp.h"

namespace memload {
namespace agent {

struct LightAgentOptions {
  int ports = 1;  // Listening ports (targets), 1..kMaxLightAgentPorts.
  std::string node_name = "light";
  // Bound on the threads the server's synchronous machinery may use (grpc::ResourceQuota);
  // the callback service itself runs on gRPC's shared, fixed pool.
  int max_threads = 4;
};

// More ports than this is a mistake (each is two fds on this side, one on the client's).
inline constexpr int kMaxLightAgentPorts = 20000;

class LightAgentHost {
 public:
  // InvalidArgument for a port count outside 1..kMaxLightAgentPorts; Unavailable when the
  // server cannot bind (e.g. out of fds: see `ulimit -n`).
  static absl::StatusOr<std::unique_ptr<LightAgentHost>> Start(const LightAgentOptions& options);
  ~LightAgentHost();
  LightAgentHost(const LightAgentHost&) = delete;
  LightAgentHost& operator=(const LightAgentHost&) = delete;

  // The bound ports, in the order they were added.
  const std::vector<int>& ports() const { return ports_; }
  // Plans the shared plan manager has started (idempotent repeats are not counted).
  uint64_t plans_started() const { return manager_->plans_started(); }

  // Stops the plans, then the server (within `deadline`).
  void Shutdown(absl::Duration deadline = absl::Seconds(2));

 private:
  LightAgentHost() = default;

  FakeNodeProbe probe_{64ull << 30, 60ull << 30};
  FakeWorkerLauncher launcher_;
  std::unique_ptr<PlanManager> manager_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<int> ports_;
  Mutex shutdown_mutex_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mutex_) = false;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_TESTING_LIGHT_AGENTS_H_
