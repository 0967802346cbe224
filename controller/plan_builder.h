// Plan building for memloadctl: turns command-line flags or a JSON plan file into a
// v1::PlanSpec, and rejects anything malformed before a single RPC is sent (the command
// then exits 2). Pure functions: no networking, no global state.
//
//   PlanFlags flags;
//   flags.kind = "retained";
//   flags.target = "80%";     // 80% of the node's memory (Quantity.percent_of_total)
//   flags.ramp = "64MiB/s";
//   flags.hold = "10m";
//   absl::StatusOr<v1::PlanSpec> spec = BuildPlanFromFlags(flags);
//
//   flags = PlanFlags();
//   flags.plan = "drill.json";  // the whole plan from a file...
//   flags.lease = "2m";         // ...with a few plan-level flags overriding it
//   spec = BuildPlanFromFlags(flags);
//
// Flags (names as the ABSL_FLAGs of memloadctl spell them; see PlanFlags for each syntax):
//   every kind    --kind --plan_id --lease --labels --expect_oom --oom_score_adj
//   retained      --target (required) --touch --backing --block_size --ramp --hold --repeat
//                 --huge_pages --mlock
//   utilization   --target (required) --touch --backing --block_size --duration
//   streaming     --block_size --touch --rate --window --workers --return_to_os --amount
//                 --duration
// A flag that does not apply to the kind is an error, as is a flag that cannot be combined
// with --plan. Every error is InvalidArgument and starts with the flag and its text, e.g.
//   --target="12Q": invalid size "12Q": unknown unit "Q"
// or, for a plan file, with the file and the proto field path, e.g.
//   drill.json: retained.phases[1]: give ramp_bytes_per_sec or ramp_duration, not both
// The two share the description of the problem where they check the same thing.
//
// Plan files hold one PlanSpec in protobuf's JSON mapping (lowerCamelCase or proto field
// names; 64-bit integers as strings; durations as "30s"; enums by name):
//   {"planId": "drill", "lease": "60s",
//    "retained": {"blockSize": "1048576", "touch": "TOUCH_MODE_PAGE",
//                 "phases": [{"target": {"bytes": "536870912"}, "rampDuration": "10s",
//                             "hold": "60s"},
//                            {"target": {"percentOfTotal": 80}, "rampBytesPerSec": "67108864",
//                             "holdForever": true}]}}
// The mapping has no room for human sizes: a Quantity is written {"bytes": "536870912"},
// {"percentOfTotal": 80}, {"percentOfAvailable": 50} or {"percentOfCgroupLimit": 90}.
//
// Thread-safety: all functions are thread-safe.
#ifndef MEMLOAD_CONTROLLER_PLAN_BUILDER_H_
#define MEMLOAD_CONTROLLER_PLAN_BUILDER_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

// The plan flags as memloadctl's ABSL_FLAGs hold them: text, parsed here so that every
// error can quote what the user typed. Empty text / false = not given, unless the flag's
// name is in `explicitly_set` (then `--window=` is "" given on purpose, and an error).
struct PlanFlags {
  std::string plan;  // --plan=FILE: the whole plan from a JSON file (see above).

  std::string kind;  // retained | streaming | utilization; required without --plan.
  // retained:    SIZE ("512MiB", "1.5GiB", "4096") → Quantity.bytes;
  //              N% or N%total → percent_of_total (of the node's memory as the agent
  //              sees it: its cgroup limit when lower); N%available → percent_of_available
  //              (of MemAvailable at plan start); N%cgroup → percent_of_cgroup_limit.
  //              N in (0, 100].
  // utilization: N% → target_percent with the agent's default reference; N%node,
  //              N%cgroup → that reference. N in (0, 100).
  std::string target;
  std::string touch;          // none | page | fill. Unset: page. utilization refuses none.
  std::string backing;        // malloc | mmap | shmem. Unset: mmap.
  std::string block_size;     // SIZE > 0. Unset: 1 MiB (for streaming too).
  std::string ramp;           // DURATION ("30s": reach the target in that time) or
                              // SIZE/s ("64MiB/s"). Unset: a step, as fast as possible.
  std::string hold;           // DURATION or "forever". Unset: forever (without --repeat);
                              // with --repeat, 0 (a sawtooth: ramp up, drop, again).
  std::string repeat;         // N >= 1 or "forever": after the hold, drop to 0 and start
                              // again, N cycles in all. Needs a finite --hold.
  std::string rate;           // streaming: SIZE or SIZE/s allocated per second; unset = flat out.
  std::string window;         // streaming: blocks kept alive at once (a count); unset = 0.
  std::string workers;        // streaming: threads, 1..64; unset = 1.
  bool return_to_os = false;  // streaming: mmap/munmap every block.
  std::string amount;         // streaming: SIZE allocated in total, then stop; a multiple of
                              // the block size.
  std::string duration;       // streaming, utilization: DURATION > 0 or "forever" (= unset:
                              // until stopped or the lease ends).
  std::string lease;          // DURATION in [1s, 24h] (plan_rules::LeaseProblem). Unset: the
                              // agent's --default_lease.
  std::string plan_id;        // 1-128 of [A-Za-z0-9._-]. Unset: MakePlanId(now, random).
  std::string labels;         // k=v,k2=v2 (core/cli/flag_values.h SplitLabels), each label
                              // and their number under the plan rules the agent applies
                              // (plan_rules::CheckPlanLabel: any bytes but ',', key 1-128,
                              // value up to 256). With --plan: merged into the file's
                              // labels, the flag winning on a key.
  bool expect_oom = false;
  std::string oom_score_adj;  // -1000..1000. Unset: the agent's default (1000).
  bool huge_pages = false;    // retained only.
  bool mlock = false;         // retained only.

