// FakeAgentClient: an AgentClient for unit tests, in the style of Ray's fakes. Every call
// is queued with its method name, a copy of its request, its timeout and the time it was
// made; the test looks at the queue and answers calls in the order it chooses, with the
// response or status it chooses. Bigger tests install a responder instead and need no
// manual stepping. FakeFleet groups N fakes (one per target) behind an AgentClientFactory.
//
//   FakeFleet fleet(FakeFleet::Targets(3));          // "10.0.0.1:7070" ... "10.0.0.3:7070"
//   std::thread rollout([&] { results = FanOut(fleet.clients(), call, options); });
//   ASSERT_TRUE(fleet.WaitForPending(2, absl::Seconds(5)));
//   EXPECT_EQ(fleet.Pending()[0].method, "StartPlan");
//   EXPECT_THAT(fleet.client(1).FailNext(absl::UnavailableError("down")), IsOk());
//   EXPECT_THAT(fleet.client(0).ReplyNext(response), IsOk());
//
//   // Or scripted: every call answered at once from another thread, node 2 unreachable.
//   fleet.SetResponder([](const FakeCall& call) -> FakeReply {
//     if (call.target == "10.0.0.2:7070") return absl::UnavailableError("down");
//     return FakeReply();  // the method's default response
//   }, FakeDelivery::kAsync);
//
// Callbacks never run under the fake's lock: a `done` may call back into the fake or the
// code under test. Calls still pending when the fake is destroyed are dropped (their
// callbacks never run), like an RPC that outlives its test.
//
// Thread-safety: FakeAgentClient and FakeFleet are thread-safe.
#ifndef MEMLOAD_CONTROLLER_TESTING_FAKE_AGENT_CLIENT_H_
#define MEMLOAD_CONTROLLER_TESTING_FAKE_AGENT_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "controller/agent_client.h"
#include "core/clock.h"
#include "google/protobuf/message.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

// One call a fake received (a snapshot: later answers do not change it).
struct FakeCall {
  uint64_t id = 0;     // 1, 2, ... in the order calls reached the fake (fleet-wide).
  std::string target;  // The fake client's target.
  std::string method;  // "StartPlan", "GetUsage", ..., "WatchUsage".
  std::shared_ptr<const google::protobuf::Message> request;  // A copy of the request.
  absl::Duration timeout = absl::InfiniteDuration();         // As passed by the caller.
  // When the call was made and answered (future = pending), on the fleet's clock.
  absl::Time time;
  absl::Time answered = absl::InfiniteFuture();

  bool pending() const { return answered == absl::InfiniteFuture(); }
  // The request as its concrete type; nullptr when it is another type.
  template <typename T>
  const T* RequestAs() const {
    return dynamic_cast<const T*>(request.get());
  }
};

// How to answer a call: a response (which must be the method's response type), an error
// status, or nothing yet (Hold: the call stays pending, like a node that hangs).
class FakeReply {
 public:
  // The method's default (empty) response.
  FakeReply() = default;
  // Implicit, so that responders can `return response;` or `return status;`.
  FakeReply(const google::protobuf::Message& response);  // NOLINT
  FakeReply(absl::Status status);                        // NOLINT; OK = default response.
  static FakeReply Hold();

  const absl::Status& status() const { return status_; }
  const google::protobuf::Message* response() const { return response_.get(); }
  bool hold() const { return hold_; }

 private:
  absl::Status status_;
  std::shared_ptr<const google::protobuf::Message> response_;  // Null: default response.
  bool hold_ = false;
};

// Decides the answer to each call as it arrives. Runs on the calling thread, outside the
// fake's lock.
using FakeResponder = std::function<FakeReply(const FakeCall& call)>;

enum class FakeDelivery {
  kInline,  // `done` runs inside the call itself, before it returns (the harshest case).
  kAsync,   // `done` runs later on the fake's delivery thread, in call order (like gRPC).
};

struct FakeHub;  // Shared by the fakes of one fleet; defined in the .cc.

class FakeAgentClient : public AgentClient {
 public:
  explicit FakeAgentClient(std::string target);
  // A member of a fleet: shares the fleet's call log, ids and delivery thread.
  FakeAgentClient(std::string target, std::shared_ptr<FakeHub> hub);
  ~FakeAgentClient() override;

