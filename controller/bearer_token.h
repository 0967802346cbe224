// BearerTokenInterceptorFactory: a gRPC client interceptor that adds
// "authorization: Bearer TOKEN" to every call on a channel.
//
// Why an interceptor and not grpc::AccessTokenCredentials: gRPC refuses to send call
// credentials over a plaintext channel, and memload-agent accepts tokens over plaintext too
// (on loopback, or behind a TLS-terminating proxy). Over TLS the token is encrypted like
// everything else.
//
//   std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> f;
//   f.push_back(std::make_unique<BearerTokenInterceptorFactory>(token));
//   auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
//       target, credentials, args, std::move(f));
//
// Thread-safety: immutable; the factory and its interceptors may be used from any thread.
#ifndef MEMLOAD_CONTROLLER_BEARER_TOKEN_H_
#define MEMLOAD_CONTROLLER_BEARER_TOKEN_H_

#include <string>

#include "grpcpp/support/client_interceptor.h"

namespace memload {
namespace controller {

class BearerTokenInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(std::string token);
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override;

 private:
  const std::string header_;  // "Bearer TOKEN".
};

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_BEARER_TOKEN_H_
