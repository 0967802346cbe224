#include "agent/cgroup_target.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"

namespace memload {
namespace agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

MATCHER_P(IsOkAndHoldsPath, path, absl::StrCat("is OK and holds \"", path, "\"")) {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  *result_listener << "holds \"" << *arg << "\"";
  return *arg == path;
}

constexpr char kUid[] = "5b7a3c1e-0d2f-4a6b-9c8d-7e6f5a4b3c2d";
constexpr char kAppId[] = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888";
constexpr char kSandboxId[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr char kSidecarId[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

std::string TestDir() { return memload::testing::FreshTestDir(); }

void WriteFile(const std::string& path, const std::string& contents) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(memload::testing::WriteFile(path, contents)) << path;
}

// A memory cgroup directory of the given version, with these pids.
void MakeCgroup(const std::string& dir, int version, const std::string& procs = "") {
  if (version == 1) {
    WriteFile(dir + "/memory.limit_in_bytes", "536870912\n");
    WriteFile(dir + "/memory.usage_in_bytes", "1000\n");
  } else {
    WriteFile(dir + "/memory.max", "536870912\n");
    WriteFile(dir + "/memory.current", "1000\n");
  }
  WriteFile(dir + "/cgroup.procs", procs);
}

void MakeProcess(const std::string& proc, int pid, const std::string& comm) {
  WriteFile(absl::StrCat(proc, "/", pid, "/comm"), comm + "\n");
}

// A placement in pod `uid`: on the container with `container_id` or `container_name` when
// given, else on the pod's only app container.
v1::Placement PodPlacement(const std::string& uid, const std::string& container_id = "",
                           const std::string& container_name = "") {
  v1::Placement placement;
  placement.mutable_pod()->set_pod_uid(uid);
  if (!container_id.empty()) placement.mutable_pod()->set_container_id(container_id);
  if (!container_name.empty()) placement.mutable_pod()->set_container_name(container_name);
  return placement;
}

// A resolver over the fake memory cgroup tree `root`/memory and /proc `root`/proc that
// searches pods under the kubelet roots "/" and "/kubelet".
CgroupTargetResolver PodResolverUnder(const std::string& root) {
  CgroupTargetOptions options;
  options.memory_root = root + "/memory";
  options.proc_root = root + "/proc";
  options.kubelet_roots = {"/", "/kubelet"};
  return CgroupTargetResolver(options);
}

enum class Driver { kCgroupfs, kSystemd };
enum class Qos { kGuaranteed, kBurstable, kBestEffort };
enum class Runtime { kContainerd, kCrio, kDocker };

std::string QosName(Qos qos) {
  return qos == Qos::kGuaranteed ? "" : qos == Qos::kBurstable ? "burstable" : "besteffort";
}

// The pod directory the kubelet makes, relative to the memory root.
std::string PodDir(Driver driver, Qos qos, const std::string& uid) {
  const std::string q = QosName(qos);
  if (driver == Driver::kCgroupfs) {
    return absl::StrCat("kubepods/", q.empty() ? "" : q + "/", "pod", uid);
  }
  const std::string escaped = absl::StrReplaceAll(uid, {{"-", "_"}});
  if (q.empty()) return absl::StrCat("kubepods.slice/kubepods-pod", escaped, ".slice");
  return absl::StrCat("kubepods.slice/kubepods-", q, ".slice/kubepods-", q, "-pod", escaped,
                      ".slice");
}

// A container's leaf, as its runtime names it under each driver.
std::string LeafName(Driver driver, Runtime runtime, const std::string& id) {
  if (driver == Driver::kCgroupfs) return runtime == Runtime::kCrio ? "crio-" + id : id;
  switch (runtime) {
    case Runtime::kContainerd:
      return "cri-containerd-" + id + ".scope";
    case Runtime::kCrio:
      return "crio-" + id + ".scope";
    case Runtime::kDocker:
      return "docker-" + id + ".scope";
  }
  return id;
}

// Every driver × QoS × runtime × cgroup version.
class PodLayoutTest : public ::testing::TestWithParam<std::tuple<Driver, Qos, Runtime, int>> {
 protected:
  void SetUp() override {
    std::tie(driver_, qos_, runtime_, version_) = GetParam();
    root_ = TestDir();
    memory_ = root_ + "/memory";
    proc_ = root_ + "/proc";
    state_ = root_ + "/state";
    if (version_ == 1) {
      WriteFile(memory_ + "/memory.limit_in_bytes", "9223372036854771712\n");
      WriteFile(memory_ + "/memory.usage_in_bytes", "1\n");
    } else {
      WriteFile(memory_ + "/cgroup.controllers", "cpu memory pids\n");
    }
    pod_dir_ = memory_ + "/" + PodDir(driver_, qos_, kUid);
    MakeCgroup(pod_dir_, version_);
    app_dir_ = pod_dir_ + "/" + LeafName(driver_, runtime_, kAppId);
    MakeCgroup(app_dir_, version_, "4242\n4243\n");
    MakeProcess(proc_, 4242, "nginx");
    MakeProcess(proc_, 4243, "nginx");
    // CRI-O with drop_infra_ctr has no sandbox cgroup; the others do.
    MakeCgroup(pod_dir_ + "/" + LeafName(driver_, runtime_, kSandboxId), version_, "4100\n");
    MakeProcess(proc_, 4100, "pause");
    if (runtime_ == Runtime::kCrio && driver_ == Driver::kSystemd) {
      // conmon's scope, with a process, must never count as a container.
      MakeCgroup(pod_dir_ + "/crio-conmon-" + std::string(kAppId) + ".scope", version_, "4000\n");
      MakeProcess(proc_, 4000, "conmon");
    }
  }

  CgroupTargetResolver Resolver() const {
    CgroupTargetOptions options;
    options.memory_root = memory_;
    options.proc_root = proc_;
    options.runtime_state_dirs = {state_};
    return CgroupTargetResolver(options);
  }

  // Writes the runtime's OCI bundle annotations for both containers.
  void WriteAnnotations() {
    auto config = [&](const std::string& id, bool sandbox, const std::string& name) {
      std::string annotations;
      if (runtime_ == Runtime::kCrio) {
        annotations = absl::StrCat(
            R"("io.kubernetes.cri-o.ContainerType": ")", sandbox ? "sandbox" : "container", R"(")",
            sandbox ? "" : R"(, "io.kubernetes.container.name": ")" + name + "\"");
        WriteFile(absl::StrCat(state_, "/", id, "/userdata/config.json"),
                  absl::StrCat(R"({"ociVersion": "1.0.2", "annotations": {)", annotations, "}}"));
      } else {
        annotations = absl::StrCat(
            R"("io.kubernetes.cri.container-type": ")", sandbox ? "sandbox" : "container", R"(")",
            sandbox ? "" : R"(, "io.kubernetes.cri.container-name": ")" + name + "\"");
        WriteFile(absl::StrCat(state_, "/", id, "/config.json"),
                  absl::StrCat(R"({"ociVersion": "1.0.2", "process": {"args": ["x"]}, )",
                               R"("annotations": {)", annotations, "}}"));
      }
    };
    config(kAppId, false, "web");
    config(kSandboxId, true, "");
  }

