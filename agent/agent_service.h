// AgentService: the gRPC callback-API adapter for memload.v1.Agent. It validates the
// request shape, calls the PlanManager / NodeProbe, and converts results and statuses
// (absl → gRPC, in one place: ToGrpcStatus). No plan logic lives here, and no handler
// blocks: StartPlan/StopPlan finish their reactor from the manager's callback, the manager
// holds its lock only to copy state (plan_manager.h), and each WatchUsage stream is paced
// by a grpc::Alarm — no thread per stream. At most `max_watch_streams` streams are open at
// once; more are refused with RESOURCE_EXHAUSTED. StopWatches() ends every stream (shutdown),
// within its grace even when a client has stopped reading.
//
// Thread-safety: thread-safe (gRPC calls it from many threads).
#ifndef MEMLOAD_AGENT_AGENT_SERVICE_H_
#define MEMLOAD_AGENT_AGENT_SERVICE_H_

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "agent/node_probe.h"
#include "agent/plan_manager.h"
#include "core/clock.h"
#include "core/sync/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/memload.grpc.pb.h"

namespace memload {
namespace agent {

grpc::Status ToGrpcStatus(const absl::Status& status);

struct AgentServiceOptions {
  // WatchUsage streams open at once; more are refused with RESOURCE_EXHAUSTED.
  size_t max_watch_streams = 1024;
  // StopWatches' grace runs on it. Not owned; never null.
  Clock* clock = Clock::Real();
};

class AgentService final : public v1::Agent::CallbackService {
 public:
  // Not owned; must outlive the service.
  AgentService(PlanManager* manager, NodeProbe* probe, v1::NodeInfo identity,
               AgentServiceOptions options = {});
  ~AgentService() override;

  grpc::ServerUnaryReactor* StartPlan(grpc::CallbackServerContext* context,
                                      const v1::StartPlanRequest* request,
                                      v1::StartPlanResponse* response) override;
  grpc::ServerUnaryReactor* ResizePlan(grpc::CallbackServerContext* context,
                                       const v1::ResizePlanRequest* request,
                                       v1::ResizePlanResponse* response) override;
  grpc::ServerUnaryReactor* StopPlan(grpc::CallbackServerContext* context,
                                     const v1::StopPlanRequest* request,
                                     v1::StopPlanResponse* response) override;
  grpc::ServerUnaryReactor* RenewLeases(grpc::CallbackServerContext* context,
                                        const v1::RenewLeasesRequest* request,
                                        v1::RenewLeasesResponse* response) override;
  grpc::ServerUnaryReactor* GetUsage(grpc::CallbackServerContext* context,
                                     const v1::GetUsageRequest* request,
                                     v1::NodeUsage* response) override;
  grpc::ServerWriteReactor<v1::NodeUsage>* WatchUsage(
      grpc::CallbackServerContext* context, const v1::WatchUsageRequest* request) override;
  grpc::ServerUnaryReactor* ListPlans(grpc::CallbackServerContext* context,
                                      const v1::ListPlansRequest* request,
                                      v1::ListPlansResponse* response) override;
  grpc::ServerUnaryReactor* GetNodeInfo(grpc::CallbackServerContext* context,
                                        const v1::GetNodeInfoRequest* request,
                                        v1::NodeInfo* response) override;

  // The usage message GetUsage and WatchUsage send.
  absl::StatusOr<v1::NodeUsage> Usage();

  // Called once by the server after binding, before any RPC arrives.
  void set_listen_address(const std::string& address);
  v1::NodeInfo identity() const;

  // Ends every WatchUsage stream (UNAVAILABLE) and refuses new ones: the server's shutdown
  // then has no stream to wait for. A stream ends as soon as its message in flight is
  // delivered; a stream whose client has stopped reading (its message held by HTTP/2 flow
  // control) would wait for the server's deadline: after `grace` those are cancelled
  // (CANCELLED). Returns once every stream has ended or been cancelled (at most `grace`).
  void StopWatches(absl::Duration grace);
  size_t open_watches() const;
  // Open streams whose message has waited for its client longer than the stream's interval.
  size_t stalled_watches() const;

 private:
  class WatchReactor;

  // The message watch streams send: Usage(), shared by the streams due within 20 ms.
  absl::StatusOr<v1::NodeUsage> WatchMessage();
  void WatchEnded(WatchReactor* watch);

  PlanManager* const manager_;
  NodeProbe* const probe_;
  const AgentServiceOptions options_;
  mutable Mutex identity_mutex_;
  v1::NodeInfo identity_ ABSL_GUARDED_BY(identity_mutex_);

  mutable Mutex watch_mutex_;
  std::set<WatchReactor*> watches_ ABSL_GUARDED_BY(watch_mutex_);  // the open streams.
  std::condition_variable watch_ended_;  // With watch_mutex_: a stream left watches_.
  bool watches_closed_ ABSL_GUARDED_BY(watch_mutex_) = false;

  Mutex cache_mutex_;
  std::optional<v1::NodeUsage> cached_usage_ ABSL_GUARDED_BY(cache_mutex_);
  absl::Time cached_at_ ABSL_GUARDED_BY(cache_mutex_);
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_AGENT_SERVICE_H_
