#include "controller/testing/fake_agent_client.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sync/mutex.h"

namespace memload {
namespace controller {

FakeReply::FakeReply(const google::protobuf::Message& response) {
  std::shared_ptr<google::protobuf::Message> copy(response.New());
  copy->CopyFrom(response);
  response_ = std::move(copy);
}

FakeReply::FakeReply(absl::Status status) : status_(std::move(status)) {}

FakeReply FakeReply::Hold() {
  FakeReply reply;
  reply.hold_ = true;
  return reply;
}

namespace {

// One open WatchUsage stream. `deliver_mutex` serialises its callbacks, so that on_usage
// never runs concurrently with itself or with on_done, and a handle being destroyed waits
// for a callback in progress.
struct FakeWatchState {
  std::string target;
  uint64_t call_id = 0;
  std::function<void(const v1::NodeUsage&)> on_usage;
  std::function<void(absl::Status)> on_done;
  Mutex deliver_mutex;
  bool done ABSL_GUARDED_BY(deliver_mutex) = false;
};

}  // namespace

// The state of every fake of a fleet: the call log, responders, watches and the delivery
// thread. Thread-safe; user callbacks always run outside `mutex`.
struct FakeHub {
  explicit FakeHub(Clock* clock_in = Clock::Real()) : clock(clock_in) {}

  struct Entry {
    FakeCall call;
    // The response type; null for WatchUsage entries (not counted as pending).
    const google::protobuf::Descriptor* response_type = nullptr;
    std::function<void(const FakeReply&)> deliver;  // Moved out when answered.
  };
  struct Responder {
    FakeResponder respond;
    FakeDelivery delivery = FakeDelivery::kInline;
  };

  ~FakeHub() {
    {
      MutexLock lock(&mutex);
      stopping = true;
    }
    tasks_changed.notify_all();
    if (delivery_thread.joinable()) delivery_thread.join();
  }

  // Appends a call to the log (its id is its place in the log, from 1) and returns its
  // entry, to be completed under the same lock.
  Entry& LogCallLocked(const std::string& target, const char* method,
                       std::shared_ptr<const google::protobuf::Message> request,
                       absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    Entry& entry = log.emplace_back();
    entry.call.id = log.size();
    entry.call.target = target;
    entry.call.method = method;
    entry.call.request = std::move(request);
    entry.call.timeout = timeout;
    entry.call.time = clock->Now();
    return entry;
  }

  // Logs a call, then lets the responder (if any) answer it.
  void Add(const std::string& target, const char* method,
           std::shared_ptr<const google::protobuf::Message> request, absl::Duration timeout,
           const google::protobuf::Descriptor* response_type,
           std::function<void(const FakeReply&)> deliver) {
    FakeCall snapshot;
    Responder responder;
    {
      MutexLock lock(&mutex);
      Entry& entry = LogCallLocked(target, method, std::move(request), timeout);
      entry.response_type = response_type;
      entry.deliver = std::move(deliver);
      snapshot = entry.call;
      ++pending;
      max_pending = std::max(max_pending, pending);
      responder = ResponderFor(target);
    }
    changed.notify_all();
    if (!responder.respond) return;
    FakeReply reply = responder.respond(snapshot);
    if (reply.hold()) return;
    const uint64_t id = snapshot.id;
    Run(responder.delivery, [this, id, reply] {
      // Fails only when the test answered the call by hand first: its answer stands.
      Answer(id, reply, /*from_responder=*/true).IgnoreError();
    });
  }

