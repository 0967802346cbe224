// FormatAuditLine; the interceptor itself is tested against a real server in
// tests/agent_security_test.cc.
#include "agent/audit_log.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace agent {
namespace {

TEST(AuditLogTest, OneLineWithWhoWhatWhichAndOutcome) {
  AuditRecord record;
  record.method = "/memload.v1.Agent/StartPlan";
  record.plan_ids = {"drill-1"};
  record.token_name = "token-1a2b";
  record.cert_subject = "CN=memloadctl,O=ops";
  record.peer = "ipv4:10.0.0.9:51234";
  EXPECT_EQ(FormatAuditLine(record),
            "audit: StartPlan plan=drill-1 token=token-1a2b cert=\"CN=memloadctl,O=ops\" "
            "peer=ipv4:10.0.0.9:51234 -> OK");
}

TEST(AuditLogTest, UnknownFieldsAreDashesAndRefusalsSayWhy) {
  AuditRecord record;
  record.method = "/memload.v1.Agent/StopPlan";
  record.code = grpc::StatusCode::PERMISSION_DENIED;
  record.detail = "read-only token";
  EXPECT_EQ(FormatAuditLine(record),
            "audit: StopPlan plan=- token=- cert=- peer=- -> PERMISSION_DENIED (read-only token)");
  record.method = "/other.Service/Call";
  EXPECT_THAT(FormatAuditLine(record), ::testing::StartsWith("audit: /other.Service/Call "));
}

TEST(AuditLogTest, ClientChosenTextCannotForgeALine) {
  AuditRecord record;
  record.method = "/memload.v1.Agent/StartPlan";
  record.plan_ids = {"x -> OK\naudit: StopPlan plan=y"};
  const std::string line = FormatAuditLine(record);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_THAT(line, ::testing::HasSubstr("plan=\"x -> OK\\naudit: StopPlan plan=y\""));
}

TEST(AuditLogTest, ManyPlansStayOneReadableLine) {
  AuditRecord record;
  record.method = "/memload.v1.Agent/RenewLeases";
  for (int i = 0; i < 20; ++i) record.plan_ids.push_back("p" + std::to_string(i));
  EXPECT_THAT(
      FormatAuditLine(record),
      ::testing::HasSubstr("plan=p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,p10,p11,p12,p13,p14,p15,(+4) "));
}

}  // namespace
}  // namespace agent
}  // namespace memload
