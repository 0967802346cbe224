// GrpcAgentClient: the real AgentClient, over gRPC's callback API (`stub->async()`). One
// channel per target, created once and reused by every call; each call gets its own
// deadline from `timeout`.
//
//   AgentClientFactory factory = GrpcAgentClientFactory(GrpcClientOptions());
//   std::unique_ptr<AgentClient> agent = factory("10.0.0.5:7070");
//   agent->GetUsage(v1::GetUsageRequest(), absl::Seconds(2),
//                   [](absl::StatusOr<v1::NodeUsage> usage) { ... });
//
// Statuses keep the gRPC code; the message starts with the target, and the two transport
// failures say what happened in words a user can act on:
//   UNAVAILABLE        "10.0.0.5:7070: agent unreachable (failed to connect to ...)"
//   DEADLINE_EXCEEDED  "10.0.0.5:7070: no answer within 2s"
//   others             "10.0.0.5:7070: <the agent's message>"
//
// Callbacks (`done`, `on_usage`, `on_done`) run on gRPC's callback threads: they must not
// block, and must not destroy a UsageWatch from inside its own callbacks. A call keeps its
// channel alive until it is answered, so a client may be destroyed with calls in flight
// (their callbacks still run).
//
// Destroying a client waits until every unary call it started has been answered (each
// within its deadline), its callback has returned and its state is freed: when the
// destructor returns, nothing of the client is left to gRPC's threads, and a channel only
// this client held is destroyed (issue 17: channels left to a background thread outlived
// main and reconnected while OpenSSL's atexit cleanup ran). Two exceptions do not wait, as
// the wait could block on itself: a client destroyed inside one of this file's callbacks,
// or by the release of a call's state (a `done` holding it); their calls are freed soon
// after on a thread of this file. A UsageWatch keeps its own reference to the channel.
//
// Thread-safety: thread-safe; calls may be issued concurrently from any thread.
#ifndef MEMLOAD_CONTROLLER_GRPC_AGENT_CLIENT_H_
#define MEMLOAD_CONTROLLER_GRPC_AGENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controller/agent_client.h"
#include "grpcpp/grpcpp.h"
#include "proto/memload.grpc.pb.h"

namespace memload {
namespace controller {

struct GrpcClientOptions {
  // Transport security: plaintext by default; TLS through grpc::SslCredentials() (see
  // controller/client_security.h).
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  // HTTP/2 keepalive pings on idle connections; zero = off. The agent must permit pings
  // this frequent, or it closes the connection ("too_many_pings").
  absl::Duration keepalive_time = absl::ZeroDuration();
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // Reconnect backoff after a failed connection. gRPC's defaults (1 s growing to 120 s)
  // would make the fan-out's retries fail fast on a channel still backing off instead of
  // reconnecting. (The connect timeout itself keeps gRPC's default of 20 s.)
  absl::Duration initial_reconnect_backoff = absl::Milliseconds(100);
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
  // Any other channel argument. These win over the fields above.
  grpc::ChannelArguments channel_args;
  // Sent as "authorization: Bearer TOKEN" with every call, over TLS or plaintext (see
  // controller/bearer_token.h); "" = none.
  std::string bearer_token;
};

// The channel GrpcAgentClient uses for `target` ("host:port", as gRPC's dns: default).
std::shared_ptr<grpc::Channel> CreateAgentChannel(const std::string& target,
                                                  const GrpcClientOptions& options);

// gRPC status → absl status with the same code, as described above. `timeout` is the
// call's (for the DEADLINE_EXCEEDED text).
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view target,
                            absl::Duration timeout);

class GrpcAgentClient : public AgentClient {
 public:
  // Creates the channel now; it connects on the first call.
  explicit GrpcAgentClient(std::string target,
                           const GrpcClientOptions& options = GrpcClientOptions());
  // Uses an existing channel (shared between clients of the same target).
  GrpcAgentClient(std::string target, std::shared_ptr<grpc::Channel> channel);
  ~GrpcAgentClient() override;

  const std::string& target() const override { return target_; }
  MEMLOAD_AGENT_UNARY_RPCS(MEMLOAD_AGENT_UNARY_DECLARE_OVERRIDE)
  // No deadline: the stream lasts until cancelled, the agent ends it, or the connection
  // fails (UNAVAILABLE).
  std::unique_ptr<UsageWatch> WatchUsage(const v1::WatchUsageRequest& request,
                                         std::function<void(const v1::NodeUsage&)> on_usage,
                                         std::function<void(absl::Status)> on_done) override;

  class CallCount;  // grpc_agent_client.cc

 private:
  // Starts one unary call; `start` calls the matching stub_->async() method.
  template <typename Request, typename Response, typename Start>
  void Unary(const Request& request, absl::Duration timeout, Done<Response> done, Start start);

  const std::string target_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::Agent::Stub> stub_;
  // The unary calls started and not yet freed; the destructor waits for none.
  const std::shared_ptr<CallCount> calls_;
};

// Clients for any target; clients of the same target share one channel (cached for the
// factory's lifetime).
AgentClientFactory GrpcAgentClientFactory(GrpcClientOptions options = GrpcClientOptions());

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_GRPC_AGENT_CLIENT_H_
