#include "proto/plan_rules.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/base/quoted.h"
#include "core/base/status_macros.h"
#include "core/size.h"
#include "proto/core_enums.h"

namespace memload {
namespace plan_rules {
std::optional<std::string> PlanIdProblem(absl::string_view id) {
  bool fine = !id.empty() && id.size() <= kMaxPlanIdLength;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      fine = false;
    }
  }
  if (fine) return std::nullopt;
  return absl::StrCat("must be 1-", kMaxPlanIdLength, " characters of [A-Za-z0-9._-]");
}

std::optional<std::string> OomScoreAdjProblem(int64_t value) {
  if (value >= kMinOomScoreAdj && value <= kMaxOomScoreAdj) return std::nullopt;
  return absl::StrCat("must be in [", kMinOomScoreAdj, ", ", kMaxOomScoreAdj, "], got ", value);
}

std::optional<std::string> PercentProblem(double percent, bool allow_100) {
  // Written so that NaN fails too.
  if (percent >= kMinPercent && (allow_100 ? percent <= 100 : percent < 100)) {
    return std::nullopt;
  }
  return absl::StrCat("percent must be in [", kMinPercent, ", 100", allow_100 ? "]" : ")", ", got ",
                      percent);
}

std::optional<std::string> DurationProblem(absl::Duration duration, bool positive) {
  if (duration < absl::ZeroDuration()) {
    return absl::StrCat("must not be negative, got ", absl::FormatDuration(duration));
  }
  if (positive && duration == absl::ZeroDuration()) return "must be positive, got 0s";
  if (duration > absl::Seconds(kMaxDurationSeconds)) return "must be at most 10000 years";
  return std::nullopt;
}

std::optional<std::string> LeaseProblem(absl::Duration lease) {
  if (std::optional<std::string> problem = DurationProblem(lease, /*positive=*/true)) {
    return problem;
  }
  if (lease < kMinLease) {
    return absl::StrCat("must be at least ", absl::FormatDuration(kMinLease), ", got ",
                        absl::FormatDuration(lease));
  }
  if (lease > kMaxLease) {
    return absl::StrCat("must be at most ", absl::FormatDuration(kMaxLease), ", got ",
                        absl::FormatDuration(lease), " (memloadctl run renews a shorter one)");
  }
  return std::nullopt;
}

std::optional<std::string> WorkersProblem(uint64_t workers) {
  if (workers <= kMaxStreamWorkers) return std::nullopt;
  return absl::StrCat("must be 1..", kMaxStreamWorkers, ", got ", workers);
}

std::optional<std::string> BlockSizeProblem(uint64_t block_size) {
  if (block_size <= kMaxBlockSize) return std::nullopt;
  return absl::StrCat("must be at most ", FormatSize(kMaxBlockSize),
                      " (more than any machine can map), got ", block_size, " bytes (",
                      FormatSize(block_size), ")");
}

std::optional<std::string> WindowProblem(uint64_t window, uint64_t block_size) {
  // The bytes must fit in 64 bits, and the window's block pointers in the address space.
  const bool bytes_fit = block_size == 0 || window <= UINT64_MAX / block_size;
  if (bytes_fit && window <= SIZE_MAX / sizeof(void*)) return std::nullopt;
  return absl::StrCat(window, " blocks of ", block_size,
                      " bytes is more than this machine can address");
}

std::optional<std::string> BelowOneBlockProblem(uint64_t target_bytes, uint64_t block_size) {
  if (target_bytes == 0 || target_bytes >= block_size) return std::nullopt;
  return absl::StrCat(FormatSize(target_bytes), " is less than one block (", FormatSize(block_size),
                      "): the plan would hold nothing; use a block size of at most ",
                      FormatSize(target_bytes));
}

std::optional<std::string> AmountProblem(uint64_t amount, uint64_t block_size) {
  if (block_size == 0 || amount % block_size == 0) return std::nullopt;
  return absl::StrCat("must be a multiple of the block size (", block_size, " bytes), got ",
                      amount);
}

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::StatusOr<absl::Duration> CheckDuration(const google::protobuf::Duration& duration,
                                             absl::string_view field, bool positive) {
  const int64_t seconds = duration.seconds();
  const int32_t nanos = duration.nanos();
  if (seconds < -kMaxDurationSeconds || seconds > kMaxDurationSeconds || nanos <= -1000000000 ||
      nanos >= 1000000000 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
    return FieldError(
        field, absl::StrCat("not a valid duration (seconds ", seconds, ", nanos ", nanos, ")"));
  }
  const absl::Duration result = absl::Seconds(seconds) + absl::Nanoseconds(nanos);
  if (std::optional<std::string> problem = DurationProblem(result, positive)) {
    return FieldError(field, *problem);
  }
  return result;
}

