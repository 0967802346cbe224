#include "controller/plan_builder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "core/flag_values.h"
#include "core/size.h"
#include "core/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

// The defaults the agent applies to 0; the CLI fills them in so that what it prints is what
// runs (and streaming, which requires a block size, needs no extra flag).
constexpr uint64_t kDefaultBlockSize = uint64_t{1} << 20;
constexpr uint32_t kMaxStreamWorkers = 64;  // The agent's limit.
// google.protobuf.Duration's documented range: ±10,000 years.
constexpr int64_t kMaxDurationSeconds = 315576000000;
constexpr size_t kMaxPlanFileBytes = size_t{1} << 20;

// Which plan kinds a flag applies to.
enum KindBits : int {
  kRetainedBit = 1,
  kUtilizationBit = 2,
  kStreamingBit = 4,
  kAnyKind = kRetainedBit | kUtilizationBit | kStreamingBit,
};

struct FlagDef {
  absl::string_view name;
  std::string PlanFlags::*text;  // Exactly one of text and toggle is set.
  bool PlanFlags::*toggle;
  int kinds;
  bool overrides_plan_file;  // May be given with --plan.
};

const FlagDef kFlagDefs[] = {
    {"plan", &PlanFlags::plan, nullptr, kAnyKind, true},
    {"kind", &PlanFlags::kind, nullptr, kAnyKind, false},
    {"target", &PlanFlags::target, nullptr, kRetainedBit | kUtilizationBit, false},
    {"touch", &PlanFlags::touch, nullptr, kAnyKind, false},
    {"backing", &PlanFlags::backing, nullptr, kRetainedBit | kUtilizationBit, false},
    {"block_size", &PlanFlags::block_size, nullptr, kAnyKind, false},
    {"ramp", &PlanFlags::ramp, nullptr, kRetainedBit, false},
    {"hold", &PlanFlags::hold, nullptr, kRetainedBit, false},
    {"repeat", &PlanFlags::repeat, nullptr, kRetainedBit, false},
    {"rate", &PlanFlags::rate, nullptr, kStreamingBit, false},
    {"window", &PlanFlags::window, nullptr, kStreamingBit, false},
    {"workers", &PlanFlags::workers, nullptr, kStreamingBit, false},
    {"return_to_os", nullptr, &PlanFlags::return_to_os, kStreamingBit, false},
    {"amount", &PlanFlags::amount, nullptr, kStreamingBit, false},
    {"duration", &PlanFlags::duration, nullptr, kStreamingBit | kUtilizationBit, false},
    {"lease", &PlanFlags::lease, nullptr, kAnyKind, true},
    {"plan_id", &PlanFlags::plan_id, nullptr, kAnyKind, true},
    {"labels", &PlanFlags::labels, nullptr, kAnyKind, true},
    {"expect_oom", nullptr, &PlanFlags::expect_oom, kAnyKind, true},
    {"oom_score_adj", &PlanFlags::oom_score_adj, nullptr, kAnyKind, true},
    {"huge_pages", nullptr, &PlanFlags::huge_pages, kRetainedBit, false},
    {"mlock", nullptr, &PlanFlags::mlock, kRetainedBit, false},
};

const FlagDef& Def(absl::string_view name) {
  for (const FlagDef& def : kFlagDefs) {
    if (def.name == name) return def;
  }
  abort();  // A typo in this file; every caller passes a literal from kFlagDefs.
}

bool Given(const PlanFlags& flags, const FlagDef& def) {
  if (flags.explicitly_set.count(std::string(def.name)) > 0) return true;
  return def.text != nullptr ? !(flags.*def.text).empty() : flags.*def.toggle;
}
bool Given(const PlanFlags& flags, absl::string_view name) { return Given(flags, Def(name)); }

std::string KindsText(int kinds) {
  std::string text;
  for (auto [bit, name] : {std::pair<int, const char*>{kRetainedBit, "retained"},
                           {kUtilizationBit, "utilization"},
                           {kStreamingBit, "streaming"}}) {
    if ((kinds & bit) == 0) continue;
    absl::StrAppend(&text, text.empty() ? "" : " and ", name);
  }
  return text;
}

// --- Errors. Flags quote what the user typed; files name the proto field path. Both end
// with the same description of the problem where they check the same thing.

absl::Status FlagError(absl::string_view name, absl::string_view text,
                       absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, "=\"", absl::CHexEscape(text), "\": ", problem));
}

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// The smallest percentage a plan may ask for: below it a target resolves to (almost)
// nothing, e.g. --target=1e-300% started a 0-byte plan (issue 12.8).
constexpr double kMinPercent = 0.001;

