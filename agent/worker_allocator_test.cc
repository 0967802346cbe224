// memload-worker runs on its process allocator as set up for load (KeepFreedMallocMemory):
// tcmalloc gives nothing back to the OS in the background, so a streaming plan of 1 MiB
// blocks reuses the same pages block after block instead of faulting a released block's
// pages in again every ~1 GiB (README "Performance": 1 MiB churn ran 13-20x slower).
// Measured from the OS: the worker's minor page faults (/proc/PID/stat).
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "agent/worker.h"
#include "agent/worker_process.h"
#include "core/testing/sanitizers.h"
#include "core/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/process_memory.h"
#include "tests/testing/sizes.h"

namespace memload {
namespace agent {
namespace {

using ::memload::testing::Eventually;
using ::memload::testing::kGiB;
using ::memload::testing::kMiB;
using ::memload::testing::MinorFaultsOf;

// Bazel runs tests from the workspace's runfiles root.
const char kWorkerBinary[] = "agent/memload-worker";

// One 1 MiB block is 256 pages of 4 KiB: faulting one block in again costs that many.
constexpr uint64_t kFaultsPerBlock = kMiB / 4096;

TEST(WorkerAllocatorTest, OneMebibyteChurnFaultsItsBlockInOnceNotAgainAndAgain) {
  if (kAddressSanitizer || kThreadSanitizer) {
    GTEST_SKIP() << "the worker runs on the sanitizer's allocator, which maps big blocks anew";
  }
  WorkerProcessLauncher launcher(kWorkerBinary);
  WorkerSpec spec;
  spec.set_initial_ceiling_bytes(UINT64_MAX);
  v1::StreamingPlan* streaming = spec.mutable_plan()->mutable_streaming();
  streaming->set_block_size(kMiB);
  streaming->set_touch(v1::TOUCH_MODE_PAGE);
  streaming->set_workers(1);  // Window 0, no amount, no duration: until stopped.
  absl::StatusOr<std::unique_ptr<Worker>> launched = launcher.Launch(spec);
  ASSERT_THAT(launched, IsOk());
  Worker& worker = **launched;

  // Past the first block's faults and the allocator's first release point (tcmalloc's
  // first background release comes after 2 GiB of frees, then one per ~1 GiB).
  ASSERT_TRUE(Eventually([&] { return worker.Counters().bytes_allocated >= kGiB; }));
  const uint64_t faults_before = MinorFaultsOf(worker.pid());
  const uint64_t allocated_before = worker.Counters().bytes_allocated;
  ASSERT_TRUE(
      Eventually([&] { return worker.Counters().bytes_allocated >= allocated_before + 8 * kGiB; }));
  const uint64_t faults = MinorFaultsOf(worker.pid()) - faults_before;
  const uint64_t allocated = worker.Counters().bytes_allocated - allocated_before;
  // 8 GiB of churn with the background release on: ~7 released blocks, ~1,800 faults.
  EXPECT_LT(faults, kFaultsPerBlock)
      << faults << " minor faults over " << allocated / kMiB << " MiB of 1 MiB blocks";

  worker.RequestStop();
  const WorkerExit exit = worker.WaitExit(absl::Seconds(20));
  EXPECT_EQ(exit.kind, WorkerExit::Kind::kStopped) << exit.error;
}

}  // namespace
}  // namespace agent
}  // namespace memload
