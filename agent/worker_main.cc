// memload-worker: runs one plan for memload-agent in a process of its own, so that the
// kernel's OOM killer takes the load (oom_score_adj 1000), never the agent.
//
// Started only by WorkerProcessLauncher (worker_process.h), which has already set
// PR_SET_PDEATHSIG, oom_score_adj and the cgroup, and hands over three descriptors:
//   fd 3  a memfd holding a serialized memload.agent.WorkerSpec
//   fd 4  a memfd holding the agent-constructed WorkerShared block (worker_shared.h)
//   fd 5  the read end of the control pipe: lines "target <bytes>", "ceiling <bytes>",
//         "stop"; EOF means the agent is gone, which stops the plan too
// argv: memload-worker [--parent-pid=PID]; if our parent is no longer PID we exit at once
// (the agent died before PR_SET_PDEATHSIG could matter).
//
// SIGTERM or SIGINT stop the plan gracefully. Exit status:
//   0  the plan completed, or was stopped (memory released)
//   2  unusable invocation or a malformed spec; the reason is in the shared block
//   3  the plan failed (e.g. ResourceExhausted); the reason is in the shared block
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/plan_convert.h"
#include "agent/worker.pb.h"
#include "agent/worker_shared.h"
#include "core/base/status_macros.h"
#include "core/block_allocator.h"
#include "core/clock.h"
#include "core/plan.h"
#include "core/retained_plan.h"
#include "core/streaming.h"
#include "core/utilization_plan.h"

