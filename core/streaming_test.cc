#include "core/streaming.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/block_allocator.h"
#include "core/plan_counters.h"
#include "core/testing/counting_allocator.h"
#include "core/testing/plan_runs.h"
#include "core/testing/status_matchers.h"
#include "core/testing/wait_recording_clock.h"
#include "core/touch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"

namespace memload {
namespace {

using ::memload::testing::Eventually;
using ::testing::HasSubstr;

BlockAllocator* Malloc() { return SharedBlockAllocator(Backing::kMalloc, {}); }

// Options of `workers` threads streaming `block_size` blocks, `window` of them live at most,
// touched by `touch`; the other fields are StreamOptions' defaults.
StreamOptions Streams(uint64_t block_size, uint32_t workers, uint64_t window,
                      TouchMode touch = TouchMode::kPage) {
  StreamOptions options;
  options.block_size = block_size;
  options.workers = workers;
  options.window = window;
  options.touch = touch;
  return options;
}

// How long a plan may take to notice a cancel or the end of its duration, in real time,
// before a test calls it hung. Plans on a simulated clock that never moves again: one that
// waited for a deadline instead of the cancel would never end.
constexpr absl::Duration kHung = absl::Seconds(30);

// Everything a finished plan must have given back.
void ExpectAllReleased(const PlanCountersSnapshot& s) {
  EXPECT_EQ(s.frees, s.allocations);
  EXPECT_EQ(s.payload_bytes, 0u);
  EXPECT_EQ(s.mapped_bytes, 0u);
  EXPECT_EQ(s.resident_bytes, 0u);
  EXPECT_EQ(s.bookkeeping_bytes, 0u);
}

// Waits (at most kHung) for `plan` to end with OK in `state`, having given everything back.
// Returns its final counters.
PlanCountersSnapshot ExpectEndedReleased(StreamingPlan& plan, PlanState state) {
  const PlanCountersSnapshot s = ExpectEnded(plan, state, kHung);
  ExpectAllReleased(s);
  return s;
}

TEST(ValidateStreamOptionsTest, RejectsBadFieldsNamingThem) {
  struct Case {
    std::string name;
    std::function<void(StreamOptions&)> change;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"zero block", [](StreamOptions& o) { o.block_size = 0; }, "block_size"},
      {"no workers", [](StreamOptions& o) { o.workers = 0; }, "workers"},
      {"too many workers", [](StreamOptions& o) { o.workers = 65; }, "workers"},
      {"window overflow",
       [](StreamOptions& o) {
         o.block_size = 1 << 20;
         o.window = uint64_t{1} << 50;
       },
       "window"},
      {"ring overflow",
       [](StreamOptions& o) {
         o.block_size = 1;
         o.window = UINT64_MAX;
       },
       "window"},
      {"ragged amount", [](StreamOptions& o) { o.amount_bytes = 4096 + 1; }, "amount_bytes"},
      {"negative duration", [](StreamOptions& o) { o.duration = -absl::Seconds(1); }, "duration"},
  };
  for (const Case& c : cases) {
    StreamOptions options;
    options.block_size = 4096;
    c.change(options);
    EXPECT_THAT(ValidateStreamOptions(options),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)))
        << c.name;
    PlanCounters counters;
    EXPECT_THAT(StreamingPlan::Create(options, &counters),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)))
        << c.name;
  }
  StreamOptions good;
  good.block_size = 1;
  good.workers = 64;
  good.window = 1000;
  good.amount_bytes = 12345;
  good.duration = absl::Seconds(1);
  EXPECT_THAT(ValidateStreamOptions(good), IsOk());
}

