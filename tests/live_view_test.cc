// memloadctl's live views (watch, run) under a real pseudo-terminal: tmux (Debian's `tmux`)
// runs memloadctl against real agents on loopback in a detached session of a given size;
// once it has drawn several frames and exited, the whole pane — scrollback included — is
// captured and must hold exactly one frame, with no line wider than the terminal (wrapped
// lines are joined back by `capture-pane -J`, so a line that wrapped shows up too long).
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

constexpr char kTmux[] = "/usr/bin/tmux";

// Display width in characters (UTF-8 sequences count one; tmux draws "…" in one cell).
int Width(absl::string_view line) {
  int width = 0;
  for (char c : line) width += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return width;
}

int CountLines(const std::string& screen, absl::string_view needle) {
  int count = 0;
  for (absl::string_view line : absl::StrSplit(screen, '\n'))
    count += absl::StrContains(line, needle);
  return count;
}

// How many lines of `screen` must hold each needle.
void ExpectLineCounts(const std::string& screen,
                      const std::vector<std::pair<std::string, int>>& counts) {
  for (const auto& [needle, count] : counts) EXPECT_EQ(CountLines(screen, needle), count) << needle;
}

std::string Quote(const std::string& arg) {
  return absl::StrCat("'", absl::StrReplaceAll(arg, {{"'", "'\\''"}}), "'");
}

// A detached tmux server of the test's own (its own socket), killed at the end.
class Tmux {
 public:
  // The socket lives in a directory of its own under /tmp: TEST_TMPDIR paths are longer
  // than a Unix socket's 108 bytes.
  Tmux(int columns, int rows) : columns_(columns), rows_(rows) {
    char dir[] = "/tmp/memload-tmux-XXXXXX";
    if (mkdtemp(dir) != nullptr) dir_ = dir;
    socket_ = dir_ + "/socket";
  }
  ~Tmux() {
    RunCommand({kTmux, "-S", socket_, "kill-server"}, absl::Seconds(10));
    unlink(socket_.c_str());
    rmdir(dir_.c_str());
  }

  // Runs `argv` in a shell in a new session; a "prompt" line comes first, as in a real
  // shell, so that the view does not start at the screen's top row (tmux scrolls a whole
  // cleared screen into its history: scroll-on-clear).
  ::testing::AssertionResult Start(const std::vector<std::string>& argv) {
    std::vector<std::string> quoted;
    for (const std::string& arg : argv) quoted.push_back(Quote(arg));
    const std::string shell = absl::StrCat("printf 'prompt$ \\n'; ", absl::StrJoin(quoted, " "),
                                           "; echo __DONE__$?; sleep 600");
    CommandResult started =
        RunCommand({kTmux, "-S", socket_, "-f", "/dev/null", "new-session", "-d", "-x",
                    absl::StrCat(columns_), "-y", absl::StrCat(rows_), shell},
                   absl::Seconds(10));
    if (started.exit_code != 0) {
      return ::testing::AssertionFailure() << "tmux: " << started.out << started.err;
    }
    return ::testing::AssertionSuccess();
  }

  // The pane with its history, wrapped lines joined; "" on failure.
  std::string Capture() {
    CommandResult captured =
        RunCommand({kTmux, "-S", socket_, "capture-pane", "-p", "-J", "-S", "-", "-E", "-"},
                   absl::Seconds(10));
    return captured.exit_code == 0 ? captured.out : "";
  }

  // Waits until the command has exited; its exit code, or -1 after `timeout`.
  int WaitDone(absl::Duration timeout) {
    int code = -1;
    // Polls the screen every 100 ms (tmux capture-pane is a process each time).
    Eventually(
        [&] {
          const std::string screen = Capture();
          const size_t at = screen.find("__DONE__");
          if (at == std::string::npos) return false;
          const std::string rest = screen.substr(at + 8, screen.find('\n', at) - at - 8);
          return absl::SimpleAtoi(rest, &code);
        },
        timeout, absl::Milliseconds(100));
    return code;
  }

 private:
  const int columns_;
  const int rows_;
  std::string dir_ = "/tmp";
  std::string socket_;
};

