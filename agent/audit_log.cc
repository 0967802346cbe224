#include "agent/audit_log.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/base/quoted.h"
#include "google/protobuf/descriptor.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/server_context.h"
#include "proto/memload.pb.h"

namespace memload {
namespace agent {
namespace {

using grpc::experimental::InterceptionHookPoints;

// A RenewLeases of many plans still makes one readable line.
constexpr size_t kMaxPlanIds = 16;

// Longer than any valid plan id, peer or certificate subject: not written whole.
constexpr size_t kMaxPlainField = 256;

// A value as one word of the line; a client's value that is not plain, or is longer than any
// valid one, is quoted (escaped, and cut: a 1 MB plan id makes a short line).
std::string Field(absl::string_view value) {
  if (value.empty()) return "-";
  if (value.size() > kMaxPlainField) return Quoted(value);
  for (char c : value) {
    const bool plain = absl::ascii_isalnum(c) || c == '.' || c == '_' || c == ':' || c == '/' ||
                       c == '@' || c == '-';
    if (!plain) return Quoted(value);
  }
  return std::string(value);
}

std::vector<std::string> PlanIdsOf(absl::string_view method, const void* message) {
  if (method == "/memload.v1.Agent/StartPlan") {
    return {static_cast<const v1::StartPlanRequest*>(message)->spec().plan_id()};
  }
  if (method == "/memload.v1.Agent/ResizePlan") {
    return {static_cast<const v1::ResizePlanRequest*>(message)->plan_id()};
  }
  if (method == "/memload.v1.Agent/StopPlan") {
    return {static_cast<const v1::StopPlanRequest*>(message)->plan_id()};
  }
  if (method == "/memload.v1.Agent/RenewLeases") {
    const auto& ids = static_cast<const v1::RenewLeasesRequest*>(message)->plan_ids();
    return {ids.begin(), ids.end()};
  }
  return {};  // A method added later: audited, without plan ids until named here.
}

// One mutating call: remembers its plan ids, writes the line as its status goes out.
class AuditInterceptor final : public grpc::experimental::Interceptor {
 public:
  AuditInterceptor(grpc::experimental::ServerRpcInfo* info, const AccessPolicy* policy,
                   const AuditLog* log)
      : info_(info), policy_(policy), log_(log) {
    record_.method = info->method();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      if (const void* message = methods->GetRecvMessage(); message != nullptr) {
        record_.plan_ids = PlanIdsOf(record_.method, message);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::ServerContextBase* context = info_->server_context();
      if (policy_ != nullptr) {
        const auto& metadata = context->client_metadata();
        const auto header = metadata.find("authorization");
        if (header != metadata.end()) {
          record_.token_name =
              policy_->NameOf(absl::string_view(header->second.data(), header->second.size()));
        }
      }
      if (const auto auth = context->auth_context(); auth != nullptr) {
        for (const grpc::string_ref& subject :
             auth->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME)) {
          record_.cert_subject.assign(subject.data(), subject.size());
        }
      }
      record_.peer = context->peer();
      const grpc::Status status = methods->GetSendStatus();
      record_.code = status.error_code();
      (*log_)(FormatAuditLine(record_));
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* const info_;
  const AccessPolicy* const policy_;  // May be null.
  const AuditLog* const log_;
  AuditRecord record_;  // gRPC runs one call's hook points one at a time.
};

// The method as a key's first part: the printed name of a method the agent serves, else
// one name for all others (a client chooses it: the key set stays bounded).
constexpr absl::string_view kOtherMethods = "(other methods)";

std::string KeyMethod(absl::string_view method) {
  if (method == "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" ||
      method == "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") {
    return std::string(method);
  }
  if (absl::ConsumePrefix(&method, "/memload.v1.Agent/")) {
    static const google::protobuf::ServiceDescriptor* const service =
        v1::StartPlanRequest::descriptor()->file()->FindServiceByName("Agent");
    if (service != nullptr && service->FindMethodByName(std::string(method)) != nullptr) {
      return std::string(method);
    }
  }
  return std::string(kOtherMethods);
}

// Every refusal of a kind first seen past RefusedCallAudit::kMaxKeys.
std::tuple<std::string, int, std::string> OverflowKey() { return {"", -1, ""}; }

// 19990 -> "19,990".
std::string WithThousands(int64_t n) {
  std::string digits = absl::StrCat(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

}  // namespace

std::string FormatAuditLine(const AuditRecord& record) {
  absl::string_view method = record.method;
  const size_t slash = method.rfind('/');
  if (absl::StartsWith(method, "/memload.v1.Agent/")) method.remove_prefix(slash + 1);
  std::vector<std::string> plans;
  for (size_t i = 0; i < record.plan_ids.size() && i < kMaxPlanIds; ++i) {
    plans.push_back(Field(record.plan_ids[i]));
  }
  if (record.plan_ids.size() > kMaxPlanIds) {
    plans.push_back(absl::StrCat("(+", record.plan_ids.size() - kMaxPlanIds, ")"));
  }
  std::string line = absl::StrCat(
      "audit: ", Field(method), " plan=", plans.empty() ? "-" : absl::StrJoin(plans, ","),
      " token=", Field(record.token_name), " cert=", Field(record.cert_subject),
      " peer=", Field(record.peer), " -> ",
      absl::StatusCodeToString(static_cast<absl::StatusCode>(record.code)));
  if (!record.detail.empty()) absl::StrAppend(&line, " (", record.detail, ")");
  return line;
}

AuditInterceptorFactory::AuditInterceptorFactory(std::shared_ptr<const AccessPolicy> policy,
                                                 AuditLog log)
    : policy_(std::move(policy)), log_(std::move(log)) {}

grpc::experimental::Interceptor* AuditInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (!log_ || info->method() == nullptr || !IsMutatingMethod(info->method())) return nullptr;
  return new AuditInterceptor(info, policy_.get(), &log_);
}

RefusedCallAudit::RefusedCallAudit(AuditLog log, Clock* clock)
    : log_(std::move(log)), clock_(clock), thread_([this] { Run(); }) {}

RefusedCallAudit::~RefusedCallAudit() { Close(); }

void RefusedCallAudit::Close() {
  MutexLock lock(&mutex_);
  if (!stopping_) {
    stopping_ = true;
    wake_.notify_all();
    lock.Unlock();
    thread_.join();
    lock.Lock();
  }
  // Without the clock: it may be gone once the server is.
  FlushEnded(absl::InfiniteFuture(), /*all=*/true);
}

void RefusedCallAudit::Log(const AuditRecord& record) {
  MutexLock lock(&mutex_);
  const absl::Time now = clock_->Now();
  FlushEnded(now, /*all=*/false);
  Key key(KeyMethod(record.method), static_cast<int>(record.code), record.detail);
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    if (windows_.size() >= kMaxKeys) key = OverflowKey();  // Created past the cap: one more.
    it = windows_.try_emplace(std::move(key), Window{now}).first;
  }
  Window& window = it->second;
  // Over (its summary written above), or the wall clock stepped back past its start.
  if (now >= window.start + absl::Seconds(1) || now < window.start) window = Window{now};
  if (window.logged < kLinesPerSecond) {
    ++window.logged;
    log_(FormatAuditLine(record));
  } else if (window.suppressed++ == 0) {
    rearm_ = true;  // A summary is due at window.start + 1s.
    wake_.notify_all();
  }
}

size_t RefusedCallAudit::keys() {
  MutexLock lock(&mutex_);
  return windows_.size();
}

void RefusedCallAudit::FlushEnded(absl::Time now, bool all) {
  for (auto& [key, window] : windows_) {
    if (window.suppressed > 0 && (all || now >= window.start + absl::Seconds(1))) {
      WriteSummary(key, window);
    }
  }
}

void RefusedCallAudit::WriteSummary(const Key& key, Window& window) {
  const auto& [method, code, detail] = key;
  std::string line;
  if (key == OverflowKey()) {
    line = "audit: (refusals past the cap of kinds)";
  } else {
    line = absl::StrCat("audit: ", method, " -> ",
                        absl::StatusCodeToString(static_cast<absl::StatusCode>(code)));
    if (!detail.empty()) absl::StrAppend(&line, " (", detail, ")");
  }
  absl::StrAppend(&line, ": ", WithThousands(window.suppressed),
                  " more in the last 1s (not logged one by one)");
  log_(line);
  window.suppressed = 0;
}

void RefusedCallAudit::Run() {
  MutexLock lock(&mutex_);
  while (!stopping_) {
    FlushEnded(clock_->Now(), /*all=*/false);
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [key, window] : windows_) {
      if (window.suppressed > 0) next = std::min(next, window.start + absl::Seconds(1));
    }
    rearm_ = false;
    clock_->WaitUntil(wake_, lock.native(), next, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return stopping_ || rearm_;
    });
  }
}

}  // namespace agent
}  // namespace memload