namespace memload {
namespace agent {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitBadSpec = 2;
constexpr int kExitPlanFailed = 3;

// A spec is a few hundred bytes; anything this large is not one.
constexpr off_t kMaxSpecBytes = 16 << 20;
// Control lines are short; a longer one is garbage and is dropped.
constexpr size_t kMaxControlLine = 256;

void Log(absl::string_view message) {
  const std::string line = absl::StrCat("memload-worker[", getpid(), "]: ", message, "\n");
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

absl::StatusOr<WorkerSpec> ReadSpec(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, "fd 3 (the spec memfd)");
  if (st.st_size <= 0 || st.st_size > kMaxSpecBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("fd 3 (the spec memfd) holds ", st.st_size, " bytes: not a spec"));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  // pread: the agent's write left the shared file offset at the end.
  while (done < bytes.size()) {
    const ssize_t n = pread(fd, &bytes[done], bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "reading fd 3 (the spec memfd)");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  WorkerSpec spec;
  if (done != bytes.size() || !spec.ParseFromString(bytes)) {
    return absl::InvalidArgumentError("fd 3 does not hold a serialized WorkerSpec");
  }
  return spec;
}

absl::StatusOr<WorkerShared*> MapShared(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, "fd 4 (the shared memfd)");
  if (st.st_size < static_cast<off_t>(sizeof(WorkerShared))) {
    return absl::InvalidArgumentError(absl::StrCat("fd 4 (the shared memfd) is ", st.st_size,
                                                   " bytes, less than the ", sizeof(WorkerShared),
                                                   " of WorkerShared"));
  }
  void* memory = mmap(nullptr, sizeof(WorkerShared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (memory == MAP_FAILED) return absl::ErrnoToStatus(errno, "mapping fd 4 (the shared memfd)");
  auto* shared = static_cast<WorkerShared*>(memory);
  if (!shared->Valid()) {
    munmap(memory, sizeof(WorkerShared));
    return absl::InvalidArgumentError(
        "fd 4 does not hold a WorkerShared of this version (agent and worker builds differ?)");
  }
  return shared;
}

// The plan to run. `utilization` is set for utilization plans, which publish extras.
struct BuiltPlan {
  std::unique_ptr<Plan> plan;
  UtilizationPlan* utilization = nullptr;
  bool has_target = true;  // Streaming plans have none to reach.
};

// InvalidArgument for a malformed spec; other codes when the plan cannot be set up.
absl::StatusOr<BuiltPlan> BuildPlan(const WorkerSpec& spec, PlanCounters* counters) {
  BuiltPlan built;
  const v1::PlanSpec& plan = spec.plan();
  switch (plan.kind_case()) {
    case v1::PlanSpec::kRetained: {
      MEMLOAD_ASSIGN_OR_RETURN(RetainedPlanSpec retained, ToRetainedPlanSpec(plan.retained()));
      MEMLOAD_ASSIGN_OR_RETURN(built.plan, RetainedPlan::Create(retained, counters));
      break;
    }
    case v1::PlanSpec::kStreaming: {
      MEMLOAD_ASSIGN_OR_RETURN(StreamOptions options, ToStreamOptions(plan.streaming()));
      MEMLOAD_ASSIGN_OR_RETURN(built.plan, StreamingPlan::Create(options, counters));
      built.has_target = false;
      break;
    }
    case v1::PlanSpec::kUtilization: {
      // The agent resolves the reference; UNSPECIFIED is read as NODE.
      MemoryUseSource source = spec.reference() == v1::UtilizationPlan::REFERENCE_CGROUP
                                   ? CgroupMemoryUse(spec.cgroup_dir())
                                   : NodeMemoryUse();
      MEMLOAD_ASSIGN_OR_RETURN(UtilizationSpec utilization,
                               ToUtilizationSpec(plan.utilization(), std::move(source)));
      MEMLOAD_ASSIGN_OR_RETURN(std::unique_ptr<UtilizationPlan> created,
                               UtilizationPlan::Create(utilization, counters));
      built.utilization = created.get();
      built.plan = std::move(created);
      break;
    }
    case v1::PlanSpec::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "plan: a plan needs a kind: one of retained, utilization, streaming");
  }
  return built;
}

// Reads control commands and stop signals on a thread of its own, so the main thread can
// sleep in Plan::Wait(). Returns after a stop (command, EOF, SIGTERM/SIGINT) or when
// `wake_fd` becomes readable (the plan ended by itself).
void ControlLoop(Plan* plan, int signal_fd, int wake_fd) {
  std::string pending;
  bool discarding = false;  // Inside an over-long line: drop it up to its newline.
  for (;;) {
    pollfd fds[3] = {{kControlFd, POLLIN, 0}, {signal_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      Log(absl::StrCat("poll: ", std::strerror(errno), "; stopping the plan"));
      plan->Cancel();
      return;
    }
    if (fds[2].revents != 0) return;
    if (fds[1].revents != 0) {
      signalfd_siginfo info;
      (void)!read(signal_fd, &info, sizeof(info));
      plan->Cancel();
      return;
    }
    if (fds[0].revents == 0) continue;
    char buffer[4096];
    const ssize_t n = read(kControlFd, buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {  // EOF: the agent closed the pipe or died.
      plan->Cancel();
      return;
    }
    pending.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      if (discarding) {
        discarding = false;
        continue;
      }
      uint64_t bytes = 0;
      if (line == "stop") {
        plan->Cancel();
        return;
      } else if (absl::StartsWith(line, "target ") &&
                 absl::SimpleAtoi(absl::string_view(line).substr(7), &bytes)) {
        const absl::Status status = plan->SetTarget(bytes);
        if (!status.ok()) Log(absl::StrCat("target ", bytes, ": ", status.ToString()));
      } else if (absl::StartsWith(line, "ceiling ") &&
                 absl::SimpleAtoi(absl::string_view(line).substr(8), &bytes)) {
        plan->SetCeiling(bytes);
      } else {
        Log(absl::StrCat("ignoring unknown control line \"", absl::CEscape(line), "\""));
      }
    }
    if (pending.size() > kMaxControlLine) {
      Log("ignoring an over-long control line");
      pending.clear();
      discarding = true;
    }
  }
}

void PublishExtras(const BuiltPlan& built, WorkerShared* shared, bool* reached) {
  if (!*reached && built.has_target &&
      built.plan->counters().Snapshot().state == PlanState::kHolding) {
    *reached = true;
    // The plan's clock (Clock::Real() in this process): a wall-clock moment users read.
    shared->SetTargetReached(built.plan->clock()->Now());
  }
  if (built.utilization != nullptr) {
    shared->utilization_micro_percent.store(
        WorkerShared::ToMicroPercent(built.utilization->utilization_percent()),
        std::memory_order_relaxed);
    shared->max_deviation_micro_percent.store(
        WorkerShared::ToMicroPercent(built.utilization->max_deviation_percent()),
        std::memory_order_relaxed);
  }
}

// Waits for the plan to end, publishing extras meanwhile. Holding costs no CPU: once a
// retained plan has reached its target (and for streaming plans at once) the thread
// sleeps in Wait(); before that it looks at the state every 10 ms (100 ms after the first
// 2 s) to timestamp the moment; utilization plans refresh their numbers every 100 ms.
absl::Status WaitForPlan(const BuiltPlan& built, WorkerShared* shared) {
  Clock* const clock = built.plan->clock();  // The plan's: its waits below use it too.
  const absl::Time start = clock->Now();
  bool reached = false;
  for (;;) {
    absl::Duration wait = absl::InfiniteDuration();
    if (built.utilization != nullptr) {
      wait = absl::Milliseconds(100);
    } else if (built.has_target && !reached) {
      wait = clock->Now() - start < absl::Seconds(2) ? absl::Milliseconds(10)
                                                     : absl::Milliseconds(100);
    }
    const absl::Status status =
        wait == absl::InfiniteDuration() ? built.plan->Wait() : built.plan->WaitFor(wait);
    PublishExtras(built, shared, &reached);
    if (!absl::IsDeadlineExceeded(status)) return status;
    // A plan whose own final status is DeadlineExceeded must not loop us forever.
    if (IsTerminal(built.plan->counters().Snapshot().state)) return built.plan->Wait();
  }
}

int Fail(WorkerShared* shared, int code, absl::string_view text) {
  Log(text);
  if (shared != nullptr) shared->SetError(text);
  return code;
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    int parent = 0;
    if (absl::StartsWith(arg, "--parent-pid=") &&
        absl::SimpleAtoi(arg.substr(strlen("--parent-pid=")), &parent)) {
      if (getppid() != parent) {
        Log("the agent is already gone; exiting");
        return kExitOk;
      }
    } else {
      return Fail(nullptr, kExitBadSpec, absl::StrCat("unknown argument \"", arg, "\""));
    }
  }
  for (int fd : {kSpecFd, kSharedFd, kControlFd}) {
    if (fcntl(fd, F_GETFD) < 0) {
      return Fail(nullptr, kExitBadSpec,
                  absl::StrCat("fd ", fd,
                               " is not open: memload-worker is started by "
                               "memload-agent only"));
    }
  }
  absl::StatusOr<WorkerShared*> mapped = MapShared(kSharedFd);
  if (!mapped.ok()) return Fail(nullptr, kExitBadSpec, mapped.status().ToString());
  WorkerShared* shared = *mapped;

  absl::StatusOr<WorkerSpec> spec = ReadSpec(kSpecFd);
  if (!spec.ok()) return Fail(shared, kExitBadSpec, spec.status().ToString());
  close(kSpecFd);

  // Stop signals are taken by the control thread through a signalfd; block them before any
  // thread starts so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  const int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  const int wake_fd = eventfd(0, EFD_CLOEXEC);
  if (signal_fd < 0 || wake_fd < 0) {
    return Fail(shared, kExitPlanFailed, absl::ErrnoToStatus(errno, "signalfd/eventfd").ToString());
  }

  // The process allocator (tcmalloc) keeps what a plan frees until the plan gives it back
  // in bulk (a set shrinking or released, a streaming plan's end): a background release
  // would make a churning plan fault its blocks' pages in again (README "Performance").
  KeepFreedMallocMemory();

  absl::StatusOr<BuiltPlan> built = BuildPlan(*spec, &shared->counters);
  if (!built.ok()) {
    const bool malformed = absl::IsInvalidArgument(built.status());
    return Fail(shared, malformed ? kExitBadSpec : kExitPlanFailed,
                malformed ? absl::StrCat("invalid worker spec: ", built.status().message())
                          : built.status().ToString());
  }
  built->plan->SetCeiling(spec->initial_ceiling_bytes());
  const absl::Status started = built->plan->Start();
  if (!started.ok()) return Fail(shared, kExitPlanFailed, started.ToString());

  std::thread control(ControlLoop, built->plan.get(), signal_fd, wake_fd);
  const absl::Status final_status = WaitForPlan(*built, shared);
  const uint64_t one = 1;
  (void)!write(wake_fd, &one, sizeof(one));
  control.join();
  if (!final_status.ok()) return Fail(shared, kExitPlanFailed, final_status.ToString());
  return kExitOk;
}

}  // namespace
}  // namespace agent
}  // namespace memload

int main(int argc, char** argv) { return memload::agent::Main(argc, argv); }
