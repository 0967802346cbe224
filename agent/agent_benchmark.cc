// agent_benchmark: what the agent adds on top of core, each figure next to a baseline
// measured in the same run (the machine is shared and noisy).
//
//   bazel build --config=bench //agent:agent_benchmark   # builds memload-agent/-worker too
//   bazel-bin/agent/agent_benchmark [--repetitions=5]
//
// 1. Time to resident: StartPlan over gRPC to an in-process AgentServer on 127.0.0.1:0 with
//    the real memload-worker, until a 1 GiB `page` plan (1 MiB mmap blocks) is HOLDING and
//    the worker's RssAnon+RssShmem (/proc) is >= 1 GiB — against core's RetainedPlan doing
//    the same in this process (Create to HOLDING). Medians, the two alternated.
// 2. RSS of a real memload-agent process (/proc/PID/status VmRSS) with no plan, and with 10
//    plans of 1 MiB each (their workers are other processes).
// 3. One GetUsage call (sequential, warm channel) on that agent with 0 and 10 plans, against
//    GetNodeInfo (a handler that copies a small message: the gRPC round trip's floor).
//
// Only 127.0.0.1 ports chosen by the OS are used. Everything is bounded in time.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent_server.h"
#include "core/node_readers.h"
#include "core/plan_counters.h"
#include "core/retained_plan.h"
#include "grpcpp/grpcpp.h"
#include "proto/memload.grpc.pb.h"

ABSL_FLAG(int, repetitions, 5, "runs of the time-to-resident pair (median reported)");
ABSL_FLAG(int, usage_calls, 2000, "GetUsage / GetNodeInfo calls per cost figure");

namespace memload {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
// Every wait below gives up after this: a benchmark must never hang.
constexpr absl::Duration kPatience = absl::Seconds(30);

// `name` beside this executable (bazel puts memload-agent and memload-worker there).
std::string Beside(const std::string& name) {
  char self[4096] = {};
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  const std::string path(self, length > 0 ? length : 0);
  return path.substr(0, path.rfind('/') + 1) + name;
}

// /proc/PID/status of `pid` (> 0); all zeros when the process is gone or a zombie.
ProcessMemory MemoryOf(pid_t pid) { return ReadProcessMemory(pid).value_or(ProcessMemory{}); }

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

v1::PlanSpec GiBPagePlan(const std::string& id, uint64_t bytes) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  spec.mutable_lease()->set_seconds(300);
  v1::RetainedPlan* retained = spec.mutable_retained();
  retained->set_block_size(kMiB);
  retained->set_touch(v1::TOUCH_MODE_PAGE);
  retained->set_backing(v1::BACKING_MMAP);
  v1::Phase* phase = retained->add_phases();
  phase->mutable_target()->set_bytes(bytes);
  phase->set_hold_forever(true);
  return spec;
}

// Core alone: RetainedPlan::Create to HOLDING, in seconds.
absl::StatusOr<double> CoreToHolding() {
  RetainedPlanSpec spec;
  spec.set.block_size = kMiB;
  spec.set.touch = TouchMode::kPage;
  spec.set.backing = Backing::kMmap;
  Phase phase;
  phase.target_bytes = kGiB;
  phase.hold = absl::InfiniteDuration();
  spec.phases.push_back(phase);
  PlanCounters counters;
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<RetainedPlan>> plan = RetainedPlan::Create(spec, &counters);
  if (!plan.ok()) return plan.status();
  if (absl::Status started = (*plan)->Start(); !started.ok()) return started;
  // Poll every millisecond (a sleep, so the plan's thread keeps a core to itself).
  while (counters.Snapshot().state != PlanState::kHolding) {
    if (absl::Now() - start > kPatience) return absl::DeadlineExceededError("core: no HOLDING");
    absl::SleepFor(absl::Milliseconds(1));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  (*plan)->Cancel();
  if (absl::Status done = (*plan)->Wait(); !done.ok() && !absl::IsCancelled(done)) return done;
  return seconds;
}

absl::StatusOr<v1::PlanStatus> FindPlan(v1::Agent::Stub& stub, const std::string& id) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::NodeUsage usage;
  grpc::Status status = stub.GetUsage(&context, v1::GetUsageRequest(), &usage);
  if (!status.ok()) return absl::UnavailableError(status.error_message());
  for (const v1::PlanStatus& plan : usage.plans()) {
    if (plan.plan_id() == id) return plan;
  }
  return absl::NotFoundError(absl::StrCat("no plan ", id));
}

absl::Status StopAndWait(v1::Agent::Stub& stub, const std::string& id, pid_t worker = 0) {
  grpc::ClientContext context;
  v1::StopPlanRequest request;
  request.set_plan_id(id);
  v1::StopPlanResponse response;
  grpc::Status status = stub.StopPlan(&context, request, &response);
  if (!status.ok()) return absl::InternalError(status.error_message());
  const absl::Time start = absl::Now();
  // Until the worker has given its memory back, so the next run starts from the same place.
  while (true) {
    absl::StatusOr<v1::PlanStatus> plan = FindPlan(stub, id);
    const bool exited = !plan.ok() || plan->worker_pid() == 0;
    if (exited && (worker == 0 || MemoryOf(worker).rss_bytes == 0)) return absl::OkStatus();
    if (absl::Now() - start > kPatience) return absl::DeadlineExceededError("stop: worker stays");
    absl::SleepFor(absl::Milliseconds(5));
  }
}

