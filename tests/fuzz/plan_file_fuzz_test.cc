// Fuzzes memloadctl's plan files (controller/plan_builder.h ParsePlanFile: JSON → PlanSpec →
// ValidatePlanSpec) and the plan-level overrides applied over a parsed file.
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controller/plan_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = memload::controller::ParsePlanFile(text, "fuzz.json");
  if (spec.ok()) {
    memload::controller::PlanFlags flags;
    flags.lease = "30s";
    (void)memload::controller::ApplyPlanOverrides(*spec, flags, absl::UnixEpoch(), 1);
  }
  return 0;
}
