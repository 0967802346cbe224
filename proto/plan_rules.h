// The rules a PlanSpec must follow, in one place: what the agent accepts and what
// memloadctl checks before it sends anything. The agent is the authority (PlanManager runs
// ValidatePlanSpec on every StartPlan, plan_convert runs the per-kind checks before
// converting); memloadctl links the same library to fail early with the same message.
// A rule changed here changes both.
//
//   MEMLOAD_RETURN_IF_ERROR(plan_rules::ValidatePlanSpec(spec));
//   // e.g. InvalidArgument "retained.phases[1]: give ramp_bytes_per_sec or ramp_duration,
//   //      not both", "plan_id: must be 1-128 characters of [A-Za-z0-9._-], got \"a b\""
//
// Two layers:
// - *Problem(value) functions describe what is wrong with one value, without naming where
//   it came from ("must be 1..64, got 65"); nullopt when it is fine. memloadctl quotes the
//   flag in front ("--workers=\"65\": must be 1..64, got 65"), the checks below the proto
//   field path ("streaming.workers: must be 1..64, got 65").
// - Check*/Validate* functions check protos and return InvalidArgument naming the field.
// Rules that need the node (resolving percentages, --max-memory, --reserve, --max-lease)
// are the agent's, not here.
//
// Thread-safety: stateless free functions and constants; all thread-safe.
#ifndef MEMLOAD_PROTO_PLAN_RULES_H_
#define MEMLOAD_PROTO_PLAN_RULES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/block_allocator.h"
#include "core/block_cost.h"
#include "google/protobuf/duration.pb.h"
#include "proto/memload.pb.h"

