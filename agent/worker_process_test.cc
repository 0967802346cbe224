// WorkerProcessLauncher with the real memload-worker binary: residency measured from /proc,
// commands over the pipe, exits of every kind (including a real OOM kill in a child memory
// cgroup) and the parent-death signal.
#include "agent/worker_process.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/node_readers.h"
#include "core/testing/sanitizers.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/process_memory.h"
#include "tests/testing/sizes.h"
#include "tests/testing/test_cgroup.h"

namespace memload {
namespace agent {
namespace {

using ::memload::testing::Eventually;
using ::memload::testing::kMiB;
using ::testing::HasSubstr;

constexpr uint64_t kPiB = uint64_t{1} << 50;

// Bazel runs tests from the workspace's runfiles root.
const char kWorkerBinary[] = "agent/memload-worker";

// Polls `condition` until it holds or `timeout` passes: waits on a real condition, never
// on a guess at how long something takes.
WorkerSpec RetainedSpec(uint64_t target, bool hold_forever = true,
                        absl::Duration hold = absl::ZeroDuration()) {
  WorkerSpec spec;
  spec.set_initial_ceiling_bytes(UINT64_MAX);
  v1::PlanSpec* plan = spec.mutable_plan();
  plan->set_plan_id("test");
  v1::RetainedPlan* retained = plan->mutable_retained();
  retained->set_touch(v1::TOUCH_MODE_PAGE);
  v1::Phase* phase = retained->add_phases();
  phase->mutable_target()->set_bytes(target);
  phase->set_hold_forever(hold_forever);
  if (hold > absl::ZeroDuration()) {
    phase->mutable_hold()->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(hold)));
  }
  return spec;
}

std::unique_ptr<Worker> LaunchOrDie(WorkerLauncher& launcher, const WorkerSpec& spec) {
  absl::StatusOr<std::unique_ptr<Worker>> worker = launcher.Launch(spec);
  EXPECT_THAT(worker, IsOk());
  return worker.ok() ? std::move(*worker) : nullptr;
}

// Launches the test's workers into `cgroup` (its cgroup.procs).
WorkerProcessOptions InCgroup(const ::memload::testing::TestCgroup& cgroup) {
  WorkerProcessOptions options;
  options.worker_binary = kWorkerBinary;
  options.cgroup_procs_path = cgroup.procs_file();
  return options;
}

PlanState StateOf(const Worker& worker) { return worker.Counters().state; }

// Gone = no such process, or a zombie about to be reaped by someone else.
bool ProcessGone(pid_t pid) { return !::memload::testing::Alive(pid); }

int OpenFdCount() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count;
}

std::string ReadTrimmed(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  return contents.ok() ? std::string(absl::StripAsciiWhitespace(*contents)) : "";
}

// utime + stime of a process, in clock ticks.
uint64_t CpuTicks(pid_t pid) {
  const std::string line = ReadTrimmed(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(line.substr(paren + 2), ' ');
  // After "pid (comm) ": state is field 0, utime field 11, stime field 12.
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return 0;
  }
  return utime + stime;
}

TEST(WorkerProcessTest, RetainedPlanIsResidentInTheWorkerAndStopReturnsIt) {
  const int fds_before = OpenFdCount();
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, RetainedSpec(128 * kMiB));
  ASSERT_NE(worker, nullptr);
  const pid_t pid = worker->pid();
  // The worker notices HOLDING within ~10 ms and publishes when it got there.
  ASSERT_TRUE(Eventually([&] { return worker->Extras().target_reached.has_value(); }));
  EXPECT_LE(*worker->Extras().target_reached, absl::Now());
  EXPECT_EQ(StateOf(*worker), PlanState::kHolding);
  EXPECT_EQ(worker->Counters().payload_bytes, 128 * kMiB);
  EXPECT_GE(worker->Counters().resident_bytes, 128 * kMiB);  // mincore, in the worker.
  EXPECT_GE(worker->ResidentBytes(), 128 * kMiB);            // /proc/PID/status, here.
  EXPECT_FALSE(worker->PollExit().has_value());

  const absl::Time stop = absl::Now();
  worker->RequestStop();
  const WorkerExit exit = worker->WaitExit(absl::Seconds(10));
  EXPECT_LT(absl::Now() - stop, absl::Seconds(2));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kStopped) << exit.error;
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_TRUE(ProcessGone(pid));
  EXPECT_EQ(kill(pid, 0), -1);
  // The final counters stay readable: everything was released.
  EXPECT_EQ(worker->Counters().state, PlanState::kCancelled);
  EXPECT_EQ(worker->Counters().payload_bytes, 0u);
  EXPECT_EQ(worker->ResidentBytes(), 0u);
  EXPECT_THAT(worker->SetTarget(kMiB),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("worker has exited")));
  worker.reset();
  EXPECT_EQ(OpenFdCount(), fds_before);  // No descriptor left behind.
}

