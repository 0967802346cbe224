// memload-agent's security in one process: a real AgentServer on 127.0.0.1:0 with TLS,
// mutual TLS and bearer tokens; real gRPC clients with certificates made by openssl at
// test time. Every refusal is checked for its exact status code.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/agent_server.h"
#include "agent/testing/local_agent.h"
#include "agent/testing/stock_services.pb.h"
#include "controller/client_security.h"
#include "controller/grpc_agent_client.h"
#include "core/testing/simulated_clock.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/memload.grpc.pb.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_certs.h"

namespace memload {
namespace testing {
namespace {

using ::memload::agent::CallDeadline;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFullToken[] = "full-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
constexpr char kReadOnlyToken[] = "reader-00112233445566778899aabbccddeeff";
constexpr char kWrongToken[] = "wrong-ffeeddccbbaa99887766554433221100";
constexpr char kReflection[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

// Audit lines, collected from gRPC's threads.
struct AuditLines {
  std::mutex mutex;
  std::vector<std::string> lines;  // Guarded by mutex.

  std::vector<std::string> Snapshot() {
    std::lock_guard<std::mutex> lock(mutex);
    return lines;
  }
};

class AgentSecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/pki"));
    mkdir(dir_->c_str(), 0700);
    absl::StatusOr<TestPki> pki = MakeTestPki(*dir_);
    ASSERT_THAT(pki, IsOk());
    pki_ = new TestPki(*std::move(pki));
    tokens_ = new std::string(*dir_ + "/tokens");
    WriteFile(*tokens_,
              absl::StrCat("# test tokens\n", kFullToken, "\n", kReadOnlyToken, ":read-only\n"));
  }

  // An agent on 127.0.0.1:0 with `security`; its audit lines go to audit_.
  std::unique_ptr<agent::AgentServer> StartAgent(agent::ServerSecurityOptions security) {
    agent::AgentOptions options = agent::LocalAgentOptions();
    options.node_name = "secure-node";
    options.plans.reserve_bytes = 16 << 20;
    std::shared_ptr<AuditLines> audit = audit_;
    security.audit_log = [audit](const std::string& line) {
      std::lock_guard<std::mutex> lock(audit->mutex);
      audit->lines.push_back(line);
    };
    options.security = std::move(security);
    absl::StatusOr<std::unique_ptr<agent::AgentServer>> server = agent::AgentServer::Start(options);
    EXPECT_THAT(server, IsOk());
    return server.ok() ? *std::move(server) : nullptr;
  }

  static agent::ServerSecurityOptions Tls() {
    agent::ServerSecurityOptions security;
    security.tls_cert_file = pki_->server.cert;
    security.tls_key_file = pki_->server.key;
    return security;
  }
  static agent::ServerSecurityOptions MutualTls() {
    agent::ServerSecurityOptions security = Tls();
    security.tls_client_ca_file = pki_->ca_cert;
    return security;
  }
  static agent::ServerSecurityOptions Tokens(agent::ServerSecurityOptions security = {}) {
    security.auth_token_file = *tokens_;
    return security;
  }

  // TLS channel credentials trusting `ca`, presenting `client` when given.
  static std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(
      const std::string& ca, const CertFiles* client = nullptr) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(ca);
    if (client != nullptr) {
      ssl.pem_cert_chain = ReadFile(client->cert);
      ssl.pem_private_key = ReadFile(client->key);
    }
    return grpc::SslCredentials(ssl);
  }

  static std::shared_ptr<grpc::Channel> Channel(
      const agent::AgentServer& server,
      std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials()) {
    // A fresh connection per channel: a refused handshake must not be shared.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(server.address(), credentials, args);
  }

  static void Authorize(grpc::ClientContext* context, const std::string& token) {
    context->set_deadline(CallDeadline());
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  }

  // One unary call of the agent's service as `token` (none when empty), bounded by
  // CallDeadline(); the response is dropped.
  template <typename Request, typename Response>
  static grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                           grpc::Status (v1::Agent::Stub::*method)(grpc::ClientContext*,
                                                                   const Request&, Response*),
                           const Request& request) {
    grpc::ClientContext context;
    Authorize(&context, token);
    Response response;
    return (*v1::Agent::NewStub(channel).*method)(&context, request, &response);
  }

