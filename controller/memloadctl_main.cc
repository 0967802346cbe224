// memloadctl: drives memload agents. `memloadctl --help` lists the commands,
// `memloadctl help COMMAND` one command's flags; README.md ("memloadctl") has them all.
//
//   memloadctl usage --targets=127.0.0.1:7070,127.0.0.1:7071
//   memloadctl run --targets=dns:///memload-agent.memload.svc:7070 --kind=retained
//       --target=80% --ramp=1m --for=10m --rollout=batch:25% --stagger=10s
//
// The command line is parsed by controller/cli_flags.h (not absl flags): every command
// has its own flags, and arguments are copied into strings once, here.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bazel/leak_check.h"
#include "controller/cli.h"
#include "controller/commands.h"
#include "core/cancel_signal.h"
#include "core/clock.h"

int main(int argc, char** argv) {
  // Debian's Abseil is built with absl::Mutex deadlock detection on: every lock gRPC takes
  // then updates a global lock graph, a sixth of the fan-out's CPU (fanout_benchmark).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Before any thread exists (gRPC starts its own): every thread inherits the blocked
  // SIGINT/SIGTERM, so only the signal thread below ever receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Ctrl-C / SIGTERM (one rule: exit 130 for either). A command that has started plans
  // (run, start, --pods: from their first start on) holds a CancelScope and answers the
  // cancel itself: it stops what it started, reports and returns 130. Any other moment —
  // a command that started nothing: agents, usage, watch, stop, resize, --dry-run, config,
  // report, or run/start before their first start — has nothing to undo, so the process
  // ends at once rather than after the answers due (up to --timeout per retry). A second
  // signal ends it at once too.
  // Outlives the detached signal thread.
  static memload::CancelSignal cancel(memload::Clock::Real());
  std::thread([signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    const std::string name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    // One write() per message: nothing interleaves with the command's own stderr lines.
    auto say = [](const std::string& line) {
      if (write(STDERR_FILENO, line.data(), line.size()) < 0) {
        // Nowhere left to say it; the exit code still does.
      }
    };
    if (!cancel.Cancel()) {
      say("\nmemloadctl: interrupted by " + name + "; no plan was started, exiting now\n");
      _exit(memload::controller::kExitInterrupted);
    }
    say("\nmemloadctl: interrupted by " + name +
        "; stopping what was started (again to quit now)\n");
    sigwait(&signals, &signal);
    say("\nmemloadctl: interrupted again; quitting now (a plan not stopped yet ends with its "
        "lease)\n");
    _exit(memload::controller::kExitInterrupted);
  }).detach();

  memload::controller::CliIo io;
  io.out = &std::cout;
  io.err = &std::cerr;
  io.getenv = [](const char* name) -> const char* { return std::getenv(name); };
  io.tty = isatty(STDOUT_FILENO) == 1;
  io.cancel = &cancel;
  io.clock = memload::Clock::Real();
  const int code = memload::controller::RunCli(std::vector<std::string>(argv, argv + argc), io);
  // Every command has finished and released its clients; what is left are gRPC's own
  // background threads, which static destructors must not race (seen crashing at exit
  // under TSan, after the output was printed). Flush and leave without running them.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  _exit(memload::LeakCheckedExitCode(code));
}
