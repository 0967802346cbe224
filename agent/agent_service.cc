#include "agent/agent_service.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/usage.h"
#include "core/node_readers.h"
#include "core/sync/mutex.h"
#include "grpcpp/alarm.h"
#include "proto/plan_rules.h"
#include "proto/proto_time.h"

namespace memload {
namespace agent {
namespace {

constexpr absl::Duration kMinWatchInterval = absl::Milliseconds(50);
constexpr absl::Duration kDefaultWatchInterval = absl::Seconds(1);
// Longer intervals are taken as this (an alarm a year away serves nobody).
constexpr absl::Duration kMaxWatchInterval = absl::Hours(1);
// How old a usage message a watch stream may send (shared by every stream).
constexpr absl::Duration kWatchCacheAge = absl::Milliseconds(20);

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// The plan_id of a ResizePlan or StopPlan request: given, and a valid id.
absl::Status CheckRequestPlanId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("plan_id is required");
  return plan_rules::CheckPlanId(id);
}

std::chrono::system_clock::time_point ToChrono(absl::Time time) {
  return std::chrono::system_clock::from_time_t(0) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             std::chrono::nanoseconds(absl::ToUnixNanos(time)));
}

// A reactor that finishes at once with `status` (a refused WatchUsage).
class Refusal final : public grpc::ServerWriteReactor<v1::NodeUsage> {
 public:
  explicit Refusal(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

// One WatchUsage stream, paced by a grpc::Alarm: no thread of its own. At any moment it has
// exactly one of: a write in flight, an alarm set, or Finish called — so nothing can touch
// it after OnDone deletes it. A cancel (client gone, or the agent shutting down) cancels
// the alarm, whose callback then finishes the stream; a cancel during a write finishes it
// when the write completes. A write the client never takes (it stopped reading: HTTP/2 flow
// control holds the message) never completes by itself: CancelIfWriting() cancels the call,
// which completes the write (ok = false).
class AgentService::WatchReactor final : public grpc::ServerWriteReactor<v1::NodeUsage> {
 public:
  WatchReactor(AgentService* service, grpc::CallbackServerContext* context, absl::Duration interval)
      : service_(service), context_(context), interval_(interval), next_(absl::Now()) {}

  // Sends the first message; called once, after the stream is registered.
  void Begin() {
    {
      MutexLock lock(&mutex_);
      write_pending_ = true;
    }
    Send();
  }

  // Ends the stream with `status` as soon as it can (thread-safe, idempotent, never
  // finishes inline: callers may hold the service's lock, and OnDone takes it).
  void Stop(grpc::Status status) {
    MutexLock lock(&mutex_);
    if (stopping_ || finished_) return;
    stopping_ = true;
    stop_status_ = std::move(status);
    // With an alarm set, its callback (ok = false) finishes the stream; with a write in
    // flight, OnWriteDone does. There is no third state before Finish.
    if (alarm_pending_) alarm_.Cancel();
  }

  // A message has waited for the client longer than the interval (it stopped reading).
  bool Stalled(absl::Time now) {
    MutexLock lock(&mutex_);
    return write_pending_ && write_started_ != absl::InfinitePast() &&
           now - write_started_ > interval_;
  }

  // After Stop(): cancels the call if its write is still in flight (the client has not taken
  // the message). The caller keeps the reactor alive (the service's watch_mutex_, which
  // OnDone takes before deleting it).
  void CancelIfWriting() {
    {
      MutexLock lock(&mutex_);
      if (!write_pending_) return;
    }
    // Not under mutex_: the cancel's reactions (OnCancel, OnWriteDone) take it.
    context_->TryCancel();
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    grpc::Status status;
    {
      MutexLock lock(&mutex_);
      write_pending_ = false;
      finish = FinishIfStoppingLocked(ok, &status);
      if (!finish) {
        const absl::Time now = absl::Now();
        next_ += interval_;
        if (next_ < now) next_ = now;  // A slow client: do not burst to catch up.
        alarm_pending_ = true;
        alarm_.Set(ToChrono(next_), [this](bool fired) { OnAlarm(fired); });
      }
    }
    if (finish) Finish(status);
  }

  void OnCancel() override { Stop(Cancelled()); }

  void OnDone() override {
    service_->WatchEnded(this);
    delete this;
  }

 private:
  static grpc::Status Cancelled() {
    return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
  }

  // What follows a completed write or alarm (the stream's one pending step): `ok` false (the
  // call was cancelled) stops the stream; a stopping stream finishes. Returns true when it
  // finishes, with the status to finish with in `status`; then nothing else may be started.
  bool FinishIfStoppingLocked(bool ok, grpc::Status* status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (!ok && !stopping_) {
      stopping_ = true;
      stop_status_ = Cancelled();
    }
    if (!stopping_) return false;
    finished_ = true;
    *status = stop_status_;
    return true;
  }

  void OnAlarm(bool fired) {
    bool finish = false;
    grpc::Status status;
    {
      MutexLock lock(&mutex_);
      alarm_pending_ = false;
      finish = FinishIfStoppingLocked(fired, &status);
      if (!finish) write_pending_ = true;
    }
    if (finish) {
      Finish(status);
    } else {
      Send();
    }
  }

  // With write_pending_ set: builds the message and writes it.
  void Send() {
    absl::StatusOr<v1::NodeUsage> usage = service_->WatchMessage();
    if (!usage.ok()) {
      {
        MutexLock lock(&mutex_);
        write_pending_ = false;
        if (finished_) return;
        finished_ = true;
      }
      Finish(ToGrpcStatus(usage.status()));
      return;
    }
    message_ = *std::move(usage);  // Only this path touches it, and only between writes.
    {
      MutexLock lock(&mutex_);
      write_started_ = absl::Now();
    }
    StartWrite(&message_);
  }

  AgentService* const service_;
  grpc::CallbackServerContext* const context_;  // gRPC's; valid until OnDone.
  const absl::Duration interval_;
  Mutex mutex_;
  grpc::Alarm alarm_;
  absl::Time next_ ABSL_GUARDED_BY(mutex_);
  bool alarm_pending_ ABSL_GUARDED_BY(mutex_) = false;
  bool write_pending_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();  // Set by Send.
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::Status stop_status_ ABSL_GUARDED_BY(mutex_);  // final once stopping_.
  v1::NodeUsage message_;
};

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode mirrors grpc::StatusCode value for value.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

AgentService::AgentService(PlanManager* manager, NodeProbe* probe, v1::NodeInfo identity,
                           AgentServiceOptions options)
    : manager_(manager), probe_(probe), options_(options), identity_(std::move(identity)) {}

AgentService::~AgentService() = default;

size_t AgentService::open_watches() const {
  MutexLock lock(&watch_mutex_);
  return watches_.size();
}

void AgentService::StopWatches(absl::Duration grace) {
  MutexLock lock(&watch_mutex_);
  watches_closed_ = true;
  for (WatchReactor* watch : watches_) {
    watch->Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the agent is shutting down"));
  }
  // Streams whose client reads end within milliseconds; OnDone's WatchEnded wakes this.
  options_.clock->WaitUntil(
      watch_ended_, lock.native(), options_.clock->Now() + grace,
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(watch_mutex_) { return watches_.empty(); });
  // The rest have a message in flight that their client does not take.
  for (WatchReactor* watch : watches_) watch->CancelIfWriting();
}

size_t AgentService::stalled_watches() const {
  MutexLock lock(&watch_mutex_);
  const absl::Time now = absl::Now();
  size_t stalled = 0;
  for (WatchReactor* watch : watches_) stalled += watch->Stalled(now) ? 1 : 0;
  return stalled;
}

void AgentService::WatchEnded(WatchReactor* watch) {
  MutexLock lock(&watch_mutex_);
  watches_.erase(watch);
  watch_ended_.notify_all();
}

absl::StatusOr<v1::NodeUsage> AgentService::WatchMessage() {
  // Every stream sends the same message: one read of the node and the plans serves every
  // stream due within the same few milliseconds.
  MutexLock lock(&cache_mutex_);
  const absl::Time now = absl::Now();
  if (!cached_usage_.has_value() || now - cached_at_ > kWatchCacheAge) {
    absl::StatusOr<v1::NodeUsage> usage = Usage();
    if (!usage.ok()) return usage.status();
    cached_usage_ = *std::move(usage);
    cached_at_ = now;
  }
  return *cached_usage_;
}

void AgentService::set_listen_address(const std::string& address) {
  MutexLock lock(&identity_mutex_);
  identity_.set_listen_address(address);
}

v1::NodeInfo AgentService::identity() const {
  MutexLock lock(&identity_mutex_);
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
  if (absl::Status id = CheckRequestPlanId(request->plan_id()); !id.ok()) {
    return FinishNow(context, id);
  }
  absl::StatusOr<v1::PlanStatus> status = manager_->Resize(request->plan_id(), request->target());
  if (status.ok()) *response->mutable_plan() = *std::move(status);
  return FinishNow(context, status.status());
}

grpc::ServerUnaryReactor* AgentService::StopPlan(grpc::CallbackServerContext* context,
                                                 const v1::StopPlanRequest* request,
                                                 v1::StopPlanResponse* response) {
  if (absl::Status id = CheckRequestPlanId(request->plan_id()); !id.ok()) {
    return FinishNow(context, id);
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
  if (absl::Status valid = plan_rules::CheckRenewLeases(*request); !valid.ok()) {
    return FinishNow(context, valid);
  }
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
    return new Refusal(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("interval must be at least ", absl::FormatDuration(kMinWatchInterval),
                     ", got ", absl::FormatDuration(interval))));
  }
  interval = std::min(interval, kMaxWatchInterval);
  WatchReactor* watch = nullptr;
  {
    MutexLock lock(&watch_mutex_);
    if (watches_closed_) {
      return new Refusal(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the agent is shutting down"));
    }
    if (watches_.size() >= options_.max_watch_streams) {
      return new Refusal(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("the agent already serves ", watches_.size(),
                       " WatchUsage streams, its maximum (--max-watch-streams); use GetUsage "
                       "or try later")));
    }
    watch = new WatchReactor(this, context, interval);
    watches_.insert(watch);
  }
  watch->Begin();
  return watch;
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
