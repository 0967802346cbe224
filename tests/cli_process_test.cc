// memloadctl and memload-agent as a user types them, no agent needed: help, version,
// did-you-mean, exit codes — and the argv bug of issue 12.6 through the real binary.
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kTimeout = absl::Seconds(20);

CommandResult Ctl(std::vector<std::string> args) {
  args.insert(args.begin(), CtlBinary());
  return RunCommand(args, kTimeout);
}

CommandResult Agent(std::vector<std::string> args) {
  args.insert(args.begin(), AgentBinary());
  return RunCommand(args, kTimeout);
}

TEST(CliProcessTest, MemloadctlHelpAndVersion) {
  CommandResult help = Ctl({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Commands:"));
  CommandResult start = Ctl({"start", "-h"});
  EXPECT_EQ(start.exit_code, 0);
  EXPECT_THAT(start.out, HasSubstr("--block-size=SIZE"));
  EXPECT_THAT(start.out, Not(HasSubstr("Flags from")));  // Not absl's dump.
  CommandResult version = Ctl({"version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(Ctl({"--version"}).out, version.out);
  EXPECT_THAT(version.out, StartsWith("memloadctl "));
  CommandResult typo = Ctl({"strat"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_THAT(typo.err, StartsWith("memloadctl: unknown command \"strat\" (did you mean start?)"));
}

// issue 12.6: `--for=1s --for=2s` read freed memory (argv pointers into a reallocated
// static vector<string>) and printed heap garbage. Now: exit 2, both values quoted intact.
TEST(CliProcessTest, ForGivenTwiceIsAUsageErrorNotGarbage) {
  CommandResult run = Ctl({"run", "--targets=127.0.0.1:1", "--kind=retained", "--target=1MiB",
                           "--for=1s", "--for=2s", "--for=3s"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.err, "memloadctl run: --for given twice (\"1s\", then \"2s\"): give it once\n");
}

TEST(CliProcessTest, AgentHelpVersionAndTypos) {
  CommandResult help = Agent({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("--listen=VALUE"));
  EXPECT_THAT(help.out, HasSubstr("--max-memory=VALUE"));
  EXPECT_THAT(help.out, HasSubstr("(default 127.0.0.1:7070)"));
  EXPECT_EQ(Agent({"-h"}).out, help.out);
  CommandResult version = Agent({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, StartsWith("memload-agent "));
  CommandResult typo = Agent({"--lisen=127.0.0.1:0"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_THAT(typo.err, HasSubstr("unknown flag --lisen (did you mean --listen?)"));
  CommandResult value = Agent({"--default-lease=soon"});
  EXPECT_EQ(value.exit_code, 2);
  EXPECT_THAT(value.err, HasSubstr("--default-lease=\"soon\""));
}

}  // namespace
}  // namespace testing
}  // namespace memload
