// RpcCounters: how many RPCs the agent answered, by method and status code — the source
// of memload_rpcs_total. A gRPC server interceptor (RpcCountingInterceptorFactory) counts
// every call at the moment its status is sent, in one place for every service (memload's,
// health, reflection), so no handler has to remember to count.
//
//   auto counters = std::make_shared<RpcCounters>();
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
//   f.push_back(std::make_unique<RpcCountingInterceptorFactory>(counters));
//   builder.experimental().SetInterceptorCreators(std::move(f));
//   ... counters->Snapshot()[{"memload.v1.Agent/StartPlan", "OK"}] ...
//
// Thread-safety: RpcCounters is thread-safe; the factory may be used from any thread.
#ifndef MEMLOAD_AGENT_RPC_COUNTERS_H_
#define MEMLOAD_AGENT_RPC_COUNTERS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "core/sync/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"

namespace memload {
namespace agent {

class RpcCounters {
 public:
  // (method, code) → calls. Method without the leading '/' ("memload.v1.Agent/GetUsage");
  // code as gRPC spells it ("OK", "NOT_FOUND").
  using Counts = std::map<std::pair<std::string, std::string>, uint64_t>;

  void Record(absl::string_view method, grpc::StatusCode code);
  Counts Snapshot() const;

 private:
  mutable Mutex mutex_;
  Counts counts_ ABSL_GUARDED_BY(mutex_);
};

class RpcCountingInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcCountingInterceptorFactory(std::shared_ptr<RpcCounters> counters)
      : counters_(std::move(counters)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  const std::shared_ptr<RpcCounters> counters_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_RPC_COUNTERS_H_
