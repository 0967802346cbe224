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

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "controller/plan_builder.h"
#include "controller/testing/fake_agent_client.h"
#include "controller/testing/json_document.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::memload::testing::ParseJsonDocument;
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
    io.make_factory =
        [this](const ClientSecurityOptions& security) -> absl::StatusOr<AgentClientFactory> {
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
  const std::vector<std::string> start_words =
      absl::StrSplit(script.substr(words_begin, script.find('"', words_begin) - words_begin), ' ');
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
      std::vector<std::string> args = {
          "start", Targets(), absl::StrCat("--kind=", kind),
          absl::StrCat("--", dashed, info.toggle == nullptr ? "=1" : "")};
      if (bit != kStreamingKind) args.push_back("--target=50%");  // Required there.
      const Result refused = Run(args);
      EXPECT_EQ(refused.code, 2) << dashed << " " << kind;
      EXPECT_THAT(refused.err,
                  HasSubstr(absl::StrCat("--", dashed, " does not apply to --kind=", kind)));
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
  Result adj =
      Run({"start", Targets(), "--kind=retained", "--target=1MiB", "--oom-score-adj=2000"});
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
  ASSERT_EQ(
      Run({"config", "set-context", "lab", "--targets=" + targets_[0], "--token-file=/lab/token"})
          .code,
      0);
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
  EXPECT_THAT(lines[0], HasSubstr(" STATUS "));
  // Failed rows first, marked; then by node name.
  EXPECT_THAT(lines[1], ::testing::ContainsRegex("^" + targets_[1] + " +- +FAILED .*UNAVAILABLE"));
  EXPECT_THAT(lines[2], ::testing::ContainsRegex("node-b +ok "));  // targets_[2]
  EXPECT_THAT(lines[3], ::testing::ContainsRegex("node-c +ok "));  // targets_[0]
  EXPECT_EQ(usage.err, "2 ok, 1 failed\n");
  Result bare = Run({"usage", Targets(), "--no-headers"});
  EXPECT_THAT(bare.out, StartsWith(targets_[1] + " "));  // No header: the failed row first.
  Result agents = Run({"agents", Targets(), "-o", "json", "--retries=0"});
  EXPECT_THAT(agents.out, HasSubstr("\"command\": \"agents\""));
  EXPECT_EQ(agents.err, "2 ok, 1 failed\n");
}

double Number(const google::protobuf::Struct& object, const std::string& key) {
  auto it = object.fields().find(key);
  return it == object.fields().end() ? -1 : it->second.number_value();
}

// The STATUS cells of the last table in `out` that has a STATUS column, top to bottom.
std::vector<std::string> StatusColumn(const std::string& out) {
  std::vector<std::string> lines = absl::StrSplit(out, '\n');
  size_t header = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(" STATUS ") != std::string::npos) header = i;
  }
  std::vector<std::string> cells;
  if (header == lines.size()) return cells;
  const size_t at = lines[header].find(" STATUS ") + 1;
  for (size_t i = header + 1; i < lines.size() && lines[i].size() > at; ++i) {
    cells.push_back(std::string(absl::StripAsciiWhitespace(lines[i].substr(at, 6))));
  }
  return cells;
}