std::optional<std::string> PercentProblem(double percent, bool allow_100) {
  // Written so that NaN fails too.
  if (percent >= kMinPercent && (allow_100 ? percent <= 100 : percent < 100)) {
    return std::nullopt;
  }
  return absl::StrCat("percent must be in [", kMinPercent, ", 100", allow_100 ? "]" : ")",
                      ", got ", percent);
}

std::optional<std::string> DurationProblem(absl::Duration duration, bool positive) {
  if (duration < absl::ZeroDuration()) {
    return absl::StrCat("must not be negative, got ", absl::FormatDuration(duration));
  }
  if (positive && duration == absl::ZeroDuration()) {
    return "must be positive, got 0s";
  }
  if (duration > absl::Seconds(kMaxDurationSeconds)) return "must be at most 10000 years";
  return std::nullopt;
}

bool ValidPlanId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' &&
        c != '-') {
      return false;
    }
  }
  return true;
}
constexpr absl::string_view kPlanIdProblem = "must be 1-128 characters of [A-Za-z0-9._-]";

std::optional<std::string> OomScoreAdjProblem(int64_t value) {
  if (value >= -1000 && value <= 1000) return std::nullopt;
  return absl::StrCat("must be in [-1000, 1000], got ", value);
}

std::optional<std::string> WorkersProblem(uint64_t workers) {
  if (workers <= kMaxStreamWorkers) return std::nullopt;
  return absl::StrCat("must be 1..", kMaxStreamWorkers, ", got ", workers);
}

std::optional<std::string> AmountProblem(uint64_t amount, uint64_t block_size) {
  if (block_size == 0 || amount % block_size == 0) return std::nullopt;
  return absl::StrCat("must be a multiple of the block size (", block_size, " bytes), got ",
                      amount);
}

std::optional<std::string> WindowProblem(uint64_t window, uint64_t block_size) {
  if (MultiplySizes(window, block_size).ok()) return std::nullopt;
  return absl::StrCat(window, " blocks of ", block_size, " bytes do not fit in 64 bits");
}

constexpr absl::string_view kUntouchedUtilization =
    "utilization plans need page or fill: untouched memory never shows as use, so the plan "
    "would grow without bound";
constexpr absl::string_view kBothRamps = "give ramp_bytes_per_sec or ramp_duration, not both";

// --- Flag parsers.

absl::StatusOr<uint64_t> FlagSize(absl::string_view name, const std::string& text) {
  absl::StatusOr<uint64_t> bytes = ParseSize(text);
  if (!bytes.ok()) return FlagError(name, text, bytes.status().message());
  return *bytes;
}

absl::StatusOr<absl::Duration> FlagDuration(absl::string_view name, const std::string& text,
                                            bool positive) {
  absl::Duration duration;
  if (!absl::ParseDuration(std::string(absl::StripAsciiWhitespace(text)), &duration) ||
      duration == absl::InfiniteDuration() || duration == -absl::InfiniteDuration()) {
    return FlagError(name, text, "not a duration: want e.g. 500ms, 30s, 5m, 1h30m");
  }
  if (std::optional<std::string> problem = DurationProblem(duration, positive)) {
    return FlagError(name, text, *problem);
  }
  return duration;
}

bool IsForever(const std::string& text) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(text)) == "forever";
}

// "64MiB/s" or "64MiB": bytes per second, > 0.
absl::StatusOr<uint64_t> FlagRate(absl::string_view name, const std::string& text) {
  absl::string_view size = absl::StripAsciiWhitespace(text);
  absl::ConsumeSuffix(&size, "/s");
  absl::StatusOr<uint64_t> bytes = ParseSize(size);
  if (!bytes.ok()) return FlagError(name, text, bytes.status().message());
  if (*bytes == 0) return FlagError(name, text, "a rate must be more than 0 bytes per second");
  return *bytes;
}

template <typename Int>
absl::StatusOr<Int> FlagInt(absl::string_view name, const std::string& text,
                            absl::string_view want) {
  Int value;
  if (!absl::SimpleAtoi(text, &value)) {
    return FlagError(name, text, absl::StrCat("not a whole number: want ", want));
  }
  return value;
}

// "80" of "80%..." → 80, with the shared range check.
absl::StatusOr<double> FlagPercent(absl::string_view name, const std::string& text,
                                   absl::string_view number, bool allow_100) {
  double percent = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(number), &percent) ||
      !std::isfinite(percent)) {
    return FlagError(name, text, "not a percentage: want a number then %, e.g. 80%");
  }
  if (std::optional<std::string> problem = PercentProblem(percent, allow_100)) {
    return FlagError(name, text, *problem);
  }
  return percent;
}

