#include "agent/agent_service.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/usage.h"
#include "core/node_readers.h"
#include "proto/proto_time.h"

namespace memload {
namespace agent {
namespace {

constexpr absl::Duration kMinWatchInterval = absl::Milliseconds(50);
constexpr absl::Duration kDefaultWatchInterval = absl::Seconds(1);

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// One WatchUsage stream. A thread of its own paces the writes (the callback API has no
// timer, and a reactor callback must not sleep); the reactor's callbacks only record what
// happened for that thread. The thread never touches the reactor after Finish(), which
// may delete it (OnDone).
class WatchReactor final : public grpc::ServerWriteReactor<v1::NodeUsage> {
 public:
  WatchReactor(AgentService* service, absl::Duration interval)
      : shared_(std::make_shared<Shared>()) {
    std::shared_ptr<Shared> shared = shared_;
    std::thread([this, service, interval, shared] { Loop(service, interval, shared); })
        .detach();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->write_pending = false;
    shared_->broken |= !ok;
    shared_->changed.notify_all();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->cancelled = true;
    shared_->changed.notify_all();
  }
  void OnDone() override { delete this; }

 private:
  struct Shared {
    std::mutex mutex;
    std::condition_variable changed;
    bool cancelled = false;      // Guarded by mutex.
    bool broken = false;         // Guarded by mutex: a write failed.
    bool write_pending = false;  // Guarded by mutex.
    v1::NodeUsage message;       // Owned by the loop while a write is pending.
  };

  void Loop(AgentService* service, absl::Duration interval, std::shared_ptr<Shared> shared) {
    grpc::Status final_status = grpc::Status::OK;
    std::unique_lock<std::mutex> lock(shared->mutex);
    absl::Time next = absl::Now();
    while (true) {
      const auto wait = std::chrono::nanoseconds(absl::ToInt64Nanoseconds(next - absl::Now()));
      shared->changed.wait_for(lock, wait, [&] { return shared->cancelled; });
      if (shared->cancelled || shared->broken) break;
      next += interval;
      absl::StatusOr<v1::NodeUsage> usage = service->Usage();
      if (!usage.ok()) {
        final_status = ToGrpcStatus(usage.status());
        break;
      }
      shared->message = *std::move(usage);
      shared->write_pending = true;
      lock.unlock();
      StartWrite(&shared->message);
      lock.lock();
      shared->changed.wait(lock, [&] { return !shared->write_pending || shared->cancelled; });
      if (shared->write_pending) break;  // Cancelled mid-write: gRPC finishes the write.
      if (absl::Now() > next) next = absl::Now();  // A slow client: do not burst to catch up.
    }
    const bool cancelled = shared->cancelled;
    lock.unlock();
    Finish(cancelled ? grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled")
                     : final_status);
  }

  std::shared_ptr<Shared> shared_;
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode mirrors grpc::StatusCode value for value.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

AgentService::AgentService(PlanManager* manager, NodeProbe* probe, v1::NodeInfo identity)
    : manager_(manager), probe_(probe), identity_(std::move(identity)) {}

void AgentService::set_listen_address(const std::string& address) {
  std::lock_guard<std::mutex> lock(identity_mutex_);
  identity_.set_listen_address(address);
}

v1::NodeInfo AgentService::identity() const {
  std::lock_guard<std::mutex> lock(identity_mutex_);
  return identity_;
}

grpc::ServerUnaryReactor* AgentService::StartPlan(grpc::CallbackServerContext* context,
                                                  const v1::StartPlanRequest* request,
                                                  v1::StartPlanResponse* response) {
  if (!request->has_spec()) {
    return FinishNow(context, absl::InvalidArgumentError("spec is required"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  manager_->Start(request->spec(),
                  [reactor, response](absl::StatusOr<PlanManager::StartResult> result) {
                    if (result.ok()) {
                      *response->mutable_plan() = std::move(result->plan);
                      response->set_created(result->created);
                    }
                    reactor->Finish(ToGrpcStatus(result.status()));
                  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::ResizePlan(grpc::CallbackServerContext* context,
                                                   const v1::ResizePlanRequest* request,
                                                   v1::ResizePlanResponse* response) {
  if (request->plan_id().empty()) {
    return FinishNow(context, absl::InvalidArgumentError("plan_id is required"));
  }
  absl::StatusOr<v1::PlanStatus> status = manager_->Resize(request->plan_id(), request->target());
  if (status.ok()) *response->mutable_plan() = *std::move(status);
  return FinishNow(context, status.status());
}

grpc::ServerUnaryReactor* AgentService::StopPlan(grpc::CallbackServerContext* context,
                                                 const v1::StopPlanRequest* request,
                                                 v1::StopPlanResponse* response) {
  if (request->plan_id().empty()) {
    return FinishNow(context, absl::InvalidArgumentError("plan_id is required"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  manager_->Stop(request->plan_id(), [reactor, response](absl::StatusOr<v1::PlanStatus> status) {
    if (status.ok()) *response->mutable_plan() = *std::move(status);
    reactor->Finish(ToGrpcStatus(status.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::RenewLeases(grpc::CallbackServerContext* context,
                                                    const v1::RenewLeasesRequest* request,
                                                    v1::RenewLeasesResponse* response) {
  *response = manager_->Renew(*request);
  return FinishNow(context, absl::OkStatus());
}

absl::StatusOr<v1::NodeUsage> AgentService::Usage() {
  absl::StatusOr<NodeMemory> node = probe_->Read();
  if (!node.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the node's memory: ", node.status().message()));
  }
  absl::StatusOr<ProcessMemory> self = ReadProcessMemory(0);
  return BuildNodeUsage(identity(), *node, manager_->List(/*include_ended=*/false),
                        self.ok() ? self->rss_bytes : 0, absl::Now());
}

grpc::ServerUnaryReactor* AgentService::GetUsage(grpc::CallbackServerContext* context,
                                                 const v1::GetUsageRequest*,
                                                 v1::NodeUsage* response) {
  absl::StatusOr<v1::NodeUsage> usage = Usage();
  if (usage.ok()) *response = *std::move(usage);
  return FinishNow(context, usage.status());
}

grpc::ServerWriteReactor<v1::NodeUsage>* AgentService::WatchUsage(
    grpc::CallbackServerContext* context, const v1::WatchUsageRequest* request) {
  absl::Duration interval = kDefaultWatchInterval;
  if (request->has_interval()) interval = FromProtoDuration(request->interval());
  if (interval < kMinWatchInterval) {
    // A reactor that finishes at once reports the error without a pacing thread.
    class Refusal final : public grpc::ServerWriteReactor<v1::NodeUsage> {
     public:
      explicit Refusal(absl::Duration interval) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("interval must be at least ",
                                         absl::FormatDuration(kMinWatchInterval), ", got ",
                                         absl::FormatDuration(interval))));
      }
      void OnDone() override { delete this; }
    };
    return new Refusal(interval);
  }
  return new WatchReactor(this, interval);
}

grpc::ServerUnaryReactor* AgentService::ListPlans(grpc::CallbackServerContext* context,
                                                  const v1::ListPlansRequest* request,
                                                  v1::ListPlansResponse* response) {
  for (v1::PlanStatus& plan : manager_->List(request->include_ended())) {
    *response->add_plans() = std::move(plan);
  }
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AgentService::GetNodeInfo(grpc::CallbackServerContext* context,
                                                    const v1::GetNodeInfoRequest*,
                                                    v1::NodeInfo* response) {
  *response = identity();
  return FinishNow(context, absl::OkStatus());
}

}  // namespace agent
}  // namespace memload
