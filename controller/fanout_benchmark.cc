// fanout_benchmark: memloadctl's fan-out over N agents, next to a raw gRPC fan-out over the
// same agents in the same run (the machine is shared and noisy).
//
//   bazel build --config=bench //controller:fanout_benchmark
//   bazel-bin/controller/fanout_benchmark [--sizes=100,1000,3000] [--repetitions=3]
//
// The agents: light agents (agent/testing/light_agents.h). Child processes (forked before
// any gRPC use) each run one gRPC server with the real AgentService over a plan manager with
// fake workers (a plan is a no-op), listening on up to --agents_per_process 127.0.0.1:0
// ports: every port is one target with its own connection, so the controller's side is
// what it is against real agents, while a target costs the hosts fds, not threads (full
// AgentServers bring ~10 threads each: 10,000 of them overran this machine). The
// controller runs alone in this process, so its memory, fds and threads are its own.
// The open-files limit is raised to its hard limit; 10,000 targets need ~10,000 fds here.
//
// memloadctl: RunUsage, and RunStart + RunStop, with GrpcAgentClientFactory, its default
// flags (--parallelism=0: AutoParallelism, --timeout=10s, --retries=2) and output to a
// null stream.
//   cold: a new factory per command (new channels, new connections), as a fresh memloadctl
//   warm: one factory kept across commands (connected channels), as `memloadctl run` does
// raw: plain generated stubs, callback API (stub->async()), every call in flight at once,
// nothing else: the same calls, cold (channels created inside the timing) and warm. For
// usage those are two rounds, as memloadctl's: GetUsage, then ListPlans(include_ended).
// Every channel of either side uses a local subchannel pool, so "cold" never borrows a
// connection another channel still holds.
//
// The ratio column is the median of the per-repetition ratios. Each time comes with this
// process's CPU time (getrusage): the agents share the same two
// cores, so wall time here is an upper bound of what a controller would see on its own.
//
// Memory per target: the controller's VmRSS and malloc'd bytes (mallinfo2) with N warm
// channels, minus before, over N; the raw stubs' malloc'd bytes likewise.
#include <dirent.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/open_files_limit.h"
#include "agent/testing/light_agents.h"
#include "controller/commands.h"
#include "controller/fanout.h"
#include "controller/grpc_agent_client.h"
#include "core/sync/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/memload.grpc.pb.h"

ABSL_FLAG(std::string, sizes, "100,1000,3000", "fleet sizes N");
ABSL_FLAG(int, repetitions, 3, "runs of every figure (median reported)");
ABSL_FLAG(int, parallelism, 0,
          "memloadctl --parallelism (its default: 0, AutoParallelism: targets/8 in 256..4096)");
ABSL_FLAG(int, agents_per_process, 2500,
          "agents (listening ports of one gRPC server) hosted by each child process");
ABSL_FLAG(int, time_limit_seconds, 0,
          "end the benchmark (and its agents) after this long; 0 = 60 s + 24 s per 1,000 agents");

namespace memload {
namespace {

// ---------------------------------------------------------------------------------------
// The agents' side (child process).

// Hosts `count` light agents (one gRPC server listening on `count` ports, see
// agent/testing/light_agents.h) and writes their ports to `out`, then waits for `in` to close.
[[noreturn]] void ServeAgents(int count, int host_index, int out, int in) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // Never outlive the benchmark.
  agent::LightAgentOptions options;
  options.ports = count;
  options.node_name = absl::StrCat("bench-", host_index);
  absl::StatusOr<std::unique_ptr<agent::LightAgentHost>> host =
      agent::LightAgentHost::Start(options);
  if (!host.ok()) {
    std::fprintf(stderr, "agent host %d: %s\n", host_index, host.status().ToString().c_str());
    _exit(1);
  }
  for (int port : (*host)->ports()) {
    if (write(out, &port, sizeof(port)) != sizeof(port)) _exit(1);
  }
  close(out);
  char byte;
  while (read(in, &byte, 1) > 0) {
  }
  // The fake plans hold nothing: no orderly shutdown needed.
  _exit(0);
}

// ---------------------------------------------------------------------------------------
// The controller's side.

uint64_t SelfRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::string digits;
    for (char c : line) {
      if (c >= '0' && c <= '9') digits.push_back(c);
    }
    uint64_t kib = 0;
    if (absl::SimpleAtoi(digits, &kib)) return kib * 1024;
  }
  return 0;
}