TEST(WorkerProcessTest, SetTargetGrowsAndShrinksTheWorkersRss) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, RetainedSpec(64 * kMiB));
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(Eventually([&] { return StateOf(*worker) == PlanState::kHolding; }));
  const uint64_t rss_at_64 = worker->ResidentBytes();
  ASSERT_GE(rss_at_64, 64 * kMiB);
  const uint64_t overhead = rss_at_64 - 64 * kMiB;  // The worker's own memory.

  ASSERT_THAT(worker->SetTarget(192 * kMiB), IsOk());
  EXPECT_TRUE(Eventually([&] { return worker->ResidentBytes() >= 192 * kMiB; }))
      << worker->ResidentBytes();
  EXPECT_TRUE(Eventually([&] {
    return StateOf(*worker) == PlanState::kHolding &&
           worker->Counters().payload_bytes == 192 * kMiB;
  }));

  ASSERT_THAT(worker->SetTarget(32 * kMiB), IsOk());
  EXPECT_TRUE(Eventually([&] {
    return worker->ResidentBytes() <= 32 * kMiB + overhead + 4 * kMiB;
  })) << worker->ResidentBytes()
      << " with overhead " << overhead;
  EXPECT_TRUE(Eventually([&] { return worker->Counters().payload_bytes == 32 * kMiB; }));

  worker->RequestStop();
  EXPECT_EQ(worker->WaitExit(absl::Seconds(10)).kind, WorkerExit::Kind::kStopped);
}

TEST(WorkerProcessTest, CeilingCapsAndLiftingItResumes) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  WorkerSpec spec = RetainedSpec(64 * kMiB);
  spec.set_initial_ceiling_bytes(16 * kMiB);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, spec);
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(Eventually([&] { return StateOf(*worker) == PlanState::kCapped; }));
  EXPECT_EQ(worker->Counters().payload_bytes, 16 * kMiB);
  EXPECT_FALSE(worker->Extras().target_reached.has_value());

  ASSERT_THAT(worker->SetCeiling(UINT64_MAX), IsOk());
  ASSERT_TRUE(Eventually([&] { return StateOf(*worker) == PlanState::kHolding; }));
  EXPECT_EQ(worker->Counters().payload_bytes, 64 * kMiB);
  EXPECT_TRUE(Eventually([&] { return worker->Extras().target_reached.has_value(); }));
  worker->RequestStop();
  EXPECT_EQ(worker->WaitExit(absl::Seconds(10)).kind, WorkerExit::Kind::kStopped);
}

TEST(WorkerProcessTest, HoldingCostsNoCpu) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, RetainedSpec(64 * kMiB));
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(Eventually([&] { return worker->Extras().target_reached.has_value(); }));
  const uint64_t before = CpuTicks(worker->pid());
  // A measurement window, not a wait for an event.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const uint64_t used = CpuTicks(worker->pid()) - before;
  // The held plan wakes once a second for a mincore; anything like a busy loop would burn
  // ~150 ticks here.
  EXPECT_LE(used, 5u) << "ticks of CPU while holding";
  worker->RequestStop();
  EXPECT_EQ(worker->WaitExit(absl::Seconds(10)).kind, WorkerExit::Kind::kStopped);
}

