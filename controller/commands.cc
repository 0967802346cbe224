#include "controller/commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "controller/agent_requests.h"
#include "controller/dry_run.h"
#include "controller/lease_view.h"
#include "controller/output.h"
#include "core/sync/mutex.h"
#include "proto/plan_rules.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

// The env's fan-out options on the env's clock.
FanOutOptions FanOutOf(const CommandEnv& env) {
  FanOutOptions options = env.fanout;
  options.clock = env.clock;
  return options;
}

FanOutOptions Idempotent(const CommandEnv& env) {
  FanOutOptions options = FanOutOf(env);
  options.idempotent = true;
  options.cancel = nullptr;  // One-step commands finish what they started.
  return options;
}

// `method` on every client, as an idempotent call that is never cancelled (one-step
// commands, lease renewals and stops finish what they started).
template <typename Request, typename Response>
std::vector<TargetResult<Response>> Ask(const CommandEnv& env,
                                        const std::vector<AgentClient*>& clients,
                                        void (AgentClient::*method)(const Request&, absl::Duration,
                                                                    Done<Response>),
                                        Request request = Request()) {
  return FanOut<Response>(clients, Rpc(method, std::move(request)), Idempotent(env));
}

// The clients of one command, and the targets the selector kept.
class Fleet {
 public:
  explicit Fleet(const CommandEnv& env) {
    for (const std::string& target : env.targets) owned_.push_back(env.factory(target));
    for (auto& client : owned_) all_.push_back(client.get());
  }
  const std::vector<AgentClient*>& all() const { return all_; }

 private:
  std::vector<std::unique_ptr<AgentClient>> owned_;
  std::vector<AgentClient*> all_;
};

// Agents whose labels match the selector, and those that could not be asked (reported as
// failed nodes: an agent whose labels are unknown is never silently skipped).
struct Selection {
  std::vector<AgentClient*> clients;
  std::vector<v1::NodeInfo> infos;  // Parallel to clients (empty infos without a selector).
  std::vector<std::pair<std::string, absl::Status>> failures;
};

Selection Select(const CommandEnv& env, const std::vector<AgentClient*>& clients, bool need_info) {
  Selection selection;
  if (env.selector.empty() && !need_info) {
    selection.clients = clients;
    return selection;
  }
  std::vector<TargetResult<v1::NodeInfo>> infos = Ask(env, clients, &AgentClient::GetNodeInfo);
  for (size_t i = 0; i < infos.size(); ++i) {
    if (!infos[i].response.ok()) {
      selection.failures.emplace_back(infos[i].target, infos[i].response.status());
    } else if (MatchesSelector(infos[i].response->labels(), env.selector)) {
      selection.clients.push_back(clients[i]);
      selection.infos.push_back(*infos[i].response);
    }
  }
  return selection;
}

template <typename T>
void AddFailures(const Selection& selection, std::vector<NodeResult<T>>* results) {
  for (const auto& [target, status] : selection.failures) {
    results->push_back(NodeResult<T>{target, status});
  }
}

template <typename T>
int ExitCodeOf(const std::vector<NodeResult<T>>& results) {
  for (const NodeResult<T>& result : results) {
    if (!result.value.ok()) return kExitNodesFailed;
  }
  return kExitOk;
}

// The node name a table row is sorted by ("" when unknown: the row sorts by target,
// after the named ones).
std::string NodeNameOf(const AgentInfo& agent) { return agent.info.node_name(); }
std::string NodeNameOf(const v1::NodeUsage& usage) { return usage.node().node_name(); }
std::string NodeNameOf(const v1::PlanStatus&) { return ""; }
std::string NodeNameOf(const DryRunNode& node) { return node.node_name; }

// Tables list failed rows first, then nodes by node name, then target (output.h's order).
template <typename T>
void SortByNodeName(std::vector<NodeResult<T>>* rows) {
  auto key = [](const NodeResult<T>& row) {
    return RowKey(row.value.ok(), row.value.ok() ? NodeNameOf(*row.value) : "", row.target);
  };
  std::stable_sort(rows->begin(), rows->end(),
                   [&](const NodeResult<T>& a, const NodeResult<T>& b) { return key(a) < key(b); });
}

