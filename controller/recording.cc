#include "controller/recording.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

bool IsEnd(v1::PlanState state) {
  return state == v1::PLAN_STATE_COMPLETED || state == v1::PLAN_STATE_STOPPED ||
         state == v1::PLAN_STATE_LEASE_EXPIRED || state == v1::PLAN_STATE_OOM_KILLED ||
         state == v1::PLAN_STATE_FAILED || state == v1::PLAN_STATE_TARGET_GONE;
}

// The event a plan's end is recorded as.
std::string EndEvent(v1::PlanState state) {
  switch (state) {
    case v1::PLAN_STATE_OOM_KILLED:
      return "oom_killed";
    case v1::PLAN_STATE_LEASE_EXPIRED:
      return "lease_expired";
    case v1::PLAN_STATE_FAILED:
      return "failed";
    case v1::PLAN_STATE_TARGET_GONE:
      return "target_gone";
    default:
      return "stop";
  }
}

}  // namespace

std::string RecordingTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

absl::StatusOr<std::unique_ptr<RunRecorder>> RunRecorder::Open(const std::string& path) {
  auto file = std::make_unique<std::ofstream>(path, std::ios::out | std::ios::trunc);
  if (!*file) {
    return absl::InvalidArgumentError(
        absl::StrCat("--record=", path, ": cannot create the file: ", std::strerror(errno)));
  }
  auto recorder = std::make_unique<RunRecorder>(file.get());
  recorder->file_ = std::move(file);
  return recorder;
}

void RunRecorder::Write(const std::string& line) {
  *out_ << line << "\n";
  if (!*out_ && status_.ok()) {
    status_ = absl::DataLossError("the recording could not be written (disk full?)");
  }
}

void RunRecorder::Record(absl::Time now, const RunView& view,
                         const std::map<std::string, v1::NodeUsage>& usage) {
  Refresh(now, view, usage, /*every_node=*/false);
}

void RunRecorder::Finish(absl::Time now, const RunView& view) {
  int exit_code = 0;
  for (const RunNode& node : view.nodes) {
    if (!RunNodeOk(node)) exit_code = 1;
  }
  Finish(now, view, exit_code);
}

void RunRecorder::Finish(absl::Time now, const RunView& view, int exit_code) {
  Refresh(now, view, {}, /*every_node=*/true);
  const std::string time = RecordingTime(now);
  size_t ok = 0;
  for (const RunNode& node : view.nodes) {
    const bool node_ok = RunNodeOk(node);
    ok += node_ok;
    JsonObject result;
    result.String("event", "result").String("time", time);
    result.String("node", node.node_name.empty() ? node.target : node.node_name);
    result.String("target", node.target).String("planId", view.spec.plan_id());
    result.Raw("ok", node_ok ? "true" : "false");
    if (node.plan.has_value()) result.String("state", PlanStateName(node.plan->state()));
    if (!node_ok) {
      absl::Status why =
          node.errors.empty() ? absl::UnknownError("the plan never started") : node.errors.back();
      if (node.errors.empty() && node.plan.has_value()) why = PlanOutcomeStatus(*node.plan);
      result.String("message", FormatStatus(why));
    }
    Write(result.Compact());
  }
  Write(JsonObject()
            .String("event", "end")
            .String("time", time)
            .String("planId", view.spec.plan_id())
            .Number("exitCode", static_cast<uint64_t>(std::max(exit_code, 0)))
            .Number("nodes", static_cast<uint64_t>(view.nodes.size()))
            .Number("ok", static_cast<uint64_t>(ok))
            .Number("failed", static_cast<uint64_t>(view.nodes.size() - ok))
            .Compact());
  out_->flush();
}

void RunRecorder::Refresh(absl::Time now, const RunView& view,
                          const std::map<std::string, v1::NodeUsage>& usage, bool every_node) {
  const std::string time = RecordingTime(now);
  const std::string& plan_id = view.spec.plan_id();
  if (!begun_) {
    begun_ = true;
    std::vector<std::string> targets;
    for (const RunNode& node : view.nodes) targets.push_back(node.target);
    Write(JsonObject()
              .String("event", "run")
              .String("time", RecordingTime(now - view.elapsed))  // When the run began.
              .String("planId", plan_id)
              .Raw("spec", ProtoToJson(view.spec))
              .Raw("targets", JsonStringArray(targets))
              .Compact());
  }
  for (const RunNode& node : view.nodes) {
    NodeState& state = nodes_[node.target];
    const std::string name = node.node_name.empty() ? node.target : node.node_name;
    auto event = [&](absl::string_view kind, std::string at) {
      JsonObject object;
      object.String("event", kind)
          .String("time", at)
          .String("node", name)
          .String("target", node.target);
      object.String("planId", plan_id);
      return object;
    };
    for (; state.errors < node.errors.size(); ++state.errors) {
      Write(event("error", time)
                .String("message", FormatStatus(node.errors[state.errors]))
                .Compact());
    }
    if (!node.plan.has_value()) continue;
    const v1::PlanStatus& plan = *node.plan;
    // The agent's timestamp of a moment when it has one, else the refresh's.
    auto when = [&](bool has, const google::protobuf::Timestamp& stamp) {
      return has ? RecordingTime(FromProtoTimestamp(stamp)) : time;
    };
    if (!state.started) {
      state.started = true;
      Write(event("start", when(plan.has_started(), plan.started()))
                .Number("targetBytes", plan.target_bytes())
                .Compact());
    }
    if (plan.has_target_reached() && !state.target_reached) {
      Write(event("target_reached", when(true, plan.target_reached()))
                .Number("targetBytes", plan.target_bytes())
                .Compact());
    }
    state.target_reached = plan.has_target_reached();
    if (plan.state() != state.state) {
      if (plan.state() == v1::PLAN_STATE_CAPPED) {
        Write(event("capped", time).String("message", plan.error()).Compact());
      } else if (IsEnd(plan.state()) && !IsEnd(state.state)) {
        JsonObject end = event(EndEvent(plan.state()), when(plan.has_ended(), plan.ended()));
        end.String("state", PlanStateName(plan.state()));
        if (!plan.error().empty()) end.String("message", plan.error());
        Write(end.Compact());
      }
      state.state = plan.state();
    }

    const auto node_usage = usage.find(node.target);
    if (!every_node && node_usage == usage.end()) continue;  // Not heard from this time.
    JsonObject sample;
    sample.String("time", time).String("node", name).String("target", node.target);
    sample.String("planId", plan_id).String("state", PlanStateName(plan.state()));
    sample.Number("targetBytes", plan.target_bytes())
        .Number("payloadBytes", plan.payload_bytes())
        .Number("residentBytes", plan.resident_bytes())
        .Number("peakResidentBytes", plan.peak_resident_bytes())
        .Number("allocationRateBytesPerSec", plan.allocation_rate_bytes_per_sec());
    if (node_usage != usage.end()) {
      const v1::NodeUsage& of_node = node_usage->second;
      sample.Number("totalBytes", of_node.meminfo().total_bytes())
          .Number("availableBytes", of_node.meminfo().available_bytes());
      if (of_node.cgroup().limited()) {
        sample.Number("cgroupLimitBytes", of_node.cgroup().limit_bytes())
            .Number("cgroupUsageBytes", of_node.cgroup().usage_bytes());
      }
      if (of_node.pressure().available()) {
        sample.Number("pressureSomeAvg10", of_node.pressure().some_avg10())
            .Number("pressureFullAvg10", of_node.pressure().full_avg10());
      }
    }
    Write(sample.Compact());
  }
  out_->flush();
}

}  // namespace controller
}  // namespace memload
