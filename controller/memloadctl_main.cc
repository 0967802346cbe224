// memloadctl: drives memload agents. See README.md ("memloadctl") for every command.
//
//   memloadctl usage --targets=127.0.0.1:7070,127.0.0.1:7071
//   memloadctl run --targets=dns:///memload-agent.memload.svc:7070 --kind=retained \
//       --target=80% --ramp=1m --for=10m --rollout=batch:25% --stagger=10s
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "controller/client_security.h"
#include "controller/commands.h"
#include "controller/grpc_agent_client.h"
#include "controller/output.h"
#include "controller/plan_builder.h"
#include "controller/pod_commands.h"
#include "controller/pods.h"
#include "controller/recording.h"
#include "controller/report.h"
#include "controller/rollout.h"
#include "controller/targets.h"
#include "core/cancel_signal.h"
#include "core/flag_args.h"
#include "core/flag_values.h"
#include "core/version.h"

// Where and how.
ABSL_FLAG(std::string, targets, "",
          "agents: host:port,host:port | @FILE (one per line, # comments) | "
          "dns:///NAME:PORT | dns://SERVER:PORT/NAME:PORT (every A/AAAA address)");
ABSL_FLAG(std::string, selector, "", "keep agents whose labels match k=v,k2!=v2");
ABSL_FLAG(std::string, output, "table", "table (for people) or json (one document)");
// 256: a call in flight costs a few KiB and no thread, while stops wait for the agent to
// see its worker exit; at 64, start+stop over 1,000 agents took 1.7-2x a raw fan-out
// (//controller:fanout_benchmark).
ABSL_FLAG(int, parallelism, 256, "calls in flight at once");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "deadline of each call");
ABSL_FLAG(int, retries, 2, "retries of idempotent calls on UNAVAILABLE/DEADLINE_EXCEEDED");
// Security (README: "Securing a deployment").
ABSL_FLAG(std::string, tls_ca, "", "PEM CA certificate(s) of the agents: talk TLS");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate for mutual TLS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert (unencrypted)");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the agents' certificates must carry, instead of each target's host");
ABSL_FLAG(std::string, token_file, "",
          "file holding the bearer token (default: the MEMLOAD_TOKEN environment variable)");
// Plans (see controller/plan_builder.h for the syntax of each).
ABSL_FLAG(std::string, plan, "", "the whole plan from a JSON file (PlanSpec)");
ABSL_FLAG(std::string, kind, "", "retained | streaming | utilization");
ABSL_FLAG(std::string, target, "",
          "retained: SIZE, N%, N%available, N%cgroup; utilization: N%, N%node, N%cgroup");
ABSL_FLAG(std::string, touch, "", "none | page | fill (default page)");
ABSL_FLAG(std::string, backing, "", "malloc | mmap | shmem (default mmap)");
ABSL_FLAG(std::string, block_size, "", "bytes per block (default 1MiB)");
ABSL_FLAG(std::string, ramp, "", "DURATION to reach the target, or SIZE/s");
ABSL_FLAG(std::string, hold, "", "DURATION at the target, or forever (default)");
ABSL_FLAG(std::string, repeat, "", "N or forever: ramp, hold, drop to 0, again (sawtooth)");
ABSL_FLAG(std::string, rate, "", "streaming: SIZE/s");
ABSL_FLAG(std::string, window, "", "streaming: blocks alive at once");
ABSL_FLAG(std::string, workers, "", "streaming: threads");
ABSL_FLAG(bool, return_to_os, false, "streaming: mmap/munmap every block");
ABSL_FLAG(std::string, amount, "", "streaming: SIZE in total, then stop");
ABSL_FLAG(std::string, duration, "", "streaming, utilization: DURATION or forever");
ABSL_FLAG(std::string, lease, "", "agent stops the plan if not renewed within DURATION");
ABSL_FLAG(std::string, plan_id, "", "idempotency key (default: generated)");
ABSL_FLAG(std::string, labels, "", "plan labels k=v,k2=v2");
ABSL_FLAG(bool, expect_oom, false, "an OOM kill is this plan's success (OOM drills)");
ABSL_FLAG(std::string, oom_score_adj, "", "of the worker, -1000..1000 (default 1000)");
ABSL_FLAG(bool, huge_pages, false, "retained: madvise(MADV_HUGEPAGE)");
ABSL_FLAG(bool, mlock, false, "retained: mlock every block");
// Rollout and run.
ABSL_FLAG(std::string, rollout, "all", "all | serial | batch:N | batch:N%");
ABSL_FLAG(std::string, stagger, "0s", "pause between rollout waves");
ABSL_FLAG(std::string, max_failures, "", "stop rolling out (and release) after N or N% failures");
ABSL_FLAG(std::string, for_, "", "run: keep the plan this long, then stop (default: until "
                                 "it ends by itself, or Ctrl-C)");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1), "watch/run: refresh interval");
