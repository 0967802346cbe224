#include "core/base/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace memload {
namespace {

std::string Utf8(uint32_t code) {
  std::string out;
  AppendUtf8(code, &out);
  return out;
}

// Each length at both of its ends.
TEST(AppendUtf8Test, OneToFourBytes) {
  EXPECT_EQ(Utf8(0x00), std::string(1, '\0'));
  EXPECT_EQ(Utf8(0x7F), "\x7F");
  EXPECT_EQ(Utf8(0x80), "\xC2\x80");
  EXPECT_EQ(Utf8(0x7FF), "\xDF\xBF");
  EXPECT_EQ(Utf8(0x800), "\xE0\xA0\x80");
  EXPECT_EQ(Utf8(0x20AC), "\xE2\x82\xAC");  // €
  EXPECT_EQ(Utf8(0xFFFF), "\xEF\xBF\xBF");
  EXPECT_EQ(Utf8(0x10000), "\xF0\x90\x80\x80");
  EXPECT_EQ(Utf8(0x1F600), "\xF0\x9F\x98\x80");  // 😀
  EXPECT_EQ(Utf8(0x10FFFF), "\xF4\x8F\xBF\xBF");
  std::string appended = "a";
  AppendUtf8(0xE9, &appended);
  EXPECT_EQ(appended, "a\xC3\xA9");
}

}  // namespace
}  // namespace memload
