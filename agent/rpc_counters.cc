#include "agent/rpc_counters.h"

#include "absl/status/status.h"
#include "absl/strings/strip.h"

namespace memload {
namespace agent {
namespace {

// One per call: counts it once, when the server sends its status.
class CountingInterceptor final : public grpc::experimental::Interceptor {
 public:
  CountingInterceptor(std::string method, RpcCounters* counters)
      : method_(std::move(method)), counters_(counters) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      counters_->Record(method_, methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  RpcCounters* const counters_;
};

}  // namespace

void RpcCounters::Record(absl::string_view method, grpc::StatusCode code) {
  // absl::StatusCode mirrors grpc::StatusCode value for value, names included.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  MutexLock lock(&mutex_);
  ++counts_[{std::string(method), std::move(name)}];
}

RpcCounters::Counts RpcCounters::Snapshot() const {
  MutexLock lock(&mutex_);
  return counts_;
}

grpc::experimental::Interceptor* RpcCountingInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const char* method = info->method() != nullptr ? info->method() : "unknown";
  return new CountingInterceptor(std::string(absl::StripPrefix(method, "/")), counters_.get());
}

}  // namespace agent
}  // namespace memload