absl::StatusOr<v1::Quantity> RetainedTarget(const std::string& text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  v1::Quantity quantity;
  const size_t percent_sign = trimmed.find('%');
  if (percent_sign == absl::string_view::npos) {
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t bytes, FlagSize("target", text));
    quantity.set_bytes(bytes);
    return quantity;
  }
  MEMLOAD_ASSIGN_OR_RETURN(
      double percent,
      FlagPercent("target", text, trimmed.substr(0, percent_sign), /*allow_100=*/true));
  const std::string of = absl::AsciiStrToLower(trimmed.substr(percent_sign + 1));
  if (of.empty() || of == "total") {
    quantity.set_percent_of_total(percent);
  } else if (of == "available") {
    quantity.set_percent_of_available(percent);
  } else if (of == "cgroup") {
    quantity.set_percent_of_cgroup_limit(percent);
  } else {
    return FlagError("target", text,
                     absl::StrCat("unknown percentage suffix \"", absl::CHexEscape(of),
                                  "\": want N%, N%available or N%cgroup"));
  }
  return quantity;
}

absl::Status SetUtilizationTarget(const std::string& text, v1::UtilizationPlan* plan) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  const size_t percent_sign = trimmed.find('%');
  if (percent_sign == absl::string_view::npos) {
    return FlagError("target", text,
                     "utilization plans take a percentage of memory in use, e.g. 80%");
  }
  MEMLOAD_ASSIGN_OR_RETURN(
      double percent,
      FlagPercent("target", text, trimmed.substr(0, percent_sign), /*allow_100=*/false));
  plan->set_target_percent(percent);
  const std::string of = absl::AsciiStrToLower(trimmed.substr(percent_sign + 1));
  if (of == "node") {
    plan->set_reference(v1::UtilizationPlan::REFERENCE_NODE);
  } else if (of == "cgroup") {
    plan->set_reference(v1::UtilizationPlan::REFERENCE_CGROUP);
  } else if (!of.empty()) {
    return FlagError("target", text,
                     absl::StrCat("unknown percentage suffix \"", absl::CHexEscape(of),
                                  "\": want N%, N%node or N%cgroup"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::TouchMode> FlagTouch(const std::string& text) {
  const std::string value = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (value == "none") return v1::TOUCH_MODE_NONE;
  if (value == "page") return v1::TOUCH_MODE_PAGE;
  if (value == "fill") return v1::TOUCH_MODE_FILL;
  return FlagError("touch", text, "want none, page or fill");
}

absl::StatusOr<v1::Backing> FlagBacking(const std::string& text) {
  const std::string value = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (value == "malloc") return v1::BACKING_MALLOC;
  if (value == "mmap") return v1::BACKING_MMAP;
  if (value == "shmem") return v1::BACKING_SHMEM;
  return FlagError("backing", text, "want malloc, mmap or shmem");
}

// Touch, backing and block size: the flags every kind with a set of blocks shares. Unset
// ones stay unset (the proto's defaults), except the block size (see kDefaultBlockSize).
struct BlockFlags {
  v1::TouchMode touch = v1::TOUCH_MODE_UNSPECIFIED;
  v1::Backing backing = v1::BACKING_UNSPECIFIED;
  uint64_t block_size = kDefaultBlockSize;
};

absl::StatusOr<BlockFlags> ParseBlockFlags(const PlanFlags& flags) {
  BlockFlags out;
  if (Given(flags, "touch")) {
    MEMLOAD_ASSIGN_OR_RETURN(out.touch, FlagTouch(flags.touch));
  }
  if (Given(flags, "backing")) {
    MEMLOAD_ASSIGN_OR_RETURN(out.backing, FlagBacking(flags.backing));
  }
  if (Given(flags, "block_size")) {
    MEMLOAD_ASSIGN_OR_RETURN(out.block_size, FlagSize("block_size", flags.block_size));
    if (out.block_size == 0) {
      return FlagError("block_size", flags.block_size, "must be at least 1 byte");
    }
  }
  return out;
}

// --duration: "forever" or unset → nullopt (run until stopped); otherwise positive.
absl::StatusOr<std::optional<absl::Duration>> RunDuration(const PlanFlags& flags) {
  if (!Given(flags, "duration") || IsForever(flags.duration)) return std::nullopt;
  return FlagDuration("duration", flags.duration, /*positive=*/true);
}

absl::Status BuildRetained(const PlanFlags& flags, v1::RetainedPlan* plan) {
  MEMLOAD_ASSIGN_OR_RETURN(BlockFlags blocks, ParseBlockFlags(flags));
  plan->set_block_size(blocks.block_size);
  plan->set_touch(blocks.touch);
  plan->set_backing(blocks.backing);
  plan->set_huge_pages(flags.huge_pages);
  plan->set_mlock(flags.mlock);

  if (!Given(flags, "target")) {
    return absl::InvalidArgumentError(
        "--target is required for --kind=retained: a size (512MiB) or a percentage (80%, "
        "80%available, 80%cgroup)");
  }
  v1::Phase* phase = plan->add_phases();
  MEMLOAD_ASSIGN_OR_RETURN(*phase->mutable_target(), RetainedTarget(flags.target));

  if (Given(flags, "ramp")) {
    if (absl::EndsWith(absl::StripAsciiWhitespace(flags.ramp), "/s")) {
      MEMLOAD_ASSIGN_OR_RETURN(uint64_t rate, FlagRate("ramp", flags.ramp));
      phase->set_ramp_bytes_per_sec(rate);
    } else {
      MEMLOAD_ASSIGN_OR_RETURN(absl::Duration ramp,
                               FlagDuration("ramp", flags.ramp, /*positive=*/false));
      ToProtoDuration(ramp, phase->mutable_ramp_duration());
    }
  }

  const bool repeats = Given(flags, "repeat");
  if (repeats) {
    if (IsForever(flags.repeat)) {
      plan->set_repeat_forever(true);
    } else {
      MEMLOAD_ASSIGN_OR_RETURN(uint32_t cycles,
                               FlagInt<uint32_t>("repeat", flags.repeat, "N >= 1 or forever"));
      if (cycles == 0) return FlagError("repeat", flags.repeat, "want N >= 1 or forever");
      plan->set_repeat(cycles);
    }
  }

  if (!Given(flags, "hold")) {
    // Without --repeat the load stays until stop, Ctrl-C or the lease: what `start` means.
    phase->set_hold_forever(!repeats);
  } else if (IsForever(flags.hold)) {
    if (repeats) {
      return FlagError("hold", flags.hold,
                       "a hold that never ends leaves nothing for --repeat to repeat");
    }
    phase->set_hold_forever(true);
  } else {
    MEMLOAD_ASSIGN_OR_RETURN(absl::Duration hold,
                             FlagDuration("hold", flags.hold, /*positive=*/false));
    ToProtoDuration(hold, phase->mutable_hold());
  }

  if (repeats) {
    // The drop that turns one phase into a sawtooth: release everything, at once.
    plan->add_phases()->mutable_target()->set_bytes(0);
  }
  return absl::OkStatus();
}

absl::Status BuildUtilization(const PlanFlags& flags, v1::UtilizationPlan* plan) {
  MEMLOAD_ASSIGN_OR_RETURN(BlockFlags blocks, ParseBlockFlags(flags));
  if (blocks.touch == v1::TOUCH_MODE_NONE) {
    return FlagError("touch", flags.touch, kUntouchedUtilization);
  }
  plan->set_block_size(blocks.block_size);
  plan->set_touch(blocks.touch);
  plan->set_backing(blocks.backing);
  if (!Given(flags, "target")) {
    return absl::InvalidArgumentError(
        "--target is required for --kind=utilization: a percentage of memory in use (80%, "
        "80%node, 80%cgroup)");
  }
  MEMLOAD_RETURN_IF_ERROR(SetUtilizationTarget(flags.target, plan));
  MEMLOAD_ASSIGN_OR_RETURN(std::optional<absl::Duration> duration, RunDuration(flags));
  if (duration.has_value()) ToProtoDuration(*duration, plan->mutable_duration());
  return absl::OkStatus();
}

absl::Status BuildStreaming(const PlanFlags& flags, v1::StreamingPlan* plan) {
  MEMLOAD_ASSIGN_OR_RETURN(BlockFlags blocks, ParseBlockFlags(flags));
  plan->set_block_size(blocks.block_size);
  plan->set_touch(blocks.touch);
  plan->set_return_to_os(flags.return_to_os);
  if (Given(flags, "rate")) {
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t rate, FlagRate("rate", flags.rate));
    plan->set_rate_bytes_per_sec(rate);
  }
  if (Given(flags, "window")) {
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t window,
                             FlagInt<uint64_t>("window", flags.window, "a block count"));
    if (std::optional<std::string> problem = WindowProblem(window, blocks.block_size)) {
      return FlagError("window", flags.window, *problem);
    }
    plan->set_window(window);
  }
  if (Given(flags, "workers")) {
    MEMLOAD_ASSIGN_OR_RETURN(uint32_t workers,
                             FlagInt<uint32_t>("workers", flags.workers, "1..64"));
    std::optional<std::string> problem = WorkersProblem(workers);
    if (workers == 0) problem = absl::StrCat("must be 1..", kMaxStreamWorkers, ", got 0");
    if (problem) return FlagError("workers", flags.workers, *problem);
    plan->set_workers(workers);
  }
  if (Given(flags, "amount")) {
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t amount, FlagSize("amount", flags.amount));
    if (amount == 0) return FlagError("amount", flags.amount, "must be more than 0 bytes");
    if (std::optional<std::string> problem = AmountProblem(amount, blocks.block_size)) {
      return FlagError("amount", flags.amount, *problem);
    }
    plan->set_amount_bytes(amount);
  }
  MEMLOAD_ASSIGN_OR_RETURN(std::optional<absl::Duration> duration, RunDuration(flags));
  if (duration.has_value()) ToProtoDuration(*duration, plan->mutable_duration());
  return absl::OkStatus();
}

