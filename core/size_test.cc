#include "core/size.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kKi = uint64_t{1} << 10;
constexpr uint64_t kMi = uint64_t{1} << 20;
constexpr uint64_t kGi = uint64_t{1} << 30;
constexpr uint64_t kTi = uint64_t{1} << 40;
constexpr uint64_t kPi = uint64_t{1} << 50;
constexpr uint64_t kEi = uint64_t{1} << 60;

struct GoodCase {
  const char* text;
  uint64_t bytes;
};

class ParseSizeGoodTest : public ::testing::TestWithParam<GoodCase> {};

TEST_P(ParseSizeGoodTest, ParsesToExactBytes) {
  EXPECT_THAT(ParseSize(GetParam().text), IsOk());
  EXPECT_EQ(ParseSize(GetParam().text).value_or(12345), GetParam().bytes)
      << "input: \"" << GetParam().text << "\"";
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseSizeGoodTest,
    ::testing::Values(
        // Plain bytes.
        GoodCase{"0", 0}, GoodCase{"1", 1}, GoodCase{"4096", 4096}, GoodCase{"007", 7},
        GoodCase{"100B", 100}, GoodCase{"100 B", 100}, GoodCase{"1.0", 1}, GoodCase{"2.000B", 2},
        GoodCase{"0B", 0},
        // Binary units, with and without B, with and without a space.
        GoodCase{"1Ki", kKi}, GoodCase{"1KiB", kKi}, GoodCase{"512MiB", 512 * kMi},
        GoodCase{"512Mi", 512 * kMi}, GoodCase{"3Gi", 3 * kGi}, GoodCase{"2TiB", 2 * kTi},
        GoodCase{"7Pi", 7 * kPi}, GoodCase{"1Ei", kEi}, GoodCase{"1 GiB", kGi},
        GoodCase{"1 Gi", kGi},
        // Decimal units.
        GoodCase{"1k", 1000}, GoodCase{"1K", 1000}, GoodCase{"1kB", 1000}, GoodCase{"1KB", 1000},
        GoodCase{"2M", 2000000}, GoodCase{"2MB", 2000000}, GoodCase{"2GB", 2000000000},
        GoodCase{"2G", 2000000000}, GoodCase{"3T", 3000000000000},
        GoodCase{"4PB", 4000000000000000}, GoodCase{"5E", 5000000000000000000},
        GoodCase{"5 EB", 5000000000000000000},
        // Fractions: exact, then rounded down to whole bytes.
        GoodCase{"1.5Gi", kGi + kGi / 2}, GoodCase{"1.5GiB", 1610612736},
        GoodCase{"1.5 GiB", 1610612736}, GoodCase{"0.5Ki", 512}, GoodCase{"0.25KiB", 256},
        GoodCase{"0.3Ki", 307},  // 307.2 rounded down
        GoodCase{"0.001Ki", 1},  // 1.024
        GoodCase{"0.0001Ki", 0}, GoodCase{"1.5k", 1500}, GoodCase{"2.5GB", 2500000000},
        GoodCase{"0.1Ei", 115292150460684697},             // 2^60 / 10 = 115292150460684697.6
        GoodCase{"1.50000000000000000000000000Ki", 1536},  // trailing zeros do not count
        GoodCase{"0.99999999999999999999Ei", kEi - 1},
        // Whitespace around the text.
        GoodCase{"  64Mi  ", 64 * kMi}, GoodCase{"\t64Mi\n", 64 * kMi},
        // Boundaries of uint64_t.
        GoodCase{"18446744073709551615", kMax}, GoodCase{"18446744073709551615B", kMax},
        GoodCase{"15Ei", 15 * kEi}, GoodCase{"15.99Ei", 15 * kEi + 1141392289560778506},
        GoodCase{"15.9999999999Ei", 15 * kEi + 1152921504491554825},
        GoodCase{"16777215Ti", (uint64_t{16777215}) << 40}, GoodCase{"18E", 18000000000000000000u},
        GoodCase{"18446744073709551.615k", kMax},
        GoodCase{"00000000000000000000000018446744073709551615", kMax}));

struct BadCase {
  const char* text;
  const char* why;  // expected in the message, besides the quoted text
};

class ParseSizeBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseSizeBadTest, IsInvalidArgumentQuotingInput) {
  const std::string quoted = std::string("\"") + GetParam().text + "\"";
  EXPECT_THAT(
      ParseSize(GetParam().text),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("invalid size"), HasSubstr(quoted), HasSubstr(GetParam().why))));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseSizeBadTest,
    ::testing::Values(
        BadCase{"", "empty"}, BadCase{"   ", "empty"}, BadCase{"-1", "negative"},
        BadCase{"-1Gi", "negative"}, BadCase{"+1", "expected a number"},
        BadCase{"abc", "expected a number"}, BadCase{"Gi", "expected a number"},
        BadCase{".5Gi", "expected a number"}, BadCase{"1.", "expected digits after '.'"},
        BadCase{"1.Gi", "expected digits after '.'"}, BadCase{"1..2", "expected digits"},
        BadCase{"1.2.3", "unknown unit \".3\""}, BadCase{"12Q", "unknown unit \"Q\""},
        BadCase{"5mb", "unknown unit \"mb\""}, BadCase{"5m", "unknown unit \"m\""},
        BadCase{"1gi", "unknown unit \"gi\""}, BadCase{"1KIB", "unknown unit \"KIB\""},
        BadCase{"1iB", "unknown unit \"iB\""}, BadCase{"1BB", "unknown unit \"BB\""},
        BadCase{"1GiBB", "unknown unit \"GiBB\""}, BadCase{"1e9", "unknown unit \"e9\""},
        BadCase{"1,000", "unknown unit \",000\""}, BadCase{"1 000", "unknown unit \"000\""},
        BadCase{"1  GiB", "unknown unit \" GiB\""}, BadCase{"1.5", "fractional bytes"},
        BadCase{"2.5B", "fractional bytes"}, BadCase{"0.000000001", "fractional bytes"},
        BadCase{"1.000000000000000000001Ki", "more than 20 fractional digits"},
        BadCase{"18446744073709551616", "larger than the maximum"},
        BadCase{"99999999999999999999", "larger than the maximum"},
        BadCase{"99999999999999999999999999999999999999999", "larger than the maximum"},
        BadCase{"16Ei", "larger than the maximum"}, BadCase{"16EiB", "larger than the maximum"},
        BadCase{"16777216Ti", "larger than the maximum"}, BadCase{"19E", "larger than the maximum"},
        BadCase{"18446744073709551.616k", "larger than the maximum"}));

TEST(ParseSizeTest, MessageEscapesControlCharacters) {
  EXPECT_THAT(ParseSize("1\x01"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(R"(invalid size "1\x01": unknown unit "\x01")")));
  EXPECT_THAT(ParseSize("1\tGiB"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(R"(invalid size "1\tGiB": unknown unit "\tGiB")")));
}

TEST(FormatSizeTest, Examples) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1), "1 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(1024), "1 KiB");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
  EXPECT_EQ(FormatSize(1024 + 256), "1.25 KiB");
  EXPECT_EQ(FormatSize(1024 + 10), "1 KiB");      // 1.0097: truncated
  EXPECT_EQ(FormatSize(1024 + 11), "1.01 KiB");   // 1.0107
  EXPECT_EQ(FormatSize(kMi - 1), "1023.99 KiB");  // never rounded up to "1024 KiB"
  EXPECT_EQ(FormatSize(kMi), "1 MiB");
  EXPECT_EQ(FormatSize(1610612736), "1.5 GiB");
  EXPECT_EQ(FormatSize(kGi), "1 GiB");
  EXPECT_EQ(FormatSize(5 * kTi), "5 TiB");
  EXPECT_EQ(FormatSize(kPi / 2 * 3), "1.5 PiB");
  EXPECT_EQ(FormatSize(kEi), "1 EiB");
  EXPECT_EQ(FormatSize(kMax), "15.99 EiB");
}

TEST(FormatSizeTest, RoundTripsPowersAndMultiples) {
  for (int shift = 0; shift < 64; ++shift) {
    const uint64_t power = uint64_t{1} << shift;
    std::vector<uint64_t> sizes = {power};
    if (power >= 4) sizes.insert(sizes.end(), {power + power / 2, power + power / 4});
    if (power <= kMax / 3) sizes.push_back(3 * power);
    for (uint64_t bytes : sizes) {
      const std::string text = FormatSize(bytes);
      EXPECT_THAT(ParseSize(text), IsOk()) << text;
      EXPECT_EQ(ParseSize(text).value_or(0), bytes) << text;
    }
  }
}

