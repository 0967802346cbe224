// memloadctl's command line end to end, over fake agents: help, exit codes, did-you-mean,
// environment defaults, contexts and their precedence, output conventions, dry runs.
#include "controller/cli.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "controller/plan_builder.h"
#include "controller/testing/fake_agent_client.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

// Fake agents named node-c, node-a, node-b (in target order) that answer every call.
class CliTest : public ::testing::Test {
 protected:
  CliTest() : targets_(FakeFleet::Targets(3)), fleet_(targets_) {
    fleet_.SetResponder([this](const FakeCall& call) -> FakeReply {
      const size_t i = std::find(targets_.begin(), targets_.end(), call.target) - targets_.begin();
      if (i == down_) return absl::UnavailableError("connection refused");
      const std::string name = std::string("node-") + "cab"[i % 3];
      if (call.method == "GetNodeInfo") {
        v1::NodeInfo info;
        info.set_node_name(name);
        return info;
      }
      if (call.method == "GetUsage") {
        v1::NodeUsage usage;
        usage.mutable_node()->set_node_name(name);
        usage.mutable_meminfo()->set_total_bytes(1000ull << 20);
        usage.mutable_meminfo()->set_available_bytes(600ull << 20);
        return usage;
      }
      return FakeReply();
    });
    config_path_ = ::testing::TempDir() + "/cli_test_config_" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::remove(config_path_.c_str());
    env_["MEMLOAD_CONFIG"] = config_path_;
  }

  Result Run(std::vector<std::string> args) {
    args.insert(args.begin(), "memloadctl");
    std::ostringstream out, err;
    CliIo io;
    io.out = &out;
    io.err = &err;
    io.getenv = [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    io.make_factory = [this](const ClientSecurityOptions& security)
        -> absl::StatusOr<AgentClientFactory> {
      security_ = security;
      return fleet_.factory();
    };
    Result result;
    result.code = RunCli(args, io);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  std::vector<std::string> Called(const std::string& method) const {
    std::vector<std::string> targets;
    for (const FakeCall& call : fleet_.Calls()) {
      if (call.method == method) targets.push_back(call.target);
    }
    return targets;
  }

  std::string Targets() const { return "--targets=" + absl::StrJoin(targets_, ","); }

  std::vector<std::string> targets_;
  FakeFleet fleet_;
  size_t down_ = 99;  // Index of an unreachable target.
  std::map<std::string, std::string> env_;
  std::string config_path_;
  ClientSecurityOptions security_;
};

// --- Help.

TEST_F(CliTest, HelpListsCommandsAndExitsZero) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"help"}}) {
    Result help = Run(args);
    EXPECT_EQ(help.code, 0) << args[0];
    for (const std::string& command : CommandNames()) {
      EXPECT_THAT(help.out, HasSubstr("  " + command + " ")) << command;
    }
  }
  Result bare = Run({});
  EXPECT_EQ(bare.code, 2);
  EXPECT_THAT(bare.err, HasSubstr("Commands:"));
}

TEST_F(CliTest, CommandHelpShowsItsFlagsWithDashesDefaultsAndTwoExamples) {
  const Result help = Run({"help", "start"});
  EXPECT_EQ(help.code, 0);
  EXPECT_EQ(Run({"start", "--help"}).out, help.out);
  EXPECT_EQ(Run({"start", "-h"}).out, help.out);
  // Help wins over anything else wrong on the line.
  EXPECT_EQ(Run({"start", "--taget=1", "--help"}).code, 0);
  EXPECT_THAT(help.out, HasSubstr("--plan-id=ID"));
  EXPECT_THAT(help.out, HasSubstr("--block-size=SIZE"));
  EXPECT_THAT(help.out, HasSubstr("--timeout=DURATION"));
  EXPECT_THAT(help.out, HasSubstr("(default 10s)"));
  EXPECT_THAT(help.out, HasSubstr("--dry-run"));
  EXPECT_THAT(help.out, Not(HasSubstr("--plan_id")));
  EXPECT_THAT(help.out, Not(HasSubstr("--all")));  // stop's, not start's.
  const std::string examples = help.out.substr(help.out.find("Examples:"));
  EXPECT_EQ(std::count(examples.begin(), examples.end(), '\n'), 3);
  // Every command has help with two examples.
  for (const std::string& command : CommandNames()) {
    const Result one = Run({"help", command});
    EXPECT_EQ(one.code, 0) << command;
    const std::string tail = one.out.substr(one.out.find("Examples:"));
    EXPECT_EQ(std::count(tail.begin(), tail.end(), '\n'), 3) << command;
  }
}