TEST(StreamWorkerTest, KeepsItsWindowAndFreesTheOldestFirst) {
  CountingAllocator counting(Malloc());
  StreamOptions options;
  options.block_size = 1000;
  options.touch = TouchMode::kFill;
  PlanCounters counters;
  {
    StreamWorker worker(options, &counting, /*window_share=*/3, /*seed=*/1);
    for (int i = 0; i < 5; ++i) ASSERT_THAT(worker.Step(), IsOk());
    EXPECT_EQ(counting.allocations(), 5u);
    EXPECT_EQ(counting.frees(), 2u);
    EXPECT_EQ(counting.live_bytes(), 3000u);
    EXPECT_EQ(worker.live_blocks(), 3u);
    EXPECT_EQ(worker.bytes_touched(), 5000u);

    worker.MeasureResident();
    EXPECT_GT(worker.resident_bytes(), 0u);
    worker.Flush(&counters);
    PlanCountersSnapshot s = counters.Snapshot();
    EXPECT_EQ(s.allocations, 5u);
    EXPECT_EQ(s.frees, 2u);
    EXPECT_EQ(s.bytes_allocated, 5000u);
    EXPECT_EQ(s.bytes_touched, 5000u);
    EXPECT_EQ(s.payload_bytes, 3000u);
    EXPECT_EQ(s.mapped_bytes, 3000u);  // malloc: MappedSize is the size.
    EXPECT_EQ(s.peak_payload_bytes, 3000u);
    EXPECT_EQ(s.resident_bytes, worker.resident_bytes());

    worker.ReleaseAll();
    EXPECT_EQ(counting.frees(), 5u);
    EXPECT_EQ(counting.live_bytes(), 0u);
    worker.MeasureResident();
    worker.Flush(&counters);
    s = counters.Snapshot();
    EXPECT_EQ(s.frees, 5u);
    EXPECT_EQ(s.payload_bytes, 0u);
    EXPECT_EQ(s.mapped_bytes, 0u);
    EXPECT_EQ(s.resident_bytes, 0u);
    EXPECT_EQ(s.peak_payload_bytes, 3000u);

    // Still usable after ReleaseAll; the destructor frees what is left.
    ASSERT_THAT(worker.Step(), IsOk());
  }
  EXPECT_EQ(counting.allocations(), 6u);
  EXPECT_EQ(counting.frees(), 6u);
}

TEST(StreamWorkerTest, WithoutWindowFreesEveryBlockAtOnce) {
  CountingAllocator counting(Malloc());
  StreamOptions options;
  options.block_size = 1;
  options.touch = TouchMode::kNone;
  StreamWorker worker(options, &counting, /*window_share=*/0, /*seed=*/1);
  for (int i = 0; i < 100; ++i) {
    ASSERT_THAT(worker.Step(), IsOk());
    ASSERT_EQ(counting.live_bytes(), 0u);
  }
  EXPECT_EQ(counting.allocations(), 100u);
  EXPECT_EQ(counting.frees(), 100u);
  EXPECT_EQ(worker.bytes_touched(), 0u);
}

TEST(StreamWorkerTest, AllocationFailureLeavesTheRingIntact) {
  CountingAllocator counting(Malloc());
  counting.FailAfter(2);
  StreamOptions options;
  options.block_size = 64;
  StreamWorker worker(options, &counting, /*window_share=*/4, /*seed=*/1);
  ASSERT_THAT(worker.Step(), IsOk());
  ASSERT_THAT(worker.Step(), IsOk());
  EXPECT_THAT(worker.Step(), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("64")));
  EXPECT_EQ(worker.live_blocks(), 2u);
  worker.ReleaseAll();
  EXPECT_EQ(counting.frees(), 2u);
}

TEST(StreamingPlanTest, AmountIsExact) {
  // 1000 blocks do not divide evenly into 3 workers' 64-block claims; window 5 neither.
  CountingAllocator counting(Malloc());
  StreamOptions options = Streams(4096, /*workers=*/3, /*window=*/5);
  options.amount_bytes = 1000 * 4096;
  options.allocator = &counting;
  PlanCounters counters;
  std::unique_ptr<StreamingPlan> plan = MustCreate<StreamingPlan>(options, &counters);
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(counters.Snapshot().state, PlanState::kPending);
  ASSERT_THAT(plan->Start(), IsOk());
  const PlanCountersSnapshot s = ExpectEndedReleased(*plan, PlanState::kCompleted);

  EXPECT_EQ(counting.allocations(), 1000u);
  EXPECT_EQ(counting.frees(), 1000u);
  EXPECT_EQ(counting.live_bytes(), 0u);
  EXPECT_EQ(s.allocations, 1000u);
  EXPECT_EQ(s.bytes_allocated, options.amount_bytes);
  EXPECT_EQ(s.bytes_touched, options.amount_bytes);
  EXPECT_EQ(s.target_bytes, options.amount_bytes);
  EXPECT_GT(s.peak_payload_bytes, 0u);
  EXPECT_LE(s.peak_payload_bytes, 5u * 4096);
}