  // Answers the call `id`. From a responder, a response of the wrong type becomes an
  // INTERNAL error for the caller (someone must notice); from a test, it is refused.
  absl::Status Answer(uint64_t id, const FakeReply& reply, bool from_responder) {
    std::function<void(const FakeReply&)> deliver;
    FakeReply effective = reply;
    {
      MutexLock lock(&mutex);
      if (id == 0 || id > log.size()) {
        return absl::NotFoundError(absl::StrFormat("no fake call %d", id));
      }
      Entry& entry = log[id - 1];
      if (entry.response_type == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrFormat("call %d is a WatchUsage stream: use SendUsage/FinishWatches", id));
      }
      if (!entry.call.pending()) {
        return absl::FailedPreconditionError(absl::StrFormat("call %d was already answered", id));
      }
      if (reply.status().ok() && reply.response() != nullptr &&
          reply.response()->GetDescriptor() != entry.response_type) {
        const std::string message = absl::StrFormat("%s answers with %s, not %s", entry.call.method,
                                                    entry.response_type->full_name(),
                                                    reply.response()->GetDescriptor()->full_name());
        if (!from_responder) return absl::InvalidArgumentError(message);
        effective = FakeReply(absl::InternalError("fake responder: " + message));
      }
      entry.call.answered = clock->Now();
      deliver = std::move(entry.deliver);
      entry.deliver = nullptr;
      --pending;
    }
    changed.notify_all();
    deliver(effective);
    return absl::OkStatus();
  }

  // The oldest pending unary call (of `target`, or of any target when empty); 0 if none.
  uint64_t OldestPending(const std::string& target) const {
    MutexLock lock(&mutex);
    for (const Entry& entry : log) {
      if (IsPendingUnary(entry) && (target.empty() || entry.call.target == target)) {
        return entry.call.id;
      }
    }
    return 0;
  }

  absl::Status ReplyNext(const std::string& target, const FakeReply& reply) {
    // Another thread may answer the picked call first: then pick again.
    while (true) {
      const uint64_t id = OldestPending(target);
      if (id == 0) {
        return absl::FailedPreconditionError(
            target.empty() ? "no pending call" : absl::StrCat("no pending call to ", target));
      }
      absl::Status status = Answer(id, reply, /*from_responder=*/false);
      if (!absl::IsFailedPrecondition(status)) return status;
    }
  }

  size_t ReplyAll(const std::string& target, const FakeReply& reply) {
    // Only the calls pending now: answers may trigger new calls (retries), left pending.
    size_t answered = 0;
    for (const FakeCall& call : Snapshot(target, /*pending_only=*/true)) {
      if (Answer(call.id, reply, /*from_responder=*/false).ok()) ++answered;
    }
    return answered;
  }

  std::vector<FakeCall> Snapshot(const std::string& target, bool pending_only) const {
    MutexLock lock(&mutex);
    std::vector<FakeCall> calls;
    for (const Entry& entry : log) {
      if (!target.empty() && entry.call.target != target) continue;
      if (pending_only && !IsPendingUnary(entry)) continue;
      calls.push_back(entry.call);
    }
    return calls;
  }

  size_t PendingCount(const std::string& target) const {
    MutexLock lock(&mutex);
    return CountPendingLocked(target);
  }

  bool WaitForPending(const std::string& target, size_t n, absl::Duration timeout) const {
    MutexLock lock(&mutex);
    // Capped so that an infinite timeout cannot overflow the clock arithmetic.
    return changed.wait_for(
        lock.native(), absl::ToChronoNanoseconds(std::min(timeout, absl::Hours(24))),
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) { return CountPendingLocked(target) >= n; });
  }

  void SetResponder(const std::string& target, FakeResponder respond, FakeDelivery delivery) {
    MutexLock lock(&mutex);
    Responder& slot = target.empty() ? default_responder : responders[target];
    slot.respond = std::move(respond);
    slot.delivery = delivery;
    if (delivery == FakeDelivery::kAsync && !delivery_thread.joinable()) {
      delivery_thread = std::thread([this] { DeliveryLoop(); });
    }
  }

  // Runs `task` now, or queues it for the delivery thread.
  void Run(FakeDelivery delivery, std::function<void()> task) {
    if (delivery == FakeDelivery::kInline) {
      task();
      return;
    }
    {
      MutexLock lock(&mutex);
      tasks.push_back(std::move(task));
    }
    tasks_changed.notify_all();
  }