TEST(WorkerProcessTest, OomScoreAdjDefaultsTo1000AndFollowsTheSpec) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> by_default = LaunchOrDie(launcher, RetainedSpec(kMiB));
  ASSERT_NE(by_default, nullptr);
  EXPECT_EQ(ReadTrimmed(absl::StrCat("/proc/", by_default->pid(), "/oom_score_adj")), "1000");

  WorkerSpec spec = RetainedSpec(kMiB);
  spec.mutable_plan()->set_oom_score_adj(500);
  std::unique_ptr<Worker> chosen = LaunchOrDie(launcher, spec);
  ASSERT_NE(chosen, nullptr);
  EXPECT_EQ(ReadTrimmed(absl::StrCat("/proc/", chosen->pid(), "/oom_score_adj")), "500");

  spec.mutable_plan()->set_oom_score_adj(1001);
  EXPECT_THAT(launcher.Launch(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("oom_score_adj")));
}

TEST(WorkerProcessTest, PlanThatEndsCompletes) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> worker =
      LaunchOrDie(launcher, RetainedSpec(4 * kMiB, false, absl::Milliseconds(50)));
  ASSERT_NE(worker, nullptr);
  const WorkerExit exit = worker->WaitExit(absl::Seconds(20));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kCompleted) << exit.error;
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(exit.error, "");
  EXPECT_EQ(worker->Counters().state, PlanState::kCompleted);
  EXPECT_EQ(worker->Counters().peak_payload_bytes, 4 * kMiB);
}

TEST(WorkerProcessTest, StreamingPlanWithAnAmountCompletes) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  WorkerSpec spec;
  spec.set_initial_ceiling_bytes(UINT64_MAX);
  v1::StreamingPlan* streaming = spec.mutable_plan()->mutable_streaming();
  streaming->set_block_size(64 << 10);
  streaming->set_amount_bytes(64 * kMiB);
  streaming->set_workers(2);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, spec);
  ASSERT_NE(worker, nullptr);
  const WorkerExit exit = worker->WaitExit(absl::Seconds(20));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kCompleted) << exit.error;
  EXPECT_EQ(worker->Counters().allocations, 1024u);
  EXPECT_EQ(worker->Counters().frees, 1024u);
  EXPECT_FALSE(worker->Extras().target_reached.has_value());  // Streaming has no target.
}

TEST(WorkerProcessTest, UtilizationPlanPublishesItsNumbers) {
  // Measured against a cgroup of the test's own, which nothing else on the machine moves
  // (the node's figure is moved by every other test running beside this one: a target
  // just above the node's use at the start can be below it a moment later).
  absl::StatusOr<::memload::testing::TestCgroup> cgroup =
      ::memload::testing::TestCgroup::Create("memload-utilization", 256 * kMiB);
  if (!cgroup.ok()) GTEST_SKIP() << "cannot create a memory cgroup here: " << cgroup.status();
  WorkerProcessLauncher launcher(InCgroup(*cgroup));
  WorkerSpec spec;
  spec.set_initial_ceiling_bytes(512 * kMiB);  // Bounded, whatever happens.
  spec.set_reference(v1::UtilizationPlan::REFERENCE_CGROUP);
  spec.set_cgroup_dir(cgroup->dir());
  v1::UtilizationPlan* utilization = spec.mutable_plan()->mutable_utilization();
  utilization->set_target_percent(40);  // ~100 MiB: the worker alone uses a few.
  utilization->mutable_interval()->set_nanos(20000000);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, spec);
  ASSERT_NE(worker, nullptr);
  EXPECT_TRUE(Eventually([&] {
    return worker->Counters().payload_bytes > 0 && worker->Extras().utilization_percent > 0;
  }));
  worker->RequestStop();
  const WorkerExit exit = worker->WaitExit(absl::Seconds(10));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kStopped) << exit.error;
  EXPECT_EQ(worker->Counters().payload_bytes, 0u);
}

TEST(WorkerProcessTest, AllocationFailureIsAFailedExitWithTheWorkersReason) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  WorkerSpec spec = RetainedSpec(kPiB);
  // 64 TiB blocks: within the plan rules' largest block (128 TiB), but no mmap gives that.
  spec.mutable_plan()->mutable_retained()->set_block_size(kPiB / 16);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, spec);
  ASSERT_NE(worker, nullptr);
  const WorkerExit exit = worker->WaitExit(absl::Seconds(20));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kFailed);
  EXPECT_EQ(exit.exit_code, 3);
  EXPECT_THAT(exit.error, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(exit.error, HasSubstr("1 PiB target"));
  EXPECT_EQ(worker->Counters().state, PlanState::kFailed);
}