// `run`'s view with its nodes in table order (the view itself keeps the start order, which
// RunState's indexes point into). While the run goes on, a node is failed once a call to
// it failed or its plan ended badly (one still starting is not); at the end, RunNodeOk.
RunView SortedByNodeName(const RunView& view, bool final) {
  RunView sorted = view;
  auto key = [final](const RunNode& node) {
    const bool ok = final ? RunNodeOk(node)
                          : node.errors.empty() &&
                                (!node.plan.has_value() || PlanOutcomeStatus(*node.plan).ok());
    return RowKey(ok, node.node_name, node.target);
  };
  std::stable_sort(sorted.nodes.begin(), sorted.nodes.end(),
                   [&](const RunNode& a, const RunNode& b) { return key(a) < key(b); });
  return sorted;
}

// "N ok, N failed" on err (when set), after every command that asks agents.
void PrintCounts(const CommandEnv& env, size_t nodes, size_t failed) {
  if (env.err != nullptr) *env.err << nodes - failed << " ok, " << failed << " failed\n";
}

// Prints one-step results: tables with failed rows first, then by node name, then target;
// JSON in the targets' order. Then "N ok, N failed" on err.
// Returns the exit code.
template <typename T, typename TableFn, typename JsonFn>
int PrintResults(const CommandEnv& env, std::vector<NodeResult<T>> results, TableFn table,
                 JsonFn json) {
  if (env.json) {
    *env.out << json(results);
  } else {
    SortByNodeName(&results);
    *env.out << table(results);
  }
  env.out->flush();
  size_t failed = 0;
  for (const NodeResult<T>& result : results) failed += result.value.ok() ? 0 : 1;
  PrintCounts(env, results.size(), failed);
  return failed == 0 ? kExitOk : kExitNodesFailed;
}

// Stops `plan_id` on `clients`; used by start/run to release what a failed or interrupted
// rollout started. Never cancelled: releasing memory must finish.
std::vector<TargetResult<v1::StopPlanResponse>> StopOn(const CommandEnv& env,
                                                       const std::vector<AgentClient*>& clients,
                                                       const std::string& plan_id) {
  return Ask(env, clients, &AgentClient::StopPlan, StopRequest(plan_id));
}

// Starts `spec` on `clients` per the rollout (idempotent thanks to plan_id; stops
// starting on Ctrl-C).
RolloutResult<v1::StartPlanResponse> StartOn(const CommandEnv& env,
                                             const std::vector<AgentClient*>& clients,
                                             const v1::PlanSpec& spec,
                                             const RolloutOptions& rollout) {
  v1::StartPlanRequest request;
  *request.mutable_spec() = spec;
  RolloutOptions options = rollout;
  options.fanout = FanOutOf(env);
  options.fanout.idempotent = true;  // plan_id makes a repeated start one plan.
  options.cancel = env.cancel;
  return Rollout<v1::StartPlanResponse>(clients, Rpc(&AgentClient::StartPlan, request), options);
}

// The indexes of the targets an aborted or finished rollout must stop (MayHaveStarted).
std::vector<size_t> MayHaveStarted(const RolloutResult<v1::StartPlanResponse>& started) {
  std::vector<size_t> indexes;
  for (size_t i = 0; i < started.results.size(); ++i) {
    if (MayHaveStarted(started.results[i])) indexes.push_back(i);
  }
  return indexes;
}

// One row per target: the plan status a start/resize/stop answered with, or its error.
template <typename Response>
void AppendPlanResults(std::vector<TargetResult<Response>> answers,
                       std::vector<NodeResult<v1::PlanStatus>>* results) {
  for (TargetResult<Response>& one : answers) {
    if (one.response.ok()) {
      results->push_back({one.target, std::move(*one.response->mutable_plan())});
    } else {
      results->push_back({one.target, one.response.status()});
    }
  }
}

