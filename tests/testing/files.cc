#include "tests/testing/files.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace memload {
namespace testing {

std::string TestTempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/tmp";
}

std::string TestTempPath(const std::string& name) { return TestTempDir() + "/" + name; }

std::string FreshTestDir() {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat(test->test_suite_name(), ".", test->name());
  absl::StrReplaceAll({{"/", "_"}}, &name);
  const std::string dir = TestTempPath(name);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  std::filesystem::create_directories(dir, ignored);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  file.flush();
  return static_cast<bool>(file);
}

std::string WriteTestFile(const std::string& name, const std::string& text) {
  const std::string path = TestTempPath(name);
  EXPECT_TRUE(WriteFile(path, text)) << "cannot write " << path;
  return path;
}

}  // namespace testing
}  // namespace memload
