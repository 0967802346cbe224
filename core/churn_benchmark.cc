// churn_benchmark: memload's streaming plan at realistic block sizes, the RSS a held set
// costs beyond its payload, and memload against stress-ng's vm stressor — the figures the
// process allocator is chosen on (README "Performance").
//
//   bazel build --config=bench //core:churn_benchmark
//   bazel-bin/core/churn_benchmark --mode=churn   # sizes × windows × workers
//   bazel-bin/core/churn_benchmark --mode=rss     # a held 1 GiB malloc set
//   bazel-bin/core/churn_benchmark --mode=peers   # memload vs stress-ng --vm, same block
//
// Output: one line per figure, "figure<TAB>key=value ...", for bazel/bench.sh to gather
// (it runs the binary once per allocator, preloading each, and prints the tables).
//
// churn: for every window, first the floor: the same blocks touched page by page with no
// allocator or plan in between ("churn_floor" lines). Then a StreamingPlan (touch page,
// backing malloc) per point, measured for --seconds
// once its window has been filled (steady state; at most 8 s of warm-up); GiB/s is bytes
// allocated (= touched) over wall time, CPU is this process's user+system time
// (getrusage: every worker thread), so "CPU s/GiB" holds even when other processes share
// the cores and wall time does not.
//
// The process allocator is set up as memload-worker sets it up (KeepFreedMallocMemory:
// tcmalloc's background release off), whichever allocator bench.sh preloads.
//
// peers: the same plan at --peer_block_size with touch fill (every byte written once),
// once through mmap/munmap per block (return_to_os: the kernel faults and zeroes every
// page, as stress-ng's vm stressor does when it re-maps its buffer every pass) and once
// through malloc (the allocator reuses memory); then `stress-ng --vm 1 --vm-bytes SIZE
// --vm-method M --vm-madvise normal` for each --stress_methods. stress-ng's work is counted
// from the kernel, not from its bogo ops: every pass maps a fresh buffer, so every 4 KiB
// page it touches is one minor fault of the child (getrusage of the waited-for child), and
// its CPU time is the child's; a one-pass run (--vm-ops 1) is subtracted as the start-up
// cost. memload's return-to-OS rows are cross-checked the same way (faults × 4 KiB).
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/block_allocator.h"
#include "core/node_readers.h"
#include "core/plan_counters.h"
#include "core/retained_set.h"
#include "core/streaming.h"
#include "core/touch.h"

ABSL_FLAG(std::string, mode, "churn", "churn, rss or peers");
ABSL_FLAG(std::string, sizes, "4096,65536,1048576", "churn: block sizes in bytes");
ABSL_FLAG(std::string, windows, "0,1000", "churn: windows (blocks kept alive)");
ABSL_FLAG(std::string, workers, "1,2,4", "churn: worker threads");
ABSL_FLAG(double, seconds, 0.4, "run time of every churn/peers point");
ABSL_FLAG(std::string, rss_sizes, "4096,1048576", "rss: block sizes of the 1 GiB set");
ABSL_FLAG(uint64_t, peer_block_size, 1 << 20, "peers: block (stress-ng --vm-bytes) size");
ABSL_FLAG(std::string, stress_methods, "write64,zero-one", "peers: stress-ng --vm-method values");
ABSL_FLAG(int, stress_seconds, 2, "peers: stress-ng --timeout (whole seconds)");

extern char** environ;

namespace memload {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

struct Usage {
  double cpu = 0;       // user + system seconds
  uint64_t minflt = 0;  // minor page faults
};

Usage SelfUsage() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return Usage{usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                   (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6,
               static_cast<uint64_t>(usage.ru_minflt)};
}

// This process's VmRSS (0 if /proc/self/status cannot be read).
uint64_t VmRssBytes() { return ReadProcessMemory(0).value_or(ProcessMemory{}).rss_bytes; }

std::vector<uint64_t> ParseList(const std::string& text) {
  std::vector<uint64_t> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    uint64_t value = 0;
    if (absl::SimpleAtoi(part, &value)) values.push_back(value);
  }
  return values;
}

struct StreamResult {
  double wall = 0;
  double cpu = 0;
  uint64_t bytes = 0;   // allocated (= touched for page/fill)
  uint64_t faults = 0;  // minor faults of this process during the run
};

absl::StatusOr<StreamResult> RunStream(const StreamOptions& options) {
  PlanCounters counters;
  absl::StatusOr<std::unique_ptr<StreamingPlan>> plan = StreamingPlan::Create(options, &counters);
  if (!plan.ok()) return plan.status();
  const Usage before = SelfUsage();
  const absl::Time start = absl::Now();
  if (absl::Status s = (*plan)->Start(); !s.ok()) return s;
  if (absl::Status s = (*plan)->Wait(); !s.ok()) return s;
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  const Usage after = SelfUsage();
  const PlanCountersSnapshot snapshot = counters.Snapshot();
  return StreamResult{wall, after.cpu - before.cpu, snapshot.bytes_allocated,
                      after.minflt - before.minflt};
}