  // --- Watches ---
  std::shared_ptr<FakeWatchState> AddWatch(const std::string& target,
                                           const v1::WatchUsageRequest& request,
                                           std::function<void(const v1::NodeUsage&)> on_usage,
                                           std::function<void(absl::Status)> on_done) {
    auto watch = std::make_shared<FakeWatchState>();
    watch->target = target;
    watch->on_usage = std::move(on_usage);
    watch->on_done = std::move(on_done);
    FakeCall snapshot;
    Responder responder;
    {
      MutexLock lock(&mutex);
      snapshot =
          LogCallLocked(target, "WatchUsage", std::make_shared<v1::WatchUsageRequest>(request),
                        absl::InfiniteDuration())  // A stream: no deadline.
              .call;
      watch->call_id = snapshot.id;
      watches.push_back(watch);
      responder = ResponderFor(target);
    }
    changed.notify_all();
    // A responder's error status ends the stream at once (an unreachable agent).
    if (responder.respond) {
      FakeReply reply = responder.respond(snapshot);
      if (!reply.hold() && !reply.status().ok()) {
        std::weak_ptr<FakeWatchState> weak = watch;
        Run(responder.delivery, [this, weak, status = reply.status()] {
          if (auto alive = weak.lock()) FinishWatch(alive, status);
        });
      }
    }
    return watch;
  }

  std::vector<std::shared_ptr<FakeWatchState>> OpenWatches(const std::string& target) const {
    MutexLock lock(&mutex);
    std::vector<std::shared_ptr<FakeWatchState>> open;
    for (const auto& watch : watches) {
      if (watch->target == target) open.push_back(watch);
    }
    return open;
  }

  void FinishWatch(const std::shared_ptr<FakeWatchState>& watch, const absl::Status& status) {
    MutexLock deliver_lock(&watch->deliver_mutex);
    if (watch->done) return;
    watch->done = true;
    {
      MutexLock lock(&mutex);
      watches.erase(std::remove(watches.begin(), watches.end(), watch), watches.end());
      log[watch->call_id - 1].call.answered = clock->Now();
    }
    changed.notify_all();
    watch->on_done(status);
  }

  Clock* const clock;  // Stamps calls and answers.
  mutable Mutex mutex;
  mutable std::condition_variable changed;        // The log or a pending count changed.
  std::condition_variable tasks_changed;          // `tasks` or `stopping` changed.
  std::vector<Entry> log ABSL_GUARDED_BY(mutex);  // log[id - 1].
  size_t pending ABSL_GUARDED_BY(mutex) = 0;      // unary calls only.
  size_t max_pending ABSL_GUARDED_BY(mutex) = 0;
  std::map<std::string, Responder> responders ABSL_GUARDED_BY(mutex);  // per target.
  Responder default_responder ABSL_GUARDED_BY(mutex);
  std::vector<std::shared_ptr<FakeWatchState>> watches ABSL_GUARDED_BY(mutex);  // open ones.
  std::deque<std::function<void()>> tasks ABSL_GUARDED_BY(mutex);  // for the delivery thread.
  bool stopping ABSL_GUARDED_BY(mutex) = false;
  std::thread delivery_thread;  // Started by the first kAsync responder.

 private:
  static bool IsPendingUnary(const Entry& entry) {
    return entry.response_type != nullptr && entry.call.pending();
  }

  size_t CountPendingLocked(const std::string& target) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    if (target.empty()) return pending;
    return std::count_if(log.begin(), log.end(), [&](const Entry& entry) {
      return IsPendingUnary(entry) && entry.call.target == target;
    });
  }

  Responder ResponderFor(const std::string& target) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    auto it = responders.find(target);
    if (it != responders.end() && it->second.respond) return it->second;
    return default_responder;
  }

  void DeliveryLoop() {
    MutexLock lock(&mutex);
    while (true) {
      tasks_changed.wait(lock.native(), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
        return stopping || !tasks.empty();
      });
      if (stopping) return;  // Undelivered answers are dropped, like pending calls.
      std::function<void()> task = std::move(tasks.front());
      tasks.pop_front();
      lock.Unlock();
      task();
      lock.Lock();
    }
  }
};