// --record: the nodes' usage (available memory, pressure) beside the plans' numbers.
void RecordRefresh(const CommandEnv& env, const std::vector<AgentClient*>& running,
                   const RunView& view, RunRecorder* recorder) {
  std::map<std::string, v1::NodeUsage> usage;
  for (TargetResult<v1::NodeUsage>& one : Ask(env, running, &AgentClient::GetUsage)) {
    if (one.response.ok()) usage[one.target] = *std::move(one.response);
  }
  recorder->Record(env.clock->Now(), view, usage);
}

auto PlanTable = [](const std::vector<NodeResult<v1::PlanStatus>>& results) {
  return FormatPlanResultsTable(results);
};
auto PlanJson(absl::string_view command) {
  return [command](const std::vector<NodeResult<v1::PlanStatus>>& results) {
    return PlanResultsJson(command, results);
  };
}

// The terminal a live view fits, read at every frame (the user may resize it).
ViewSize LiveViewSize(const CommandEnv& env) {
  ViewSize size = env.view_size;
  if (env.tty && (size.columns <= 0 || size.rows <= 0)) {
    struct winsize window = {};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &window) == 0) {
      if (size.columns <= 0) size.columns = window.ws_col;
      if (size.rows <= 0) size.rows = window.ws_row;
    }
  }
  return size;
}

// Redraws a live view in place: moves up over the rows the previous frame really took
// (its wrapped lines counted at the terminal's current width) and clears below.
class Redraw {
 public:
  explicit Redraw(std::ostream* out) : out_(out) {}
  void Frame(const std::string& text, int columns) {
    *out_ << ClearFrame(FrameRows(previous_, columns)) << text;
    previous_ = text;
  }

 private:
  std::ostream* out_;
  std::string previous_;
};

// --- run, in three steps over one RunState.

struct RunState {
  absl::Time begin;
  Selection selection;
  RunView view;
  std::map<AgentClient*, size_t> index;  // Client → its node in view.nodes.
  // Each agent's incarnation when the run began: one that changes means the agent
  // restarted and its plan died with the old process, so waiting for it would never end.
  std::map<AgentClient*, std::string> incarnation;
  // Each agent's --default-lease (NodeInfo.default_lease) as it last said; absent when it
  // said none (an agent older than the field).
  std::map<AgentClient*, absl::Duration> default_lease;
  RolloutResult<v1::StartPlanResponse> started;
  std::vector<AgentClient*> running;    // Started, not known to be gone.
  std::vector<AgentClient*> uncertain;  // Failed starts that may have started anyway.
};

void NoteDefaultLease(AgentClient* client, const v1::NodeInfo& info, RunState* state) {
  if (info.has_default_lease()) {
    state->default_lease[client] = FromProtoDuration(info.default_lease());
  }
}

// The shortest RenewalPeriod of the nodes `run` still runs on.
std::optional<absl::Duration> RunRenewalPeriod(const v1::PlanSpec& spec, const RunState& state) {
  std::optional<absl::Duration> shortest;
  for (AgentClient* client : state.running) {
    auto it = state.default_lease.find(client);
    const std::optional<absl::Duration> period = RenewalPeriod(
        spec,
        it != state.default_lease.end() ? std::optional<absl::Duration>(it->second) : std::nullopt);
    if (period.has_value()) shortest = std::min(shortest.value_or(*period), *period);
  }
  return shortest;
}

// Names every node (and applies the selector): asks, starts nothing.
void SelectRun(const CommandEnv& env, const std::vector<AgentClient*>& clients,
               const v1::PlanSpec& spec, RunState* state) {
  state->begin = env.clock->Now();
  state->selection = Select(env, clients, /*need_info=*/true);
  const Selection& selection = state->selection;
  RunView& view = state->view;
  view.spec = spec;
  for (size_t i = 0; i < selection.clients.size(); ++i) {
    RunNode node;
    node.target = selection.clients[i]->target();
    node.node_name = selection.infos[i].node_name();
    state->incarnation[selection.clients[i]] = selection.infos[i].incarnation();
    NoteDefaultLease(selection.clients[i], selection.infos[i], state);
    state->index[selection.clients[i]] = view.nodes.size();
    view.nodes.push_back(std::move(node));
  }
  for (const auto& [target, status] : selection.failures) {
    RunNode node;
    node.target = target;
    node.errors.push_back(status);
    view.nodes.push_back(std::move(node));
  }
}

