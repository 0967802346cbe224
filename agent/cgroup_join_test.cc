#include "agent/cgroup_join.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/node_readers.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"

namespace memload {
namespace agent {
namespace {

using ::testing::HasSubstr;

std::string TestDir() { return memload::testing::FreshTestDir(); }

TEST(JoinCgroupTest, MissingCgroupIsNotFoundNamingIt) {
  EXPECT_THAT(JoinCgroup(getpid(), TestDir() + "/gone"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("gone/cgroup.procs")));
}

TEST(JoinCgroupTest, AWriteThatDoesNotMoveTheProcessIsCaught) {
  // A directory that is no cgroup: the write "succeeds" but /proc/<pid>/cgroup says the
  // process is elsewhere — the check, not the write, decides.
  const std::string dir = TestDir() + "/fake";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/cgroup.procs").flush();
  absl::StatusOr<std::string> cgroup = ReadFileToString("/proc/self/cgroup");
  absl::StatusOr<std::string> mountinfo = ReadFileToString("/proc/self/mountinfo");
  ASSERT_THAT(cgroup, IsOk());
  if (!FindMemoryCgroupPath(*cgroup, *mountinfo).ok()) GTEST_SKIP() << "no memory cgroup here";
  EXPECT_THAT(JoinCgroup(getpid(), dir),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is in memory cgroup")));
}

TEST(JoinCgroupTest, OwnCgroupThroughAnotherPathIsTheSame) {
  // Joining the cgroup we are already in, named through a symlink: accepted (same inode).
  absl::StatusOr<std::string> cgroup = ReadFileToString("/proc/self/cgroup");
  absl::StatusOr<std::string> mountinfo = ReadFileToString("/proc/self/mountinfo");
  ASSERT_THAT(cgroup, IsOk());
  absl::StatusOr<std::string> own = FindMemoryCgroupPath(*cgroup, *mountinfo);
  if (!own.ok()) GTEST_SKIP() << "no memory cgroup here";
  if (access((*own + "/cgroup.procs").c_str(), W_OK) != 0) GTEST_SKIP() << "cgroup not writable";
  const std::string link = TestDir() + "/link";
  std::filesystem::create_directory_symlink(*own, link);
  EXPECT_THAT(JoinCgroup(getpid(), link), IsOk());
}

}  // namespace
}  // namespace agent
}  // namespace memload