namespace {

class FakeUsageWatch : public UsageWatch {
 public:
  FakeUsageWatch(std::shared_ptr<FakeHub> hub, std::shared_ptr<FakeWatchState> watch)
      : hub_(std::move(hub)), watch_(std::move(watch)) {}
  ~FakeUsageWatch() override { Cancel(); }
  void Cancel() override { hub_->FinishWatch(watch_, absl::CancelledError("watch cancelled")); }

 private:
  const std::shared_ptr<FakeHub> hub_;
  const std::shared_ptr<FakeWatchState> watch_;
};

}  // namespace

FakeAgentClient::FakeAgentClient(std::string target)
    : FakeAgentClient(std::move(target), std::make_shared<FakeHub>()) {}

FakeAgentClient::FakeAgentClient(std::string target, std::shared_ptr<FakeHub> hub)
    : target_(std::move(target)), hub_(std::move(hub)) {}

FakeAgentClient::~FakeAgentClient() = default;

template <typename Response>
void FakeAgentClient::Enqueue(const char* method, const google::protobuf::Message& request,
                              absl::Duration timeout, Done<Response> done) {
  std::shared_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  auto deliver = [done = std::move(done)](const FakeReply& reply) {
    if (!reply.status().ok()) {
      done(reply.status());
      return;
    }
    Response response;
    if (reply.response() != nullptr) response.CopyFrom(*reply.response());
    done(std::move(response));
  };
  hub_->Add(target_, method, std::move(copy), timeout, Response::descriptor(), std::move(deliver));
}