// Starts per the rollout on the selected nodes (none once cancelled).
void StartRun(const CommandEnv& env, const v1::PlanSpec& spec, const RunOptions& options,
              RunState* state) {
  const Selection& selection = state->selection;
  RunView& view = state->view;
  state->started = StartOn(env, selection.clients, spec, options.rollout);
  const RolloutResult<v1::StartPlanResponse>& started = state->started;
  for (size_t i = 0; i < started.results.size(); ++i) {
    RunNode& node = view.nodes[i];
    if (started.results[i].response.ok()) {
      node.plan = started.results[i].response->plan();
      state->running.push_back(selection.clients[i]);
    } else if (started.results[i].attempted() || !started.cancelled) {
      node.errors.push_back(started.results[i].response.status());
    }
  }
  for (size_t i : MayHaveStarted(started)) {
    if (!started.results[i].response.ok()) state->uncertain.push_back(selection.clients[i]);
  }
}

// Renews, watches and redraws until every plan ended, the time is up, or Ctrl-C.
void MonitorRun(const CommandEnv& env, const v1::PlanSpec& spec, const RunOptions& options,
                RunState* state) {
  CancelSignal never(env.clock);
  CancelSignal* cancel = env.cancel != nullptr ? env.cancel : &never;
  const bool abort_rollout = state->started.stopped_by_failures || state->started.cancelled;
  const absl::Time keep_until = options.keep == absl::InfiniteDuration()
                                    ? absl::InfiniteFuture()
                                    : env.clock->Now() + options.keep;
  Redraw redraw(env.out);
  const v1::RenewLeasesRequest renew = RenewRequest({spec.plan_id()});
  v1::ListPlansRequest list;
  list.set_include_ended(true);
  std::vector<AgentClient*>& running = state->running;
  RunView& view = state->view;
  absl::Time renewed;  // When the last renewal went out.
  while (!abort_rollout && !running.empty()) {
    renewed = env.clock->Now();
    Ask(env, running, &AgentClient::RenewLeases, renew);
    std::vector<TargetResult<v1::ListPlansResponse>> listed =
        Ask(env, running, &AgentClient::ListPlans, list);
    std::vector<TargetResult<v1::NodeInfo>> identities =
        Ask(env, running, &AgentClient::GetNodeInfo);
    bool any_running = false;
    std::vector<AgentClient*> still_running;
    for (size_t k = 0; k < running.size(); ++k) {
      RunNode& node = view.nodes[state->index[running[k]]];
      const std::string& began_as = state->incarnation[running[k]];
      if (identities[k].response.ok() && identities[k].response->incarnation() != began_as) {
        node.errors.push_back(absl::AbortedError(
            absl::StrCat("agent restarted (incarnation ", began_as, " → ",
                         identities[k].response->incarnation(), "): the plan is gone")));
        continue;  // Nothing left there to renew, watch or stop.
      }
      still_running.push_back(running[k]);
      if (identities[k].response.ok()) NoteDefaultLease(running[k], *identities[k].response, state);
      if (!listed[k].response.ok()) {
        // An unreachable node may still be running the plan: keep renewing it. The same
        // failure tick after tick is recorded once.
        if (node.errors.empty() || node.errors.back() != listed[k].response.status()) {
          node.errors.push_back(listed[k].response.status());
        }
        any_running = true;
        continue;
      }
      for (const v1::PlanStatus& plan : listed[k].response->plans()) {
        if (plan.plan_id() == spec.plan_id()) node.plan = plan;
      }
      any_running |= node.plan.has_value() && PlanIsRunning(node.plan->state());
    }
    running = std::move(still_running);
    view.elapsed = env.clock->Now() - state->begin;
    if (options.recorder != nullptr) RecordRefresh(env, running, view, options.recorder);
    if (!env.json) {
      const ViewSize size = LiveViewSize(env);
      const std::string text = FormatRunProgress(SortedByNodeName(view, /*final=*/false), size);
      if (env.tty) {
        redraw.Frame(text, size.columns);
      } else {
        *env.out << text << "\n";  // A blank line between refreshes.
      }
      env.out->flush();
    }
    if (!any_running) break;
    // Until the next refresh, renewals alone whenever one is due (no redraw): a lease
    // shorter than --interval must not expire between refreshes. Refreshes start --interval
    // apart (the next at once after a slower one), so the renewal that falls due with a
    // refresh is the refresh's own and none goes out twice.
    const absl::Time next = std::min(renewed + options.refresh, keep_until);
    bool interrupted = false;
    for (;;) {
      const std::optional<absl::Duration> period = RunRenewalPeriod(spec, *state);
      if (!period.has_value() || renewed + *period >= next) {
        interrupted = cancel->WaitUntil(next);
        break;
      }
      if (cancel->WaitUntil(renewed + *period)) {
        interrupted = true;
        break;
      }
      renewed = env.clock->Now();
      Ask(env, running, &AgentClient::RenewLeases, renew);
    }
    if (interrupted || env.clock->Now() >= keep_until) break;
  }
}

