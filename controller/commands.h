// memloadctl's commands as functions over AgentClients, so tests drive them with fakes
// (FakeFleet) or real agents, and memloadctl_main.cc only parses flags.
//
//   CommandEnv env;
//   env.targets = {"127.0.0.1:7070", "127.0.0.1:7071"};
//   env.factory = GrpcAgentClientFactory();
//   env.out = &std::cout;
//   int exit_code = RunUsage(env);
//
// Tables list nodes by node name (then target); JSON keeps the targets' order. After a
// one-step command, "N ok, N failed" goes to `err`.
//
// Exit codes: 0 every node ok; 1 one or more nodes failed (they are listed, and never hide
// the others' results); 130 interrupted (env.cancel: Ctrl-C or SIGTERM). Usage errors
// (exit 2) are caught before a command runs, in main.
//
// Ctrl-C: run and start (and RunPods) open a CancelScope (core/cancel_signal.h) just
// before their first StartPlan and answer a cancellation themselves: no further start,
// stop what may have started (run: everything it started), summary, 130. Cancelled before
// that scope opened, they start nothing. The other commands start nothing and open no
// scope: whoever cancels may end the process at once (memloadctl_main.cc does); run
// without that, watch still ends at its next frame with 130.
//
// Time: a command paces, waits and stamps on `env.clock` alone (run's refresh and --for,
// watch's frames, the recording's times, usage's "recently ended" window, and the fan-outs'
// backoffs, watchdog and rollout stagger), so tests run it on a SimulatedClock.
//
// Thread-safety: a command runs on the calling thread (the fan-out's callbacks come from
// gRPC threads); `cancel` may be set from a signal thread.
#ifndef MEMLOAD_CONTROLLER_COMMANDS_H_
#define MEMLOAD_CONTROLLER_COMMANDS_H_

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controller/agent_client.h"
#include "controller/fanout.h"
#include "controller/output.h"
#include "controller/recording.h"
#include "controller/rollout.h"
#include "controller/targets.h"
#include "core/cancel_signal.h"
#include "core/clock.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

constexpr int kExitOk = 0;
constexpr int kExitNodesFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

struct CommandEnv {
  std::vector<std::string> targets;  // Resolved host:port, in the user's order.
  AgentClientFactory factory;
  Selector selector;  // Keeps agents whose labels match (empty: all).
  // Parallelism, per-call timeout, retries. Its `clock` is ignored: the fan-outs run on
  // `clock` below.
  FanOutOptions fanout;
  bool json = false;
  bool tty = false;  // Redraw live output in place.
  // The terminal live views (watch, run) fit: 0 = ask stdout's terminal at every frame
  // (TIOCGWINSZ) when tty; tests set it.
  ViewSize view_size;
  std::ostream* out = nullptr;
  // "N ok, N failed" after a table or document; null = not printed.
  std::ostream* err = nullptr;
  // Ctrl-C / SIGTERM (see "Ctrl-C" above); may be null. Its waits run on its own clock,
  // which must be `clock` (CancelSignal cancel(clock)).
  CancelSignal* cancel = nullptr;
  // What every wait, pace and time stamp of the command reads (see "Time" above). Not
  // owned, never null; memloadctl's main passes Clock::Real().
  Clock* clock = Clock::Real();
};

int RunAgents(const CommandEnv& env);
int RunUsage(const CommandEnv& env);
int RunStart(const CommandEnv& env, const v1::PlanSpec& spec, const RolloutOptions& rollout);
int RunResize(const CommandEnv& env, const std::string& plan_id, const v1::Quantity& target);
// Stops `plan_id` everywhere, or every running plan when `plan_id` is empty (--all).
int RunStop(const CommandEnv& env, const std::string& plan_id);

// start/run --dry-run: asks every node for its usage and prints what the plan would get
// there (controller/dry_run.h); starts nothing. `command` names the JSON document.
int RunDryRun(const CommandEnv& env, const std::string& command, const v1::PlanSpec& spec);

// Frames are `interval` apart on env.clock: once every node has answered (or
// env.fanout.timeout has passed), frame k is drawn k * interval later.
struct WatchOptions {
  absl::Duration interval = absl::Seconds(1);
  int count = 0;  // Frames to show before returning; 0 = until cancelled.
};
int RunWatch(const CommandEnv& env, const WatchOptions& options);

struct RunOptions {
  RolloutOptions rollout;
  // How long to keep the plan before stopping it everywhere; InfiniteDuration = until it
  // ends by itself on every node, or Ctrl-C.
  absl::Duration keep = absl::InfiniteDuration();
  // Progress refresh and usage polling (--interval): refreshes start this far apart (the
  // next at once after one that took longer). The lease is renewed at every refresh
  // and, between refreshes, every lease/3 (the spec's lease, else the shortest
  // NodeInfo.default_lease of the nodes still running it; at least plan_rules::kMinLease),
  // so the lease need not outlast the refresh; those renewals redraw nothing.
  absl::Duration refresh = absl::Seconds(1);
  // --record: each refresh appends samples and events to it (recording.h); null = none.
  RunRecorder* recorder = nullptr;
};
int RunRun(const CommandEnv& env, const v1::PlanSpec& spec, const RunOptions& options);

// A start's answer after which the plan may be running there, so that a start or run that
// gives up must stop it again: it started, or it ended UNAVAILABLE or DEADLINE_EXCEEDED (it
// may have reached the agent and started anyway). A definite refusal started nothing:
// stopping there could even hit another plan holding the same id (ALREADY_EXISTS).
bool MayHaveStarted(const TargetResult<v1::StartPlanResponse>& start);

// What a node's row says of a plan stopped again because `why` (e.g. "interrupted"):
// ABORTED "WHY; the plan was stopped here again", and " (stop failed: ...)" when `stop`
// failed.
absl::Status StoppedHereAgain(absl::string_view why, const absl::Status& stop);

// How often `run` (and `run --pods`) renews a plan between refreshes: every lease/3, the
// lease being the spec's, else `default_lease` (its agent's NodeInfo.default_lease; nullopt
// when the agent said none), and at least plan_rules::kMinLease (an agent saying less cannot
// make `run` spin). nullopt when neither is known: renew at each refresh only. Over several
// plans or agents, the shortest period applies.
std::optional<absl::Duration> RenewalPeriod(const v1::PlanSpec& spec,
                                            std::optional<absl::Duration> default_lease);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_COMMANDS_H_
