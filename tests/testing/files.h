// Files in tests: the test's own temporary directory, and whole-file reads and writes
// whose failures show up in the test (an empty string, a false).
//
//   const std::string path = TestTempPath("tokens");   // $TEST_TMPDIR/tokens
//   ASSERT_TRUE(WriteFile(path, "secret\n"));
//   EXPECT_EQ(ReadFile(path), "secret\n");
//
// Thread-safety: thread-safe (no shared state).
#ifndef MEMLOAD_TESTS_TESTING_FILES_H_
#define MEMLOAD_TESTS_TESTING_FILES_H_

#include <string>

namespace memload {
namespace testing {

// $TEST_TMPDIR (Bazel's per-test directory), or /tmp outside Bazel.
std::string TestTempDir();
// TestTempDir() + "/" + name.
std::string TestTempPath(const std::string& name);
// A fresh, empty directory under TestTempDir() named after the running gtest test
// ("Suite.Name"; '/' of parameterized names becomes '_'), emptied first if it exists.
std::string FreshTestDir();

// The file's contents ("" when it cannot be read).
std::string ReadFile(const std::string& path);
// Writes (replaces) the file; whether every byte was written.
bool WriteFile(const std::string& path, const std::string& text);
// Writes `text` to TestTempPath(name), replacing it, and returns that path; a failed write
// fails the running test.
std::string WriteTestFile(const std::string& name, const std::string& text);

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_FILES_H_
