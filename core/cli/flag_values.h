// Parsers for values that memload's command-line flags share: label lists and
// "bytes or percent" quantities. Thread-safe free functions.
//
//   SplitLabels("note=a b,x=1=2")    → {{"note","a b"},{"x","1=2"}}
//   ParseLabels("zone=a,tier=gold")  → {{"tier","gold"},{"zone","a"}}
//   ParseSizeOrPercent("80%")        → {percent = 80}
//   ParseSizeOrPercent("512MiB")     → {bytes = 536870912}
#ifndef MEMLOAD_CORE_CLI_FLAG_VALUES_H_
#define MEMLOAD_CORE_CLI_FLAG_VALUES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {

// The syntax of every k=v list flag: "k=v,k2=v2" (empty = none), white space around each
// entry dropped, a value running to the next ',' (it may hold '='). Pairs in the order given.
// An entry without '=' and a key given twice are InvalidArgument naming the entry; what a
// key or value may hold is the caller's rule: ParseLabels' below for a node's labels,
// proto/plan_rules.h's (CheckPlanLabel) for a plan's (memloadctl's --labels).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SplitLabels(
    absl::string_view text);

// A node's labels (memload-agent --labels, --labels-file), which memloadctl's --selector
// matches: SplitLabels, and keys 1-63 of [A-Za-z0-9._/-], values up to 63 of [A-Za-z0-9._-]
// (Kubernetes label syntax, loosely; --selector takes no other characters). Bad characters
// are InvalidArgument naming the entry.
absl::StatusOr<std::map<std::string, std::string>> ParseLabels(absl::string_view text);

// Lines of "k=v" (blank lines and '#' comments skipped), e.g. a Kubernetes Node's labels
// written by an init container. Lines ParseLabels would refuse (Kubernetes allows longer
// keys) are left out and named in `skipped`, so one odd label cannot stop an agent.
std::map<std::string, std::string> ParseLabelLines(absl::string_view contents,
                                                   std::vector<std::string>* skipped);

struct SizeOrPercent {
  std::optional<uint64_t> bytes;  // Exactly one of the two is set.
  std::optional<double> percent;  // (0, 100].

  // bytes, or percent of `whole` (rounded down).
  absl::StatusOr<uint64_t> Resolve(uint64_t whole) const;
};

// The number of a percentage, "80" of "80%" (the caller splits off the '%' and any
// suffix such as "available"): a finite decimal, white space around it allowed; nullopt
// when it is not one. The one percent parser of memload's flags: the range is the
// caller's rule ((0, 100] here, plan_rules::PercentProblem for plan targets, (0, 1000] for
// N%request).
std::optional<double> ParsePercentNumber(absl::string_view number);

// "80%" or anything ParseSize accepts. InvalidArgument naming the text.
absl::StatusOr<SizeOrPercent> ParseSizeOrPercent(absl::string_view text);

// memload's binaries accept flags spelled with dashes or underscores ("--plan-id" and
// "--plan_id"); absl's parser knows only the underscore form. Returns argv with every
// "--flag-name[=value]" before a bare "--" rewritten to "--flag_name[=value]". Values are
// left alone.
std::vector<std::string> NormalizeFlagNames(int argc, char** argv);

}  // namespace memload

#endif  // MEMLOAD_CORE_CLI_FLAG_VALUES_H_