// Steady-state churn: the plan runs until cancelled; the figures are taken over `measure`
// after its window has been filled and a quarter of it replaced (at most `warmup_cap` of
// warm-up), so the window's first faults do not count — churn is the loop that follows.
absl::StatusOr<StreamResult> RunSteadyStream(const StreamOptions& options, absl::Duration measure,
                                             absl::Duration warmup_cap) {
  PlanCounters counters;
  absl::StatusOr<std::unique_ptr<StreamingPlan>> plan = StreamingPlan::Create(options, &counters);
  if (!plan.ok()) return plan.status();
  if (absl::Status s = (*plan)->Start(); !s.ok()) return s;
  const absl::Time started = absl::Now();
  const uint64_t warm_blocks = options.window + options.window / 4;
  while (counters.allocations.load() < warm_blocks + 1 && absl::Now() - started < warmup_cap) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  absl::SleepFor(absl::Milliseconds(20));  // At least a few flush intervals in.
  const Usage before = SelfUsage();
  const uint64_t bytes_before = counters.bytes_allocated.load();
  const absl::Time start = absl::Now();
  absl::SleepFor(measure);
  const uint64_t bytes_after = counters.bytes_allocated.load();
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  const Usage after = SelfUsage();
  (*plan)->Cancel();
  if (absl::Status s = (*plan)->Wait(); !s.ok()) return s;
  return StreamResult{wall, after.cpu - before.cpu, bytes_after - bytes_before,
                      after.minflt - before.minflt};
}

void Print(const std::string& figure, const std::string& fields) {
  std::printf("%s\t%s\n", figure.c_str(), fields.c_str());
  std::fflush(stdout);
}

