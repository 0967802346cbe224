// memload-agent: runs memory-load plans on this node for memloadctl. See README.md.
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/agent_server.h"
#include "core/flag_values.h"
#include "core/log.h"
#include "core/node_readers.h"
#include "core/size.h"
#include "core/version.h"

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
ABSL_FLAG(std::string, worker_binary, "",
          "path of memload-worker (default: beside this binary)");
ABSL_FLAG(int, max_plans, 64, "most plans running at once");
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

// Prints a failed status and returns the exit code for it.
int Fail(const absl::Status& status) {
  std::fprintf(stderr, "memload-agent: %s\n", status.ToString().c_str());
  return 2;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Runs memory-load plans on this node for memloadctl.");
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
  options.plans.default_lease = absl::GetFlag(FLAGS_default_lease);
  if (options.plans.default_lease <= absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError("--default_lease must be positive"));
  }
  if (absl::GetFlag(FLAGS_max_plans) < 1) {
    return Fail(absl::InvalidArgumentError("--max_plans must be at least 1"));
  }
  options.plans.max_running_plans = absl::GetFlag(FLAGS_max_plans);
  options.metrics_listen_address = absl::GetFlag(FLAGS_metrics_listen);
  options.security.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.security.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.security.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.security.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  options.security.insecure = absl::GetFlag(FLAGS_insecure);
  options.security.audit_log = [](const std::string& line) { LogLine(line); };

  absl::StatusOr<std::unique_ptr<agent::AgentServer>> server =
      agent::AgentServer::Start(options);
  if (!server.ok()) return Fail(server.status());
  const v1::NodeInfo& identity = (*server)->identity();
  MEMLOAD_LOG("memload-agent %s listening on %s node=%s incarnation=%s max-memory=%s reserve=%s",
              kVersion, (*server)->address(), identity.node_name(), identity.incarnation(),
              options.plans.max_memory_bytes ? FormatSize(options.plans.max_memory_bytes)
                                             : std::string("none"),
              FormatSize(options.plans.reserve_bytes));
  MEMLOAD_LOG("security: %s", (*server)->security_summary());
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
  MEMLOAD_LOG("memload-agent stopped; every plan's memory returned");
  return 0;
}

}  // namespace
}  // namespace memload

int main(int argc, char** argv) { return memload::Main(argc, argv); }