absl::Status CheckTouch(v1::TouchMode touch, absl::string_view field) {
  if (v1::TouchMode_IsValid(touch)) return absl::OkStatus();
  return FieldError(field, absl::StrCat("unknown value ", touch));
}

absl::Status CheckBlockSize(uint64_t block_size, absl::string_view field) {
  if (std::optional<std::string> problem = BlockSizeProblem(block_size)) {
    return FieldError(field, *problem);
  }
  return absl::OkStatus();
}

absl::Status CheckBacking(v1::Backing backing, absl::string_view field) {
  if (v1::Backing_IsValid(backing)) return absl::OkStatus();
  return FieldError(field, absl::StrCat("unknown value ", backing));
}

absl::Status CheckQuantity(const v1::Quantity& quantity, absl::string_view field) {
  double percent = 0;
  absl::string_view name;
  switch (quantity.value_case()) {
    case v1::Quantity::kBytes:
      return absl::OkStatus();
    case v1::Quantity::kPercentOfTotal:
      percent = quantity.percent_of_total();
      name = "percent_of_total";
      break;
    case v1::Quantity::kPercentOfAvailable:
      percent = quantity.percent_of_available();
      name = "percent_of_available";
      break;
    case v1::Quantity::kPercentOfCgroupLimit:
      percent = quantity.percent_of_cgroup_limit();
      name = "percent_of_cgroup_limit";
      break;
    case v1::Quantity::VALUE_NOT_SET:
      return FieldError(field,
                        "required: {\"bytes\": \"N\"}, {\"percentOfTotal\": N}, "
                        "{\"percentOfAvailable\": N} or {\"percentOfCgroupLimit\": N}");
  }
  if (std::optional<std::string> problem = PercentProblem(percent, /*allow_100=*/true)) {
    return FieldError(absl::StrCat(field, ".", name), *problem);
  }
  return absl::OkStatus();
}

absl::Status RetainedCostProblem(Backing backing, uint64_t block_size, uint64_t payload_bytes,
                                 uint64_t page_size) {
  const absl::StatusOr<uint64_t> cost = RetainedCost(backing, block_size, payload_bytes, page_size);
  if (cost.ok()) return absl::OkStatus();
  return FieldError("retained", cost.status().message());
}

