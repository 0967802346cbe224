#include "core/plan_counters.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <new>
#include <thread>

#include "gtest/gtest.h"

namespace memload {
namespace {

constexpr PlanState kAllStates[] = {
    PlanState::kPending, PlanState::kRamping,   PlanState::kHolding,   PlanState::kStreaming,
    PlanState::kCapped,  PlanState::kCompleted, PlanState::kCancelled, PlanState::kFailed};

// Writes a distinct value into every field but the state: the i-th of kPlanCounterFields
// gets base + 1 + i.
void FillCounters(PlanCounters* c, uint64_t base) {
  uint64_t value = base;
  for (const PlanCounterField& field : kPlanCounterFields) (c->*field.counter).store(++value);
}

void ExpectFilled(const PlanCountersSnapshot& s, uint64_t base) {
  uint64_t value = base;
  for (const PlanCounterField& field : kPlanCounterFields) {
    EXPECT_EQ(s.*field.copy, ++value) << field.name;
  }
}

TEST(PlanCountersTest, StartsPendingAndZero) {
  PlanCounters counters;
  const PlanCountersSnapshot s = counters.Snapshot();
  EXPECT_EQ(s.state, PlanState::kPending);
  for (const PlanCounterField& field : kPlanCounterFields) {
    EXPECT_EQ(s.*field.copy, 0u) << field.name;
  }
}

// The table behind Snapshot() names each field once (its static_asserts count them).
TEST(PlanCountersTest, TheFieldTableListsEachFieldOnce) {
  const size_t n = std::size(kPlanCounterFields);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      EXPECT_NE(kPlanCounterFields[i].counter, kPlanCounterFields[j].counter)
          << kPlanCounterFields[i].name;
      EXPECT_NE(kPlanCounterFields[i].copy, kPlanCounterFields[j].copy)
          << kPlanCounterFields[i].name;
      EXPECT_NE(kPlanCounterFields[i].name, kPlanCounterFields[j].name);
    }
  }
}

TEST(PlanCountersTest, SnapshotCopiesEveryField) {
  PlanCounters counters;
  FillCounters(&counters, 1000);
  counters.SetState(PlanState::kCapped);
  const PlanCountersSnapshot s = counters.Snapshot();
  EXPECT_EQ(s.state, PlanState::kCapped);
  ExpectFilled(s, 1000);
  // A snapshot is a copy: later writes do not change it.
  counters.allocations.store(1);
  EXPECT_EQ(s.allocations, 1008u);
}

TEST(PlanStateTest, Names) {
  // In kAllStates' order.
  constexpr absl::string_view kNames[] = {"PENDING", "RAMPING",   "HOLDING",   "STREAMING",
                                          "CAPPED",  "COMPLETED", "CANCELLED", "FAILED"};
  static_assert(std::size(kNames) == std::size(kAllStates));
  for (size_t i = 0; i < std::size(kAllStates); ++i) {
    EXPECT_EQ(PlanStateName(kAllStates[i]), kNames[i]);
  }
  EXPECT_EQ(PlanStateName(static_cast<PlanState>(99)), "UNKNOWN");
}

TEST(PlanStateTest, NumericValuesAreStable) {
  // They cross process boundaries: changing one breaks readers built from older code.
  for (uint64_t i = 0; i < 8; ++i) EXPECT_EQ(static_cast<uint64_t>(kAllStates[i]), i);
}

TEST(PlanStateTest, OnlyCompletedCancelledAndFailedAreTerminal) {
  for (PlanState state : kAllStates) {
    const bool terminal = state == PlanState::kCompleted || state == PlanState::kCancelled ||
                          state == PlanState::kFailed;
    EXPECT_EQ(IsTerminal(state), terminal) << PlanStateName(state);
  }
}

TEST(PlanCountersTest, ReadableFromAnotherThreadWhileWritten) {
  // One writer per field (fetch_add for the totals), a reader snapshotting all along:
  // cumulative counters never go backwards, and the final snapshot is exact.
  constexpr uint64_t kSteps = 20000;
  PlanCounters counters;
  std::atomic<bool> reading{false};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    while (!reading.load()) std::this_thread::yield();  // Overlap with the reader.
    counters.SetState(PlanState::kRamping);
    for (uint64_t i = 1; i <= kSteps; ++i) {
      counters.allocations.fetch_add(1, std::memory_order_relaxed);
      counters.bytes_allocated.fetch_add(64, std::memory_order_relaxed);
      counters.payload_bytes.store(i * 64, std::memory_order_release);
      counters.peak_payload_bytes.store(i * 64, std::memory_order_release);
    }
    counters.SetState(PlanState::kHolding);
    done.store(true);
  });
  uint64_t last_allocations = 0;
  uint64_t last_peak = 0;
  reading.store(true);
  while (!done.load()) {
    const PlanCountersSnapshot s = counters.Snapshot();
    EXPECT_GE(s.allocations, last_allocations);
    EXPECT_GE(s.peak_payload_bytes, last_peak);
    last_allocations = s.allocations;
    last_peak = s.peak_payload_bytes;
  }
  writer.join();
  const PlanCountersSnapshot s = counters.Snapshot();
  EXPECT_EQ(s.state, PlanState::kHolding);
  EXPECT_EQ(s.allocations, kSteps);
  EXPECT_EQ(s.bytes_allocated, kSteps * 64);
  EXPECT_EQ(s.payload_bytes, kSteps * 64);
}

TEST(PlanCountersTest, SharedMappingIsWrittenByAForkedChildAndReadByTheParent) {
  void* memory = mmap(nullptr, sizeof(PlanCounters), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  PlanCounters* counters = new (memory) PlanCounters;
  ASSERT_EQ(counters->Snapshot().state, PlanState::kPending);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FillCounters(counters, 5000);
    counters->allocations.fetch_add(10);
    counters->SetState(PlanState::kHolding);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  PlanCountersSnapshot s = counters->Snapshot();
  EXPECT_EQ(s.state, PlanState::kHolding);
  s.allocations -= 10;
  ExpectFilled(s, 5000);

  // And the other way: the parent's writes are visible to a child.
  counters->SetState(PlanState::kCompleted);
  const pid_t reader = fork();
  ASSERT_GE(reader, 0);
  if (reader == 0) {
    _exit(counters->Snapshot().state == PlanState::kCompleted ? 0 : 1);
  }
  ASSERT_EQ(waitpid(reader, &status, 0), reader);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  counters->~PlanCounters();
  munmap(memory, sizeof(PlanCounters));
}

}  // namespace
}  // namespace memload
