#include "controller/plan_builder.h"

#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "controller/testing/text_proto.h"
#include "core/clock.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

using ::memload::testing::ParseTextProto;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 3, 14, 25, 1), absl::UTCTimeZone());
constexpr uint32_t kRandom = 0x5a3f9;  // Only the low 16 bits count.
constexpr char kGeneratedId[] = "memload-20261103-142501-a3f9";

absl::StatusOr<v1::PlanSpec> Build(const PlanFlags& flags) {
  return BuildPlanFromFlags(flags, kNow, kRandom);
}

v1::PlanSpec Spec(const std::string& text) { return ParseTextProto<v1::PlanSpec>(text); }

MATCHER_P(EqualsProto, expected, "") {
  if (google::protobuf::util::MessageDifferencer::Equals(arg, expected)) return true;
  *result_listener << "got " << arg.ShortDebugString() << "\nwant " << expected.ShortDebugString();
  return false;
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::ofstream(path) << text;
  return path;
}

// --- From flags.

TEST(PlanIdTest, GeneratedFromTimeAndRandom) {
  EXPECT_EQ(MakePlanId(kNow, kRandom), kGeneratedId);
  EXPECT_EQ(MakePlanId(kNow, 0x7), "memload-20261103-142501-0007");
}

TEST(PlanIdTest, RealSeamMakesAWellFormedId) {
  PlanFlags flags;
  flags.kind = "retained";
  flags.target = "1MiB";
  absl::StatusOr<v1::PlanSpec> spec = BuildPlanFromFlags(flags, Clock::Real());
  ASSERT_THAT(spec, IsOk());
  EXPECT_THAT(spec->plan_id(), MatchesRegex("memload-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}"));
}

// Flag values by name as a command line gives them (SetPlanFlag: each marked as given);
// nullopt leaves the flag unset.
using FlagValues = std::vector<std::pair<std::string, std::optional<std::string>>>;

PlanFlags Given(const FlagValues& values, PlanFlags flags = PlanFlags()) {
  for (const auto& [name, value] : values) {
    if (value.has_value()) {
      EXPECT_THAT(SetPlanFlag(flags, name, *value), IsOk()) << name;
      continue;
    }
    const PlanFlagInfo* info = FindPlanFlag(name);
    EXPECT_NE(info, nullptr) << name;
    if (info == nullptr) continue;
    if (info->text != nullptr) flags.*info->text = "";
    if (info->toggle != nullptr) flags.*info->toggle = false;
    flags.explicitly_set.erase(name);
  }
  return flags;
}

// The plan some flags describe, as text format; $ID stands for the generated plan id.
struct GoodFlags {
  std::string name;
  FlagValues flags;
  std::string plan;
};