// --- Semantic checks shared by files and flags (the flags' own checks come first and
// quote the flag; these are the safety net and the only check for files).

// A proto Duration that is well formed and non-negative (positive if asked).
absl::Status CheckDuration(const google::protobuf::Duration& duration, absl::string_view field,
                           bool positive) {
  const int64_t seconds = duration.seconds();
  const int32_t nanos = duration.nanos();
  if (seconds < -kMaxDurationSeconds || seconds > kMaxDurationSeconds ||
      nanos <= -1000000000 || nanos >= 1000000000 || (seconds > 0 && nanos < 0) ||
      (seconds < 0 && nanos > 0)) {
    return FieldError(field, absl::StrCat("not a valid duration (seconds ", seconds,
                                          ", nanos ", nanos, ")"));
  }
  if (std::optional<std::string> problem =
          DurationProblem(FromProtoDuration(duration), positive)) {
    return FieldError(field, *problem);
  }
  return absl::OkStatus();
}

absl::Status CheckTouch(v1::TouchMode touch, absl::string_view field) {
  if (v1::TouchMode_IsValid(touch)) return absl::OkStatus();
  return FieldError(field, absl::StrCat("unknown value ", touch));
}

absl::Status CheckBacking(v1::Backing backing, absl::string_view field) {
  if (v1::Backing_IsValid(backing)) return absl::OkStatus();
  return FieldError(field, absl::StrCat("unknown value ", backing));
}