// Stops everywhere it started (also after an interrupted or failed rollout): the final
// statuses come back with the stop. Prints the summary; returns the exit code.
int StopRun(const CommandEnv& env, const v1::PlanSpec& spec, const RunOptions& options,
            RunState* state) {
  RunView& view = state->view;
  std::vector<AgentClient*> to_stop = state->running;
  to_stop.insert(to_stop.end(), state->uncertain.begin(), state->uncertain.end());
  std::vector<TargetResult<v1::StopPlanResponse>> stopped = StopOn(env, to_stop, spec.plan_id());
  for (size_t k = 0; k < to_stop.size(); ++k) {
    RunNode& node = view.nodes[state->index[to_stop[k]]];
    if (stopped[k].response.ok()) {
      node.plan = stopped[k].response->plan();
    } else if (k < state->running.size()) {  // An uncertain node reports its failed start.
      node.errors.push_back(stopped[k].response.status());
    }
  }
  if (state->started.stopped_by_failures) {
    for (size_t i : state->started.not_attempted) {
      view.nodes[i].errors.push_back(absl::AbortedError(
          "not started: the rollout stopped after too many failures (--max-failures)"));
    }
  }
  view.elapsed = env.clock->Now() - state->begin;
  size_t failed = 0;
  for (const RunNode& node : view.nodes) failed += RunNodeOk(node) ? 0 : 1;
  const int exit_code = env.cancel != nullptr && env.cancel->cancelled() ? kExitInterrupted
                        : failed == 0                                    ? kExitOk
                                                                         : kExitNodesFailed;
  // The recording ends with each node's result and the exit status (the report's verdict).
  if (options.recorder != nullptr) options.recorder->Finish(env.clock->Now(), view, exit_code);
  *env.out << (env.json ? RunJson(view)
                        : FormatRunSummary(SortedByNodeName(view, /*final=*/true),
                                           LiveViewSize(env).columns));
  env.out->flush();
  PrintCounts(env, view.nodes.size(), failed);
  return exit_code;
}

}  // namespace

bool MayHaveStarted(const TargetResult<v1::StartPlanResponse>& start) {
  return start.attempted() && (start.response.ok() || IsRetryable(start.response.status()));
}

absl::Status StoppedHereAgain(absl::string_view why, const absl::Status& stop) {
  return absl::AbortedError(
      absl::StrCat(why, "; the plan was stopped here again",
                   stop.ok() ? "" : absl::StrCat(" (stop failed: ", stop.message(), ")")));
}

std::optional<absl::Duration> RenewalPeriod(const v1::PlanSpec& spec,
                                            std::optional<absl::Duration> default_lease) {
  const std::optional<absl::Duration> lease =
      spec.has_lease() ? std::optional<absl::Duration>(FromProtoDuration(spec.lease()))
                       : default_lease;
  if (!lease.has_value()) return std::nullopt;
  return std::max(*lease, plan_rules::kMinLease) / 3;
}