// Open file descriptors and threads of a process (0: this one), from /proc.
int OpenFds(pid_t pid = 0) {
  const std::string dir_name =
      pid == 0 ? std::string("/proc/self/fd") : absl::StrCat("/proc/", pid, "/fd");
  int count = 0;
  if (DIR* dir = opendir(dir_name.c_str())) {
    while (readdir(dir) != nullptr) ++count;
    closedir(dir);
  }
  // ".", ".." and, for this process, the directory's own fd.
  return count - (pid == 0 ? 3 : 2);
}

int Threads(pid_t pid = 0) {
  std::ifstream status(pid == 0 ? std::string("/proc/self/status")
                                : absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int threads = 0;
    if (line.rfind("Threads:", 0) == 0 &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(8)), &threads)) {
      return threads;
    }
  }
  return 0;
}

std::string LoadAverage() {
  std::ifstream file("/proc/loadavg");
  std::string one, five;
  file >> one >> five;
  return absl::StrCat(one, " ", five);
}

std::string FdLimit() {
  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return "?";
  return absl::StrCat(files.rlim_cur, " (hard ", files.rlim_max, ")");
}

uint64_t HeapInUseBytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

grpc::ChannelArguments BenchChannelArgs() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

controller::AgentClientFactory NewFactory() {
  controller::GrpcClientOptions options;
  options.channel_args = BenchChannelArgs();
  return controller::GrpcAgentClientFactory(options);
}

v1::PlanSpec TinyPlan(const std::string& id) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  spec.mutable_lease()->set_seconds(60);
  v1::Phase* phase = spec.mutable_retained()->add_phases();
  phase->mutable_target()->set_bytes(1 << 20);
  phase->set_hold_forever(true);
  return spec;
}

// memloadctl's commands over `factory`, as main() sets them up.
class Ctl {
 public:
  Ctl(std::vector<std::string> targets, controller::AgentClientFactory factory) : null_(nullptr) {
    env_.targets = std::move(targets);
    env_.factory = std::move(factory);
    env_.fanout.parallelism = absl::GetFlag(FLAGS_parallelism);
    env_.fanout.timeout = absl::Seconds(10);
    env_.fanout.retry.max_attempts = 3;
    env_.out = &null_;  // Output is formatted, then dropped.
  }
  absl::Status Usage() { return Check("usage", controller::RunUsage(env_)); }
  absl::Status StartStop(const std::string& id) {
    absl::Status started =
        Check("start", controller::RunStart(env_, TinyPlan(id), controller::RolloutOptions()));
    if (!started.ok()) return started;
    return Check("stop", controller::RunStop(env_, id));
  }

 private:
  static absl::Status Check(const char* what, int code) {
    if (code == controller::kExitOk) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("memloadctl ", what, " exited ", code));
  }
  std::ostream null_;
  controller::CommandEnv env_;
};

