// FanOut: one call on many agents at once, with bounded parallelism, a timeout per
// attempt, and retries with exponential backoff for transient failures of idempotent calls.
// Every target gets a result, in target order: a failed node never hides the others.
//
//   FanOutOptions options;
//   options.parallelism = 32;
//   options.timeout = absl::Seconds(5);
//   options.idempotent = true;  // read-only: safe to retry
//   std::vector<TargetResult<v1::NodeUsage>> usage =
//       FanOut(clients, Rpc(&AgentClient::GetUsage, v1::GetUsageRequest()), options);
//   for (const auto& node : usage) {
//     if (!node.response.ok()) std::cerr << node.response.status() << "\n";
//   }
//
// FanOut blocks the calling thread until every target has its result (fine for a CLI), but
// uses no thread per target: the clients' async callbacks feed a counter and a condition
// variable, and the calling thread issues calls, schedules retries and enforces timeouts.
//
// Thread-safety: FanOut may run on several threads at once (each call is independent), but
// never on a client callback thread: it blocks until callbacks arrive.
#ifndef MEMLOAD_CONTROLLER_FANOUT_H_
#define MEMLOAD_CONTROLLER_FANOUT_H_

#include <any>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/agent_client.h"
#include "core/cancel_signal.h"
#include "core/clock.h"

namespace memload {
namespace controller {

// Backoff before retry k (k = 1, 2, ...): min(max_backoff, initial_backoff *
// multiplier^(k-1)), scaled by a random factor in [1 - jitter, 1 + jitter] (so that many
// controllers, or many targets, do not retry in lockstep), capped at max_backoff again.
struct RetryPolicy {
  int max_attempts = 3;  // Including the first; 1 = no retries.
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(2);
  double multiplier = 2.0;
  double jitter = 0.2;  // 0..1.
};

struct FanOutOptions {
  // Calls in flight at once; 0 = AutoParallelism(number of targets); a negative value is 1.
  // A target waiting for a retry holds no slot.
  int parallelism = 32;
  // Deadline of each attempt (passed to the client; a retry gets a fresh one).
  absl::Duration timeout = absl::Seconds(10);
  // The caller's promise that the call may safely run twice. Only then are UNAVAILABLE and
  // DEADLINE_EXCEEDED retried (StartPlan qualifies thanks to its plan_id).
  bool idempotent = false;
  RetryPolicy retry;
  // A client that has not called back this long after its timeout gets DEADLINE_EXCEEDED
  // anyway, and its late answer is ignored: a lost callback cannot hang the CLI.
  absl::Duration watchdog_grace = absl::Seconds(1);
  // Once more than this many targets have failed for good, no further target is started
  // (they end NOT attempted, ABORTED); calls in flight still finish. -1 = never stop.
  int stop_after_failures = -1;
  // When cancelled: no further targets or retries start (they end CANCELLED, or with their
  // last error); calls in flight are still awaited, so that the caller learns what started.
  // Not owned; may be null.
  CancelSignal* cancel = nullptr;
  // The clock of backoffs, the watchdog and the results' times (timeouts themselves are
  // the client's). Not owned; null = Clock::Real(). A `cancel` signal runs on the same one.
  Clock* clock = nullptr;
};

template <typename Response>
struct TargetResult {
  std::string target;
  absl::StatusOr<Response> response = absl::UnknownError("no result");
  int attempts = 0;                         // 0 = never attempted (cancelled or stopped).
  absl::Time start = absl::InfinitePast();  // When the first attempt started.
  absl::Duration latency;                   // From the first attempt's start to the final answer.

