#include "agent/worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/cgroup_join.h"
#include "agent/worker_shared.h"
#include "core/node_readers.h"
#include "core/sync/mutex.h"
#include "proto/plan_rules.h"

namespace memload {
namespace agent {
namespace {

constexpr int kFirstFreeFd = 6;
// Without a pidfd, WaitExit looks at the child this often.
constexpr absl::Duration kReapPollInterval = absl::Milliseconds(5);

// What the child writes to the error pipe when it cannot exec.
struct LaunchFailure {
  int32_t step;
  int32_t error;  // errno
};
enum LaunchStep : int32_t {
  kStepPdeathsig = 1,
  kStepCgroup = 2,
  kStepOomScoreAdj = 3,
  kStepDescriptors = 4,
  kStepExec = 5,
  kStepWaitJoin = 6,
};

absl::string_view StepName(int32_t step) {
  switch (step) {
    case kStepPdeathsig:
      return "setting PR_SET_PDEATHSIG";
    case kStepCgroup:
      return "joining the cgroup";
    case kStepOomScoreAdj:
      return "writing /proc/self/oom_score_adj";
    case kStepDescriptors:
      return "setting up descriptors";
    case kStepExec:
      return "executing";
    case kStepWaitJoin:
      return "waiting to be moved into the target cgroup";
  }
  return "starting";
}

// Owns one descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Moves `fd` to a number >= kFirstFreeFd (close-on-exec), so the child's dup2 onto 3, 4, 5
// can never overwrite another of its sources.
// Returns false (errno set) on failure.
bool MoveAboveTargets(UniqueFd* fd) {
  if (fd->get() >= kFirstFreeFd) return true;
  const int moved = fcntl(fd->get(), F_DUPFD_CLOEXEC, kFirstFreeFd);
  if (moved < 0) return false;
  fd->Reset(moved);
  return true;
}

// ---- OOM kill counters ----

// The "oom_kill N" line of memory.events / memory.oom_control / /proc/vmstat; nullopt when
// the file cannot be read or has no such line (kernels before 4.13).
std::optional<uint64_t> ReadOomKillLine(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  if (!contents.ok()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*contents, '\n')) {
    if (absl::StartsWith(line, "oom_kill ") || absl::StartsWith(line, "oom_kill\t")) {
      absl::StatusOr<uint64_t> count = ParseOomKillCount(line);
      if (count.ok()) return *count;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

struct OomWatch {
  std::string cgroup_file;  // "" = no readable memory cgroup counter.
  std::optional<uint64_t> cgroup_before;
  std::optional<uint64_t> node_before;

  // Whether an OOM kill was counted since launch; `why` names the counter.
  bool Rose(std::string* why) const {
    if (cgroup_before.has_value()) {
      const std::optional<uint64_t> now = ReadOomKillLine(cgroup_file);
      if (now.has_value()) {
        *why =
            absl::StrCat("oom_kill of ", cgroup_file, " rose from ", *cgroup_before, " to ", *now);
        return *now > *cgroup_before;
      }
    }
    if (node_before.has_value()) {
      const std::optional<uint64_t> now = ReadOomKillLine("/proc/vmstat");
      if (now.has_value()) {
        *why = absl::StrCat("oom_kill of /proc/vmstat rose from ", *node_before, " to ", *now);
        return *now > *node_before;
      }
    }
    return false;
  }
};

// The memory cgroup the worker will run in: the one it is told to join, or ours (it
// inherits it). Read before fork, so a worker killed at once still finds a baseline.
OomWatch WatchOomKills(const std::string& cgroup_procs_path, const std::string& join_dir) {
  OomWatch watch;
  std::string dir = join_dir;
  if (!dir.empty()) {
  } else if (!cgroup_procs_path.empty()) {
    const size_t slash = cgroup_procs_path.rfind('/');
    dir = slash == std::string::npos ? "." : cgroup_procs_path.substr(0, slash);
  } else {
    absl::StatusOr<std::string> cgroup = ReadFileToString("/proc/self/cgroup");
    absl::StatusOr<std::string> mountinfo = ReadFileToString("/proc/self/mountinfo");
    if (cgroup.ok() && mountinfo.ok()) {
      absl::StatusOr<std::string> found = FindMemoryCgroupPath(*cgroup, *mountinfo);
      if (found.ok()) dir = *found;
    }
  }
  if (!dir.empty()) {
    // v2's memory.events.local and v1's memory.oom_control count this cgroup's own kills
    // only; v2's memory.events also those in child cgroups.
    for (const char* file : {"/memory.events.local", "/memory.events", "/memory.oom_control"}) {
      const std::string path = dir + file;
      watch.cgroup_before = ReadOomKillLine(path);
      if (watch.cgroup_before.has_value()) {
        watch.cgroup_file = path;
        break;
      }
    }
  }
  watch.node_before = ReadOomKillLine("/proc/vmstat");
  return watch;
}

std::string SignalName(int signal) {
  const char* abbreviation = sigabbrev_np(signal);
  if (abbreviation == nullptr) return absl::StrCat("signal ", signal);
  return absl::StrCat("SIG", abbreviation);
}

// ---- The child, between fork and exec: async-signal-safe calls only ----

// Everything the child needs, prepared before fork (no allocation after it).
struct ChildSetup {
  pid_t parent = 0;
  const char* binary = nullptr;
  char* const* argv = nullptr;
  const char* cgroup_procs = nullptr;  // nullptr = stay.
  const char* oom_score_adj = nullptr;
  int spec_fd = -1;
  int shared_fd = -1;
  int control_fd = -1;
  int null_fd = -1;
  int error_fd = -1;
  int join_fd = -1;        // >= 0: wait for one byte here (the agent moved us) before going on.
  int join_write_fd = -1;  // The agent's end, closed at once so its death reads as EOF.
  int max_fd = 0;          // For the close-on-exec fallback loop.
};

[[noreturn]] void ChildFail(const ChildSetup& setup, int32_t step) {
  const LaunchFailure failure{step, errno};
  (void)!write(setup.error_fd, &failure, sizeof(failure));
  _exit(127);
}

bool WriteAll(int fd, const char* text) {
  const size_t length = strlen(text);
  return write(fd, text, length) == static_cast<ssize_t>(length);
}

bool WriteFile(const char* path, const char* text) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = WriteAll(fd, text);
  const int error = errno;
  close(fd);
  errno = error;
  return ok;
}

[[noreturn]] void RunChild(const ChildSetup& setup) {
  // Handlers are reset by exec anyway, but SIG_IGN (e.g. our SIGPIPE) would survive it.
  // All signals are still blocked here (the parent blocked them around fork).
  struct sigaction default_action;
  memset(&default_action, 0, sizeof(default_action));
  default_action.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) sigaction(signal, &default_action, nullptr);

  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(setup, kStepPdeathsig);
  // The agent may have died before the line above: then nobody would ever kill us.
  if (getppid() != setup.parent) _exit(0);
  // A placed worker waits, before it execs or allocates anything, until the agent has
  // moved it into the target cgroup: memory is charged where it is first touched.
  if (setup.join_fd >= 0) {
    close(setup.join_write_fd);
    char go = 0;
    ssize_t n;
    do {
      n = read(setup.join_fd, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(0);  // The agent gave up on us (and kills us).
    close(setup.join_fd);
  }
  // "0" is the writing process itself, in v1 and v2.
  if (setup.cgroup_procs != nullptr && !WriteFile(setup.cgroup_procs, "0")) {
    ChildFail(setup, kStepCgroup);
  }
  if (!WriteFile("/proc/self/oom_score_adj", setup.oom_score_adj)) {
    ChildFail(setup, kStepOomScoreAdj);
  }
  // Sources are all >= kFirstFreeFd, so these cannot clobber each other; dup2 clears
  // close-on-exec on the copies.
  if (dup2(setup.null_fd, STDIN_FILENO) < 0 || dup2(setup.spec_fd, kSpecFd) < 0 ||
      dup2(setup.shared_fd, kSharedFd) < 0 || dup2(setup.control_fd, kControlFd) < 0) {
    ChildFail(setup, kStepDescriptors);
  }
  // Every other descriptor closes at exec — including the error pipe, whose EOF tells the
  // parent that exec worked.
  if (close_range(kFirstFreeFd, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = kFirstFreeFd; fd < setup.max_fd; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(setup.binary, setup.argv, environ);
  ChildFail(setup, kStepExec);
}

// ---- The worker as the agent sees it ----

class WorkerProcess final : public Worker {
 public:
  WorkerProcess(pid_t pid, UniqueFd pidfd, UniqueFd control_fd, WorkerShared* shared, OomWatch oom)
      : pid_(pid),
        pidfd_(std::move(pidfd)),
        control_fd_(std::move(control_fd)),
        shared_(shared),
        oom_(std::move(oom)) {}

  ~WorkerProcess() override {
    {
      MutexLock lock(&mutex_);
      if (!exit_.has_value()) {
        kill(pid_, SIGKILL);
        ReapLocked(/*block=*/true, /*killed_by_agent=*/true);
      }
    }
    munmap(shared_, kWorkerSharedMappingSize);
  }

  int pid() const override { return pid_; }

  PlanCountersSnapshot Counters() const override { return shared_->counters.Snapshot(); }

  WorkerExtras Extras() const override {
    WorkerExtras extras;
    extras.target_reached = shared_->TargetReached();
    extras.utilization_percent = WorkerShared::FromMicroPercent(
        shared_->utilization_micro_percent.load(std::memory_order_relaxed));
    extras.max_deviation_percent = WorkerShared::FromMicroPercent(
        shared_->max_deviation_micro_percent.load(std::memory_order_relaxed));
    return extras;
  }

  uint64_t ResidentBytes() const override {
    // Under the lock: once reaped, the pid may belong to someone else.
    MutexLock lock(&mutex_);
    if (exit_.has_value()) return 0;
    absl::StatusOr<ProcessMemory> memory = ReadProcessMemory(pid_);
    if (!memory.ok()) return 0;  // A zombie has no VmRSS.
    return memory->rss_anon_bytes + memory->rss_shmem_bytes;
  }

  absl::Status SetTarget(uint64_t target_bytes) override {
    return Send(absl::StrCat("target ", target_bytes, "\n"));
  }

  absl::Status SetCeiling(uint64_t ceiling_bytes) override {
    return Send(absl::StrCat("ceiling ", ceiling_bytes, "\n"));
  }

  void RequestStop() override {
    stop_requested_.store(true);
    const absl::Status sent = Send("stop\n");
    if (absl::IsUnavailable(sent)) {
      // The pipe is full: the worker is not reading. SIGTERM stops it as gracefully.
      MutexLock lock(&mutex_);
      if (!exit_.has_value()) kill(pid_, SIGTERM);
    }
  }

  std::optional<WorkerExit> PollExit() override {
    MutexLock lock(&mutex_);
    if (!exit_.has_value()) ReapLocked(/*block=*/false, /*killed_by_agent=*/false);
    return exit_;
  }

  WorkerExit WaitExit(absl::Duration timeout) override {
    // Real time on purpose: this waits for the kernel (poll(2) on the pidfd, or a reap
    // poll), which no simulated clock can wake; PlanManager's own stop deadlines are on its
    // Clock and hand this only the time that is left.
    const absl::Time deadline = timeout == absl::InfiniteDuration()
                                    ? absl::InfiniteFuture()
                                    : absl::Now() + std::max(timeout, absl::ZeroDuration());
    for (;;) {
      if (std::optional<WorkerExit> exit = PollExit()) return *exit;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      if (pidfd_.get() >= 0) {
        // Readable once the process has exited; no lock held, so others may poll too.
        pollfd fd{pidfd_.get(), POLLIN, 0};
        const int64_t ms =
            left == absl::InfiniteDuration()
                ? -1
                : std::clamp<int64_t>(
                      absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), 1,
                      INT_MAX);
        poll(&fd, 1, static_cast<int>(ms));
      } else {
        absl::SleepFor(std::min(left, kReapPollInterval));
      }
    }
    MutexLock lock(&mutex_);
    if (!exit_.has_value()) {
      kill(pid_, SIGKILL);  // Still unreaped, so the pid is still ours.
      ReapLocked(/*block=*/true, /*killed_by_agent=*/true);
    }
    return *exit_;
  }

 private:
  absl::Status Send(const std::string& line) {
    MutexLock lock(&mutex_);
    if (exit_.has_value()) return absl::FailedPreconditionError("worker has exited");
    // Lines are far below PIPE_BUF, so a write is all or nothing.
    const ssize_t n = write(control_fd_.get(), line.data(), line.size());
    if (n == static_cast<ssize_t>(line.size())) return absl::OkStatus();
    if (n < 0 && errno == EPIPE) return absl::FailedPreconditionError("worker has exited");
    if (n < 0 && errno == EAGAIN) {
      return absl::UnavailableError("worker is not reading its control pipe (pipe full)");
    }
    return absl::ErrnoToStatus(n < 0 ? errno : EIO, "writing to the worker's control pipe");
  }

  // Sets exit_ once the child is reaped.
  void ReapLocked(bool block, bool killed_by_agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    int status = 0;
    pid_t reaped;
    do {
      reaped = waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == 0) return;  // Still running.
    if (reaped < 0) {
      // ECHILD: someone else reaped it, against the contract in the header.
      WorkerExit exit;
      exit.kind = WorkerExit::Kind::kFailed;
      const int error = errno;
      exit.error = absl::ErrnoToStatus(error, absl::StrCat("waitpid(", pid_, ")")).ToString();
      exit_ = exit;
      return;
    }
    exit_ = Classify(status, killed_by_agent);
  }

  WorkerExit Classify(int status, bool killed_by_agent) const {
    WorkerExit exit;
    if (WIFEXITED(status)) {
      exit.exit_code = WEXITSTATUS(status);
      if (exit.exit_code == 0) {
        // The plan's own last word decides: a plan that completed just as a stop arrived
        // did complete.
        const PlanState state = shared_->counters.Snapshot().state;
        const bool completed = state == PlanState::kCompleted;
        const bool cancelled = state == PlanState::kCancelled;
        exit.kind = completed || (!cancelled && !stop_requested_.load())
                        ? WorkerExit::Kind::kCompleted
                        : WorkerExit::Kind::kStopped;
        return exit;
      }
      exit.kind = WorkerExit::Kind::kFailed;
      exit.error = shared_->Error();
      if (exit.error.empty()) {
        exit.error = absl::StrCat("memload-worker exited with status ", exit.exit_code,
                                  " without saying why");
      }
      return exit;
    }
    exit.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    const std::string name = SignalName(exit.signal);
    std::string why;
    if (exit.signal == SIGKILL && killed_by_agent) {
      exit.kind = WorkerExit::Kind::kKilledByAgent;
      exit.error = "memload-worker did not exit in time; the agent killed it (SIGKILL)";
    } else if (exit.signal == SIGKILL && oom_.Rose(&why)) {
      exit.kind = WorkerExit::Kind::kOomKilled;
      exit.error = absl::StrCat("killed by the kernel's OOM killer (SIGKILL; ", why, ")");
    } else {
      exit.kind = WorkerExit::Kind::kSignaled;
      exit.error =
          absl::StrCat("memload-worker was killed by ", name, " (", strsignal(exit.signal), ")");
    }
    return exit;
  }

  const pid_t pid_;
  const UniqueFd pidfd_;        // -1 when the kernel has no pidfd_open.
  const UniqueFd control_fd_;   // Write end, O_NONBLOCK.
  WorkerShared* const shared_;  // Mapped until the destructor; lock-free fields.
  const OomWatch oom_;
  std::atomic<bool> stop_requested_{false};
  mutable Mutex mutex_;
  // Set once the process is reaped (after which pid_ is not ours).
  std::optional<WorkerExit> exit_ ABSL_GUARDED_BY(mutex_);
};

// Unmaps the shared block unless released to a WorkerProcess.
struct MappingGuard {
  void* memory = nullptr;
  ~MappingGuard() {
    if (memory != nullptr) munmap(memory, kWorkerSharedMappingSize);
  }
};

absl::Status ResourceError(int error, absl::string_view what) {
  if (error == EMFILE || error == ENFILE || error == ENOMEM || error == EAGAIN || error == ENOSPC) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", std::strerror(error)));
  }
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(error)));
}

}  // namespace

WorkerProcessLauncher::WorkerProcessLauncher(std::string worker_binary)
    : WorkerProcessLauncher(WorkerProcessOptions{std::move(worker_binary), ""}) {}

WorkerProcessLauncher::WorkerProcessLauncher(WorkerProcessOptions options)
    : options_(std::move(options)) {
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { signal(SIGPIPE, SIG_IGN); });
}

absl::StatusOr<std::unique_ptr<Worker>> WorkerProcessLauncher::Launch(const WorkerSpec& spec) {
  const int oom_score_adj = spec.plan().has_oom_score_adj() ? spec.plan().oom_score_adj()
                                                            : plan_rules::kDefaultOomScoreAdj;
  if (std::optional<std::string> problem = plan_rules::OomScoreAdjProblem(oom_score_adj)) {
    return plan_rules::FieldError("plan.oom_score_adj", *problem);
  }

  // The spec, in a memfd the worker reads as fd 3.
  std::string serialized;
  if (!spec.SerializeToString(&serialized)) {
    return absl::InternalError("cannot serialize the WorkerSpec");
  }
  UniqueFd spec_fd(memfd_create("memload-worker-spec", MFD_CLOEXEC));
  if (spec_fd.get() < 0) return ResourceError(errno, "memfd_create for the worker spec");
  for (size_t done = 0; done < serialized.size();) {
    const ssize_t n = write(spec_fd.get(), serialized.data() + done, serialized.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ResourceError(n < 0 ? errno : EIO, "writing the worker spec");
    done += static_cast<size_t>(n);
  }

  // The shared block, constructed here, mapped by the worker from fd 4.
  UniqueFd shared_fd(memfd_create("memload-worker-shared", MFD_CLOEXEC));
  if (shared_fd.get() < 0) return ResourceError(errno, "memfd_create for the shared block");
  if (ftruncate(shared_fd.get(), kWorkerSharedMappingSize) != 0) {
    return ResourceError(errno, "sizing the shared block");
  }
  MappingGuard mapping;
  void* memory = mmap(nullptr, kWorkerSharedMappingSize, PROT_READ | PROT_WRITE, MAP_SHARED,
                      shared_fd.get(), 0);
  if (memory == MAP_FAILED) return ResourceError(errno, "mapping the shared block");
  mapping.memory = memory;
  WorkerShared* shared = new (memory) WorkerShared();

  int control[2];
  if (pipe2(control, O_CLOEXEC) != 0) return ResourceError(errno, "pipe for worker control");
  UniqueFd control_read(control[0]);
  UniqueFd control_write(control[1]);
  // Non-blocking, so a worker that stopped reading cannot hang the agent.
  if (fcntl(control_write.get(), F_SETFL, O_NONBLOCK) != 0) {
    return ResourceError(errno, "fcntl(O_NONBLOCK) on the control pipe");
  }
  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) return ResourceError(errno, "pipe for launch errors");
  UniqueFd error_read(error_pipe[0]);
  UniqueFd error_write(error_pipe[1]);
  UniqueFd null_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null_fd.get() < 0) return ResourceError(errno, "opening /dev/null");
  const std::string& join_dir = spec.join_cgroup_dir();
  UniqueFd join_read;
  UniqueFd join_write;
  if (!join_dir.empty()) {
    int join_pipe[2];
    if (pipe2(join_pipe, O_CLOEXEC) != 0) return ResourceError(errno, "pipe for the cgroup join");
    join_read.Reset(join_pipe[0]);
    join_write.Reset(join_pipe[1]);
  }
  for (UniqueFd* fd : {&spec_fd, &shared_fd, &control_read, &null_fd, &error_write}) {
    if (!MoveAboveTargets(fd)) return ResourceError(errno, "fcntl(F_DUPFD_CLOEXEC)");
  }
  if (join_read.get() >= 0 && !MoveAboveTargets(&join_read)) {
    return ResourceError(errno, "fcntl(F_DUPFD_CLOEXEC)");
  }