int RunAgents(const CommandEnv& env) {
  Fleet fleet(env);
  Selection selection = Select(env, fleet.all(), /*need_info=*/true);
  std::vector<TargetResult<v1::ListPlansResponse>> plans =
      Ask(env, selection.clients, &AgentClient::ListPlans);
  std::vector<NodeResult<AgentInfo>> results;
  for (size_t i = 0; i < selection.clients.size(); ++i) {
    AgentInfo info;
    info.info = selection.infos[i];
    if (plans[i].response.ok()) info.running_plans = plans[i].response->plans_size();
    results.push_back({selection.clients[i]->target(), info});
  }
  AddFailures(selection, &results);
  return PrintResults(env, std::move(results), FormatAgentsTable, AgentsJson);
}

int RunUsage(const CommandEnv& env) {
  Fleet fleet(env);
  Selection selection = Select(env, fleet.all(), /*need_info=*/false);
  std::vector<TargetResult<v1::NodeUsage>> usage =
      Ask(env, selection.clients, &AgentClient::GetUsage);
  // The plans that ended lately too (their state is the outcome: lease_expired, ...).
  std::vector<AgentClient*> answered;
  for (size_t i = 0; i < usage.size(); ++i) {
    if (usage[i].response.ok()) answered.push_back(selection.clients[i]);
  }
  v1::ListPlansRequest list;
  list.set_include_ended(true);
  std::vector<TargetResult<v1::ListPlansResponse>> listed =
      Ask(env, answered, &AgentClient::ListPlans, list);
  std::map<std::string, const v1::ListPlansResponse*> ended_by_target;
  for (const TargetResult<v1::ListPlansResponse>& one : listed) {
    if (one.response.ok()) ended_by_target[one.target] = &*one.response;
  }
  const absl::Time since = env.clock->Now() - kRecentlyEnded;
  std::vector<NodeResult<v1::NodeUsage>> results;
  for (TargetResult<v1::NodeUsage>& one : usage) {
    if (one.response.ok() && ended_by_target.count(one.target) > 0) {
      AddRecentlyEnded(*ended_by_target[one.target], since, &*one.response);
    }
    results.push_back({one.target, std::move(one.response)});
  }
  AddFailures(selection, &results);
  return PrintResults(
      env, std::move(results),
      [](const std::vector<NodeResult<v1::NodeUsage>>& rows) { return FormatUsageTable(rows); },
      UsageJson);
}

int RunDryRun(const CommandEnv& env, const std::string& command, const v1::PlanSpec& spec) {
  Fleet fleet(env);
  Selection selection = Select(env, fleet.all(), /*need_info=*/false);
  std::vector<NodeResult<DryRunNode>> results;
  for (TargetResult<v1::NodeUsage>& one : Ask(env, selection.clients, &AgentClient::GetUsage)) {
    if (one.response.ok()) {
      results.push_back({one.target, ResolveOnNode(spec, *one.response)});
    } else {
      results.push_back({one.target, one.response.status()});
    }
  }
  AddFailures(selection, &results);
  return PrintResults(env, std::move(results), FormatDryRunTable,
                      [&](const std::vector<NodeResult<DryRunNode>>& nodes) {
                        return DryRunJson(command, spec, nodes);
                      });
}

