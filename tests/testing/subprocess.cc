#include "tests/testing/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testing/files.h"
#include "tests/testing/process_memory.h"

namespace memload {
namespace testing {
namespace {

std::string OutputPath(const std::string& stem) {
  static std::atomic<int> counter{0};
  return TestTempPath(absl::StrCat(stem, "-", getpid(), "-", ++counter));
}

}  // namespace

std::string AgentBinary() { return "agent/memload-agent"; }
std::string WorkerBinary() { return "agent/memload-worker"; }
std::string CtlBinary() { return "controller/memloadctl"; }

std::vector<std::string> ChildEnvironment(const std::vector<std::string>& argv,
                                          const std::vector<std::string>& environment) {
  const bool memload = std::find_if(argv.begin(), argv.end(), [](const std::string& arg) {
                         return arg == AgentBinary() || arg == CtlBinary();
                       }) != argv.end();
  std::vector<std::string> child = environment;
  if (!memload) return child;
  for (std::string& variable : child) {
    if (absl::StartsWith(variable, "TSAN_OPTIONS=") &&
        !absl::StrContains(variable, "atexit_sleep_ms=")) {
      absl::StrAppend(&variable, ":atexit_sleep_ms=0");
    }
  }
  return child;
}

absl::StatusOr<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                             const std::string& cgroup_procs) {
  Subprocess process;
  process.stdout_path_ = OutputPath("stdout");
  process.stderr_path_ = OutputPath("stderr");
  const int out = open(process.stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = open(process.stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0 || err < 0) return absl::InternalError("cannot create output files");
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  // Built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> inherited;
  for (char** variable = environ; *variable != nullptr; ++variable) inherited.push_back(*variable);
  const std::vector<std::string> environment = ChildEnvironment(argv, inherited);
  std::vector<char*> env;
  for (const std::string& variable : environment)
    env.push_back(const_cast<char*>(variable.c_str()));
  env.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    if (!cgroup_procs.empty()) {
      const int procs = open(cgroup_procs.c_str(), O_WRONLY);
      if (procs < 0 || write(procs, "0", 1) != 1) _exit(126);
      close(procs);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(args[0], args.data(), env.data());
    _exit(127);
  }
  close(out);
  close(err);
  process.pid_ = pid;
  return process;
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(other.pid_),
      reaped_(other.reaped_),
      exit_code_(other.exit_code_),
      stdout_path_(std::move(other.stdout_path_)),
      stderr_path_(std::move(other.stderr_path_)) {
  other.pid_ = -1;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Subprocess::Signal(int signal) const {
  if (pid_ > 0 && !reaped_) kill(pid_, signal);
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!reaped_) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      reaped_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return exit_code_;
}

bool Subprocess::running() { return !Wait(absl::ZeroDuration()).has_value(); }

std::string Subprocess::Stdout() const { return ReadFile(stdout_path_); }
std::string Subprocess::Stderr() const { return ReadFile(stderr_path_); }

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  CommandResult result;
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv);
  if (!process.ok()) {
    result.err = std::string(process.status().message());
    return result;
  }
  std::optional<int> code = process->Wait(timeout);
  if (!code.has_value()) {
    process->Signal(SIGKILL);
    code = process->Wait(absl::Seconds(5));
    result.err = "timed out; ";
  }
  result.exit_code = code.value_or(-1);
  result.out = process->Stdout();
  result.err += process->Stderr();
  return result;
}

absl::StatusOr<LocalAgents> StartLocalAgents(
    int count, const std::string& name, const std::vector<std::string>& flags,
    const std::vector<std::vector<std::string>>& flags_of_agent) {
  LocalAgents agents;
  // Every agent is started before the first is waited for: they start side by side.
  for (int i = 0; i < count; ++i) {
    std::vector<std::string> argv = {AgentBinary(), absl::StrCat("--listen=127.0.0.", i + 1, ":0"),
                                     absl::StrCat("--node-name=", name, "-", i + 1),
                                     "--reserve=64MiB"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    if (static_cast<size_t>(i) < flags_of_agent.size()) {
      argv.insert(argv.end(), flags_of_agent[i].begin(), flags_of_agent[i].end());
    }
    absl::StatusOr<Subprocess> agent = Subprocess::Start(argv);
    if (!agent.ok()) return agent.status();
    agents.processes.push_back(*std::move(agent));
  }
  for (int i = 0; i < count; ++i) {
    agents.addresses.push_back(WaitForAgentAddress(agents.processes[i], absl::Seconds(10)));
    if (agents.addresses.back().empty()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "agent ", name, "-", i + 1, " did not start: ", agents.processes[i].Stderr()));
    }
  }
  return agents;
}

std::string WaitForAgentAddress(Subprocess& agent, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string log = agent.Stderr();
    const size_t at = log.find("listening on ");
    if (at != std::string::npos) {
      const size_t begin = at + std::strlen("listening on ");
      const size_t end = log.find(' ', begin);
      if (end != std::string::npos) return log.substr(begin, end - begin);
    }
    if (!agent.running()) return "";
    absl::SleepFor(absl::Milliseconds(5));
  }
  return "";
}

std::vector<pid_t> WorkersOf(pid_t agent_pid) {
  std::vector<pid_t> workers;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return workers;
  while (dirent* entry = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    int parent = 0;
    if (stat.has_value() && absl::StartsWith(stat->command, "memload-worker") &&
        stat->fields.size() > 1 && absl::SimpleAtoi(stat->fields[1], &parent) &&
        parent == agent_pid && stat->fields[0] != "Z") {
      workers.push_back(pid);
    }
  }
  closedir(proc);
  return workers;
}

}  // namespace testing
}  // namespace memload
