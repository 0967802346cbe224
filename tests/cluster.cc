#include "tests/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "controller/testing/json_document.h"
#include "core/node_readers.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace memload {
namespace testing {
namespace {

constexpr char kDnsmasq[] = "/usr/sbin/dnsmasq";
constexpr char kDnsHost[] = "127.0.0.1";

// Binds host:port (0 = the kernel picks) for a moment, without SO_REUSEPORT (the agent
// does not share its port), and returns the port that was free; an error when it is not.
absl::StatusOr<int> FreePortOn(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("bind ", host, ":", port, ": ", std::strerror(error)));
  }
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// A loopback port free for UDP and TCP on 127.0.0.1 at the moment (for dnsmasq, which
// cannot share it; a lost race shows as dnsmasq exiting, and Start tries another).
int FreeDnsPort() {
  const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  inet_pton(AF_INET, kDnsHost, &address.sin_addr);
  bind(udp, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(udp, reinterpret_cast<sockaddr*>(&address), &length);
  const int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool tcp_free = bind(tcp, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(tcp);
  close(udp);
  return tcp_free ? ntohs(address.sin_port) : 0;
}

// Asks the DNS server on 127.0.0.1:port for `name`'s A records; how many came back, or -1
// without an answer within 200 ms.
int CountARecords(int port, const std::string& name) {
  std::string query("\x4d\x4c\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    query.push_back(static_cast<char>(label.size()));
    query.append(label.data(), label.size());
  }
  query.append("\x00\x00\x01\x00\x01", 5);  // Root, type A, class IN.
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, kDnsHost, &server.sin_addr);
  int count = -1;
  if (sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&server),
             sizeof(server)) == static_cast<ssize_t>(query.size())) {
    pollfd ready{fd, POLLIN, 0};
    unsigned char answer[512];
    if (poll(&ready, 1, 200) == 1) {
      const ssize_t n = recv(fd, answer, sizeof(answer), 0);
      if (n >= 12 && answer[0] == 0x4d && answer[1] == 0x4c) count = answer[6] << 8 | answer[7];
    }
  }
  close(fd);
  return count;
}

