#include "controller/grpc_agent_client.h"

#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bazel/tsan_annotations.h"
#include "controller/bearer_token.h"
#include "core/sync/mutex.h"

namespace memload {
namespace controller {
namespace {

bool HasArg(const grpc::ChannelArguments& args, const char* key) {
  const grpc_channel_args c_args = args.c_channel_args();
  for (size_t i = 0; i < c_args.num_args; ++i) {
    if (std::strcmp(c_args.args[i].key, key) == 0) return true;
  }
  return false;
}

// Sets `key` unless the caller's channel_args already did.
void SetDefault(grpc::ChannelArguments& args, const char* key, absl::Duration value) {
  if (!HasArg(args, key)) args.SetInt(key, static_cast<int>(absl::ToInt64Milliseconds(value)));
}

// Set on threads where a client's destructor must not wait for its calls (see
// ~GrpcAgentClient): the releaser's thread, whose queue those calls are in, and our
// callbacks on gRPC's threads, which must not block (the call running one is not released
// until it returns).
thread_local int no_wait_depth = 0;

class NoWaitScope {
 public:
  NoWaitScope() { ++no_wait_depth; }
  ~NoWaitScope() { --no_wait_depth; }
  NoWaitScope(const NoWaitScope&) = delete;
  NoWaitScope& operator=(const NoWaitScope&) = delete;
  static bool Active() { return no_wait_depth > 0; }
};

// Destroys what finished calls leave behind on a thread of its own, never on the gRPC
// thread that ran their callback.
//
// Why (issue 17): gRPC 1.51 on Linux runs every client callback, and every callback
// server's reactions, on the threads of one process-wide completion queue. It creates that
// queue and its threads for the first channel or server that needs them and, when the last
// one goes, shuts the queue down, joins its threads and frees it. When the last reference to
// the last channel is dropped inside a callback, that thread tries to join itself (the
// EDEADLK is ignored), frees the queue, and then goes back to polling the freed queue:
// glibc's "double free or corruption", ASan's double free in grpc_cq_internal_unref, TSan's
// jump to a non-executable region, or a hang (grpc/grpc#37858). A call holds a reference to
// its channel (so a client may go with calls in flight), and the caller's `done` may hold
// clients: so the call's whole state is freed here instead.
//
// What it frees belongs to a client, which waits in its destructor until the releaser has
// freed every call it started (CallCount): the releaser holds nothing of a client that is
// gone, so nothing of ours is left to gRPC's threads after main (issue 17: a channel still
// reconnecting at exit crashed in OpenSSL's lock while OpenSSL's atexit cleanup ran).
//
// Thread-safety: thread-safe. The releaser and its thread live until the process exits.
class Releaser {
 public:
  // `garbage` is destroyed soon, on the releaser's thread.
  static void Release(std::shared_ptr<void> garbage) {
    static Releaser* const releaser = new Releaser();  // Never destroyed (see above).
    releaser->Push(std::move(garbage));
  }

 private:
  Releaser() {
    std::thread([this] { Run(); }).detach();
  }

  void Push(std::shared_ptr<void> garbage) {
    {
      MutexLock lock(&mutex_);
      queue_.push_back(std::move(garbage));
    }
    changed_.notify_one();
  }

  void Run() {
    NoWaitScope no_wait;  // A client freed here (held by a `done`) cannot wait for this thread.
    std::vector<std::shared_ptr<void>> batch;
    while (true) {
      {
        MutexLock lock(&mutex_);
        changed_.wait(lock.native(),
                      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return !queue_.empty(); });
        batch.swap(queue_);
      }
      batch.clear();  // The destructors run here, with no lock held.
    }
  }

  Mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::shared_ptr<void>> queue_ ABSL_GUARDED_BY(mutex_);
};

// One live unary call of a client: made when the call starts, destroyed last with the call's
// state (after its channel reference).
class CallToken {
 public:
  explicit CallToken(std::shared_ptr<GrpcAgentClient::CallCount> count);
  ~CallToken();
  CallToken(const CallToken&) = delete;
  CallToken& operator=(const CallToken&) = delete;

 private:
  const std::shared_ptr<GrpcAgentClient::CallCount> count_;
};

// One unary call's state, on the heap from the call until its callback; the Releaser frees
// it.
template <typename Request, typename Response>
struct UnaryCall {
  explicit UnaryCall(std::shared_ptr<GrpcAgentClient::CallCount> count) : token(std::move(count)) {}