// 13.1: a plan flag of the plan builder's PlanFlagTable() (the one list) is in start's and
// run's help, in the completion script, accepted by both, and handed to the plan builder,
// which applies the table's kinds to it.
TEST_F(CliTest, EveryPlanFlagOfTheOneTableIsHelpedCompletedAndParsed) {
  const std::string start_help = Run({"help", "start"}).out;
  const std::string run_help = Run({"help", "run"}).out;
  const std::string script = Run({"completion", "bash"}).out;
  const size_t start_case = script.find("    start) flags=\"");
  ASSERT_NE(start_case, std::string::npos);
  const size_t words_begin = script.find('"', start_case) + 1;
  const std::vector<std::string> start_words = absl::StrSplit(
      script.substr(words_begin, script.find('"', words_begin) - words_begin), ' ');
  for (const PlanFlagInfo& info : PlanFlagTable()) {
    const std::string dashed = absl::StrReplaceAll(info.name, {{"_", "-"}});
    const std::string shown = absl::StrCat("--", dashed, info.toggle == nullptr ? "=" : "");
    EXPECT_THAT(start_help, HasSubstr("  " + shown)) << dashed;
    EXPECT_THAT(run_help, HasSubstr("  " + shown)) << dashed;
    EXPECT_THAT(start_words, ::testing::Contains(shown)) << dashed;
    // A kind the table says the flag does not apply to: the plan builder refuses it, which
    // shows that the flag was parsed and passed on (nothing is sent).
    for (const auto& [bit, kind] : {std::pair<int, const char*>{kRetainedKind, "retained"},
                                    {kUtilizationKind, "utilization"},
                                    {kStreamingKind, "streaming"}}) {
      if ((info.kinds & bit) != 0 || info.name == "kind") continue;
      std::vector<std::string> args = {"start", Targets(), absl::StrCat("--kind=", kind),
                                       absl::StrCat("--", dashed, info.toggle == nullptr ? "=1" : "")};
      if (bit != kStreamingKind) args.push_back("--target=50%");  // Required there.
      const Result refused = Run(args);
      EXPECT_EQ(refused.code, 2) << dashed << " " << kind;
      EXPECT_THAT(refused.err, HasSubstr(absl::StrCat("--", dashed, " does not apply to --kind=",
                                                      kind)));
    }
  }
  EXPECT_TRUE(fleet_.Calls().empty());
}

// --- Did you mean, exit codes, messages.

TEST_F(CliTest, UnknownCommandsAndFlagsSuggestAndExitTwo) {
  Result strat = Run({"strat", Targets()});
  EXPECT_EQ(strat.code, 2);
  EXPECT_THAT(strat.err, StartsWith("memloadctl: unknown command \"strat\" (did you mean start?)"));
  Result help = Run({"help", "stpo"});
  EXPECT_EQ(help.code, 2);
  EXPECT_THAT(help.err, HasSubstr("did you mean stop?"));
  Result flag = Run({"start", Targets(), "--taget=80%"});
  EXPECT_EQ(flag.code, 2);
  EXPECT_EQ(flag.err, "memloadctl start: unknown flag --taget (did you mean --target?)\n");
  Result usage_flag = Run({"usage", "--taget=a:1"});
  EXPECT_THAT(usage_flag.err, HasSubstr("did you mean --targets?"));
  Result other = Run({"usage", Targets(), "--all"});
  EXPECT_EQ(other.code, 2);
  EXPECT_THAT(other.err, HasSubstr("--all does not apply to usage"));
  EXPECT_TRUE(fleet_.Calls().empty());
}

