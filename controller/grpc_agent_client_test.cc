#include "controller/grpc_agent_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/sync/mutex.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/memload.grpc.pb.h"
#include "tests/testing/loopback_port.h"

namespace memload {
namespace controller {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(10);

// Streams `count` usage messages (agent_rss_bytes 1, 2, ...), then ends the stream, or,
// when `hold`, keeps it open until the client cancels or the server shuts down.
class UsageWriter final : public grpc::ServerWriteReactor<v1::NodeUsage> {
 public:
  UsageWriter(int count, bool hold) : count_(count), hold_(hold) { Next(); }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      FinishOnce(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
      return;
    }
    Next();
  }
  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (sent_ < count_) {
      usage_.set_agent_rss_bytes(++sent_);
      StartWrite(&usage_);
    } else if (!hold_) {
      FinishOnce(grpc::Status::OK);
    }
  }
  // OnCancel may run concurrently with OnWriteDone: Finish exactly once.
  void FinishOnce(const grpc::Status& status) {
    MutexLock lock(&mutex_);
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  const int count_;
  const bool hold_;
  int sent_ = 0;  // Only touched by serialised write reactions (and the constructor).
  v1::NodeUsage usage_;
  Mutex mutex_;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
};

// GetUsage answers, StartPlan refuses, GetNodeInfo never answers (until FinishHeld), and
// WatchUsage streams; everything else is UNIMPLEMENTED.
class TestAgent final : public v1::Agent::CallbackService {
 public:
  grpc::ServerUnaryReactor* GetUsage(grpc::CallbackServerContext* context,
                                     const v1::GetUsageRequest*, v1::NodeUsage* response) override {
    response->mutable_node()->set_node_name("test-node");
    response->mutable_meminfo()->set_total_bytes(uint64_t{1} << 30);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* StartPlan(grpc::CallbackServerContext* context,
                                      const v1::StartPlanRequest*,
                                      v1::StartPlanResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "would cross --max-memory (1 GiB)"));
    return reactor;
  }

  grpc::ServerUnaryReactor* GetNodeInfo(grpc::CallbackServerContext* context,
                                        const v1::GetNodeInfoRequest*, v1::NodeInfo*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    MutexLock lock(&mutex_);
    held_.push_back(reactor);
    return reactor;
  }

  grpc::ServerWriteReactor<v1::NodeUsage>* WatchUsage(grpc::CallbackServerContext*,
                                                      const v1::WatchUsageRequest*) override {
    return new UsageWriter(watch_count.load(), watch_hold.load());
  }

  void FinishHeld() {
    MutexLock lock(&mutex_);
    for (grpc::ServerUnaryReactor* reactor : held_) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "test over"));
    }
    held_.clear();
  }

  std::atomic<int> watch_count{3};
  std::atomic<bool> watch_hold{false};

 private:
  Mutex mutex_;
  std::vector<grpc::ServerUnaryReactor*> held_ ABSL_GUARDED_BY(mutex_);
};

// Collects one asynchronous answer.
template <typename T>
class Answer {
 public:
  Done<T> callback() {
    return [this](absl::StatusOr<T> result) { promise_.set_value(std::move(result)); };
  }
  absl::StatusOr<T> Get() {
    if (future_.wait_for(absl::ToChronoNanoseconds(kWait)) != std::future_status::ready) {
      return absl::InternalError("test: no callback");
    }
    return future_.get();
  }

 private:
  std::promise<absl::StatusOr<T>> promise_;
  std::future<absl::StatusOr<T>> future_ = promise_.get_future();
};

// Watch callbacks, gathered for the test thread.
struct WatchLog {
  Mutex mutex;
  std::condition_variable changed;
  std::vector<uint64_t> rss ABSL_GUARDED_BY(mutex);
  bool done ABSL_GUARDED_BY(mutex) = false;
  absl::Status status ABSL_GUARDED_BY(mutex);

  std::function<void(const v1::NodeUsage&)> on_usage() {
    return [this](const v1::NodeUsage& usage) {
      MutexLock lock(&mutex);
      rss.push_back(usage.agent_rss_bytes());
      changed.notify_all();
    };
  }
  std::function<void(absl::Status)> on_done() {
    return [this](absl::Status final_status) {
      MutexLock lock(&mutex);
      done = true;
      status = std::move(final_status);
      changed.notify_all();
    };
  }
  bool WaitFor(const std::function<bool()>& condition) {
    MutexLock lock(&mutex);
    return changed.wait_for(lock.native(), absl::ToChronoNanoseconds(kWait), condition);
  }
};

class GrpcAgentClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&agent_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = absl::StrCat("127.0.0.1:", port);
    client_ = std::make_unique<GrpcAgentClient>(target_);
  }

  void TearDown() override {
    agent_.FinishHeld();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  // A watch the agent keeps open after its first usage, once that usage has arrived
  // (null, and the test failed, when it never did).
  std::unique_ptr<UsageWatch> HeldWatch(WatchLog* log) {
    agent_.watch_count = 1;
    agent_.watch_hold = true;
    std::unique_ptr<UsageWatch> watch =
        client_->WatchUsage(v1::WatchUsageRequest(), log->on_usage(), log->on_done());
    const bool first = log->WaitFor(
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log->mutex) { return log->rss.size() == 1; });
    EXPECT_TRUE(first) << "no usage within " << kWait;
    if (!first) watch.reset();
    return watch;
  }

  TestAgent agent_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
  std::unique_ptr<GrpcAgentClient> client_;
};

TEST_F(GrpcAgentClientTest, ReturnsTheResponse) {
  Answer<v1::NodeUsage> answer;
  client_->GetUsage(v1::GetUsageRequest(), absl::Seconds(5), answer.callback());
  absl::StatusOr<v1::NodeUsage> usage = answer.Get();
  ASSERT_THAT(usage, IsOk());
  EXPECT_EQ(usage->node().node_name(), "test-node");
  EXPECT_EQ(usage->meminfo().total_bytes(), uint64_t{1} << 30);
  EXPECT_EQ(client_->target(), target_);
}

TEST_F(GrpcAgentClientTest, AgentErrorKeepsItsCodeAndNamesTheTarget) {
  Answer<v1::StartPlanResponse> answer;
  client_->StartPlan(v1::StartPlanRequest(), absl::Seconds(5), answer.callback());
  EXPECT_THAT(answer.Get(), StatusIs(absl::StatusCode::kResourceExhausted,
                                     target_ + ": would cross --max-memory (1 GiB)"));
}

TEST_F(GrpcAgentClientTest, UnimplementedMethod) {
  Answer<v1::ListPlansResponse> answer;
  client_->ListPlans(v1::ListPlansRequest(), absl::Seconds(5), answer.callback());
  EXPECT_THAT(answer.Get(), StatusIs(absl::StatusCode::kUnimplemented, StartsWith(target_ + ": ")));
}

TEST_F(GrpcAgentClientTest, DeadlineExceededSaysHowLongItWaited) {
  Answer<v1::NodeInfo> answer;
  const absl::Time start = absl::Now();
  client_->GetNodeInfo(v1::GetNodeInfoRequest(), absl::Milliseconds(200), answer.callback());
  EXPECT_THAT(answer.Get(),
              StatusIs(absl::StatusCode::kDeadlineExceeded, target_ + ": no answer within 200ms"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
}

TEST_F(GrpcAgentClientTest, UnreachableAgent) {
  const std::string closed = absl::StrCat("127.0.0.1:", testing::FreeLoopbackPort());
  GrpcAgentClient client(closed);
  Answer<v1::NodeUsage> answer;
  client.GetUsage(v1::GetUsageRequest(), absl::Seconds(5), answer.callback());
  EXPECT_THAT(answer.Get(), StatusIs(absl::StatusCode::kUnavailable,
                                     StartsWith(closed + ": agent unreachable (")));
}

TEST_F(GrpcAgentClientTest, ConcurrentCallsShareTheChannel) {
  constexpr int kCalls = 50;
  std::vector<std::unique_ptr<Answer<v1::NodeUsage>>> answers;
  for (int i = 0; i < kCalls; ++i) {
    answers.push_back(std::make_unique<Answer<v1::NodeUsage>>());
    client_->GetUsage(v1::GetUsageRequest(), absl::Seconds(5), answers.back()->callback());
  }
  for (auto& answer : answers) EXPECT_THAT(answer->Get(), IsOk());
}

TEST_F(GrpcAgentClientTest, CallOutlivesItsClient) {
  Answer<v1::NodeInfo> answer;
  client_->GetNodeInfo(v1::GetNodeInfoRequest(), absl::Milliseconds(100), answer.callback());
  client_.reset();
  EXPECT_THAT(answer.Get(), StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("100ms")));
}

// Issue 17. No server and no other channel in the process: the call, answered after its
// client is gone, holds the process's last channel. gRPC 1.51 runs the callback on a thread
// of the process-wide callback queue that the last channel takes down with it: freed on that
// thread, it joined itself and freed the queue it went on polling ("double free or
// corruption", ASan's double free in grpc_cq_internal_unref, a hang, or TSan's "PC is at a
// non-executable region"). Every round takes down and brings back that queue.
TEST(GrpcAgentClientLifetimeTest, CallHoldingTheLastChannelEndsCleanly) {
  // Accepts connections (the kernel's backlog) but never speaks: each call waits out its
  // deadline.
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 64), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string target = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    auto client = std::make_unique<GrpcAgentClient>(target);
    Answer<v1::NodeInfo> answer;
    client->GetNodeInfo(v1::GetNodeInfoRequest(), absl::Milliseconds(200), answer.callback());
    client.reset();
    EXPECT_THAT(answer.Get(),
                StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("no answer")));
  }
  close(listener);
}