absl::Status CheckQuantity(const v1::Quantity& quantity, const std::string& field) {
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

absl::Status CheckRetained(const v1::RetainedPlan& plan) {
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "retained.touch"));
  MEMLOAD_RETURN_IF_ERROR(CheckBacking(plan.backing(), "retained.backing"));
  if (plan.phases_size() == 0) {
    return FieldError("retained.phases", "at least one phase is required");
  }
  for (int i = 0; i < plan.phases_size(); ++i) {
    const v1::Phase& phase = plan.phases(i);
    const std::string where = absl::StrCat("retained.phases[", i, "]");
    MEMLOAD_RETURN_IF_ERROR(CheckQuantity(phase.target(), absl::StrCat(where, ".target")));
    if (phase.has_ramp_duration()) {
      MEMLOAD_RETURN_IF_ERROR(CheckDuration(phase.ramp_duration(),
                                            absl::StrCat(where, ".ramp_duration"), false));
    }
    if (phase.ramp_bytes_per_sec() > 0 && phase.has_ramp_duration() &&
        FromProtoDuration(phase.ramp_duration()) > absl::ZeroDuration()) {
      return FieldError(where, kBothRamps);
    }
    if (phase.has_hold()) {
      MEMLOAD_RETURN_IF_ERROR(CheckDuration(phase.hold(), absl::StrCat(where, ".hold"), false));
      if (phase.hold_forever() && FromProtoDuration(phase.hold()) > absl::ZeroDuration()) {
        return FieldError(where, "give hold or hold_forever, not both");
      }
    }
  }
  if (plan.repeat_forever() && plan.repeat() > 0) {
    return FieldError("retained", "give repeat or repeat_forever, not both");
  }
  return absl::OkStatus();
}