// issue 15.5: every command that asks agents marks each row ok or FAILED, lists the failed
// rows first, prints "N ok, N failed" on stderr, and its JSON carries the same counts.
TEST_F(CliTest, EveryFanOutCommandMarksFailedRowsFirstAndCountsThem) {
  down_ = 1;
  const std::vector<std::vector<std::string>> commands = {
      {"agents"},
      {"usage"},
      {"start", "--kind=retained", "--target=1MiB", "--plan-id=p"},
      {"start", "--kind=retained", "--target=50%", "--dry-run"},
      {"run", "--kind=retained", "--target=1MiB", "--plan-id=p", "--interval=50ms"},
      {"resize", "--plan-id=p", "--target=2MiB"},
      {"stop", "--plan-id=p"},
      {"stop", "--all"},
  };
  for (std::vector<std::string> args : commands) {
    const std::string name = absl::StrJoin(args, " ");
    args.insert(args.begin() + 1, {Targets(), "--retries=0"});
    const Result table = Run(args);
    EXPECT_EQ(table.code, 1) << name << "\n" << table.out << table.err;
    size_t ok = 0, failed = 0;
    {
      std::vector<std::string> words = absl::StrSplit(table.err, ' ');
      ASSERT_GE(words.size(), 4u) << name << ": " << table.err;
      ASSERT_TRUE(absl::SimpleAtoi(words[words.size() - 4], &ok)) << table.err;
      ASSERT_TRUE(absl::SimpleAtoi(words[words.size() - 2], &failed)) << table.err;
    }
    EXPECT_THAT(table.err, ::testing::EndsWith(absl::StrCat(ok, " ok, ", failed, " failed\n")))
        << name;
    EXPECT_GE(failed, 1u) << name;
    const std::vector<std::string> status = StatusColumn(table.out);
    ASSERT_EQ(status.size(), ok + failed) << name << "\n" << table.out;
    for (size_t i = 0; i < status.size(); ++i) {
      EXPECT_EQ(status[i], i < failed ? "FAILED" : "ok") << name << " row " << i << "\n"
                                                         << table.out;
    }
    EXPECT_THAT(table.out, ::testing::ContainsRegex(targets_[1] + " .*FAILED")) << name;

    args.push_back("-o");
    args.push_back("json");
    const Result json = Run(args);
    EXPECT_EQ(json.code, 1) << name;
    EXPECT_EQ(json.err, table.err) << name;
    const google::protobuf::Struct document = ParseJsonDocument(json.out);
    const google::protobuf::Struct& summary = document.fields().at("summary").struct_value();
    EXPECT_EQ(Number(summary, "ok"), ok) << name;
    EXPECT_EQ(Number(summary, "failed"), failed) << name;
    EXPECT_FALSE(document.fields().at("ok").bool_value()) << name;
    bool down_is_failed = false;
    for (const auto& node : document.fields().at("nodes").list_value().values()) {
      const auto& fields = node.struct_value().fields();
      if (fields.at("target").string_value() == targets_[1]) {
        down_is_failed = !fields.at("ok").bool_value();
      }
    }
    EXPECT_TRUE(down_is_failed) << name << "\n" << json.out;
  }
}

