// AgentClient: how memloadctl talks to one agent. The fan-out, rollout and commands use
// only this interface, so their tests run against FakeAgentClient (fake_agent_client.h)
// and production against GrpcAgentClient (grpc_agent_client.h).
//
//   client->GetUsage(v1::GetUsageRequest(), absl::Seconds(5),
//                    [](absl::StatusOr<v1::NodeUsage> usage) { ... });
//
// Every call is asynchronous: `done` runs exactly once, on a thread the client chooses
// (a gRPC callback thread for the real client), with the response or a status. Statuses
// keep the gRPC code (UNAVAILABLE, DEADLINE_EXCEEDED, NOT_FOUND, ...) and the agent's
// message.
//
// Thread-safety: implementations are thread-safe; calls may be issued concurrently.
#ifndef MEMLOAD_CONTROLLER_AGENT_CLIENT_H_
#define MEMLOAD_CONTROLLER_AGENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

template <typename Response>
using Done = std::function<void(absl::StatusOr<Response>)>;

// A running WatchUsage stream. Destroying it cancels the stream and waits until its
// callbacks have stopped.
class UsageWatch {
 public:
  virtual ~UsageWatch() = default;
  // Asks the stream to end; `on_done` then runs with CANCELLED (or the earlier error).
  virtual void Cancel() = 0;
};

class AgentClient {
 public:
  virtual ~AgentClient() = default;

  // The target this client talks to, as the user gave it ("10.0.0.5:7070").
  virtual const std::string& target() const = 0;

  virtual void StartPlan(const v1::StartPlanRequest& request, absl::Duration timeout,
                         Done<v1::StartPlanResponse> done) = 0;
  virtual void ResizePlan(const v1::ResizePlanRequest& request, absl::Duration timeout,
                          Done<v1::ResizePlanResponse> done) = 0;
  virtual void StopPlan(const v1::StopPlanRequest& request, absl::Duration timeout,
                        Done<v1::StopPlanResponse> done) = 0;
  virtual void RenewLeases(const v1::RenewLeasesRequest& request, absl::Duration timeout,
                           Done<v1::RenewLeasesResponse> done) = 0;
  virtual void GetUsage(const v1::GetUsageRequest& request, absl::Duration timeout,
                        Done<v1::NodeUsage> done) = 0;
  virtual void ListPlans(const v1::ListPlansRequest& request, absl::Duration timeout,
                         Done<v1::ListPlansResponse> done) = 0;
  virtual void GetNodeInfo(const v1::GetNodeInfoRequest& request, absl::Duration timeout,
                           Done<v1::NodeInfo> done) = 0;

  // Streams usage until cancelled: `on_usage` for every message (one at a time), then
  // `on_done` exactly once with the final status.
  virtual std::unique_ptr<UsageWatch> WatchUsage(
      const v1::WatchUsageRequest& request, std::function<void(const v1::NodeUsage&)> on_usage,
      std::function<void(absl::Status)> on_done) = 0;
};

// Makes the client for one target (real: one channel per target, reused for every call).
using AgentClientFactory =
    std::function<std::unique_ptr<AgentClient>(const std::string& target)>;

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_AGENT_CLIENT_H_
