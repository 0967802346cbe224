// memloadctl and memload-agent as a user types them, no agent needed: help, version,
// did-you-mean, exit codes, Ctrl-C/SIGTERM against an agent that never answers — and the
// argv bug of issue 12.6 through the real binary.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kTimeout = absl::Seconds(20);
// How soon memloadctl must end once it should: it leaves with _exit (milliseconds); the
// rest is slack for two loaded cores and the sanitizers.
constexpr absl::Duration kPromptly = absl::Seconds(3);

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

// An "agent" that never answers: a socket on 127.0.0.1:0 that listens but never accepts.
// The kernel completes the connection; gRPC then waits for an HTTP/2 greeting that never
// comes, so every call waits out its deadline.
class SilentAgent {
 public:
  SilentAgent() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        listen(fd_, 16) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      target_ = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));
    }
  }
  ~SilentAgent() {
    if (fd_ >= 0) close(fd_);
  }
  SilentAgent(const SilentAgent&) = delete;
  SilentAgent& operator=(const SilentAgent&) = delete;

  // "" when the socket could not be set up.
  const std::string& target() const { return target_; }

  // Whether a client has connected (a connection waits in the backlog) within `timeout`:
  // memloadctl's first call is out, and so its signal thread is long in place.
  bool AwaitConnection(absl::Duration timeout) const {
    pollfd readable{fd_, POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
    return poll(&readable, 1, ms) == 1 && (readable.revents & POLLIN) != 0;
  }

 private:
  const int fd_;
  std::string target_;
};

const char* SignalName(int signal) { return signal == SIGINT ? "SIGINT" : "SIGTERM"; }

// The issue-12 follow-up: `usage` waiting on an agent that does not answer ended only at
// its --timeout, whatever the first SIGTERM said. It started nothing, so either signal now
// ends it at once: exit 130 (one rule for SIGINT and SIGTERM), a line on stderr, no table.
TEST(CliProcessTest, FirstSignalEndsAUsageWaitingOnASilentAgentAtOnce) {
  for (int signal : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(SignalName(signal));
    SilentAgent agent;
    ASSERT_FALSE(agent.target().empty());
    absl::StatusOr<Subprocess> usage = Subprocess::Start(
        {CtlBinary(), "usage", "--targets=" + agent.target(), "--timeout=60s", "--retries=0"});
    ASSERT_TRUE(usage.ok()) << usage.status();
    ASSERT_TRUE(agent.AwaitConnection(kTimeout)) << usage->Stderr();
    const absl::Time signalled = absl::Now();
    usage->Signal(signal);
    const std::optional<int> code = usage->Wait(kPromptly);
    const absl::Duration took = absl::Now() - signalled;
    ASSERT_TRUE(code.has_value()) << "usage still running " << kPromptly << " after "
                                  << SignalName(signal) << " (its call waits up to 60 s)";
    std::printf("[figure] usage on a silent agent: %s -> exit in %s\n", SignalName(signal),
                absl::FormatDuration(took).c_str());
    EXPECT_EQ(*code, 130) << usage->Stderr();
    EXPECT_EQ(usage->Stderr(), absl::StrCat("\nmemloadctl: interrupted by ", SignalName(signal),
                                            "; no plan was started, exiting now\n"));
    EXPECT_EQ(usage->Stdout(), "");  // No table of answers it did not wait for.
  }
}

// `start` whose StartPlan is out holds on to the first signal: it must learn whether the
// plan started, to stop it (against a silent agent: up to its --timeout). The second
// signal quits at once, saying what that leaves behind.
TEST(CliProcessTest, StartWaitsToStopWhatItStartedAndASecondSignalQuitsAtOnce) {
  SilentAgent agent;
  ASSERT_FALSE(agent.target().empty());
  absl::StatusOr<Subprocess> start =
      Subprocess::Start({CtlBinary(), "start", "--targets=" + agent.target(), "--kind=retained",
                         "--target=1MiB", "--timeout=60s", "--retries=0"});
  ASSERT_TRUE(start.ok()) << start.status();
  ASSERT_TRUE(agent.AwaitConnection(kTimeout)) << start->Stderr();  // Its StartPlan is out.
  start->Signal(SIGTERM);
  const std::string first =
      "\nmemloadctl: interrupted by SIGTERM; stopping what was started (again to quit now)\n";
  ASSERT_TRUE(Eventually([&] { return start->Stderr() == first; }, kTimeout)) << start->Stderr();
  EXPECT_TRUE(start->running());  // Awaiting its start's answer.
  const absl::Time signalled = absl::Now();
  start->Signal(SIGTERM);
  const std::optional<int> code = start->Wait(kPromptly);
  ASSERT_TRUE(code.has_value()) << "start still running " << kPromptly << " after a second signal";
  std::printf("[figure] start on a silent agent: second SIGTERM -> exit in %s\n",
              absl::FormatDuration(absl::Now() - signalled).c_str());
  EXPECT_EQ(*code, 130);
  EXPECT_EQ(start->Stderr(), first +
                                 "\nmemloadctl: interrupted again; quitting now (a plan not "
                                 "stopped yet ends with its lease)\n");
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

// A default lease under the shortest a plan may have (proto/plan_rules.h kMinLease) ended
// every plan that gives none at the agent's next tick; it fails start and --check-config
// (attack N11: "config ok").
TEST(CliProcessTest, AgentRefusesADefaultLeaseUnderASecond) {
  CommandResult short_lease =
      Agent({"--check-config", "--listen=127.0.0.1:0", "--default-lease=500ms"});
  EXPECT_EQ(short_lease.exit_code, 2);
  EXPECT_THAT(short_lease.err, HasSubstr("--default-lease=500ms must be in [1s, 24h]"));
  CommandResult shortest = Agent({"--check-config", "--listen=127.0.0.1:0", "--default-lease=1s"});
  EXPECT_EQ(shortest.exit_code, 0) << shortest.err;
  EXPECT_THAT(shortest.out + shortest.err, HasSubstr("config ok"));
}

}  // namespace
}  // namespace testing
}  // namespace memload