absl::Status CheckUtilization(const v1::UtilizationPlan& plan) {
  if (std::optional<std::string> problem =
          PercentProblem(plan.target_percent(), /*allow_100=*/false)) {
    return FieldError("utilization.target_percent", *problem);
  }
  if (!v1::UtilizationPlan::Reference_IsValid(plan.reference())) {
    return FieldError("utilization.reference", absl::StrCat("unknown value ", plan.reference()));
  }
  if (plan.has_duration()) {
    MEMLOAD_RETURN_IF_ERROR(CheckDuration(plan.duration(), "utilization.duration", true));
  }
  if (plan.has_interval()) {
    MEMLOAD_RETURN_IF_ERROR(CheckDuration(plan.interval(), "utilization.interval", false));
    if (FromProtoDuration(plan.interval()) < absl::Milliseconds(10)) {
      return FieldError("utilization.interval",
                        absl::StrCat("must be at least 10ms, got ",
                                     absl::FormatDuration(FromProtoDuration(plan.interval()))));
    }
  }
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "utilization.touch"));
  if (plan.touch() == v1::TOUCH_MODE_NONE) {
    return FieldError("utilization.touch", kUntouchedUtilization);
  }
  return CheckBacking(plan.backing(), "utilization.backing");
}

absl::Status CheckStreaming(const v1::StreamingPlan& plan) {
  if (plan.block_size() == 0) return FieldError("streaming.block_size", "required (> 0)");
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "streaming.touch"));
  if (std::optional<std::string> problem = WorkersProblem(plan.workers())) {
    return FieldError("streaming.workers", *problem);
  }
  if (std::optional<std::string> problem = WindowProblem(plan.window(), plan.block_size())) {
    return FieldError("streaming.window", *problem);
  }
  if (std::optional<std::string> problem =
          AmountProblem(plan.amount_bytes(), plan.block_size())) {
    return FieldError("streaming.amount_bytes", *problem);
  }
  if (plan.has_duration()) {
    MEMLOAD_RETURN_IF_ERROR(CheckDuration(plan.duration(), "streaming.duration", false));
  }
  return absl::OkStatus();
}

absl::Status CheckPlan(const v1::PlanSpec& spec, bool require_plan_id) {
  if (require_plan_id || !spec.plan_id().empty()) {
    if (!ValidPlanId(spec.plan_id())) {
      return FieldError("plan_id", absl::StrCat(kPlanIdProblem, ", got \"",
                                                absl::CHexEscape(spec.plan_id()), "\""));
    }
  }
  if (spec.has_lease()) MEMLOAD_RETURN_IF_ERROR(CheckDuration(spec.lease(), "lease", true));
  if (spec.has_oom_score_adj()) {
    if (std::optional<std::string> problem = OomScoreAdjProblem(spec.oom_score_adj())) {
      return FieldError("oom_score_adj", *problem);
    }
  }
  switch (spec.kind_case()) {
    case v1::PlanSpec::kRetained:
      return CheckRetained(spec.retained());
    case v1::PlanSpec::kUtilization:
      return CheckUtilization(spec.utilization());
    case v1::PlanSpec::kStreaming:
      return CheckStreaming(spec.streaming());
    case v1::PlanSpec::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "the plan has no kind: give one of \"retained\", \"utilization\", \"streaming\"");
}

// --- Plan files.

