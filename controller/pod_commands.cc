#include "controller/pod_commands.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controller/agent_requests.h"
#include "controller/fanout.h"
#include "controller/output.h"
#include "core/cancel_signal.h"
#include "core/clock.h"
#include "core/size.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

bool Ended(const PodRow& row) {
  return row.status.has_value() && !PlanIsRunning(row.status->state()) &&
         row.status->state() != v1::PLAN_STATE_UNSPECIFIED;
}

// A row's verdict: its own error, else what its plan's end means.
absl::Status RowStatus(const PodRow& row) {
  if (!row.error.ok()) return row.error;
  if (row.status.has_value()) return PlanOutcomeStatus(*row.status);
  return absl::OkStatus();
}

std::string Bytes(uint64_t bytes, bool known) { return known ? FormatSize(bytes) : "-"; }

// The pods as a run's "nodes", for the recorder.
RunView PodsView(const v1::PlanSpec& base, const std::vector<PodRow>& rows, absl::Time began,
                 absl::Time now) {
  RunView view;
  view.spec = base;
  view.elapsed = now - began;
  for (const PodRow& row : rows) {
    RunNode node;
    node.target = absl::StrCat(row.plan.agent.empty() ? "-" : row.plan.agent, "/",
                               row.plan.pod.DisplayName());
    node.node_name = row.plan.pod.DisplayName();
    node.plan = row.status;
    if (!row.error.ok()) node.errors.push_back(row.error);
    view.nodes.push_back(std::move(node));
  }
  return view;
}

}  // namespace

std::string FormatPodsTable(const std::vector<PodRow>& rows) {
  Table table({{"POD"},
               {"NODE"},
               {"STATUS"},
               {"CONTAINER"},
               {"STATE"},
               {"TARGET", Table::kRight},
               {"PAYLOAD", Table::kRight},
               {"CGROUP USAGE", Table::kRight},
               {"WORKING SET", Table::kRight},
               {"LIMIT", Table::kRight},
               {"OOM KILLS", Table::kRight},
               {"ERROR", Table::kLeft, /*hide_if_empty=*/true}});
  // memloadctl's table order (output.h): failed first, then by node, then by pod.
  std::vector<std::pair<TableRowKey, const PodRow*>> order;
  for (const PodRow& row : rows) {
    order.emplace_back(
        RowKey(RowStatus(row).ok(), row.node.empty() ? row.plan.pod.node_name : row.node,
               row.plan.pod.DisplayName()),
        &row);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [key, row_pointer] : order) {
    const PodRow& row = *row_pointer;
    const absl::Status verdict = RowStatus(row);
    const bool has_status = row.status.has_value();
    const v1::TargetCgroup& target =
        has_status ? row.status->target() : v1::TargetCgroup::default_instance();
    const bool has_target = has_status && row.status->has_target();
    table.AddRow(
        {row.plan.pod.DisplayName(), row.node.empty() ? row.plan.pod.node_name : row.node,
         StatusCell(verdict.ok()), row.plan.container.empty() ? "-" : row.plan.container,
         has_status ? PlanStateName(row.status->state()) : "failed",
         has_status ? FormatSize(row.status->target_bytes()) : "-",
         has_status ? FormatSize(row.status->payload_bytes()) : "-",
         Bytes(target.usage_bytes(), has_target), Bytes(target.working_set_bytes(), has_target),
         has_target ? (target.limited() ? FormatSize(target.limit_bytes()) : "none") : "-",
         has_target
             ? absl::StrCat(target.oom_kill_count(), target.oom_group() ? " (oom.group)" : "")
             : "-",
         verdict.ok() ? "" : FormatStatus(verdict)});
  }
  return table.Render();
}

std::string PodsJson(const std::string& command, const std::vector<PodRow>& rows) {
  google::protobuf::Struct document;
  (*document.mutable_fields())["command"].set_string_value(command);
  google::protobuf::ListValue* pods = (*document.mutable_fields())["pods"].mutable_list_value();
  bool all_ok = true;
  for (const PodRow& row : rows) {
    google::protobuf::Struct* pod = pods->add_values()->mutable_struct_value();
    auto set = [pod](const char* key, const std::string& value) {
      (*pod->mutable_fields())[key].set_string_value(value);
    };
    set("pod", row.plan.pod.DisplayName());
    set("podUid", row.plan.pod.uid);
    set("node", row.plan.pod.node_name);
    set("target", row.plan.agent);
    set("container", row.plan.container);
    set("planId", row.plan.spec.plan_id());
    const absl::Status verdict = RowStatus(row);
    all_ok &= verdict.ok();
    (*pod->mutable_fields())["ok"].set_bool_value(verdict.ok());
    if (!verdict.ok()) {
      set("errorCode", absl::StatusCodeToString(verdict.code()));
      set("error", std::string(verdict.message()));
    }
    if (row.status.has_value()) {
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      if (google::protobuf::util::MessageToJsonString(*row.status, &json, options).ok()) {
        google::protobuf::util::JsonStringToMessage(
            json, (*pod->mutable_fields())["plan"].mutable_struct_value());
      }
    }
  }
  (*document.mutable_fields())["ok"].set_bool_value(all_ok);
  // The same counts as every command's envelope (output.h) and the stderr line.
  int ok = 0;
  for (const PodRow& row : rows) ok += RowStatus(row).ok();
  google::protobuf::Struct* summary =
      (*document.mutable_fields())["summary"].mutable_struct_value();
  (*summary->mutable_fields())["pods"].set_number_value(static_cast<double>(rows.size()));
  (*summary->mutable_fields())["ok"].set_number_value(ok);
  (*summary->mutable_fields())["failed"].set_number_value(static_cast<double>(rows.size()) - ok);
  std::string text;
  google::protobuf::util::MessageToJsonString(document, &text);
  return text + "\n";
}

