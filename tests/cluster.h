// A memload cluster on one machine, for end-to-end tests: N agents as separate "nodes",
// each on its own loopback address (127.0.0.2, 127.0.0.3, ...) and all on one common port,
// each in a memory cgroup of its own with its own limit, node name and labels; plus a
// dnsmasq on 127.0.0.1 that answers one name with every agent's address, like a
// Kubernetes headless Service. Everything starts with Start() and stops with the Cluster
// (agents and dnsmasq killed and reaped, cgroups removed). Nothing but loopback is used.
// Under ASan, the memload processes started after Start() run without ASan's quarantine of
// freed memory, so that their RSS and their cgroups' usage are what they hold.
//
//   ClusterOptions options;
//   options.nodes = {{"node-1", "zone=a", 256 * kMiB}, {"node-2", "zone=b", 512 * kMiB}};
//   START_CLUSTER_OR_SKIP(cluster, options);  // In a test: skips where cgroups cannot be made.
//   CommandResult run = cluster.Ctl({"run", "--targets=" + cluster.DnsTarget(), ...});
//   uint64_t used = cluster.node(0).CgroupUsage();
//
// Thread-safety: thread-compatible (one test thread drives it).
#ifndef MEMLOAD_TESTS_CLUSTER_H_
#define MEMLOAD_TESTS_CLUSTER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "proto/memload.grpc.pb.h"
#include "proto/memload.pb.h"
// Tests of a cluster wait and measure with these.
#include "tests/testing/eventually.h"
#include "tests/testing/process_memory.h"
#include "tests/testing/sizes.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_cgroup.h"

namespace memload {
namespace testing {

struct NodeOptions {
  std::string name;    // --node-name
  std::string labels;  // --labels, "zone=a,size=small"
  // Bytes; the agent and its workers run in a memory cgroup of this limit. 0: no cgroup of
  // its own (the test's), for scenarios that need none and so run where cgroups cannot be
  // made.
  uint64_t cgroup_limit = 0;
  // Appended to the agent's. The default --reserve (256 MiB) would leave a small node's
  // plans no room at all.
  std::vector<std::string> agent_flags = {"--reserve=16MiB"};
};

struct ClusterOptions {
  std::vector<NodeOptions> nodes;
  std::string dns_name = "agents.memload.test";
};

// One node: its agent process and its cgroup.
class ClusterNode {
 public:
  const NodeOptions& options() const { return options_; }
  const std::string& host() const { return host_; }  // "127.0.0.2"
  std::string address() const;                       // "127.0.0.2:PORT"
  Subprocess& agent() { return *agent_; }
  pid_t agent_pid() const { return agent_->pid(); }
  // From the agent's first log line; new at every (re)start.
  const std::string& incarnation() const { return incarnation_; }
  // "" without a cgroup of its own.
  std::string cgroup_dir() const { return cgroup_ ? cgroup_->dir() : ""; }
  std::string cgroup_procs() const { return cgroup_ ? cgroup_->procs_file() : ""; }

  // The cgroup as the kernel reports it (memory.usage_in_bytes / memory.current); 0
  // without a cgroup of its own.
  uint64_t CgroupUsage() const;
  uint64_t OomKills() const;  // "oom_kill" of memory.oom_control / memory.events.
  // Live memory-workers of this node's agent.
  std::vector<pid_t> Workers() const { return WorkersOf(agent_->pid()); }

  // A client of this node's agent for what memloadctl does not show (plaintext, loopback).
  std::unique_ptr<v1::Agent::Stub> NewStub() const;
  // Every plan the agent knows, ended ones included (ListPlans).
  absl::StatusOr<std::vector<v1::PlanStatus>> Plans() const;

  // Kills the agent with SIGKILL and reaps it (its workers die by PR_SET_PDEATHSIG).
  void Kill();
  // Starts the agent again on the same address, port and cgroup (after Kill()).
  absl::Status Restart();

 private:
  friend class Cluster;
  ClusterNode() = default;
  absl::Status StartAgent();  // Also reads the incarnation.

  NodeOptions options_;
  std::string host_;
  int port_ = 0;
  std::optional<TestCgroup> cgroup_;
  std::optional<Subprocess> agent_;
  std::string incarnation_;
};

class Cluster {
 public:
  // FailedPrecondition (see IsNoCgroups) when memory cgroups cannot be made here; other
  // codes when a process does not start.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(const ClusterOptions& options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  size_t size() const { return nodes_.size(); }
  ClusterNode& node(size_t i) { return *nodes_.at(i); }
  int agent_port() const { return agent_port_; }
  int dns_port() const { return dns_port_; }
  // "dns://127.0.0.1:DNSPORT/agents.memload.test:PORT": every agent, through dnsmasq.
  std::string DnsTarget() const;
  // "127.0.0.2:PORT,127.0.0.3:PORT,...".
  std::string Targets() const;

  // memloadctl with these arguments, bounded by `timeout`.
  CommandResult Ctl(const std::vector<std::string>& args,
                    absl::Duration timeout = absl::Seconds(60)) const;

 private:
  Cluster() = default;
  absl::Status StartDns(const ClusterOptions& options);

  std::string dns_name_;
  int agent_port_ = 0;
  int dns_port_ = 0;
  std::vector<std::unique_ptr<ClusterNode>> nodes_;
  std::optional<Subprocess> dns_;
};

// Whether Cluster::Start failed because memory cgroups cannot be created here.
bool IsNoCgroups(const absl::Status& status);

// In a test body: starts a cluster as `cluster` (a Cluster&), skips the test where memory
// cgroups cannot be made, fails it on any other error.
#define START_CLUSTER_OR_SKIP(cluster, options)                                         \
  absl::StatusOr<std::unique_ptr<Cluster>> started_##cluster = Cluster::Start(options); \
  if (IsNoCgroups(started_##cluster.status())) {                                        \
    GTEST_SKIP() << started_##cluster.status();                                         \
  }                                                                                     \
  ASSERT_TRUE(started_##cluster.ok()) << started_##cluster.status();                    \
  Cluster& cluster = **started_##cluster

// A whole JSON document (fails the test when it is not one).
google::protobuf::Struct ParseJson(const std::string& text);
// Object fields by path: Get(doc, {"summary", "ok"}); a null Value when absent.
const google::protobuf::Value& Get(const google::protobuf::Struct& object,
                                   const std::vector<std::string>& path);

// One node of a command's JSON document (run/start/stop: with its PlanStatus).
struct NodeJson {
  std::string target;
  bool ok = false;
  std::string node;  // run: the node name.
  std::optional<v1::PlanStatus> plan;
  std::string error_code;  // "" when ok.
  std::string error_message;
  google::protobuf::Struct raw;
};
std::vector<NodeJson> NodesOf(const google::protobuf::Struct& document);

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_CLUSTER_H_