  // First: destroyed last, once the channel reference below is gone.
  CallToken token;
  // Keeps the channel, and the callback queue it owns, alive until the answer.
  std::shared_ptr<grpc::Channel> channel;
  grpc::ClientContext context;
  Request request;
  Response response;
  Done<Response> done;
  std::string target;
  absl::Duration timeout;
};

// The WatchUsage stream. Owned by GrpcUsageWatch, which deletes it only after OnDone.
// Thread-safety: gRPC serialises the read reactions; Cancel() and WaitDone() may be called
// from any thread while the stream runs.
class WatchReactor final : public grpc::ClientReadReactor<v1::NodeUsage> {
 public:
  WatchReactor(std::shared_ptr<grpc::Channel> channel, std::string target,
               const v1::WatchUsageRequest& request,
               std::function<void(const v1::NodeUsage&)> on_usage,
               std::function<void(absl::Status)> on_done)
      : channel_(std::move(channel)),
        target_(std::move(target)),
        request_(request),
        on_usage_(std::move(on_usage)),
        on_done_(std::move(on_done)),
        sync_(std::make_shared<Sync>()) {}

  void Start(v1::Agent::Stub* stub) {
    stub->async()->WatchUsage(&context_, &request_, this);
    StartRead(&usage_);
    TsanHandOff(this);  // The reactions run on gRPC's threads (see bazel/tsan_annotations.h).
    StartCall();
  }

  // Safe at any time before the destructor, even after the stream ended (then a no-op).
  void Cancel() { context_.TryCancel(); }

  void WaitDone() {
    MutexLock lock(&sync_->mutex);
    sync_->changed.wait(lock.native(),
                        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_->mutex) { return sync_->done; });
  }

  void OnReadDone(bool ok) override {
    TsanTakeOver(this);
    if (!ok) return;  // The stream is ending; OnDone follows.
    {
      NoWaitScope no_wait;
      on_usage_(usage_);
    }
    TsanHandOff(this);
    StartRead(&usage_);
  }

  void OnDone(const grpc::Status& status) override {
    TsanTakeOver(this);
    {
      NoWaitScope no_wait;
      on_done_(FromGrpcStatus(status, target_, absl::InfiniteDuration()));
    }
    // Once `done` is set the owner may delete this reactor: signal through a local copy.
    std::shared_ptr<Sync> sync = sync_;
    {
      MutexLock lock(&sync->mutex);
      sync->done = true;
    }
    sync->changed.notify_all();
  }

 private:
  struct Sync {
    Mutex mutex;
    std::condition_variable changed;
    bool done ABSL_GUARDED_BY(mutex) = false;
  };

  const std::shared_ptr<grpc::Channel> channel_;
  const std::string target_;
  grpc::ClientContext context_;
  const v1::WatchUsageRequest request_;
  v1::NodeUsage usage_;  // Only touched by gRPC's serialised read reactions.
  const std::function<void(const v1::NodeUsage&)> on_usage_;
  const std::function<void(absl::Status)> on_done_;
  const std::shared_ptr<Sync> sync_;
};

class GrpcUsageWatch final : public UsageWatch {
 public:
  explicit GrpcUsageWatch(std::unique_ptr<WatchReactor> reactor) : reactor_(std::move(reactor)) {}
  ~GrpcUsageWatch() override {
    reactor_->Cancel();
    reactor_->WaitDone();
  }
  void Cancel() override { reactor_->Cancel(); }

 private:
  const std::unique_ptr<WatchReactor> reactor_;
};

}  // namespace

// Thread-safety: thread-safe.
class GrpcAgentClient::CallCount {
 public:
  void Add() ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    ++live_;
  }
  void Remove() ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    --live_;
    if (live_ == 0) zero_.notify_all();
  }
  void WaitForZero() ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    zero_.wait(lock.native(),
               [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return live_ == 0; });
  }

 private:
  Mutex mutex_;
  std::condition_variable zero_;
  int live_ ABSL_GUARDED_BY(mutex_) = 0;
};

namespace {

CallToken::CallToken(std::shared_ptr<GrpcAgentClient::CallCount> count) : count_(std::move(count)) {
  count_->Add();
}

CallToken::~CallToken() { count_->Remove(); }

}  // namespace

std::shared_ptr<grpc::Channel> CreateAgentChannel(const std::string& target,
                                                  const GrpcClientOptions& options) {
  grpc::ChannelArguments args = options.channel_args;
  if (options.keepalive_time > absl::ZeroDuration()) {
    SetDefault(args, GRPC_ARG_KEEPALIVE_TIME_MS, options.keepalive_time);
    SetDefault(args, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options.keepalive_timeout);
  }
  SetDefault(args, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, options.initial_reconnect_backoff);
  SetDefault(args, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, options.max_reconnect_backoff);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options.credentials != nullptr ? options.credentials : grpc::InsecureChannelCredentials();
  if (options.bearer_token.empty()) return grpc::CreateCustomChannel(target, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> token;
  token.push_back(std::make_unique<BearerTokenInterceptorFactory>(options.bearer_token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, credentials, args,
                                                                 std::move(token));
}

absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view target,
                            absl::Duration timeout) {
  if (status.ok()) return absl::OkStatus();
  // gRPC and absl share the canonical code numbering.
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::Status(
          code, absl::StrCat(target, ": agent unreachable (", status.error_message(), ")"));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (timeout != absl::InfiniteDuration()) {
        return absl::Status(
            code, absl::StrCat(target, ": no answer within ", absl::FormatDuration(timeout)));
      }
      break;
    default:
      break;
  }
  return absl::Status(code, absl::StrCat(target, ": ", status.error_message()));
}

