// The name of a plan's kind ("retained", "utilization", "streaming"), shared by the
// agent's metrics labels and memloadctl's tables. Thread-safe.
#ifndef MEMLOAD_PROTO_PLAN_KIND_H_
#define MEMLOAD_PROTO_PLAN_KIND_H_

#include "absl/strings/string_view.h"
#include "proto/memload.pb.h"

namespace memload {

// `unset` when the spec has no kind.
inline absl::string_view PlanKindName(const v1::PlanSpec& spec, absl::string_view unset) {
  switch (spec.kind_case()) {
    case v1::PlanSpec::kRetained:
      return "retained";
    case v1::PlanSpec::kUtilization:
      return "utilization";
    case v1::PlanSpec::kStreaming:
      return "streaming";
    case v1::PlanSpec::KIND_NOT_SET:
      break;
  }
  return unset;
}

}  // namespace memload

#endif  // MEMLOAD_PROTO_PLAN_KIND_H_
