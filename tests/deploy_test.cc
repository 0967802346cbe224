// The deployment files agree with each other and with the binaries: every manifest parses,
// names, ports, probes and mounts line up, the agent accepts the flags the DaemonSet and the
// systemd unit give it (memload-agent --check-config), the drill's plan parses, and the
// container image installs every shared library the binaries link.
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "controller/plan_builder.h"
#include "core/testing/sanitizers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"
#include "tests/testing/subprocess.h"
#include "yaml-cpp/yaml.h"

namespace memload {
namespace testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

constexpr char kDir[] = "deploy/kubernetes/";

struct Manifests {
  std::vector<YAML::Node> objects;
  const YAML::Node* Find(const std::string& kind, const std::string& name) const {
    for (const YAML::Node& object : objects) {
      if (object["kind"].as<std::string>() == kind &&
          object["metadata"]["name"].as<std::string>() == name) {
        return &object;
      }
    }
    return nullptr;
  }
};

Manifests LoadAll() {
  Manifests manifests;
  const YAML::Node kustomization = YAML::LoadFile(std::string(kDir) + "kustomization.yaml");
  for (const YAML::Node& resource : kustomization["resources"]) {
    for (const YAML::Node& object :
         YAML::LoadAllFromFile(std::string(kDir) + resource.as<std::string>())) {
      manifests.objects.push_back(object);
    }
  }
  return manifests;
}

std::vector<std::string> Strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const YAML::Node& item : list) out.push_back(item.as<std::string>());
  return out;
}

// "--name=value" from a list of args; "" when absent.
std::string Flag(const std::vector<std::string>& args, const std::string& name) {
  for (const std::string& arg : args) {
    if (absl::StartsWith(arg, "--" + name + "=")) return arg.substr(name.size() + 3);
  }
  return "";
}

int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

TEST(DeployTest, KustomizationListsEveryManifestAndAllParse) {
  const YAML::Node kustomization = YAML::LoadFile(std::string(kDir) + "kustomization.yaml");
  std::set<std::string> listed;
  for (const YAML::Node& resource : kustomization["resources"]) {
    listed.insert(resource.as<std::string>());
  }
  for (const char* file : {"namespace.yaml", "rbac.yaml", "secret.yaml", "daemonset.yaml",
                           "service.yaml", "drill-plan.yaml", "drill-job.yaml"}) {
    EXPECT_TRUE(listed.count(file)) << file << " is not in kustomization.yaml";
  }
  Manifests manifests = LoadAll();
  std::multiset<std::string> kinds;
  for (const YAML::Node& object : manifests.objects) {
    kinds.insert(object["kind"].as<std::string>());
    // Everything namespaced lives in the kustomization's namespace.
    const std::string kind = object["kind"].as<std::string>();
    if (kind != "Namespace" && kind != "ClusterRole" && kind != "ClusterRoleBinding") {
      EXPECT_EQ(object["metadata"]["namespace"].as<std::string>(),
                kustomization["namespace"].as<std::string>())
          << kind << " " << object["metadata"]["name"].as<std::string>();
    }
  }
  for (const char* kind : {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                           "Secret", "DaemonSet", "Service", "ConfigMap", "Job"}) {
    EXPECT_EQ(kinds.count(kind), 1u) << kind;
  }
  EXPECT_NE(manifests.Find("Namespace", kustomization["namespace"].as<std::string>()), nullptr);
}

