#include "controller/bearer_token.h"

#include <utility>

namespace memload {
namespace controller {
namespace {

class BearerTokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string* header) : header_(header) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* const header_;  // Owned by the factory, which outlives the channel.
};

}  // namespace

BearerTokenInterceptorFactory::BearerTokenInterceptorFactory(std::string token)
    : header_("Bearer " + std::move(token)) {}

grpc::experimental::Interceptor* BearerTokenInterceptorFactory::CreateClientInterceptor(
    grpc::experimental::ClientRpcInfo*) {
  return new BearerTokenInterceptor(&header_);
}

}  // namespace controller
}  // namespace memload
