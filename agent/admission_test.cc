// The one admission check: limits on real costs, the numbers in its messages, and no
// wrap-around whatever the sizes.
#include "agent/admission.h"

#include "core/block_cost.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace agent {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kGiB = 1ull << 30;

AdmissionRequest Request(uint64_t cost, uint64_t committed, uint64_t available) {
  AdmissionRequest request;
  request.what = "plan \"p\"";
  request.cost = cost;
  request.committed = committed;
  request.available = available;
  return request;
}

TEST(AdmissionTest, MaxMemoryCountsWhatOtherPlansMayHold) {
  const AdmissionLimits limits{8 * kGiB, kGiB};
  EXPECT_THAT(Admit(limits, Request(3 * kGiB, 5 * kGiB, 12 * kGiB)), IsOk());
  EXPECT_THAT(Admit(limits, Request(4 * kGiB, 5 * kGiB, 12 * kGiB)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("plan \"p\" needs 4 GiB; with the 5 GiB other plans may hold, "
                                 "that crosses --max-memory 8 GiB")));
}

TEST(AdmissionTest, ReserveCountsOnlyTheGrowth) {
  const AdmissionLimits limits{0, kGiB};
  EXPECT_THAT(Admit(limits, Request(12 * kGiB, 0, 12 * kGiB)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("needs 12 GiB but only 11 GiB may be used: available memory "
                                 "is 12 GiB and --reserve is 1 GiB")));
  AdmissionRequest resize = Request(12 * kGiB, 0, 12 * kGiB);
  resize.held = 6 * kGiB;  // Only 6 GiB more come out of the available memory.
  EXPECT_THAT(Admit(limits, resize), IsOk());
  resize.check_reserve = false;
  resize.held = 0;
  EXPECT_THAT(Admit(limits, resize), IsOk());  // An OOM drill.
}

// Issue 12 (2): 2^64-1 bytes wrapped `reserve + commitment` and `committed + commitment`.
TEST(AdmissionTest, ExtremeSizesNeverWrap) {
  for (uint64_t cost :
       std::vector<uint64_t>{UINT64_MAX, UINT64_MAX - 1, 1ull << 63, (1ull << 63) + 1}) {
    for (uint64_t committed : std::vector<uint64_t>{0, 1, 1ull << 63, UINT64_MAX}) {
      EXPECT_THAT(Admit({8 * kGiB, kGiB}, Request(cost, committed, 12 * kGiB)),
                  StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max-memory")));
      EXPECT_THAT(Admit({0, kGiB}, Request(cost, committed, 12 * kGiB)),
                  StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--reserve")));
      EXPECT_THAT(Admit({0, UINT64_MAX}, Request(cost, committed, UINT64_MAX)),
                  StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--reserve")));
    }
  }
  EXPECT_THAT(Admit({UINT64_MAX, 0}, Request(1, UINT64_MAX, UINT64_MAX)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max-memory")));
}

TEST(AdmissionTest, PlanCostsIncludeTheWorker) {
  EXPECT_THAT(RetainedPlanCost(Backing::kMmap, 1 << 20, 0), IsOk());
  EXPECT_EQ(*RetainedPlanCost(Backing::kMmap, 1 << 20, 0), kSetFixedBytes + kWorkerOverheadBytes);
  EXPECT_EQ(*RetainedPlanCost(Backing::kMmap, 1, 60000),
            *RetainedCost(Backing::kMmap, 1, 60000, SystemPageSize()) + kWorkerOverheadBytes);
  EXPECT_THAT(RetainedPlanCost(Backing::kMmap, 1 << 20, UINT64_MAX),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("blocks")));
  EXPECT_THAT(StreamingPlanCost(1, false, UINT64_MAX, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("blocks")));
}

}  // namespace
}  // namespace agent
}  // namespace memload
