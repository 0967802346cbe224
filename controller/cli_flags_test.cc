#include "controller/cli_flags.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<absl::string_view> kAllowed = {
    "targets", "timeout", "retries", "output", "no-headers", "plan-id", "mlock", "for", "target"};

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "memloadctl");
  return ParseArgs(args, "start", kAllowed);
}

TEST(ParseArgsTest, AcceptsEverySpelling) {
  absl::StatusOr<ParsedArgs> args =
      Parse({"start", "--targets=a:1", "--timeout", "5s", "-o", "json", "--plan_id=x", "--mlock",
             "--no-headers", "--", "--not-a-flag"});
  ASSERT_THAT(args, IsOk());
  EXPECT_THAT(args->positional(), ElementsAre("start", "--not-a-flag"));
  EXPECT_EQ(args->Text("targets"), "a:1");
  EXPECT_EQ(args->Duration("timeout"), absl::Seconds(5));
  EXPECT_EQ(args->Text("output"), "json");
  EXPECT_EQ(args->Typed("output"), "-o");
  EXPECT_EQ(args->Text("plan-id"), "x");
  EXPECT_EQ(args->Typed("plan-id"), "--plan_id");
  EXPECT_TRUE(args->Bool("mlock"));
  EXPECT_TRUE(args->Bool("no-headers"));
  EXPECT_EQ(args->Int("retries"), 2);  // The table's default.
  EXPECT_FALSE(args->Has("retries"));

  ASSERT_THAT(Parse({"-ojson", "start"}), IsOk());
  EXPECT_EQ(Parse({"-o=table"})->Text("output"), "table");
  EXPECT_FALSE(Parse({"--no-mlock"})->Bool("mlock"));
  EXPECT_FALSE(Parse({"--nomlock"})->Bool("mlock"));
  EXPECT_TRUE(Parse({"--mlock=true"})->Bool("mlock"));
  EXPECT_TRUE(Parse({"-h"})->help());
  EXPECT_TRUE(Parse({"start", "--help"})->help());
  EXPECT_TRUE(Parse({"--version"})->version());
}

