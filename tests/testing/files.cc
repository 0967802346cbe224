#include "tests/testing/files.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace memload {
namespace testing {

std::string TestTempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/tmp";
}

std::string TestTempPath(const std::string& name) { return TestTempDir() + "/" + name; }

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

}  // namespace testing
}  // namespace memload