// Makes protobuf's JSON parse errors point into the file. They come in three shapes:
//   syntax:  "<what>\n<up to 40 bytes around the spot>\n<spaces>^"
//   mapping: "(retained.block_size): invalid value \"1MiB\" for type TYPE_UINT64"
//   other:   "retaind: Cannot find field." / ": Root element must be a message."
std::string DescribeJsonError(absl::string_view json, absl::string_view file_name,
                              absl::string_view message) {
  const size_t first_newline = message.find('\n');
  const size_t last_newline = message.rfind('\n');
  if (first_newline != absl::string_view::npos && first_newline != last_newline &&
      absl::EndsWith(message, "^")) {
    const absl::string_view what = message.substr(0, first_newline);
    const absl::string_view context =
        message.substr(first_newline + 1, last_newline - first_newline - 1);
    const size_t caret = message.size() - last_newline - 2;
    // The context is a slice of the input: find it to turn the caret into line:column.
    // Empty context means the parser ran off the end of the input.
    std::optional<size_t> offset;
    if (context.empty()) {
      offset = json.size();
    } else {
      const size_t at = json.find(context);
      if (at != absl::string_view::npos && json.find(context, at + 1) == absl::string_view::npos) {
        offset = at + caret;
      }
    }
    if (offset.has_value()) {
      const absl::string_view before = json.substr(0, *offset);
      const size_t line_start = before.rfind('\n');
      const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
      const size_t column =
          line_start == absl::string_view::npos ? *offset + 1 : *offset - line_start;
      return absl::StrCat(file_name, ":", line, ":", column, ": ", what);
    }
    return absl::StrCat(file_name, ": ", what, " near \"", absl::CHexEscape(context), "\"");
  }

  std::string text(message);
  if (absl::StartsWith(text, "(")) {
    const size_t close = text.find("): ");
    if (close != std::string::npos) {
      text = absl::StrCat(text.substr(1, close - 1), ": ", text.substr(close + 3));
    }
  }
  absl::string_view trimmed = text;
  absl::ConsumePrefix(&trimmed, ": ");
  std::string hint;
  if (absl::StrContains(trimmed, "TYPE_UINT64") || absl::StrContains(trimmed, "TYPE_INT64") ||
      absl::StrContains(trimmed, "TYPE_UINT32")) {
    hint = " (plan files take sizes as integer byte counts, e.g. \"536870912\", and a "
           "quantity as {\"bytes\": \"536870912\"} or {\"percentOfTotal\": 80})";
  } else if (absl::StrContains(trimmed, "google.protobuf.Duration")) {
    hint = " (durations are strings such as \"30s\" or \"0.5s\")";
  }
  return absl::StrCat(file_name, ": ", trimmed, hint);
}

std::string ErrnoText(int error) { return std::strerror(error); }

}  // namespace

const std::vector<absl::string_view>& PlanFlagNames() {
  static const auto* const kNames = [] {
    auto* names = new std::vector<absl::string_view>;
    for (const FlagDef& def : kFlagDefs) names->push_back(def.name);
    return names;
  }();
  return *kNames;
}

std::string MakePlanId(absl::Time now, uint32_t random) {
  return absl::StrCat("memload-", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()),
                      "-", absl::StrFormat("%04x", random & 0xffff));
}

absl::Status ValidatePlanSpec(const v1::PlanSpec& spec) {
  return CheckPlan(spec, /*require_plan_id=*/true);
}

absl::StatusOr<v1::PlanSpec> ParsePlanFile(absl::string_view json_text,
                                           absl::string_view file_name) {
  v1::PlanSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;  // A misspelt field must not silently drop a setting.
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(std::string(json_text), &spec, options);
  if (!parsed.ok()) {
    const auto message = parsed.message();
    return absl::InvalidArgumentError(DescribeJsonError(
        json_text, file_name, absl::string_view(message.data(), message.size())));
  }
  const absl::Status valid = CheckPlan(spec, /*require_plan_id=*/false);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": ", valid.message()));
  }
  return spec;
}

absl::StatusOr<v1::PlanSpec> ReadPlanFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const std::string text = absl::StrCat("plan file \"", path, "\": ", ErrnoText(error));
    if (error == ENOENT) return absl::NotFoundError(text);
    if (error == EACCES || error == EPERM) return absl::PermissionDeniedError(text);
    return absl::FailedPreconditionError(text);
  }
  absl::Cleanup close_fd = [fd] { close(fd); };
  struct stat info;
  if (fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("plan file \"", path, "\" is a directory"));
  }
  std::string text;
  char buffer[16384];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::FailedPreconditionError(
          absl::StrCat("plan file \"", path, "\": ", ErrnoText(errno)));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    // Read until EOF rather than trusting st_size: pipes and /proc files report 0.
    if (text.size() > kMaxPlanFileBytes) {
      return absl::FailedPreconditionError(absl::StrCat(
          "plan file \"", path, "\" is larger than ", FormatSize(kMaxPlanFileBytes)));
    }
  }
  return ParsePlanFile(text, path);
}

