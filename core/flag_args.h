// Checks command-line arguments against the binary's registered absl flags before
// absl::ParseCommandLine sees them: absl exits 1 on an unknown flag or a bad value, but
// memload's binaries promise exit 2 for every usage error, with the flag named.
// Thread-compatible: call from main before any flag is read.
#ifndef MEMLOAD_CORE_FLAG_ARGS_H_
#define MEMLOAD_CORE_FLAG_ARGS_H_

#include <vector>

#include "absl/status/status.h"

namespace memload {

// InvalidArgument naming the first unknown flag, missing value, or value its flag's type
// refuses ("--timeout=\"soon\": ..."). absl's own flags (--help, --flagfile, ...) pass.
// A good value is parsed into its flag now, and again by ParseCommandLine.
absl::Status CheckFlagArgs(const std::vector<char*>& args);

}  // namespace memload

#endif  // MEMLOAD_CORE_FLAG_ARGS_H_