TEST_F(CliTest, ErrorsEchoFlagsAsTypedWithoutADoubledProgramName) {
  Result output = Run({"usage", Targets(), "-o", "yaml"});
  EXPECT_EQ(output.code, 2);
  EXPECT_EQ(output.err, "memloadctl usage: -o=\"yaml\": want table or json\n");
  Result adj = Run({"start", Targets(), "--kind=retained", "--target=1MiB", "--oom-score-adj=2000"});
  EXPECT_EQ(adj.code, 2);
  EXPECT_THAT(adj.err, HasSubstr("--oom-score-adj"));
  EXPECT_THAT(adj.err, Not(HasSubstr("--oom_score_adj")));
  Result stop = Run({"stop", Targets()});
  EXPECT_THAT(stop.err, HasSubstr("--plan-id"));
  Result json = Run({"usage", Targets(), "-o", "json", "--bogus"});
  EXPECT_EQ(json.code, 2);
  EXPECT_THAT(json.out, HasSubstr("\"code\":\"INVALID_ARGUMENT\""));
  EXPECT_THAT(json.out, HasSubstr("unknown flag --bogus"));
  Result none = Run({"-o", "json", "--bogus"});
  EXPECT_EQ(none.code, 2);
  EXPECT_THAT(none.err, StartsWith("memloadctl: unknown flag --bogus"));
  EXPECT_THAT(none.err, Not(HasSubstr("memloadctl memloadctl")));
  EXPECT_TRUE(fleet_.Calls().empty());
}