TEST(FlagsTest, FlagsBuildThePlan) {
  for (const GoodFlags& c : std::vector<GoodFlags>{
           {"retained, every flag",
            {{"kind", "retained"},
             {"target", "512MiB"},
             {"touch", "fill"},
             {"backing", "shmem"},
             {"block_size", "2MiB"},
             {"ramp", "30s"},
             {"hold", "10m"},
             {"lease", "45s"},
             {"plan_id", "drill-1"},
             {"labels", "zone=a,drill=capacity"},
             {"expect_oom", "true"},
             {"oom_score_adj", "500"},
             {"huge_pages", "true"},
             {"mlock", "true"}},
            R"pb(
              plan_id: "drill-1"
              lease { seconds: 45 }
              labels { key: "zone" value: "a" }
              labels { key: "drill" value: "capacity" }
              expect_oom: true
              oom_score_adj: 500
              retained {
                block_size: 2097152
                touch: TOUCH_MODE_FILL
                backing: BACKING_SHMEM
                huge_pages: true
                mlock: true
                phases {
                  target { bytes: 536870912 }
                  ramp_duration { seconds: 30 }
                  hold { seconds: 600 }
                }
              }
            )pb"},
           // Case does not matter; the defaults hold forever, with a generated id.
           {"retained, defaults",
            {{"kind", "Retained"}, {"target", "1.5GiB"}},
            R"pb(
              plan_id: "$ID"
              retained {
                block_size: 1048576
                phases {
                  target { bytes: 1610612736 }
                  hold_forever: true
                }
              }
            )pb"},
           {"retained, repeat makes a sawtooth",
            {{"kind", "retained"},
             {"target", "256MiB"},
             {"ramp", "5s"},
             {"hold", "10s"},
             {"repeat", "3"}},
            R"pb(
              plan_id: "$ID"
              retained {
                block_size: 1048576
                repeat: 3
                phases {
                  target { bytes: 268435456 }
                  ramp_duration { seconds: 5 }
                  hold { seconds: 10 }
                }
                phases { target { bytes: 0 } }
              }
            )pb"},
           {"streaming, every flag",
            {{"kind", "streaming"},
             {"block_size", "64KiB"},
             {"touch", "page"},
             {"rate", "100MiB/s"},
             {"window", "16"},
             {"workers", "4"},
             {"return_to_os", "true"},
             {"amount", "1GiB"},
             {"duration", "1m"},
             {"plan_id", "churn"}},
            R"pb(
              plan_id: "churn"
              streaming {
                block_size: 65536
                touch: TOUCH_MODE_PAGE
                return_to_os: true
                window: 16
                rate_bytes_per_sec: 104857600
                workers: 4
                amount_bytes: 1073741824
                duration { seconds: 60 }
              }
            )pb"},
           // "/s" is optional in a rate.
           {"streaming, defaults and a plain rate",
            {{"kind", "streaming"}, {"rate", "10MiB"}, {"duration", "forever"}},
            R"pb(
              plan_id: "$ID"
              streaming { block_size: 1048576 rate_bytes_per_sec: 10485760 }
            )pb"},
           {"utilization",
            {{"kind", "utilization"},
             {"target", "85%"},
             {"duration", "10m"},
             {"touch", "fill"},
             {"backing", "malloc"},
             {"block_size", "4MiB"},
             {"plan_id", "hold-85"}},
            R"pb(
              plan_id: "hold-85"
              utilization {
                target_percent: 85
                duration { seconds: 600 }
                block_size: 4194304
                touch: TOUCH_MODE_FILL
                backing: BACKING_MALLOC
              }
            )pb"},
       }) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<v1::PlanSpec> spec = Build(Given(c.flags));
    ASSERT_THAT(spec, IsOk());
    EXPECT_THAT(*spec, EqualsProto(Spec(absl::StrReplaceAll(c.plan, {{"$ID", kGeneratedId}}))));
  }
}

TEST(FlagsTest, RetainedTargetPercentages) {
  struct Case {
    std::string text;
    std::string quantity;
  };
  for (const Case& c : std::vector<Case>{{"80%", "percent_of_total: 80"},
                                         {"100%", "percent_of_total: 100"},
                                         {"12.5%total", "percent_of_total: 12.5"},
                                         {"50%available", "percent_of_available: 50"},
                                         {"90%cgroup", "percent_of_cgroup_limit: 90"}}) {
    absl::StatusOr<v1::PlanSpec> spec = Build(Given({{"kind", "retained"}, {"target", c.text}}));
    ASSERT_THAT(spec, IsOk()) << c.text;
    v1::Quantity want;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(c.quantity, &want));
    EXPECT_THAT(spec->retained().phases(0).target(), EqualsProto(want)) << c.text;
  }
}

TEST(FlagsTest, RetainedRampRate) {
  absl::StatusOr<v1::PlanSpec> spec = Build(
      Given({{"kind", "retained"}, {"target", "1GiB"}, {"ramp", "64MiB/s"}, {"hold", "forever"}}));
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->retained().phases(0).ramp_bytes_per_sec(), 64u << 20);
  EXPECT_FALSE(spec->retained().phases(0).has_ramp_duration());
  EXPECT_TRUE(spec->retained().phases(0).hold_forever());
}

// Without --hold, --repeat=forever climbs and drops with no hold at the top.
TEST(FlagsTest, RepeatForeverWithoutAHold) {
  absl::StatusOr<v1::PlanSpec> spec = Build(
      Given({{"kind", "retained"}, {"target", "256MiB"}, {"ramp", "5s"}, {"repeat", "forever"}}));
  ASSERT_THAT(spec, IsOk());
  EXPECT_TRUE(spec->retained().repeat_forever());
  EXPECT_FALSE(spec->retained().phases(0).hold_forever());
  EXPECT_FALSE(spec->retained().phases(0).has_hold());
  EXPECT_EQ(spec->retained().phases_size(), 2);
}

TEST(FlagsTest, UtilizationReference) {
  for (const auto& [target, reference] :
       std::vector<std::pair<std::string, v1::UtilizationPlan::Reference>>{
           {"70%cgroup", v1::UtilizationPlan::REFERENCE_CGROUP},
           {"70%node", v1::UtilizationPlan::REFERENCE_NODE}}) {
    absl::StatusOr<v1::PlanSpec> spec = Build(Given({{"kind", "utilization"}, {"target", target}}));
    ASSERT_THAT(spec, IsOk()) << target;
    EXPECT_EQ(spec->utilization().reference(), reference) << target;
  }
}