// The real clock, counting how often Now() is read.
class NowCountingClock final : public Clock {
 public:
  absl::Time Now() override {
    reads_.fetch_add(1, std::memory_order_relaxed);
    return Clock::Real()->Now();
  }
  bool WaitUntil(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
                 absl::Time deadline, const std::function<bool()>& done) override {
    return Clock::Real()->WaitUntil(wake, lock, deadline, done);
  }
  uint64_t reads() const { return reads_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> reads_{0};
};

// A clock read costs about as much as touching a cached 64 KiB block: the workers look at
// the clock once per ~1 MiB of blocks (every 16th 64 KiB step), not once per step.
TEST(StreamingPlanTest, ReadsTheClockOncePerMebibyteOfBlocksNotPerStep) {
  NowCountingClock clock;
  StreamOptions options = Streams(64 << 10, /*workers=*/1, /*window=*/0);
  options.amount_bytes = 1024 * options.block_size;  // 64 MiB in 1,024 steps.
  options.duration = absl::Hours(1);                 // Checked at every look at the clock.
  PlanCounters counters;
  std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters, &clock);
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(ExpectEnded(*plan, PlanState::kCompleted, kHung).allocations, 1024u);
  // 1,024 / 16 = 64 checks, plus the plan's own few reads.
  EXPECT_LE(clock.reads(), 80u);
  EXPECT_GE(clock.reads(), 64u);
}

TEST(StreamingPlanTest, AmountWithMoreWorkersThanWindowAndNoTouch) {
  // Shares 1, 1, 1, 0: the last worker drops each block at once.
  CountingAllocator counting(Malloc());
  StreamOptions options = Streams(1, /*workers=*/4, /*window=*/3, TouchMode::kNone);
  options.amount_bytes = 100003;
  options.allocator = &counting;
  PlanCounters counters;
  std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters);
  ASSERT_NE(plan, nullptr);
  const PlanCountersSnapshot s = ExpectEndedReleased(*plan, PlanState::kCompleted);
  EXPECT_EQ(counting.allocations(), 100003u);
  EXPECT_EQ(counting.frees(), 100003u);
  EXPECT_EQ(s.bytes_allocated, 100003u);
  EXPECT_EQ(s.bytes_touched, 0u);
  EXPECT_LE(s.peak_payload_bytes, 3u);
}

TEST(StreamingPlanTest, SamplerNeverSeesMoreThanTheWindow) {
  StreamOptions options = Streams(16 << 10, /*workers=*/4, /*window=*/10);  // Shares 3, 3, 2, 2.
  options.duration = absl::Milliseconds(300);
  const uint64_t bound = options.window * options.block_size;
  PlanCounters counters;
  // The plan's 300 ms pass 1 ms per sample, however slowly a loaded machine samples.
  WaitRecordingClock clock;
  std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters, &clock);
  ASSERT_NE(plan, nullptr);

  uint64_t max_payload = 0, max_mapped = 0, max_resident = 0, samples = 0;
  bool saw_bookkeeping = false;
  const absl::Time give_up = absl::Now() + kHung;
  std::optional<absl::Time> streaming_since;
  for (PlanCountersSnapshot s = counters.Snapshot(); !IsTerminal(s.state);
       s = counters.Snapshot()) {
    ASSERT_LT(absl::Now(), give_up) << "plan did not end";
    // Plan time moves only as far as the workers can follow: not before the plan has read
    // its start, then to the workers' first flush (5 ms), then no further until they have
    // published. Moving 1 ms per sample regardless, a slow build (ASan: 4 threads to start)
    // spent the whole 300 ms before its workers' first clock check, so they published only
    // at the end, while releasing: 9 of 20 ASan runs saw no payload.
    if (s.state == PlanState::kStreaming && !streaming_since.has_value()) {
      streaming_since = clock.Now();
    }
    if (streaming_since.has_value() && (clock.Now() - *streaming_since < absl::Milliseconds(5) ||
                                        max_payload > 0 || s.payload_bytes > 0)) {
      clock.Advance(absl::Milliseconds(1));
    }
    max_payload = std::max(max_payload, s.payload_bytes);
    max_mapped = std::max(max_mapped, s.mapped_bytes);
    max_resident = std::max(max_resident, s.resident_bytes);
    if (s.state == PlanState::kStreaming) {
      saw_bookkeeping |= s.bookkeeping_bytes == sizeof(void*) * options.window;
    }
    ++samples;
    std::this_thread::yield();
  }
  const PlanCountersSnapshot s = ExpectEndedReleased(*plan, PlanState::kCompleted);
  EXPECT_GT(samples, 10u);
  EXPECT_LE(max_payload, bound);
  EXPECT_LE(max_mapped, bound);
  // The sampler saw the window filling, in every build.
  EXPECT_GT(max_payload, 0u);
  EXPECT_GT(max_resident, 0u);
  EXPECT_TRUE(saw_bookkeeping);
  EXPECT_LE(s.peak_payload_bytes, bound);
  EXPECT_GE(s.peak_payload_bytes, max_payload);
}

