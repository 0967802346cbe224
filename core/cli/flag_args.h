// Checks command-line arguments against the binary's registered absl flags before
// absl::ParseCommandLine sees them: absl exits 1 on an unknown flag or a bad value, but
// memload's binaries promise exit 2 for every usage error, with the flag named as typed
// (dashes or underscores) and, for a typo, the closest flag. Also --help/-h and --version
// handled by the binary itself (absl prints every linked library's flags and exits 1).
// (memloadctl has its own per-command parser, controller/cli_flags.h; memload-agent uses
// these.)
// Thread-compatible: call from main before any flag is read.
#ifndef MEMLOAD_CORE_CLI_FLAG_ARGS_H_
#define MEMLOAD_CORE_CLI_FLAG_ARGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace memload {

// InvalidArgument naming the first unknown flag (with "did you mean --x?" when a flag of
// the binary is close), missing value, or value its flag's type refuses
// ("--timeout=\"soon\": ..."), the flag spelt as typed. Names may use dashes or
// underscores. absl's own flags (--flagfile, ...) pass, as do --help, -h and --version.
// A good value is parsed into its flag now, and again by ParseCommandLine.
absl::Status CheckFlagArgs(const std::vector<char*>& args);

// Whether --help, -h or --helpfull is among args[1..] (before a bare "--").
bool WantsHelp(const std::vector<char*>& args);
// Whether --version is among args[1..] (before a bare "--").
bool WantsVersion(const std::vector<char*>& args);

// Help text: `summary`, then one aligned line per flag defined in a source file whose
// path ends with `file_suffix` ("agent/agent_main.cc"): "  --name-with-dashes=VALUE  help
// (default X)", sorted by name, then "  -h, --help" and "  --version".
std::string FlagsHelp(absl::string_view summary, absl::string_view file_suffix);

}  // namespace memload

#endif  // MEMLOAD_CORE_CLI_FLAG_ARGS_H_