// issue 15.3/15.5: -o json gives one JSON document for every command (help and completion
// too), and --no-headers leaves every table's header out.
TEST_F(CliTest, EveryCommandHonoursJsonAndNoHeaders) {
  const std::string recording = ::testing::TempDir() + "/cli_test_every.jsonl";
  const std::string page = ::testing::TempDir() + "/cli_test_every.html";
  ASSERT_NE(Run({"run", Targets(), "--kind=retained", "--target=1MiB", "--interval=50ms",
                 "--record=" + recording})
                .code,
            2);
  ASSERT_EQ(Run({"config", "set-context", "lab", "--targets=" + targets_[0]}).code, 0);
  const std::vector<std::vector<std::string>> commands = {
      {"agents", Targets()},
      {"usage", Targets()},
      {"start", Targets(), "--kind=retained", "--target=1MiB", "--plan-id=p"},
      {"start", Targets(), "--kind=retained", "--target=50%", "--dry-run"},
      {"run", Targets(), "--kind=retained", "--target=1MiB", "--interval=50ms"},
      {"resize", Targets(), "--plan-id=p", "--target=2MiB"},
      {"stop", Targets(), "--all"},
      {"report", recording, "--html=" + page},
      {"config", "view"},
      {"config", "get-contexts"},
      {"config", "current-context"},
      {"config", "set-context", "lab", "--selector=zone=a"},
      {"config", "use-context", "lab"},
      {"completion", "bash"},
      {"version"},
      {"help"},
      {"help", "run"},
      {"stop", "--help"},
      {"--help"},
  };
  for (std::vector<std::string> args : commands) {
    const std::string name = absl::StrJoin(args, " ");
    std::vector<std::string> json_args = args;
    json_args.insert(json_args.end(), {"-o", "json"});
    const Result json = Run(json_args);
    EXPECT_NE(json.code, 2) << name << ": " << json.err;
    const google::protobuf::Struct document = ParseJsonDocument(json.out);
    EXPECT_TRUE(document.fields().count("command")) << name << "\n" << json.out;
    EXPECT_TRUE(document.fields().count("ok")) << name << "\n" << json.out;

    std::vector<std::string> bare_args = args;
    bare_args.push_back("--no-headers");
    const Result bare = Run(bare_args);
    EXPECT_NE(bare.code, 2) << name << ": " << bare.err;
    for (absl::string_view line : absl::StrSplit(bare.out, '\n')) {
      EXPECT_THAT(std::string(line),
                  Not(::testing::ContainsRegex("^(AGENT|NODE|NAME|POD/TARGET|POD) +[A-Z]")))
          << name << "\n"
          << bare.out;
    }
  }
  // help -o json lists every command with its flags; a plan flag carries its default.
  const google::protobuf::Struct help = ParseJsonDocument(Run({"help", "start", "-o", "json"}).out);
  const auto& start = help.fields().at("commands").list_value().values(0).struct_value();
  EXPECT_EQ(start.fields().at("name").string_value(), "start");
  bool block_size = false;
  for (const auto& flag : start.fields().at("flags").list_value().values()) {
    const auto& fields = flag.struct_value().fields();
    if (fields.at("name").string_value() != "--block-size") continue;
    block_size = true;
    EXPECT_EQ(fields.at("group").string_value(), "plan");
    EXPECT_EQ(fields.at("default").string_value(), "1MiB");
  }
  EXPECT_TRUE(block_size);
  EXPECT_EQ(ParseJsonDocument(Run({"--help", "-o", "json"}).out)
                .fields()
                .at("commands")
                .list_value()
                .values_size(),
            static_cast<int>(CommandNames().size()));
  const google::protobuf::Struct completion =
      ParseJsonDocument(Run({"completion", "bash", "-o", "json"}).out);
  EXPECT_EQ(completion.fields().at("script").string_value(), Run({"completion", "bash"}).out);
  // report -o json carries the recorded run's counts, as the node tables' JSON does.
  const google::protobuf::Struct report =
      ParseJsonDocument(Run({"report", recording, "--html=" + page, "-o", "json"}).out);
  EXPECT_EQ(Number(report.fields().at("summary").struct_value(), "nodes"), 3);
  EXPECT_TRUE(report.fields().at("run").struct_value().fields().count("exitCode"));
  // Asking help -o json for an unknown command is a usage error, as JSON too.
  const Result unknown = Run({"help", "strat", "-o", "json"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.out, HasSubstr("did you mean start?"));
}

TEST_F(CliTest, RunSummaryListsNodesByName) {
  Result run = Run({"run", Targets(), "--kind=retained", "--target=1MiB", "--interval=50ms"});
  const size_t a = run.out.rfind("node-a"), b = run.out.rfind("node-b"),
               c = run.out.rfind("node-c");
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
  Result small = Run(
      {"run", Targets(), "--kind=retained", "--target=50%available", "--dry-run", "-o", "json"});
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
  const std::string check = absl::StrCat("bash -c 'source ", path,
                                         "; COMP_WORDS=(memloadctl st); COMP_CWORD=1; _memloadctl; "
                                         "echo ${COMPREPLY[*]}' > ",
                                         path, ".out");
  ASSERT_EQ(std::system(check.c_str()), 0);
  std::ifstream in(path + ".out");
  std::string words((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(words, "start stop\n");
  EXPECT_EQ(Run({"completion", "zsh"}).code, 2);
}

}  // namespace
}  // namespace controller
}  // namespace memload
