#include "agent/plan_bounds.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace memload {
namespace agent {

absl::Status CheckPlanBounds(const v1::PlanSpec& spec) {
  if (static_cast<size_t>(spec.labels_size()) > kMaxLabels) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels: at most ", kMaxLabels, " labels, got ", spec.labels_size()));
  }
  for (const auto& [key, value] : spec.labels()) {
    if (key.empty() || key.size() > kMaxLabelKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "labels: a key must be 1-", kMaxLabelKeyBytes, " bytes, got ", key.size(), " (\"",
          absl::CHexEscape(key.substr(0, 32)), key.size() > 32 ? "...\")" : "\")"));
    }
    if (value.size() > kMaxLabelValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels[\"", absl::CHexEscape(key), "\"]: a value may be at most ",
                       kMaxLabelValueBytes, " bytes, got ", value.size()));
    }
  }
  if (spec.has_retained() && spec.retained().phases_size() > kMaxPhases) {
    return absl::InvalidArgumentError(absl::StrCat("retained.phases: at most ", kMaxPhases,
                                                   " phases, got ",
                                                   spec.retained().phases_size()));
  }
  const size_t bytes = spec.ByteSizeLong();
  if (bytes > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the plan spec is ", bytes,
                                                   " bytes; at most ", kMaxSpecBytes,
                                                   " are accepted"));
  }
  return absl::OkStatus();
}

}  // namespace agent
}  // namespace memload
