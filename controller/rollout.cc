#include "controller/rollout.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace memload {
namespace controller {
namespace {

// Digits only: SimpleAtoi would also take signs and surrounding spaces.
bool ParseCount(absl::string_view text, int64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, out);
}

absl::Status BadRollout(absl::string_view text) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "--rollout=\"%s\": expected all, serial, batch:N (N >= 1) or batch:N%% (N in 1-100)", text));
}

}  // namespace

absl::StatusOr<RolloutStrategy> ParseRollout(absl::string_view text) {
  RolloutStrategy strategy;
  if (text == "all") return strategy;
  if (text == "serial") {
    strategy.mode = RolloutStrategy::Mode::kSerial;
    return strategy;
  }
  absl::string_view rest = text;
  if (!absl::ConsumePrefix(&rest, "batch:")) return BadRollout(text);
  const bool percent = absl::ConsumeSuffix(&rest, "%");
  int64_t n = 0;
  if (!ParseCount(rest, &n) || n < 1 || (percent && n > 100) || n > INT32_MAX) {
    return BadRollout(text);
  }
  strategy.mode = percent ? RolloutStrategy::Mode::kBatchPercent : RolloutStrategy::Mode::kBatch;
  strategy.batch = static_cast<int>(n);
  return strategy;
}

std::string FormatRollout(const RolloutStrategy& strategy) {
  switch (strategy.mode) {
    case RolloutStrategy::Mode::kAll:
      return "all";
    case RolloutStrategy::Mode::kSerial:
      return "serial";
    case RolloutStrategy::Mode::kBatch:
      return absl::StrCat("batch:", strategy.batch);
    case RolloutStrategy::Mode::kBatchPercent:
      return absl::StrCat("batch:", strategy.batch, "%");
  }
  return "all";
}

std::vector<std::pair<size_t, size_t>> PlanWaves(const RolloutStrategy& strategy, size_t targets) {
  size_t wave = targets;
  switch (strategy.mode) {
    case RolloutStrategy::Mode::kAll:
      break;
    case RolloutStrategy::Mode::kSerial:
      wave = 1;
      break;
    case RolloutStrategy::Mode::kBatch:
      wave = static_cast<size_t>(std::max(strategy.batch, 1));
      break;
    case RolloutStrategy::Mode::kBatchPercent:
      wave = (targets * static_cast<size_t>(std::clamp(strategy.batch, 1, 100)) + 99) / 100;
      break;
  }
  wave = std::max<size_t>(wave, 1);
  std::vector<std::pair<size_t, size_t>> waves;
  for (size_t begin = 0; begin < targets; begin += wave) {
    waves.emplace_back(begin, std::min(begin + wave, targets));
  }
  return waves;
}

absl::StatusOr<absl::Duration> ParseStagger(absl::string_view text) {
  absl::Duration stagger;
  if (!absl::ParseDuration(text, &stagger) || stagger < absl::ZeroDuration() ||
      stagger == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--stagger=\"%s\": expected a duration such as 500ms, 10s or 1m30s (0 = none)", text));
  }
  return stagger;
}

int64_t FailureLimit::Allowed(size_t targets) const {
  if (value < 0) return -1;
  if (!percent) return value;
  return static_cast<int64_t>(targets) * value / 100;
}

absl::StatusOr<FailureLimit> ParseMaxFailures(absl::string_view text) {
  FailureLimit limit;
  absl::string_view rest = text;
  limit.percent = absl::ConsumeSuffix(&rest, "%");
  if (!ParseCount(rest, &limit.value) || (limit.percent && limit.value > 100)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--max-failures=\"%s\": expected a count N (0 = stop at the first failure) or a "
        "percentage N%% (0-100) of the targets",
        text));
  }
  return limit;
}

namespace rollout_internal {

RawRollout RunRollout(const std::vector<AgentClient*>& clients,
                      const fanout_internal::RawCallFn& call, const RolloutOptions& options) {
  RawRollout rollout;
  rollout.results.resize(clients.size());
  const int64_t allowed = options.max_failures.Allowed(clients.size());
  CancelSignal* cancel = options.cancel;
  Clock* const clock = options.fanout.clock != nullptr ? options.fanout.clock : Clock::Real();
  auto cancelled = [cancel] { return cancel != nullptr && cancel->cancelled(); };
  int64_t failures = 0;
  size_t next = 0;  // The first target of the next wave.
  for (const auto& [begin, end] : PlanWaves(options.strategy, clients.size())) {
    if (rollout.waves > 0 && options.stagger > absl::ZeroDuration()) {
      const absl::Time until = clock->Now() + options.stagger;
      if (cancel == nullptr) {
        clock->SleepUntil(until);
      } else {
        // WaitUntil also returns on Notify(): sleep again until the stagger has passed.
        while (!cancel->WaitUntil(until) && clock->Now() < until) {
        }
      }
    }
    if (cancelled()) break;
    FanOutOptions fanout = options.fanout;
    fanout.cancel = cancel;
    // What is left of the failure budget, so that a wide wave stops early too.
    fanout.stop_after_failures =
        allowed < 0 ? -1 : static_cast<int>(std::min<int64_t>(allowed - failures, INT32_MAX));
    const std::vector<AgentClient*> wave(clients.begin() + begin, clients.begin() + end);
    std::vector<fanout_internal::RawResult> results =
        fanout_internal::RunFanOut(wave, call, fanout);
    ++rollout.waves;
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].attempts > 0 && !results[i].status.ok()) ++failures;
      rollout.results[begin + i] = std::move(results[i]);
    }
    next = end;
    if (allowed >= 0 && failures > allowed) {
      rollout.stopped_by_failures = true;
      break;
    }
    if (cancelled()) break;
  }
  // Cancelled only when the signal actually kept something from starting.
  rollout.cancelled =
      cancelled() &&
      (next < clients.size() ||
       std::any_of(rollout.results.begin(), rollout.results.end(),
                   [](const fanout_internal::RawResult& r) { return r.attempts == 0; }));
  // Waves never started: their targets were not attempted.
  for (size_t i = next; i < clients.size(); ++i) {
    fanout_internal::RawResult& result = rollout.results[i];
    result.target = clients[i]->target();
    result.status = rollout.stopped_by_failures
                        ? absl::AbortedError(absl::StrFormat(
                              "not attempted: the rollout stopped after %d failures (max %d)",
                              failures, allowed))
                        : absl::CancelledError("not attempted: cancelled");
  }
  return rollout;
}

}  // namespace rollout_internal
}  // namespace controller
}  // namespace memload
