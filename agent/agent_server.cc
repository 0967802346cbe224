#include "agent/agent_server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "agent/agent_metrics.h"
#include "agent/cgroup_target.h"
#include "agent/prometheus_text.h"
#include "agent/worker_process.h"
#include "bazel/tsan_annotations.h"
#include "core/base/version.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "proto/proto_time.h"

namespace memload {
namespace agent {
namespace {

std::string NewIncarnation() {
  std::random_device random;
  return absl::StrFormat("%08x%08x%08x%08x", random(), random(), random(), random());
}

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

std::string DefaultWorkerBinary() {
  char self[4096] = {};
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) return "memload-worker";
  std::string path(self, length);
  return path.substr(0, path.rfind('/') + 1) + "memload-worker";
}

// The worker binary the options name (or the one beside this executable), if it can run.
absl::StatusOr<std::string> WorkerBinary(const AgentOptions& options) {
  const std::string worker =
      options.worker_binary.empty() ? DefaultWorkerBinary() : options.worker_binary;
  if (access(worker.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("worker binary ", worker,
                                            " is missing or not executable (see --worker-binary)"));
  }
  return worker;
}

// The largest request the agent accepts (a plan spec is at most 16 KiB, proto/plan_rules.h).
constexpr int kMaxRequestBytes = 1 << 20;

// Tries to bind `address` (no SO_REUSEPORT), then lets it go: an address in use or not
// local is refused before the server starts, and by --check-config.
absl::Status CheckBindable(const ListenAddress& address) {
  if (address.port == 0) return absl::OkStatus();
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string& host = address.host;
  const int resolved = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                                   std::to_string(address.port).c_str(), &hints, &found);
  if (resolved != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=", address.text, ": host \"", host, "\": ", gai_strerror(resolved)));
  }
  absl::Status status = absl::OkStatus();
  for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    const int fd = socket(entry->ai_family, entry->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, entry->ai_addr, entry->ai_addrlen) != 0) {
      const int error = errno;
      status = absl::UnavailableError(absl::StrCat(
          "cannot listen on ", address.text, ": ", std::strerror(error),
          error == EADDRINUSE ? " (another process, perhaps another memload-agent, serves it)"
                              : ""));
    }
    close(fd);
    if (!status.ok()) break;
  }
  freeaddrinfo(found);
  return status;
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=\"", text, "\": ", why,
                     "; want HOST:PORT or [IPV6]:PORT, port 0-65535 (0 picks a free one)"));
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return invalid("no port");
  ListenAddress address;
  address.text = text;
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return invalid("unbalanced brackets");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return invalid("an IPv6 host needs brackets");
  }
  if (host.find_first_of(" []/") != std::string::npos) return invalid("bad host");
  address.host = host;
  uint32_t value = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(port, &value) || value > 65535) {
    return invalid(absl::StrCat("port \"", port, "\" is not a number in 0-65535"));
  }
  address.port = static_cast<int>(value);
  return address;
}