TEST(WorkerProcessTest, MalformedSpecIsExit2WithTheField) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  WorkerSpec spec = RetainedSpec(kMiB);
  spec.mutable_plan()
      ->mutable_retained()
      ->mutable_phases(0)
      ->mutable_target()
      ->set_percent_of_total(50);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, spec);
  ASSERT_NE(worker, nullptr);
  WorkerExit exit = worker->WaitExit(absl::Seconds(20));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kFailed);
  EXPECT_EQ(exit.exit_code, 2);
  EXPECT_THAT(exit.error, HasSubstr("invalid worker spec: retained.phases[0].target: must be "
                                    "resolved to bytes"));

  WorkerSpec no_kind;
  no_kind.mutable_plan()->set_plan_id("no-kind");
  worker = LaunchOrDie(launcher, no_kind);
  ASSERT_NE(worker, nullptr);
  exit = worker->WaitExit(absl::Seconds(20));
  EXPECT_EQ(exit.exit_code, 2);
  EXPECT_THAT(exit.error, HasSubstr("a plan needs a kind"));
}

TEST(WorkerProcessTest, SigkillFromOutsideIsSignaled) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, RetainedSpec(kMiB));
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(Eventually([&] { return StateOf(*worker) == PlanState::kHolding; }));
  ASSERT_EQ(kill(worker->pid(), SIGKILL), 0);
  const WorkerExit exit = worker->WaitExit(absl::Seconds(20));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kSignaled) << exit.error;
  EXPECT_EQ(exit.signal, SIGKILL);
  EXPECT_THAT(exit.error, HasSubstr("SIGKILL"));
}

TEST(WorkerProcessTest, SigtermStopsGracefully) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, RetainedSpec(8 * kMiB));
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(Eventually([&] { return StateOf(*worker) == PlanState::kHolding; }));
  ASSERT_EQ(kill(worker->pid(), SIGTERM), 0);
  const WorkerExit exit = worker->WaitExit(absl::Seconds(20));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kStopped) << exit.error;
  EXPECT_EQ(worker->Counters().state, PlanState::kCancelled);
}

TEST(WorkerProcessTest, WaitExitKillsAWorkerThatDoesNotStop) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, RetainedSpec(kMiB));
  ASSERT_NE(worker, nullptr);
  const pid_t pid = worker->pid();
  const WorkerExit exit = worker->WaitExit(absl::Milliseconds(100));  // No stop requested.
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kKilledByAgent) << exit.error;
  EXPECT_TRUE(ProcessGone(pid));
}

TEST(WorkerProcessTest, DestructorKillsARunningWorker) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, RetainedSpec(kMiB));
  ASSERT_NE(worker, nullptr);
  const pid_t pid = worker->pid();
  worker.reset();
  EXPECT_TRUE(ProcessGone(pid));
}

TEST(WorkerProcessTest, MissingBinaryFailsTheLaunch) {
  WorkerProcessLauncher launcher("/nonexistent/memload-worker");
  EXPECT_THAT(
      launcher.Launch(RetainedSpec(kMiB)),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("executing /nonexistent/memload-worker")));
}

TEST(WorkerProcessTest, OomKillInAMemoryCgroupIsOomKilled) {
  absl::StatusOr<::memload::testing::TestCgroup> cgroup =
      ::memload::testing::TestCgroup::Create("memload-test", 64 * kMiB);
  if (!cgroup.ok()) GTEST_SKIP() << "cannot create a memory cgroup here: " << cgroup.status();
  WorkerProcessLauncher launcher(InCgroup(*cgroup));
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, RetainedSpec(256 * kMiB));
  ASSERT_NE(worker, nullptr);
  const WorkerExit exit = worker->WaitExit(absl::Seconds(30));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kOomKilled) << exit.error;
  EXPECT_EQ(exit.signal, SIGKILL);
  EXPECT_THAT(exit.error, HasSubstr("OOM killer"));
  // What the worker had published by then: short of the target, never reached.
  EXPECT_LT(worker->Counters().payload_bytes, 256 * kMiB);
  EXPECT_FALSE(worker->Extras().target_reached.has_value());
  std::cerr << "OOM-killed worker: " << exit.error << "; last counters: payload "
            << worker->Counters().payload_bytes << " resident " << worker->Counters().resident_bytes
            << " state " << PlanStateName(worker->Counters().state) << "\n";
  worker.reset();
  // The test process is unharmed and can still allocate.
  std::vector<char> still_fine(16 * kMiB, 1);
  EXPECT_EQ(still_fine[8 * kMiB], 1);
}

