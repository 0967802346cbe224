// The helpers' own contracts: Eventually's bound and its last look, the files round trip,
// /proc figures of this process, a cgroup made and removed, a loopback port.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/files.h"
#include "tests/testing/loopback_port.h"
#include "tests/testing/process_memory.h"
#include "tests/testing/sizes.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_cgroup.h"

namespace memload {
namespace testing {
namespace {

TEST(EventuallyTest, ReturnsAsSoonAsTheConditionHolds) {
  int calls = 0;
  EXPECT_TRUE(Eventually([&] { return ++calls == 3; }));
  EXPECT_EQ(calls, 3);
}

TEST(EventuallyTest, GivesUpAfterTheBoundWithTheLastValue) {
  const absl::Time start = absl::Now();
  int calls = 0;
  EXPECT_FALSE(Eventually([&] { return ++calls < 0; }, absl::Milliseconds(20)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  EXPECT_GE(calls, 2);
}

TEST(EventuallyTest, LooksOnceEvenWithNoTimeLeft) {
  EXPECT_TRUE(Eventually([] { return true; }, absl::ZeroDuration()));
}

TEST(SizesTest, Units) {
  EXPECT_EQ(kKiB, 1024u);
  EXPECT_EQ(kMiB, 1024u * 1024u);
  EXPECT_EQ(kGiB, 1024u * kMiB);
  EXPECT_DOUBLE_EQ(ToMiB(3 * kMiB / 2), 1.5);
}

TEST(FilesTest, RoundTripUnderTheTestsTempDir) {
  const std::string path = TestTempPath("round-trip");
  EXPECT_EQ(path.rfind(TestTempDir(), 0), 0u);
  ASSERT_TRUE(WriteFile(path, std::string("a\0b\n", 4)));
  EXPECT_EQ(ReadFile(path), std::string("a\0b\n", 4));
  EXPECT_EQ(ReadFile(TestTempPath("does-not-exist")), "");
  EXPECT_FALSE(WriteFile(TestTempPath("no-such-dir/file"), "x"));
}

TEST(ProcessMemoryTest, ThisProcessAndAGoneOne) {
  std::vector<char> block(16 * kMiB, 1);  // Touched: resident.
  EXPECT_GE(ResidentOf(getpid()), 16 * kMiB);
  EXPECT_GE(RssOf(getpid()), ResidentOf(getpid()));
  EXPECT_TRUE(Alive(getpid()));
  EXPECT_FALSE(Alive(0));
  EXPECT_FALSE(Alive(1 << 30));  // Above any pid_max.
  EXPECT_EQ(ResidentOf(1 << 30), 0u);
}

TEST(ProcessMemoryTest, ProcStatSplitsAfterTheCommandAndCountsFaults) {
  const std::optional<ProcStat> stat = ReadProcStat(getpid());
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->command, "testing_test");
  ASSERT_GE(stat->fields.size(), 8u);
  EXPECT_EQ(stat->fields[0], "R");  // This thread is running while it reads.
  EXPECT_EQ(stat->fields[1], std::to_string(getppid()));
  EXPECT_FALSE(ReadProcStat(1 << 30).has_value());
  // Fresh pages are faulted in on first touch (4,096 of 4 KiB, or 8 huge pages).
  const uint64_t before = MinorFaultsOf(getpid());
  std::vector<char> block(16 * kMiB, 1);
  EXPECT_GE(MinorFaultsOf(getpid()), before + 8) << block[kMiB];
  EXPECT_EQ(MinorFaultsOf(1 << 30), 0u);
}

TEST(LoopbackPortTest, AFreePort) {
  const int port = FreeLoopbackPort();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

TEST(ChildEnvironmentTest, MemloadBinariesLeaveWithoutTsansExitSleep) {
  const std::vector<std::string> env = {"HOME=/root", "TSAN_OPTIONS=halt_on_error=1"};
  const std::vector<std::string> amended = {"HOME=/root",
                                            "TSAN_OPTIONS=halt_on_error=1:atexit_sleep_ms=0"};
  EXPECT_EQ(ChildEnvironment({CtlBinary(), "usage"}, env), amended);
  EXPECT_EQ(ChildEnvironment({AgentBinary(), "--listen=127.0.0.1:0"}, env), amended);
  // memloadctl under /usr/bin/env (security_process_test) is memloadctl all the same.
  EXPECT_EQ(ChildEnvironment({"/usr/bin/env", "-u", "MEMLOAD_TOKEN", CtlBinary()}, env), amended);
  // Anything else keeps the test's environment as it is; so does an explicit choice.
  EXPECT_EQ(ChildEnvironment({"/usr/bin/tmux", "kill-server"}, env), env);
  EXPECT_EQ(ChildEnvironment({WorkerBinary()}, env), env);
  const std::vector<std::string> chosen = {"TSAN_OPTIONS=atexit_sleep_ms=50"};
  EXPECT_EQ(ChildEnvironment({CtlBinary()}, chosen), chosen);
  const std::vector<std::string> none = {"HOME=/root"};
  EXPECT_EQ(ChildEnvironment({CtlBinary()}, none), none);
}

TEST(ChildEnvironmentTest, TheChildGetsIt) {
  const char* before = std::getenv("TSAN_OPTIONS");
  const std::string saved = before != nullptr ? before : "";
  setenv("TSAN_OPTIONS", "halt_on_error=1", /*overwrite=*/1);
  // A shell standing in for memloadctl: CtlBinary() is only its $0 here.
  CommandResult printed =
      RunCommand({"/bin/sh", "-c", "printf %s \"$TSAN_OPTIONS\"", CtlBinary()}, absl::Seconds(10));
  CommandResult other =
      RunCommand({"/bin/sh", "-c", "printf %s \"$TSAN_OPTIONS\""}, absl::Seconds(10));
  if (before != nullptr) {
    setenv("TSAN_OPTIONS", saved.c_str(), /*overwrite=*/1);
  } else {
    unsetenv("TSAN_OPTIONS");
  }
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(printed.out, "halt_on_error=1:atexit_sleep_ms=0");
  EXPECT_EQ(other.out, "halt_on_error=1");
}

TEST(TestCgroupTest, MadeWithItsLimitAndRemoved) {
  std::string dir;
  {
    absl::StatusOr<TestCgroup> cgroup = TestCgroup::Create("helper", 64 * kMiB);
    if (!cgroup.ok()) GTEST_SKIP() << cgroup.status();
    dir = cgroup->dir();
    const std::string limit_file =
        dir + (cgroup->version() == 1 ? "/memory.limit_in_bytes" : "/memory.max");
    EXPECT_EQ(ReadFile(limit_file), "67108864\n");
    EXPECT_EQ(cgroup->Usage(), 0u);
    EXPECT_EQ(cgroup->OomKills(), 0u);
    absl::StatusOr<TestCgroup> second = TestCgroup::Create("helper", 64 * kMiB);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_NE(second->dir(), dir);  // Two of one name in one process are two cgroups.
  }
  struct stat info;
  EXPECT_NE(stat(dir.c_str(), &info), 0);
}

}  // namespace
}  // namespace testing
}  // namespace memload