ABSL_FLAG(int, count, 0, "watch: frames to show, then exit (0 = until Ctrl-C)");
ABSL_FLAG(bool, all, false, "stop: every running plan");
ABSL_FLAG(std::string, record, "", "run: write samples and events to FILE as JSON Lines");
ABSL_FLAG(std::string, html, "", "report: write the HTML page to FILE");
ABSL_FLAG(std::string, pods, "",
          "start/run: one plan per pod of `kubectl get pods -o json` (FILE, or - for stdin), "
          "placed in the pod's container on the agent of its node");
ABSL_FLAG(std::string, container, "", "--pods: the container to load (default: the pod's only one)");

namespace memload {
namespace controller {
namespace {

constexpr char kUsage[] =
    "memloadctl COMMAND --targets=... [flags]\n"
    "commands: agents | usage | start | resize | stop | watch | run | report | version\n"
    "see README.md for every flag; --help lists them.";

// Prints a usage error the way --output asks, and returns 2: nothing was sent to any agent.
int UsageError(const std::string& command, bool json, const absl::Status& status) {
  if (json) {
    std::cout << ErrorJson(command, status);
  }
  std::cerr << "memloadctl " << command << ": " << status.message() << "\n";
  return kExitUsage;
}

// Names of the flags given on the command line (absl 20220623 keeps that private).
std::set<std::string> GivenFlagNames(const std::vector<std::string>& args) {
  std::set<std::string> names;
  for (size_t i = 1; i < args.size(); ++i) {
    const absl::string_view arg = args[i];
    if (arg == "--") break;
    if (!absl::StartsWith(arg, "--")) continue;
    std::string name(arg.substr(2, arg.find('=') == absl::string_view::npos
                                       ? absl::string_view::npos
                                       : arg.find('=') - 2));
    names.insert(name);
    if (absl::StartsWith(name, "no")) names.insert(name.substr(2));  // --noexpect_oom
  }
  return names;
}

absl::StatusOr<PlanFlags> CollectPlanFlags(const std::set<std::string>& given) {
  PlanFlags flags;
  flags.plan = absl::GetFlag(FLAGS_plan);
  flags.kind = absl::GetFlag(FLAGS_kind);
  flags.target = absl::GetFlag(FLAGS_target);
  flags.touch = absl::GetFlag(FLAGS_touch);
  flags.backing = absl::GetFlag(FLAGS_backing);
  flags.block_size = absl::GetFlag(FLAGS_block_size);
  flags.ramp = absl::GetFlag(FLAGS_ramp);
  flags.hold = absl::GetFlag(FLAGS_hold);
  flags.repeat = absl::GetFlag(FLAGS_repeat);
  flags.rate = absl::GetFlag(FLAGS_rate);
  flags.window = absl::GetFlag(FLAGS_window);
  flags.workers = absl::GetFlag(FLAGS_workers);
  flags.return_to_os = absl::GetFlag(FLAGS_return_to_os);
  flags.amount = absl::GetFlag(FLAGS_amount);
  flags.duration = absl::GetFlag(FLAGS_duration);
  flags.lease = absl::GetFlag(FLAGS_lease);
  flags.plan_id = absl::GetFlag(FLAGS_plan_id);
  flags.labels = absl::GetFlag(FLAGS_labels);
  flags.expect_oom = absl::GetFlag(FLAGS_expect_oom);
  flags.oom_score_adj = absl::GetFlag(FLAGS_oom_score_adj);
  flags.huge_pages = absl::GetFlag(FLAGS_huge_pages);
  flags.mlock = absl::GetFlag(FLAGS_mlock);
  for (absl::string_view name : PlanFlagNames()) {
    if (given.count(std::string(name)) > 0) flags.explicitly_set.insert(std::string(name));
  }
  return flags;
}

absl::StatusOr<RolloutOptions> CollectRollout() {
  RolloutOptions rollout;
  absl::StatusOr<RolloutStrategy> strategy = ParseRollout(absl::GetFlag(FLAGS_rollout));
  if (!strategy.ok()) return strategy.status();
  rollout.strategy = *strategy;
  absl::StatusOr<absl::Duration> stagger = ParseStagger(absl::GetFlag(FLAGS_stagger));
  if (!stagger.ok()) return stagger.status();
  rollout.stagger = *stagger;
  if (const std::string text = absl::GetFlag(FLAGS_max_failures); !text.empty()) {
    absl::StatusOr<FailureLimit> limit = ParseMaxFailures(text);
    if (!limit.ok()) return limit.status();
    rollout.max_failures = *limit;
  }
  return rollout;
}

int Main(int argc, char** argv) {
  // Before any thread exists (gRPC starts its own): every thread inherits the blocked
  // SIGINT/SIGTERM, so only the signal thread below ever receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  absl::SetProgramUsageMessage(kUsage);
  std::vector<std::string> args = NormalizeFlagNames(argc, argv);
  std::vector<char*> pointers;
  for (std::string& arg : args) pointers.push_back(arg.data());
  // "--for" is a C++ keyword as a flag name; accept it as the user types it.
  for (char*& arg : pointers) {
    const absl::string_view text(arg);
    if (text == "--for" || absl::StartsWith(text, "--for=")) {
      static std::vector<std::string> rewritten;
      rewritten.push_back(absl::StrCat("--for_", text.substr(5)));
      arg = rewritten.back().data();
    }
  }
  if (absl::Status flags = CheckFlagArgs(pointers); !flags.ok()) {
    const bool json = std::find(args.begin(), args.end(), "--output=json") != args.end();
    const auto command = std::find_if(args.begin() + 1, args.end(), [](const std::string& arg) {
      return !absl::StartsWith(arg, "-");
    });
    return UsageError(command != args.end() ? *command : "memloadctl", json, flags);
  }
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(pointers.size()), pointers.data());
  const std::string command = positional.size() > 1 ? positional[1] : "";
  const std::string output = absl::GetFlag(FLAGS_output);
  const bool json = output == "json";
  if (output != "json" && output != "table") {
    return UsageError(command, false,
                      absl::InvalidArgumentError(absl::StrCat(
                          "--output=\"", output, "\": want table or json")));
  }
  if (command == "version") {
    std::cout << "memloadctl " << kVersion << "\n";
    return kExitOk;
  }
  if (command == "report") {  // Reads a recording; no agent is involved.
    if (positional.size() > 3) {
      return UsageError(command, json, absl::InvalidArgumentError(absl::StrCat(
                                           "unexpected argument \"", positional[3], "\"")));
    }
    return RunReport(positional.size() > 2 ? positional[2] : "", absl::GetFlag(FLAGS_html),
                     std::cout, std::cerr);
  }
  if (!absl::GetFlag(FLAGS_pods).empty() && command != "start" && command != "run") {
    return UsageError(command, json, absl::InvalidArgumentError("--pods is for start and run"));
  }
  if (!absl::GetFlag(FLAGS_record).empty() && command != "run") {
    return UsageError(command, json, absl::InvalidArgumentError("--record is for run only"));
  }
  static const std::vector<std::string> kCommands = {"agents", "usage", "start", "resize",
                                                     "stop",   "watch", "run",   "report"};
  if (std::find(kCommands.begin(), kCommands.end(), command) == kCommands.end()) {
    return UsageError(command.empty() ? "memloadctl" : command, json,
                      absl::InvalidArgumentError(absl::StrCat(
                          command.empty() ? "no command given" : "unknown command \"" + command + "\"",
                          "; want one of: ", absl::StrJoin(kCommands, ", "))));
  }
  if (positional.size() > 2) {
    return UsageError(command, json,
                      absl::InvalidArgumentError(absl::StrCat(
                          "unexpected argument \"", positional[2], "\" (flags go as --name=value)")));
  }