// 64 MiB/s over two workers of 256 KiB blocks: each worker allocates a block every
// 7.8125 ms of the plan's clock and sleeps in between, so at every moment the plan has
// allocated exactly what the schedule allows, and over its 1 s exactly 64 MiB.
TEST(StreamingPlanTest, RateLimitHoldsToTheSchedule) {
  StreamOptions options = Streams(256 << 10, /*workers=*/2, /*window=*/0);
  options.rate_bytes_per_sec = 64 << 20;
  options.duration = absl::Seconds(1);
  PlanCounters counters;
  WaitRecordingClock clock;
  const absl::Time start = clock.Now();
  std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters, &clock);
  ASSERT_NE(plan, nullptr);
  // Blocks each worker has allocated by `ms`: its first at once, then one per 7.8125 ms.
  const auto scheduled = [&](double ms) {
    return options.workers * (static_cast<uint64_t>(ms / 7.8125) + 1) * options.block_size;
  };
  for (double ms : {0.0, 130.0, 260.0, 510.0, 770.0, 999.0}) {
    SCOPED_TRACE(ms);
    clock.AdvanceTo(start + absl::Milliseconds(ms));
    // Both workers asleep, having published what they allocated.
    ASSERT_TRUE(Eventually([&] {
      return clock.waiters() == 2 && counters.Snapshot().bytes_allocated == scheduled(ms);
    })) << counters.Snapshot().bytes_allocated
        << " bytes, want " << scheduled(ms);
    EXPECT_EQ(counters.Snapshot().state, PlanState::kStreaming);
  }
  clock.AdvanceTo(start + absl::Seconds(1));
  const PlanCountersSnapshot s = ExpectEndedReleased(*plan, PlanState::kCompleted);
  EXPECT_EQ(s.bytes_allocated, uint64_t{64} << 20);
}

// Flat out (no rate, no duration, no amount), only the cancel can end it: on a clock that
// stands still after one publish, nothing else could.
TEST(StreamingPlanTest, CancelStopsAPlanRunningFlatOut) {
  PlanCounters counters;
  WaitRecordingClock clock;
  std::unique_ptr<StreamingPlan> plan =
      MustStart<StreamingPlan>(Streams(64 << 10, /*workers=*/2, /*window=*/4), &counters, &clock);
  ASSERT_NE(plan, nullptr);
  // Counters are published every 5 ms of the plan's clock.
  ASSERT_TRUE(Eventually([&] { return counters.Snapshot().state == PlanState::kStreaming; }));
  clock.Advance(absl::Milliseconds(10));
  ASSERT_TRUE(Eventually([&] { return counters.Snapshot().allocations >= 1; }));

  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
}

// Asleep for 10 s of a clock that never moves, the worker wakes for the cancel alone.
TEST(StreamingPlanTest, CancelWakesARateLimitedPlan) {
  StreamOptions options = Streams(1 << 20, /*workers=*/1, /*window=*/1);
  options.rate_bytes_per_sec = (1 << 20) / 10;  // One block every 10 s.
  PlanCounters counters;
  WaitRecordingClock clock;
  const absl::Time start = clock.Now();
  std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters, &clock);
  ASSERT_NE(plan, nullptr);
  // The worker publishes before it sleeps.
  ASSERT_TRUE(
      Eventually([&] { return counters.Snapshot().allocations == 1 && clock.waiters() == 1; }));
  EXPECT_EQ(counters.Snapshot().payload_bytes, 1u << 20);
  // (The rate is 104,857 B/s: 1 MiB takes 10.00006 s.)
  EXPECT_LT(absl::AbsDuration(clock.last_deadline() - (start + absl::Seconds(10))),
            absl::Milliseconds(1));

  plan->Cancel();
  EXPECT_EQ(ExpectEndedReleased(*plan, PlanState::kCancelled).allocations, 1u);
}