int RunStart(const CommandEnv& env, const v1::PlanSpec& spec, const RolloutOptions& rollout) {
  Fleet fleet(env);
  Selection selection = Select(env, fleet.all(), /*need_info=*/false);
  // As run's: a Ctrl-C from here on is answered by releasing what started.
  CancelScope answers_ctrl_c(env.cancel);
  RolloutResult<v1::StartPlanResponse> started = StartOn(env, selection.clients, spec, rollout);
  // Also when the Ctrl-C came after the last start went out (the rollout then kept nothing
  // from starting): it was answered with "stopping what was started".
  const bool interrupted = started.cancelled || (env.cancel != nullptr && env.cancel->cancelled());
  std::vector<NodeResult<v1::PlanStatus>> results;
  AppendPlanResults(started.results, &results);
  if (started.stopped_by_failures || interrupted) {
    // Release what this rollout started, and say so per node.
    const std::vector<size_t> release = MayHaveStarted(started);
    std::vector<AgentClient*> to_release;
    for (size_t i : release) to_release.push_back(selection.clients[i]);
    std::vector<TargetResult<v1::StopPlanResponse>> stopped =
        StopOn(env, to_release, spec.plan_id());
    for (size_t k = 0; k < release.size(); ++k) {
      const size_t i = release[k];
      if (!results[i].value.ok()) continue;  // Its failed start is what the node reports.
      results[i].value =
          StoppedHereAgain(interrupted ? "interrupted" : "too many nodes failed (--max-failures)",
                           stopped[k].response.status());
    }
  }
  AddFailures(selection, &results);
  // Nothing renews a lease after start: say so when the plan outlasts it (on stderr, where
  // warnings go, so that stdout keeps the table alone; JSON carries it in "warnings").
  const std::string warning = interrupted ? "" : LeaseWarning(spec, results);
  if (!warning.empty() && !env.json) *(env.err != nullptr ? env.err : env.out) << warning << "\n";
  const int code = PrintResults(
      env, std::move(results),
      [&](const std::vector<NodeResult<v1::PlanStatus>>& rows) {
        return FormatStartTable(rows, LiveViewSize(env).columns);
      },
      [&](const std::vector<NodeResult<v1::PlanStatus>>& rows) {
        return StartJson(
            rows, warning.empty() ? std::vector<std::string>() : std::vector<std::string>{warning});
      });
  if (interrupted) return kExitInterrupted;
  return code;
}

int RunResize(const CommandEnv& env, const std::string& plan_id, const v1::Quantity& target) {
  Fleet fleet(env);
  Selection selection = Select(env, fleet.all(), /*need_info=*/false);
  v1::ResizePlanRequest request;
  request.set_plan_id(plan_id);
  *request.mutable_target() = target;
  std::vector<NodeResult<v1::PlanStatus>> results;
  AppendPlanResults(Ask(env, selection.clients, &AgentClient::ResizePlan, request), &results);
  AddFailures(selection, &results);
  return PrintResults(env, std::move(results), PlanTable, PlanJson("resize"));
}

int RunStop(const CommandEnv& env, const std::string& plan_id) {
  Fleet fleet(env);
  Selection selection = Select(env, fleet.all(), /*need_info=*/false);
  std::vector<NodeResult<v1::PlanStatus>> results;
  if (!plan_id.empty()) {
    AppendPlanResults(StopOn(env, selection.clients, plan_id), &results);
  } else {
    // --all: every running plan of every agent.
    std::vector<TargetResult<v1::ListPlansResponse>> listed =
        Ask(env, selection.clients, &AgentClient::ListPlans);
    std::map<std::string, std::vector<AgentClient*>> by_plan;
    for (size_t i = 0; i < listed.size(); ++i) {
      if (!listed[i].response.ok()) {
        results.push_back({listed[i].target, listed[i].response.status()});
        continue;
      }
      for (const v1::PlanStatus& plan : listed[i].response->plans()) {
        by_plan[plan.plan_id()].push_back(selection.clients[i]);
      }
    }
    for (const auto& [id, clients] : by_plan) {
      AppendPlanResults(StopOn(env, clients, id), &results);
    }
  }
  AddFailures(selection, &results);
  return PrintResults(env, std::move(results), PlanTable, PlanJson("stop"));
}

namespace {

// What RunWatch's streams have said: the latest answer per selected node (in selection
// order) and how many nodes have answered at all. Thread-safe: streams write it from
// their callbacks, the frames read it.
class WatchBoard {
 public:
  explicit WatchBoard(size_t nodes)
      : latest_(nodes, absl::UnavailableError("no usage received yet")), heard_(nodes, false) {}

  void Note(size_t node, absl::StatusOr<v1::NodeUsage> value) ABSL_LOCKS_EXCLUDED(mutex_) {
    {
      MutexLock lock(&mutex_);
      latest_[node] = std::move(value);
      if (!heard_[node]) {
        heard_[node] = true;
        ++answered_;
      }
    }
    answered_cv_.notify_all();
  }

  // Waits up to `timeout` on `clock` for every node's first answer.
  void WaitForEveryNode(Clock* clock, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    clock->WaitUntil(
        answered_cv_, lock.native(), clock->Now() + timeout,
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return answered_ == latest_.size(); });
  }