GrpcAgentClient::GrpcAgentClient(std::string target, const GrpcClientOptions& options)
    : GrpcAgentClient(target, CreateAgentChannel(target, options)) {}

GrpcAgentClient::GrpcAgentClient(std::string target, std::shared_ptr<grpc::Channel> channel)
    : target_(std::move(target)),
      channel_(std::move(channel)),
      stub_(v1::Agent::NewStub(channel_)),
      calls_(std::make_shared<CallCount>()) {}

GrpcAgentClient::~GrpcAgentClient() {
  // Every call this client started is answered (each has its deadline) and freed, with its
  // channel reference, before the client is gone (see Releaser). Not where that wait could
  // block on itself or a gRPC thread: those calls are then freed by the releaser alone.
  if (!NoWaitScope::Active()) calls_->WaitForZero();
}

template <typename Request, typename Response, typename Start>
void GrpcAgentClient::Unary(const Request& request, absl::Duration timeout, Done<Response> done,
                            Start start) {
  // Two owners: this thread until `start` returns (gRPC reads the request there) and the
  // callback. The last one to let go frees the call, and never on gRPC's thread (Releaser).
  auto call = std::make_shared<UnaryCall<Request, Response>>(calls_);
  call->channel = channel_;
  call->request = request;
  call->done = std::move(done);
  call->target = target_;
  call->timeout = timeout;
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  // gRPC (uninstrumented) carries the call to its callback thread: tell TSan.
  TsanHandOff(call.get());
  start(stub_->async(), &call->context, &call->request, &call->response,
        [call](grpc::Status status) mutable {
          TsanTakeOver(call.get());
          {
            NoWaitScope no_wait;
            if (status.ok()) {
              call->done(std::move(call->response));
            } else {
              call->done(FromGrpcStatus(status, call->target, call->timeout));
            }
          }
          // Not here: this may be the channel's last reference (see Releaser).
          Releaser::Release(std::move(call));
        });
  Releaser::Release(std::move(call));
}

// Each method names its stub method once; Unary does the rest.
#define MEMLOAD_GRPC_UNARY(Method, Request, Response)                                          \
  void GrpcAgentClient::Method(const Request& request, absl::Duration timeout,                 \
                               Done<Response> done) {                                          \
    Unary<Request, Response>(request, timeout, std::move(done),                                \
                             [](auto* async, grpc::ClientContext* context, const Request* req, \
                                Response* resp, std::function<void(grpc::Status)> callback) {  \
                               async->Method(context, req, resp, std::move(callback));         \
                             });                                                               \
  }

MEMLOAD_AGENT_UNARY_RPCS(MEMLOAD_GRPC_UNARY)

#undef MEMLOAD_GRPC_UNARY

std::unique_ptr<UsageWatch> GrpcAgentClient::WatchUsage(
    const v1::WatchUsageRequest& request, std::function<void(const v1::NodeUsage&)> on_usage,
    std::function<void(absl::Status)> on_done) {
  auto reactor = std::make_unique<WatchReactor>(channel_, target_, request, std::move(on_usage),
                                                std::move(on_done));
  reactor->Start(stub_.get());
  return std::make_unique<GrpcUsageWatch>(std::move(reactor));
}

AgentClientFactory GrpcAgentClientFactory(GrpcClientOptions options) {
  struct Channels {
    GrpcClientOptions options;
    Mutex mutex;
    std::map<std::string, std::shared_ptr<grpc::Channel>> by_target ABSL_GUARDED_BY(mutex);
  };
  auto channels = std::make_shared<Channels>();
  channels->options = std::move(options);
  return [channels](const std::string& target) -> std::unique_ptr<AgentClient> {
    std::shared_ptr<grpc::Channel> channel;
    {
      MutexLock lock(&channels->mutex);
      std::shared_ptr<grpc::Channel>& slot = channels->by_target[target];
      if (slot == nullptr) slot = CreateAgentChannel(target, channels->options);
      channel = slot;
    }
    return std::make_unique<GrpcAgentClient>(target, std::move(channel));
  };
}

}  // namespace controller
}  // namespace memload