  // Everything is checked before anything is sent.
  CommandEnv env;
  env.json = json;
  env.out = &std::cout;
  env.tty = isatty(STDOUT_FILENO) == 1;
  if (absl::GetFlag(FLAGS_targets).empty()) {
    return UsageError(command, json, absl::InvalidArgumentError("--targets is required"));
  }
  absl::StatusOr<std::vector<std::string>> targets = ParseTargets(absl::GetFlag(FLAGS_targets));
  if (!targets.ok()) return UsageError(command, json, targets.status());
  env.targets = *targets;
  absl::StatusOr<Selector> selector = ParseSelector(absl::GetFlag(FLAGS_selector));
  if (!selector.ok()) return UsageError(command, json, selector.status());
  env.selector = *selector;
  if (absl::GetFlag(FLAGS_parallelism) < 1) {
    return UsageError(command, json, absl::InvalidArgumentError("--parallelism must be >= 1"));
  }
  if (absl::GetFlag(FLAGS_timeout) <= absl::ZeroDuration()) {
    return UsageError(command, json, absl::InvalidArgumentError("--timeout must be positive"));
  }
  if (absl::GetFlag(FLAGS_retries) < 0) {
    return UsageError(command, json, absl::InvalidArgumentError("--retries must be >= 0"));
  }
  env.fanout.parallelism = absl::GetFlag(FLAGS_parallelism);
  env.fanout.timeout = absl::GetFlag(FLAGS_timeout);
  env.fanout.retry.max_attempts = 1 + absl::GetFlag(FLAGS_retries);
  ClientSecurityOptions security;
  security.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  security.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  security.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  security.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  security.token_file = absl::GetFlag(FLAGS_token_file);
  if (const char* token = std::getenv("MEMLOAD_TOKEN"); token != nullptr) security.token = token;
  GrpcClientOptions client_options;
  if (absl::Status status = ApplyClientSecurity(security, &client_options); !status.ok()) {
    return UsageError(command, json, status);
  }
  env.factory = GrpcAgentClientFactory(std::move(client_options));

