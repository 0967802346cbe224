// memloadctl as a library: the command table, help, completion, contexts and the checks
// every command makes before it sends anything. memloadctl_main.cc only sets up signals
// and calls RunCli; tests call RunCli with fake agents and a fake environment.
//
//   CliIo io;
//   io.out = &std::cout;
//   io.err = &std::cerr;
//   io.getenv = [](const char* name) { return std::getenv(name); };
//   int code = RunCli({"memloadctl", "usage", "--targets=127.0.0.1:7070"}, io);
//
// Exit codes: 0 ok (help and --help too); 1 one or more nodes failed; 2 usage error
// (nothing was sent); 130 interrupted. Usage errors print "memloadctl COMMAND: message"
// on stderr (and an error document on stdout with -o json), naming flags as typed.
//
// Thread-safety: RunCli runs a command on the calling thread; io.cancel may be set from
// another (the signal thread).
#ifndef MEMLOAD_CONTROLLER_CLI_H_
#define MEMLOAD_CONTROLLER_CLI_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controller/agent_client.h"
#include "controller/cli_config.h"
#include "controller/client_security.h"
#include "core/cancel_signal.h"
#include "core/clock.h"

namespace memload {
namespace controller {

struct CliIo {
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  GetEnv getenv;                   // The environment (tests pass a map).
  bool tty = false;                // stdout is a terminal: live views redraw in place.
  CancelSignal* cancel = nullptr;  // Ctrl-C; may be null; runs on `clock`.
  // What commands pace, wait and stamp by (commands.h). Not owned, never null.
  Clock* clock = Clock::Real();
  // Makes the agents' clients once the security flags are resolved. Unset: gRPC
  // (ApplyClientSecurity + GrpcAgentClientFactory). Tests install fakes and may record
  // what they were given.
  std::function<absl::StatusOr<AgentClientFactory>(const ClientSecurityOptions&)> make_factory;
};

int RunCli(const std::vector<std::string>& args, const CliIo& io);

// Names of the commands, in help order.
std::vector<std::string> CommandNames();
// `memloadctl --help`: what memloadctl is, its commands, where to learn more.
std::string OverviewHelp();
// `memloadctl help COMMAND`: usage, description, flags with defaults, two examples.
// "" for an unknown command.
std::string CommandHelp(absl::string_view command);
// `memloadctl completion bash`.
std::string BashCompletion();
// `memloadctl help [COMMAND] -o json` (and --help -o json): the commands (all, or the one
// named; "" for an unknown one) as a machine-readable document:
//   {"command":"help","ok":true,"usage":"memloadctl COMMAND [flags]","exitCodes":{...},
//    "commands":[{"name":"start","summary","usage","description","talksToAgents":true,
//      "flags":[{"name":"--block-size","type":"text","group":"plan","value":"SIZE",
//                "default":"1MiB","help":"bytes per block"}, {"name":"--output",
//                "short":"-o",...}, ...],
//      "examples":["memloadctl start ...", ...]}, ...]}
// "type" is text, bool, int (with "min" and "max") or duration; "group" is command, plan,
// rollout, connection or output; "default" is what an unset flag means.
std::string HelpJson(absl::string_view command);
// `memloadctl completion bash -o json`: what the script completes, for other shells and
// tools: {"command":"completion","ok":true,"shell":"bash","commands":[{"name","flags":
// ["--targets",...]}],"values":{"--output":["json","table"],...},"script":"..."}.
std::string CompletionJson();

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_CLI_H_