// The raw baseline: one stub per target, every call in flight at once.
class Raw {
 public:
  explicit Raw(const std::vector<std::string>& targets) {
    for (const std::string& target : targets) {
      stubs_.push_back(v1::Agent::NewStub(grpc::CreateCustomChannel(
          target, grpc::InsecureChannelCredentials(), BenchChannelArgs())));
    }
  }
  // The calls memloadctl usage makes: GetUsage, then ListPlans with the ended plans (its
  // "recently ended" rows) from every target that answered — here all of them.
  absl::Status Usage() {
    absl::Status usage = FanOut(v1::GetUsageRequest(), &v1::Agent::Stub::async_interface::GetUsage);
    if (!usage.ok()) return usage;
    v1::ListPlansRequest list;
    list.set_include_ended(true);
    return FanOut(list, &v1::Agent::Stub::async_interface::ListPlans);
  }
  absl::Status StartStop(const std::string& id) {
    v1::StartPlanRequest start;
    *start.mutable_spec() = TinyPlan(id);
    absl::Status started = FanOut(start, &v1::Agent::Stub::async_interface::StartPlan);
    if (!started.ok()) return started;
    return Stop(id);
  }
  absl::Status Stop(const std::string& id) {
    v1::StopPlanRequest stop;
    stop.set_plan_id(id);
    return FanOut(stop, &v1::Agent::Stub::async_interface::StopPlan);
  }

 private:
  // A unary method of the callback API: (stub->async()->*method)(context, request, response,
  // done).
  template <typename Request, typename Response>
  using AsyncUnary = void (v1::Agent::Stub::async_interface::*)(grpc::ClientContext*,
                                                                const Request*, Response*,
                                                                std::function<void(grpc::Status)>);

  template <typename Request, typename Response>
  absl::Status FanOut(const Request& request, AsyncUnary<Request, Response> method) {
    const size_t n = stubs_.size();
    std::vector<grpc::ClientContext> contexts(n);
    std::vector<Response> responses(n);
    struct Outcome {
      Mutex mutex;
      std::condition_variable all_done;
      size_t pending ABSL_GUARDED_BY(mutex) = 0;
      size_t failed ABSL_GUARDED_BY(mutex) = 0;
      std::string error ABSL_GUARDED_BY(mutex);
    } outcome;
    {
      MutexLock lock(&outcome.mutex);
      outcome.pending = n;
    }
    for (size_t i = 0; i < n; ++i) {
      contexts[i].set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      (stubs_[i]->async()->*method)(&contexts[i], &request, &responses[i],
                                    [&](grpc::Status status) {
                                      MutexLock lock(&outcome.mutex);
                                      if (!status.ok()) {
                                        ++outcome.failed;
                                        outcome.error = status.error_message();
                                      }
                                      if (--outcome.pending == 0) outcome.all_done.notify_one();
                                    });
    }
    MutexLock lock(&outcome.mutex);
    outcome.all_done.wait(lock.native(), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(outcome.mutex) {
      return outcome.pending == 0;
    });
    if (outcome.failed > 0) {
      return absl::InternalError(absl::StrCat("raw: ", outcome.failed, " failed: ", outcome.error));
    }
    return absl::OkStatus();
  }