TEST(ParseArgsTest, UnknownFlagsSuggestTheClosest) {
  EXPECT_THAT(Parse({"--taget=80%"}), StatusIs(absl::StatusCode::kInvalidArgument,
                                               "unknown flag --taget (did you mean --target?)"));
  EXPECT_THAT(Parse({"--timeuot=1s"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("did you mean --timeout?")));
  EXPECT_THAT(Parse({"--bogus-flag"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown flag --bogus-flag"));
  EXPECT_THAT(Parse({"-x"}), StatusIs(absl::StatusCode::kInvalidArgument, "unknown flag -x"));
  // A flag of another command is named as such.
  EXPECT_THAT(Parse({"--all"}), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("--all does not apply to start")));
}

TEST(ParseArgsTest, ValuesAreCheckedAndEchoedAsTyped) {
  EXPECT_THAT(Parse({"--timeout=soon"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--timeout=\"soon\"")));
  EXPECT_THAT(Parse({"--timeout"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "--timeout needs a value"));
  EXPECT_THAT(Parse({"-o"}), StatusIs(absl::StatusCode::kInvalidArgument, "-o needs a value"));
  EXPECT_THAT(Parse({"--mlock=maybe"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--mlock=\"maybe\"")));
  // issue 12.8: --retries=1000000000 retried until killed.
  EXPECT_THAT(Parse({"--retries=1000000000"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--retries=\"1000000000\": want an integer in 0..10")));
  EXPECT_THAT(Parse({"--retries=-1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--retries")));
  EXPECT_THAT(Parse({"--retries=10"}), IsOk());
}

// issue 12.8: --targets/--target given twice silently kept the last.
TEST(ParseArgsTest, AFlagGivenTwiceIsAnError) {
  EXPECT_THAT(Parse({"--targets=a:1", "--targets=b:1"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--targets given twice (\"a:1\", then \"b:1\"): give it once"));
  EXPECT_THAT(Parse({"--target=80%", "--target", "90%"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("given twice")));
  EXPECT_THAT(Parse({"--plan-id=a", "--plan_id=b"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--plan_id given twice")));
  EXPECT_THAT(Parse({"-o", "json", "--output=table"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--output given twice")));
}

// issue 12.6 / 13.5: memloadctl kept argv pointers into a static vector<string> that
// reallocated when --for was given twice; the first pointer dangled (valgrind: invalid
// read in CheckFlagArgs) and heap garbage was printed. Arguments are now strings owned by
// ParsedArgs, and a repeated flag is a usage error quoting both values intact.
TEST(ParseArgsTest, ForGivenTwiceIsAUsageErrorQuotingBothValues) {
  std::vector<std::string> args = {"start"};
  // Enough repeats that any vector of rewritten copies would have reallocated.
  for (int i = 0; i < 2; ++i) args.push_back("--for=" + std::to_string(i + 1) + "s");
  EXPECT_THAT(Parse(args), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "--for given twice (\"1s\", then \"2s\"): give it once"));
  absl::StatusOr<ParsedArgs> once = Parse({"start", "--for=1s"});
  ASSERT_THAT(once, IsOk());
  EXPECT_EQ(once->Text("for"), "1s");
}

TEST(FindCommandWordTest, SkipsFlagsAndTheirValues) {
  EXPECT_EQ(FindCommandWord({"memloadctl", "--targets", "a:1", "usage"}), "usage");
  EXPECT_EQ(FindCommandWord({"memloadctl", "-o", "json", "--mlock", "start"}), "start");
  EXPECT_EQ(FindCommandWord({"memloadctl", "--targets=a:1"}), "");
  EXPECT_EQ(FindCommandWord({"memloadctl"}), "");
}

TEST(DidYouMeanTest, FindsTyposOnly) {
  const std::vector<absl::string_view> commands = {"agents", "usage", "start", "stop", "run"};
  EXPECT_EQ(DidYouMean("strat", commands), "start");
  EXPECT_EQ(DidYouMean("stpo", commands), "stop");
  EXPECT_EQ(DidYouMean("usgae", commands), "usage");
  EXPECT_EQ(DidYouMean("launch", commands), std::nullopt);
  EXPECT_EQ(DidYouMean("x", commands), std::nullopt);
}

TEST(PlanFlagsFromTest, FillsThePlanBuilderFields) {
  absl::StatusOr<ParsedArgs> args =
      ParseArgs({"memloadctl", "start", "--kind=retained", "--target=1MiB", "--plan-id=p",
                 "--mlock", "--window="},
                "start", FlagsOfGroup(FlagGroup::kPlan));
  ASSERT_THAT(args, IsOk());
  PlanFlags flags = PlanFlagsFrom(*args);
  EXPECT_EQ(flags.kind, "retained");
  EXPECT_EQ(flags.target, "1MiB");
  EXPECT_EQ(flags.plan_id, "p");
  EXPECT_TRUE(flags.mlock);
  EXPECT_EQ(flags.explicitly_set,
            (std::set<std::string>{"kind", "target", "plan_id", "mlock", "window"}));
}

// 13.1: the plan builder's PlanFlagTable() is the only list of plan flags. Every entry is
// a memloadctl flag (dashed, in table order) that parses into its PlanFlags field, with
// its value name, help and "unset means" text; no plan flag exists beyond the table.
TEST(PlanFlagsFromTest, ThePlanGroupIsMadeFromPlanFlagTable) {
  std::vector<absl::string_view> from_table;
  for (const PlanFlagInfo& info : PlanFlagTable()) {
    const std::string dashed = absl::StrReplaceAll(info.name, {{"_", "-"}});
    from_table.push_back(info.name);
    const FlagSpec* flag = FindFlag(dashed);
    ASSERT_NE(flag, nullptr) << info.name;
    EXPECT_EQ(flag->name, dashed);
    EXPECT_EQ(flag->group, FlagGroup::kPlan) << info.name;
    EXPECT_EQ(flag->plan, &info) << info.name;
    EXPECT_EQ(flag->type == FlagType::kBool, info.toggle != nullptr) << info.name;
    // Help wraps long lines: compare with single spaces.
    auto words = [](absl::string_view text) {
      return absl::StrJoin(absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty()), " ");
    };
    const std::string help = words(FormatFlagHelp({flag->name}));
    EXPECT_THAT(help, HasSubstr(words(info.help))) << info.name;
    if (info.toggle == nullptr) {
      EXPECT_THAT(help, HasSubstr(absl::StrCat("--", dashed, "=", info.value_name)));
      if (!info.default_text.empty()) {
        EXPECT_THAT(help, HasSubstr(absl::StrCat("(default ", info.default_text, ")")));
      }
    }
    // Parsed into the field the table names.
    const std::string arg = absl::StrCat("--", dashed, info.toggle == nullptr ? "=v42" : "");
    absl::StatusOr<ParsedArgs> args =
        ParseArgs({"memloadctl", "start", arg}, "start", FlagsOfGroup(FlagGroup::kPlan));
    ASSERT_THAT(args, IsOk()) << arg;
    const PlanFlags flags = PlanFlagsFrom(*args);
    if (info.toggle == nullptr) {
      EXPECT_EQ(flags.*info.text, "v42") << arg;
    } else {
      EXPECT_TRUE(flags.*info.toggle) << arg;
    }
    EXPECT_EQ(flags.explicitly_set, std::set<std::string>{std::string(info.name)}) << arg;
  }
  std::vector<absl::string_view> in_group;
  for (absl::string_view name : FlagsOfGroup(FlagGroup::kPlan)) {
    in_group.push_back(FindFlag(name)->plan->name);
  }
  EXPECT_EQ(in_group, from_table);
  EXPECT_EQ(in_group, PlanFlagNames());
}

TEST(EchoFlagsAsTypedTest, UsesTheUsersSpelling) {
  absl::StatusOr<ParsedArgs> args =
      ParseArgs({"memloadctl", "--plan_id=x", "--block-size=1"}, "start", kAllowed);
  ASSERT_FALSE(args.ok());  // block-size is not in kAllowed; use a wider list.
  args = ParseArgs({"memloadctl", "--plan_id=x", "--block-size=1"}, "start",
                   FlagsOfGroup(FlagGroup::kPlan));
  ASSERT_THAT(args, IsOk());
  EXPECT_EQ(EchoFlagsAsTyped("--block_size=\"1\": bad; --plan_id too; --oom_score_adj", *args),
            "--block-size=\"1\": bad; --plan_id too; --oom-score-adj");
}

TEST(FormatFlagHelpTest, DashesDefaultsAndGroups) {
  const std::string help = FormatFlagHelp({"timeout", "plan-id", "output", "mlock"});
  EXPECT_THAT(help, HasSubstr("Plan flags:\n"));
  EXPECT_THAT(help, HasSubstr("--plan-id=ID"));
  EXPECT_THAT(help, HasSubstr("-o, --output=FORMAT"));
  EXPECT_THAT(help, HasSubstr("(default 10s)"));
  EXPECT_THAT(help, HasSubstr("--mlock  "));
  EXPECT_THAT(help, ::testing::Not(::testing::ContainsRegex("--[a-z-]*_")));
}

}  // namespace
}  // namespace controller
}  // namespace memload