int RunPods(const CommandEnv& env, const v1::PlanSpec& base, const PodsOptions& options) {
  Clock* const clock = env.clock;
  const absl::Time began = clock->Now();
  // Which agent serves which node.
  std::vector<std::unique_ptr<AgentClient>> owned;
  std::vector<AgentClient*> agents;
  for (const std::string& target : env.targets) {
    owned.push_back(env.factory(target));
    agents.push_back(owned.back().get());
  }
  FanOutOptions idempotent = env.fanout;
  idempotent.clock = clock;
  idempotent.idempotent = true;
  idempotent.cancel = env.cancel;
  std::vector<TargetResult<v1::NodeInfo>> infos =
      FanOut(agents, Rpc(&AgentClient::GetNodeInfo, v1::GetNodeInfoRequest()), idempotent);
  std::map<std::string, std::string> node_agent;
  std::map<std::string, std::string> agent_node;
  std::map<std::string, absl::Duration> agent_default_lease;  // By target, when it said one.
  std::vector<std::string> unreachable;
  for (const auto& info : infos) {
    if (!info.response.ok()) {
      unreachable.push_back(
          absl::StrCat(info.target, " (", FormatStatus(info.response.status()), ")"));
      continue;
    }
    node_agent.emplace(info.response->node_name(), info.target);  // First one wins.
    agent_node[info.target] = info.response->node_name();
    if (info.response->has_default_lease()) {
      agent_default_lease[info.target] = FromProtoDuration(info.response->default_lease());
    }
  }

  std::vector<PodRow> rows;
  for (PodPlan& plan :
       PlanPods(options.pods, node_agent, base, options.container, options.relative)) {
    PodRow row;
    row.error = plan.status;
    if (absl::IsNotFound(row.error) && !unreachable.empty()) {
      row.error = absl::NotFoundError(absl::StrCat(
          row.error.message(), "; unreachable agents: ", absl::StrJoin(unreachable, ", ")));
    }
    row.node = agent_node.count(plan.agent) ? agent_node[plan.agent] : "";
    row.plan = std::move(plan);
    rows.push_back(std::move(row));
  }

  // One client per pod (a node may hold several pods), so the fan-out runs one call each.
  std::vector<std::unique_ptr<AgentClient>> pod_owned;
  std::vector<AgentClient*> pod_clients;
  std::map<AgentClient*, size_t> row_of;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].error.ok()) continue;
    pod_owned.push_back(env.factory(rows[i].plan.agent));
    pod_clients.push_back(pod_owned.back().get());
    row_of[pod_owned.back().get()] = i;
  }
  // The plan of the pod a client was made for.
  auto spec_of = [&](AgentClient& client) -> const v1::PlanSpec& {
    return rows[row_of[&client]].plan.spec;
  };
  // From the first start on, a Ctrl-C is answered here (run: stop what started; both:
  // report). Cancelled before: the fan-out starts nothing.
  CancelScope answers_ctrl_c(env.cancel);
  absl::Time renewed = clock->Now();  // When the leases were last granted or renewed.
  std::vector<TargetResult<v1::StartPlanResponse>> started =
      FanOut(pod_clients,
             RpcEach(&AgentClient::StartPlan,
                     [&](AgentClient& client) {
                       v1::StartPlanRequest request;
                       *request.mutable_spec() = spec_of(client);
                       return request;
                     }),
             idempotent);
  std::vector<AgentClient*> running;
  for (size_t k = 0; k < started.size(); ++k) {
    PodRow& row = rows[row_of[pod_clients[k]]];
    if (started[k].response.ok()) {
      row.status = started[k].response->plan();
      running.push_back(pod_clients[k]);
    } else {
      row.error = started[k].response.status();
    }
  }

  bool interrupted = env.cancel != nullptr && env.cancel->cancelled();
  FanOutOptions once = env.fanout;  // Renewals, reads and stops: no cancel, they must finish.
  once.clock = clock;
  once.idempotent = true;
  if (!options.run && interrupted) {
    // As RunStart: release what may have started there, and say so.
    std::vector<AgentClient*> to_release;
    for (size_t k = 0; k < started.size(); ++k) {
      if (MayHaveStarted(started[k])) to_release.push_back(pod_clients[k]);
    }
    std::vector<TargetResult<v1::StopPlanResponse>> stopped =
        FanOut(to_release,
               RpcEach(&AgentClient::StopPlan,
                       [&](AgentClient& client) { return StopRequest(spec_of(client).plan_id()); }),
               once);
    for (size_t k = 0; k < to_release.size(); ++k) {
      PodRow& row = rows[row_of[to_release[k]]];
      if (!row.error.ok()) continue;  // Its failed start is what the row reports.
      if (stopped[k].response.ok()) row.status = stopped[k].response->plan();
      row.error = StoppedHereAgain("interrupted", stopped[k].response.status());
    }
  }
  if (options.run) {
    CancelSignal never(clock);
    CancelSignal* cancel = env.cancel != nullptr ? env.cancel : &never;
    const absl::Time until = options.keep == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                                      : clock->Now() + options.keep;
    v1::ListPlansRequest list;
    list.set_include_ended(true);
    auto renew = [&] {
      renewed = clock->Now();
      FanOut(
          running,
          RpcEach(&AgentClient::RenewLeases,
                  [&](AgentClient& client) { return RenewRequest({spec_of(client).plan_id()}); }),
          once);
    };
    // As run's (commands.h RenewalPeriod): the shortest over the pods' plans and agents.
    std::optional<absl::Duration> period;
    for (AgentClient* client : running) {
      auto it = agent_default_lease.find(client->target());
      const std::optional<absl::Duration> one =
          RenewalPeriod(spec_of(*client), it != agent_default_lease.end()
                                              ? std::optional<absl::Duration>(it->second)
                                              : std::nullopt);
      if (one.has_value()) period = std::min(period.value_or(*one), *one);
    }
    while (!cancel->cancelled() && clock->Now() < until) {
      bool any_running = false;
      for (AgentClient* client : running) any_running |= !Ended(rows[row_of[client]]);
      if (!any_running) break;
      // Until the next refresh, renewals alone whenever one is due (no redraw); refreshes
      // start --interval apart, as run's (commands.cc MonitorRun).
      const absl::Time next = std::min(until, renewed + options.refresh);
      while (period.has_value() && renewed + *period < next &&
             !cancel->WaitUntil(renewed + *period)) {
        renew();
      }
      cancel->WaitUntil(next);
      if (cancel->cancelled()) break;
      renew();
      std::vector<TargetResult<v1::ListPlansResponse>> listed =
          FanOut(running, Rpc(&AgentClient::ListPlans, list), once);
      for (size_t k = 0; k < running.size(); ++k) {
        PodRow& row = rows[row_of[running[k]]];
        if (!listed[k].response.ok()) continue;  // A blip: keep the last status.
        for (const v1::PlanStatus& plan : listed[k].response->plans()) {
          if (plan.plan_id() == row.plan.spec.plan_id()) row.status = plan;
        }
      }
      if (options.recorder != nullptr) {
        const absl::Time now = clock->Now();
        options.recorder->Record(now, PodsView(base, rows, began, now), {});
      }
      if (env.tty && !env.json) *env.out << "\033[H\033[J" << FormatPodsTable(rows) << std::flush;
    }
    interrupted = cancel->cancelled();
    // Stop what still runs, and report each pod's final state.
    std::vector<AgentClient*> to_stop;
    for (AgentClient* client : running) {
      if (!Ended(rows[row_of[client]])) to_stop.push_back(client);
    }
    std::vector<TargetResult<v1::StopPlanResponse>> stopped =
        FanOut(to_stop,
               RpcEach(&AgentClient::StopPlan,
                       [&](AgentClient& client) { return StopRequest(spec_of(client).plan_id()); }),
               once);
    for (size_t k = 0; k < to_stop.size(); ++k) {
      PodRow& row = rows[row_of[to_stop[k]]];
      if (stopped[k].response.ok()) {
        row.status = stopped[k].response->plan();
      } else {
        row.error =
            absl::Status(stopped[k].response.status().code(),
                         absl::StrCat("stopping: ", stopped[k].response.status().message()));
      }
    }
  }

  int exit_code = kExitOk;
  for (const PodRow& row : rows) {
    if (!RowStatus(row).ok()) exit_code = kExitNodesFailed;
  }
  if (interrupted) exit_code = kExitInterrupted;
  if (options.run && options.recorder != nullptr) {
    const absl::Time now = clock->Now();
    options.recorder->Finish(now, PodsView(base, rows, began, now), exit_code);
  }
  *env.out << (env.json ? PodsJson(options.run ? "run" : "start", rows) : FormatPodsTable(rows));
  env.out->flush();
  if (env.err != nullptr) {
    size_t failed = 0;
    for (const PodRow& row : rows) failed += !RowStatus(row).ok();
    *env.err << rows.size() - failed << " ok, " << failed << " failed\n";
  }
  return exit_code;
}

}  // namespace controller
}  // namespace memload