double ThreadCpuSeconds() {
  struct rusage usage;
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// The floor under churn with a window: no allocator and no plan, only the touch — `window`
// blocks malloc'd once and touched page by page in the order a full window reuses them
// (oldest first), on this thread, for `duration`. What the streaming plan costs above
// this is the allocator and the plan's own bookkeeping.
absl::StatusOr<double> TouchFloorCpuPerGiB(uint64_t size, uint64_t window,
                                           absl::Duration duration) {
  std::vector<void*> blocks;
  for (uint64_t i = 0; i < window; ++i) {
    void* block = std::malloc(size);
    if (block == nullptr) break;
    blocks.push_back(block);
    TouchBlock(block, size, TouchMode::kPage, i, /*fresh=*/false);
  }
  if (blocks.size() != window) {
    for (void* block : blocks) std::free(block);
    return absl::ResourceExhaustedError("touch floor: malloc failed");
  }
  uint64_t touched = 0;
  const double cpu_before = ThreadCpuSeconds();
  const absl::Time end = absl::Now() + duration;
  while (absl::Now() < end) {
    for (void* block : blocks) touched += TouchBlock(block, size, TouchMode::kPage, 0, false);
  }
  const double cpu = ThreadCpuSeconds() - cpu_before;
  for (void* block : blocks) std::free(block);
  return cpu / (touched / kGiB);
}

absl::Status Churn() {
  const absl::Duration duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  for (uint64_t size : ParseList(absl::GetFlag(FLAGS_sizes))) {
    for (uint64_t window : ParseList(absl::GetFlag(FLAGS_windows))) {
      if (window != 0) {
        absl::StatusOr<double> floor = TouchFloorCpuPerGiB(size, window, duration);
        if (!floor.ok()) return floor.status();
        Print("churn_floor",
              absl::StrCat("size=", size, " window=", window, " cpu_s_per_gib=", *floor));
      }
      for (uint64_t workers : ParseList(absl::GetFlag(FLAGS_workers))) {
        StreamOptions options;
        options.block_size = size;
        options.touch = TouchMode::kPage;
        options.window = window;
        options.workers = static_cast<uint32_t>(workers);
        absl::StatusOr<StreamResult> r = RunSteadyStream(options, duration, absl::Seconds(8));
        if (!r.ok()) return r.status();
        const double gib = r->bytes / kGiB;
        Print("churn", absl::StrCat("size=", size, " window=", window, " workers=", workers,
                                    " gib_per_s=", gib / r->wall, " cpu_s_per_gib=", r->cpu / gib));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Rss() {
  constexpr uint64_t kSet = uint64_t{1} << 30;
  for (uint64_t size : ParseList(absl::GetFlag(FLAGS_rss_sizes))) {
    const uint64_t before = VmRssBytes();
    uint64_t held = 0, bookkeeping = 0;
    {
      RetainedSetOptions options;
      options.block_size = size;
      options.touch = TouchMode::kPage;
      options.backing = Backing::kMalloc;
      absl::StatusOr<RetainedSet> set = RetainedSet::Create(options, kSet / size);
      if (!set.ok()) return set.status();
      held = VmRssBytes();
      bookkeeping = set->stats().bookkeeping_bytes;
      set->Release();  // As a plan ends or ramps down: frees, then returns free memory.
    }
    const uint64_t after = VmRssBytes();
    // Overhead: what the process holds beyond the payload and memload's own block table.
    const double overhead = static_cast<double>(held) - before - kSet - bookkeeping;
    Print("rss", absl::StrCat("size=", size, " overhead_mib=", overhead / (1 << 20),
                              " overhead_pct=", 100.0 * overhead / kSet, " kept_after_release_mib=",
                              (static_cast<double>(after) - before) / (1 << 20)));
  }
  return absl::OkStatus();
}

// Runs argv, waits, and returns the child's CPU and minor faults.
absl::StatusOr<Usage> RunChild(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  const int error = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    return absl::NotFoundError(absl::StrCat("cannot run ", args[0], " (install stress-ng)"));
  }
  int status = 0;
  struct rusage usage;
  if (wait4(pid, &status, 0, &usage) != pid) return absl::InternalError("wait4 failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(args[0], " failed, status ", status));
  }
  // stress-ng's stressor is a grandchild; RUSAGE_CHILDREN of the waited-for child includes
  // its own waited-for children.
  return Usage{usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                   (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6,
               static_cast<uint64_t>(usage.ru_minflt)};
}

absl::Status Peers() {
  const uint64_t size = absl::GetFlag(FLAGS_peer_block_size);
  const absl::Duration duration = absl::Seconds(absl::GetFlag(FLAGS_stress_seconds));
  const uint64_t page = PageSize();
  for (bool return_to_os : {true, false}) {
    StreamOptions options;
    options.block_size = size;
    options.touch = TouchMode::kFill;
    options.return_to_os = return_to_os;
    options.duration = duration;
    absl::StatusOr<StreamResult> r = RunStream(options);
    if (!r.ok()) return r.status();
    const double gib = r->bytes / kGiB;
    Print("peers",
          absl::StrCat("who=memload-", return_to_os ? "mmap" : "malloc", " size=", size,
                       " gib_per_s=", gib / r->wall, " cpu_s_per_gib=", r->cpu / gib,
                       " gib_per_cpu_s=", gib / r->cpu, " fault_gib=", r->faults * page / kGiB));
  }
  const std::string bytes = absl::StrCat(size / 1024, "k");
  for (absl::string_view method : absl::StrSplit(absl::GetFlag(FLAGS_stress_methods), ',')) {
    const std::vector<std::string> common = {
        "stress-ng",         "--vm",         "1",      "--vm-bytes", bytes, "--vm-method",
        std::string(method), "--vm-madvise", "normal", "--quiet"};
    std::vector<std::string> once = common, timed = common;
    once.insert(once.end(), {"--vm-ops", "1"});
    timed.insert(timed.end(), {"--timeout", absl::StrCat(absl::GetFlag(FLAGS_stress_seconds))});
    const absl::Time base_start = absl::Now();
    absl::StatusOr<Usage> base = RunChild(once);
    if (!base.ok()) return base.status();
    const absl::Time start = absl::Now();
    absl::StatusOr<Usage> run = RunChild(timed);
    if (!run.ok()) return run.status();
    const double wall = absl::ToDoubleSeconds((absl::Now() - start) - (start - base_start));
    const double gib = (run->minflt - base->minflt) * page / kGiB;
    const double cpu = run->cpu - base->cpu;
    Print("peers", absl::StrCat("who=stress-ng-", method, " size=", size, " gib_per_s=", gib / wall,
                                " cpu_s_per_gib=", cpu / gib, " gib_per_cpu_s=", gib / cpu,
                                " fault_gib=", gib));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace memload

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  memload::KeepFreedMallocMemory();
  const std::string mode = absl::GetFlag(FLAGS_mode);
  absl::Status status;
  if (mode == "churn") {
    status = memload::Churn();
  } else if (mode == "rss") {
    status = memload::Rss();
  } else if (mode == "peers") {
    status = memload::Peers();
  } else {
    std::fprintf(stderr, "churn_benchmark: --mode is churn, rss or peers\n");
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "churn_benchmark: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
