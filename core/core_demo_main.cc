// memload-core-demo: the core library on its own, in one process — a retained plan and a
// streaming plan side by side, with the accounting table and the resident memory measured
// from the OS (mincore for the plans, /proc/self/status for the process).
//
//   bazel run //core:memload-core-demo -- --retained=256MiB --seconds=3
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/node_readers.h"
#include "core/retained_plan.h"
#include "core/size.h"
#include "core/streaming.h"

ABSL_FLAG(std::string, retained, "256MiB", "target of the retained plan");
ABSL_FLAG(std::string, stream_rate, "512MiB", "bytes per second of the streaming plan");
ABSL_FLAG(int, seconds, 3, "how long the demo holds (after a 1 s ramp)");

namespace memload {
namespace {

std::string Row(const char* name, const PlanCountersSnapshot& s) {
  return absl::StrFormat("%-10s %-10s %12s %12s %12s %10d %10d %12s\n", name,
                         PlanStateName(s.state), FormatSize(s.payload_bytes),
                         FormatSize(s.resident_bytes), FormatSize(s.bookkeeping_bytes),
                         s.allocations, s.frees, FormatSize(s.bytes_allocated));
}

void PrintTable(const PlanCounters& retained, const PlanCounters& streaming) {
  absl::StatusOr<ProcessMemory> self = ReadProcessMemory(0);
  std::printf("%-10s %-10s %12s %12s %12s %10s %10s %12s\n", "plan", "state", "payload", "resident",
              "bookkeeping", "allocs", "frees", "allocated");
  std::printf("%s", Row("retained", retained.Snapshot()).c_str());
  std::printf("%s", Row("streaming", streaming.Snapshot()).c_str());
  if (self.ok()) {
    std::printf("process RSS (from /proc/self/status): %s (anon %s, shmem %s)\n\n",
                FormatSize(self->rss_bytes).c_str(), FormatSize(self->rss_anon_bytes).c_str(),
                FormatSize(self->rss_shmem_bytes).c_str());
  }
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("A retained and a streaming plan in one process.");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<uint64_t> target = ParseSize(absl::GetFlag(FLAGS_retained));
  absl::StatusOr<uint64_t> rate = ParseSize(absl::GetFlag(FLAGS_stream_rate));
  if (!target.ok() || !rate.ok()) {
    std::fprintf(stderr, "memload-core-demo: %s\n",
                 (target.ok() ? rate.status() : target.status()).ToString().c_str());
    return 2;
  }
  const absl::Duration hold = absl::Seconds(absl::GetFlag(FLAGS_seconds));

  RetainedPlanSpec retained_spec;
  retained_spec.set.block_size = 1 << 20;
  retained_spec.set.touch = TouchMode::kPage;
  retained_spec.set.backing = Backing::kMmap;
  Phase phase;
  phase.target_bytes = *target;
  phase.ramp_duration = absl::Seconds(1);
  phase.hold = hold;
  retained_spec.phases.push_back(phase);

  StreamOptions stream;
  stream.block_size = 1 << 20;
  stream.touch = TouchMode::kPage;
  stream.return_to_os = true;
  stream.window = 8;
  stream.workers = 2;
  stream.rate_bytes_per_sec = *rate;
  stream.duration = absl::Seconds(1) + hold;

  PlanCounters retained_counters, streaming_counters;
  absl::StatusOr<std::unique_ptr<RetainedPlan>> retained =
      RetainedPlan::Create(retained_spec, &retained_counters);
  absl::StatusOr<std::unique_ptr<StreamingPlan>> streaming =
      StreamingPlan::Create(stream, &streaming_counters);
  if (!retained.ok() || !streaming.ok()) {
    std::fprintf(stderr, "memload-core-demo: %s\n",
                 (retained.ok() ? streaming.status() : retained.status()).ToString().c_str());
    return 2;
  }
  std::printf("retained: %s of 1 MiB mmap blocks, page touch, 1 s ramp, hold %s\n",
              FormatSize(*target).c_str(), absl::FormatDuration(hold).c_str());
  std::printf("streaming: 1 MiB blocks returned to the OS, window 8, 2 workers, %s/s\n\n",
              FormatSize(*rate).c_str());
  if (!(*retained)->Start().ok() || !(*streaming)->Start().ok()) return 1;

  const absl::Time end = absl::Now() + absl::Seconds(1) + hold;
  while (absl::Now() < end) {
    PrintTable(retained_counters, streaming_counters);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  const absl::Status retained_done = (*retained)->Wait();
  const absl::Status streaming_done = (*streaming)->Wait();
  std::printf("final accounting (memory returned):\n");
  PrintTable(retained_counters, streaming_counters);
  std::printf(
      "bookkeeping formula: retained = sizeof(RetainedSet) + 8 x table capacity; "
      "streaming = 8 x window while running\n");
  if (!retained_done.ok() || !streaming_done.ok()) {
    std::fprintf(stderr, "memload-core-demo: %s\n",
                 (retained_done.ok() ? streaming_done : retained_done).ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace memload

int main(int argc, char** argv) { return memload::Main(argc, argv); }