  // Ctrl-C / SIGTERM: a signal thread flips the cancel signal; the command then stops
  // what it started and reports. A second signal exits at once.
  static CancelSignal cancel;  // Outlives the detached signal thread.
  env.cancel = &cancel;
  std::thread([signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::cerr << "\nmemloadctl: interrupted; stopping what was started (again to quit now)\n";
    cancel.Cancel();
    sigwait(&signals, &signal);
    _exit(kExitInterrupted);
  }).detach();

  if (command == "agents") return RunAgents(env);
  if (command == "usage") return RunUsage(env);
  if (command == "watch") {
    WatchOptions watch;
    watch.interval = absl::GetFlag(FLAGS_interval);
    watch.count = absl::GetFlag(FLAGS_count);
    if (watch.interval < absl::Milliseconds(50) || watch.count < 0) {
      return UsageError(command, json, absl::InvalidArgumentError(
                                           "--interval must be >= 50ms and --count >= 0"));
    }
    return RunWatch(env, watch);
  }
  if (command == "stop") {
    const std::string plan_id = absl::GetFlag(FLAGS_plan_id);
    if (plan_id.empty() == !absl::GetFlag(FLAGS_all)) {
      return UsageError(command, json, absl::InvalidArgumentError(
                                           "stop needs --plan_id=ID or --all (not both)"));
    }
    return RunStop(env, plan_id);
  }
  if (command == "resize") {
    const std::string plan_id = absl::GetFlag(FLAGS_plan_id);
    if (plan_id.empty()) {
      return UsageError(command, json, absl::InvalidArgumentError("resize needs --plan_id"));
    }
    absl::StatusOr<v1::Quantity> target = ParseTargetFlag(absl::GetFlag(FLAGS_target));
    if (!target.ok()) return UsageError(command, json, target.status());
    return RunResize(env, plan_id, *target);
  }
  // start and run: a plan.
  absl::StatusOr<PlanFlags> flags = CollectPlanFlags(GivenFlagNames(args));
  if (!flags.ok()) return UsageError(command, json, flags.status());
  const std::string pods_path = absl::GetFlag(FLAGS_pods);
  if (pods_path.empty() && !absl::GetFlag(FLAGS_container).empty()) {
    return UsageError(command, json, absl::InvalidArgumentError("--container needs --pods"));
  }
  if (!pods_path.empty()) {
    PodsOptions pods;
    pods.container = absl::GetFlag(FLAGS_container);
    absl::StatusOr<std::optional<PodRelativeTarget>> relative =
        ParsePodRelativeTarget(flags->target);
    if (!relative.ok()) return UsageError(command, json, relative.status());
    pods.relative = *relative;
    // N%request / N%limit are resolved per pod; the plan is built with a stand-in size.
    if (pods.relative.has_value()) flags->target = "1";
    // Not applied to pods yet: refused rather than silently ignored.
    const std::set<std::string> given = GivenFlagNames(args);
    for (const char* flag : {"record", "rollout", "stagger", "max_failures", "selector"}) {
      if (given.count(flag) > 0) {
        return UsageError(command, json,
                          absl::InvalidArgumentError(absl::StrCat(
                              "--", flag, " is not available with --pods yet")));
      }
    }
    absl::StatusOr<v1::PlanSpec> spec = BuildPlanFromFlags(*flags);
    if (!spec.ok()) return UsageError(command, json, spec.status());
    absl::StatusOr<std::string> input = ReadPodsInput(pods_path);
    if (!input.ok()) return UsageError(command, json, input.status());
    absl::StatusOr<std::vector<Pod>> parsed =
        ParsePods(*input, pods_path == "-" ? "stdin" : pods_path);
    if (!parsed.ok()) return UsageError(command, json, parsed.status());
    pods.pods = *std::move(parsed);
    pods.run = command == "run";
    pods.refresh = absl::GetFlag(FLAGS_interval);
    if (const std::string keep = absl::GetFlag(FLAGS_for_); !keep.empty()) {
      absl::Duration duration;
      if (!absl::ParseDuration(keep, &duration) || duration <= absl::ZeroDuration()) {
        return UsageError(command, json, absl::InvalidArgumentError(absl::StrCat(
                                             "--for=\"", keep, "\": want a positive duration")));
      }
      pods.keep = duration;
    }
    return RunPods(env, *spec, pods);
  }
  absl::StatusOr<v1::PlanSpec> spec = BuildPlanFromFlags(*flags);
  if (!spec.ok()) return UsageError(command, json, spec.status());
  absl::StatusOr<RolloutOptions> rollout = CollectRollout();
  if (!rollout.ok()) return UsageError(command, json, rollout.status());
  if (command == "start") return RunStart(env, *spec, *rollout);
  RunOptions run;
  run.rollout = *rollout;
  run.refresh = absl::GetFlag(FLAGS_interval);
  if (const std::string keep = absl::GetFlag(FLAGS_for_); !keep.empty()) {
    absl::Duration duration;
    if (!absl::ParseDuration(keep, &duration) || duration <= absl::ZeroDuration()) {
      return UsageError(command, json, absl::InvalidArgumentError(absl::StrCat(
                                           "--for=\"", keep, "\": want a positive duration")));
    }
    run.keep = duration;
  }
  std::unique_ptr<RunRecorder> recorder;
  if (const std::string path = absl::GetFlag(FLAGS_record); !path.empty()) {
    absl::StatusOr<std::unique_ptr<RunRecorder>> opened = RunRecorder::Open(path);
    if (!opened.ok()) return UsageError(command, json, opened.status());
    recorder = *std::move(opened);
    run.recorder = recorder.get();
  }
  const int code = RunRun(env, *spec, run);
  if (recorder != nullptr && !recorder->status().ok()) {
    std::cerr << "memloadctl run: --record: " << recorder->status().message() << "\n";
    return code == kExitOk ? kExitNodesFailed : code;
  }
  return code;
}

}  // namespace
}  // namespace controller
}  // namespace memload

int main(int argc, char** argv) {
  // Debian's Abseil is built with absl::Mutex deadlock detection on: every lock gRPC takes
  // then updates a global lock graph, a sixth of the fan-out's CPU (fanout_benchmark).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int code = memload::controller::Main(argc, argv);
  // Every command has finished and released its clients; what is left are gRPC's own
  // background threads, which static destructors must not race (seen crashing at exit
  // under TSan, after the output was printed). Flush and leave without running them.
  std::cout.flush();
  std::fflush(nullptr);
  _exit(code);
}