TEST_F(CliTest, VersionAgreesEverywhere) {
  const Result version = Run({"version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_THAT(version.out, StartsWith("memloadctl "));
  EXPECT_EQ(Run({"--version"}).out, version.out);
  EXPECT_EQ(Run({"usage", "--version"}).out, version.out);
  const Result json = Run({"version", "-o", "json"});
  EXPECT_THAT(json.out, HasSubstr("\"command\":\"version\",\"ok\":true,\"version\":\""));
}

// issue 12.8: the three wrong answers of memloadctl are usage errors now.
TEST_F(CliTest, RepeatedFlagsAndEndlessRetriesAreUsageErrors) {
  Result twice = Run({"usage", "--targets=a:1", "--targets=b:1"});
  EXPECT_EQ(twice.code, 2);
  EXPECT_THAT(twice.err, HasSubstr("--targets given twice"));
  Result target = Run({"start", Targets(), "--kind=retained", "--target=80%", "--target=90%"});
  EXPECT_EQ(target.code, 2);
  EXPECT_THAT(target.err, HasSubstr("--target given twice"));
  Result retries = Run({"usage", Targets(), "--retries=1000000000"});
  EXPECT_EQ(retries.code, 2);
  EXPECT_THAT(retries.err, HasSubstr("want an integer in 0..10"));
  Result tiny = Run({"start", Targets(), "--kind=retained", "--target=1e-300%"});
  EXPECT_EQ(tiny.code, 2);
  EXPECT_THAT(tiny.err, HasSubstr("--target"));
  EXPECT_TRUE(fleet_.Calls().empty());
}

// issue 12.6 / 13.5 regression at the command level: `run --for=1s --for=2s` read freed
// memory; now a usage error quoting both values.
TEST_F(CliTest, ForGivenTwiceIsAUsageError) {
  Result run = Run({"run", Targets(), "--kind=retained", "--target=1MiB", "--for=1s", "--for=2s"});
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.err, "memloadctl run: --for given twice (\"1s\", then \"2s\"): give it once\n");
  EXPECT_TRUE(fleet_.Calls().empty());
}

// --- Environment and contexts.

TEST_F(CliTest, EnvironmentGivesDefaultsAndFlagsWin) {
  Result missing = Run({"usage"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("--targets is required"));
  env_["MEMLOAD_TARGETS"] = targets_[0];
  env_["MEMLOAD_TOKEN_FILE"] = "/env/token";
  env_["MEMLOAD_TLS_CA"] = "/env/ca.pem";
  ASSERT_EQ(Run({"usage"}).code, 0);
  EXPECT_EQ(Called("GetUsage"), std::vector<std::string>{targets_[0]});
  EXPECT_EQ(security_.token_file, "/env/token");
  EXPECT_EQ(security_.tls_ca_file, "/env/ca.pem");
  ASSERT_EQ(Run({"usage", "--targets=" + targets_[1], "--token-file=/flag/token"}).code, 0);
  EXPECT_EQ(Called("GetUsage").back(), targets_[1]);
  EXPECT_EQ(security_.token_file, "/flag/token");
  // A bad environment value says where it came from.
  env_["MEMLOAD_TARGETS"] = "no-port";
  Result bad = Run({"usage"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("(from env MEMLOAD_TARGETS)"));
}

TEST_F(CliTest, ContextsAreSetUsedAndOverridden) {
  ASSERT_EQ(Run({"config", "set-context", "lab", "--targets=" + targets_[0],
                 "--token-file=/lab/token"}).code, 0);
  ASSERT_EQ(Run({"config", "set-context", "prod", "--targets=" + targets_[1]}).code, 0);
  // The first context became current.
  Result current = Run({"config", "current-context"});
  EXPECT_EQ(current.out, "lab\n");
  ASSERT_EQ(Run({"usage"}).code, 0);
  EXPECT_EQ(Called("GetUsage").back(), targets_[0]);
  EXPECT_EQ(security_.token_file, "/lab/token");
  // --context picks another; the environment does not beat it; flags beat everything.
  env_["MEMLOAD_TARGETS"] = targets_[2];
  ASSERT_EQ(Run({"usage", "--context=prod"}).code, 0);
  EXPECT_EQ(Called("GetUsage").back(), targets_[1]);
  ASSERT_EQ(Run({"usage"}).code, 0);  // Env beats the current context.
  EXPECT_EQ(Called("GetUsage").back(), targets_[2]);
  ASSERT_EQ(Run({"usage", "--context=prod", "--targets=" + targets_[0]}).code, 0);
  EXPECT_EQ(Called("GetUsage").back(), targets_[0]);
  env_.erase("MEMLOAD_TARGETS");
  // use-context, get-contexts, view, delete-context.
  ASSERT_EQ(Run({"config", "use-context", "prod"}).code, 0);
  Result table = Run({"config", "get-contexts"});
  EXPECT_THAT(table.out, HasSubstr("NAME  CURRENT  TARGETS"));
  EXPECT_THAT(table.out, HasSubstr("prod  *"));
  Result names = Run({"config", "get-contexts", "--no-headers"});
  EXPECT_THAT(names.out, StartsWith("lab "));
  Result view = Run({"config", "view"});
  EXPECT_THAT(view.out, HasSubstr("current-context = prod"));
  Result json = Run({"config", "view", "-o", "json"});
  EXPECT_THAT(json.out, HasSubstr("\"currentContext\":\"prod\""));
  EXPECT_EQ(Run({"config", "use-context", "nope"}).code, 2);
  EXPECT_EQ(Run({"usage", "--context=nope"}).code, 2);
  ASSERT_EQ(Run({"config", "delete-context", "prod"}).code, 0);
  EXPECT_THAT(Run({"config", "view"}).out, Not(HasSubstr("prod")));
  Result verb = Run({"config", "use-contxt", "lab"});
  EXPECT_EQ(verb.code, 2);
  EXPECT_THAT(verb.err, HasSubstr("did you mean use-context?"));
}

TEST_F(CliTest, OversizedOrBrokenConfigIsAUsageError) {
  {
    std::ofstream file(config_path_);
    file << std::string(kMaxConfigBytes + 10, '#');
  }
  Result big = Run({"usage", Targets()});
  EXPECT_EQ(big.code, 2);
  EXPECT_THAT(big.err, HasSubstr("larger than"));
  {
    std::ofstream file(config_path_, std::ios::trunc);
    file << "[context \"x\"]\ncolour = red\n";
  }
  Result broken = Run({"usage", Targets()});
  EXPECT_EQ(broken.code, 2);
  EXPECT_THAT(broken.err, HasSubstr(":2: unknown setting"));
  EXPECT_TRUE(fleet_.Calls().empty());
}

// --- Output conventions.

TEST_F(CliTest, TablesSortByNodeNameMarkFailuresAndCount) {
  down_ = 1;
  Result usage = Run({"usage", Targets(), "--retries=0"});
  EXPECT_EQ(usage.code, 1);
  std::vector<std::string> lines = absl::StrSplit(usage.out, '\n');
  ASSERT_GE(lines.size(), 4u);
  EXPECT_THAT(lines[0], StartsWith("AGENT"));
  EXPECT_THAT(lines[1], HasSubstr("node-b"));  // targets_[2]
  EXPECT_THAT(lines[2], HasSubstr("node-c"));  // targets_[0]
  EXPECT_THAT(lines[3], HasSubstr("UNAVAILABLE"));  // targets_[1], failed: last
  EXPECT_EQ(usage.err, "2 ok, 1 failed\n");
  Result bare = Run({"usage", Targets(), "--no-headers"});
  EXPECT_THAT(bare.out, StartsWith(targets_[2]));
  Result agents = Run({"agents", Targets(), "-o", "json", "--retries=0"});
  EXPECT_THAT(agents.out, HasSubstr("\"command\": \"agents\""));
  EXPECT_EQ(agents.err, "2 ok, 1 failed\n");
}

TEST_F(CliTest, RunSummaryListsNodesByName) {
  Result run = Run({"run", Targets(), "--kind=retained", "--target=1MiB", "--interval=50ms"});
  const size_t a = run.out.rfind("node-a"), b = run.out.rfind("node-b"), c = run.out.rfind("node-c");
  ASSERT_NE(a, std::string::npos) << run.out;
  ASSERT_NE(b, std::string::npos) << run.out;
  ASSERT_NE(c, std::string::npos) << run.out;
  EXPECT_LT(a, b) << run.out;
  EXPECT_LT(b, c) << run.out;
  EXPECT_THAT(run.err, HasSubstr(" ok, "));
}

TEST_F(CliTest, DryRunResolvesPerNodeAndStartsNothing) {
  Result dry = Run({"start", Targets(), "--kind=retained", "--target=80%", "--dry-run"});
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("80% of total"));
  EXPECT_THAT(dry.out, HasSubstr("800 MiB"));
  EXPECT_THAT(dry.out, HasSubstr("more than available"));  // 800 MiB > 600 MiB
  EXPECT_TRUE(Called("StartPlan").empty());
  Result small = Run({"run", Targets(), "--kind=retained", "--target=50%available", "--dry-run",
                      "-o", "json"});
  EXPECT_EQ(small.code, 0) << small.err;
  EXPECT_THAT(small.out, HasSubstr("\"dryRun\": true"));
  EXPECT_THAT(small.out, HasSubstr(absl::StrCat("\"targetBytes\":\"", 300ull << 20, "\"")));
  EXPECT_TRUE(Called("StartPlan").empty());
}

TEST_F(CliTest, CompletionIsValidBash) {
  Result script = Run({"completion", "bash"});
  ASSERT_EQ(script.code, 0);
  EXPECT_THAT(script.out, HasSubstr("complete -F _memloadctl memloadctl"));
  EXPECT_THAT(script.out, HasSubstr("--plan-id="));
  const std::string path = ::testing::TempDir() + "/memloadctl.bash";
  {
    std::ofstream file(path);
    file << script.out;
  }
  EXPECT_EQ(std::system(("bash -n " + path).c_str()), 0);
  // Completing "memloadctl st" offers start and stop.
  const std::string check = absl::StrCat(
      "bash -c 'source ", path, "; COMP_WORDS=(memloadctl st); COMP_CWORD=1; _memloadctl; "
      "echo ${COMPREPLY[*]}' > ", path, ".out");
  ASSERT_EQ(std::system(check.c_str()), 0);
  std::ifstream in(path + ".out");
  std::string words((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(words, "start stop\n");
  EXPECT_EQ(Run({"completion", "zsh"}).code, 2);
}

}  // namespace
}  // namespace controller
}  // namespace memload