TEST(WorkerProcessTest, PlacedWorkerIsJoinedBeforeItAllocatesAndChargedThere) {
  absl::StatusOr<::memload::testing::TestCgroup> cgroup =
      ::memload::testing::TestCgroup::Create("memload-placed", 256 * kMiB);
  if (!cgroup.ok()) GTEST_SKIP() << "cannot create a memory cgroup here: " << cgroup.status();
  const uint64_t before = cgroup->Usage();

  WorkerProcessLauncher launcher(kWorkerBinary);
  WorkerSpec spec = RetainedSpec(64 * kMiB);
  spec.set_join_cgroup_dir(cgroup->dir());
  std::unique_ptr<Worker> worker = LaunchOrDie(launcher, spec);
  ASSERT_NE(worker, nullptr);
  ASSERT_TRUE(Eventually([&] { return StateOf(*worker) == PlanState::kHolding; }));
  // In the target's cgroup.procs, and /proc says so.
  const std::string procs = ReadTrimmed(cgroup->procs_file());
  EXPECT_THAT(std::vector<std::string>(absl::StrSplit(procs, '\n')),
              ::testing::Contains(absl::StrCat(worker->pid())));
  // The whole load, and the worker's image, is charged to the target.
  const uint64_t charged = cgroup->Usage() - before;
  EXPECT_GE(charged, 64 * kMiB);
  // Under TSan the worker's shadow memory (2-4x what it writes) is charged there too; under
  // ASan its runtime's fixed few MiB.
  if (!kThreadSanitizer) {
    EXPECT_LE(charged, 64 * kMiB * 105 / 100 + 4 * kMiB + kAsanProcessOverheadBytes);
  }
  worker->RequestStop();
  EXPECT_EQ(worker->WaitExit(absl::Seconds(20)).kind, WorkerExit::Kind::kStopped);
}

TEST(WorkerProcessTest, PlacementThatCannotBeJoinedFailsTheLaunchAndLeavesNoWorker) {
  WorkerProcessLauncher launcher(kWorkerBinary);
  WorkerSpec spec = RetainedSpec(64 * kMiB);
  spec.set_join_cgroup_dir("/sys/fs/cgroup/memory/no-such-cgroup-memload");
  const int fds = OpenFdCount();
  absl::StatusOr<std::unique_ptr<Worker>> worker = launcher.Launch(spec);
  EXPECT_THAT(worker, StatusIs(absl::StatusCode::kNotFound,
                               HasSubstr("no-such-cgroup-memload/cgroup.procs")));
  // The stopped child was killed and reaped; nothing leaked.
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(OpenFdCount(), fds);
}

TEST(WorkerProcessTest, WorkerDiesWithTheProcessThatLaunchedIt) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    // The helper stands in for an agent: it launches a worker and dies without cleaning
    // up (no destructors, no atexit), as a crashed agent would.
    close(pipe_fds[0]);
    WorkerProcessLauncher launcher(kWorkerBinary);
    absl::StatusOr<std::unique_ptr<Worker>> worker = launcher.Launch(RetainedSpec(8 * kMiB));
    const int pid = worker.ok() ? (*worker)->pid() : -1;
    (void)!write(pipe_fds[1], &pid, sizeof(pid));
    _exit(0);
  }
  close(pipe_fds[1]);
  int worker_pid = -1;
  ASSERT_EQ(read(pipe_fds[0], &worker_pid, sizeof(worker_pid)),
            static_cast<ssize_t>(sizeof(worker_pid)));
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(helper, &status, 0), helper);
  ASSERT_GT(worker_pid, 0);
  EXPECT_TRUE(Eventually([&] { return ProcessGone(worker_pid); }, absl::Seconds(2)))
      << "worker " << worker_pid << " outlived the process that launched it";
  if (!ProcessGone(worker_pid)) kill(worker_pid, SIGKILL);
}

}  // namespace
}  // namespace agent
}  // namespace memload
