#include "core/base/quoted.h"

#include <string>

#include "gtest/gtest.h"

namespace memload {
namespace {

TEST(QuotedTest, ShortTextIsQuotedWhole) {
  EXPECT_EQ(Quoted("drill-1"), "\"drill-1\"");
  EXPECT_EQ(Quoted(""), "\"\"");
  EXPECT_EQ(Quoted(std::string(kMaxQuotedBytes, 'a')),
            "\"" + std::string(kMaxQuotedBytes, 'a') + "\"");
}

TEST(QuotedTest, ControlCharactersAreEscaped) {
  EXPECT_EQ(Quoted("a\nb\x1b[31m\""), "\"a\\nb\\x1b[31m\\\"\"");
}

TEST(QuotedTest, LongTextIsCutAndItsSizeSaid) {
  const std::string quoted = Quoted(std::string(1000000, 'x'));
  EXPECT_EQ(quoted, "\"" + std::string(kMaxQuotedBytes, 'x') + "...\" (1000000 bytes)");
  EXPECT_LT(quoted.size(), 100u);
}

}  // namespace
}  // namespace memload
