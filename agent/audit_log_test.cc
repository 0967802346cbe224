// FormatAuditLine and RefusedCallAudit (on simulated time); the interceptor and the token
// check's lines are tested against a real server in tests/agent_security_test.cc.
#include "agent/audit_log.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "core/testing/simulated_clock.h"
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

// The lines a RefusedCallAudit wrote, and a bounded wait for more (its thread writes the
// summaries of windows that are over).
class Lines {
 public:
  AuditLog Sink() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(line);
      changed_.notify_all();
    };
  }
  std::vector<std::string> Snapshot() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  // Waits (30 s of real time at most) until there are `count` lines; returns them all.
  std::vector<std::string> WaitFor(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(30), [&] { return lines_.size() >= count; });
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
};

AuditRecord Refused(const std::string& method,
                    grpc::StatusCode code = grpc::StatusCode::UNAUTHENTICATED,
                    const std::string& detail = "no token") {
  AuditRecord record;
  record.method = method;
  record.code = code;
  record.detail = detail;
  return record;
}

constexpr char kStartPlan[] = "/memload.v1.Agent/StartPlan";
constexpr char kRefusedLine[] =
    "audit: StartPlan plan=- token=- cert=- peer=- -> UNAUTHENTICATED (no token)";

TEST(RefusedCallAuditTest, TenLinesASecondThenOneSummaryWithoutAnotherCall) {
  SimulatedClock clock;
  Lines lines;
  RefusedCallAudit audit(lines.Sink(), &clock);
  for (int i = 0; i < 20'010; ++i) audit.Log(Refused(kStartPlan));
  EXPECT_EQ(lines.Snapshot(), std::vector<std::string>(10, kRefusedLine));
  // Nothing more arrives; the second ends and the thread writes the count.
  clock.Advance(absl::Seconds(1));
  std::vector<std::string> all = lines.WaitFor(11);
  ASSERT_EQ(all.size(), 11u);
  EXPECT_EQ(all[10],
            "audit: StartPlan -> UNAUTHENTICATED (no token): 20,000 more in the last 1s (not "
            "logged one by one)");
  // Written once: a later window with nothing suppressed writes no summary.
  audit.Log(Refused(kStartPlan));
  clock.Advance(absl::Seconds(5));
  audit.Log(Refused(kStartPlan));
  EXPECT_EQ(lines.Snapshot().size(), 13u);
}

TEST(RefusedCallAuditTest, ANewSecondStartsFreshAndTheDestructorWritesAnOpenWindowsCount) {
  SimulatedClock clock;
  Lines lines;
  {
    RefusedCallAudit audit(lines.Sink(), &clock);
    for (int i = 0; i < 12; ++i) audit.Log(Refused(kStartPlan));
    clock.Advance(absl::Milliseconds(999));
    audit.Log(Refused(kStartPlan));  // Still the first second: counted.
    clock.Advance(absl::Milliseconds(1));
    for (int i = 0; i < 11; ++i) audit.Log(Refused(kStartPlan));
    const std::vector<std::string> seen = lines.Snapshot();
    ASSERT_EQ(seen.size(), 21u);
    EXPECT_EQ(seen[10],
              "audit: StartPlan -> UNAUTHENTICATED (no token): 3 more in the last 1s (not "
              "logged one by one)");
    for (int i = 11; i < 21; ++i) EXPECT_EQ(seen[i], kRefusedLine) << i;
  }  // The second window is open (its second is not over): the destructor writes its count.
  const std::vector<std::string> all = lines.Snapshot();
  ASSERT_EQ(all.size(), 22u);
  EXPECT_EQ(all[21],
            "audit: StartPlan -> UNAUTHENTICATED (no token): 1 more in the last 1s (not logged "
            "one by one)");
}

TEST(RefusedCallAuditTest, CloseWritesTheCountsStillDueEveryTime) {
  SimulatedClock clock;
  Lines lines;
  RefusedCallAudit audit(lines.Sink(), &clock);
  for (int i = 0; i < 12; ++i) audit.Log(Refused(kStartPlan));
  audit.Close();
  audit.Close();  // Nothing more to say.
  std::vector<std::string> seen = lines.Snapshot();
  ASSERT_EQ(seen.size(), 11u);
  EXPECT_EQ(seen[10],
            "audit: StartPlan -> UNAUTHENTICATED (no token): 2 more in the last 1s (not logged "
            "one by one)");
  audit.Log(Refused(kStartPlan));  // The same second, closed or not: counted.
  audit.Close();
  seen = lines.Snapshot();
  ASSERT_EQ(seen.size(), 12u);
  EXPECT_EQ(seen[11],
            "audit: StartPlan -> UNAUTHENTICATED (no token): 1 more in the last 1s (not logged "
            "one by one)");
}

TEST(RefusedCallAuditTest, EachMethodAndOutcomeHasItsOwnTenLines) {
  SimulatedClock clock;
  Lines lines;
  RefusedCallAudit audit(lines.Sink(), &clock);
  for (int i = 0; i < 15; ++i) {
    audit.Log(Refused(kStartPlan));
    audit.Log(Refused(kStartPlan, grpc::StatusCode::UNAUTHENTICATED, "invalid token"));
    audit.Log(Refused(kStartPlan, grpc::StatusCode::PERMISSION_DENIED, "read-only token"));
    audit.Log(Refused("/memload.v1.Agent/StopPlan"));
    audit.Log(Refused("/memload.v1.Agent/GetUsage"));
  }
  EXPECT_EQ(lines.Snapshot().size(), 50u);
  EXPECT_EQ(audit.keys(), 5u);
  clock.Advance(absl::Seconds(1));
  const std::vector<std::string> all = lines.WaitFor(55);
  ASSERT_EQ(all.size(), 55u);
  EXPECT_THAT(
      std::vector<std::string>(all.begin() + 50, all.end()),
      ::testing::UnorderedElementsAre(
          "audit: StartPlan -> UNAUTHENTICATED (no token): 5 more in the last 1s (not logged "
          "one by one)",
          "audit: StartPlan -> UNAUTHENTICATED (invalid token): 5 more in the last 1s (not "
          "logged one by one)",
          "audit: StartPlan -> PERMISSION_DENIED (read-only token): 5 more in the last 1s (not "
          "logged one by one)",
          "audit: StopPlan -> UNAUTHENTICATED (no token): 5 more in the last 1s (not logged one "
          "by one)",
          "audit: GetUsage -> UNAUTHENTICATED (no token): 5 more in the last 1s (not logged one "
          "by one)"));
}

TEST(RefusedCallAuditTest, MethodsTheAgentDoesNotServeShareOneKey) {
  SimulatedClock clock;
  Lines lines;
  RefusedCallAudit audit(lines.Sink(), &clock);
  for (int i = 0; i < 1000; ++i) {
    audit.Log(Refused("/memload.v1.Agent/NoSuch" + std::to_string(i)));
    audit.Log(Refused("/x.Y/" + std::to_string(i)));
  }
  audit.Log(Refused("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  EXPECT_EQ(audit.keys(), 2u);
  const std::vector<std::string> seen = lines.Snapshot();
  ASSERT_EQ(seen.size(), 11u);
  // The lines written one by one still name the method the client sent.
  EXPECT_THAT(seen[0], ::testing::StartsWith("audit: NoSuch0 plan=-"));
  EXPECT_THAT(seen[1], ::testing::StartsWith("audit: /x.Y/0 plan=-"));
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(lines.WaitFor(12).back(),
            "audit: (other methods) -> UNAUTHENTICATED (no token): 1,990 more in the last 1s "
            "(not logged one by one)");
}

TEST(RefusedCallAuditTest, KindsPastTheCapShareOneKey) {
  SimulatedClock clock;
  Lines lines;
  RefusedCallAudit audit(lines.Sink(), &clock);
  // Reasons the token check does not give, as a check added later might.
  for (int kind = 0; kind < 1000; ++kind) {
    for (int i = 0; i < 2; ++i) {
      audit.Log(Refused(kStartPlan, grpc::StatusCode::PERMISSION_DENIED,
                        "reason " + std::to_string(kind)));
    }
  }
  EXPECT_EQ(audit.keys(), RefusedCallAudit::kMaxKeys + 1);
  // 64 kinds logged both calls each, the rest 10 lines then counted.
  EXPECT_EQ(lines.Snapshot().size(), 64u * 2 + 10);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(lines.WaitFor(64 * 2 + 11).back(),
            "audit: (refusals past the cap of kinds): 1,862 more in the last 1s (not logged "
            "one by one)");
}

}  // namespace
}  // namespace agent
}  // namespace memload
