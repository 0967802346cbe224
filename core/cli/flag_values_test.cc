#include "core/cli/flag_values.h"

#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ParseLabelsTest, ParsesPairs) {
  auto labels = ParseLabels(" zone=a, tier=gold ,kubernetes.io/role=worker");
  ASSERT_THAT(labels, IsOk());
  EXPECT_THAT(*labels, ElementsAre(Pair("kubernetes.io/role", "worker"), Pair("tier", "gold"),
                                   Pair("zone", "a")));
  EXPECT_THAT(ParseLabels(""), IsOk());
  EXPECT_TRUE(ParseLabels("")->empty());
  auto empty_value = ParseLabels("flag=");
  ASSERT_THAT(empty_value, IsOk());
  EXPECT_THAT(*empty_value, ElementsAre(Pair("flag", "")));
}

TEST(ParseLabelsTest, RejectsBadEntries) {
  for (const char* bad :
       {"zone", "=a", "zone=a,zone=b", "zo ne=a", "zone=a b", "zone=a/b", "zone=a,,tier=b"}) {
    EXPECT_THAT(ParseLabels(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label")))
        << bad;
  }
}

// The k=v,... syntax alone: any bytes in keys and values but ',' (and '=' in a key).
TEST(SplitLabelsTest, SplitsInOrderAndLeavesTheContentToTheCaller) {
  auto pairs = SplitLabels(" note=two words , url=a=b,e=, team:x/y@z=1 ");
  ASSERT_THAT(pairs, IsOk());
  EXPECT_THAT(*pairs, ElementsAre(Pair("note", "two words"), Pair("url", "a=b"), Pair("e", ""),
                                  Pair("team:x/y@z", "1")));
  EXPECT_THAT(SplitLabels("  "), IsOk());
  EXPECT_TRUE(SplitLabels("")->empty());
  auto empty_key = SplitLabels("=v");  // The caller's rule refuses it (plan rules: 1-128 bytes).
  ASSERT_THAT(empty_key, IsOk());
  EXPECT_THAT(*empty_key, ElementsAre(Pair("", "v")));
  EXPECT_THAT(SplitLabels("a=1,b"), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "label \"b\" is not of the form key=value"));
  EXPECT_THAT(SplitLabels("a=1,,b=2"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                "label \"\" is not of the form key=value"));
  EXPECT_THAT(SplitLabels("a=1,b=2,a=3"),
              StatusIs(absl::StatusCode::kInvalidArgument, "label \"a\" given twice"));
}

TEST(ParseSizeOrPercentTest, ParsesBoth) {
  auto percent = ParseSizeOrPercent("80%");
  ASSERT_THAT(percent, IsOk());
  EXPECT_DOUBLE_EQ(*percent->percent, 80.0);
  EXPECT_FALSE(percent->bytes.has_value());
  EXPECT_THAT(percent->Resolve(1000), IsOk());
  EXPECT_EQ(*percent->Resolve(1000), 800u);

  auto bytes = ParseSizeOrPercent("512MiB");
  ASSERT_THAT(bytes, IsOk());
  EXPECT_EQ(*bytes->bytes, 512u << 20);
  EXPECT_EQ(*bytes->Resolve(1), 512u << 20);
}

TEST(ParseSizeOrPercentTest, RejectsBadText) {
  for (const char* bad : {"", "%", "0%", "101%", "-5%", "abc%", "nan%", "12Q"}) {
    EXPECT_THAT(ParseSizeOrPercent(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("")))
        << bad;
  }
}

TEST(ParseLabelLinesTest, KeepsGoodLinesAndNamesTheOthers) {
  std::vector<std::string> skipped;
  auto labels = ParseLabelLines(
      "# from the Node\nkubernetes.io/hostname=node-a\n\ntopology.kubernetes.io/zone=z1\n"
      "a.very.long.prefix.example.com/and-an-even-longer-label-name-that-is-too-long=x\n"
      "zone=a,tier=b\nnot-a-label\n",
      &skipped);
  EXPECT_THAT(labels, ElementsAre(Pair("kubernetes.io/hostname", "node-a"),
                                  Pair("topology.kubernetes.io/zone", "z1")));
  EXPECT_EQ(skipped.size(), 3u);
}

TEST(NormalizeFlagNamesTest, RewritesDashesInNamesOnly) {
  const char* argv[] = {"memloadctl", "start", "--plan-id=a-b", "--max-failures", "10%",
                        "-v",         "--",    "--not-a-flag"};
  std::vector<std::string> args = NormalizeFlagNames(8, const_cast<char**>(argv));
  EXPECT_THAT(args, ::testing::ElementsAre("memloadctl", "start", "--plan_id=a-b", "--max_failures",
                                           "10%", "-v", "--", "--not-a-flag"));
}

}  // namespace
}  // namespace memload
