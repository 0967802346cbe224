// RunRecorder: what `memloadctl run --record=FILE` writes — a time series in JSON Lines,
// one compact JSON object per line, flushed at every refresh so that an interrupted run
// still leaves a usable file. README.md ("Metrics and reports") documents the format;
// `memloadctl report` (report.h) reads it.
//
//   RunRecorder recorder(&file);
//   while (...) recorder.Record(clock->Now(), view, usage_by_target);  // every refresh
//   recorder.Finish(clock->Now(), view);                               // after the stop
//
// Lines:
//   {"event":"run","time":<run began>,"planId":...,"spec":{PlanSpec},"targets":[...]}  first
//   {"time":...,"node":...,"target":...,"planId":...,"state":"holding","targetBytes":N,
//    "payloadBytes":N,"residentBytes":N,"peakResidentBytes":N,"allocationRateBytesPerSec":X,
//    "totalBytes":N,"availableBytes":N,"cgroupLimitBytes":N,"cgroupUsageBytes":N,
//    "pressureSomeAvg10":X,"pressureFullAvg10":X}         a sample: one per node per refresh
//   {"event":"start"|"target_reached"|"capped"|"stop"|"oom_killed"|"lease_expired"|
//    "failed"|"error","time":...,"node":...,"target":...,"planId":...,"state"?,"message"?}
//   {"event":"result","time":...,"node":...,"target":...,"planId":...,"ok":true|false,
//    "state"?,"message"?}                                     after the stop, one per node
//   {"event":"end","time":...,"planId":...,"exitCode":N,"nodes":N,"ok":N,"failed":N}   last
// Times are RFC 3339 UTC with milliseconds. Sizes are JSON numbers (bytes). The usage part
// of a sample (totalBytes ... pressure) is there when the node answered GetUsage; cgroup
// fields when it has a limited memory cgroup, pressure (percent, as the kernel reports
// it) where PSI exists. Events come from state changes between refreshes and carry the
// agent's own timestamps (started, target_reached, ended) when it reports them; "stop"
// says in "state" whether the plan was stopped or completed; "error" is a failed call.
//
// Thread-safety: thread-compatible (the run loop calls it from one thread).
#ifndef MEMLOAD_CONTROLLER_RECORDING_H_
#define MEMLOAD_CONTROLLER_RECORDING_H_

#include <fstream>
#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/output.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

// "2026-11-25T16:02:41.123Z".
std::string RecordingTime(absl::Time time);

class RunRecorder {
 public:
  // Creates (or truncates) `path`; the error names it.
  static absl::StatusOr<std::unique_ptr<RunRecorder>> Open(const std::string& path);
  // Writes to `out`, not owned.
  explicit RunRecorder(std::ostream* out) : out_(out) {}

  // One refresh: the "run" line the first time, then per node the events since the last
  // call, and a sample for each node in `usage` (keyed by target: the nodes that answered
  // this refresh) whose plan is known.
  void Record(absl::Time now, const RunView& view,
              const std::map<std::string, v1::NodeUsage>& usage);
  // After the stop: the events, and a last sample (without usage) of every node whose plan
  // is known; then a "result" line per node (failed ones too, with why) and the "end"
  // line with memloadctl's exit status.
  void Finish(absl::Time now, const RunView& view, int exit_code);
  // The same with the exit status the nodes give: 0 when every node is ok, else 1.
  void Finish(absl::Time now, const RunView& view);

  // The first write error, if any (disk full...). Recording never stops the run.
  absl::Status status() const { return status_; }

 private:
  struct NodeState {
    bool started = false;
    v1::PlanState state = v1::PLAN_STATE_UNSPECIFIED;
    // The plan reports target_reached (cleared again by a resize). Its first sight makes
    // the event: the agent may refine the stamp by a tick later, which is no new event.
    bool target_reached = false;
    size_t errors = 0;  // node.errors already recorded.
  };

  void Write(const std::string& line);
  void Refresh(absl::Time now, const RunView& view,
               const std::map<std::string, v1::NodeUsage>& usage, bool every_node);

  std::unique_ptr<std::ofstream> file_;
  std::ostream* out_ = nullptr;
  bool begun_ = false;
  std::map<std::string, NodeState> nodes_;  // By target.
  absl::Status status_;
};

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_RECORDING_H_