// Runs `work` on a thread of its own; false when it has not returned within kWait (then the
// thread is left behind, blocked).
bool ReturnsInTime(std::function<void()> work) {
  auto returned = std::make_shared<std::promise<void>>();
  std::future<void> future = returned->get_future();
  std::thread([work = std::move(work), returned] {
    work();
    returned->set_value();
  }).detach();
  return future.wait_for(absl::ToChronoNanoseconds(kWait)) == std::future_status::ready;
}

// Issue 17: once a client is destroyed, nothing it made is left to another thread: the
// channel only it held is gone with every call's state. Before, the calls' states (and
// with them the channel) were freed "soon" on a background thread, which could be after
// main returned: a channel still reconnecting then crashed in OpenSSL's lock while
// OpenSSL's atexit cleanup ran (agent_lifecycle_test under TSan).
TEST_F(GrpcAgentClientTest, DestroyedClientLeavesNoChannelBehind) {
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::shared_ptr<grpc::Channel> channel = CreateAgentChannel(target_, GrpcClientOptions());
    const std::weak_ptr<grpc::Channel> alive = channel;
    auto client = std::make_unique<GrpcAgentClient>(target_, std::move(channel));
    Answer<v1::NodeUsage> answer;
    client->GetUsage(v1::GetUsageRequest(), absl::Seconds(5), answer.callback());
    ASSERT_THAT(answer.Get(), IsOk());
    client.reset();
    EXPECT_TRUE(alive.expired());
  }
}

// The same with a call still in flight: the destructor waits for its answer (the deadline
// here), and the callback still runs.
TEST_F(GrpcAgentClientTest, DestroyingAClientWaitsForItsCallsInFlight) {
  std::shared_ptr<grpc::Channel> channel = CreateAgentChannel(target_, GrpcClientOptions());
  const std::weak_ptr<grpc::Channel> alive = channel;
  auto client = std::make_unique<GrpcAgentClient>(target_, std::move(channel));
  Answer<v1::NodeInfo> answer;
  client->GetNodeInfo(v1::GetNodeInfoRequest(), absl::Milliseconds(200), answer.callback());
  client.reset();
  EXPECT_TRUE(alive.expired());
  EXPECT_THAT(answer.Get(), StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("200ms")));
}

// A client destroyed inside its own call's callback cannot wait for that call: it does not.
TEST_F(GrpcAgentClientTest, ClientDestroyedInItsOwnCallbackDoesNotWaitOnItself) {
  GrpcAgentClient* client = new GrpcAgentClient(target_);
  std::promise<void> destroyed;
  client->GetUsage(v1::GetUsageRequest(), absl::Seconds(5), [&](absl::StatusOr<v1::NodeUsage>) {
    delete client;
    destroyed.set_value();
  });
  EXPECT_EQ(destroyed.get_future().wait_for(absl::ToChronoNanoseconds(kWait)),
            std::future_status::ready);
}