namespace {

// The plan-level flags over `spec` (built from flags or read from a file), then the checks.
absl::StatusOr<v1::PlanSpec> ApplyPlanLevelFlags(v1::PlanSpec spec, const PlanFlags& flags,
                                                 absl::Time now, uint32_t random) {
  if (Given(flags, "plan_id")) {
    if (!ValidPlanId(flags.plan_id)) return FlagError("plan_id", flags.plan_id, kPlanIdProblem);
    spec.set_plan_id(flags.plan_id);
  } else if (spec.plan_id().empty()) {
    spec.set_plan_id(MakePlanId(now, random));
  }
  if (Given(flags, "lease")) {
    MEMLOAD_ASSIGN_OR_RETURN(absl::Duration lease,
                             FlagDuration("lease", flags.lease, /*positive=*/true));
    ToProtoDuration(lease, spec.mutable_lease());
  }
  if (Given(flags, "labels")) {
    absl::StatusOr<std::map<std::string, std::string>> labels = ParseLabels(flags.labels);
    if (!labels.ok()) return FlagError("labels", flags.labels, labels.status().message());
    for (const auto& [key, value] : *labels) (*spec.mutable_labels())[key] = value;
  }
  if (Given(flags, "expect_oom")) spec.set_expect_oom(flags.expect_oom);
  if (Given(flags, "oom_score_adj")) {
    MEMLOAD_ASSIGN_OR_RETURN(
        int64_t adj, FlagInt<int64_t>("oom_score_adj", flags.oom_score_adj, "-1000..1000"));
    if (std::optional<std::string> problem = OomScoreAdjProblem(adj)) {
      return FlagError("oom_score_adj", flags.oom_score_adj, *problem);
    }
    spec.set_oom_score_adj(static_cast<int32_t>(adj));
  }
  MEMLOAD_RETURN_IF_ERROR(ValidatePlanSpec(spec));
  return spec;
}

// Plan flags other than the plan-level ones conflict with a plan file.
absl::Status CheckCombinableWithPlanFile(const PlanFlags& flags) {
  for (const FlagDef& def : kFlagDefs) {
    if (def.overrides_plan_file || !Given(flags, def)) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "--", def.name,
        " cannot be combined with --plan: the file defines the plan (only --plan_id, "
        "--lease, --labels, --expect_oom and --oom_score_adj override it)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::PlanSpec> ApplyPlanOverrides(v1::PlanSpec spec, const PlanFlags& flags,
                                                absl::Time now, uint32_t random) {
  MEMLOAD_RETURN_IF_ERROR(CheckCombinableWithPlanFile(flags));
  return ApplyPlanLevelFlags(std::move(spec), flags, now, random);
}

absl::StatusOr<v1::PlanSpec> BuildPlanFromFlags(const PlanFlags& flags, absl::Time now,
                                                uint32_t random) {
  if (Given(flags, "plan")) {
    if (flags.plan.empty()) return FlagError("plan", flags.plan, "want a file name");
    MEMLOAD_RETURN_IF_ERROR(CheckCombinableWithPlanFile(flags));  // Before any I/O.
    MEMLOAD_ASSIGN_OR_RETURN(v1::PlanSpec spec, ReadPlanFile(flags.plan));
    return ApplyPlanOverrides(std::move(spec), flags, now, random);
  }

  if (!Given(flags, "kind")) {
    return absl::InvalidArgumentError(
        "--kind is required (retained, streaming or utilization), or --plan=FILE");
  }
  const std::string kind_name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(flags.kind));
  int kind = 0;
  if (kind_name == "retained") {
    kind = kRetainedBit;
  } else if (kind_name == "utilization") {
    kind = kUtilizationBit;
  } else if (kind_name == "streaming") {
    kind = kStreamingBit;
  } else {
    return FlagError("kind", flags.kind, "want retained, streaming or utilization");
  }
  for (const FlagDef& def : kFlagDefs) {
    if ((def.kinds & kind) != 0 || !Given(flags, def)) continue;
    return absl::InvalidArgumentError(absl::StrCat("--", def.name, " does not apply to --kind=",
                                                   kind_name, " (only to ",
                                                   KindsText(def.kinds), " plans)"));
  }

  v1::PlanSpec spec;
  switch (kind) {
    case kRetainedBit:
      MEMLOAD_RETURN_IF_ERROR(BuildRetained(flags, spec.mutable_retained()));
      break;
    case kUtilizationBit:
      MEMLOAD_RETURN_IF_ERROR(BuildUtilization(flags, spec.mutable_utilization()));
      break;
    default:
      MEMLOAD_RETURN_IF_ERROR(BuildStreaming(flags, spec.mutable_streaming()));
      break;
  }
  return ApplyPlanLevelFlags(std::move(spec), flags, now, random);
}

absl::StatusOr<v1::PlanSpec> BuildPlanFromFlags(const PlanFlags& flags) {
  absl::BitGen random;
  return BuildPlanFromFlags(flags, absl::Now(), absl::Uniform<uint32_t>(random));
}

absl::StatusOr<v1::Quantity> ParseTargetFlag(const std::string& text) {
  return RetainedTarget(text);
}

}  // namespace controller
}  // namespace memload