// Flat out for 200 ms of the plan's clock: still streaming at 199 ms, done at 200 ms.
TEST(StreamingPlanTest, StopsWhenTheDurationIsOver) {
  StreamOptions options = Streams(4096, /*workers=*/2, /*window=*/8);
  options.duration = absl::Milliseconds(200);
  PlanCounters counters;
  WaitRecordingClock clock;
  const absl::Time start = clock.Now();
  std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters, &clock);
  ASSERT_NE(plan, nullptr);
  ASSERT_TRUE(Eventually([&] { return counters.Snapshot().state == PlanState::kStreaming; }));
  clock.AdvanceTo(start + absl::Milliseconds(199));
  // Published at the next flush, 5 ms of its clock after the start.
  ASSERT_TRUE(Eventually([&] { return counters.Snapshot().allocations > 0; }));
  EXPECT_THAT(plan->WaitFor(absl::Milliseconds(20)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  EXPECT_EQ(counters.Snapshot().state, PlanState::kStreaming);
  clock.AdvanceTo(start + absl::Milliseconds(200));
  EXPECT_GT(ExpectEndedReleased(*plan, PlanState::kCompleted).allocations, 0u);
}

TEST(StreamingPlanTest, ReturnToOsUnmapsEveryBlock) {
  // A ragged size shows which allocator ran: only mmap rounds blocks up to whole pages.
  StreamOptions options = Streams((256 << 10) + 100, /*workers=*/2, /*window=*/8);
  options.return_to_os = true;
  options.duration = absl::Milliseconds(300);
  const uint64_t mapped_block = (options.block_size + PageSize() - 1) / PageSize() * PageSize();
  PlanCounters counters;
  std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters);
  ASSERT_NE(plan, nullptr);

  bool saw_mapped = false, saw_resident = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  for (PlanCountersSnapshot s = counters.Snapshot(); !IsTerminal(s.state);
       s = counters.Snapshot()) {
    ASSERT_LT(absl::Now(), give_up) << "plan did not end";
    EXPECT_EQ(s.mapped_bytes % mapped_block, 0u);
    EXPECT_LE(s.mapped_bytes, options.window * mapped_block);
    saw_mapped |= s.mapped_bytes > 0;
    saw_resident |= s.resident_bytes > 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const PlanCountersSnapshot s = ExpectEndedReleased(*plan, PlanState::kCompleted);
  EXPECT_TRUE(saw_mapped);
  EXPECT_TRUE(saw_resident);
  EXPECT_GT(s.allocations, options.window);  // It churned, not just filled the window.
  EXPECT_EQ(s.bytes_touched, s.bytes_allocated);
}

TEST(StreamingPlanTest, AllocationFailureIsResourceExhaustedWithProgress) {
  CountingAllocator counting(Malloc());
  counting.FailAfter(100);
  StreamOptions options = Streams(4096, /*workers=*/2, /*window=*/4);
  options.allocator = &counting;
  PlanCounters counters;
  std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters);
  ASSERT_NE(plan, nullptr);
  const absl::Status status = plan->WaitFor(kHung);
  // CountingAllocator's limit is not atomic across threads, so ask it how far it got.
  const uint64_t allocated = counting.allocations();
  EXPECT_GE(allocated, 100u);
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr(absl::StrCat("after allocating ", allocated * 4096, " bytes"))));
  EXPECT_THAT(status.message(), HasSubstr("injected failure"));
  EXPECT_EQ(counting.frees(), allocated);
  EXPECT_EQ(counting.live_bytes(), 0u);
  const PlanCountersSnapshot s = counters.Snapshot();
  EXPECT_EQ(s.state, PlanState::kFailed);
  EXPECT_EQ(s.allocations, allocated);
  ExpectAllReleased(s);
}

TEST(StreamingPlanTest, StatesGoFromPendingThroughStreamingToCancelled) {
  PlanCounters counters;
  std::unique_ptr<StreamingPlan> plan = MustCreate<StreamingPlan>(
      Streams(1024, /*workers=*/1, /*window=*/0, TouchMode::kNone), &counters);
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(counters.Snapshot().state, PlanState::kPending);
  EXPECT_THAT(plan->SetTarget(1 << 20),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  ASSERT_THAT(plan->Start(), IsOk());
  EXPECT_TRUE(Eventually([&] { return counters.Snapshot().state == PlanState::kStreaming; }));
  EXPECT_THAT(plan->WaitFor(absl::Milliseconds(20)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
}

TEST(StreamingPlanTest, DestroyingARunningPlanStopsIt) {
  CountingAllocator counting(Malloc());
  StreamOptions options = Streams(4096, /*workers=*/3, /*window=*/6);
  options.allocator = &counting;
  PlanCounters counters;
  {
    std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters);
    ASSERT_NE(plan, nullptr);
    ASSERT_TRUE(Eventually([&] { return counting.allocations() > 10; }));
  }
  EXPECT_EQ(counting.frees(), counting.allocations());
  EXPECT_EQ(counting.live_bytes(), 0u);
  EXPECT_EQ(counters.Snapshot().state, PlanState::kCancelled);
}

}  // namespace
}  // namespace memload
