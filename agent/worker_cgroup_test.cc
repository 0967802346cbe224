#include "agent/worker_cgroup.h"

#include <sys/stat.h>

#include "core/node_readers.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_cgroup.h"

namespace memload {
namespace agent {
namespace {

using ::memload::testing::TestCgroup;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

bool IsDirectory(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

TEST(WorkerCgroupTest, TheChildLeavesTheAgentItsMarginBelowTheLimit) {
  absl::StatusOr<TestCgroup> agent = TestCgroup::Create("memload-workers-test", 96 * kMiB);
  if (!agent.ok()) GTEST_SKIP() << "cannot create a memory cgroup here: " << agent.status();
  absl::StatusOr<std::optional<WorkerCgroup>> workers =
      PrepareWorkerCgroup(agent->dir(), 32 * kMiB);
  if (agent->version() == 2 && !workers.ok()) {
    // v2 gives a child the memory controller only while the parent has no process of its own;
    // this test's cgroup may not qualify.
    GTEST_SKIP() << workers.status();
  }
  ASSERT_TRUE(workers.ok()) << workers.status();
  ASSERT_TRUE(workers->has_value());
  const WorkerCgroup& child = **workers;
  EXPECT_EQ(child.dir, agent->dir() + "/memload-workers");
  EXPECT_EQ(child.procs_file, child.dir + "/cgroup.procs");
  EXPECT_EQ(child.limit_bytes, 64 * kMiB);
  EXPECT_EQ(child.agent_limit_bytes, 96 * kMiB);
  absl::StatusOr<CgroupMemory> read = ReadCgroupMemory(child.dir);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->limit_bytes, 64 * kMiB);

  // A restarted agent finds it there and sets it again.
  absl::StatusOr<std::optional<WorkerCgroup>> again = PrepareWorkerCgroup(agent->dir(), 16 * kMiB);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ(ReadCgroupMemory(child.dir)->limit_bytes, 80 * kMiB);

  EXPECT_THAT(RemoveWorkerCgroup(child.dir), IsOk());
  EXPECT_FALSE(IsDirectory(child.dir));
  EXPECT_THAT(RemoveWorkerCgroup(child.dir), IsOk());  // Gone already: nothing to do.
}

TEST(WorkerCgroupTest, ALimitNotAboveTwiceTheMarginIsRefused) {
  absl::StatusOr<TestCgroup> agent = TestCgroup::Create("memload-workers-small", 64 * kMiB);
  if (!agent.ok()) GTEST_SKIP() << "cannot create a memory cgroup here: " << agent.status();
  EXPECT_THAT(PrepareWorkerCgroup(agent->dir(), 32 * kMiB),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("too little")));
  EXPECT_FALSE(IsDirectory(agent->dir() + "/memload-workers"));
}

TEST(WorkerCgroupTest, AMissingCgroupIsAnError) {
  EXPECT_FALSE(PrepareWorkerCgroup("/nonexistent/memload-cgroup", 32 * kMiB).ok());
}

}  // namespace
}  // namespace agent
}  // namespace memload