  Driver driver_;
  Qos qos_;
  Runtime runtime_;
  int version_;
  std::string root_, memory_, proc_, state_, pod_dir_, app_dir_;
};

TEST_P(PodLayoutTest, OnlyAppContainerIsChosenWithoutAName) {
  absl::StatusOr<ResolvedTarget> target = Resolver().Resolve(PodPlacement(kUid));
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->dir, app_dir_);
  EXPECT_EQ(target->version, version_);
  EXPECT_EQ(target->container_id, kAppId);
  EXPECT_EQ(target->pod_uid, kUid);
  EXPECT_THAT(target->pids, ::testing::ElementsAre(4242, 4243));
}

TEST_P(PodLayoutTest, ContainerIdWithSchemeIsFound) {
  absl::StatusOr<ResolvedTarget> target =
      Resolver().Resolve(PodPlacement(kUid, absl::StrCat("containerd://", kAppId)));
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->dir, app_dir_);
}

TEST_P(PodLayoutTest, SandboxIsNeverATarget) {
  EXPECT_THAT(Resolver().Resolve(PodPlacement(kUid, kSandboxId)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("sandbox")));
}

TEST_P(PodLayoutTest, ContainerNameFromRuntimeAnnotations) {
  WriteAnnotations();
  absl::StatusOr<ResolvedTarget> target = Resolver().Resolve(PodPlacement(kUid, "", "web"));
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->dir, app_dir_);
  EXPECT_EQ(target->container_name, "web");
  // The sandbox is told by its annotation now, even with a process not named "pause".
  MakeProcess(proc_, 4100, "something-else");
  EXPECT_THAT(Resolver().Resolve(PodPlacement(kUid, kSandboxId, "web")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("sandbox")));
}

