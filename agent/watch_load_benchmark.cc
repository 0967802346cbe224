// Measurement, not a test (issue 12.4): a running memload-agent with N WatchUsage streams
// open — its threads, CPU and RSS before/during/after, GetNodeInfo and StartPlan latency,
// how late a 1 s lease ends, and how long SIGTERM takes with the streams still open.
//
//   bazel run //agent:watch_load_benchmark -- --target=127.0.0.1:7070 --agent_pid=PID
//       --streams=2000 [--sigterm]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/memload.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:7070", "the agent");
ABSL_FLAG(int, agent_pid, 0, "the agent's pid (threads, CPU, RSS; SIGTERM)");
ABSL_FLAG(int, streams, 2000, "WatchUsage streams to open (interval 1 s)");
ABSL_FLAG(int, channels, 20, "channels (connections) the streams are spread over");
ABSL_FLAG(bool, sigterm, false, "end by sending SIGTERM to the agent with the streams open");

namespace {

struct ProcessFigures {
  long threads = 0;
  double cpu_seconds = 0;
  double rss_mib = 0;
};

ProcessFigures Read(int pid) {
  ProcessFigures figures;
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/status", pid);
  if (FILE* file = std::fopen(path, "r")) {
    char line[256];
    while (std::fgets(line, sizeof(line), file)) {
      long value = 0;
      if (std::sscanf(line, "Threads: %ld", &value) == 1) figures.threads = value;
      if (std::sscanf(line, "VmRSS: %ld", &value) == 1) figures.rss_mib = value / 1024.0;
    }
    std::fclose(file);
  }
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  if (FILE* file = std::fopen(path, "r")) {
    char buffer[1024] = {};
    std::fread(buffer, 1, sizeof(buffer) - 1, file);
    std::fclose(file);
    const char* after = std::strrchr(buffer, ')');
    std::vector<std::string> fields = absl::StrSplit(after ? after + 2 : "", ' ');
    if (fields.size() > 13) {
      figures.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / sysconf(_SC_CLK_TCK);
    }
  }
  return figures;
}

void Print(const char* when, const ProcessFigures& figures) {
  std::printf("agent %-7s threads %4ld  rss %7.1f MiB  cpu %7.2f s\n", when, figures.threads,
              figures.rss_mib, figures.cpu_seconds);
}

struct Latencies {
  std::vector<double> ms;
  void Report(const char* what) {
    std::sort(ms.begin(), ms.end());
    if (ms.empty()) return;
    std::printf("%-12s n=%zu p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", what, ms.size(),
                ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back());
  }
};

struct Watch {
  grpc::ClientContext context;
  memload::v1::NodeUsage message;
  std::unique_ptr<grpc::ClientAsyncReader<memload::v1::NodeUsage>> reader;
  bool started = false;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int pid = absl::GetFlag(FLAGS_agent_pid);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_channels)); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // Distinct channels, distinct connections.
    channels.push_back(grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target),
                                                 grpc::InsecureChannelCredentials(), args));
  }
  auto control = memload::v1::Agent::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials()));
  auto node_info = [&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    memload::v1::NodeInfo info;
    return control->GetNodeInfo(&context, memload::v1::GetNodeInfoRequest(), &info);
  };
  if (!node_info().ok()) {
    std::fprintf(stderr, "cannot reach %s\n", absl::GetFlag(FLAGS_target).c_str());
    return 1;
  }
  if (pid) Print("before", Read(pid));

  // Open the streams and read every message as it comes, on one completion queue.
  grpc::CompletionQueue queue;
  std::vector<std::unique_ptr<Watch>> watches;
  memload::v1::WatchUsageRequest request;
  request.mutable_interval()->set_seconds(1);
  const int n = absl::GetFlag(FLAGS_streams);
  for (int i = 0; i < n; ++i) {
    auto watch = std::make_unique<Watch>();
    auto stub = memload::v1::Agent::NewStub(channels[i % channels.size()]);
    watch->reader = stub->PrepareAsyncWatchUsage(&watch->context, request, &queue);
    watch->reader->StartCall(watch.get());
    watches.push_back(std::move(watch));
  }
  int refused = 0;
  std::thread reader([&] {
    void* tag = nullptr;
    bool ok = false;
    while (queue.Next(&tag, &ok)) {
      Watch* watch = static_cast<Watch*>(tag);
      if (!ok) {
        ++refused;
        continue;  // Ended (refused, or the agent went away).
      }
      watch->reader->Read(&watch->message, watch);
    }
  });
  absl::SleepFor(absl::Seconds(3));
  if (pid) Print("during", Read(pid));

  Latencies info_latency, start_latency;
  for (int i = 0; i < 50; ++i) {
    const absl::Time start = absl::Now();
    node_info();
    info_latency.ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    absl::SleepFor(absl::Milliseconds(20));
  }
  // StartPlan (a small plan) and a 1 s lease left to run out.
  for (int i = 0; i < 5; ++i) {
    memload::v1::StartPlanRequest start_request;
    memload::v1::PlanSpec* spec = start_request.mutable_spec();
    spec->set_plan_id(absl::StrCat("watch-load-", i));
    spec->mutable_lease()->set_seconds(1);
    memload::v1::Phase* phase = spec->mutable_retained()->add_phases();
    phase->mutable_target()->set_bytes(4 << 20);
    phase->set_hold_forever(true);
    grpc::ClientContext context;
    memload::v1::StartPlanResponse response;
    const absl::Time start = absl::Now();
    const grpc::Status status = control->StartPlan(&context, start_request, &response);
    start_latency.ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (!status.ok()) std::printf("StartPlan: %s\n", status.error_message().c_str());
  }
  info_latency.Report("GetNodeInfo");
  start_latency.Report("StartPlan");
  absl::SleepFor(absl::Seconds(2));
  {
    grpc::ClientContext context;
    memload::v1::ListPlansRequest list;
    list.set_include_ended(true);
    memload::v1::ListPlansResponse plans;
    control->ListPlans(&context, list, &plans);
    for (const auto& plan : plans.plans()) {
      if (plan.plan_id().rfind("watch-load-", 0) != 0 || !plan.has_ended()) continue;
      const double late = (plan.ended().seconds() - plan.started().seconds()) +
                          (plan.ended().nanos() - plan.started().nanos()) / 1e9 - 1.0;
      std::printf("lease of 1 s: %s ended %.0f ms after it ran out\n", plan.plan_id().c_str(),
                  late * 1000);
    }
  }
  std::printf("streams refused or ended: %d of %d\n", refused, n);
  if (pid) Print("during", Read(pid));

  if (absl::GetFlag(FLAGS_sigterm) && pid) {
    const absl::Time start = absl::Now();
    kill(pid, SIGTERM);
    // Gone, or a zombie its (re)parent has not reaped yet.
    const auto running = [pid] {
      char path[64];
      std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
      FILE* file = std::fopen(path, "r");
      if (file == nullptr) return false;
      char buffer[512] = {};
      std::fread(buffer, 1, sizeof(buffer) - 1, file);
      std::fclose(file);
      const char* after = std::strrchr(buffer, ')');
      return after != nullptr && after[2] != 'Z';
    };
    while (running() && absl::Now() - start < absl::Seconds(30)) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    std::printf("SIGTERM with %d streams open: the agent exited after %s\n", n,
                absl::FormatDuration(absl::Now() - start).c_str());
  } else {
    for (auto& watch : watches) watch->context.TryCancel();
    absl::SleepFor(absl::Seconds(2));
    if (pid) Print("after", Read(pid));
  }
  for (auto& watch : watches) watch->context.TryCancel();
  queue.Shutdown();
  reader.join();
  std::fflush(nullptr);
  _exit(0);
}
