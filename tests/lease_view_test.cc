// Leases and results made visible, with memloadctl against a real agent (and real worker
// processes) on loopback: start prints the lease and warns when nothing will renew it,
// resize prints the target the agent now heads for (regression: it printed the old one),
// usage lists a plan that ended by lease expiry with that outcome.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

class LeaseViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Subprocess> agent =
        Subprocess::Start({AgentBinary(), "--listen=127.0.0.1:0", "--node-name=lease-node",
                           "--reserve=64MiB", "--default-lease=1m"});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_.emplace(*std::move(agent));
    address_ = WaitForAgentAddress(*agent_, absl::Seconds(10));
    ASSERT_FALSE(address_.empty()) << agent_->Stderr();
  }
  void TearDown() override {
    if (!address_.empty()) Ctl({"stop", "--all"});
  }

  CommandResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), CtlBinary());
    args.push_back("--targets=" + address_);
    return RunCommand(args, absl::Seconds(30));
  }

  std::optional<Subprocess> agent_;
  std::string address_;
};

TEST_F(LeaseViewTest, StartShowsTheLeaseAndWarnsWhenNothingRenewsIt) {
  CommandResult start =
      Ctl({"start", "--kind=retained", "--target=16MiB", "--hold=10m", "--plan-id=held"});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  EXPECT_THAT(start.out, HasSubstr("LEASE"));
  EXPECT_THAT(start.out, HasSubstr("EXPIRES"));
  EXPECT_THAT(start.out, HasSubstr("1m00s"));  // The agent's --default-lease.
  EXPECT_THAT(start.err, HasSubstr("warning: plan held runs for 10m00s but its lease is 1m00s"));
  EXPECT_THAT(start.out, ::testing::Not(HasSubstr("warning:")));  // stdout: the table alone.
  EXPECT_THAT(start.err, HasSubstr("memloadctl run"));            // What to use instead.

  // Within its lease: no warning; JSON carries the (empty) warnings too.
  CommandResult fits = Ctl({"start", "--kind=retained", "--target=16MiB", "--hold=5s", "--lease=1m",
                            "--plan-id=short", "--output=json"});
  ASSERT_EQ(fits.exit_code, 0) << fits.out << fits.err;
  EXPECT_THAT(fits.out, HasSubstr("\"warnings\": []"));
  EXPECT_THAT(fits.out, HasSubstr("\"leaseExpires\""));
}

// Regression: resize printed the target the plan had before (the worker picks the new one
// up from its pipe a moment after the agent answers).
TEST_F(LeaseViewTest, ResizePrintsTheNewTarget) {
  CommandResult start = Ctl({"start", "--kind=retained", "--target=32MiB", "--hold=forever",
                             "--lease=1m", "--plan-id=resized"});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    CommandResult table = Ctl({"resize", "--plan-id=resized", "--target=24MiB"});
    ASSERT_EQ(table.exit_code, 0) << table.out << table.err;
    // PLAN STATE TARGET: the new target right after the state (PAYLOAD may still be 32 MiB).
    EXPECT_THAT(table.out, ContainsRegex("resized +[a-z_]+ +24 MiB")) << table.out;
    CommandResult json = Ctl({"resize", "--plan-id=resized", "--target=40MiB", "--output=json"});
    ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
    EXPECT_THAT(json.out, HasSubstr("\"targetBytes\":\"41943040\"")) << json.out;
  }
}

TEST_F(LeaseViewTest, UsageListsAPlanThatEndedWithItsOutcome) {
  CommandResult start = Ctl({"start", "--kind=retained", "--target=8MiB", "--hold=forever",
                             "--lease=1s", "--plan-id=expiring"});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  // The agent stops it a second later; usage must then still show it, ended.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  CommandResult usage;
  while (absl::Now() < deadline) {
    usage = Ctl({"usage"});
    if (usage.out.find("lease_expired") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(200));  // Polling for the agent's state.
  }
  EXPECT_EQ(usage.exit_code, 0) << usage.err;
  EXPECT_THAT(usage.out, HasSubstr("expiring"));
  EXPECT_THAT(usage.out, HasSubstr("lease_expired"));
  EXPECT_THAT(usage.out, HasSubstr("ENDED"));
  EXPECT_THAT(usage.out, HasSubstr("the lease of 1s ran out"));  // Why, in the ERROR column.
  CommandResult json = Ctl({"usage", "--output=json"});
  EXPECT_THAT(json.out, HasSubstr("\"state\":\"PLAN_STATE_LEASE_EXPIRED\""));
}

}  // namespace
}  // namespace testing
}  // namespace memload
