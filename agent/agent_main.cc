// memload-agent: runs memory-load plans on this node for memloadctl. See README.md.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/agent_server.h"
#include "agent/cgroup_target.h"
#include "agent/open_files_limit.h"
#include "agent/worker_cgroup.h"
#include "bazel/leak_check.h"
#include "core/base/log.h"
#include "core/base/version.h"
#include "core/bounded_read.h"
#include "core/cli/flag_args.h"
#include "core/cli/flag_values.h"
#include "core/node_readers.h"
#include "core/size.h"
#include "proto/plan_rules.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "host:port to serve on; port 0 picks a free one (printed on the first log line)");
ABSL_FLAG(std::string, node_name, "", "name this node reports (default: the hostname)");
ABSL_FLAG(std::string, labels, "", "labels this node reports, k=v,k2=v2 (for --selector)");
ABSL_FLAG(std::string, max_memory, "",
          "cap on what all plans together may hold: bytes (\"8GiB\") or % of the node's "
          "effective memory (\"90%\"); empty = no cap");
ABSL_FLAG(std::string, reserve, "256MiB",
          "available memory plans never eat into: bytes or % of the node's effective memory");
ABSL_FLAG(absl::Duration, default_lease, absl::Minutes(1),
          "lease of plans that do not give one; an unrenewed plan is stopped after it");
ABSL_FLAG(std::string, worker_binary, "", "path of memload-worker (default: beside this binary)");
ABSL_FLAG(int, max_plans, 64, "most plans running at once (1..128)");
ABSL_FLAG(int, max_watch_streams, 1024,
          "WatchUsage streams open at once (1..100000); more are refused with "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_calls_per_connection, 100,
          "calls (unary and streams) in flight at once on one client connection (1..100000); "
          "a client's further calls wait until one ends");
ABSL_FLAG(std::string, cgroup_root, "",
          "placement: root of the memory cgroup hierarchy (v1: the memory mount, v2: the "
          "unified mount); default: found in /proc/self/mountinfo");
ABSL_FLAG(std::string, proc_root, "/proc", "placement: where /proc of the host's pids is");
ABSL_FLAG(std::string, kubelet_cgroup_root, "/",
          "placement: the kubelet's --cgroup-root(s), comma-separated, relative to --cgroup_root");
ABSL_FLAG(std::string, runtime_state_dirs,
          "/run/containerd/io.containerd.runtime.v2.task/k8s.io,"
          "/run/containers/storage/overlay-containers",
          "placement: OCI bundle directories of containerd / CRI-O, for container names");
ABSL_FLAG(std::string, target_reserve, "8MiB",
          "placement: memory placed plans leave free below their target cgroup's limit");
ABSL_FLAG(std::string, labels_file, "",
          "more labels, one k=v per line (e.g. the Node's labels, written by an init "
          "container); --labels wins on a shared key; odd lines are skipped with a warning");
ABSL_FLAG(std::string, oom_score_adj, "",
          "the agent's own oom_score_adj, -1000..1000 (lowering it needs CAP_SYS_RESOURCE); "
          "default: -1000 when allowed; workers get 1000 whatever this is");
ABSL_FLAG(bool, check_config, false,
          "check the flags and the files they name, print \"config ok\", exit (0 or 2)");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port of the Prometheus /metrics endpoint, e.g. 127.0.0.1:9470; port 0 picks a "
          "free one (logged as \"metrics on HOST:PORT\"); empty = no metrics");
// Security (README: "Securing a deployment").
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate (chain) to serve TLS with; needs --tls-key");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert (unencrypted)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificate(s): mutual TLS, clients must present a certificate it signed");
ABSL_FLAG(std::string, auth_token_file, "",
          "bearer tokens, one per line: TOKEN or TOKEN:read-only ('#' comments)");
ABSL_FLAG(bool, insecure, false,
          "serve a non-loopback address without tokens or client certificates");