std::string Hex(const std::string& text, size_t begin) {
  size_t end = begin;
  while (end < text.size() && std::isxdigit(static_cast<unsigned char>(text[end]))) ++end;
  return text.substr(begin, end - begin);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// ClusterNode

std::string ClusterNode::address() const { return absl::StrCat(host_, ":", port_); }

uint64_t ClusterNode::CgroupUsage() const { return cgroup_ ? cgroup_->Usage() : 0; }

uint64_t ClusterNode::OomKills() const { return cgroup_ ? cgroup_->OomKills() : 0; }

std::unique_ptr<v1::Agent::Stub> ClusterNode::NewStub() const {
  return v1::Agent::NewStub(grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
}

absl::StatusOr<std::vector<v1::PlanStatus>> ClusterNode::Plans() const {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListPlansRequest request;
  request.set_include_ended(true);
  v1::ListPlansResponse response;
  const grpc::Status status = NewStub()->ListPlans(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return std::vector<v1::PlanStatus>(response.plans().begin(), response.plans().end());
}

void ClusterNode::Kill() {
  agent_->Signal(SIGKILL);
  agent_->Wait(absl::Seconds(5));
}

absl::Status ClusterNode::Restart() {
  if (agent_->running()) return absl::FailedPreconditionError("the agent is still running");
  agent_.reset();
  return StartAgent();
}

absl::Status ClusterNode::StartAgent() {
  std::vector<std::string> argv = {AgentBinary(), absl::StrCat("--listen=", address()),
                                   absl::StrCat("--node-name=", options_.name)};
  if (!options_.labels.empty()) argv.push_back(absl::StrCat("--labels=", options_.labels));
  argv.insert(argv.end(), options_.agent_flags.begin(), options_.agent_flags.end());
  absl::StatusOr<Subprocess> agent = Subprocess::Start(argv, cgroup_procs());
  if (!agent.ok()) return agent.status();
  agent_.emplace(*std::move(agent));
  const std::string bound = WaitForAgentAddress(*agent_, absl::Seconds(15));
  if (bound != address()) {
    return absl::UnavailableError(absl::StrCat("agent ", options_.name, " did not listen on ",
                                               address(), ": ", agent_->Stderr()));
  }
  const std::string log = agent_->Stderr();
  const size_t at = log.find("incarnation=");
  incarnation_ = at == std::string::npos ? "" : Hex(log, at + std::strlen("incarnation="));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Cluster

namespace {

// Under ASan freed blocks wait in a quarantine (256 MiB by default) before they are reused,
// so an agent's RSS — and its cgroup's usage — grows with every request even when nothing
// leaks (+48.8 MiB over e2e_bad_input_test's requests; more than the few MiB of slack the
// release checks allow). The agents (and the workers and memloadctl runs the tests start
// after this) run without it, so what they hold is what they use; LeakSanitizer (at each
// memload process's exit) still checks for leaks. Other builds ignore ASAN_OPTIONS. Called
// before any agent starts, from the test's one thread.
void RunMemloadProcessesWithoutAsanQuarantine() {
  constexpr absl::string_view kNoQuarantine =
      "quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
  const char* options = std::getenv("ASAN_OPTIONS");
  const std::string current = options != nullptr ? options : "";
  if (absl::StrContains(current, kNoQuarantine)) return;
  setenv("ASAN_OPTIONS", absl::StrCat(current, ":", kNoQuarantine).c_str(), /*overwrite=*/1);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(const ClusterOptions& options) {
  RunMemloadProcessesWithoutAsanQuarantine();
  std::unique_ptr<Cluster> cluster(new Cluster());
  cluster->dns_name_ = options.dns_name;
  std::vector<std::string> hosts;
  for (size_t i = 0; i < options.nodes.size(); ++i)
    hosts.push_back(absl::StrCat("127.0.0.", i + 2));

  // One port for every agent (a dns:///name:port target has one port), free on every
  // address a moment ago. Nothing holds it until the agents listen (they share no port), so
  // another process may take it first: then every agent is stopped and another port tried.
  for (size_t i = 0; i < options.nodes.size(); ++i) {
    std::unique_ptr<ClusterNode> node(new ClusterNode());
    node->options_ = options.nodes[i];
    node->host_ = hosts[i];
    if (options.nodes[i].cgroup_limit > 0) {
      absl::StatusOr<TestCgroup> cgroup = TestCgroup::Create(
          absl::StrCat("memload-e2e-", options.nodes[i].name), options.nodes[i].cgroup_limit);
      if (!cgroup.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot create a memory cgroup here: ", cgroup.status().message()));
      }
      node->cgroup_.emplace(*std::move(cgroup));
    }
    cluster->nodes_.push_back(std::move(node));
  }
  absl::Status started = absl::UnavailableError("no port free on every node address");
  for (int attempt = 0; attempt < 20 && !started.ok(); ++attempt) {
    absl::StatusOr<int> port = FreePortOn(hosts[0], 0);
    for (size_t i = 1; port.ok() && i < hosts.size(); ++i) port = FreePortOn(hosts[i], *port);
    if (!port.ok()) continue;
    cluster->agent_port_ = *port;
    started = absl::OkStatus();
    for (auto& node : cluster->nodes_) {
      node->port_ = *port;
      started = node->StartAgent();
      if (!started.ok()) break;
    }
    if (!started.ok()) {
      for (auto& node : cluster->nodes_) {
        if (node->agent_ && node->agent_->running()) node->Kill();
        node->agent_.reset();
      }
      // Only a port someone took meanwhile is worth another try.
      if (started.message().find("in use") == std::string::npos) return started;
    }
  }
  if (!started.ok()) return started;
  absl::Status dns = cluster->StartDns(options);
  if (!dns.ok()) return dns;
  return cluster;
}

absl::Status Cluster::StartDns(const ClusterOptions& options) {
  if (access(kDnsmasq, X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat(kDnsmasq, " is missing: install dnsmasq-base (bazel/install_deps.sh)"));
  }
  // A port free for UDP may be taken for TCP (by any of the machine's connections: a
  // fan-out benchmark's thousands of loopback connections take most ephemeral ports), so a
  // pair is looked for up to 100 times; dnsmasq itself is started up to 5 times.
  std::string last_error = "no port on 127.0.0.1 was free for both UDP and TCP in 100 tries";
  int starts = 0;
  for (int attempt = 0; attempt < 100 && starts < 5; ++attempt) {
    const int port = FreeDnsPort();
    if (port == 0) continue;
    ++starts;
    // Only the records given here: no upstream, no /etc/hosts, no config file, no pid file.
    std::vector<std::string> argv = {kDnsmasq,
                                     "--no-daemon",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--conf-file=/dev/null",
                                     "--pid-file=",
                                     absl::StrCat("--listen-address=", kDnsHost),
                                     absl::StrCat("--port=", port),
                                     "--bind-interfaces"};
    // The name's domain is answered here alone: other names in it are NXDOMAIN, not
    // REFUSED for want of an upstream server.
    const size_t dot = options.dns_name.find('.');
    if (dot != std::string::npos) {
      argv.push_back(absl::StrCat("--local=/", options.dns_name.substr(dot + 1), "/"));
    }
    for (const auto& node : nodes_) {
      argv.push_back(absl::StrCat("--host-record=", options.dns_name, ",", node->host()));
    }
    absl::StatusOr<Subprocess> dns = Subprocess::Start(argv);
    if (!dns.ok()) return dns.status();
    dns_.emplace(*std::move(dns));
    const int expected = static_cast<int>(nodes_.size());
    if (Eventually([&] { return !dns_->running() || CountARecords(port, dns_name_) == expected; },
                   absl::Seconds(10)) &&
        dns_->running()) {
      dns_port_ = port;
      return absl::OkStatus();
    }
    last_error = absl::StrCat(
        "on port ", port,
        dns_->running() ? " it did not answer with every record in 10 s" : " it exited", ": ",
        dns_->Stderr());
    dns_.reset();  // Killed and reaped; a port lost to a race is retried with another.
  }
  return absl::UnavailableError(absl::StrCat("dnsmasq did not start: ", last_error));
}

Cluster::~Cluster() {
  if (dns_.has_value()) dns_->Signal(SIGKILL);
  for (auto& node : nodes_) {
    if (!node->agent_.has_value()) continue;
    // A frozen agent must run again to take SIGTERM; SIGTERM returns every plan's memory.
    node->agent_->Signal(SIGCONT);
    node->agent_->Signal(SIGTERM);
  }
  for (auto& node : nodes_) {
    if (!node->agent_.has_value()) continue;
    if (!node->agent_->Wait(absl::Seconds(5)).has_value()) node->Kill();
    // The cgroup goes once its last process has: its destructor retries while busy.
    if (node->cgroup_procs().empty()) continue;
    Eventually(
        [&] {
          absl::StatusOr<std::string> procs = ReadFileToString(node->cgroup_procs());
          return !procs.ok() || procs->empty();
        },
        absl::Seconds(5));
  }
  nodes_.clear();
  dns_.reset();
}

std::string Cluster::DnsTarget() const {
  return absl::StrCat("dns://", kDnsHost, ":", dns_port_, "/", dns_name_, ":", agent_port_);
}

std::string Cluster::Targets() const {
  std::vector<std::string> addresses;
  for (const auto& node : nodes_) addresses.push_back(node->address());
  return absl::StrJoin(addresses, ",");
}

CommandResult Cluster::Ctl(const std::vector<std::string>& args, absl::Duration timeout) const {
  std::vector<std::string> argv = {CtlBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

bool IsNoCgroups(const absl::Status& status) { return absl::IsFailedPrecondition(status); }

// ---------------------------------------------------------------------------------------
// JSON

google::protobuf::Struct ParseJson(const std::string& text) { return ParseJsonDocument(text); }

const google::protobuf::Value& Get(const google::protobuf::Struct& object,
                                   const std::vector<std::string>& path) {
  static const google::protobuf::Value* const kNull = new google::protobuf::Value();
  const google::protobuf::Struct* current = &object;
  const google::protobuf::Value* value = kNull;
  for (const std::string& key : path) {
    const auto it = current->fields().find(key);
    if (it == current->fields().end()) return *kNull;
    value = &it->second;
    current = &value->struct_value();
  }
  return *value;
}

std::vector<NodeJson> NodesOf(const google::protobuf::Struct& document) {
  std::vector<NodeJson> nodes;
  for (const auto& value : Get(document, {"nodes"}).list_value().values()) {
    NodeJson node;
    node.raw = value.struct_value();
    node.target = Get(node.raw, {"target"}).string_value();
    node.ok = Get(node.raw, {"ok"}).bool_value();
    node.node = Get(node.raw, {"node"}).string_value();
    node.error_code = Get(node.raw, {"error", "code"}).string_value();
    node.error_message = Get(node.raw, {"error", "message"}).string_value();
    if (node.raw.fields().count("plan") > 0) {
      std::string json;
      google::protobuf::util::MessageToJsonString(Get(node.raw, {"plan"}).struct_value(), &json);
      v1::PlanStatus plan;
      google::protobuf::util::JsonParseOptions options;
      options.ignore_unknown_fields = true;
      const auto status = google::protobuf::util::JsonStringToMessage(json, &plan, options);
      EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
      node.plan = plan;
    }
    nodes.push_back(std::move(node));
  }
  return nodes;
}

}  // namespace testing
}  // namespace memload