// Each case: flags over `base`, and a substring of the InvalidArgument error they give.
struct BadFlag {
  std::string name;  // For the failure message.
  FlagValues flags;
  std::string message;
};

void ExpectBad(const PlanFlags& base, const std::vector<BadFlag>& cases) {
  for (const BadFlag& c : cases) {
    EXPECT_THAT(Build(Given(c.flags, base)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name;
  }
}

TEST(FlagsTest, BadRetainedFlags) {
  ExpectBad(
      Given({{"kind", "retained"}, {"target", "1GiB"}}),
      {
          {"size", {{"target", "12Q"}}, R"(--target="12Q": invalid size "12Q": unknown unit "Q")"},
          {"percent high",
           {{"target", "120%"}},
           R"(--target="120%": percent must be in [0.001, 100], got 120)"},
          {"percent zero",
           {{"target", "0%"}},
           R"(--target="0%": percent must be in [0.001, 100], got 0)"},
          // issue 12.8: 1e-300% passed as "> 0" and started a 0-byte plan.
          {"percent tiny",
           {{"target", "1e-300%"}},
           R"(--target="1e-300%": percent must be in [0.001, 100], got 1e-300)"},
          {"percent word", {{"target", "lots%"}}, R"(--target="lots%": not a percentage)"},
          {"percent suffix",
           {{"target", "80%free"}},
           R"(--target="80%free": unknown percentage suffix "free")"},
          {"no target", {{"target", std::nullopt}}, "--target is required for --kind=retained"},
          {"touch", {{"touch", "paged"}}, R"(--touch="paged": want none, page or fill)"},
          {"backing", {{"backing", "heap"}}, R"(--backing="heap": want malloc, mmap or shmem)"},
          {"block size zero",
           {{"block_size", "0"}},
           R"(--block_size="0": must be at least 1 byte)"},
          {"block size", {{"block_size", "1x"}}, R"(--block_size="1x": invalid size)"},
          {"block size huge",
           {{"block_size", "1PiB"}},
           R"(--block_size="1PiB": must be at most 128 TiB (more than any machine can map), got 1125899906842624 bytes (1 PiB))"},
          {"ramp word", {{"ramp", "soon"}}, R"(--ramp="soon": not a duration)"},
          {"ramp negative", {{"ramp", "-5s"}}, R"(--ramp="-5s": must not be negative, got -5s)"},
          {"ramp rate zero",
           {{"ramp", "0B/s"}},
           R"(--ramp="0B/s": a rate must be more than 0 bytes per second)"},
          {"ramp rate", {{"ramp", "fastMiB/s"}}, R"(--ramp="fastMiB/s": invalid size)"},
          {"hold", {{"hold", "later"}}, R"(--hold="later": not a duration)"},
          {"hold infinite", {{"hold", "inf"}}, R"(--hold="inf": not a duration)"},
          {"repeat zero", {{"repeat", "0"}}, R"(--repeat="0": want N >= 1 or forever)"},
          {"repeat word", {{"repeat", "often"}}, R"(--repeat="often": not a whole number)"},
          // A whole number too large for the field was "not a whole number" (attack N14).
          {"repeat too large",
           {{"repeat", "99999999999"}},
           R"(--repeat="99999999999": larger than the maximum of 4294967295: want N >= 1 or forever)"},
          {"repeat negative",
           {{"repeat", "-1"}},
           R"(--repeat="-1": negative: want N >= 1 or forever)"},
          {"repeat forever hold",
           {{"repeat", "2"}, {"hold", "forever"}},
           R"(--hold="forever": a hold that never ends)"},
          {"lease zero", {{"lease", "0s"}}, R"(--lease="0s": must be positive, got 0s)"},
          {"lease", {{"lease", "1 minute"}}, R"(--lease="1 minute": not a duration)"},
          // Accepted, then the plan expired at the agent's next tick (attack N11).
          {"lease 1ns", {{"lease", "1ns"}}, R"(--lease="1ns": must be at least 1s, got 1ns)"},
          {"lease 999ms",
           {{"lease", "999ms"}},
           R"(--lease="999ms": must be at least 1s, got 999ms)"},
          {"lease long",
           {{"lease", "1193h"}},
           R"(--lease="1193h": must be at most 24h, got 1193h (memloadctl run renews a shorter one))"},
          {"plan id",
           {{"plan_id", "my plan!"}},
           R"(--plan_id="my plan!": must be 1-128 characters of [A-Za-z0-9._-])"},
          {"plan id long", {{"plan_id", std::string(129, 'a')}}, "must be 1-128 characters"},
          {"labels",
           {{"labels", "novalue"}},
           R"(--labels="novalue": label "novalue" is not of the form key=value)"},
          {"labels twice", {{"labels", "a=1,a=2"}}, R"(--labels="a=1,a=2": label "a" given twice)"},
          // The plan-label rule (the agent's), not the node-label one.
          {"label empty key",
           {{"labels", "=v"}},
           R"(--labels="=v": labels: a key must be 1-128 bytes, got 0 (""))"},
          {"label long key",
           {{"labels", std::string(129, 'k') + "=v"}},
           "labels: a key must be 1-128 bytes, got 129"},
          {"label long value",
           {{"labels", "k=" + std::string(257, 'v')}},
           R"(labels["k"]: a value may be at most 256 bytes, got 257)"},
          {"oom score",
           {{"oom_score_adj", "2000"}},
           R"(--oom_score_adj="2000": must be in [-1000, 1000], got 2000)"},
          {"oom score word",
           {{"oom_score_adj", "high"}},
           R"(--oom_score_adj="high": not a whole number)"},
          {"window",
           {{"window", "8"}},
           "--window does not apply to --kind=retained (only to streaming plans)"},
          {"duration",
           {{"duration", "1m"}},
           "--duration does not apply to --kind=retained (only to utilization and streaming "
           "plans)"},
          {"return to os",
           {{"return_to_os", "true"}},
           "--return_to_os does not apply to --kind=retained"},
          {"explicit false", {{"workers", ""}}, "--workers does not apply to --kind=retained"},
          {"kind", {{"kind", "heap"}}, R"(--kind="heap": want retained, streaming or utilization)"},
          {"no kind", {{"kind", std::nullopt}}, "--kind is required"},
      });
}

// A plan's --labels follow the plan rules (any bytes but ',', key 1-128 bytes, value up to
// 256, at most 32): what the API accepts can be written with the flag (attack N13: it took
// only keys and values of at most 63 of [A-Za-z0-9._/-]).
TEST(FlagsTest, LabelsFollowThePlanRules) {
  const std::string long_key(128, 'k');
  const std::string long_value(256, 'v');
  absl::StatusOr<v1::PlanSpec> spec =
      Build(Given({{"kind", "streaming"},
                   {"labels", absl::StrCat("owner=team blue, url=http://x/?a=b,", long_key, "=",
                                           long_value, ",empty=")}}));
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->labels().size(), 4u);
  EXPECT_EQ(spec->labels().at("owner"), "team blue");
  EXPECT_EQ(spec->labels().at("url"), "http://x/?a=b");
  EXPECT_EQ(spec->labels().at(long_key), long_value);
  EXPECT_EQ(spec->labels().at("empty"), "");

  std::string many;
  for (int i = 0; i < 33; ++i) absl::StrAppend(&many, i == 0 ? "" : ",", "k", i, "=v");
  EXPECT_THAT(Build(Given({{"kind", "streaming"}, {"labels", many}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("--labels=\"", many, "\": labels: at most 32 labels, got 33")));
  // Merged with a plan file's labels, the count is the merged one.
  PlanFlags flags;
  std::string file_labels;
  for (int i = 0; i < 31; ++i)
    absl::StrAppend(&file_labels, i == 0 ? "" : ",", "\"f", i, "\": \"\"");
  flags.plan = WriteFile("labelled.json", absl::StrCat(R"({"labels": {)", file_labels,
                                                       R"(}, "streaming": {"blockSize": "8"}})"));
  flags.labels = "f0=x,new=1";  // f0 replaces the file's: 32 in all.
  absl::StatusOr<v1::PlanSpec> merged = Build(flags);
  ASSERT_THAT(merged, IsOk());
  EXPECT_EQ(merged->labels().size(), 32u);
  EXPECT_EQ(merged->labels().at("f0"), "x");
  flags.labels = "new=1,new2=2";
  EXPECT_THAT(
      Build(flags),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          R"(--labels="new=1,new2=2": labels: at most 32 labels, got 33 (the plan file has 31))"));
}

TEST(FlagsTest, BadStreamingFlags) {
  ExpectBad(
      Given({{"kind", "streaming"}}),
      {
          {"target",
           {{"target", "1GiB"}},
           "--target does not apply to --kind=streaming (only to retained and "
           "utilization plans)"},
          {"backing", {{"backing", "mmap"}}, "--backing does not apply to --kind=streaming"},
          {"huge pages",
           {{"huge_pages", "true"}},
           "--huge_pages does not apply to --kind=streaming (only to retained plans)"},
          {"ramp", {{"ramp", "1s"}}, "--ramp does not apply"},
          {"window",
           {{"window", "many"}},
           R"(--window="many": not a whole number: want a block count)"},
          {"window negative", {{"window", "-1"}}, R"(--window="-1": negative: want a block count)"},
          {"window empty but given", {{"window", ""}}, R"(--window="": not a whole number)"},
          {"window overflow",
           {{"window", "18446744073709551615"}},
           "is more than this machine can address"},
          {"workers zero", {{"workers", "0"}}, R"(--workers="0": must be 1..64, got 0)"},
          {"workers many", {{"workers", "65"}}, R"(--workers="65": must be 1..64, got 65)"},
          {"amount",
           {{"amount", "1000"}},
           R"(--amount="1000": must be a multiple of the block size (1048576 bytes), got 1000)"},
          {"amount zero", {{"amount", "0"}}, R"(--amount="0": must be more than 0 bytes)"},
          {"rate", {{"rate", "fast"}}, R"(--rate="fast": invalid size)"},
          {"duration zero", {{"duration", "0s"}}, R"(--duration="0s": must be positive, got 0s)"},
      });
}

TEST(FlagsTest, BadUtilizationFlags) {
  ExpectBad(
      Given({{"kind", "utilization"}, {"target", "80%"}}),
      {
          {"size",
           {{"target", "512MiB"}},
           R"(--target="512MiB": utilization plans take a percentage)"},
          {"hundred",
           {{"target", "100%"}},
           R"(--target="100%": percent must be in [0.001, 100), got 100)"},
          {"suffix",
           {{"target", "80%available"}},
           R"(unknown percentage suffix "available": want N%, N%node or N%cgroup)"},
          {"no target", {{"target", std::nullopt}}, "--target is required for --kind=utilization"},
          {"touch none",
           {{"touch", "none"}},
           R"(--touch="none": utilization plans need page or fill)"},
          {"repeat",
           {{"repeat", "2"}},
           "--repeat does not apply to --kind=utilization (only to retained plans)"},
          {"mlock", {{"mlock", "true"}}, "--mlock does not apply"},
      });
}
TEST(FlagsTest, FlagNamesCoverEveryField) {
  const std::vector<absl::string_view>& names = PlanFlagNames();
  EXPECT_EQ(names.size(), 22u);
  EXPECT_THAT(names, ::testing::Contains("plan_id"));
  EXPECT_THAT(names, ::testing::Contains("return_to_os"));
  EXPECT_THAT(names, ::testing::Contains("plan"));
}

// --- Plan files.

TEST(PlanFileTest, ParsesTheDocumentedExample) {
  absl::StatusOr<v1::PlanSpec> spec = ParsePlanFile(
      R"({"planId":"drill","retained":{"blockSize":"1048576","phases":[{"target":{"bytes":"536870912"},"rampDuration":"10s","holdForever":true}]}})",
      "drill.json");
  ASSERT_THAT(spec, IsOk());
  EXPECT_THAT(*spec, EqualsProto(Spec(R"pb(
    plan_id: "drill"
    retained {
      block_size: 1048576
      phases {
        target { bytes: 536870912 }
        ramp_duration { seconds: 10 }
        hold_forever: true
      }
    }
  )pb")));
}

TEST(PlanFileTest, MultiPhaseWithProtoNamesAndPercentages) {
  absl::StatusOr<v1::PlanSpec> spec = ParsePlanFile(R"({
    "plan_id": "steps",
    "lease": "90s",
    "labels": {"drill": "capacity"},
    "retained": {
      "touch": "TOUCH_MODE_FILL",
      "repeat": 2,
      "phases": [
        {"target": {"percentOfTotal": 40}, "ramp_bytes_per_sec": "67108864", "hold": "30s"},
        {"target": {"percentOfAvailable": 50}, "hold": "0.5s"},
        {"target": {"bytes": "0"}}
      ]
    }
  })",
                                                    "steps.json");
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->retained().phases_size(), 3);
  EXPECT_EQ(spec->retained().phases(0).target().percent_of_total(), 40);
  EXPECT_EQ(spec->retained().phases(1).hold().nanos(), 500000000);
  EXPECT_EQ(spec->labels().at("drill"), "capacity");
}

TEST(PlanFileTest, StreamingAndUtilization) {
  EXPECT_THAT(ParsePlanFile(R"({"streaming": {"blockSize": "65536", "workers": 2}})", "s.json"),
              IsOk());
  EXPECT_THAT(ParsePlanFile(R"({"utilization": {"targetPercent": 85, "reference":
                                "REFERENCE_CGROUP", "interval": "0.1s"}})",
                            "u.json"),
              IsOk());
}