namespace memload {
namespace {

// Sets this process's oom_score_adj. Lowering it needs CAP_SYS_RESOURCE: say so.
absl::Status WriteOwnOomScoreAdj(int value) {
  FILE* file = std::fopen("/proc/self/oom_score_adj", "w");
  const bool written =
      file != nullptr && std::fprintf(file, "%d\n", value) > 0 && std::fflush(file) == 0;
  const int error = errno;
  if (file != nullptr) std::fclose(file);
  if (!written) {
    return absl::PermissionDeniedError(absl::StrCat("cannot set oom_score_adj ", value, ": ",
                                                    std::strerror(error),
                                                    " (lowering it needs CAP_SYS_RESOURCE)"));
  }
  return absl::OkStatus();
}

// What keeps the OOM killer off the agent (agent/worker_cgroup.h explains the kernel's
// window after a worker's kill): oom_score_adj -1000, the only value that makes a task
// ineligible, which the agent sets itself by default when it may; otherwise its workers in
// a child memory cgroup with a margin below the agent's limit. Logs which, or that neither
// could be had. Before any worker exists: workers raise theirs to 1000, always allowed.
// Fails only when an --oom_score_adj given on the command line cannot be set.
struct OomProtection {
  std::string worker_cgroup_procs;  // "" = workers stay in the agent's cgroup.
  std::vector<std::string> log;     // Logged after the listening line (always the first).
};
absl::StatusOr<OomProtection> ProtectFromOomKiller(std::optional<int> requested) {
  OomProtection protection;
  int adj = 0;
  if (requested.has_value()) {
    if (absl::Status set = WriteOwnOomScoreAdj(*requested); !set.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("--oom_score_adj: ", set.message()));
    }
    adj = *requested;
  } else if (absl::Status set = WriteOwnOomScoreAdj(-1000); set.ok()) {
    adj = -1000;
  } else {
    protection.log.push_back(absl::StrCat("oom: ", set.message()));
  }
  if (adj == -1000) {
    protection.log.push_back("oom: oom_score_adj -1000: the OOM killer never takes the agent");
    return protection;
  }
  absl::StatusOr<std::optional<agent::WorkerCgroup>> workers =
      agent::PrepareWorkerCgroup("", agent::kDefaultAgentCgroupMargin);
  if (workers.ok() && workers->has_value()) {
    const agent::WorkerCgroup& child = **workers;
    protection.log.push_back(absl::StrFormat(
        "oom: oom_score_adj %d; workers run in %s, limited to %s (%s below the agent's %s), so "
        "a worker's OOM kill cannot take the agent",
        adj, child.dir, FormatSize(child.limit_bytes),
        FormatSize(child.agent_limit_bytes - child.limit_bytes),
        FormatSize(child.agent_limit_bytes)));
    protection.worker_cgroup_procs = child.procs_file;
    return protection;
  }
  if (workers.ok()) {
    // No memory limit: a node-wide OOM has every process of the node to choose from.
    protection.log.push_back(absl::StrFormat(
        "warning: oom: oom_score_adj %d and no memory cgroup limit: the OOM killer takes "
        "workers (1000) first, but could take the agent right after one; give it "
        "CAP_SYS_RESOURCE",
        adj));
  } else {
    protection.log.push_back(absl::StrFormat(
        "warning: oom: NOT PROTECTED: oom_score_adj %d and workers cannot have a cgroup "
        "of their own (%s): the OOM killer may take the agent right after a worker; "
        "give it CAP_SYS_RESOURCE",
        adj, workers.status().message()));
  }
  return protection;
}

// Prints a failed status and returns the exit code for it.
int Fail(const absl::Status& status) {
  std::fprintf(stderr, "memload-agent: %s\n", status.ToString().c_str());
  return 2;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Runs memory-load plans on this node for memloadctl.");
  // --help/-h and --version here: absl's would list every library's flags and exit 1.
  const std::vector<char*> typed(argv, argv + argc);
  if (WantsHelp(typed)) {
    std::fputs(FlagsHelp("memload-agent: runs memory-load plans on this node for memloadctl.\n"
                         "Usage: memload-agent [--listen=HOST:PORT] [flags]",
                         "agent/agent_main.cc")
                   .c_str(),
               stdout);
    return 0;
  }
  if (WantsVersion(typed)) {
    std::printf("memload-agent %s\n", kVersion);
    return 0;
  }
  // Every usage error exits 2 with the flag named as typed (absl alone would exit 1).
  if (absl::Status known = CheckFlagArgs(typed); !known.ok()) return Fail(known);
  // "--node-name" and "--node_name" both work.
  std::vector<std::string> args = NormalizeFlagNames(argc, argv);
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  absl::ParseCommandLine(static_cast<int>(arg_pointers.size()), arg_pointers.data());

  // Block the shutdown signals in every thread; one thread waits for them (sigwait).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  agent::AgentOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.node_name = absl::GetFlag(FLAGS_node_name);
  options.worker_binary = absl::GetFlag(FLAGS_worker_binary);
  absl::StatusOr<std::map<std::string, std::string>> labels =
      ParseLabels(absl::GetFlag(FLAGS_labels));
  if (!labels.ok()) return Fail(labels.status());
  options.labels = *labels;
  std::vector<std::string> skipped_labels;
  if (const std::string path = absl::GetFlag(FLAGS_labels_file); !path.empty()) {
    absl::StatusOr<std::string> contents =
        ReadFileUpTo(path, kMaxLabelsFileBytes, "--labels-file");  // Bounded (issue 12.7).
    if (!contents.ok()) return Fail(contents.status());
    // insert() keeps what --labels already set.
    for (const auto& label : ParseLabelLines(*contents, &skipped_labels)) {
      options.labels.insert(label);
    }
  }
  std::optional<int> oom_score_adj;
  if (const std::string text = absl::GetFlag(FLAGS_oom_score_adj); !text.empty()) {
    int value = 0;
    if (!absl::SimpleAtoi(text, &value)) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--oom_score_adj=\"", text, "\": want an integer in -1000..1000")));
    }
    if (std::optional<std::string> problem = plan_rules::OomScoreAdjProblem(value)) {
      return Fail(
          absl::InvalidArgumentError(absl::StrCat("--oom_score_adj=\"", text, "\": ", *problem)));
    }
    oom_score_adj = value;
  }

  // Percentages are of the node as the agent sees it: min(MemTotal, cgroup limit).
  agent::SystemNodeProbe probe;
  absl::StatusOr<agent::NodeMemory> node = probe.Read();
  if (!node.ok()) return Fail(node.status());
  const uint64_t total = node->EffectiveTotal();
  if (const std::string text = absl::GetFlag(FLAGS_max_memory); !text.empty()) {
    absl::StatusOr<SizeOrPercent> cap = ParseSizeOrPercent(text);
    if (!cap.ok()) return Fail(cap.status());
    absl::StatusOr<uint64_t> bytes = cap->Resolve(total);
    if (!bytes.ok()) return Fail(bytes.status());
    options.plans.max_memory_bytes = *bytes;
  }
  absl::StatusOr<SizeOrPercent> reserve = ParseSizeOrPercent(absl::GetFlag(FLAGS_reserve));
  if (!reserve.ok()) return Fail(reserve.status());
  absl::StatusOr<uint64_t> reserve_bytes = reserve->Resolve(total);
  if (!reserve_bytes.ok()) return Fail(reserve_bytes.status());
  options.plans.reserve_bytes = *reserve_bytes;
  absl::StatusOr<uint64_t> target_reserve = ParseSize(absl::GetFlag(FLAGS_target_reserve));
  if (!target_reserve.ok()) return Fail(target_reserve.status());
  options.plans.target_reserve_bytes = *target_reserve;
  {
    agent::CgroupTargetOptions placement;
    placement.memory_root = absl::GetFlag(FLAGS_cgroup_root);
    placement.proc_root = absl::GetFlag(FLAGS_proc_root);
    placement.kubelet_roots =
        absl::StrSplit(absl::GetFlag(FLAGS_kubelet_cgroup_root), ',', absl::SkipEmpty());
    placement.runtime_state_dirs =
        absl::StrSplit(absl::GetFlag(FLAGS_runtime_state_dirs), ',', absl::SkipEmpty());
    options.plans.target_resolver =
        std::make_shared<const agent::CgroupTargetResolver>(std::move(placement));
  }
  options.plans.default_lease = absl::GetFlag(FLAGS_default_lease);
  if (options.plans.default_lease <= absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError("--default_lease must be positive"));
  }
  if (absl::GetFlag(FLAGS_max_plans) < 1) {
    return Fail(absl::InvalidArgumentError("--max_plans must be at least 1"));
  }
  options.plans.max_running_plans = absl::GetFlag(FLAGS_max_plans);
  // --default-lease within the maximum lease, --max-plans within its bound, ...: the same
  // check AgentServer::Start makes, so --check-config agrees with a start.
  if (absl::Status plans = agent::CheckPlanManagerOptions(options.plans); !plans.ok()) {
    return Fail(plans);
  }
  if (const int streams = absl::GetFlag(FLAGS_max_watch_streams); streams < 1 || streams > 100000) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--max_watch_streams must be 1..100000, got ", streams)));
  }
  options.max_watch_streams = absl::GetFlag(FLAGS_max_watch_streams);
  options.max_calls_per_connection = absl::GetFlag(FLAGS_max_calls_per_connection);
  options.metrics_listen_address = absl::GetFlag(FLAGS_metrics_listen);
  options.security.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.security.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.security.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.security.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  options.security.insecure = absl::GetFlag(FLAGS_insecure);
  options.security.audit_log = [](const std::string& line) { LogLine(line); };

  if (absl::GetFlag(FLAGS_check_config)) {
    if (absl::Status checked = agent::AgentServer::CheckConfig(options); !checked.ok()) {
      return Fail(checked);
    }
    std::printf(
        "memload-agent: config ok (listen %s, node %s, %zu labels, max-memory %s, "
        "reserve %s)\n",
        options.listen_address.c_str(),
        options.node_name.empty() ? "<hostname>" : options.node_name.c_str(), options.labels.size(),
        options.plans.max_memory_bytes ? FormatSize(options.plans.max_memory_bytes).c_str()
                                       : "none",
        FormatSize(options.plans.reserve_bytes).c_str());
    for (const std::string& line : skipped_labels) {
      std::printf("memload-agent: warning: label line \"%s\" skipped\n", line.c_str());
    }
    return 0;
  }
  // Every connection is a descriptor, and gRPC stops accepting for good at the limit
  // (agent/open_files_limit.h): the soft limit goes up to the hard one before it listens.
  const std::vector<std::string> open_files =
      agent::DescribeOpenFilesLimit(agent::RaiseOpenFilesLimit());
  absl::StatusOr<OomProtection> oom = ProtectFromOomKiller(oom_score_adj);
  if (!oom.ok()) return Fail(oom.status());
  options.worker_cgroup_procs = oom->worker_cgroup_procs;

  absl::StatusOr<std::unique_ptr<agent::AgentServer>> server = agent::AgentServer::Start(options);
  if (!server.ok()) return Fail(server.status());
  const v1::NodeInfo& identity = (*server)->identity();
  MEMLOAD_LOG("memload-agent %s listening on %s node=%s incarnation=%s max-memory=%s reserve=%s",
              kVersion, (*server)->address(), identity.node_name(), identity.incarnation(),
              options.plans.max_memory_bytes ? FormatSize(options.plans.max_memory_bytes)
                                             : std::string("none"),
              FormatSize(options.plans.reserve_bytes));
  MEMLOAD_LOG("security: %s", (*server)->security_summary());
  for (const std::string& line : open_files) MEMLOAD_LOG("%s", line);
  for (const std::string& line : oom->log) MEMLOAD_LOG("%s", line);
  for (const std::string& line : skipped_labels) {
    MEMLOAD_LOG("warning: label line \"%s\" from --labels_file skipped", line);
  }
  if (!(*server)->security_warning().empty()) {
    MEMLOAD_LOG("warning: %s", (*server)->security_warning());
  }
  if (const std::string metrics = (*server)->metrics_address(); !metrics.empty()) {
    MEMLOAD_LOG("metrics on %s (GET /metrics)", metrics);
  }

  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    MEMLOAD_LOG("received %s: stopping every plan", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    (*server)->Shutdown(absl::Seconds(1));
  });
  (*server)->Wait();
  signal_thread.join();
  server->reset();
  if (!options.worker_cgroup_procs.empty()) {
    // Every worker has been reaped by now.
    const std::string dir =
        options.worker_cgroup_procs.substr(0, options.worker_cgroup_procs.rfind('/'));
    if (absl::Status removed = agent::RemoveWorkerCgroup(dir); !removed.ok()) {
      MEMLOAD_LOG("warning: %s", removed.message());
    }
  }
  MEMLOAD_LOG("memload-agent stopped; every plan's memory returned");
  return 0;
}

}  // namespace
}  // namespace memload

int main(int argc, char** argv) {
  // Debian's Abseil is built with absl::Mutex deadlock detection on: every lock gRPC takes
  // then updates a global lock graph (costly per call; see README "Performance").
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int code = memload::Main(argc, argv);
  // Plans are stopped and the server is shut down by now; what is left are gRPC's own
  // background threads, which static destructors must not race (seen crashing at exit
  // under TSan). Flush and leave without running them.
  std::fflush(nullptr);
  _exit(memload::LeakCheckedExitCode(code));
}