  bool attempted() const { return attempts > 0; }
};

// Issues one asynchronous call on `client` with `timeout`; `done` must run exactly once.
template <typename Response>
using CallFn =
    std::function<void(AgentClient& client, absl::Duration timeout, Done<Response> done)>;

// UNAVAILABLE or DEADLINE_EXCEEDED: the kinds of failure a retry may cure.
bool IsRetryable(const absl::Status& status);

// The backoff before retry `retry` (1 = the first retry), without jitter.
absl::Duration BackoffWithoutJitter(const RetryPolicy& policy, int retry);

// Calls in flight for `targets` targets when FanOutOptions::parallelism is 0 (memloadctl's
// default): targets / 8, at least 256 and at most 4096. A fan-out over N targets is about
// N / parallelism round trips deep: over 10,000 agents a warm `usage` at 256 in flight was
// latency-bound (about 2x a raw gRPC fan-out), at 1,024 within 1.1x; a call in flight costs
// a few KiB and no thread (README "Fleets of 10,000 and 65,000 targets").
int AutoParallelism(size_t targets);

namespace fanout_internal {

// The engine works on type-erased responses so that it is compiled once, in fanout.cc.
struct RawResult {
  std::string target;
  absl::Status status;
  std::any value;  // The Response when status is OK.
  int attempts = 0;
  absl::Time start = absl::InfinitePast();
  absl::Duration latency;
};
using RawDone = std::function<void(absl::Status status, std::any value)>;
using RawCallFn = std::function<void(AgentClient& client, absl::Duration timeout, RawDone done)>;

std::vector<RawResult> RunFanOut(const std::vector<AgentClient*>& clients, const RawCallFn& call,
                                 const FanOutOptions& options);

template <typename Response>
RawCallFn Erase(CallFn<Response> call) {
  return [call = std::move(call)](AgentClient& client, absl::Duration timeout, RawDone done) {
    call(client, timeout, [done = std::move(done)](absl::StatusOr<Response> response) {
      if (response.ok()) {
        done(absl::OkStatus(), std::any(*std::move(response)));
      } else {
        done(response.status(), std::any());
      }
    });
  };
}

template <typename Response>
TargetResult<Response> Restore(RawResult raw) {
  TargetResult<Response> result;
  result.target = std::move(raw.target);
  if (raw.status.ok()) {
    result.response = std::any_cast<Response>(std::move(raw.value));
  } else {
    result.response = std::move(raw.status);
  }
  result.attempts = raw.attempts;
  result.start = raw.start;
  result.latency = raw.latency;
  return result;
}

}  // namespace fanout_internal

// Runs `call` on every client (non-owning; null entries are not allowed) and returns one
// result per client, in the same order.
template <typename Response>
std::vector<TargetResult<Response>> FanOut(const std::vector<AgentClient*>& clients,
                                           CallFn<Response> call, const FanOutOptions& options) {
  std::vector<fanout_internal::RawResult> raw = fanout_internal::RunFanOut(
      clients, fanout_internal::Erase<Response>(std::move(call)), options);
  std::vector<TargetResult<Response>> results;
  results.reserve(raw.size());
  for (auto& one : raw) results.push_back(fanout_internal::Restore<Response>(std::move(one)));
  return results;
}

// An AgentClient method as a fan-out call, the same `request` to every client:
//   FanOut(clients, Rpc(&AgentClient::GetUsage, v1::GetUsageRequest()), options);
template <typename Request, typename Response>
CallFn<Response> Rpc(void (AgentClient::*method)(const Request&, absl::Duration, Done<Response>),
                     Request request) {
  return [method, request = std::move(request)](AgentClient& client, absl::Duration timeout,
                                                Done<Response> done) {
    (client.*method)(request, timeout, std::move(done));
  };
}

// The same with a request of each client's own: `request_for(client)` (called on the
// fan-out's thread, once per attempt) makes it.
template <typename Request, typename Response, typename MakeRequest>
CallFn<Response> RpcEach(void (AgentClient::*method)(const Request&, absl::Duration,
                                                     Done<Response>),
                         MakeRequest request_for) {
  return [method, request_for = std::move(request_for)](AgentClient& client, absl::Duration timeout,
                                                        Done<Response> done) {
    (client.*method)(request_for(client), timeout, std::move(done));
  };
}

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_FANOUT_H_