TEST_P(PodLayoutTest, UnknownContainerNameIsNotFoundNoFallback) {
  WriteAnnotations();
  EXPECT_THAT(Resolver().Resolve(PodPlacement(kUid, "", "db")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("no container named \"db\""), HasSubstr(pod_dir_))));
}

TEST_P(PodLayoutTest, TwoAppContainersNeedAName) {
  MakeCgroup(pod_dir_ + "/" + LeafName(driver_, runtime_, kSidecarId), version_, "4300\n");
  MakeProcess(proc_, 4300, "envoy");
  EXPECT_THAT(Resolver().Resolve(PodPlacement(kUid)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("2 app containers"), HasSubstr("aaaa1111bbbb"),
                             HasSubstr("fedcba987654"))));
}

TEST_P(PodLayoutTest, PodWithoutContainersIsNotFoundNotThePodCgroup) {
  std::filesystem::remove_all(app_dir_);
  EXPECT_THAT(Resolver().Resolve(PodPlacement(kUid)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no running app container")));
}

std::string LayoutName(
    const ::testing::TestParamInfo<std::tuple<Driver, Qos, Runtime, int>>& info) {
  const auto [driver, qos, runtime, version] = info.param;
  return absl::StrCat(driver == Driver::kCgroupfs ? "Cgroupfs" : "Systemd",
                      qos == Qos::kGuaranteed  ? "Guaranteed"
                      : qos == Qos::kBurstable ? "Burstable"
                                               : "BestEffort",
                      runtime == Runtime::kContainerd ? "Containerd"
                      : runtime == Runtime::kCrio     ? "Crio"
                                                      : "Docker",
                      "V", version);
}

INSTANTIATE_TEST_SUITE_P(
    AllLayouts, PodLayoutTest,
    ::testing::Combine(::testing::Values(Driver::kCgroupfs, Driver::kSystemd),
                       ::testing::Values(Qos::kGuaranteed, Qos::kBurstable, Qos::kBestEffort),
                       ::testing::Values(Runtime::kContainerd, Runtime::kCrio, Runtime::kDocker),
                       ::testing::Values(1, 2)),
    LayoutName);

TEST(PodResolveTest, UnknownPodIsNotFoundNamingEverySearchedPlace) {
  const std::string root = TestDir();
  MakeCgroup(root + "/memory/kubepods/burstable", 1);
  EXPECT_THAT(PodResolverUnder(root).Resolve(PodPlacement("1111-2222")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("kubepods/burstable/pod1111-2222"),
                             HasSubstr("kubepods-besteffort-pod1111_2222.slice"),
                             HasSubstr("/kubelet/kubepods/pod1111-2222"))));
}

TEST(PodResolveTest, KubeletCgroupRootIsSearched) {
  const std::string root = TestDir();
  const std::string leaf = root + "/memory/kubelet/kubepods/besteffort/pod1111-2222/" + kAppId;
  MakeCgroup(leaf, 1, "77\n");
  MakeProcess(root + "/proc", 77, "app");
  absl::StatusOr<ResolvedTarget> target = PodResolverUnder(root).Resolve(PodPlacement("1111-2222"));
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->dir, leaf);
}

