#include "agent/open_files_limit.h"

#include <sys/resource.h>

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Restores this process's RLIMIT_NOFILE when the test ends (a raised soft limit stays
// allowed: only the hard limit cannot go back up).
class OpenFilesLimitTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0); }
  void TearDown() override { EXPECT_EQ(setrlimit(RLIMIT_NOFILE, &saved_), 0); }

  // Sets the soft limit (the hard one stays).
  void SetSoftLimit(rlim_t soft) {
    struct rlimit changed = saved_;
    changed.rlim_cur = soft;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &changed), 0);
  }
  // The limits in force, not only those reported.
  void ExpectInForce(rlim_t soft, rlim_t hard) {
    struct rlimit now {};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
    EXPECT_EQ(now.rlim_cur, soft);
    EXPECT_EQ(now.rlim_max, hard);
  }

  struct rlimit saved_ {};
};

TEST_F(OpenFilesLimitTest, RaisesTheSoftLimitToTheHardOne) {
  if (saved_.rlim_max < 128) GTEST_SKIP() << "hard limit " << saved_.rlim_max << " too low";
  SetSoftLimit(64);

  // No cap here: the hard limit this test runs under may be above kMaxRaisedOpenFiles.
  const OpenFilesLimit limit = RaiseOpenFilesLimit(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(limit.error, "");
  EXPECT_EQ(limit.soft_before, 64u);
  EXPECT_EQ(limit.soft, saved_.rlim_max);
  EXPECT_EQ(limit.hard, saved_.rlim_max);
  ExpectInForce(saved_.rlim_max, saved_.rlim_max);
}

TEST_F(OpenFilesLimitTest, RaisesNoFurtherThanAsked) {
  if (saved_.rlim_max < 256) GTEST_SKIP() << "hard limit " << saved_.rlim_max << " too low";
  SetSoftLimit(64);

  const OpenFilesLimit limit = RaiseOpenFilesLimit(/*at_most=*/128);
  EXPECT_EQ(limit.error, "");
  EXPECT_EQ(limit.soft_before, 64u);
  EXPECT_EQ(limit.soft, 128u);
  EXPECT_EQ(limit.hard, saved_.rlim_max);
  ExpectInForce(128, saved_.rlim_max);
}

TEST_F(OpenFilesLimitTest, NeverLowersASoftLimitAboveTheCap) {
  if (saved_.rlim_max < 256) GTEST_SKIP() << "hard limit " << saved_.rlim_max << " too low";
  SetSoftLimit(200);

  const OpenFilesLimit limit = RaiseOpenFilesLimit(/*at_most=*/128);
  EXPECT_EQ(limit.error, "");
  EXPECT_EQ(limit.soft_before, 200u);
  EXPECT_EQ(limit.soft, 200u);
  ExpectInForce(200, saved_.rlim_max);
}

TEST_F(OpenFilesLimitTest, KeepsASoftLimitThatIsTheHardOne) {
  SetSoftLimit(saved_.rlim_max);

  const OpenFilesLimit limit = RaiseOpenFilesLimit();
  EXPECT_EQ(limit.error, "");
  EXPECT_EQ(limit.soft_before, saved_.rlim_max);
  EXPECT_EQ(limit.soft, saved_.rlim_max);
  EXPECT_EQ(limit.hard, saved_.rlim_max);
}

TEST(DescribeOpenFilesLimitTest, RaisedAndHighIsOneLine) {
  EXPECT_THAT(DescribeOpenFilesLimit({1024, 65536, 65536, ""}),
              ElementsAre("open files: soft limit 1024 raised to the hard limit 65536"));
}

TEST(DescribeOpenFilesLimitTest, RaisedToTheCapSaysSo) {
  EXPECT_THAT(DescribeOpenFilesLimit({1024, 65536, 1048576, ""}),
              ElementsAre("open files: soft limit 1024 raised to 65536, the most the agent asks "
                          "for (hard limit 1048576)"));
}

TEST(DescribeOpenFilesLimitTest, UnchangedAndHighIsOneLine) {
  EXPECT_THAT(DescribeOpenFilesLimit({1048576, 1048576, 1048576, ""}),
              ElementsAre("open files: soft limit 1048576, hard limit 1048576"));
}

TEST(DescribeOpenFilesLimitTest, LowLimitWarnsAndNamesTheRisk) {
  const std::vector<std::string> lines = DescribeOpenFilesLimit({1024, 1024, 1024, ""});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "open files: soft limit 1024, hard limit 1024");
  EXPECT_THAT(lines[1], StartsWith("warning: open files: a limit of 1024 is low"));
  EXPECT_THAT(lines[1], HasSubstr("stop gRPC accepting connections until the agent restarts"));
  EXPECT_THAT(lines[1], HasSubstr("at least 4096"));
}

TEST(DescribeOpenFilesLimitTest, TheWarningIsAtTheBoundOnly) {
  EXPECT_EQ(DescribeOpenFilesLimit({4095, 4095, 4095, ""}).size(), 2u);
  EXPECT_EQ(DescribeOpenFilesLimit({4096, 4096, 4096, ""}).size(), 1u);
  EXPECT_EQ(DescribeOpenFilesLimit({1024, 4096, 4096, ""}).size(), 1u);
}

TEST(DescribeOpenFilesLimitTest, AFailedRaiseIsAWarning) {
  EXPECT_THAT(
      DescribeOpenFilesLimit({1024, 1024, 65536, "setrlimit(RLIMIT_NOFILE) to 65536: EPERM"}),
      ElementsAre("open files: soft limit 1024, hard limit 65536",
                  "warning: open files: cannot raise the soft limit: setrlimit(RLIMIT_NOFILE) "
                  "to 65536: EPERM",
                  StartsWith("warning: open files: a limit of 1024 is low")));
}

TEST(DescribeOpenFilesLimitTest, AnUnreadableLimitIsAWarning) {
  EXPECT_THAT(DescribeOpenFilesLimit({0, 0, 0, "getrlimit(RLIMIT_NOFILE): EFAULT"}),
              ElementsAre("warning: open files: getrlimit(RLIMIT_NOFILE): EFAULT"));
}

TEST(DescribeOpenFilesLimitTest, UnlimitedIsNamed) {
  const uint64_t unlimited = std::numeric_limits<uint64_t>::max();
  EXPECT_THAT(DescribeOpenFilesLimit({1024, 65536, unlimited, ""}),
              ElementsAre("open files: soft limit 1024 raised to 65536, the most the agent asks "
                          "for (hard limit unlimited)"));
}

}  // namespace
}  // namespace agent
}  // namespace memload