// A client held by another call's `done` is destroyed where call states are freed; it must
// not wait there for its own call in flight (that call is freed on the same thread).
TEST_F(GrpcAgentClientTest, ClientHeldByACallbackIsFreedWithoutWaitingOnItself) {
  auto inner = std::make_shared<std::unique_ptr<GrpcAgentClient>>(
      std::make_unique<GrpcAgentClient>(target_));
  Answer<v1::NodeInfo> inner_answer;
  (*inner)->GetNodeInfo(v1::GetNodeInfoRequest(), absl::Milliseconds(300), inner_answer.callback());
  auto outer = std::make_unique<GrpcAgentClient>(target_);
  Answer<v1::NodeUsage> outer_answer;
  Done<v1::NodeUsage> reply = outer_answer.callback();
  outer->GetUsage(v1::GetUsageRequest(), absl::Seconds(5),
                  [inner = std::move(inner), reply](absl::StatusOr<v1::NodeUsage> usage) {
                    reply(std::move(usage));
                  });
  EXPECT_THAT(outer_answer.Get(), IsOk());
  EXPECT_THAT(inner_answer.Get(),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("300ms")));
  // Waits for the outer call's release, which came after the inner client's.
  EXPECT_TRUE(ReturnsInTime([client = outer.release()] { delete client; }));
}

TEST_F(GrpcAgentClientTest, FactoryClientsWork) {
  AgentClientFactory factory = GrpcAgentClientFactory();
  std::unique_ptr<AgentClient> first = factory(target_);
  std::unique_ptr<AgentClient> second = factory(target_);  // Same channel.
  Answer<v1::NodeUsage> a;
  Answer<v1::NodeUsage> b;
  first->GetUsage(v1::GetUsageRequest(), absl::Seconds(5), a.callback());
  second->GetUsage(v1::GetUsageRequest(), absl::Seconds(5), b.callback());
  EXPECT_THAT(a.Get(), IsOk());
  EXPECT_THAT(b.Get(), IsOk());
  EXPECT_EQ(first->target(), target_);
}

TEST_F(GrpcAgentClientTest, WatchUsageStreamsUntilTheAgentEndsIt) {
  agent_.watch_count = 3;
  WatchLog log;
  std::unique_ptr<UsageWatch> watch =
      client_->WatchUsage(v1::WatchUsageRequest(), log.on_usage(), log.on_done());
  ASSERT_TRUE(log.WaitFor([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log.mutex) { return log.done; }));
  MutexLock lock(&log.mutex);
  EXPECT_EQ(log.rss, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_THAT(log.status, IsOk());
}

TEST_F(GrpcAgentClientTest, WatchUsageCancel) {
  WatchLog log;
  std::unique_ptr<UsageWatch> watch = HeldWatch(&log);
  ASSERT_NE(watch, nullptr);
  watch->Cancel();
  ASSERT_TRUE(log.WaitFor([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log.mutex) { return log.done; }));
  MutexLock lock(&log.mutex);
  EXPECT_THAT(log.status, StatusIs(absl::StatusCode::kCancelled, StartsWith(target_)));
}

TEST_F(GrpcAgentClientTest, DestroyingAWatchEndsItFirst) {
  WatchLog log;
  std::unique_ptr<UsageWatch> watch = HeldWatch(&log);
  ASSERT_NE(watch, nullptr);
  watch.reset();
  MutexLock lock(&log.mutex);  // on_done has run: no waiting needed.
  EXPECT_TRUE(log.done);
  EXPECT_EQ(log.status.code(), absl::StatusCode::kCancelled);
}

TEST_F(GrpcAgentClientTest, WatchUsageOfAnUnreachableAgent) {
  GrpcAgentClient client(absl::StrCat("127.0.0.1:", testing::FreeLoopbackPort()));
  WatchLog log;
  std::unique_ptr<UsageWatch> watch =
      client.WatchUsage(v1::WatchUsageRequest(), log.on_usage(), log.on_done());
  ASSERT_TRUE(log.WaitFor([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log.mutex) { return log.done; }));
  MutexLock lock(&log.mutex);
  EXPECT_THAT(log.status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("agent unreachable")));
  EXPECT_TRUE(log.rss.empty());
}

TEST(FromGrpcStatusTest, MapsCodesAndMessages) {
  EXPECT_THAT(FromGrpcStatus(grpc::Status::OK, "a:1", absl::Seconds(2)), IsOk());
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "no plan x"), "a:1",
                             absl::Seconds(2)),
              StatusIs(absl::StatusCode::kNotFound, "a:1: no plan x"));
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"),
                             "10.0.0.5:7070", absl::Seconds(2)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, "10.0.0.5:7070: no answer within 2s"));
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"),
                             "10.0.0.5:7070", absl::Seconds(2)),
              StatusIs(absl::StatusCode::kUnavailable,
                       "10.0.0.5:7070: agent unreachable (connection refused)"));
}

}  // namespace
}  // namespace controller
}  // namespace memload