  static grpc::Status GetUsage(const std::shared_ptr<grpc::Channel>& channel,
                               const std::string& token = "") {
    return Call(channel, token, &v1::Agent::Stub::GetUsage, v1::GetUsageRequest());
  }

  static grpc::Status StartPlan(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& token, const std::string& plan_id) {
    v1::StartPlanRequest request;
    v1::PlanSpec* spec = request.mutable_spec();
    spec->set_plan_id(plan_id);
    spec->mutable_lease()->set_seconds(60);
    v1::Phase* phase = spec->mutable_retained()->add_phases();
    phase->mutable_target()->set_bytes(1 << 20);
    phase->set_hold_forever(true);
    return Call(channel, token, &v1::Agent::Stub::StartPlan, request);
  }

  static grpc::Status StopPlan(const std::shared_ptr<grpc::Channel>& channel,
                               const std::string& token, const std::string& plan_id) {
    v1::StopPlanRequest request;
    request.set_plan_id(plan_id);
    return Call(channel, token, &v1::Agent::Stub::StopPlan, request);
  }

  static grpc::Status Health(const std::shared_ptr<grpc::Channel>& channel,
                             HealthCheckResponse::ServingStatus* serving) {
    grpc::TemplatedGenericStub<HealthCheckRequest, HealthCheckResponse> health(channel);
    grpc::ClientContext context;
    context.set_deadline(CallDeadline());
    HealthCheckRequest request;
    HealthCheckResponse response;
    std::promise<grpc::Status> done;
    health.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                     &response, [&](grpc::Status status) { done.set_value(status); });
    const grpc::Status status = done.get_future().get();
    *serving = response.status();
    return status;
  }

  // Server reflection's list of services. Each step of the stream completes by the
  // context's deadline, so this is bounded.
  static grpc::Status ListServices(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& token, std::vector<std::string>* names) {
    grpc::TemplatedGenericStub<ServerReflectionRequest, ServerReflectionResponse> stub(channel);
    grpc::ClientContext context;
    Authorize(&context, token);
    grpc::CompletionQueue queue;
    auto call = stub.PrepareCall(&context, kReflection, &queue);
    void* tag = nullptr;
    bool ok = false;
    call->StartCall(reinterpret_cast<void*>(1));
    queue.Next(&tag, &ok);
    ServerReflectionRequest list;
    list.set_list_services("*");
    call->Write(list, reinterpret_cast<void*>(2));
    queue.Next(&tag, &ok);
    ServerReflectionResponse listed;
    call->Read(&listed, reinterpret_cast<void*>(3));
    queue.Next(&tag, &ok);
    if (ok) {
      for (const auto& service : listed.list_services_response().service()) {
        names->push_back(service.name());
      }
    }
    call->WritesDone(reinterpret_cast<void*>(4));
    queue.Next(&tag, &ok);
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(5));
    queue.Next(&tag, &ok);
    queue.Shutdown();
    while (queue.Next(&tag, &ok)) {
    }
    return status;
  }

  // Every audit line, checked never to contain a token.
  std::vector<std::string> AuditLog() {
    std::vector<std::string> lines = audit_->Snapshot();
    for (const std::string& line : lines) {
      for (const char* token : {kFullToken, kReadOnlyToken, kWrongToken}) {
        EXPECT_THAT(line, Not(HasSubstr(token)));
      }
    }
    return lines;
  }

  static std::string* dir_;
  static TestPki* pki_;
  static std::string* tokens_;
  std::shared_ptr<AuditLines> audit_ = std::make_shared<AuditLines>();
};
std::string* AgentSecurityTest::dir_ = nullptr;
TestPki* AgentSecurityTest::pki_ = nullptr;
std::string* AgentSecurityTest::tokens_ = nullptr;

TEST_F(AgentSecurityTest, TlsAgentAnswersClientsThatTrustItsCa) {
  std::unique_ptr<agent::AgentServer> server = StartAgent(Tls());
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->security_summary(), HasSubstr("tls=on cert=\"CN=localhost\""));
  EXPECT_TRUE(GetUsage(Channel(*server, TlsCredentials(pki_->ca_cert))).ok());
}