// Every unary RPC is logged and answered by the responders alike.
#define MEMLOAD_FAKE_UNARY(Method, Request, Response)                          \
  void FakeAgentClient::Method(const Request& request, absl::Duration timeout, \
                               Done<Response> done) {                          \
    Enqueue(#Method, request, timeout, std::move(done));                       \
  }

MEMLOAD_AGENT_UNARY_RPCS(MEMLOAD_FAKE_UNARY)

#undef MEMLOAD_FAKE_UNARY

std::unique_ptr<UsageWatch> FakeAgentClient::WatchUsage(
    const v1::WatchUsageRequest& request, std::function<void(const v1::NodeUsage&)> on_usage,
    std::function<void(absl::Status)> on_done) {
  return std::make_unique<FakeUsageWatch>(
      hub_, hub_->AddWatch(target_, request, std::move(on_usage), std::move(on_done)));
}

std::vector<FakeCall> FakeAgentClient::Calls() const {
  return hub_->Snapshot(target_, /*pending_only=*/false);
}
std::vector<FakeCall> FakeAgentClient::Pending() const {
  return hub_->Snapshot(target_, /*pending_only=*/true);
}
size_t FakeAgentClient::pending_count() const { return hub_->PendingCount(target_); }
bool FakeAgentClient::WaitForPending(size_t n, absl::Duration timeout) const {
  return hub_->WaitForPending(target_, n, timeout);
}
absl::Status FakeAgentClient::ReplyNext(const FakeReply& reply) {
  return hub_->ReplyNext(target_, reply);
}
absl::Status FakeAgentClient::FailNext(absl::Status status) {
  if (status.ok()) return absl::InvalidArgumentError("FailNext needs a non-OK status");
  return hub_->ReplyNext(target_, FakeReply(std::move(status)));
}
absl::Status FakeAgentClient::Reply(uint64_t call_id, const FakeReply& reply) {
  return hub_->Answer(call_id, reply, /*from_responder=*/false);
}
size_t FakeAgentClient::ReplyAll(const FakeReply& reply) { return hub_->ReplyAll(target_, reply); }
void FakeAgentClient::SetResponder(FakeResponder responder, FakeDelivery delivery) {
  hub_->SetResponder(target_, std::move(responder), delivery);
}
void FakeAgentClient::ClearResponder() {
  hub_->SetResponder(target_, nullptr, FakeDelivery::kInline);
}

size_t FakeAgentClient::open_watches() const { return hub_->OpenWatches(target_).size(); }

void FakeAgentClient::SendUsage(const v1::NodeUsage& usage) {
  for (const auto& watch : hub_->OpenWatches(target_)) {
    MutexLock lock(&watch->deliver_mutex);
    if (!watch->done) watch->on_usage(usage);
  }
}

void FakeAgentClient::FinishWatches(absl::Status status) {
  for (const auto& watch : hub_->OpenWatches(target_)) hub_->FinishWatch(watch, status);
}

// --- FakeFleet ---

FakeFleet::FakeFleet(const std::vector<std::string>& targets, Clock* clock)
    : hub_(std::make_shared<FakeHub>(clock)) {
  for (const std::string& target : targets) {
    clients_.push_back(std::make_unique<FakeAgentClient>(target, hub_));
  }
}

FakeFleet::~FakeFleet() = default;

std::vector<std::string> FakeFleet::Targets(int n) {
  std::vector<std::string> targets;
  for (int i = 1; i <= n; ++i) {
    targets.push_back(absl::StrFormat("10.0.%d.%d:7070", i / 256, i % 256));
  }
  return targets;
}

FakeAgentClient* FakeFleet::Find(const std::string& target) {
  for (auto& client : clients_) {
    if (client->target() == target) return client.get();
  }
  return nullptr;
}

std::vector<AgentClient*> FakeFleet::clients() {
  std::vector<AgentClient*> out;
  for (auto& client : clients_) out.push_back(client.get());
  return out;
}

AgentClientFactory FakeFleet::factory() {
  // A fake keeps all its state in the hub, so a second fake on the same target and hub is
  // the same fake: no forwarding wrapper is needed.
  std::shared_ptr<FakeHub> hub = hub_;
  std::vector<std::string> known;
  for (auto& client : clients_) known.push_back(client->target());
  return [hub, known](const std::string& target) -> std::unique_ptr<AgentClient> {
    if (std::find(known.begin(), known.end(), target) == known.end()) {
      hub->SetResponder(
          target,
          [](const FakeCall& call) -> FakeReply {
            return absl::UnavailableError(call.target + ": agent unreachable (not in the fleet)");
          },
          FakeDelivery::kInline);
    }
    return std::make_unique<FakeAgentClient>(target, hub);
  };
}

void FakeFleet::SetResponder(FakeResponder responder, FakeDelivery delivery) {
  hub_->SetResponder("", std::move(responder), delivery);
}
void FakeFleet::ClearResponder() { hub_->SetResponder("", nullptr, FakeDelivery::kInline); }
std::vector<FakeCall> FakeFleet::Calls() const { return hub_->Snapshot("", false); }
std::vector<FakeCall> FakeFleet::Pending() const { return hub_->Snapshot("", true); }
size_t FakeFleet::pending_count() const { return hub_->PendingCount(""); }
size_t FakeFleet::max_pending() const {
  MutexLock lock(&hub_->mutex);
  return hub_->max_pending;
}
bool FakeFleet::WaitForPending(size_t n, absl::Duration timeout) const {
  return hub_->WaitForPending("", n, timeout);
}
absl::Status FakeFleet::ReplyNext(const FakeReply& reply) { return hub_->ReplyNext("", reply); }
absl::Status FakeFleet::FailNext(absl::Status status) {
  if (status.ok()) return absl::InvalidArgumentError("FailNext needs a non-OK status");
  return hub_->ReplyNext("", FakeReply(std::move(status)));
}
absl::Status FakeFleet::Reply(uint64_t call_id, const FakeReply& reply) {
  return hub_->Answer(call_id, reply, /*from_responder=*/false);
}
size_t FakeFleet::ReplyAll(const FakeReply& reply) { return hub_->ReplyAll("", reply); }

}  // namespace controller
}  // namespace memload
