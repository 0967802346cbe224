#include "core/cli/flag_args.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, some_text, "", "a string flag");
ABSL_FLAG(absl::Duration, some_timeout, absl::Seconds(1), "a duration flag");
ABSL_FLAG(bool, some_switch, false, "a bool flag");

namespace memload {
namespace {

using ::testing::HasSubstr;

absl::Status Check(std::vector<std::string> args) {
  args.insert(args.begin(), "binary");
  std::vector<char*> pointers;
  for (std::string& arg : args) pointers.push_back(arg.data());
  return CheckFlagArgs(pointers);
}

TEST(CheckFlagArgsTest, AcceptsKnownFlagsAndGoodValues) {
  EXPECT_THAT(Check({"run", "--some_text=x", "--some_timeout", "5s", "--some_switch",
                     "--nosome_switch", "--help", "--", "--anything"}),
              IsOk());
}

TEST(CheckFlagArgsTest, NamesUnknownFlagsAndBadValues) {
  EXPECT_THAT(Check({"--some_txt=x"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown flag --some_txt")));
  EXPECT_THAT(Check({"--some_timeout=soon"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--some_timeout=\"soon\"")));
  EXPECT_THAT(Check({"--some_text"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a value")));
  EXPECT_THAT(Check({"--nosome_text"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown flag")));
}

// Flags are echoed as typed, typos get a suggestion with dashes (issue 15.1).
TEST(CheckFlagArgsTest, EchoesAsTypedAndSuggests) {
  EXPECT_THAT(Check({"--some-timeout=soon"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--some-timeout=\"soon\"")));
  EXPECT_THAT(Check({"--some-text"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "--some-text needs a value"));
  EXPECT_THAT(Check({"--some-txet=x"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown flag --some-txet (did you mean --some-text?)"));
  EXPECT_THAT(Check({"-h", "--version"}), IsOk());
}

TEST(FlagsHelpTest, ListsThisFilesFlagsWithDashesAndDefaults) {
  const std::string help = FlagsHelp("Does things.", "core/cli/flag_args_test.cc");
  EXPECT_THAT(help, HasSubstr("Does things.\n"));
  EXPECT_THAT(help, HasSubstr("--some-timeout=VALUE"));
  EXPECT_THAT(help, HasSubstr("a duration flag (default 1s)"));
  EXPECT_THAT(help, HasSubstr("--some-switch "));
  EXPECT_THAT(help, HasSubstr("-h, --help"));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("flagfile")));
}

TEST(WantsHelpTest, FindsHelpAndVersionBeforeDoubleDash) {
  auto check = [](std::vector<std::string> args, bool (*fn)(const std::vector<char*>&)) {
    args.insert(args.begin(), "binary");
    std::vector<char*> pointers;
    for (std::string& arg : args) pointers.push_back(arg.data());
    return fn(pointers);
  };
  EXPECT_TRUE(check({"--listen=x", "-h"}, WantsHelp));
  EXPECT_TRUE(check({"--help"}, WantsHelp));
  EXPECT_FALSE(check({"--", "--help"}, WantsHelp));
  EXPECT_TRUE(check({"--version"}, WantsVersion));
  EXPECT_FALSE(check({"--listen=x"}, WantsVersion));
}

}  // namespace
}  // namespace memload