  const std::string& target() const override { return target_; }
  MEMLOAD_AGENT_UNARY_RPCS(MEMLOAD_AGENT_UNARY_DECLARE_OVERRIDE)
  std::unique_ptr<UsageWatch> WatchUsage(const v1::WatchUsageRequest& request,
                                         std::function<void(const v1::NodeUsage&)> on_usage,
                                         std::function<void(absl::Status)> on_done) override;

  // --- Inspection (this target only) ---
  std::vector<FakeCall> Calls() const;    // Every call, oldest first.
  std::vector<FakeCall> Pending() const;  // Unanswered unary calls, oldest first.
  size_t pending_count() const;
  // Blocks until at least `n` unary calls are pending; false on timeout.
  bool WaitForPending(size_t n, absl::Duration timeout) const;

  // --- Answering (the callback runs on the calling thread before these return) ---
  // The oldest pending call. FailedPrecondition when none is pending; InvalidArgument when
  // `reply` carries a response of the wrong type (the call then stays pending).
  absl::Status ReplyNext(const FakeReply& reply = FakeReply());
  absl::Status FailNext(absl::Status status);
  // A given call (any target of the fleet). NotFound / FailedPrecondition when it does not
  // exist or was already answered.
  absl::Status Reply(uint64_t call_id, const FakeReply& reply);
  // Every pending call of this target with the same reply; returns how many.
  size_t ReplyAll(const FakeReply& reply = FakeReply());

  // --- Auto-reply: answers this target's future calls (overrides the fleet's) ---
  void SetResponder(FakeResponder responder, FakeDelivery delivery = FakeDelivery::kInline);
  void ClearResponder();

  // --- WatchUsage streams of this target ---
  size_t open_watches() const;
  // Calls `on_usage` of every open watch, on this thread.
  void SendUsage(const v1::NodeUsage& usage);
  // Ends every open watch with `status` (`on_done` runs on this thread).
  void FinishWatches(absl::Status status);

 private:
  template <typename Response>
  void Enqueue(const char* method, const google::protobuf::Message& request, absl::Duration timeout,
               Done<Response> done);

  const std::string target_;
  const std::shared_ptr<FakeHub> hub_;
};

// N fakes by target name, and a factory that hands them out.
class FakeFleet {
 public:
  // `clock` (not owned) stamps the calls: a test running the code on a SimulatedClock
  // passes the same one, so call times are simulated too.
  explicit FakeFleet(const std::vector<std::string>& targets, Clock* clock = Clock::Real());
  ~FakeFleet();

  // n distinct targets "10.0.0.1:7070", "10.0.0.2:7070", ...
  static std::vector<std::string> Targets(int n);

  size_t size() const { return clients_.size(); }
  FakeAgentClient& client(size_t i) { return *clients_.at(i); }
  // nullptr when the target is not in the fleet.
  FakeAgentClient* Find(const std::string& target);
  // Non-owning pointers, in the order given to the constructor.
  std::vector<AgentClient*> clients();
  // Clients forwarding to this fleet's fakes (the fleet must outlive them). A target the
  // fleet does not know gets a client whose every call fails with UNAVAILABLE.
  AgentClientFactory factory();

  // Fleet-wide: the default responder of every fake (a fake's own one wins).
  void SetResponder(FakeResponder responder, FakeDelivery delivery = FakeDelivery::kInline);
  void ClearResponder();
  std::vector<FakeCall> Calls() const;    // Every call of every fake, in arrival order.
  std::vector<FakeCall> Pending() const;  // Every pending unary call, in arrival order.
  size_t pending_count() const;
  // The most unary calls that were ever pending at once, fleet-wide (a parallelism gauge).
  size_t max_pending() const;
  bool WaitForPending(size_t n, absl::Duration timeout) const;
  // The oldest pending call of any fake.
  absl::Status ReplyNext(const FakeReply& reply = FakeReply());
  absl::Status FailNext(absl::Status status);
  absl::Status Reply(uint64_t call_id, const FakeReply& reply);
  size_t ReplyAll(const FakeReply& reply = FakeReply());

 private:
  std::shared_ptr<FakeHub> hub_;
  std::vector<std::unique_ptr<FakeAgentClient>> clients_;
};

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_TESTING_FAKE_AGENT_CLIENT_H_