namespace memload {
namespace plan_rules {

// plan_id: 1-kMaxPlanIdLength characters of [A-Za-z0-9._-].
inline constexpr size_t kMaxPlanIdLength = 128;
// Streaming worker threads per plan: 1..kMaxStreamWorkers (0 in a proto means 1).
inline constexpr uint32_t kMaxStreamWorkers = 64;
// google.protobuf.Duration's documented range: ±10,000 years.
inline constexpr int64_t kMaxDurationSeconds = 315576000000;
// The longest lease a plan may have (an unrenewed plan must end within a day): the agent's
// default --max-lease-like bound (PlanManagerOptions::max_lease) and memloadctl's early check.
inline constexpr absl::Duration kMaxLease = absl::Hours(24);
// The shortest lease a plan may have, in a StartPlan, a RenewLeases, memloadctl's --lease and
// the agent's --default-lease alike. A lease is how long a plan outlives the last renewal of
// a client that went away. A client that keeps one alive (memloadctl run: a RenewLeases call
// every lease/3 and at each refresh, controller/commands.h RenewalPeriod) needs it to outlast
// a renewal period plus the renewal's round trip, and the agent looks at leases only on its
// tick (100 ms), so a plan may outlive its lease by up to a tick. A 1 ns lease was accepted
// (attack N11): the plan was started, reported started and gone before anyone could renew
// it. 1 s keeps ten ticks and leaves `run` (renewing every 333 ms then) room for a slow call;
// on a slow network give a lease of several --timeout's.
inline constexpr absl::Duration kMinLease = absl::Seconds(1);
// The kernel's oom_score_adj range.
inline constexpr int64_t kMinOomScoreAdj = -1000;
inline constexpr int64_t kMaxOomScoreAdj = 1000;
// A worker's oom_score_adj when the plan sets none: the OOM killer takes the load first.
inline constexpr int32_t kDefaultOomScoreAdj = 1000;
// The largest block a plan may ask for: x86-64's user address space with 4-level page
// tables. A larger block cannot be mapped on any machine, so it is a wrong value
// (INVALID_ARGUMENT naming block_size) rather than a shortage of memory; without the bound
// 2^64-1 failed deep inside the cost arithmetic ("size overflow ... + 16"), named as
// another field.
inline constexpr uint64_t kMaxBlockSize = uint64_t{1} << 47;
// Block size used when a plan gives 0 (retained and utilization plans; memloadctl fills it
// in for streaming plans, which require one).
inline constexpr uint64_t kDefaultBlockSize = uint64_t{1} << 20;
// The smallest percentage a plan may ask for: below it a target resolves to (almost)
// nothing, e.g. --target=1e-300% started a 0-byte plan (issue 12.8).
inline constexpr double kMinPercent = 0.001;
// A utilization plan's measure-and-correct period: at least this, 200 ms when unset.
inline constexpr absl::Duration kMinUtilizationInterval = absl::Milliseconds(10);
inline constexpr absl::Duration kDefaultUtilizationInterval = absl::Milliseconds(200);

// Bounds on everything a client can make the agent store with a plan, so that no client can
// grow the agent's memory, or its GetUsage/ListPlans/WatchUsage answers past gRPC's 4 MiB
// message limit (README "Safety and limits"; the agent's own limits on how many plans it
// keeps are in agent/plan_manager.h):
//   labels             at most kMaxLabels; keys 1..kMaxLabelKeyBytes, values up to
//                      kMaxLabelValueBytes bytes
//   retained.phases    at most kMaxPhases
//   the whole spec     at most kMaxSpecBytes serialized
inline constexpr size_t kMaxLabels = 32;
inline constexpr size_t kMaxLabelKeyBytes = 128;
inline constexpr size_t kMaxLabelValueBytes = 256;
inline constexpr int kMaxPhases = 64;
inline constexpr size_t kMaxSpecBytes = 16 * 1024;

// --- What is wrong with one value (nullopt: nothing). No field or flag name in the text.

// "must be 1-128 characters of [A-Za-z0-9._-]" (without the value: callers quote it).
std::optional<std::string> PlanIdProblem(absl::string_view id);
// "must be in [-1000, 1000], got 5000".
std::optional<std::string> OomScoreAdjProblem(int64_t value);
// "percent must be in [0.001, 100], got 120" ([0.001, 100) unless allow_100). NaN fails.
std::optional<std::string> PercentProblem(double percent, bool allow_100);
// "must not be negative, got -5s", "must be positive, got 0s" (when `positive`), "must be
// at most 10000 years".
std::optional<std::string> DurationProblem(absl::Duration duration, bool positive);
// A plan's lease outside [kMinLease, kMaxLease]: "must be at least 1s, got 1ns", "must be at
// most 24h, got 25h (memloadctl run renews a shorter one)". Not positive: DurationProblem's.
std::optional<std::string> LeaseProblem(absl::Duration lease);
// "must be 1..64, got 65". 0 is fine here (a proto's "unset"): memloadctl refuses
// --workers=0 itself.
std::optional<std::string> WorkersProblem(uint64_t workers);
// A block larger than kMaxBlockSize: "must be at most 128 TiB (more than any machine can
// map), got 18446744073709551615 bytes (15.99 EiB)". 0 is fine here (a proto's "unset"; streaming
// plans require one).
std::optional<std::string> BlockSizeProblem(uint64_t block_size);
// window blocks of block_size bytes must fit in the address space.
std::optional<std::string> WindowProblem(uint64_t window, uint64_t block_size);
// amount_bytes must be a multiple of block_size.
std::optional<std::string> AmountProblem(uint64_t amount, uint64_t block_size);
// A retained target that is not 0 must be at least one block: targets are rounded down to
// whole blocks, and below one the plan would report success while holding nothing.
// "100 MiB is less than one block (1 GiB): the plan would hold nothing; use a block size
// of at most 100 MiB".
std::optional<std::string> BelowOneBlockProblem(uint64_t target_bytes, uint64_t block_size);

// Problems with no value to quote.
inline constexpr absl::string_view kUntouchedUtilization =
    "utilization plans need page or fill: untouched memory never shows as use, so the plan "
    "would grow without bound";
inline constexpr absl::string_view kBothRamps =
    "give ramp_bytes_per_sec or ramp_duration, not both";
inline constexpr absl::string_view kNothingToHold =
    "every phase's target is 0: the plan would hold nothing";
inline constexpr absl::string_view kHoldAndHoldForever = "give hold or hold_forever, not both";
inline constexpr absl::string_view kRepeatAndRepeatForever =
    "give repeat or repeat_forever, not both";

// --- Checks of protos. Errors are InvalidArgument "FIELD: PROBLEM".

// The plan id a ResizePlan or StopPlan names: InvalidArgument "plan_id: must be 1-128
// characters of [A-Za-z0-9._-], got \"...\"" (the value quoted and cut: core/base/quoted.h),
// the words ValidatePlanSpec uses for a StartPlan's.
absl::Status CheckPlanId(absl::string_view id);

// A RenewLeases request: at most kMaxRenewPlanIds ids (a controller renews one plan per
// call; the agent runs at most 128), each a valid plan id — so no request makes the agent
// hold its lock over, or answer with, more than that — and a lease, when given, at least
// kMinLease (a longer one than the agent's maximum is cut to it).
inline constexpr size_t kMaxRenewPlanIds = 1024;
absl::Status CheckRenewLeases(const v1::RenewLeasesRequest& request);

// InvalidArgument "`field`: `problem`".
absl::Status FieldError(absl::string_view field, absl::string_view problem);

// A well-formed proto Duration (in range, nanos of the seconds' sign), not negative, and
// positive when asked → absl::Duration.
absl::StatusOr<absl::Duration> CheckDuration(const google::protobuf::Duration& duration,
                                             absl::string_view field, bool positive);
// Values this build knows (UNSPECIFIED is fine: it means the default).
absl::Status CheckTouch(v1::TouchMode touch, absl::string_view field);
absl::Status CheckBacking(v1::Backing backing, absl::string_view field);
// A quantity that is set, with a percentage in [kMinPercent, 100].
absl::Status CheckQuantity(const v1::Quantity& quantity, absl::string_view field);

// Per kind: everything that can be checked without the node. Field paths start with the
// kind ("retained.phases[0].hold: ...").
absl::Status CheckRetainedPlan(const v1::RetainedPlan& plan);
absl::Status CheckUtilizationPlan(const v1::UtilizationPlan& plan);
absl::Status CheckStreamingPlan(const v1::StreamingPlan& plan);

// --- A retained set's real cost (core/block_cost: the rule the agent admits plans by).

// OK, or InvalidArgument "retained: PROBLEM" when `payload_bytes` of `block_size` blocks
// with `backing` cannot be held by any node: more than kMaxBlocks blocks (the message names
// a block size that would do), or a cost past 2^64 bytes. The agent checks it on every
// retained plan after its limits (so a payload the limits refuse anyway is "too much
// memory" first); memloadctl checks it early through CheckRetainedCost.
absl::Status RetainedCostProblem(Backing backing, uint64_t block_size, uint64_t payload_bytes,
                                 uint64_t page_size = kDefaultPageSize);
// RetainedCostProblem for every phase target of a retained plan given in bytes (percent
// targets need the node: the agent's), with the plan's block size and backing or their
// defaults. OK for other kinds.
absl::Status CheckRetainedCost(const v1::PlanSpec& spec);

// InvalidArgument naming the field and the limit when `spec` stores more than the bounds
// above (labels, phases, serialized size).
absl::Status CheckPlanBounds(const v1::PlanSpec& spec);
// The label bounds alone, for memloadctl's --labels (it quotes the flag in front):
// InvalidArgument "labels: a key must be 1-128 bytes, got 0 (\"\")", "labels[\"k\"]: a value
// may be at most 256 bytes, got 300", "labels: at most 32 labels, got 33" — the words
// CheckPlanBounds (so the agent) uses. Any bytes are fine in a key or value.
absl::Status CheckPlanLabel(absl::string_view key, absl::string_view value);
absl::Status CheckPlanLabelCount(size_t count);

// Whether ValidatePlanSpec insists on a plan_id (a plan file may leave it to memloadctl).
enum class PlanIdRule { kRequired, kOptional };

// The whole plan: plan_id, lease (kMinLease..kMaxLease), oom_score_adj, a kind, that kind's checks,
// then CheckPlanBounds.
absl::Status ValidatePlanSpec(const v1::PlanSpec& spec, PlanIdRule plan_id = PlanIdRule::kRequired);

}  // namespace plan_rules
}  // namespace memload

#endif  // MEMLOAD_PROTO_PLAN_RULES_H_