TEST_F(AgentSecurityTest, WrongCaIsAHandshakeFailure) {
  std::unique_ptr<agent::AgentServer> server = StartAgent(Tls());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(GetUsage(Channel(*server, TlsCredentials(pki_->other_ca_cert))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // Nor does a plaintext client get anywhere.
  EXPECT_EQ(GetUsage(Channel(*server)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(AgentSecurityTest, AgentRefusesToStartWithAnExpiredCertificate) {
  agent::AgentOptions options = agent::LocalAgentOptions();
  options.security.tls_cert_file = pki_->expired_server.cert;
  options.security.tls_key_file = pki_->expired_server.key;
  EXPECT_THAT(agent::AgentServer::Start(options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired on")));
}

TEST_F(AgentSecurityTest, ClientRefusesAServerWithAnExpiredCertificate) {
  // A stock gRPC server: memload's agent would not start with this certificate at all.
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back(
      {ReadFile(pki_->expired_server.key), ReadFile(pki_->expired_server.cert)});
  grpc::CallbackGenericService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);

  controller::ClientSecurityOptions security;
  security.tls_ca_file = pki_->ca_cert;
  controller::GrpcClientOptions options;
  ASSERT_THAT(controller::ApplyClientSecurity(security, &options), IsOk());
  controller::GrpcAgentClient client(absl::StrCat("127.0.0.1:", port), options);
  std::promise<absl::Status> done;
  client.GetUsage(v1::GetUsageRequest(), absl::Seconds(10),
                  [&](absl::StatusOr<v1::NodeUsage> usage) { done.set_value(usage.status()); });
  EXPECT_THAT(done.get_future().get(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("agent unreachable")));
  server->Shutdown(CallDeadline());
}

TEST_F(AgentSecurityTest, MutualTlsAcceptsOnlyCertificatesOfItsCa) {
  std::unique_ptr<agent::AgentServer> server = StartAgent(MutualTls());
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->security_summary(), HasSubstr("tls=mutual"));
  EXPECT_TRUE(GetUsage(Channel(*server, TlsCredentials(pki_->ca_cert, &pki_->client))).ok());
  // No certificate, one from another CA, an expired one: refused in the handshake.
  EXPECT_EQ(GetUsage(Channel(*server, TlsCredentials(pki_->ca_cert))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(
      GetUsage(Channel(*server, TlsCredentials(pki_->ca_cert, &pki_->other_client))).error_code(),
      grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(
      GetUsage(Channel(*server, TlsCredentials(pki_->ca_cert, &pki_->expired_client))).error_code(),
      grpc::StatusCode::UNAVAILABLE);
}

TEST_F(AgentSecurityTest, CallsWithoutAValidTokenAreUnauthenticated) {
  std::unique_ptr<agent::AgentServer> server = StartAgent(Tokens());
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  const grpc::Status none = GetUsage(channel);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("requires a bearer token"));
  const grpc::Status wrong = GetUsage(channel, kWrongToken);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), AllOf(HasSubstr("not valid"), Not(HasSubstr(kWrongToken))));
  EXPECT_EQ(StartPlan(channel, kWrongToken, "intruder").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(StartPlan(channel, "", "intruder").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(GetUsage(channel, kFullToken).ok());
  EXPECT_TRUE(server->plans().List(/*include_ended=*/true).empty());

  const std::vector<std::string> audit = AuditLog();
  EXPECT_THAT(audit, Contains(HasSubstr("audit: GetUsage plan=- token=- cert=- peer=- -> "
                                        "UNAUTHENTICATED (no token)")));
  EXPECT_THAT(audit, Contains(HasSubstr("audit: StartPlan plan=- token=- cert=- peer=- -> "
                                        "UNAUTHENTICATED (invalid token)")));
}

// F8: anyone who reaches the port can provoke refusals, so their lines are rate-limited
// (agent/audit_log.h, RefusedCallAudit); the calls a token let in are all logged. Time stands
// still on a simulated clock: every refusal falls in one second.
TEST_F(AgentSecurityTest, RefusedCallsAreRateLimitedInTheAuditLogAllowedOnesNever) {
  SimulatedClock clock;
  agent::ServerSecurityOptions security = Tokens();
  security.audit_clock = &clock;
  std::unique_ptr<agent::AgentServer> server = StartAgent(security);
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(StartPlan(channel, "", "intruder").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  v1::StopPlanRequest stop;
  stop.set_plan_id("no-such-plan");
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(Call(channel, kFullToken, &v1::Agent::Stub::StopPlan, stop).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  const auto count = [](const std::vector<std::string>& lines, const std::string& part) {
    return std::count_if(lines.begin(), lines.end(),
                         [&](const std::string& line) { return absl::StrContains(line, part); });
  };
  std::vector<std::string> audit = AuditLog();
  EXPECT_EQ(count(audit,
                  "audit: StartPlan plan=- token=- cert=- peer=- -> UNAUTHENTICATED (no "
                  "token)"),
            10);
  EXPECT_EQ(count(audit, "audit: StopPlan plan=no-such-plan token=token-"), 30);
  EXPECT_EQ(count(audit, "more in the last 1s"), 0);
  // The second never ends on this clock: the count comes out as the agent stops.
  server->Shutdown(absl::Seconds(5));
  server.reset();
  audit = AuditLog();
  EXPECT_EQ(count(audit,
                  "audit: StartPlan -> UNAUTHENTICATED (no token): 20 more in the last 1s "
                  "(not logged one by one)"),
            1);
}

TEST_F(AgentSecurityTest, ReadOnlyTokenReadsButCannotChangeAnything) {
  std::unique_ptr<agent::AgentServer> server = StartAgent(Tokens());
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  EXPECT_TRUE(GetUsage(channel, kReadOnlyToken).ok());
  EXPECT_TRUE(
      Call(channel, kReadOnlyToken, &v1::Agent::Stub::ListPlans, v1::ListPlansRequest()).ok());

  const grpc::Status start = StartPlan(channel, kReadOnlyToken, "not-allowed");
  EXPECT_EQ(start.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(start.error_message(), AllOf(HasSubstr("read-only"), HasSubstr("StartPlan"),
                                           Not(HasSubstr(kReadOnlyToken))));
  EXPECT_EQ(StopPlan(channel, kReadOnlyToken, "anything").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::ResizePlanRequest resize;
  resize.set_plan_id("anything");
  EXPECT_EQ(Call(channel, kReadOnlyToken, &v1::Agent::Stub::ResizePlan, resize).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::RenewLeasesRequest renew;
  renew.add_plan_ids("anything");
  EXPECT_EQ(Call(channel, kReadOnlyToken, &v1::Agent::Stub::RenewLeases, renew).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(server->plans().List(/*include_ended=*/true).empty());
  EXPECT_THAT(AuditLog(), Contains(AllOf(HasSubstr("audit: StartPlan plan=- token=token-"),
                                         HasSubstr("-> PERMISSION_DENIED (read-only token)"))));
}

TEST_F(AgentSecurityTest, HealthAnswersWithoutTokenReflectionOnlyWithOne) {
  std::unique_ptr<agent::AgentServer> server = StartAgent(Tokens());
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel = Channel(*server);
  HealthCheckResponse::ServingStatus serving = HealthCheckResponse::UNKNOWN;
  ASSERT_TRUE(Health(channel, &serving).ok());
  EXPECT_EQ(serving, HealthCheckResponse::SERVING);

  std::vector<std::string> services;
  EXPECT_EQ(ListServices(channel, "", &services).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(services.empty());
  EXPECT_EQ(ListServices(channel, kWrongToken, &services).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(services.empty());
  ASSERT_TRUE(ListServices(channel, kReadOnlyToken, &services).ok());
  EXPECT_THAT(services, Contains("memload.v1.Agent"));
  EXPECT_THAT(services, Contains("grpc.health.v1.Health"));
}

TEST_F(AgentSecurityTest, RightCertificateAndTokenStartAndStopAPlanWithAnAuditTrail) {
  std::unique_ptr<agent::AgentServer> server = StartAgent(Tokens(MutualTls()));
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->security_summary(), HasSubstr("tls=mutual"));
  EXPECT_THAT(server->security_summary(), HasSubstr("tokens=2 (1 read-only)"));
  std::shared_ptr<grpc::Channel> channel =
      Channel(*server, TlsCredentials(pki_->ca_cert, &pki_->client));
  // A certificate alone is not enough when there are tokens.
  EXPECT_EQ(StartPlan(channel, "", "secure-plan").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(StartPlan(channel, kFullToken, "secure-plan").ok());
  ASSERT_TRUE(StopPlan(channel, kFullToken, "secure-plan").ok());
  EXPECT_EQ(StopPlan(channel, kFullToken, "no-such-plan").error_code(),
            grpc::StatusCode::NOT_FOUND);

  const std::vector<std::string> audit = AuditLog();
  const std::string who = "token=token-";
  const std::string cert = "cert=\"O=memload tests,CN=memloadctl-test\" peer=ipv4:127.0.0.1:";
  EXPECT_THAT(audit, Contains(AllOf(HasSubstr("audit: StartPlan plan=secure-plan " + who),
                                    HasSubstr(cert), HasSubstr("-> OK"))));
  EXPECT_THAT(audit, Contains(AllOf(HasSubstr("audit: StopPlan plan=secure-plan " + who),
                                    HasSubstr(cert), HasSubstr("-> OK"))));
  EXPECT_THAT(audit, Contains(AllOf(HasSubstr("audit: StopPlan plan=no-such-plan"),
                                    HasSubstr("-> NOT_FOUND"))));
  EXPECT_THAT(audit, Contains(AllOf(HasSubstr("audit: StartPlan plan=- token=- cert=\"O=memload"),
                                    HasSubstr("-> UNAUTHENTICATED (no token)"))));
  // Reads are not audited.
  EXPECT_THAT(audit, Not(Contains(HasSubstr("GetUsage"))));
}

TEST_F(AgentSecurityTest, MutatingCallsAreAuditedWithoutTokensToo) {
  std::unique_ptr<agent::AgentServer> server = StartAgent(MutualTls());
  ASSERT_NE(server, nullptr);
  std::shared_ptr<grpc::Channel> channel =
      Channel(*server, TlsCredentials(pki_->ca_cert, &pki_->client));
  ASSERT_TRUE(StartPlan(channel, "", "cert-only").ok());
  ASSERT_TRUE(StopPlan(channel, "", "cert-only").ok());
  EXPECT_THAT(AuditLog(),
              Contains(AllOf(HasSubstr("audit: StartPlan plan=cert-only token=- cert=\"O=memload"),
                             HasSubstr("-> OK"))));
}

TEST_F(AgentSecurityTest, MemloadClientWithCertificateTokenAndServerNameOverride) {
  agent::ServerSecurityOptions security = Tokens(MutualTls());
  security.tls_cert_file = pki_->named_server.cert;
  security.tls_key_file = pki_->named_server.key;
  std::unique_ptr<agent::AgentServer> server = StartAgent(security);
  ASSERT_NE(server, nullptr);

  auto usage = [&](const controller::ClientSecurityOptions& client_security) {
    controller::GrpcClientOptions options;
    EXPECT_THAT(controller::ApplyClientSecurity(client_security, &options), IsOk());
    controller::GrpcAgentClient client(server->address(), options);
    std::promise<absl::Status> done;
    client.GetUsage(v1::GetUsageRequest(), absl::Seconds(10),
                    [&](absl::StatusOr<v1::NodeUsage> got) { done.set_value(got.status()); });
    return done.get_future().get();
  };
  controller::ClientSecurityOptions client_security;
  client_security.tls_ca_file = pki_->ca_cert;
  client_security.tls_cert_file = pki_->client.cert;
  client_security.tls_key_file = pki_->client.key;
  client_security.token = kReadOnlyToken;
  // The certificate names agent.memload.test, not 127.0.0.1.
  EXPECT_THAT(usage(client_security), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("")));
  client_security.tls_server_name = "agent.memload.test";
  EXPECT_THAT(usage(client_security), IsOk());
  client_security.token.clear();
  EXPECT_THAT(usage(client_security),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("bearer token")));
}

}  // namespace
}  // namespace testing
}  // namespace memload