  // Everything the child touches, prepared before fork.
  const pid_t parent = getpid();
  std::string binary = options_.worker_binary;
  std::string parent_arg = absl::StrCat("--parent-pid=", parent);
  std::vector<char*> argv = {&binary[0], &parent_arg[0], nullptr};
  const std::string oom_text = absl::StrCat(oom_score_adj);
  struct rlimit files;
  const int max_fd = getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
                         ? static_cast<int>(std::min<rlim_t>(files.rlim_cur, INT_MAX))
                         : 65536;
  ChildSetup setup;
  setup.parent = parent;
  setup.binary = binary.c_str();
  setup.argv = argv.data();
  setup.cgroup_procs =
      options_.cgroup_procs_path.empty() ? nullptr : options_.cgroup_procs_path.c_str();
  setup.oom_score_adj = oom_text.c_str();
  setup.spec_fd = spec_fd.get();
  setup.shared_fd = shared_fd.get();
  setup.control_fd = control_read.get();
  setup.null_fd = null_fd.get();
  setup.error_fd = error_write.get();
  setup.join_fd = join_read.get();
  setup.join_write_fd = join_write.get();
  setup.max_fd = max_fd;
  if (!join_dir.empty()) setup.cgroup_procs = nullptr;  // The agent moves it instead.
  OomWatch oom = WatchOomKills(options_.cgroup_procs_path, join_dir);