TEST(PlanFileTest, SyntaxErrorsGiveLineAndColumn) {
  EXPECT_THAT(ParsePlanFile("{\n  \"planId\": \"drill\",\n  \"retained\": {\"blockSize\": 1,, }\n}",
                            "drill.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("drill.json:3:")));
  EXPECT_THAT(ParsePlanFile("{\"planId\":", "cut.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("cut.json:1:11: ")));
  EXPECT_THAT(ParsePlanFile("", "empty.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("empty.json")));
}

// protobuf keeps the last of two equal keys (appends a repeated field given twice): in a
// plan file each was a setting silently lost (attack N15). Now an error at the second key.
TEST(PlanFileTest, AKeyGivenTwiceInOneObjectIsAnError) {
  const std::string body = R"("streaming": {"blockSize": "8"})";
  struct Case {
    std::string json;
    std::string message;
  };
  for (
      const Case& c : std::vector<Case>{
          {absl::StrCat(R"({"planId": "a", "planId": "b", )", body, "}"),
           R"(d.json:1:17: key "planId" given twice in one object (first at 1:2))"},
          // The same field under its JSON name and its proto name.
          {absl::StrCat(R"({"planId": "a",)", "\n  ", R"("plan_id": "b", )", body, "}"),
           R"(d.json:2:3: key "plan_id" given twice in one object (first as "planId" at 1:2))"},
          // Escapes decode as the parser decodes them; bare keys and single quotes count.
          {absl::StrCat(R"({"planId": "a", "plan\u0049d": "b", )", body, "}"),
           R"(d.json:1:17: key "planId" given twice)"},
          {absl::StrCat(R"({planId: "a", 'plan_id': "b", )", body, "}"),
           R"(d.json:1:15: key "plan_id" given twice in one object (first as "planId" at 1:2))"},
          // Nested: a phase's target, a quantity's bytes, a repeated field, map keys.
          {R"({"retained": {"phases": [{"target": {"bytes": "1048576"}, "hold": "1s", "target": {"bytes": "2097152"}}]}})",
           R"(d.json:1:73: key "target" given twice in one object (first at 1:27))"},
          {R"({"retained": {"phases": [{"target": {"bytes": "1048576", "bytes": "8"}}]}})",
           R"(d.json:1:58: key "bytes" given twice)"},
          {R"({"retained": {"phases": [{"target": {"bytes": "1"}}], "phases": []}})",
           R"(d.json:1:55: key "phases" given twice)"},
          {absl::StrCat(R"({"labels": {"team": "a", "team": "b"}, )", body, "}"),
           R"(d.json:1:26: key "team" given twice)"},
      }) {
    EXPECT_THAT(ParsePlanFile(c.json, "d.json"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.json;
  }
  // Not duplicates: the same key in two objects, map keys that would be one field's two
  // spellings (map keys are text), a key's text as a value, trailing commas.
  absl::StatusOr<v1::PlanSpec> fine = ParsePlanFile(
      R"({"planId": "planId", "labels": {"plan_id": "1", "planId": "2", "a": "a"},
          "retained": {"phases": [{"target": {"bytes": "1048576"}, "hold": "1s"},
                                  {"target": {"bytes": "2097152"}, "hold": "1s",},]}})",
      "f.json");
  ASSERT_THAT(fine, IsOk());
  EXPECT_EQ(fine->labels().size(), 3u);
  EXPECT_EQ(fine->retained().phases_size(), 2);
}

// The scan reads only what the parser reads: where the text is not JSON before a key is
// given twice, the parser's error stands; the scan is bounded in depth and linear in size.
TEST(PlanFileTest, TheDuplicateScanLeavesOtherErrorsToTheParser) {
  EXPECT_THAT(ParsePlanFile(R"({"planId": 01, "planId": "b"})", "s.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("s.json:1:"), Not(HasSubstr("given twice")))));
  EXPECT_THAT(ParsePlanFile(R"({"planId": "a" "planId": "b"})", "s.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("s.json:1:"), Not(HasSubstr("given twice")))));
  EXPECT_THAT(ParsePlanFile(R"({"a\u00": 1, "a\u00": 2})", "s.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("given twice"))));
  // Deeper than the parser goes: its error, not a scan 100,000 levels down.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_THAT(ParsePlanFile(deep, "s.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("given twice"))));
  std::string deep_objects;
  for (int i = 0; i < 200; ++i) absl::StrAppend(&deep_objects, R"({"a": )");
  absl::StrAppend(&deep_objects, "1", std::string(200, '}'));
  EXPECT_THAT(ParsePlanFile(deep_objects, "s.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("given twice"))));
  // A file of many keys at the size limit is scanned, and refused at its one duplicate.
  std::string wide = R"({"labels": {)";
  for (int i = 0; wide.size() < (1 << 20) - 100; ++i)
    absl::StrAppend(&wide, "\"k", i, "\": \"\", ");
  absl::StrAppend(&wide, R"("k0": ""}})");
  EXPECT_THAT(ParsePlanFile(wide, "w.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(R"(key "k0" given twice)")));
}

TEST(PlanFileTest, MappingErrorsNameTheField) {
  EXPECT_THAT(ParsePlanFile(R"({"retaind": {}})", "p.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("p.json: retaind")));
  EXPECT_THAT(ParsePlanFile(R"({"retained": {"blockSize": "1MiB"}})", "p.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("p.json: retained.block_size: invalid value \"1MiB\""),
                             HasSubstr("integer byte counts"))));
  EXPECT_THAT(ParsePlanFile(R"({"retained": {"phases": [{"hold": "forever"}]}})", "p.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("p.json: retained.phases[0].hold: "),
                             HasSubstr("durations are strings"))));
  EXPECT_THAT(ParsePlanFile(R"({"retained": {"touch": "TOUCH_MODE_PAGES"}})", "p.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("p.json: retained.touch")));
  EXPECT_THAT(ParsePlanFile(R"([1, 2])", "p.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("p.json: Root element must be a message")));
}

TEST(PlanFileTest, SemanticErrors) {
  struct Case {
    std::string json;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"planId": "x"})", "f.json: the plan has no kind"},
           {R"({"retained": {}})", "f.json: retained.phases: at least one phase is required"},
           {R"({"retained": {"phases": [{}]}})", "f.json: retained.phases[0].target: required"},
           {R"({"retained": {"phases": [{"target": {"percentOfTotal": 120}}]}})",
            "f.json: retained.phases[0].target.percent_of_total: percent must be in [0.001, 100], "
            "got 120"},
           {R"({"retained": {"phases": [{"target": {"percentOfCgroupLimit": 0}}]}})",
            "retained.phases[0].target.percent_of_cgroup_limit: percent must be in [0.001, 100]"},
           {R"({"retained": {"phases": [{"target": {"bytes": "1"}},
               {"target": {"bytes": "2"}, "rampDuration": "5s", "rampBytesPerSec": "1024"}]}})",
            "f.json: retained.phases[1]: give ramp_bytes_per_sec or ramp_duration, not both"},
           {R"({"retained": {"phases": [{"target": {"bytes": "1"}, "hold": "-5s"}]}})",
            "f.json: retained.phases[0].hold: must not be negative, got -5s"},
           {R"({"retained": {"phases": [{"target": {"bytes": "1"}, "hold": "5s",
               "holdForever": true}]}})",
            "retained.phases[0]: give hold or hold_forever, not both"},
           {R"({"retained": {"repeat": 2, "repeatForever": true, "phases": [{"target":
               {"bytes": "1"}}]}})",
            "retained: give repeat or repeat_forever, not both"},
           {R"({"retained": {"touch": 7, "phases": [{"target": {"bytes": "1"}}]}})",
            "f.json: retained.touch: unknown value 7"},
           {R"({"lease": "0s", "streaming": {"blockSize": "1"}})",
            "f.json: lease: must be positive, got 0s"},
           {R"({"lease": "0.000000001s", "streaming": {"blockSize": "1"}})",
            "f.json: lease: must be at least 1s, got 1ns"},
           {R"({"oomScoreAdj": 5000, "streaming": {"blockSize": "1"}})",
            "f.json: oom_score_adj: must be in [-1000, 1000], got 5000"},
           {R"({"planId": "a b", "streaming": {"blockSize": "1"}})",
            R"(f.json: plan_id: must be 1-128 characters of [A-Za-z0-9._-], got "a b")"},
           {R"({"streaming": {}})", "f.json: streaming.block_size: required (> 0)"},
           {R"({"streaming": {"blockSize": "1024", "workers": 65}})",
            "streaming.workers: must be 1..64, got 65"},
           {R"({"streaming": {"blockSize": "1024", "amountBytes": "1000"}})",
            "streaming.amount_bytes: must be a multiple of the block size (1024 bytes), got 1000"},
           {R"({"utilization": {"targetPercent": 100}})",
            "f.json: utilization.target_percent: percent must be in [0.001, 100), got 100"},
           {R"({"utilization": {"targetPercent": 50, "touch": "TOUCH_MODE_NONE"}})",
            "utilization.touch: utilization plans need page or fill"},
           {R"({"utilization": {"targetPercent": 50, "interval": "0.001s"}})",
            "utilization.interval: must be at least 10ms, got 1ms"},
       }) {
    EXPECT_THAT(ParsePlanFile(c.json, "f.json"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.json;
  }
}

// Flags and files describe a shared problem in the same words.
TEST(PlanFileTest, SameProblemSameWordsAsFlags) {
  PlanFlags flags;
  flags.kind = "retained";
  flags.target = "120%";
  const std::string problem = "percent must be in [0.001, 100], got 120";
  EXPECT_THAT(Build(flags), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(problem)));
  EXPECT_THAT(
      ParsePlanFile(R"({"retained":{"phases":[{"target":{"percentOfTotal":120}}]}})", "f.json"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(problem)));

  flags.target = "1GiB";
  flags.hold = "-5s";
  EXPECT_THAT(Build(flags), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("must not be negative, got -5s")));
}

TEST(PlanFileTest, ReadPlanFile) {
  const std::string good =
      WriteFile("good.json", R"({"planId":"drill","streaming":{"blockSize":"4096"}})");
  absl::StatusOr<v1::PlanSpec> spec = ReadPlanFile(good);
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->streaming().block_size(), 4096u);

  const std::string missing = absl::StrCat(::testing::TempDir(), "/missing.json");
  EXPECT_THAT(ReadPlanFile(missing), StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));
  EXPECT_THAT(ReadPlanFile(::testing::TempDir()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Is a directory")));
  const std::string huge = WriteFile("huge.json", std::string((1 << 20) + 10, ' '));
  EXPECT_THAT(ReadPlanFile(huge), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("larger than the limit of 1 MiB")));
  const std::string bad = WriteFile("bad.json", R"({"retained": {}})");
  EXPECT_THAT(ReadPlanFile(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                          StartsWith(absl::StrCat(bad, ": retained.phases"))));
}

// --- --plan with overrides.

TEST(OverridesTest, PlanLevelFlagsOverrideTheFile) {
  PlanFlags flags;
  flags.plan = WriteFile("base.json", R"({
    "planId": "drill", "lease": "60s", "labels": {"a": "1", "keep": "yes"},
    "expectOom": true, "oomScoreAdj": 900,
    "retained": {"phases": [{"target": {"bytes": "1048576"}, "holdForever": true}]}})");
  flags.plan_id = "drill-2";
  flags.lease = "2m";
  flags.labels = "a=3,b=2";
  flags.expect_oom = false;
  flags.explicitly_set.insert("expect_oom");  // --expect_oom=false given on purpose.
  flags.oom_score_adj = "-100";
  EXPECT_THAT(*Build(flags), EqualsProto(Spec(R"pb(
    plan_id: "drill-2"
    lease { seconds: 120 }
    labels { key: "a" value: "3" }
    labels { key: "b" value: "2" }
    labels { key: "keep" value: "yes" }
    expect_oom: false
    oom_score_adj: -100
    retained {
      phases {
        target { bytes: 1048576 }
        hold_forever: true
      }
    }
  )pb")));
}

TEST(OverridesTest, FileValuesStayWithoutFlagsAndAMissingIdIsGenerated) {
  PlanFlags flags;
  flags.plan = WriteFile("noid.json", R"({"expectOom": true, "streaming": {"blockSize": "8"}})");
  absl::StatusOr<v1::PlanSpec> spec = Build(flags);
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->plan_id(), kGeneratedId);
  EXPECT_TRUE(spec->expect_oom());
}

TEST(OverridesTest, PlanFlagsCannotBeCombinedWithAFile) {
  ExpectBad(
      Given({{"plan", WriteFile("combine.json", R"({"streaming": {"blockSize": "8"}})")}}),
      {
          {"target",
           {{"target", "1GiB"}},
           "--target cannot be combined with --plan: the file defines the plan"},
          {"kind", {{"kind", "streaming"}}, "--kind cannot be combined with --plan"},
          {"mlock", {{"mlock", "true"}}, "--mlock cannot be combined with --plan"},
          {"bad lease", {{"lease", "-1s"}}, R"(--lease="-1s": must not be negative, got -1s)"},
          {"empty plan", {{"plan", ""}}, R"(--plan="": want a file name)"},
      });
  PlanFlags missing;
  missing.plan = "/nonexistent/plan.json";
  EXPECT_THAT(Build(missing), StatusIs(absl::StatusCode::kNotFound, HasSubstr("plan.json")));
  missing.touch = "page";  // The usage error comes first, before the file is read.
  EXPECT_THAT(Build(missing), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("--touch cannot be combined with --plan")));
}

}  // namespace
}  // namespace controller
}  // namespace memload