  // Names (as in PlanFlagNames()) of flags the user gave, whatever their value.
  std::set<std::string> explicitly_set;
};

// Which plan kinds a flag applies to (bits).
enum PlanKindBits : int {
  kRetainedKind = 1,
  kUtilizationKind = 2,
  kStreamingKind = 4,
  kAnyKind = kRetainedKind | kUtilizationKind | kStreamingKind,
};

// One plan flag. PlanFlagTable() is the only list of them: memloadctl's parser, help and
// the checks here all read it.
struct PlanFlagInfo {
  absl::string_view name;          // As typed after "--", with underscores: "block_size".
  absl::string_view value_name;    // "SIZE" in --block_size=SIZE; empty for a bool.
  absl::string_view default_text;  // For help: what an unset flag means ("1MiB"); may be "".
  absl::string_view help;          // One line.
  std::string PlanFlags::*text;    // The field the value fills: exactly one of text and
  bool PlanFlags::*toggle;         // toggle (a bool flag) is set.
  int kinds;                       // PlanKindBits it applies to.
  bool overrides_plan_file;        // May be given with --plan.
};

// Every plan flag, in help order.
const std::vector<PlanFlagInfo>& PlanFlagTable();
// The entry named `name` ("block_size"), or nullptr.
const PlanFlagInfo* FindPlanFlag(absl::string_view name);
// Sets the flag `name` to `value` (a bool takes true/false/1/0/yes/no) and marks it
// explicitly set. InvalidArgument for an unknown name or a bad bool.
absl::Status SetPlanFlag(PlanFlags& flags, absl::string_view name, absl::string_view value);

// Every flag name PlanFlagTable() holds ("plan", "kind", "target", ..., "mlock"), so that a
// main can fill `explicitly_set` by asking which of them were on the command line.
const std::vector<absl::string_view>& PlanFlagNames();

// "memload-<yyyymmdd-hhmmss>-<4 hex digits>" of `now` in UTC and the low 16 bits of
// `random`, e.g. "memload-20261103-142501-a3f9".
std::string MakePlanId(absl::Time now, uint32_t random);

// The PlanSpec the flags describe: from --plan (read, parsed, validated, then the
// plan-level flags --plan_id --lease --labels --expect_oom --oom_score_adj applied over
// it), or from the other flags. A missing plan_id becomes MakePlanId(now, random).
// Errors: InvalidArgument naming the flag or field (see above); ReadPlanFile's codes for
// an unreadable --plan.
absl::StatusOr<v1::PlanSpec> BuildPlanFromFlags(const PlanFlags& flags, absl::Time now,
                                                uint32_t random);
// The same with clock->Now() (memloadctl: Clock::Real()) and a random draw.
absl::StatusOr<v1::PlanSpec> BuildPlanFromFlags(const PlanFlags& flags, Clock* clock);

// Parses and validates a PlanSpec in JSON (see above). The plan_id may be empty (the
// caller fills it); everything else must pass ValidatePlanSpec. Errors are InvalidArgument
// starting with `file_name`: syntax errors give line and column ("drill.json:3:14: ..."),
// mapping errors the field path ("drill.json: retained.block_size: invalid value ...").
// A key given twice in one object — the same field under one spelling or its two
// ("planId" and "plan_id"), a map key — is an error too (protobuf would keep the last):
// "drill.json:1:18: key \"plan_id\" given twice in one object (first as \"planId\" at 1:2)".
absl::StatusOr<v1::PlanSpec> ParsePlanFile(absl::string_view json_text,
                                           absl::string_view file_name);

// Reads `path` (at most 1 MiB) and parses it with ParsePlanFile. NotFound when the file
// does not exist, PermissionDenied when it cannot be read, FailedPrecondition when it is
// a directory or too large; messages name the path.
absl::StatusOr<v1::PlanSpec> ReadPlanFile(const std::string& path);

// Applies the plan-level flags in `flags` (--plan_id, --lease, --labels, --expect_oom,
// --oom_score_adj) over `spec`; fills an empty plan_id with MakePlanId(now, random).
// InvalidArgument for a bad flag, or for any other plan flag given (the file defines the
// plan; edit it instead).
absl::StatusOr<v1::PlanSpec> ApplyPlanOverrides(v1::PlanSpec spec, const PlanFlags& flags,
                                                absl::Time now, uint32_t random);

// proto/plan_rules.h's ValidatePlanSpec (the agent runs the same): what can be checked
// without the node: plan_id, lease, oom_score_adj, a kind set,
// retained phases present with targets, percentages in range, durations non-negative, at
// most one ramp per phase, streaming block size, workers and amount, utilization target
// and touch. InvalidArgument naming the field path ("retained.phases[1].target: ...").
// Then plan_rules::CheckRetainedCost: a retained target in bytes whose blocks no node may
// hold ("retained: 104857600 blocks of 1 B is more than the 67108864 blocks a plan may
// hold; use a block size of at least 2 KiB"), as the agent says it.
absl::Status ValidatePlanSpec(const v1::PlanSpec& spec);

// `memloadctl resize --target=...`: the retained --target syntax (SIZE, N%, N%available,
// N%cgroup). For a utilization plan the agent reads the result as the node's used bytes.
absl::StatusOr<v1::Quantity> ParseTargetFlag(const std::string& text);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_PLAN_BUILDER_H_