  pid_t pid;
  {
    MutexLock lock(&launch_mutex_);
    // No signal handler of ours may run in the child before it resets them.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid = fork();
    if (pid == 0) RunChild(setup);
    const int fork_error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (pid < 0) return ResourceError(fork_error, "fork for memload-worker");
  }
  // The child has its copies; ours would keep the pipes open and hide EOFs.
  error_write.Reset();
  control_read.Reset();
  spec_fd.Reset();
  shared_fd.Reset();
  null_fd.Reset();
  join_read.Reset();

  if (!join_dir.empty()) {
    // The child waits on the join pipe: move it, check where it is, then release it.
    const absl::Status joined = JoinCgroup(pid, join_dir);
    if (!joined.ok()) {
      kill(pid, SIGKILL);
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return absl::Status(joined.code(),
                          absl::StrCat("cannot place memload-worker: ", joined.message()));
    }
    const char go = 'g';
    if (write(join_write.get(), &go, 1) != 1) {
      const int error = errno;
      kill(pid, SIGKILL);
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return absl::ErrnoToStatus(error, "releasing memload-worker after the cgroup join");
    }
    join_write.Reset();
  }

  LaunchFailure failure{};
  ssize_t n;
  do {
    n = read(error_read.get(), &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n != 0) {  // Not a clean EOF: the child reported a failure (and exits 127).
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (n != static_cast<ssize_t>(sizeof(failure))) {
      return absl::InternalError("memload-worker launch failed: short report from the child");
    }
    std::string step(StepName(failure.step));
    if (failure.step == kStepExec) absl::StrAppend(&step, " ", options_.worker_binary);
    if (failure.step == kStepCgroup) absl::StrAppend(&step, " ", options_.cgroup_procs_path);
    return absl::ErrnoToStatus(failure.error,
                               absl::StrCat("cannot start memload-worker (", step, ")"));
  }

  // A pidfd lets WaitExit sleep until the exit; without one it polls.
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  mapping.memory = nullptr;  // Now owned by the WorkerProcess.
  return std::unique_ptr<Worker>(
      new WorkerProcess(pid, std::move(pidfd), std::move(control_write), shared, std::move(oom)));
}

}  // namespace agent
}  // namespace memload