TEST(PodResolveTest, LeafLinkedOutsideKubepodsIsRefused) {
  const std::string root = TestDir();
  const std::string pod = root + "/memory/kubepods/besteffort/pod1111-2222";
  MakeCgroup(pod, 1);
  MakeCgroup(root + "/memory/elsewhere", 1, "77\n");
  MakeProcess(root + "/proc", 77, "app");
  std::filesystem::create_directory_symlink(root + "/memory/elsewhere", pod + "/" + kAppId);
  EXPECT_THAT(PodResolverUnder(root).Resolve(PodPlacement("1111-2222")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not a kubepods cgroup")));
}

TEST(ValidatePlacementTest, RejectsMalformed) {
  v1::Placement placement;
  placement.set_cgroup_path("/a/../b");
  EXPECT_THAT(ValidatePlacement(placement),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  placement.set_cgroup_path("");
  EXPECT_THAT(ValidatePlacement(placement),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  placement.set_pid(-3);
  EXPECT_THAT(ValidatePlacement(placement),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  placement.mutable_pod()->set_pod_uid("../../etc");
  EXPECT_THAT(ValidatePlacement(placement),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  placement.mutable_pod()->set_pod_uid("abc");
  placement.mutable_pod()->set_container_id("docker://xyz");
  EXPECT_THAT(ValidatePlacement(placement),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  placement.mutable_pod()->set_container_id("docker://abc123");
  EXPECT_THAT(ValidatePlacement(placement), IsOk());
  EXPECT_THAT(ValidatePlacement(v1::Placement()),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST(ParseContainerLeafNameTest, Runtimes) {
  const std::string id = kAppId;
  EXPECT_EQ(ParseContainerLeafName(id)->runtime, "");
  EXPECT_EQ(ParseContainerLeafName("cri-containerd-" + id + ".scope")->runtime, "containerd");
  EXPECT_EQ(ParseContainerLeafName("crio-" + id + ".scope")->runtime, "crio");
  EXPECT_EQ(ParseContainerLeafName("crio-" + id)->id, id);
  EXPECT_EQ(ParseContainerLeafName("docker-" + id + ".scope")->runtime, "docker");
  EXPECT_FALSE(ParseContainerLeafName("crio-conmon-" + id + ".scope"));
  EXPECT_FALSE(ParseContainerLeafName("pod1234"));
  EXPECT_FALSE(ParseContainerLeafName("kubepods-burstable.slice"));
  EXPECT_FALSE(ParseContainerLeafName("session-1.scope"));
}

TEST(CgroupPathTest, ResolvesExistingAndRefusesMissing) {
  const std::string root = TestDir();
  MakeCgroup(root + "/cg/a/b", 2, "12\n");
  CgroupTargetOptions options;
  options.memory_root = root + "/cg";
  v1::Placement placement;
  placement.set_cgroup_path("/a/b");
  absl::StatusOr<ResolvedTarget> target = CgroupTargetResolver(options).Resolve(placement);
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->dir, root + "/cg/a/b");
  EXPECT_EQ(target->version, 2);
  placement.set_cgroup_path("a/c");
  EXPECT_THAT(CgroupTargetResolver(options).Resolve(placement),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(root + "/cg/a/c")));
  // A directory that is no memory cgroup (no memory.max / memory.limit_in_bytes).
  std::filesystem::create_directories(root + "/cg/plain");
  placement.set_cgroup_path("plain");
  EXPECT_THAT(CgroupTargetResolver(options).Resolve(placement),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not a readable memory cgroup")));
}

// ---- /proc/<pid>/cgroup ------------------------------------------------------------------

struct ProcFixture {
  std::string root, proc, mount;
};

ProcFixture MakeProcFixture(const std::string& cgroup_file, const std::string& mountinfo_line) {
  ProcFixture f;
  f.root = TestDir();
  f.proc = f.root + "/proc";
  f.mount = f.root + "/sys/fs/cgroup";
  WriteFile(f.proc + "/99/cgroup", cgroup_file);
  WriteFile(f.proc + "/self/mountinfo", absl::StrReplaceAll(mountinfo_line, {{"MOUNT", f.mount}}));
  return f;
}

TEST(MemoryCgroupOfProcessTest, V1) {
  ProcFixture f = MakeProcFixture(
      "12:pids:/kubepods/burstable/podX/abc\n"
      "4:memory:/kubepods/burstable/podX/abc\n0::/\n",
      "34 30 0:31 / MOUNT rw,relatime - cgroup cgroup rw,memory\n");
  EXPECT_THAT(MemoryCgroupOfProcess(f.proc, 99),
              IsOkAndHoldsPath(f.mount + "/kubepods/burstable/podX/abc"));
}

TEST(MemoryCgroupOfProcessTest, V2) {
  ProcFixture f =
      MakeProcFixture("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope\n",
                      "30 22 0:27 / MOUNT rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  EXPECT_THAT(MemoryCgroupOfProcess(f.proc, 99),
              IsOkAndHoldsPath(f.mount + "/kubepods.slice/kubepods-pod1.slice/"
                                         "cri-containerd-abc.scope"));
}

TEST(MemoryCgroupOfProcessTest, InsideACgroupNamespaceOwnSubtreeResolves) {
  // An agent in its own cgroup namespace sees its subtree as "/"; the mount's root is "/".
  ProcFixture f = MakeProcFixture("0::/child\n", "30 22 0:27 / MOUNT rw - cgroup2 cgroup2 rw\n");
  EXPECT_THAT(MemoryCgroupOfProcess(f.proc, 99), IsOkAndHoldsPath(f.mount + "/child"));
}

TEST(MemoryCgroupOfProcessTest, OutsideTheCgroupNamespaceIsNotFound) {
  // A pod's process seen from an agent in a private cgroup namespace.
  ProcFixture f =
      MakeProcFixture("0::/../../kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope\n",
                      "30 22 0:27 / MOUNT rw - cgroup2 cgroup2 rw\n");
  EXPECT_THAT(MemoryCgroupOfProcess(f.proc, 99),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("host's cgroup namespace")));
  ProcFixture v1 = MakeProcFixture("4:memory:/../kubepods/podX/abc\n",
                                   "34 30 0:31 / MOUNT rw - cgroup cgroup rw,memory\n");
  EXPECT_THAT(MemoryCgroupOfProcess(v1.proc, 99),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cgroup namespace")));
}

TEST(MemoryCgroupOfProcessTest, ContainerMountRootIsStripped) {
  // A container without its own cgroup namespace that has its cgroup bind-mounted.
  ProcFixture f = MakeProcFixture("4:memory:/docker/abc/sub\n",
                                  "34 30 0:31 /docker/abc MOUNT rw - cgroup cgroup rw,memory\n");
  EXPECT_THAT(MemoryCgroupOfProcess(f.proc, 99), IsOkAndHoldsPath(f.mount + "/sub"));
}

TEST(MemoryCgroupOfProcessTest, MissingProcessIsNotFound) {
  ProcFixture f = MakeProcFixture("0::/\n", "30 22 0:27 / MOUNT rw - cgroup2 cgroup2 rw\n");
  EXPECT_THAT(MemoryCgroupOfProcess(f.proc, 12345),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("pid namespace")));
}

TEST(PidPlacementTest, ResolvesTheProcessCgroup) {
  ProcFixture f =
      MakeProcFixture("4:memory:/app\n", "34 30 0:31 / MOUNT rw - cgroup cgroup rw,memory\n");
  MakeCgroup(f.mount + "/app", 1, "99\n");
  CgroupTargetOptions options;
  options.memory_root = f.mount;
  options.proc_root = f.proc;
  v1::Placement placement;
  placement.set_pid(99);
  absl::StatusOr<ResolvedTarget> target = CgroupTargetResolver(options).Resolve(placement);
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->dir, f.mount + "/app");
  EXPECT_EQ(target->version, 1);
}

TEST(ResolverTest, V1CgroupMountParentStandsForItsMemoryHierarchy) {
  const std::string root = TestDir();
  WriteFile(root + "/host/memory/memory.limit_in_bytes", "9223372036854771712\n");
  std::filesystem::create_directories(root + "/host/cpu");
  CgroupTargetOptions options;
  options.memory_root = root + "/host";
  EXPECT_EQ(CgroupTargetResolver(options).memory_root(), root + "/host/memory");
  // A v2 root is taken as it is.
  WriteFile(root + "/v2/cgroup.controllers", "memory\n");
  options.memory_root = root + "/v2";
  EXPECT_EQ(CgroupTargetResolver(options).memory_root(), root + "/v2");
}

TEST(ResolverTest, DetectsTheMemoryRootFromMountinfo) {
  ProcFixture f = MakeProcFixture("", "34 30 0:31 / MOUNT rw - cgroup cgroup rw,memory\n");
  CgroupTargetOptions options;
  options.proc_root = f.proc;
  EXPECT_EQ(CgroupTargetResolver(options).memory_root(), f.mount);
  ProcFixture none = MakeProcFixture("", "22 27 0:21 / /proc rw - proc proc rw\n");
  options.proc_root = none.proc;
  EXPECT_THAT(CgroupTargetResolver(options).Resolve(PodPlacement("abc")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no memory cgroup root")));
}

}  // namespace
}  // namespace agent
}  // namespace memload