TEST(DeployTest, ServiceDaemonSetAndProbesAgree) {
  Manifests manifests = LoadAll();
  const YAML::Node* daemonset = manifests.Find("DaemonSet", "memload-agent");
  const YAML::Node* service = manifests.Find("Service", "memload-agent");
  ASSERT_NE(daemonset, nullptr);
  ASSERT_NE(service, nullptr);
  const YAML::Node pod = (*daemonset)["spec"]["template"];
  // Headless, and selecting exactly the DaemonSet's pods.
  EXPECT_EQ((*service)["spec"]["clusterIP"].as<std::string>(), "None");
  for (const auto& selector : (*service)["spec"]["selector"]) {
    EXPECT_EQ(pod["metadata"]["labels"][selector.first.as<std::string>()].as<std::string>(),
              selector.second.as<std::string>());
  }
  const YAML::Node agent = pod["spec"]["containers"][0];
  const std::vector<std::string> args = Strings(agent["args"]);
  std::map<std::string, int> container_ports;
  for (const YAML::Node& port : agent["ports"]) {
    container_ports[port["name"].as<std::string>()] = port["containerPort"].as<int>();
  }
  // The agent listens where the Service and the probes point.
  EXPECT_EQ(PortOf(Flag(args, "listen")), container_ports.at("grpc"));
  EXPECT_EQ(PortOf(Flag(args, "metrics-listen")), container_ports.at("metrics"));
  for (const YAML::Node& port : (*service)["spec"]["ports"]) {
    const std::string target = port["targetPort"].as<std::string>();
    EXPECT_EQ(port["port"].as<int>(), container_ports.at(target)) << target;
  }
  EXPECT_EQ(agent["readinessProbe"]["grpc"]["port"].as<int>(), container_ports.at("grpc"));
  EXPECT_EQ(agent["livenessProbe"]["grpc"]["port"].as<int>(), container_ports.at("grpc"));
  EXPECT_EQ(pod["metadata"]["annotations"]["prometheus.io/port"].as<std::string>(),
            std::to_string(container_ports.at("metrics")));
  // Requests, and no memory limit on the load (see the manifest's comment).
  EXPECT_TRUE(agent["resources"]["requests"]["memory"].IsDefined());
  EXPECT_FALSE(agent["resources"]["limits"].IsDefined() &&
               agent["resources"]["limits"]["memory"].IsDefined());
  // The node name comes from the downward API.
  EXPECT_EQ(Flag(args, "node-name"), "$(NODE_NAME)");
  bool node_name_env = false;
  for (const YAML::Node& env : agent["env"]) {
    node_name_env |= env["name"].as<std::string>() == "NODE_NAME" &&
                     env["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>() == "spec.nodeName";
  }
  EXPECT_TRUE(node_name_env);
  // The agent lowers its own oom_score_adj: it needs SYS_RESOURCE and nothing else. Only
  // -1000 takes it out of the OOM killer's choice (README, "The agent and the OOM killer").
  EXPECT_THAT(Strings(agent["securityContext"]["capabilities"]["add"]),
              ::testing::ElementsAre("SYS_RESOURCE"));
  EXPECT_EQ(Flag(args, "oom-score-adj"), "-1000");
  // The service account the init container uses can read nodes.
  const std::string account = pod["spec"]["serviceAccountName"].as<std::string>();
  EXPECT_NE(manifests.Find("ServiceAccount", account), nullptr);
  const YAML::Node* binding = manifests.Find("ClusterRoleBinding", "memload-agent-node-reader");
  ASSERT_NE(binding, nullptr);
  EXPECT_EQ((*binding)["subjects"][0]["name"].as<std::string>(), account);
}

TEST(DeployTest, DaemonSetHasWhatPlacementNeeds) {
  Manifests manifests = LoadAll();
  const YAML::Node* daemonset = manifests.Find("DaemonSet", "memload-agent");
  ASSERT_NE(daemonset, nullptr);
  const YAML::Node pod = (*daemonset)["spec"]["template"]["spec"];
  const YAML::Node agent = pod["containers"][0];
  // The host's pids, and the host's cgroup tree writable where --cgroup-root points.
  EXPECT_TRUE(pod["hostPID"].as<bool>());
  const std::string root = Flag(Strings(agent["args"]), "cgroup-root");
  std::string volume_name;
  for (const YAML::Node& mount : agent["volumeMounts"]) {
    if (mount["mountPath"].as<std::string>() != root) continue;
    volume_name = mount["name"].as<std::string>();
    EXPECT_FALSE(mount["readOnly"].IsDefined() && mount["readOnly"].as<bool>());
  }
  ASSERT_FALSE(volume_name.empty()) << "nothing is mounted at --cgroup-root " << root;
  bool host_cgroup = false;
  for (const YAML::Node& volume : pod["volumes"]) {
    host_cgroup |= volume["name"].as<std::string>() == volume_name &&
                   volume["hostPath"]["path"].as<std::string>() == "/sys/fs/cgroup";
  }
  EXPECT_TRUE(host_cgroup);
  // Still no capability beyond SYS_RESOURCE (checked above) and not privileged by default.
  EXPECT_FALSE(agent["securityContext"]["privileged"].IsDefined() &&
               agent["securityContext"]["privileged"].as<bool>());
}

TEST(DeployTest, MountedFilesComeFromObjectsThatHaveThem) {
  Manifests manifests = LoadAll();
  const YAML::Node* secret = manifests.Find("Secret", "memload-auth");
  const YAML::Node* plan = manifests.Find("ConfigMap", "memload-drill");
  ASSERT_NE(secret, nullptr);
  ASSERT_NE(plan, nullptr);
  for (const char* kind : {"DaemonSet", "Job"}) {
    const YAML::Node* object =
        manifests.Find(kind, std::string(kind) == "Job" ? "memload-drill" : "memload-agent");
    ASSERT_NE(object, nullptr) << kind;
    const YAML::Node pod = (*object)["spec"]["template"]["spec"];
    for (const YAML::Node& volume : pod["volumes"]) {
      const YAML::Node source =
          volume["secret"].IsDefined() ? volume["secret"] : volume["configMap"];
      if (!source.IsDefined()) continue;
      const YAML::Node* owner =
          volume["secret"].IsDefined()
              ? manifests.Find("Secret", source["secretName"].as<std::string>())
              : manifests.Find("ConfigMap", source["name"].as<std::string>());
      ASSERT_NE(owner, nullptr) << kind << " mounts a missing object";
      for (const YAML::Node& item : source["items"]) {
        const std::string key = item["key"].as<std::string>();
        EXPECT_TRUE((*owner)["stringData"][key].IsDefined() || (*owner)["data"][key].IsDefined())
            << kind << " mounts key " << key;
      }
    }
  }
}

TEST(DeployTest, DrillJobTargetsTheServiceAndItsPlanParses) {
  Manifests manifests = LoadAll();
  const YAML::Node* job = manifests.Find("Job", "memload-drill");
  const YAML::Node* service = manifests.Find("Service", "memload-agent");
  const YAML::Node* plan = manifests.Find("ConfigMap", "memload-drill");
  ASSERT_NE(job, nullptr);
  const std::vector<std::string> args =
      Strings((*job)["spec"]["template"]["spec"]["containers"][0]["args"]);
  EXPECT_EQ(args[0], "run");
  EXPECT_EQ(Flag(args, "targets"),
            absl::StrCat("dns:///", (*service)["metadata"]["name"].as<std::string>(), ".",
                         (*service)["metadata"]["namespace"].as<std::string>(),
                         ".svc.cluster.local:", (*service)["spec"]["ports"][0]["port"].as<int>()));
  EXPECT_EQ(Flag(args, "plan"), "/etc/memload/drill/plan.json");
  absl::StatusOr<v1::PlanSpec> spec =
      controller::ParsePlanFile((*plan)["data"]["plan.json"].as<std::string>(), "plan.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->retained().phases_size(), 2);
  EXPECT_DOUBLE_EQ(spec->retained().phases(0).target().percent_of_total(), 85);
  EXPECT_DOUBLE_EQ(spec->retained().phases(1).target().percent_of_total(), 40);
}

// Runs `memload-agent --check-config ARGS` with the manifest's file paths pointed at files
// the test makes.
CommandResult CheckConfig(std::vector<std::string> args) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  std::ofstream(dir + "/labels")
      << "kubernetes.io/hostname=node-a\ntopology.kubernetes.io/zone=z1\n";
  std::ofstream(dir + "/tokens") << "a-long-random-token-for-the-test-0123456789\n";
  std::vector<std::string> argv = {AgentBinary(), "--check-config"};
  for (std::string arg : args) {
    arg = absl::StrReplaceAll(arg, {{"$(NODE_NAME)", "node-a"},
                                    {"/var/run/memload/labels", dir + "/labels"},
                                    {"/etc/memload/auth/tokens", dir + "/tokens"}});
    argv.push_back(arg);
  }
  return RunCommand(argv, absl::Seconds(20));
}

TEST(DeployTest, AgentAcceptsTheDaemonSetFlags) {
  Manifests manifests = LoadAll();
  const YAML::Node* daemonset = manifests.Find("DaemonSet", "memload-agent");
  CommandResult checked =
      CheckConfig(Strings((*daemonset)["spec"]["template"]["spec"]["containers"][0]["args"]));
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
  EXPECT_THAT(checked.out + checked.err, HasSubstr("config ok"));
  // And --check-config really checks: a bad flag fails it.
  CommandResult bad = CheckConfig({"--listen=[::]:7070", "--reserve=12Q", "--insecure"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("12Q"));
}

TEST(DeployTest, SystemdUnitRunsTheAgentWithFlagsItAccepts) {
  const std::string unit = ReadFile("deploy/systemd/memload-agent.service");
  EXPECT_THAT(unit, HasSubstr("ExecStart=/usr/local/bin/memload-agent $MEMLOAD_AGENT_FLAGS"));
  EXPECT_THAT(unit, HasSubstr("ExecStartPre=/usr/local/bin/memload-agent --check-config"));
  EXPECT_THAT(unit, HasSubstr("OOMScoreAdjust=-1000\n"));
  EXPECT_THAT(unit, HasSubstr("Restart=on-failure"));
  EXPECT_THAT(unit, HasSubstr("EnvironmentFile=/etc/memload/memload-agent.env"));
  EXPECT_THAT(unit, ::testing::Not(HasSubstr("\nMemoryMax=")));  // The load is for the machine.
  const std::string env = ReadFile("deploy/systemd/memload-agent.env");
  const size_t open = env.find("MEMLOAD_AGENT_FLAGS=\"");
  ASSERT_NE(open, std::string::npos);
  const size_t begin = open + std::string("MEMLOAD_AGENT_FLAGS=\"").size();
  const std::string flags = env.substr(begin, env.find('"', begin) - begin);
  CommandResult checked = CheckConfig(absl::StrSplit(flags, ' ', absl::SkipEmpty()));
  EXPECT_EQ(checked.exit_code, 0) << checked.err;
}

TEST(DeployTest, ImageInstallsEveryLibraryTheBinariesLink) {
  if (kAddressSanitizer || kThreadSanitizer) {
    GTEST_SKIP() << "sanitized binaries link the sanitizer runtime, which no image ships";
  }
  const std::string dockerfile = ReadFile("deploy/Dockerfile");
  for (const char* target :
       {"//agent:memload-agent", "//agent:memload-worker", "//controller:memloadctl"}) {
    EXPECT_THAT(dockerfile, HasSubstr(target));
  }
  // The runtime stage's apt-get install line(s).
  const std::string runtime = dockerfile.substr(dockerfile.find("AS runtime"));
  std::set<std::string> installed = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"};  // base
  for (absl::string_view word :
       absl::StrSplit(runtime, absl::ByAnyChar(" \n\\"), absl::SkipEmpty())) {
    installed.insert(std::string(word));
  }
  std::set<std::string> libraries;
  for (const std::string& binary : {AgentBinary(), WorkerBinary(), CtlBinary()}) {
    CommandResult ldd = RunCommand({"/usr/bin/ldd", binary}, absl::Seconds(20));
    ASSERT_EQ(ldd.exit_code, 0) << ldd.err;
    for (absl::string_view line : absl::StrSplit(ldd.out, '\n')) {
      const size_t arrow = line.find("=> /");
      if (arrow == absl::string_view::npos) continue;
      std::string path(line.substr(arrow + 3, line.find(" (", arrow) - arrow - 3));
      // Bazel's own solib symlinks point into the build; only system libraries matter.
      if (absl::StrContains(path, "_solib") || absl::StrContains(path, "bazel-out")) continue;
      libraries.insert(path.substr(path.rfind('/') + 1));
    }
  }
  ASSERT_FALSE(libraries.empty());
  std::vector<std::string> argv = {"/usr/bin/dpkg", "-S"};
  argv.insert(argv.end(), libraries.begin(), libraries.end());
  CommandResult owners = RunCommand(argv, absl::Seconds(60));
  std::set<std::string> packages;
  for (absl::string_view line : absl::StrSplit(owners.out, '\n', absl::SkipEmpty())) {
    // "pkg:arch: /path" — dpkg -S matches substrings; keep exact x86-64 library paths.
    const size_t colon = line.find(": ");
    if (colon == absl::string_view::npos) continue;
    const absl::string_view path = line.substr(colon + 2);
    const std::string name(path.substr(path.rfind('/') + 1));
    if (!libraries.count(name) || !absl::StrContains(path, "x86_64-linux-gnu")) continue;
    packages.insert(std::string(line.substr(0, line.find(':'))));
  }
  EXPECT_GE(packages.size(), 5u) << owners.out;
  // What the runtime stage installs, with everything apt pulls in for it.
  std::vector<std::string> depends = {"/usr/bin/apt-cache", "depends",       "--recurse",
                                      "--no-recommends",    "--no-suggests", "--no-conflicts",
                                      "--no-breaks",        "--no-replaces", "--no-enhances"};
  for (const std::string& word : installed) {
    if (absl::StartsWith(word, "lib") || word == "ca-certificates") depends.push_back(word);
  }
  CommandResult closure = RunCommand(depends, absl::Seconds(60));
  for (absl::string_view line : absl::StrSplit(closure.out, '\n', absl::SkipEmpty())) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "Depends: ") || absl::ConsumePrefix(&line, "PreDepends: ")) {
      installed.insert(std::string(line.substr(0, line.find(':'))));
    } else if (!absl::StrContains(line, " ")) {
      installed.insert(std::string(line.substr(0, line.find(':'))));
    }
  }
  for (const std::string& package : packages) {
    EXPECT_TRUE(installed.count(package)) << "the runtime image lacks " << package;
  }
}

}  // namespace
}  // namespace testing
}  // namespace memload