absl::Status CheckRetainedCost(const v1::PlanSpec& spec) {
  if (spec.kind_case() != v1::PlanSpec::kRetained) return absl::OkStatus();
  const v1::RetainedPlan& plan = spec.retained();
  const uint64_t block_size = plan.block_size() == 0 ? kDefaultBlockSize : plan.block_size();
  for (int i = 0; i < plan.phases_size(); ++i) {
    const v1::Phase& phase = plan.phases(i);
    if (phase.target().has_bytes()) {
      if (std::optional<std::string> problem =
              BelowOneBlockProblem(phase.target().bytes(), block_size)) {
        return FieldError(absl::StrCat("retained.phases[", i, "].target"), *problem);
      }
      MEMLOAD_RETURN_IF_ERROR(
          RetainedCostProblem(FromProto(plan.backing()), block_size, phase.target().bytes()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRetainedPlan(const v1::RetainedPlan& plan) {
  MEMLOAD_RETURN_IF_ERROR(CheckBlockSize(plan.block_size(), "retained.block_size"));
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "retained.touch"));
  MEMLOAD_RETURN_IF_ERROR(CheckBacking(plan.backing(), "retained.backing"));
  if (plan.phases_size() == 0) {
    return FieldError("retained.phases", "at least one phase is required");
  }
  for (int i = 0; i < plan.phases_size(); ++i) {
    const v1::Phase& phase = plan.phases(i);
    const std::string where = absl::StrCat("retained.phases[", i, "]");
    MEMLOAD_RETURN_IF_ERROR(CheckQuantity(phase.target(), absl::StrCat(where, ".target")));
    absl::Duration ramp = absl::ZeroDuration();
    if (phase.has_ramp_duration()) {
      absl::StatusOr<absl::Duration> checked =
          CheckDuration(phase.ramp_duration(), absl::StrCat(where, ".ramp_duration"), false);
      if (!checked.ok()) return checked.status();
      ramp = *checked;
    }
    if (phase.ramp_bytes_per_sec() > 0 && ramp > absl::ZeroDuration()) {
      return FieldError(where, kBothRamps);
    }
    if (phase.has_hold()) {
      absl::StatusOr<absl::Duration> hold =
          CheckDuration(phase.hold(), absl::StrCat(where, ".hold"), false);
      if (!hold.ok()) return hold.status();
      if (phase.hold_forever() && *hold > absl::ZeroDuration()) {
        return FieldError(where, kHoldAndHoldForever);
      }
    }
  }
  if (plan.repeat_forever() && plan.repeat() > 0) {
    return FieldError("retained", kRepeatAndRepeatForever);
  }
  // A last phase of 0 ends a sawtooth; a plan of nothing but 0 would say "holding" and hold
  // nothing (`--target=0`).
  const bool all_zero = std::all_of(plan.phases().begin(), plan.phases().end(), [](const auto& p) {
    return p.target().has_bytes() && p.target().bytes() == 0;
  });
  if (all_zero) return FieldError("retained.phases", kNothingToHold);
  return absl::OkStatus();
}

absl::Status CheckUtilizationPlan(const v1::UtilizationPlan& plan) {
  MEMLOAD_RETURN_IF_ERROR(CheckBlockSize(plan.block_size(), "utilization.block_size"));
  if (std::optional<std::string> problem =
          PercentProblem(plan.target_percent(), /*allow_100=*/false)) {
    return FieldError("utilization.target_percent", *problem);
  }
  if (!v1::UtilizationPlan::Reference_IsValid(plan.reference())) {
    return FieldError("utilization.reference", absl::StrCat("unknown value ", plan.reference()));
  }
  if (plan.has_duration()) {
    MEMLOAD_RETURN_IF_ERROR(
        CheckDuration(plan.duration(), "utilization.duration", /*positive=*/true).status());
  }
  if (plan.has_interval()) {
    absl::StatusOr<absl::Duration> interval =
        CheckDuration(plan.interval(), "utilization.interval", /*positive=*/false);
    if (!interval.ok()) return interval.status();
    if (*interval < kMinUtilizationInterval) {
      return FieldError(
          "utilization.interval",
          absl::StrCat("must be at least ", absl::FormatDuration(kMinUtilizationInterval), ", got ",
                       absl::FormatDuration(*interval)));
    }
  }
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "utilization.touch"));
  if (plan.touch() == v1::TOUCH_MODE_NONE) {
    return FieldError("utilization.touch", kUntouchedUtilization);
  }
  return CheckBacking(plan.backing(), "utilization.backing");
}

absl::Status CheckStreamingPlan(const v1::StreamingPlan& plan) {
  if (plan.block_size() == 0) return FieldError("streaming.block_size", "required (> 0)");
  MEMLOAD_RETURN_IF_ERROR(CheckBlockSize(plan.block_size(), "streaming.block_size"));
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "streaming.touch"));
  if (std::optional<std::string> problem = WorkersProblem(plan.workers())) {
    return FieldError("streaming.workers", *problem);
  }
  if (std::optional<std::string> problem = WindowProblem(plan.window(), plan.block_size())) {
    return FieldError("streaming.window", *problem);
  }
  if (std::optional<std::string> problem = AmountProblem(plan.amount_bytes(), plan.block_size())) {
    return FieldError("streaming.amount_bytes", *problem);
  }
  if (plan.has_duration()) {
    MEMLOAD_RETURN_IF_ERROR(
        CheckDuration(plan.duration(), "streaming.duration", /*positive=*/false).status());
  }
  return absl::OkStatus();
}

namespace {

// The one wording of a bad plan id: "FIELD: PROBLEM, got \"ID\"" (the id quoted and cut).
absl::Status PlanIdError(absl::string_view field, absl::string_view id, absl::string_view problem) {
  return FieldError(field, absl::StrCat(problem, ", got ", Quoted(id)));
}

}  // namespace

absl::Status CheckPlanId(absl::string_view id) {
  if (std::optional<std::string> problem = PlanIdProblem(id)) {
    return PlanIdError("plan_id", id, *problem);
  }
  return absl::OkStatus();
}