namespace {

// What Start takes from its options before it starts anything, checked in the order both
// CheckConfig and Start report a problem: the plan limits, the listen address (parsed, then
// free to bind), the security files, then the worker binary (left empty when the options
// give a launcher).
struct StartConfig {
  ListenAddress listen;
  ServerSecurity security;
  std::string worker;
};

absl::StatusOr<StartConfig> CheckStartConfig(const AgentOptions& options) {
  if (absl::Status plans = CheckPlanManagerOptions(options.plans); !plans.ok()) return plans;
  if (options.max_calls_per_connection < 1 ||
      options.max_calls_per_connection > kMaxCallsPerConnectionLimit) {
    return absl::InvalidArgumentError(absl::StrCat("--max-calls-per-connection must be 1..",
                                                   kMaxCallsPerConnectionLimit, ", got ",
                                                   options.max_calls_per_connection));
  }
  absl::StatusOr<ListenAddress> listen = ParseListenAddress(options.listen_address);
  if (!listen.ok()) return listen.status();
  if (absl::Status bindable = CheckBindable(*listen); !bindable.ok()) return bindable;
  absl::StatusOr<ServerSecurity> security =
      ServerSecurity::Load(options.security, options.listen_address);
  if (!security.ok()) return security.status();
  std::string worker;
  if (!options.launcher) {
    absl::StatusOr<std::string> binary = WorkerBinary(options);
    if (!binary.ok()) return binary.status();
    worker = *std::move(binary);
  }
  return StartConfig{*std::move(listen), *std::move(security), std::move(worker)};
}

// Tells ThreadSanitizer what gRPC guarantees: grpc::Server::Shutdown returns only once
// every callback call has ended, so the server may be freed right after it (issue 17).
//
// The report (agent_lifecycle_test, once): ~AgentServer's free of the grpc::Server (server_'s
// deleting destructor; 304 bytes) against an 8-byte read of its offset 0 by a gRPC thread —
// the CallHook vtable pointer (grpcpp/server.h: Server : ServerInterface : CallHook). The
// instrumented code that reads it is gRPC's header code compiled into ours:
// internal::Call::PerformOps (`call_hook_->PerformOpsOnCall`), which a server reactor's
// Finish, SendInitialMetadata and StartWrite call. The order, all inside Debian's 1.51.1
// libgrpc++ and libabsl (not instrumented, so TSan cannot see it):
//   1. PerformOps reads the pointer, then PerformOpsOnCall -> FillOps runs the call's
//      interceptors' send hooks on the same thread and only then starts the batch;
//   2. the call's OnDone runs after its last batch completes, and then CallOnDone calls
//      `call_requester` (server_callback_handlers.h), which deletes the CallbackRequest,
//      dropping the reference on the server that "each running callback RPC" holds
//      (server.h, UnrefWithPossibleNotify);
//   3. Server::Shutdown waits for every such reference (UnrefAndWaitLocked), also after its
//      deadline (then it cancels the calls and still waits).
// So our order is right (Shutdown before the free; services and the plan manager outlive
// the server): what is missing is only TSan's view of 1-3. This interceptor hands its
// thread's past over to `order` at every hook (step 1: after the read, before the batch
// starts) and when it is destroyed: that is on the thread that ran the reactor's OnDone,
// after it — call_requester deletes the CallbackRequest, whose destructor destroys the
// call's context (and the interceptors with it) before UnrefWithPossibleNotify (1.51.1's
// ~CallbackRequest<CallbackServerContext>, libgrpc++.so.1.51 0xace70: the context's
// destructor at 0xacf26, then the unref at 0xacecf). So what OnDone did is covered too (a
// second report, s16: ~AgentService's condition variable destroyed against a watch's OnDone
// notifying it). Shutdown takes it all over once the server's Shutdown has returned. Under
// TSan only; the cost is one more interceptor per call (notes/s16/tsan2.md).
#ifdef MEMLOAD_THREAD_SANITIZER
class CallHandOffInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit CallHandOffInterceptor(const void* order) : order_(order) {}
  ~CallHandOffInterceptor() override { TsanHandOff(order_); }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    TsanHandOff(order_);
    methods->Proceed();
  }

 private:
  const void* const order_;
};

class CallHandOffInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallHandOffInterceptorFactory(const void* order) : order_(order) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new CallHandOffInterceptor(order_);
  }

 private:
  const void* const order_;
};
#endif

}  // namespace