TEST(FormatSizeTest, ParseOfFormatNeverOverstates) {
  for (uint64_t bytes : {uint64_t{1000}, uint64_t{1025}, uint64_t{123456789},
                         uint64_t{999999999999}, kMi - 1, kGi + 1, kMax - 1, kMax}) {
    const std::string text = FormatSize(bytes);
    ASSERT_THAT(ParseSize(text), IsOk()) << text;
    EXPECT_LE(*ParseSize(text), bytes) << text;
  }
}

TEST(MultiplySizesTest, MultipliesWithinRange) {
  EXPECT_EQ(MultiplySizes(0, kMax).value_or(1), 0u);
  EXPECT_EQ(MultiplySizes(kMax, 0).value_or(1), 0u);
  EXPECT_EQ(MultiplySizes(4, kGi).value_or(0), 4 * kGi);
  EXPECT_EQ(MultiplySizes(1, kMax).value_or(0), kMax);
  EXPECT_EQ(MultiplySizes(15, kEi).value_or(0), 15 * kEi);
  EXPECT_EQ(MultiplySizes(uint64_t{1} << 32, (uint64_t{1} << 32) - 1).value_or(0),
            kMax - kMax / (uint64_t{1} << 32));
}

TEST(MultiplySizesTest, OverflowIsAnErrorNamingBothNumbers) {
  EXPECT_THAT(MultiplySizes(16, kEi),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("16"), HasSubstr("1152921504606846976"))));
  EXPECT_THAT(MultiplySizes(2, kMax),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("18446744073709551615")));
  EXPECT_THAT(MultiplySizes(uint64_t{1} << 32, uint64_t{1} << 32),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("4294967296")));
}

TEST(AddSizesTest, AddsWithinRangeAndRejectsOverflow) {
  EXPECT_EQ(AddSizes(0, 0).value_or(1), 0u);
  EXPECT_EQ(AddSizes(kGi, kMi).value_or(0), kGi + kMi);
  EXPECT_EQ(AddSizes(kMax - 1, 1).value_or(0), kMax);
  EXPECT_THAT(AddSizes(kMax, 1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("18446744073709551615"), HasSubstr(" 1 "))));
  EXPECT_THAT(AddSizes(kEi * 8, kEi * 8),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("9223372036854775808")));
}

TEST(PercentOfTest, ComputesFloor) {
  EXPECT_EQ(PercentOf(100, 12345).value_or(0), 12345u);
  EXPECT_EQ(PercentOf(50, 3).value_or(0), 1u);  // 1.5 rounded down
  EXPECT_EQ(PercentOf(50, 1).value_or(1), 0u);
  EXPECT_EQ(PercentOf(10, 1000).value_or(0), 100u);
  EXPECT_EQ(PercentOf(33.3, 1000).value_or(0), 333u);  // 33.3 is 33.29999... as a double
  EXPECT_EQ(PercentOf(0.1, 1000).value_or(0), 1u);
  EXPECT_EQ(PercentOf(80, 24 * kGi).value_or(0), 20615843020u);  // 20615843020.8
  EXPECT_EQ(PercentOf(1e-9, 100000000000).value_or(0), 1u);
  EXPECT_EQ(PercentOf(1e-12, kGi).value_or(1), 0u);  // below 9 decimals
}

TEST(PercentOfTest, ExactForHugeWholes) {
  EXPECT_EQ(PercentOf(100, kMax).value_or(0), kMax);
  EXPECT_EQ(PercentOf(50, kMax).value_or(0), kMax / 2);
  EXPECT_EQ(PercentOf(25, kMax).value_or(0), kMax / 4);
  EXPECT_EQ(PercentOf(99.999999999, kMax).value_or(0),
            kMax - (kMax / 100000000000 + 1));  // floor(kMax * (1 - 1e-11))
  EXPECT_EQ(PercentOf(1, kMax - 1).value_or(0), (kMax - 1) / 100);
}

TEST(PercentOfTest, RejectsOutOfRangePercent) {
  for (double bad :
       {0.0, -0.0, -1.0, 100.0000001, 101.0, 1e300, std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(), std::nan("")}) {
    EXPECT_THAT(PercentOf(bad, 100),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("percent")))
        << bad;
  }
}

}  // namespace
}  // namespace memload