absl::Status CheckRenewLeases(const v1::RenewLeasesRequest& request) {
  if (request.has_lease()) {
    // 0 or less would end the plans it "renews", less than kMinLease nearly so (a StartPlan's
    // lease has the same floor). A longer one than the agent's maximum is cut to it.
    MEMLOAD_ASSIGN_OR_RETURN(absl::Duration lease,
                             CheckDuration(request.lease(), "lease", /*positive=*/true));
    if (lease < kMinLease) return FieldError("lease", *LeaseProblem(lease));
  }
  if (static_cast<size_t>(request.plan_ids_size()) > kMaxRenewPlanIds) {
    return FieldError("plan_ids", absl::StrCat("at most ", kMaxRenewPlanIds, " ids, got ",
                                               request.plan_ids_size()));
  }
  for (int i = 0; i < request.plan_ids_size(); ++i) {
    if (std::optional<std::string> problem = PlanIdProblem(request.plan_ids(i))) {
      return PlanIdError(absl::StrCat("plan_ids[", i, "]"), request.plan_ids(i), *problem);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPlanLabelCount(size_t count) {
  if (count <= kMaxLabels) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("labels: at most ", kMaxLabels, " labels, got ", count));
}

absl::Status CheckPlanLabel(absl::string_view key, absl::string_view value) {
  if (key.empty() || key.size() > kMaxLabelKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("labels: a key must be 1-", kMaxLabelKeyBytes,
                                                   " bytes, got ", key.size(), " (", Quoted(key),
                                                   ")"));
  }
  if (value.size() > kMaxLabelValueBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels[", Quoted(key), "]: a value may be at most ", kMaxLabelValueBytes,
                     " bytes, got ", value.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckPlanBounds(const v1::PlanSpec& spec) {
  MEMLOAD_RETURN_IF_ERROR(CheckPlanLabelCount(static_cast<size_t>(spec.labels_size())));
  for (const auto& [key, value] : spec.labels()) {
    MEMLOAD_RETURN_IF_ERROR(CheckPlanLabel(key, value));
  }
  if (spec.has_retained() && spec.retained().phases_size() > kMaxPhases) {
    return absl::InvalidArgumentError(absl::StrCat("retained.phases: at most ", kMaxPhases,
                                                   " phases, got ", spec.retained().phases_size()));
  }
  const size_t bytes = spec.ByteSizeLong();
  if (bytes > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the plan spec is ", bytes, " bytes; at most ",
                                                   kMaxSpecBytes, " are accepted"));
  }
  return absl::OkStatus();
}

namespace {

// ValidatePlanSpec without the bounds.
absl::Status ValidateFields(const v1::PlanSpec& spec, PlanIdRule plan_id) {
  if (plan_id == PlanIdRule::kRequired || !spec.plan_id().empty()) {
    MEMLOAD_RETURN_IF_ERROR(CheckPlanId(spec.plan_id()));
  }
  if (spec.has_lease()) {
    MEMLOAD_ASSIGN_OR_RETURN(absl::Duration lease,
                             CheckDuration(spec.lease(), "lease", /*positive=*/true));
    if (std::optional<std::string> problem = LeaseProblem(lease)) {
      return FieldError("lease", *problem);
    }
  }
  if (spec.has_oom_score_adj()) {
    if (std::optional<std::string> problem = OomScoreAdjProblem(spec.oom_score_adj())) {
      return FieldError("oom_score_adj", *problem);
    }
  }
  switch (spec.kind_case()) {
    case v1::PlanSpec::kRetained:
      return CheckRetainedPlan(spec.retained());
    case v1::PlanSpec::kUtilization:
      return CheckUtilizationPlan(spec.utilization());
    case v1::PlanSpec::kStreaming:
      return CheckStreamingPlan(spec.streaming());
    case v1::PlanSpec::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "the plan has no kind: give one of \"retained\", \"utilization\", \"streaming\"");
}

}  // namespace

absl::Status ValidatePlanSpec(const v1::PlanSpec& spec, PlanIdRule plan_id) {
  MEMLOAD_RETURN_IF_ERROR(ValidateFields(spec, plan_id));
  return CheckPlanBounds(spec);
}

}  // namespace plan_rules
}  // namespace memload