// The agent: StartPlan to HOLDING with the worker's RSS >= 1 GiB, in seconds.
absl::StatusOr<double> AgentToResident(v1::Agent::Stub& stub, const std::string& id) {
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  v1::StartPlanRequest request;
  *request.mutable_spec() = GiBPagePlan(id, kGiB);
  v1::StartPlanResponse response;
  grpc::Status status = stub.StartPlan(&context, request, &response);
  if (!status.ok()) return absl::InternalError(status.error_message());
  const pid_t worker = response.plan().worker_pid();
  if (worker <= 0) return absl::InternalError("StartPlan returned no worker pid");
  // Watch the worker's RSS from /proc (cheap, leaves the agent alone), then ask the agent.
  for (ProcessMemory m = MemoryOf(worker); m.rss_anon_bytes + m.rss_shmem_bytes < kGiB;
       m = MemoryOf(worker)) {
    if (absl::Now() - start > kPatience) return absl::DeadlineExceededError("agent: RSS < 1 GiB");
    absl::SleepFor(absl::Milliseconds(1));
  }
  while (true) {
    absl::StatusOr<v1::PlanStatus> plan = FindPlan(stub, id);
    if (!plan.ok()) return plan.status();
    if (plan->state() == v1::PLAN_STATE_HOLDING) break;
    if (absl::Now() - start > kPatience) return absl::DeadlineExceededError("agent: no HOLDING");
    absl::SleepFor(absl::Milliseconds(1));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (absl::Status stopped = StopAndWait(stub, id, worker); !stopped.ok()) return stopped;
  return seconds;
}

absl::Status TimeToResident(int repetitions) {
  agent::AgentOptions options;
  options.listen_address = "127.0.0.1:0";
  options.node_name = "bench";
  options.plans.reserve_bytes = 256 * kMiB;
  absl::StatusOr<std::unique_ptr<agent::AgentServer>> server = agent::AgentServer::Start(options);
  if (!server.ok()) return server.status();
  auto stub = v1::Agent::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  std::vector<double> core, agent;
  for (int i = 0; i < repetitions; ++i) {
    absl::StatusOr<double> c = CoreToHolding();
    if (!c.ok()) return c.status();
    absl::StatusOr<double> a = AgentToResident(*stub, absl::StrCat("resident-", i));
    if (!a.ok()) return a.status();
    core.push_back(*c);
    agent.push_back(*a);
  }
  const double c = Median(core), a = Median(agent);
  absl::PrintF(
      "| agent: StartPlan to 1 GiB `page` resident (HOLDING, worker RSS >= 1 GiB) | "
      "%.0f ms | core RetainedPlan to HOLDING in-process: %.0f ms | %.2fx | <= 1.1x |\n",
      a * 1e3, c * 1e3, a / c);
  (*server)->Shutdown(absl::Seconds(2));
  return absl::OkStatus();
}

// A memload-agent process of our own, on 127.0.0.1:0.
struct AgentProcess {
  pid_t pid = -1;
  std::string address;
};

absl::StatusOr<AgentProcess> SpawnAgent() {
  const std::string binary = Beside("memload-agent");
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execl(binary.c_str(), binary.c_str(), "--listen=127.0.0.1:0", "--node-name=bench-agent",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipe_fds[1]);
  // The first log line says "listening on HOST:PORT".
  FILE* log = fdopen(pipe_fds[0], "r");
  char line[1024];
  AgentProcess agent;
  agent.pid = pid;
  if (log != nullptr && std::fgets(line, sizeof(line), log) != nullptr) {
    const std::string text(line);
    const size_t at = text.find("listening on ");
    if (at != std::string::npos) {
      const size_t begin = at + 13;
      agent.address = text.substr(begin, text.find(' ', begin) - begin);
    }
  }
  // Keep draining its log on a thread, so the agent never blocks on a full pipe.
  std::thread([log] {
    char rest[1024];
    while (log != nullptr && std::fgets(rest, sizeof(rest), log) != nullptr) {
    }
    if (log != nullptr) std::fclose(log);
  }).detach();
  if (agent.address.empty()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return absl::InternalError(absl::StrCat(binary, " did not say where it listens"));
  }
  return agent;
}

// Microseconds per call of `call` (sequential, same channel), over `calls` calls.
template <typename Call>
absl::StatusOr<double> MicrosPerCall(int calls, Call call) {
  for (int i = 0; i < calls / 10; ++i) {  // Warm-up.
    if (!call().ok()) return absl::InternalError("warm-up call failed");
  }
  const absl::Time start = absl::Now();
  for (int i = 0; i < calls; ++i) {
    grpc::Status status = call();
    if (!status.ok()) return absl::InternalError(status.error_message());
  }
  return absl::ToDoubleMicroseconds(absl::Now() - start) / calls;
}

absl::Status AgentProcessFigures(int calls) {
  absl::StatusOr<AgentProcess> agent = SpawnAgent();
  if (!agent.ok()) return agent.status();
  auto stub =
      v1::Agent::NewStub(grpc::CreateChannel(agent->address, grpc::InsecureChannelCredentials()));
  auto usage = [&] {
    grpc::ClientContext context;
    v1::NodeUsage response;
    return stub->GetUsage(&context, v1::GetUsageRequest(), &response);
  };
  auto info = [&] {
    grpc::ClientContext context;
    v1::NodeInfo response;
    return stub->GetNodeInfo(&context, v1::GetNodeInfoRequest(), &response);
  };
  // One GetUsage and one GetNodeInfo call's time, then the agent's VmRSS.
  struct Figures {
    double usage_us = 0;
    double info_us = 0;
    uint64_t rss = 0;
  };
  auto measure = [&]() -> absl::StatusOr<Figures> {
    Figures figures;
    absl::StatusOr<double> usage_us = MicrosPerCall(calls, usage);
    if (!usage_us.ok()) return usage_us.status();
    figures.usage_us = *usage_us;
    absl::StatusOr<double> info_us = MicrosPerCall(calls, info);
    if (!info_us.ok()) return info_us.status();
    figures.info_us = *info_us;
    figures.rss = MemoryOf(agent->pid).rss_bytes;
    return figures;
  };
  absl::Status result = [&]() -> absl::Status {
    absl::StatusOr<Figures> idle = measure();
    if (!idle.ok()) return idle.status();

    for (int i = 0; i < 10; ++i) {
      grpc::ClientContext context;
      v1::StartPlanRequest request;
      *request.mutable_spec() = GiBPagePlan(absl::StrCat("small-", i), kMiB);
      v1::StartPlanResponse response;
      grpc::Status status = stub->StartPlan(&context, request, &response);
      if (!status.ok()) return absl::InternalError(status.error_message());
    }
    for (int i = 0; i < 10; ++i) {
      const absl::Time start = absl::Now();
      while (true) {
        absl::StatusOr<v1::PlanStatus> plan = FindPlan(*stub, absl::StrCat("small-", i));
        if (!plan.ok()) return plan.status();
        if (plan->state() == v1::PLAN_STATE_HOLDING) break;
        if (absl::Now() - start > kPatience) return absl::DeadlineExceededError("small plan");
        absl::SleepFor(absl::Milliseconds(5));
      }
    }
    absl::StatusOr<Figures> busy = measure();
    if (!busy.ok()) return busy.status();
    const uint64_t rss0 = idle->rss;
    const uint64_t rss10 = busy->rss;
    for (int i = 0; i < 10; ++i) {
      if (absl::Status s = StopAndWait(*stub, absl::StrCat("small-", i)); !s.ok()) return s;
    }

    absl::PrintF("| agent RSS, no plan (memload-agent process, VmRSS) | %.1f MiB | — | — | — |\n",
                 rss0 / double(kMiB));
    absl::PrintF(
        "| agent RSS, 10 plans of 1 MiB (workers are other processes) | %.1f MiB | "
        "no plan: %.1f MiB | %.2fx (+%.0f KiB/plan) | — |\n",
        rss10 / double(kMiB), rss0 / double(kMiB), double(rss10) / rss0,
        (double(rss10) - double(rss0)) / 10 / 1024);
    absl::PrintF(
        "| one GetUsage call, 0 plans (sequential, warm channel) | %.0f us | "
        "GetNodeInfo: %.0f us | %.2fx | — |\n",
        idle->usage_us, idle->info_us, idle->usage_us / idle->info_us);
    absl::PrintF("| one GetUsage call, 10 plans | %.0f us | GetNodeInfo: %.0f us | %.2fx | — |\n",
                 busy->usage_us, busy->info_us, busy->usage_us / busy->info_us);
    return absl::OkStatus();
  }();
  // SIGTERM: the agent stops its plans and exits 0 (bounded: SIGKILL after 10 s).
  kill(agent->pid, SIGTERM);
  for (int i = 0; i < 1000 && waitpid(agent->pid, nullptr, WNOHANG) == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    if (i == 999) {
      kill(agent->pid, SIGKILL);
      waitpid(agent->pid, nullptr, 0);
    }
  }
  return result;
}

}  // namespace
}  // namespace memload

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As memload-agent's main() does, so the in-process agent is the same as the binary.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::printf(
      "| figure | measured | baseline (same run) | ratio | goal |\n|---|---|---|---|---|\n");
  std::fflush(stdout);
  absl::Status status = memload::TimeToResident(absl::GetFlag(FLAGS_repetitions));
  if (status.ok()) status = memload::AgentProcessFigures(absl::GetFlag(FLAGS_usage_calls));
  if (!status.ok()) {
    std::fprintf(stderr, "agent_benchmark: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