absl::Status AgentServer::CheckConfig(const AgentOptions& options) {
  if (absl::StatusOr<StartConfig> config = CheckStartConfig(options); !config.ok()) {
    return config.status();
  }
  if (!options.metrics_listen_address.empty()) {
    absl::StatusOr<int> port = MetricsServer::CheckAddress(options.metrics_listen_address);
    if (!port.ok()) return port.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Start(AgentOptions options) {
  // Every check first: a refused port, a bad certificate or a missing worker starts nothing.
  absl::StatusOr<StartConfig> config = CheckStartConfig(options);
  if (!config.ok()) return config.status();
  const ListenAddress& listen = config->listen;
  const ServerSecurity& security = config->security;
  std::unique_ptr<AgentServer> agent(new AgentServer());
  agent->security_summary_ = security.summary();
  agent->security_warning_ = security.warning();
  agent->refused_call_audit_ = security.refused_call_audit();
  agent->probe_ = options.probe ? options.probe : std::make_shared<SystemNodeProbe>();
  if (options.launcher) {
    agent->launcher_ = options.launcher;
  } else {
    agent->launcher_ = std::make_shared<WorkerProcessLauncher>(
        WorkerProcessOptions{config->worker, options.worker_cgroup_procs});
  }
  absl::StatusOr<NodeMemory> node = agent->probe_->Read();
  if (!node.ok()) return node.status();
  if (options.plans.cgroup_dir.empty() && node->cgroup.has_value()) {
    options.plans.cgroup_dir = node->cgroup->path;
  }

  v1::NodeInfo& identity = agent->identity_;
  identity.set_node_name(options.node_name.empty() ? Hostname() : options.node_name);
  for (const auto& [key, value] : options.labels) (*identity.mutable_labels())[key] = value;
  identity.set_incarnation(NewIncarnation());
  identity.set_version(kVersion);
  ToProtoTimestamp(absl::Now(), identity.mutable_start_time());
  identity.set_max_memory_bytes(options.plans.max_memory_bytes);
  identity.set_reserve_bytes(options.plans.reserve_bytes);
  ToProtoDuration(options.plans.default_lease, identity.mutable_default_lease());

  PlanManagerOptions plans = options.plans;
  if (plans.target_resolver == nullptr) {
    // Placement resolves against the real cgroup tree and /proc unless told otherwise.
    plans.target_resolver = std::make_shared<const CgroupTargetResolver>(CgroupTargetOptions{});
  }
  agent->manager_ =
      std::make_unique<PlanManager>(std::move(plans), agent->probe_.get(), agent->launcher_.get());
  AgentServiceOptions service_options;
  service_options.max_watch_streams = options.max_watch_streams;
  agent->service_ = std::make_unique<AgentService>(agent->manager_.get(), agent->probe_.get(),
                                                   identity, service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second agent on the same address would then serve
  // too, the kernel splitting clients between them. One address, one agent.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_calls_per_connection);
  builder.AddListeningPort(options.listen_address, security.credentials(), &agent->port_);
  builder.RegisterService(agent->service_.get());
  // Every RPC of every service, counted in one place for memload_rpcs_total.
  agent->rpc_counters_ = std::make_shared<RpcCounters>();
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> counting;
  counting.push_back(std::make_unique<RpcCountingInterceptorFactory>(agent->rpc_counters_));
  // Mutating calls, with who made them, in the audit log (agent/audit_log.h).
  counting.push_back(security.NewAuditInterceptorFactory());
#ifdef MEMLOAD_THREAD_SANITIZER
  counting.push_back(std::make_unique<CallHandOffInterceptorFactory>(&agent->calls_ended_));
#endif
  builder.experimental().SetInterceptorCreators(std::move(counting));
  agent->server_ = builder.BuildAndStart();
  if (agent->server_ == nullptr || agent->port_ == 0) {
    // ~AgentServer then shuts down only what exists (no server).
    return absl::UnavailableError(
        absl::StrCat("cannot listen on \"", options.listen_address,
                     "\" (is the address valid, local, and the port free?)"));
  }
  const std::string host = options.listen_address.substr(0, options.listen_address.rfind(':'));
  agent->address_ = absl::StrCat(host, ":", agent->port_);
  if (listen.port != 0 && agent->port_ != listen.port) {
    agent->Shutdown(absl::ZeroDuration());
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address,
                                               ": gRPC bound port ", agent->port_, " instead"));
  }
  identity.set_listen_address(agent->address_);
  // The service keeps its own copy of the identity: give it the bound address too.
  agent->service_->set_listen_address(agent->address_);
  if (!options.metrics_listen_address.empty()) {
    AgentServer* self = agent.get();
    absl::StatusOr<std::unique_ptr<MetricsServer>> metrics =
        MetricsServer::Start(options.metrics_listen_address, [self, node = identity.node_name()] {
          return FormatPrometheusText(AgentMetricFamilies(TakeAgentMetricsSnapshot(
              node, *self->probe_, *self->manager_, *self->rpc_counters_)));
        });
    if (!metrics.ok()) {
      agent->Shutdown(absl::ZeroDuration());
      return metrics.status();
    }
    agent->metrics_ = *std::move(metrics);
  }
  return agent;
}

AgentServer::~AgentServer() { Shutdown(absl::Seconds(2)); }

void AgentServer::Shutdown(absl::Duration deadline) {
  MutexLock lock(&shutdown_mutex_);
  if (shut_down_) return;
  const absl::Time until = absl::Now() + deadline;
  // Plans first: new starts are refused, pending stops are answered, memory goes back.
  if (manager_) manager_->Shutdown();
  if (metrics_) metrics_->Shutdown();  // ~10 ms (see metrics_server.h).
  // Watch streams would otherwise hold the server's shutdown until the deadline. A client
  // that reads gets UNAVAILABLE at once; one that stopped reading is cancelled after a grace
  // (a quarter of the deadline, at most 250 ms).
  if (service_) {
    service_->StopWatches(
        std::min(absl::Milliseconds(250), std::max(until - absl::Now(), absl::ZeroDuration()) / 4));
  }
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::nanoseconds(absl::ToInt64Nanoseconds(
                          std::max(until - absl::Now(), absl::ZeroDuration()))));
    // Every call has ended, and with it every read of the server by a call's ops (see
    // CallHandOffInterceptor): the server may be freed.
    TsanTakeOver(&calls_ended_);
  }
  // No call can be refused any more: the counts of refusals not yet written come out now.
  if (refused_call_audit_) refused_call_audit_->Close();
  shut_down_ = true;
  shut_down_cv_.notify_all();
}

void AgentServer::Wait() {
  MutexLock lock(&shutdown_mutex_);
  shut_down_cv_.wait(lock.native(), [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shutdown_mutex_) {
    return shut_down_;
  });
}

}  // namespace agent
}  // namespace memload