  std::vector<absl::StatusOr<v1::NodeUsage>> Latest() const ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    return latest_;
  }

 private:
  mutable Mutex mutex_;
  std::condition_variable answered_cv_;
  std::vector<absl::StatusOr<v1::NodeUsage>> latest_ ABSL_GUARDED_BY(mutex_);
  std::vector<bool> heard_ ABSL_GUARDED_BY(mutex_);
  size_t answered_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace

int RunWatch(const CommandEnv& env, const WatchOptions& options) {
  Fleet fleet(env);
  Selection selection = Select(env, fleet.all(), /*need_info=*/false);
  WatchBoard board(selection.clients.size());
  std::vector<std::unique_ptr<UsageWatch>> watches;
  v1::WatchUsageRequest request;
  request.mutable_interval()->set_seconds(absl::ToInt64Seconds(options.interval));
  request.mutable_interval()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(options.interval % absl::Seconds(1))));
  for (size_t i = 0; i < selection.clients.size(); ++i) {
    watches.push_back(selection.clients[i]->WatchUsage(
        request, [&board, i](const v1::NodeUsage& usage) { board.Note(i, usage); },
        [&board, i](absl::Status status) {
          if (status.ok() || status.code() == absl::StatusCode::kCancelled) return;
          board.Note(i, status);
        }));
  }
  // The first frame waits (up to --timeout) for every node's first answer, so a slow
  // start is not reported as a failed node.
  board.WaitForEveryNode(env.clock, env.fanout.timeout);
  CancelSignal never(env.clock);
  CancelSignal* cancel = env.cancel != nullptr ? env.cancel : &never;
  Redraw redraw(env.out);
  bool any_failed = false;
  size_t last_nodes = 0, last_failed = 0;  // Of the last frame, for "N ok, N failed".
  absl::Time next = env.clock->Now() + options.interval;
  for (int frame = 0; options.count == 0 || frame < options.count; ++frame) {
    if (cancel->WaitUntil(next)) break;
    next += options.interval;
    std::vector<absl::StatusOr<v1::NodeUsage>> latest = board.Latest();
    std::vector<NodeResult<v1::NodeUsage>> nodes;
    for (size_t i = 0; i < selection.clients.size(); ++i) {
      nodes.push_back({selection.clients[i]->target(), std::move(latest[i])});
    }
    AddFailures(selection, &nodes);
    if (!env.json) SortByNodeName(&nodes);
    const absl::Time now = env.clock->Now();
    last_nodes = nodes.size();
    last_failed = 0;
    for (const auto& node : nodes) last_failed += !node.value.ok();
    any_failed |= last_failed > 0;
    if (env.json) {
      for (const auto& node : nodes) *env.out << WatchJsonLine(now, node) << "\n";
    } else if (env.tty) {
      const ViewSize size = LiveViewSize(env);
      redraw.Frame(FormatWatchFrame(now, nodes, size), size.columns);
    } else {
      for (const auto& node : nodes) *env.out << FormatWatchLine(now, node);  // Ends in \n.
    }
    env.out->flush();
  }
  for (auto& watch : watches) watch->Cancel();
  watches.clear();  // Waits for the streams' callbacks to stop.
  if (last_nodes > 0) PrintCounts(env, last_nodes, last_failed);  // As of the last frame.
  if (env.cancel != nullptr && env.cancel->cancelled()) return kExitInterrupted;
  return any_failed ? kExitNodesFailed : kExitOk;
}

int RunRun(const CommandEnv& env, const v1::PlanSpec& spec, const RunOptions& options) {
  Fleet fleet(env);
  RunState state;
  SelectRun(env, fleet.all(), spec, &state);
  // From the first start on, a Ctrl-C is answered here: stop what started, then summarise.
  // Cancelled before: StartOn starts nothing, and the summary says so.
  CancelScope answers_ctrl_c(env.cancel);
  StartRun(env, spec, options, &state);
  MonitorRun(env, spec, options, &state);
  return StopRun(env, spec, options, &state);
}

}  // namespace controller
}  // namespace memload
