// memload-agent as a user runs it: the real binary, its workers, memloadctl, signals, and
// a memory cgroup that OOM-kills the load. Resident memory is read from /proc.
#include <signal.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/node_readers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/process_memory.h"
#include "tests/testing/sizes.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_cgroup.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;

CommandResult Ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CtlBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, absl::Seconds(30));
}

TEST(AgentProcessTest, PrintsItsAddressRunsAPlanAndExitsCleanlyOnSigterm) {
  absl::StatusOr<Subprocess> agent =
      Subprocess::Start({AgentBinary(), "--listen=127.0.0.1:0", "--node-name=solo"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  const std::string address = WaitForAgentAddress(*agent, absl::Seconds(10));
  ASSERT_FALSE(address.empty()) << agent->Stderr();
  // The bound address is on the first log line.
  EXPECT_THAT(agent->Stderr().substr(0, agent->Stderr().find('\n')), HasSubstr(address));

  CommandResult started =
      Ctl({"start", "--targets=" + address, "--kind=retained", "--target=128MiB", "--touch=page",
           "--hold=30s", "--lease=30s", "--plan-id=resident"});
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
  std::vector<pid_t> workers;
  ASSERT_TRUE(Eventually([&] {
    workers = WorkersOf(agent->pid());
    return workers.size() == 1 && ResidentOf(workers[0]) >= 128 * kMiB;
  })) << "the worker never held 128 MiB";

  CommandResult usage = Ctl({"usage", "--targets=" + address});
  EXPECT_EQ(usage.exit_code, 0) << usage.err;
  EXPECT_THAT(usage.out, HasSubstr("holding"));

  const absl::Time term = absl::Now();
  agent->Signal(SIGTERM);
  std::optional<int> code = agent->Wait(absl::Seconds(2));
  ASSERT_TRUE(code.has_value()) << "agent still running 2 s after SIGTERM";
  EXPECT_EQ(*code, 0) << agent->Stderr();
  EXPECT_LT(absl::Now() - term, absl::Seconds(2));
  EXPECT_NE(kill(workers[0], 0), 0) << "worker outlived the agent";
}

TEST(AgentProcessTest, StopReturnsTheMemory) {
  absl::StatusOr<Subprocess> agent = Subprocess::Start({AgentBinary(), "--listen=127.0.0.1:0"});
  ASSERT_TRUE(agent.ok());
  const std::string address = WaitForAgentAddress(*agent, absl::Seconds(10));
  ASSERT_FALSE(address.empty());
  ASSERT_EQ(
      Ctl({"start", "--targets=" + address, "--kind=retained", "--target=64MiB", "--plan-id=p"})
          .exit_code,
      0);
  std::vector<pid_t> workers;
  ASSERT_TRUE(Eventually([&] {
    workers = WorkersOf(agent->pid());
    return workers.size() == 1 && ResidentOf(workers[0]) >= 64 * kMiB;
  }));
  CommandResult stopped = Ctl({"stop", "--targets=" + address, "--plan-id=p", "--output=json"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_THAT(stopped.out, HasSubstr("PLAN_STATE_STOPPED"));
  EXPECT_TRUE(WorkersOf(agent->pid()).empty());
  EXPECT_NE(kill(workers[0], 0), 0);
}

TEST(AgentProcessTest, AgentKilledLeavesNoWorkerBehind) {
  absl::StatusOr<Subprocess> agent = Subprocess::Start({AgentBinary(), "--listen=127.0.0.1:0"});
  ASSERT_TRUE(agent.ok());
  const std::string address = WaitForAgentAddress(*agent, absl::Seconds(10));
  ASSERT_EQ(Ctl({"start", "--targets=" + address, "--kind=retained", "--target=32MiB",
                 "--plan-id=orphan"})
                .exit_code,
            0);
  std::vector<pid_t> workers;
  ASSERT_TRUE(Eventually([&] {
    workers = WorkersOf(agent->pid());
    return workers.size() == 1;
  }));
  agent->Signal(SIGKILL);
  agent->Wait(absl::Seconds(5));
  // PR_SET_PDEATHSIG: the worker dies with the agent and its memory goes with it.
  EXPECT_TRUE(Eventually([&] { return kill(workers[0], 0) != 0; }, absl::Seconds(2)));
}

// Starts an agent inside a 96 MiB memory cgroup of its own, as in a container with that
// limit. Skips the test where memory cgroups cannot be made (the caller checks IsSkipped()).
void StartAgentInSmallCgroup(const std::string& name, std::optional<TestCgroup>* cgroup,
                             std::optional<Subprocess>* agent, std::string* address) {
  absl::StatusOr<TestCgroup> made = TestCgroup::Create(name, 96 * kMiB);
  if (!made.ok()) GTEST_SKIP() << "cannot create a memory cgroup here: " << made.status();
  cgroup->emplace(*std::move(made));
  absl::StatusOr<Subprocess> started = Subprocess::Start(
      {AgentBinary(), "--listen=127.0.0.1:0", "--reserve=0"}, (*cgroup)->procs_file());
  ASSERT_TRUE(started.ok()) << started.status();
  agent->emplace(*std::move(started));
  *address = WaitForAgentAddress(**agent, absl::Seconds(10));
  ASSERT_FALSE(address->empty()) << (*agent)->Stderr();
}

// The agent's protection from the OOM killer (agent/worker_cgroup.h): oom_score_adj -1000
// where it may (CAP_SYS_RESOURCE), else its workers in a child cgroup with a margin.
TEST(AgentProcessTest, AnAgentInASmallCgroupIsProtectedFromItsWorkersOom) {
  std::optional<TestCgroup> cgroup;
  std::optional<Subprocess> agent;
  std::string address;
  ASSERT_NO_FATAL_FAILURE(StartAgentInSmallCgroup("memload-protect", &cgroup, &agent, &address));
  if (IsSkipped()) return;
  CommandResult started = Ctl({"start", "--targets=" + address, "--kind=retained", "--target=8MiB",
                               "--hold=30s", "--plan-id=protect"});
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
  std::vector<pid_t> workers;
  ASSERT_TRUE(Eventually([&] {
    workers = WorkersOf(agent->pid());
    return workers.size() == 1;
  }));
  absl::StatusOr<std::string> agent_adj =
      ReadFileToString(absl::StrCat("/proc/", agent->pid(), "/oom_score_adj"));
  ASSERT_TRUE(agent_adj.ok());
  // Which cgroup.procs lists the worker.
  auto lists_worker = [&](const std::string& dir) {
    absl::StatusOr<std::string> procs = ReadFileToString(dir + "/cgroup.procs");
    if (!procs.ok()) return false;
    for (absl::string_view line : absl::StrSplit(*procs, '\n')) {
      if (line == absl::StrCat(workers[0])) return true;
    }
    return false;
  };
  if (absl::StripAsciiWhitespace(*agent_adj) == "-1000") {
    // Ineligible: nothing else needed, the worker shares the agent's cgroup.
    EXPECT_THAT(agent->Stderr(), HasSubstr("oom_score_adj -1000"));
    EXPECT_TRUE(lists_worker(cgroup->dir()));
  } else {
    // No CAP_SYS_RESOURCE (as on this project's test machine): a child cgroup 32 MiB below.
    EXPECT_THAT(agent->Stderr(), HasSubstr("workers run in " + cgroup->dir() + "/memload-workers"));
    EXPECT_TRUE(lists_worker(cgroup->dir() + "/memload-workers"));
    absl::StatusOr<CgroupMemory> child = ReadCgroupMemory(cgroup->dir() + "/memload-workers");
    ASSERT_TRUE(child.ok()) << child.status();
    EXPECT_EQ(child->limit_bytes, 64 * kMiB);
  }
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(absl::Seconds(5)).value_or(-1), 0) << agent->Stderr();
  // The agent removes the child on its way out.
  EXPECT_NE(access((cgroup->dir() + "/memload-workers").c_str(), F_OK), 0);
}

TEST(AgentProcessTest, OomKillTakesTheWorkerNotTheAgent) {
  std::optional<TestCgroup> cgroup;
  std::optional<Subprocess> agent;
  std::string address;
  ASSERT_NO_FATAL_FAILURE(StartAgentInSmallCgroup("memload-oom", &cgroup, &agent, &address));
  if (IsSkipped()) return;

  // Without expect_oom the safety check refuses a plan the cgroup cannot hold.
  CommandResult refused = Ctl(
      {"start", "--targets=" + address, "--kind=retained", "--target=256MiB", "--plan-id=too-big"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.out, HasSubstr("RESOURCE_EXHAUSTED"));

  // An OOM drill: the worker is OOM-killed, the agent lives on and says so.
  CommandResult started = Ctl({"start", "--targets=" + address, "--kind=retained",
                               "--target=256MiB", "--plan-id=drill", "--expect-oom"});
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
  // The worker dies by the OOM killer; then stop answers with the plan's final state.
  ASSERT_TRUE(Eventually([&] {
    std::vector<pid_t> workers = WorkersOf(agent->pid());
    return workers.empty();
  })) << "the worker was never OOM-killed";
  CommandResult usage;
  ASSERT_TRUE(Eventually([&] {
    usage = Ctl({"stop", "--targets=" + address, "--plan-id=drill", "--output=json"});
    return absl::StrContains(usage.out, "PLAN_STATE_OOM_KILLED");
  })) << usage.out
      << usage.err;
  EXPECT_THAT(usage.out, HasSubstr("\"outcomeOk\":true"));
  EXPECT_TRUE(agent->running()) << "the OOM killer took the agent";
  CommandResult after = Ctl({"usage", "--targets=" + address});
  EXPECT_EQ(after.exit_code, 0) << after.err;
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(absl::Seconds(5)).value_or(-1), 0);
}

}  // namespace
}  // namespace testing
}  // namespace memload
