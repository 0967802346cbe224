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

// The unary RPCs of memload.v1.Agent as X(Method, Request, Response): the one list that the
// interface below, GrpcAgentClient and FakeAgentClient are written from, so an RPC added to
// the proto is added here once.
#define MEMLOAD_AGENT_UNARY_RPCS(X)                               \
  X(StartPlan, v1::StartPlanRequest, v1::StartPlanResponse)       \
  X(ResizePlan, v1::ResizePlanRequest, v1::ResizePlanResponse)    \
  X(StopPlan, v1::StopPlanRequest, v1::StopPlanResponse)          \
  X(RenewLeases, v1::RenewLeasesRequest, v1::RenewLeasesResponse) \
  X(GetUsage, v1::GetUsageRequest, v1::NodeUsage)                 \
  X(ListPlans, v1::ListPlansRequest, v1::ListPlansResponse)       \
  X(GetNodeInfo, v1::GetNodeInfoRequest, v1::NodeInfo)

// The declarations of one unary RPC: in AgentClient, and in an implementation's class.
#define MEMLOAD_AGENT_UNARY_DECLARE_PURE(Method, Request, Response) \
  virtual void Method(const Request& request, absl::Duration timeout, Done<Response> done) = 0;
#define MEMLOAD_AGENT_UNARY_DECLARE_OVERRIDE(Method, Request, Response) \
  void Method(const Request& request, absl::Duration timeout, Done<Response> done) override;

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

  // One method per unary RPC of memload.v1.Agent (MEMLOAD_AGENT_UNARY_RPCS below):
  //   virtual void StartPlan(const v1::StartPlanRequest& request, absl::Duration timeout,
  //                          Done<v1::StartPlanResponse> done) = 0;
  // and ResizePlan, StopPlan, RenewLeases, GetUsage, ListPlans, GetNodeInfo alike.
  MEMLOAD_AGENT_UNARY_RPCS(MEMLOAD_AGENT_UNARY_DECLARE_PURE)

  // Streams usage until cancelled: `on_usage` for every message (one at a time), then
  // `on_done` exactly once with the final status.
  virtual std::unique_ptr<UsageWatch> WatchUsage(const v1::WatchUsageRequest& request,
                                                 std::function<void(const v1::NodeUsage&)> on_usage,
                                                 std::function<void(absl::Status)> on_done) = 0;
};

// Makes the client for one target (real: one channel per target, reused for every call).
using AgentClientFactory = std::function<std::unique_ptr<AgentClient>(const std::string& target)>;

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_AGENT_CLIENT_H_