class LiveViewTest : public ::testing::TestWithParam<std::pair<int, int>> {
 protected:
  void SetUp() override {
    if (access(kTmux, X_OK) != 0) GTEST_SKIP() << "tmux is not installed (bazel/install_deps.sh)";
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<Subprocess> agent = Subprocess::Start(
          {AgentBinary(), absl::StrCat("--listen=127.0.0.", i + 1, ":0"),
           absl::StrCat("--node-name=live-view-node-", i + 1), "--reserve=64MiB"});
      ASSERT_TRUE(agent.ok()) << agent.status();
      agents_.push_back(*std::move(agent));
      addresses_.push_back(WaitForAgentAddress(agents_.back(), absl::Seconds(10)));
      ASSERT_FALSE(addresses_.back().empty()) << agents_.back().Stderr();
    }
    // A third target nobody listens on: a failed row with a long error in every frame.
    addresses_.push_back("127.0.0.1:1");
  }

  // Every line of the capture fits the terminal (none wrapped).
  void ExpectNoWrappedLine(const std::string& screen) {
    const int columns = GetParam().first;
    for (absl::string_view line : absl::StrSplit(screen, '\n')) {
      EXPECT_LE(Width(absl::StripTrailingAsciiWhitespace(line)), columns) << "wrapped: " << line;
    }
  }

  std::vector<Subprocess> agents_;
  std::vector<std::string> addresses_;
};

TEST_P(LiveViewTest, WatchLeavesExactlyOneFrame) {
  const auto [columns, rows] = GetParam();
  Tmux tmux(columns, rows);
  // The first frame waits up to --timeout for every node's first answer (the unreachable
  // target answers at once: refused); 2 s was too short for a live agent under TSan on a
  // loaded machine, which then showed up as a second UNAVAILABLE row.
  ASSERT_TRUE(tmux.Start({CtlBinary(), "watch", "--targets=" + absl::StrJoin(addresses_, ","),
                          "--interval=200ms", "--count=8", "--timeout=20s"}));
  EXPECT_EQ(tmux.WaitDone(absl::Seconds(60)), 1);  // The unreachable target fails.
  const std::string screen = tmux.Capture();
  SCOPED_TRACE(screen);
  ExpectLineCounts(screen, {{"memload usage at", 1},
                            {"AGENT ", 1},
                            {"live-view-node-1", 1},
                            {"live-view-node-2", 1},
                            {"127.0.0.1:1 ", 1},
                            {"UNAVAILABLE", 1}});
  ExpectNoWrappedLine(screen);
}

TEST_P(LiveViewTest, RunLeavesOneProgressFrameThenTheSummary) {
  const auto [columns, rows] = GetParam();
  Tmux tmux(columns, rows);
  // The unreachable target is refused at once; the per-call timeout only has to let the live
  // agents start their workers (2 s did not under TSan on a loaded machine).
  ASSERT_TRUE(
      tmux.Start({CtlBinary(), "run", "--targets=" + absl::StrJoin(addresses_, ","),
                  "--kind=retained", "--target=16MiB", "--ramp=600ms", "--for=2500ms",
                  "--interval=200ms", "--timeout=20s", "--retries=0", "--plan-id=live-view"}));
  EXPECT_EQ(tmux.WaitDone(absl::Seconds(60)), 1);
  const std::string screen = tmux.Capture();
  SCOPED_TRACE(screen);
  // One progress frame (its title ends in "elapsed") and one summary (its verdict says
  // "ran"), in that order, and nothing left of earlier frames; each node: one progress row,
  // one summary row.
  ExpectLineCounts(screen, {{"elapsed", 1},
                            {"progress [", 1},
                            {"TOTAL", 1},
                            {") ran ", 1},
                            {"live-view-node-1", 2},
                            {"live-view-node-2", 2}});
  EXPECT_LT(screen.find("elapsed"), screen.find(") ran "));
  ExpectNoWrappedLine(screen);
}

INSTANTIATE_TEST_SUITE_P(Terminals, LiveViewTest,
                         ::testing::Values(std::make_pair(80, 24), std::make_pair(200, 50)),
                         [](const auto& info) {
                           return absl::StrCat(info.param.first, "x", info.param.second);
                         });

}  // namespace
}  // namespace testing
}  // namespace memload
