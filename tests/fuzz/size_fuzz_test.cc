// Fuzzes the parsers of sizes, durations and the other flag values a user types: core's
// ParseSize / FormatSize, ParseSizeOrPercent, ParseLabels; the controller's --target,
// --rollout, --stagger, --max-failures parsers, and BuildPlanFromFlags with every plan flag
// taken from the input (one flag value per line). Checks: no crash, no sanitizer report, and
// that a parsed size prints and parses back to itself.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controller/plan_builder.h"
#include "controller/rollout.h"
#include "core/cli/flag_values.h"
#include "core/size.h"
#include "tests/fuzz/fuzz_check.h"

using ::memload::testing::FuzzCheck;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  if (absl::StatusOr<uint64_t> bytes = memload::ParseSize(text); bytes.ok()) {
    const std::string formatted = memload::FormatSize(*bytes);
    // FormatSize may round for display; an exact byte count must always round-trip.
    absl::StatusOr<uint64_t> again = memload::ParseSize(std::to_string(*bytes));
    FuzzCheck(again.ok() && *again == *bytes, "ParseSize(decimal bytes) round-trips");
    (void)formatted;
  }
  (void)memload::ParseSizeOrPercent(text);
  (void)memload::ParseLabels(text);
  (void)memload::controller::ParseTargetFlag(std::string(text));
  if (auto rollout = memload::controller::ParseRollout(text); rollout.ok()) {
    auto again = memload::controller::ParseRollout(memload::controller::FormatRollout(*rollout));
    FuzzCheck(again.ok(), "FormatRollout output parses");
    (void)memload::controller::PlanWaves(*rollout, 1000);
  }
  (void)memload::controller::ParseStagger(text);
  if (auto limit = memload::controller::ParseMaxFailures(text); limit.ok()) {
    (void)limit->Allowed(0);
    (void)limit->Allowed(12345);
  }

  // Every plan flag from one line of the input each (missing lines: unset).
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  lines.resize(20);
  memload::controller::PlanFlags flags;
  std::string* fields[] = {&flags.kind,         &flags.target, &flags.touch,   &flags.backing,
                           &flags.block_size,   &flags.ramp,   &flags.hold,    &flags.repeat,
                           &flags.rate,         &flags.window, &flags.workers, &flags.amount,
                           &flags.duration,     &flags.lease,  &flags.plan_id, &flags.labels,
                           &flags.oom_score_adj};
  size_t i = 0;
  for (std::string* field : fields) *field = lines[i++];
  flags.return_to_os = !lines[i].empty();
  flags.huge_pages = lines[i].size() > 1;
  flags.expect_oom = lines[i].size() > 2;
  auto spec = memload::controller::BuildPlanFromFlags(flags, absl::UnixEpoch(), 7);
  if (spec.ok()) {
    FuzzCheck(memload::controller::ValidatePlanSpec(*spec).ok(),
              "a plan built from flags passes ValidatePlanSpec");
  }
  return 0;
}
