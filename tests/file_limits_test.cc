// Issue 12.7: every file the binaries read has a limit. /dev/zero (endless) and a 200 MB
// file given where a token, target list, labels or a recording belongs: each binary exits
// 2 at once naming the flag, instead of reading for ~10 s and dying of std::bad_alloc
// (or, for a 200 MB token file, sending it).
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A 200 MB file of zeros that takes no disk (sparse).
std::string HugeFile() {
  const std::string path = TestTempPath("huge-200MB");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(ftruncate(fd, 200'000'000), 0);
  close(fd);
  return path;
}

struct Case {
  std::vector<std::string> argv;
  std::string flag;  // What the error names.
};

void ExpectRefusedAtOnce(const Case& c) {
  SCOPED_TRACE(absl::StrJoin(c.argv, " "));
  const absl::Time start = absl::Now();
  const CommandResult result = RunCommand(c.argv, absl::Seconds(120));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_THAT(result.err, AllOf(HasSubstr(c.flag), Not(HasSubstr("bad_alloc"))));
  EXPECT_THAT(result.err, Not(HasSubstr("listening on")));
  // Reading stops at the limit (at most 16 MiB): ~0.2 s of CPU. No wall-clock bound here:
  // on a machine loaded by other work the same run took from 10 ms to 3 s. Without the
  // limit the run ended in std::bad_alloc (exit 134), which the exit code above rejects.
  std::printf("[figure] %s: exit %d in %s\n", absl::StrJoin(c.argv, " ").c_str(), result.exit_code,
              absl::FormatDuration(took).c_str());
}

TEST(FileLimitsTest, MemloadctlRefusesEndlessAndHugeFiles) {
  for (const std::string& file : {std::string("/dev/zero"), HugeFile()}) {
    ExpectRefusedAtOnce({{CtlBinary(), "usage", "--targets=@" + file}, "--targets=@"});
    ExpectRefusedAtOnce(
        {{CtlBinary(), "usage", "--targets=127.0.0.1:1", "--token-file=" + file}, "--token-file"});
  }
}

TEST(FileLimitsTest, AgentRefusesEndlessAndHugeFiles) {
  for (const std::string& file : {std::string("/dev/zero"), HugeFile()}) {
    ExpectRefusedAtOnce(
        {{AgentBinary(), "--listen=127.0.0.1:0", "--auth-token-file=" + file}, "token file"});
    ExpectRefusedAtOnce(
        {{AgentBinary(), "--listen=127.0.0.1:0", "--labels-file=" + file}, "--labels-file"});
  }
}

}  // namespace
}  // namespace testing
}  // namespace memload
