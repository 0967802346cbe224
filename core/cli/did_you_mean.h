#ifndef MEMLOAD_CORE_CLI_DID_YOU_MEAN_H_
#define MEMLOAD_CORE_CLI_DID_YOU_MEAN_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace memload {

// The candidate closest to `typed` when it is close enough to be a likely typo (edit
// distance with transpositions of at most 2, and less than half of the word); nullopt
// otherwise. Ties go to the first candidate. The one rule behind every "did you mean" of
// memload-agent and memloadctl (commands and flags).
std::optional<std::string> DidYouMean(absl::string_view typed,
                                      const std::vector<absl::string_view>& candidates);

}  // namespace memload

#endif  // MEMLOAD_CORE_CLI_DID_YOU_MEAN_H_
