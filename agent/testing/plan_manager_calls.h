// PlanManager's callback calls made synchronous for tests, and a plan found by its id.
//
//   PlanManager manager(options, &probe, &launcher);
//   ASSERT_THAT(StartSync(manager, spec), IsOk());
//   EXPECT_EQ(Find(manager, "drill-1")->state(), v1::PLAN_STATE_PENDING);
//   EXPECT_THAT(StopSync(manager, "drill-1"), IsOk());
//
// Thread-safety: as PlanManager's own methods (thread-safe).
#ifndef MEMLOAD_AGENT_TESTING_PLAN_MANAGER_CALLS_H_
#define MEMLOAD_AGENT_TESTING_PLAN_MANAGER_CALLS_H_

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/plan_manager.h"
#include "proto/memload.pb.h"

namespace memload {
namespace agent {
namespace plan_manager_calls_internal {

// How long a manager may take to answer before the call is taken as lost.
constexpr std::chrono::seconds kAnswerTimeout{10};

// Calls `call` with a callback that delivers its answer; returns the answer, or
// DeadlineExceeded when none came within kAnswerTimeout.
template <typename Answer, typename Call>
Answer AnswerOf(Call call, const char* what) {
  // Shared: a callback that comes after the timeout still has its promise.
  auto promise = std::make_shared<std::promise<Answer>>();
  std::future<Answer> future = promise->get_future();
  call([promise](Answer answer) { promise->set_value(std::move(answer)); });
  if (future.wait_for(kAnswerTimeout) != std::future_status::ready) {
    return absl::DeadlineExceededError(std::string(what) + ": no answer within 10 s");
  }
  return future.get();
}

}  // namespace plan_manager_calls_internal

// PlanManager::Start, waiting for its answer (at most 10 s: then DeadlineExceeded).
inline absl::StatusOr<PlanManager::StartResult> StartSync(PlanManager& manager, v1::PlanSpec spec) {
  using Answer = absl::StatusOr<PlanManager::StartResult>;
  return plan_manager_calls_internal::AnswerOf<Answer>(
      [&](std::function<void(Answer)> done) { manager.Start(std::move(spec), std::move(done)); },
      "StartPlan");
}

// PlanManager::Stop, waiting for its answer (at most 10 s: then DeadlineExceeded).
inline absl::StatusOr<v1::PlanStatus> StopSync(PlanManager& manager, const std::string& id) {
  using Answer = absl::StatusOr<v1::PlanStatus>;
  return plan_manager_calls_internal::AnswerOf<Answer>(
      [&](std::function<void(Answer)> done) { manager.Stop(id, std::move(done)); }, "StopPlan");
}

// The plan `id` among every plan the manager knows (ended ones too), if any.
inline std::optional<v1::PlanStatus> Find(PlanManager& manager, const std::string& id) {
  for (v1::PlanStatus& status : manager.List(/*include_ended=*/true)) {
    if (status.plan_id() == id) return status;
  }
  return std::nullopt;
}

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_TESTING_PLAN_MANAGER_CALLS_H_
