// `memloadctl start --pods=FILE|-` and `memloadctl run --pods=FILE|-`: one placed plan per
// pod of `kubectl get pods -o json`, started on the agent whose node name is the pod's
// spec.nodeName, shown as one row per pod (failed rows included: a pod whose node has no
// agent, whose container is missing or not started, ... is never silently skipped).
//
//   PodsOptions options;
//   options.pods = *ParsePods(json, "-");
//   options.relative = PodRelativeTarget{120, PodRelativeTarget::Of::kRequest};
//   options.run = true;
//   options.keep = absl::Minutes(10);
//   int exit_code = RunPods(env, base_spec, options);
//
// Exit codes as commands.h: 0 when every pod's plan started (start) or ended as asked
// (run); 1 when a pod failed; 130 interrupted (after stopping what was started). Ctrl-C as
// commands.h: the scope that answers it opens just before the first StartPlan.
//
// Time: waits, refreshes and the recording's stamps read env.clock (commands.h).
//
// Thread-safety: runs on the calling thread; `env.cancel` may be set from another.
#ifndef MEMLOAD_CONTROLLER_POD_COMMANDS_H_
#define MEMLOAD_CONTROLLER_POD_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "controller/commands.h"
#include "controller/pods.h"
#include "controller/recording.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

struct PodsOptions {
  std::vector<Pod> pods;
  std::string container;                      // --container; "" = each pod's only container.
  std::optional<PodRelativeTarget> relative;  // --target=N%request / N%limit.
  bool run = false;  // run: renew leases, refresh, stop at the end; start: start only.
  absl::Duration keep = absl::InfiniteDuration();  // run --for
  absl::Duration refresh = absl::Seconds(1);
  // run --record: every refresh records each pod as a "node" of the recording (node = the
  // pod's namespace/name, target = "<agent>/<namespace>/<name>", the pod's plan); `memloadctl
  // report` then draws one row per pod. Null = none.
  RunRecorder* recorder = nullptr;
};

int RunPods(const CommandEnv& env, const v1::PlanSpec& base, const PodsOptions& options);

// One row per pod: a table for people, or {"command":..., "pods":[...]} JSON.
struct PodRow {
  PodPlan plan;
  std::string node;  // The agent's node name ("" when none).
  std::optional<v1::PlanStatus> status;
  absl::Status error;  // The row's failure, if any.
};
std::string FormatPodsTable(const std::vector<PodRow>& rows);
std::string PodsJson(const std::string& command, const std::vector<PodRow>& rows);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_POD_COMMANDS_H_