  std::vector<std::unique_ptr<v1::Agent::Stub>> stubs_;
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

double CpuSeconds() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Wall-clock seconds, and this process's CPU seconds (the agents run in other processes).
struct Sample {
  double wall = 0;
  double cpu = 0;
};

template <typename Run>
absl::StatusOr<Sample> Time(Run run) {
  const double cpu = CpuSeconds();
  const absl::Time start = absl::Now();
  absl::Status status = run();
  if (!status.ok()) return status;
  return Sample{absl::ToDoubleSeconds(absl::Now() - start), CpuSeconds() - cpu};
}

#define BENCH_ASSIGN(lhs, expr)                 \
  auto lhs##_or = (expr);                       \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  const Sample lhs = *lhs##_or

struct Figures {
  std::vector<Sample> raw_usage_cold, ctl_usage_cold, raw_usage_warm, ctl_usage_warm;
  std::vector<Sample> raw_ss_cold, ctl_ss_cold, raw_ss_warm, ctl_ss_warm;
};

// Times one kind of client: usage cold (the client and its channels made inside the
// timing), then usage and a start+stop warm on the same channels.
template <typename MakeClient>
absl::Status TimeUsageAndWarmStartStop(const MakeClient& make_client, const std::string& tag,
                                       std::vector<Sample>* usage_cold,
                                       std::vector<Sample>* usage_warm,
                                       std::vector<Sample>* start_stop_warm) {
  decltype(make_client()) client;
  BENCH_ASSIGN(cold, Time([&] {
                 client = make_client();
                 return client->Usage();
               }));
  BENCH_ASSIGN(warm, Time([&] { return client->Usage(); }));
  BENCH_ASSIGN(ss_warm, Time([&] { return client->StartStop(tag); }));
  usage_cold->push_back(cold);
  usage_warm->push_back(warm);
  start_stop_warm->push_back(ss_warm);
  return absl::OkStatus();
}

// One repetition of every figure at one N, raw and memloadctl alternated. Cold calls make
// their channels inside the timing; the warm ones then reuse those channels.
absl::Status RunOnce(const std::vector<std::string>& targets, const std::string& tag, Figures* f) {
  absl::Status raw =
      TimeUsageAndWarmStartStop([&] { return std::make_unique<Raw>(targets); }, tag + "-rw",
                                &f->raw_usage_cold, &f->raw_usage_warm, &f->raw_ss_warm);
  if (!raw.ok()) return raw;
  absl::Status ctl = TimeUsageAndWarmStartStop(
      [&] { return std::make_unique<Ctl>(targets, NewFactory()); }, tag + "-cw", &f->ctl_usage_cold,
      &f->ctl_usage_warm, &f->ctl_ss_warm);
  if (!ctl.ok()) return ctl;
  // Start + stop, cold: one new set of channels, made inside the timing, for both.
  BENCH_ASSIGN(raw_ss_cold, Time([&] { return Raw(targets).StartStop(tag + "-rc"); }));
  BENCH_ASSIGN(ctl_ss_cold,
               Time([&] { return Ctl(targets, NewFactory()).StartStop(tag + "-cc"); }));
  f->raw_ss_cold.push_back(raw_ss_cold);
  f->ctl_ss_cold.push_back(ctl_ss_cold);
  return absl::OkStatus();
}

Sample Median(const std::vector<Sample>& samples) {
  std::vector<double> wall, cpu;
  for (const Sample& sample : samples) {
    wall.push_back(sample.wall);
    cpu.push_back(sample.cpu);
  }
  return Sample{Median(wall), Median(cpu)};
}

// Medians of each side, and the median of the per-repetition ratios (memloadctl and raw
// gRPC ran back to back in each repetition, so their ratio cancels most of the noise).
void Row(const std::string& figure, const std::vector<Sample>& ctl_samples,
         const std::vector<Sample>& raw_samples, const std::string& goal) {
  const Sample ctl = Median(ctl_samples), raw = Median(raw_samples);
  std::vector<double> ratios;
  for (size_t i = 0; i < ctl_samples.size() && i < raw_samples.size(); ++i) {
    ratios.push_back(ctl_samples[i].wall / raw_samples[i].wall);
  }
  absl::PrintF(
      "| %s | %.3f s (controller CPU %.2f s) | raw gRPC fan-out: %.3f s (CPU %.2f s) "
      "| %.2fx | %s |\n",
      figure, ctl.wall, ctl.cpu, raw.wall, raw.cpu, Median(ratios), goal);
}

absl::Status Measure(const std::vector<int>& sizes, const std::vector<std::string>& all,
                     int repetitions, absl::Time deadline) {
  // Memory first, at the largest N, while the heap holds nothing else of ours. gRPC's
  // one-time globals come before the "before" reading: one call on one agent.
  {
    Raw warmup({all.front()});
    if (absl::Status s = warmup.Usage(); !s.ok()) return s;
  }
  const int n = sizes.back();
  const std::vector<std::string> targets(all.begin(), all.begin() + n);
  uint64_t ctl_rss, ctl_heap, raw_heap;
  int ctl_fds, ctl_threads, raw_fds, raw_threads, fds0, threads0;
  {
    fds0 = OpenFds();
    threads0 = Threads();
    const uint64_t rss0 = SelfRssBytes(), heap0 = HeapInUseBytes();
    Ctl ctl(targets, NewFactory());
    if (absl::Status s = ctl.Usage(); !s.ok()) return s;
    ctl_rss = SelfRssBytes() - rss0;
    ctl_heap = HeapInUseBytes() - heap0;
    ctl_fds = OpenFds() - fds0;
    ctl_threads = Threads() - threads0;
  }
  absl::PrintF("memory, fds and threads of %d warm channels measured (load %s)\n", n,
               LoadAverage());
  std::fflush(stdout);
  {
    const uint64_t heap0 = HeapInUseBytes();
    const int fds1 = OpenFds(), threads1 = Threads();
    Raw raw(targets);
    if (absl::Status s = raw.Usage(); !s.ok()) return s;
    raw_heap = HeapInUseBytes() - heap0;
    raw_fds = OpenFds() - fds1;
    raw_threads = Threads() - threads1;
  }

  for (int size : sizes) {
    const std::vector<std::string> fleet(all.begin(), all.begin() + size);
    Figures f;
    int done = 0;
    for (int rep = 0; rep < repetitions; ++rep) {
      const absl::Time rep_start = absl::Now();
      if (absl::Status s = RunOnce(fleet, absl::StrCat("n", size, "r", rep), &f); !s.ok()) {
        return s;
      }
      // Each repetition as it ends (memloadctl / raw, wall seconds), so that a run ended by
      // its time limit still leaves its figures.
      absl::PrintF(
          "repetition %d, %d agents: usage cold %.3f / %.3f, warm %.3f / %.3f; "
          "start + stop cold %.3f / %.3f, warm %.3f / %.3f (load %s)\n",
          rep + 1, size, f.ctl_usage_cold.back().wall, f.raw_usage_cold.back().wall,
          f.ctl_usage_warm.back().wall, f.raw_usage_warm.back().wall, f.ctl_ss_cold.back().wall,
          f.raw_ss_cold.back().wall, f.ctl_ss_warm.back().wall, f.raw_ss_warm.back().wall,
          LoadAverage());
      std::fflush(stdout);
      done = rep + 1;
      // Another repetition must end well before the time limit (a loaded machine runs
      // slower): otherwise report what is measured rather than be cut off with nothing.
      const absl::Duration took = absl::Now() - rep_start;
      if (done < repetitions && absl::Now() + took * 1.3 > deadline) {
        absl::PrintF("time limit near: %d of %d repetitions\n", done, repetitions);
        break;
      }
    }
    absl::PrintF("%d agents: medians of %d repetition(s)\n", size, done);
    const std::string goal = size == 1000 ? "< 1 s and <= 1.5x" : "<= 1.5x";
    Row(absl::StrCat("memloadctl usage, ", size, " agents, cold"), f.ctl_usage_cold,
        f.raw_usage_cold, goal);
    Row(absl::StrCat("memloadctl usage, ", size, " agents, warm"), f.ctl_usage_warm,
        f.raw_usage_warm, "<= 1.5x");
    Row(absl::StrCat("memloadctl start + stop, ", size, " agents, cold"), f.ctl_ss_cold,
        f.raw_ss_cold, goal);
    Row(absl::StrCat("memloadctl start + stop, ", size, " agents, warm"), f.ctl_ss_warm,
        f.raw_ss_warm, "<= 1.5x");
    std::fflush(stdout);
  }
  absl::PrintF(
      "| controller memory per target (%d warm channels): VmRSS delta / N (malloc'd: %.1f "
      "KiB) | %.1f KiB | raw stubs, malloc'd / N: %.1f KiB | %.2fx | — |\n",
      n, ctl_heap / 1024.0 / n, ctl_rss / 1024.0 / n, raw_heap / 1024.0 / n,
      double(ctl_heap) / raw_heap);
  absl::PrintF(
      "| controller fds / threads added by %d warm channels (before: %d fds, %d threads) | "
      "%d fds (%.3f per target) / %d threads | raw stubs: %d fds / %d threads | — | one fd "
      "per target, no thread per target |\n",
      n, fds0, threads0, ctl_fds, double(ctl_fds) / n, ctl_threads, raw_fds, raw_threads);
  return absl::OkStatus();
}

}  // namespace
}  // namespace memload

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As memloadctl's and memload-agent's main() do (the children inherit it): Debian's
  // Abseil keeps absl::Mutex deadlock detection on, which gRPC's every lock pays for.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<int> sizes;
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',')) {
    int size = 0;
    if (!absl::SimpleAtoi(part, &size) || size < 1) {
      std::fprintf(stderr, "fanout_benchmark: bad --sizes\n");
      return 2;
    }
    sizes.push_back(size);
  }
  std::sort(sizes.begin(), sizes.end());
  const int agents = sizes.back();
  // Bounded (SIGALRM ends it; the children follow).
  const int flag_limit = absl::GetFlag(FLAGS_time_limit_seconds);
  const int limit = flag_limit > 0 ? flag_limit : 60 + 24 * std::max(1, agents / 1000);
  alarm(limit);
  // Repetitions stop early to end before the alarm (20 s left for the summary and exit).
  const absl::Time deadline = absl::Now() + absl::Seconds(limit - 20);
  // Every connection is an fd here (and one or two in an agent host): as many as allowed
  // (the agent's own raise, without its cap; a limit that cannot be raised stays).
  memload::agent::RaiseOpenFilesLimit(std::numeric_limits<uint64_t>::max());

  // Fork before any gRPC use in this process: children host the agents, at most
  // --agents_per_process ports each (a host holds two fds per target: the listener and the
  // accepted connection).
  const int per_process = std::max(1, absl::GetFlag(FLAGS_agents_per_process));
  int hold_pipe[2];
  if (pipe(hold_pipe) != 0) return 1;
  std::vector<pid_t> children;
  std::vector<int> port_pipes;
  for (int first = 0; first < agents; first += per_process) {
    int ports_pipe[2];
    if (pipe(ports_pipe) != 0) return 1;
    const pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
      close(ports_pipe[0]);
      close(hold_pipe[1]);
      for (int fd : port_pipes) close(fd);
      memload::ServeAgents(std::min(per_process, agents - first), static_cast<int>(children.size()),
                           ports_pipe[1], hold_pipe[0]);
    }
    close(ports_pipe[1]);
    children.push_back(child);
    port_pipes.push_back(ports_pipe[0]);
  }
  close(hold_pipe[0]);
  std::vector<std::string> targets;
  for (int fd : port_pipes) {
    int port = 0;
    while (read(fd, &port, sizeof(port)) == sizeof(port)) {
      targets.push_back(absl::StrCat("127.0.0.1:", port));
    }
    close(fd);
  }
  absl::Status status;
  std::printf(
      "agents: %zu on %zu host processes (one gRPC server each); open files %s; "
      "memloadctl --parallelism=%d\n",
      targets.size(), children.size(), memload::FdLimit().c_str(),
      absl::GetFlag(FLAGS_parallelism) == 0 ? memload::controller::AutoParallelism(targets.size())
                                            : absl::GetFlag(FLAGS_parallelism));
  std::fflush(stdout);
  if (static_cast<int>(targets.size()) != agents) {
    status = absl::InternalError(absl::StrCat("only ", targets.size(), " agents started"));
  } else {
    std::printf(
        "| figure | measured | baseline (same run) | ratio | goal |\n"
        "|---|---|---|---|---|\n");
    std::fflush(stdout);
    status = memload::Measure(sizes, targets, absl::GetFlag(FLAGS_repetitions), deadline);
  }
  // The hosts' own cost (after every figure: connections from both sides came and went).
  for (pid_t child : children) {
    std::printf("agent host %d: %d threads, %d fds\n", child, memload::Threads(child),
                memload::OpenFds(child));
  }
  close(hold_pipe[1]);  // The children exit.
  for (pid_t child : children) waitpid(child, nullptr, 0);
  if (!status.ok()) {
    std::fprintf(stderr, "fanout_benchmark: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
