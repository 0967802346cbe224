// Rollout: starts something (any call) on many agents in waves — all at once, one by one,
// or in batches of N or N% — with an optional stagger between waves, and stops early once
// too many targets failed or on Ctrl-C. It reports which targets succeeded, failed and
// were never attempted, so that the caller can release what was started.
//
//   RolloutOptions options;
//   MEMLOAD_ASSIGN_OR_RETURN(options.strategy, ParseRollout("batch:25%"));
//   MEMLOAD_ASSIGN_OR_RETURN(options.stagger, ParseStagger("10s"));
//   MEMLOAD_ASSIGN_OR_RETURN(options.max_failures, ParseMaxFailures("1"));
//   options.fanout.idempotent = true;  // StartPlan: idempotent thanks to plan_id
//   options.cancel = &ctrl_c;          // a CancelSignal the signal thread cancels
//   RolloutResult<v1::StartPlanResponse> started = Rollout<v1::StartPlanResponse>(
//       clients, [&](AgentClient& c, absl::Duration timeout, Done<v1::StartPlanResponse> done) {
//         c.StartPlan(request, timeout, std::move(done));
//       }, options);
//   if (started.stopped_by_failures || started.cancelled) { /* stop started.Attempted() */ }
//
// Thread-safety: the parse functions are pure; Rollout blocks the calling thread (never a
// client callback thread) and may run on several threads at once.
#ifndef MEMLOAD_CONTROLLER_ROLLOUT_H_
#define MEMLOAD_CONTROLLER_ROLLOUT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controller/fanout.h"
#include "core/cancel_signal.h"

namespace memload {
namespace controller {

// --rollout: how targets are grouped into waves.
struct RolloutStrategy {
  enum class Mode {
    kAll,           // One wave with every target ("all").
    kSerial,        // One target per wave ("serial").
    kBatch,         // `batch` targets per wave ("batch:N").
    kBatchPercent,  // `batch` percent of the targets per wave, rounded up ("batch:N%").
  };
  Mode mode = Mode::kAll;
  int batch = 0;  // kBatch: N >= 1; kBatchPercent: 1..100.
};

// Parses "all", "serial", "batch:N" or "batch:N%". InvalidArgument names the flag and the
// accepted forms.
absl::StatusOr<RolloutStrategy> ParseRollout(absl::string_view text);
std::string FormatRollout(const RolloutStrategy& strategy);  // Inverse of ParseRollout.

// The waves for `targets` targets, as [begin, end) index ranges in target order. A
// percentage is rounded up, and every wave holds at least one target.
std::vector<std::pair<size_t, size_t>> PlanWaves(const RolloutStrategy& strategy, size_t targets);

// Parses --stagger: an absl duration ("500ms", "2s", "1m30s", "0"); negative is refused.
absl::StatusOr<absl::Duration> ParseStagger(absl::string_view text);

// --max-failures: how many failed targets are tolerated before the rollout stops.
struct FailureLimit {
  int64_t value = -1;    // -1 = no limit.
  bool percent = false;  // `value` is a percentage (0..100) of the targets.

  // The most failures tolerated among `targets` (floor of the percentage); -1 = no limit.
  // The rollout stops once failures exceed it: "0" stops at the first failure.
  int64_t Allowed(size_t targets) const;
};

// Parses "N" (N >= 0) or "N%" (0..100).
absl::StatusOr<FailureLimit> ParseMaxFailures(absl::string_view text);

struct RolloutOptions {
  RolloutStrategy strategy;
  // A pause between the end of one wave and the start of the next, on `fanout.clock`.
  absl::Duration stagger = absl::ZeroDuration();
  FailureLimit max_failures;
  // Parallelism, timeout and retries within each wave. Its `cancel` and
  // `stop_after_failures` are set by the rollout.
  FanOutOptions fanout;
  // Cancel(): no further wave or target starts, the stagger sleep ends at once; calls in
  // flight are still awaited. Not owned; may be null.
  CancelSignal* cancel = nullptr;
};

template <typename Response>
struct RolloutResult {
  // One per target, in target order; never-attempted ones have attempts == 0 and an
  // ABORTED (stopped by failures) or CANCELLED status. `start` is when each target began.
  std::vector<TargetResult<Response>> results;
  // Indexes into `results`.
  std::vector<size_t> succeeded;
  std::vector<size_t> failed;  // Attempted, not OK (a timed-out start may still have begun).
  std::vector<size_t> not_attempted;
  int waves = 0;                     // Waves started.
  bool stopped_by_failures = false;  // Failures exceeded max_failures.
  bool cancelled = false;            // The cancel signal kept some target from starting.

  // What to release after an abort: everything attempted, succeeded or failed (a call that
  // timed out may have started the plan anyway), in target order.
  std::vector<size_t> Attempted() const {
    std::vector<size_t> attempted;
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].attempted()) attempted.push_back(i);
    }
    return attempted;
  }
};

namespace rollout_internal {

struct RawRollout {
  std::vector<fanout_internal::RawResult> results;
  int waves = 0;
  bool stopped_by_failures = false;
  bool cancelled = false;
};

RawRollout RunRollout(const std::vector<AgentClient*>& clients,
                      const fanout_internal::RawCallFn& call, const RolloutOptions& options);

}  // namespace rollout_internal

// Runs `call` on `clients` (non-owning) in waves per `options`; blocks until done.
template <typename Response>
RolloutResult<Response> Rollout(const std::vector<AgentClient*>& clients, CallFn<Response> call,
                                const RolloutOptions& options) {
  rollout_internal::RawRollout raw = rollout_internal::RunRollout(
      clients, fanout_internal::Erase<Response>(std::move(call)), options);
  RolloutResult<Response> result;
  result.waves = raw.waves;
  result.stopped_by_failures = raw.stopped_by_failures;
  result.cancelled = raw.cancelled;
  for (size_t i = 0; i < raw.results.size(); ++i) {
    TargetResult<Response> one = fanout_internal::Restore<Response>(std::move(raw.results[i]));
    if (!one.attempted()) {
      result.not_attempted.push_back(i);
    } else if (one.response.ok()) {
      result.succeeded.push_back(i);
    } else {
      result.failed.push_back(i);
    }
    result.results.push_back(std::move(one));
  }
  return result;
}

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_ROLLOUT_H_
