// AgentServer: a running memload-agent — plan manager, gRPC service, health and
// reflection — behind a small handle.
//
//   AgentOptions options;
//   options.listen_address = "127.0.0.1:0";          // port 0: the OS picks one
//   options.worker_binary = "/usr/local/bin/memload-worker";
//   MEMLOAD_ASSIGN_OR_RETURN(std::unique_ptr<AgentServer> agent, AgentServer::Start(options));
//   std::cout << agent->address();                   // "127.0.0.1:41234"
//   agent->Shutdown(absl::Seconds(2));               // plans stopped, memory returned
//
// Thread-safety: thread-safe. Shutdown() may be called from any thread (e.g. a signal
// thread) while another thread is in Wait().
#ifndef MEMLOAD_AGENT_AGENT_SERVER_H_
#define MEMLOAD_AGENT_AGENT_SERVER_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/agent_service.h"
#include "agent/metrics_server.h"
#include "agent/node_probe.h"
#include "agent/plan_manager.h"
#include "agent/rpc_counters.h"
#include "agent/server_security.h"
#include "agent/worker.h"
#include "core/sync/mutex.h"
#include "grpcpp/grpcpp.h"

namespace memload {
namespace agent {

// A --listen address, checked: HOST:PORT or [IPV6]:PORT (HOST may be empty: every
// interface), PORT 0-65535 in digits only.
struct ListenAddress {
  std::string text;  // As given.
  std::string host;  // Without brackets.
  int port = 0;
};
// InvalidArgument naming the problem (":-1", ":abc", "[::1]:-1", ":99999", "127.0.0.1:").
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

// The highest AgentOptions::max_calls_per_connection accepted.
inline constexpr int kMaxCallsPerConnectionLimit = 100000;

struct AgentOptions {
  std::string listen_address = "127.0.0.1:7070";
  std::string node_name;  // "" = the hostname.
  std::map<std::string, std::string> labels;
  // The memload-worker binary; "" = "memload-worker" beside this executable.
  std::string worker_binary;
  // A cgroup.procs file workers move into (agent/worker_cgroup.h); "" = the agent's cgroup.
  std::string worker_cgroup_procs;
  PlanManagerOptions plans;
  // WatchUsage streams open at once; more are refused with RESOURCE_EXHAUSTED.
  size_t max_watch_streams = 1024;
  // Calls (unary calls and streams) in flight at once on one client connection: HTTP/2's
  // SETTINGS_MAX_CONCURRENT_STREAMS, so a client's further calls wait in its own queue
  // until one ends. Without it one connection could hold any number of calls, and each
  // costs the agent memory (20,000 GetUsage calls on one connection: 19 → 365 MB resident,
  // kept after they ended; with a cap of 100: 24 MB). 1..kMaxCallsPerConnectionLimit.
  int max_calls_per_connection = 100;
  // HOST:PORT of the Prometheus /metrics endpoint; "" = none. Port 0 picks a free one.
  std::string metrics_listen_address;
  // TLS, client certificates, bearer tokens, audit log (agent/server_security.h). The
  // default, plaintext without tokens, is refused on a non-loopback address.
  ServerSecurityOptions security;
  // Test seams: when set, used instead of the real /proc reader and process launcher.
  std::shared_ptr<NodeProbe> probe;
  std::shared_ptr<WorkerLauncher> launcher;
};

class AgentServer {
 public:
  // Starts everything and binds the listening address. InvalidArgument for a bad address
  // or options; Unavailable when the address cannot be bound — in use by another process
  // (the port is bound without SO_REUSEPORT, so a second agent cannot share it) or not
  // local; NotFound when the worker binary is missing.
  static absl::StatusOr<std::unique_ptr<AgentServer>> Start(AgentOptions options);

  // What Start checks before it serves — the plan options, the listen address (parsed, and
  // bound for a moment: a port in use fails here too), security files and the plaintext
  // rule, the worker binary, the metrics address — for `memload-agent --check-config`.
  static absl::Status CheckConfig(const AgentOptions& options);
  ~AgentServer();  // Shutdown(2 s).

  // The bound address, with the real port ("127.0.0.1:41234").
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // The bound metrics address ("127.0.0.1:9470"); "" without metrics.
  std::string metrics_address() const { return metrics_ ? metrics_->address() : ""; }
  const v1::NodeInfo& identity() const { return identity_; }
  // ServerSecurity::summary() and warning() of the bound port, for the start log.
  const std::string& security_summary() const { return security_summary_; }
  const std::string& security_warning() const { return security_warning_; }
  PlanManager& plans() { return *manager_; }
  // WatchUsage streams open now.
  size_t open_watches() const { return service_->open_watches(); }
  // WatchUsage streams whose client has not taken a message for longer than its interval.
  size_t stalled_watches() const { return service_->stalled_watches(); }

  // Stops every plan (their memory returned), ends every WatchUsage stream, then the
  // server; in-flight RPCs get until `deadline` from now to finish, then gRPC cancels them.
  // Returns once every call has ended: past the deadline by the time gRPC's threads take to
  // end the cancelled calls (proportional to their number; seconds for hundreds of streams
  // on a starved machine). Idempotent.
  void Shutdown(absl::Duration deadline);
  // Blocks until Shutdown() has completed.
  void Wait();

 private:
  AgentServer() = default;

  std::shared_ptr<NodeProbe> probe_;
  std::shared_ptr<WorkerLauncher> launcher_;
  std::unique_ptr<PlanManager> manager_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<RpcCounters> rpc_counters_;
  std::unique_ptr<MetricsServer> metrics_;  // Null without --metrics-listen.
  // Closed once the server has shut down (its last counts written); null without tokens.
  std::shared_ptr<RefusedCallAudit> refused_call_audit_;
  v1::NodeInfo identity_;
  std::string address_;
  std::string security_summary_;
  std::string security_warning_;
  int port_ = 0;
  // Under TSan: where every call's ops hand their thread's past over (TsanHandOff), which
  // Shutdown takes over once the server has shut down (agent_server.cc); otherwise unused.
  char calls_ended_ = 0;
  Mutex shutdown_mutex_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mutex_) = false;
  std::condition_variable shut_down_cv_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_AGENT_SERVER_H_
