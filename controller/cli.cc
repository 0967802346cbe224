#include "controller/cli.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "controller/cli_flags.h"
#include "controller/commands.h"
#include "controller/grpc_agent_client.h"
#include "controller/output.h"
#include "controller/plan_builder.h"
#include "controller/pod_commands.h"
#include "controller/pods.h"
#include "controller/recording.h"
#include "controller/report.h"
#include "controller/rollout.h"
#include "controller/targets.h"
#include "core/base/version.h"

namespace memload {
namespace controller {
namespace {

// What one command run knows: its arguments, where to print, and (for commands that talk
// to agents) the CommandEnv built from the connection flags.
struct Invocation {
  const ParsedArgs& args;
  const CliIo& io;
  std::string command;
  bool json = false;
  CommandEnv env;

  // Prints a usage error the way --output asks and returns 2: nothing was sent.
  int UsageError(const absl::Status& status) const {
    const std::string message = EchoFlagsAsTyped(status.message(), args);
    if (json) {
      *io.out << ErrorJson(command, absl::Status(status.code(), message));
    }
    *io.err << "memloadctl" << (command.empty() ? "" : " ") << command << ": " << message << "\n";
    return kExitUsage;
  }
};

using Handler = int (*)(Invocation&);

struct CommandSpec {
  absl::string_view name;
  absl::string_view summary;   // One line, for the overview.
  absl::string_view synopsis;  // After "memloadctl ".
  absl::string_view description;
  std::vector<absl::string_view> flags;  // Besides the connection and output flags.
  bool agents = true;                    // Talks to agents: connection flags, CommandEnv.
  std::vector<absl::string_view> examples;
  Handler run = nullptr;
};

std::vector<absl::string_view> Concat(std::vector<absl::string_view> a,
                                      const std::vector<absl::string_view>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<CommandSpec>& Commands();

const CommandSpec* FindCommand(absl::string_view name) {
  for (const CommandSpec& command : Commands()) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::vector<absl::string_view> AllowedFlags(const CommandSpec& command) {
  std::vector<absl::string_view> flags = command.flags;
  if (command.agents) flags = Concat(flags, FlagsOfGroup(FlagGroup::kConnection));
  return Concat(flags, FlagsOfGroup(FlagGroup::kOutput));
}

// "" when the command word is unknown: the error, with a suggestion.
absl::Status UnknownCommand(absl::string_view word) {
  std::vector<absl::string_view> names;
  for (const CommandSpec& command : Commands()) names.push_back(command.name);
  std::string message = absl::StrCat("unknown command \"", word, "\"");
  if (std::optional<std::string> close = DidYouMean(word, names)) {
    absl::StrAppend(&message, " (did you mean ", *close, "?)");
  }
  absl::StrAppend(&message, "; memloadctl --help lists the commands");
  return absl::InvalidArgumentError(message);
}

// --- Building what agent commands share.

absl::Status BuildEnv(Invocation& inv) {
  const ParsedArgs& args = inv.args;
  std::map<std::string, std::string> given;
  for (const std::string& key : ContextKeys()) {
    if (args.Has(key)) given[key] = args.Text(key);
  }
  const std::string config_path = ConfigPath(inv.io.getenv);
  absl::StatusOr<CliConfig> config = ReadCliConfig(config_path);
  if (!config.ok()) return config.status();
  absl::StatusOr<ConnectionSettings> settings =
      ResolveConnection(given, args.Text("context"), *config, inv.io.getenv);
  if (!settings.ok()) return settings.status();
  // A setting that did not come from a flag says where it came from in its error.
  auto from = [&](const std::string& key) -> std::string {
    auto it = settings->sources.find(key);
    if (it == settings->sources.end() || it->second == "flag") return "";
    return absl::StrCat(" (from ", it->second, ")");
  };
  auto value = [&](const std::string& key) -> std::string {
    auto it = settings->values.find(key);
    return it == settings->values.end() ? "" : it->second;
  };
  if (value("targets").empty()) {
    return absl::InvalidArgumentError(
        "--targets is required (or MEMLOAD_TARGETS, or a context: memloadctl config "
        "set-context NAME --targets=...)");
  }
  absl::StatusOr<std::vector<std::string>> targets = ParseTargets(value("targets"));
  if (!targets.ok()) {
    return absl::Status(targets.status().code(),
                        absl::StrCat(targets.status().message(), from("targets")));
  }
  inv.env.targets = *targets;
  absl::StatusOr<Selector> selector = ParseSelector(value("selector"));
  if (!selector.ok()) {
    return absl::Status(selector.status().code(),
                        absl::StrCat(selector.status().message(), from("selector")));
  }
  inv.env.selector = *selector;
  if (args.Duration("timeout") <= absl::ZeroDuration() ||
      args.Duration("timeout") > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        args.Typed("timeout"), "=\"", args.Text("timeout"), "\": want a duration in (0, 1h]"));
  }
  inv.env.fanout.parallelism = static_cast<int>(args.Int("parallelism"));
  inv.env.fanout.timeout = args.Duration("timeout");
  inv.env.fanout.retry.max_attempts = 1 + static_cast<int>(args.Int("retries"));
  ClientSecurityOptions security;
  security.tls_ca_file = value("tls-ca");
  security.tls_cert_file = value("tls-cert");
  security.tls_key_file = value("tls-key");
  security.tls_server_name = value("tls-server-name");
  security.token_file = value("token-file");
  if (const char* token = inv.io.getenv("MEMLOAD_TOKEN"); token != nullptr) {
    security.token = token;
  }
  absl::StatusOr<AgentClientFactory> factory;
  if (inv.io.make_factory) {
    factory = inv.io.make_factory(security);
  } else {
    GrpcClientOptions client_options;
    absl::Status applied = ApplyClientSecurity(security, &client_options);
    if (applied.ok()) {
      factory = GrpcAgentClientFactory(std::move(client_options));
    } else {
      factory = applied;
    }
  }
  if (!factory.ok()) return factory.status();
  inv.env.factory = *std::move(factory);
  inv.env.json = inv.json;
  inv.env.tty = inv.io.tty;
  inv.env.out = inv.io.out;
  inv.env.err = inv.io.err;
  inv.env.cancel = inv.io.cancel;
  inv.env.clock = inv.io.clock;
  return absl::OkStatus();
}

absl::StatusOr<v1::PlanSpec> PlanFromArgs(const Invocation& inv) {
  return BuildPlanFromFlags(PlanFlagsFrom(inv.args), inv.io.clock);
}

absl::StatusOr<RolloutOptions> RolloutFromArgs(const ParsedArgs& args) {
  RolloutOptions rollout;
  absl::StatusOr<RolloutStrategy> strategy = ParseRollout(args.Text("rollout"));
  if (!strategy.ok()) return strategy.status();
  rollout.strategy = *strategy;
  absl::StatusOr<absl::Duration> stagger = ParseStagger(args.Text("stagger"));
  if (!stagger.ok()) return stagger.status();
  rollout.stagger = *stagger;
  if (const std::string text = args.Text("max-failures"); !text.empty()) {
    absl::StatusOr<FailureLimit> limit = ParseMaxFailures(text);
    if (!limit.ok()) return limit.status();
    rollout.max_failures = *limit;
  }
  return rollout;
}

// Operands after the command word: at most `most`.
absl::Status CheckOperands(const Invocation& inv, size_t most) {
  const std::vector<std::string>& positional = inv.args.positional();
  if (positional.size() > most + 1) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", positional[most + 1],
                                                   "\" (flags go as --name=value)"));
  }
  return absl::OkStatus();
}

// --- Handlers.

int RunAgentsCommand(Invocation& inv) { return RunAgents(inv.env); }
int RunUsageCommand(Invocation& inv) { return RunUsage(inv.env); }

// --for: a positive duration, or InfiniteDuration when not given.
absl::StatusOr<absl::Duration> KeepFromArgs(const ParsedArgs& args) {
  const std::string keep = args.Text("for");
  if (keep.empty()) return absl::InfiniteDuration();
  absl::Duration duration;
  if (!absl::ParseDuration(keep, &duration) || duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(args.Typed("for"), "=\"", keep, "\": want a positive duration"));
  }
  return duration;
}

// start/run --pods: one placed plan per pod (controller/pod_commands.h).
// Opens --record if given, runs `run` with the recorder (null without one), and makes a
// recording that failed on the way the command's failure (exit 1 at least).
int WithRecorder(Invocation& inv, const std::function<int(RunRecorder*)>& run) {
  std::unique_ptr<RunRecorder> recorder;
  if (const std::string path = inv.args.Text("record"); !path.empty()) {
    absl::StatusOr<std::unique_ptr<RunRecorder>> opened = RunRecorder::Open(path);
    if (!opened.ok()) return inv.UsageError(opened.status());
    recorder = *std::move(opened);
  }
  const int code = run(recorder.get());
  if (recorder != nullptr && !recorder->status().ok()) {
    *inv.io.err << "memloadctl run: " << inv.args.Typed("record") << ": "
                << recorder->status().message() << "\n";
    return code == kExitOk ? kExitNodesFailed : code;
  }
  return code;
}

int RunPodsCommand(Invocation& inv) {
  const ParsedArgs& args = inv.args;
  // Not applied to pods yet: refused rather than silently ignored.
  for (absl::string_view flag : {"dry-run", "rollout", "stagger", "max-failures", "selector"}) {
    if (args.Has(flag)) {
      return inv.UsageError(absl::InvalidArgumentError(
          absl::StrCat(args.Typed(flag), " is not available with --pods yet")));
    }
  }
  PlanFlags flags = PlanFlagsFrom(args);
  PodsOptions pods;
  pods.container = args.Text("container");
  absl::StatusOr<std::optional<PodRelativeTarget>> relative = ParsePodRelativeTarget(flags.target);
  if (!relative.ok()) return inv.UsageError(relative.status());
  pods.relative = *relative;
  // N%request / N%limit are resolved per pod; the plan is built with a stand-in size of one
  // block, which every size rule accepts (the agent checks each pod's real size).
  if (pods.relative.has_value())
    flags.target = flags.block_size.empty() ? "1MiB" : flags.block_size;
  absl::StatusOr<v1::PlanSpec> spec = BuildPlanFromFlags(flags, inv.io.clock);
  if (!spec.ok()) return inv.UsageError(spec.status());
  const std::string path = args.Text("pods");
  absl::StatusOr<std::string> input = ReadPodsInput(path);
  if (!input.ok()) return inv.UsageError(input.status());
  absl::StatusOr<std::vector<Pod>> parsed = ParsePods(*input, path == "-" ? "stdin" : path);
  if (!parsed.ok()) return inv.UsageError(parsed.status());
  pods.pods = *std::move(parsed);
  pods.run = inv.command == "run";
  pods.refresh = args.Duration("interval");
  absl::StatusOr<absl::Duration> keep = KeepFromArgs(args);
  if (!keep.ok()) return inv.UsageError(keep.status());
  pods.keep = *keep;
  return WithRecorder(inv, [&](RunRecorder* recorder) {
    pods.recorder = recorder;
    return RunPods(inv.env, *spec, pods);
  });
}

int RunStartCommand(Invocation& inv) {
  if (inv.args.Has("pods")) return RunPodsCommand(inv);
  if (inv.args.Has("container")) {
    return inv.UsageError(
        absl::InvalidArgumentError(absl::StrCat(inv.args.Typed("container"), " needs --pods")));
  }
  absl::StatusOr<v1::PlanSpec> spec = PlanFromArgs(inv);
  if (!spec.ok()) return inv.UsageError(spec.status());
  absl::StatusOr<RolloutOptions> rollout = RolloutFromArgs(inv.args);
  if (!rollout.ok()) return inv.UsageError(rollout.status());
  if (inv.args.Bool("dry-run")) return RunDryRun(inv.env, inv.command, *spec);
  return RunStart(inv.env, *spec, *rollout);
}

int RunResizeCommand(Invocation& inv) {
  const std::string plan_id = inv.args.Text("plan-id");
  if (plan_id.empty()) {
    return inv.UsageError(absl::InvalidArgumentError("resize needs --plan-id=ID"));
  }
  absl::StatusOr<v1::Quantity> target = ParseTargetFlag(inv.args.Text("target"));
  if (!target.ok()) return inv.UsageError(target.status());
  return RunResize(inv.env, plan_id, *target);
}

int RunStopCommand(Invocation& inv) {
  const std::string plan_id = inv.args.Text("plan-id");
  if (plan_id.empty() == !inv.args.Bool("all")) {
    return inv.UsageError(
        absl::InvalidArgumentError("stop needs --plan-id=ID or --all (not both)"));
  }
  return RunStop(inv.env, plan_id);
}

int RunWatchCommand(Invocation& inv) {
  WatchOptions watch;
  watch.interval = inv.args.Duration("interval");
  watch.count = static_cast<int>(inv.args.Int("count"));
  if (watch.interval < absl::Milliseconds(50)) {
    return inv.UsageError(absl::InvalidArgumentError("--interval must be >= 50ms"));
  }
  return RunWatch(inv.env, watch);
}

int RunRunCommand(Invocation& inv) {
  if (inv.args.Duration("interval") < absl::Milliseconds(50)) {
    return inv.UsageError(absl::InvalidArgumentError("--interval must be >= 50ms"));
  }
  if (inv.args.Has("pods")) return RunPodsCommand(inv);
  if (inv.args.Has("container")) {
    return inv.UsageError(
        absl::InvalidArgumentError(absl::StrCat(inv.args.Typed("container"), " needs --pods")));
  }
  absl::StatusOr<v1::PlanSpec> spec = PlanFromArgs(inv);
  if (!spec.ok()) return inv.UsageError(spec.status());
  absl::StatusOr<RolloutOptions> rollout = RolloutFromArgs(inv.args);
  if (!rollout.ok()) return inv.UsageError(rollout.status());
  RunOptions run;
  run.rollout = *rollout;
  run.refresh = inv.args.Duration("interval");
  absl::StatusOr<absl::Duration> keep = KeepFromArgs(inv.args);
  if (!keep.ok()) return inv.UsageError(keep.status());
  run.keep = *keep;
  if (inv.args.Bool("dry-run")) return RunDryRun(inv.env, inv.command, *spec);
  return WithRecorder(inv, [&](RunRecorder* recorder) {
    run.recorder = recorder;
    return RunRun(inv.env, *spec, run);
  });
}

int RunReportCommand(Invocation& inv) {
  if (absl::Status operands = CheckOperands(inv, 1); !operands.ok()) {
    return inv.UsageError(operands);
  }
  const std::vector<std::string>& positional = inv.args.positional();
  const std::string path = positional.size() > 1 ? positional[1] : "";
  const std::string html = inv.args.Text("html");
  if (!inv.json) return RunReport(path, html, *inv.io.out, *inv.io.err);
  // JSON: the summary table is for people; scripts get what was written.
  std::ostringstream table, errors;
  ReportVerdict verdict;
  const int code = RunReport(path, html, table, errors, &verdict);
  *inv.io.err << errors.str();
  if (code != kExitOk) {
    const std::string text = errors.str();
    absl::string_view message = absl::StripTrailingAsciiWhitespace(text);
    absl::ConsumePrefix(&message, "memloadctl report: ");
    *inv.io.out << ErrorJson("report", code == kExitUsage ? absl::InvalidArgumentError(message)
                                                          : absl::UnknownError(message));
    return code;
  }
  // The recorded run's verdict, with the counts every node table carries.
  JsonObject run;
  run.Bool("ok", verdict.ok);
  if (verdict.exit_code) {
    run.Number("exitCode", *verdict.exit_code);
  } else {
    run.Raw("exitCode", "null");
  }
  *inv.io.out << JsonObject()
                     .String("command", "report")
                     .Bool("ok", code == kExitOk)
                     .String("recording", path)
                     .String("html", html)
                     .Raw("run", run.Compact())
                     .Raw("summary", JsonObject()
                                         .Number("nodes", verdict.nodes)
                                         .Number("ok", verdict.ok_nodes)
                                         .Number("failed", verdict.nodes - verdict.ok_nodes)
                                         .Compact())
                     .Compact()
              << "\n";
  return code;
}

int RunVersionCommand(Invocation& inv) {
  if (absl::Status operands = CheckOperands(inv, 0); !operands.ok()) {
    return inv.UsageError(operands);
  }
  if (inv.json) {
    *inv.io.out << JsonObject()
                       .String("command", "version")
                       .Bool("ok", true)
                       .String("version", kVersion)
                       .Compact()
                << "\n";
  } else {
    *inv.io.out << "memloadctl " << kVersion << "\n";
  }
  return kExitOk;
}

int RunHelpCommand(Invocation& inv) {
  const std::vector<std::string>& positional = inv.args.positional();
  if (positional.size() <= 1) {
    *inv.io.out << (inv.json ? HelpJson("") : OverviewHelp());
    return kExitOk;
  }
  if (absl::Status operands = CheckOperands(inv, 1); !operands.ok()) {
    return inv.UsageError(operands);
  }
  const std::string help = inv.json ? HelpJson(positional[1]) : CommandHelp(positional[1]);
  if (help.empty()) return inv.UsageError(UnknownCommand(positional[1]));
  *inv.io.out << help;
  return kExitOk;
}

int RunCompletionCommand(Invocation& inv) {
  const std::vector<std::string>& positional = inv.args.positional();
  if (positional.size() != 2 || positional[1] != "bash") {
    return inv.UsageError(absl::InvalidArgumentError(
        "want: memloadctl completion bash (then: source <(memloadctl completion bash))"));
  }
  *inv.io.out << (inv.json ? CompletionJson() : BashCompletion());
  return kExitOk;
}

// --- config.

std::string ContextsTable(const CliConfig& config) {
  Table table({{"NAME"},
               {"CURRENT"},
               {"TARGETS"},
               {"SELECTOR", Table::kLeft, true},
               {"TOKEN-FILE", Table::kLeft, true},
               {"TLS-CA", Table::kLeft, true}});
  for (const CliContext& context : config.contexts) {
    auto get = [&](const char* key) -> std::string {
      auto it = context.settings.find(key);
      return it == context.settings.end() ? "" : it->second;
    };
    table.AddRow({context.name, context.name == config.current_context ? "*" : "",
                  get("targets").empty() ? "-" : get("targets"), get("selector"), get("token-file"),
                  get("tls-ca")});
  }
  return table.Render();
}

std::string ConfigJson(const CliConfig& config, absl::string_view command) {
  std::vector<std::string> contexts;
  for (const CliContext& context : config.contexts) {
    JsonObject settings;
    for (const auto& [key, value] : context.settings) settings.String(key, value);
    contexts.push_back(JsonObject()
                           .String("name", context.name)
                           .Bool("current", context.name == config.current_context)
                           .Raw("settings", settings.Compact())
                           .Compact());
  }
  return JsonObject()
             .String("command", command)
             .Bool("ok", true)
             .String("currentContext", config.current_context)
             .Raw("contexts", JsonArray(contexts))
             .Compact() +
         "\n";
}

int RunConfigCommand(Invocation& inv) {
  const std::vector<std::string>& positional = inv.args.positional();
  static const std::vector<absl::string_view> kVerbs = {
      "view", "get-contexts", "current-context", "set-context", "use-context", "delete-context"};
  const std::string verb = positional.size() > 1 ? positional[1] : "";
  if (std::find(kVerbs.begin(), kVerbs.end(), verb) == kVerbs.end()) {
    std::string message =
        verb.empty() ? "config needs a verb" : absl::StrCat("unknown config verb \"", verb, "\"");
    if (std::optional<std::string> close = DidYouMean(verb, kVerbs)) {
      absl::StrAppend(&message, " (did you mean ", *close, "?)");
    }
    absl::StrAppend(&message, "; want one of: ", absl::StrJoin(kVerbs, ", "));
    return inv.UsageError(absl::InvalidArgumentError(message));
  }
  const bool takes_name =
      verb == "set-context" || verb == "use-context" || verb == "delete-context";
  if (takes_name && positional.size() < 3) {
    return inv.UsageError(absl::InvalidArgumentError(absl::StrCat("config ", verb, " needs NAME")));
  }
  if (absl::Status operands = CheckOperands(inv, takes_name ? 2 : 1); !operands.ok()) {
    return inv.UsageError(operands);
  }
  bool setting_given = false;
  for (const std::string& key : ContextKeys()) setting_given |= inv.args.Has(key);
  if (setting_given && verb != "set-context") {
    return inv.UsageError(absl::InvalidArgumentError(
        absl::StrCat("settings such as --targets go with config set-context, not ", verb)));
  }
  const std::string path = ConfigPath(inv.io.getenv);
  absl::StatusOr<CliConfig> config = ReadCliConfig(path);
  if (!config.ok()) return inv.UsageError(config.status());
  const std::string name = takes_name ? positional[2] : "";
  if (verb == "view") {
    *inv.io.out << (inv.json ? ConfigJson(*config, "config view") : FormatCliConfig(*config));
    return kExitOk;
  }
  if (verb == "get-contexts") {
    *inv.io.out << (inv.json ? ConfigJson(*config, "config get-contexts") : ContextsTable(*config));
    return kExitOk;
  }
  if (verb == "current-context") {
    if (config->current_context.empty()) {
      if (inv.json) {
        *inv.io.out << ErrorJson("config current-context",
                                 absl::NotFoundError("no current context"));
      }
      *inv.io.err << "memloadctl config: no current context\n";
      return kExitNodesFailed;
    }
    *inv.io.out << (inv.json ? JsonObject()
                                   .String("command", "config current-context")
                                   .Bool("ok", true)
                                   .String("currentContext", config->current_context)
                                   .Compact()
                             : config->current_context)
                << "\n";
    return kExitOk;
  }
  if (verb == "use-context" || verb == "delete-context") {
    if (config->Find(name) == nullptr) {
      return inv.UsageError(absl::NotFoundError(absl::StrCat("no context \"", name, "\"")));
    }
    if (verb == "use-context") {
      config->current_context = name;
    } else {
      config->contexts.erase(std::remove_if(config->contexts.begin(), config->contexts.end(),
                                            [&](const CliContext& c) { return c.name == name; }),
                             config->contexts.end());
      if (config->current_context == name) config->current_context.clear();
    }
  } else {  // set-context: creates it or updates the settings given; VALUE "" removes one.
    CliContext* context = config->Find(name);
    if (context == nullptr) {
      config->contexts.push_back(CliContext{name, {}});
      context = &config->contexts.back();
    }
    for (const std::string& key : ContextKeys()) {
      if (!inv.args.Has(key)) continue;
      if (inv.args.Text(key).empty()) {
        context->settings.erase(key);
      } else {
        context->settings[key] = inv.args.Text(key);
      }
    }
    if (config->current_context.empty()) config->current_context = name;
  }
  // Round trip through the parser: what is written can be read back.
  absl::StatusOr<CliConfig> checked = ParseCliConfig(FormatCliConfig(*config), path);
  if (!checked.ok()) return inv.UsageError(checked.status());
  if (absl::Status written = WriteCliConfig(path, *config); !written.ok()) {
    return inv.UsageError(written);
  }
  if (inv.json) {
    *inv.io.out << ConfigJson(*config, absl::StrCat("config ", verb));
  } else {
    *inv.io.err << "memloadctl config: " << verb << " " << name << " (" << path << ")\n";
  }
  return kExitOk;
}

std::vector<absl::string_view> PlanCommandFlags() {
  return Concat(Concat(FlagsOfGroup(FlagGroup::kPlan), FlagsOfGroup(FlagGroup::kRollout)),
                {"dry-run", "pods", "container"});
}

const std::vector<CommandSpec>& Commands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      {"agents",
       "identity, labels, version, incarnation, reachability and plans of every agent",
       "agents --targets=LIST [flags]",
       "Asks every agent who it is (GetNodeInfo) and how many plans it runs (ListPlans).\n"
       "Agents that cannot be asked are listed as failed, never left out.",
       {},
       true,
       {"memloadctl agents --targets=10.0.0.5:7070,10.0.0.6:7070",
        "memloadctl agents --context=prod --selector=zone=a -o json"},
       RunAgentsCommand},
      {"usage",
       "node memory, cgroup, pressure, agent RSS and every plan's counters",
       "usage --targets=LIST [flags]",
       "One GetUsage per agent: a node table, then a table of the plans they run.",
       {},
       true,
       {"memloadctl usage --targets=127.0.0.1:7070",
        "memloadctl usage --targets=dns:///memload-agent.memload.svc:7070 --no-headers"},
       RunUsageCommand},
      {"start",
       "start a plan on every target (per --rollout) and return",
       "start --targets=LIST --kind=KIND --target=QUANTITY [flags]  |  start --plan=FILE",
       "Starts the plan on every selected agent and prints each node's plan. Nothing renews\n"
       "its lease afterwards: the agent stops it when the lease runs out (use run to keep\n"
       "it). --dry-run asks every node for its usage and shows what it would get.",
       PlanCommandFlags(),
       true,
       {"memloadctl start --targets=127.0.0.1:7070 --kind=retained --target=128MiB "
        "--lease=30s",
        "memloadctl start --context=prod --kind=retained --target=80% --dry-run"},
       RunStartCommand},
      {"resize",
       "change a running plan's target everywhere",
       "resize --targets=LIST --plan-id=ID --target=QUANTITY [flags]",
       "Sets a new target for the plan on every agent that runs it.",
       {"plan-id", "target"},
       true,
       {"memloadctl resize --targets=127.0.0.1:7070 --plan-id=drill --target=256MiB",
        "memloadctl resize --context=prod --plan-id=drill --target=60%"},
       RunResizeCommand},
      {"stop",
       "stop a plan (or every running plan) everywhere",
       "stop --targets=LIST (--plan-id=ID | --all) [flags]",
       "Stops the plan and gives its memory back; --all stops every running plan.",
       {"plan-id", "all"},
       true,
       {"memloadctl stop --targets=127.0.0.1:7070 --plan-id=drill",
        "memloadctl stop --context=prod --all"},
       RunStopCommand},
      {"watch",
       "live usage from every agent",
       "watch --targets=LIST [--interval=DURATION] [--count=N] [flags]",
       "Streams usage (WatchUsage) from every agent: redrawn in place on a terminal, one\n"
       "line per node per interval otherwise, JSON Lines with -o json.",
       {"interval", "count"},
       true,
       {"memloadctl watch --targets=127.0.0.1:7070,127.0.0.1:7071",
        "memloadctl watch --context=prod --interval=5s --count=12 -o json"},
       RunWatchCommand},
      {"run",
       "start, renew leases, show progress, stop at the end, summarize",
       "run --targets=LIST --kind=KIND --target=QUANTITY [--for=DURATION] [flags]",
       "Starts the plan per the rollout, renews its leases, shows live progress and stops it\n"
       "everywhere when it ended on every node, --for elapsed, or on Ctrl-C; then prints a\n"
       "summary. --record writes the run's time series for `memloadctl report`.",
       Concat(PlanCommandFlags(), {"for", "interval", "record"}),
       true,
       {"memloadctl run --targets=127.0.0.1:7070 --kind=retained --target=256MiB --ramp=10s "
        "--for=1m",
        "memloadctl run --context=prod --kind=retained --target=80% --ramp=1m --for=10m "
        "--rollout=batch:25% --record=drill.jsonl"},
       RunRunCommand},
      {"report",
       "a recording as a self-contained HTML page",
       "report FILE --html=OUT.html",
       "Reads a recording made by run --record and writes an HTML page (no agent involved).",
       {"html"},
       false,
       {"memloadctl report drill.jsonl --html=drill.html",
        "memloadctl report drill.jsonl --html=drill.html -o json"},
       RunReportCommand},
      {"config",
       "contexts: named targets, selectors and TLS/token files",
       "config view | get-contexts | current-context | set-context NAME [--targets=...] | "
       "use-context NAME | delete-context NAME",
       "Keeps named contexts in ~/.config/memload/config (or $MEMLOAD_CONFIG). A command\n"
       "takes its connection settings from, first match wins: its flags; the context named by\n"
       "--context (or $MEMLOAD_CONTEXT); the environment (MEMLOAD_TARGETS, MEMLOAD_SELECTOR,\n"
       "MEMLOAD_TOKEN_FILE, MEMLOAD_TLS_CA, MEMLOAD_TLS_CERT, MEMLOAD_TLS_KEY,\n"
       "MEMLOAD_TLS_SERVER_NAME); the current context. set-context --KEY= removes a setting.",
       {"targets", "selector", "token-file", "tls-ca", "tls-cert", "tls-key", "tls-server-name"},
       false,
       {"memloadctl config set-context prod "
        "--targets=dns:///memload-agent.memload.svc:7070 --token-file=/etc/memload/token",
        "memloadctl config use-context prod && memloadctl config get-contexts"},
       RunConfigCommand},
      {"completion",
       "shell completion script",
       "completion bash",
       "Prints a bash completion script for commands, flags and their fixed values; -o json\n"
       "gives the same words (each command's flags, the fixed values) and the script as JSON.",
       {},
       false,
       {"source <(memloadctl completion bash)",
        "memloadctl completion bash > /etc/bash_completion.d/memloadctl"},
       RunCompletionCommand},
      {"version",
       "memloadctl's version",
       "version [-o json]",
       "Prints memloadctl's version.",
       {},
       false,
       {"memloadctl version", "memloadctl --version"},
       RunVersionCommand},
      {"help",
       "help for a command",
       "help [COMMAND]",
       "Lists the commands, or one command's flags with their defaults and examples; -o json\n"
       "gives every command (or the one named) with its flags' types, groups, defaults and help.",
       {},
       false,
       {"memloadctl help start", "memloadctl help -o json"},
       RunHelpCommand},
  };
  return *kCommands;
}

std::string JoinWords(const std::vector<absl::string_view>& words, absl::string_view prefix) {
  std::string out;
  for (absl::string_view word : words) absl::StrAppend(&out, out.empty() ? "" : " ", prefix, word);
  return out;
}

// Whether a command line that failed to parse asked for JSON (-o json, -ojson, -o=json,
// --output json, --output=json), so that even its usage error is a JSON document.
bool AsksForJson(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg == "-ojson" || arg == "-o=json" || arg == "--output=json") return true;
    if ((arg == "-o" || arg == "--output") && i + 1 < args.size() && args[i + 1] == "json") {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> CommandNames() {
  std::vector<std::string> names;
  for (const CommandSpec& command : Commands()) names.emplace_back(command.name);
  return names;
}

std::string OverviewHelp() {
  std::string out =
      "memloadctl drives memload agents: it puts a precise memory load on many machines at\n"
      "once and gathers what every node uses.\n\n"
      "Usage: memloadctl COMMAND [flags]\n\nCommands:\n";
  size_t width = 0;
  for (const CommandSpec& command : Commands()) width = std::max(width, command.name.size());
  for (const CommandSpec& command : Commands()) {
    absl::StrAppend(&out, "  ", command.name, std::string(width - command.name.size() + 2, ' '),
                    command.summary, "\n");
  }
  absl::StrAppend(
      &out,
      "\nEvery command that talks to agents takes --targets (or MEMLOAD_TARGETS, or a\n"
      "context: memloadctl help config), -o json|table and --no-headers.\n"
      "Exit codes: 0 ok; 1 a node failed (listed); 2 usage error, nothing sent; 130 "
      "interrupted.\n\n"
      "memloadctl help COMMAND (or COMMAND --help) shows a command's flags and examples.\n");
  return out;
}

std::string CommandHelp(absl::string_view name) {
  const CommandSpec* command = FindCommand(name);
  if (command == nullptr) return "";
  std::string out =
      absl::StrCat("memloadctl ", command->name, ": ", command->summary, "\n\nUsage: memloadctl ",
                   command->synopsis, "\n\n", command->description, "\n\n");
  absl::StrAppend(&out, FormatFlagHelp(AllowedFlags(*command)));
  absl::StrAppend(&out, "\nExamples:\n");
  for (absl::string_view example : command->examples) absl::StrAppend(&out, "  ", example, "\n");
  return out;
}

namespace {

const char* TypeName(FlagType type) {
  switch (type) {
    case FlagType::kBool:
      return "bool";
    case FlagType::kInt:
      return "int";
    case FlagType::kDuration:
      return "duration";
    case FlagType::kText:
      break;
  }
  return "text";
}

const char* GroupName(FlagGroup group) {
  switch (group) {
    case FlagGroup::kPlan:
      return "plan";
    case FlagGroup::kRollout:
      return "rollout";
    case FlagGroup::kConnection:
      return "connection";
    case FlagGroup::kOutput:
      return "output";
    case FlagGroup::kCommand:
      break;
  }
  return "command";
}

// One flag as help -o json lists it.
std::string FlagJson(const FlagSpec& flag) {
  JsonObject out;
  out.String("name", absl::StrCat("--", flag.name));
  if (flag.short_name != 0) out.String("short", absl::StrCat("-", std::string(1, flag.short_name)));
  const absl::string_view shown =
      flag.shown_default.empty() ? flag.default_value : flag.shown_default;
  out.String("type", TypeName(flag.type)).String("group", GroupName(flag.group));
  if (!flag.value_name.empty()) out.String("value", flag.value_name);
  if (flag.type != FlagType::kBool && !shown.empty()) out.String("default", shown);
  if (flag.type == FlagType::kInt) out.Number("min", flag.min).Number("max", flag.max);
  return out.String("help", flag.help).Compact();
}

std::string CommandJson(const CommandSpec& command) {
  std::vector<std::string> flags;
  for (absl::string_view name : AllowedFlags(command)) {
    if (const FlagSpec* flag = FindFlag(name); flag != nullptr) flags.push_back(FlagJson(*flag));
  }
  std::vector<std::string> examples(command.examples.begin(), command.examples.end());
  return JsonObject()
      .String("name", command.name)
      .String("summary", command.summary)
      .String("usage", absl::StrCat("memloadctl ", command.synopsis))
      .String("description", command.description)
      .Bool("talksToAgents", command.agents)
      .Raw("flags", JsonArray(flags))
      .Raw("examples", JsonStringArray(examples))
      .Compact();
}

// The fixed values completion offers after --NAME=.
const std::vector<std::pair<absl::string_view, std::vector<std::string>>>& FixedValues() {
  static const auto* const kValues =
      new std::vector<std::pair<absl::string_view, std::vector<std::string>>>{
          {"output", {"json", "table"}},
          {"kind", {"retained", "streaming", "utilization"}},
          {"touch", {"none", "page", "fill"}},
          {"backing", {"malloc", "mmap", "shmem"}},
          {"rollout", {"all", "serial", "batch:"}},
      };
  return *kValues;
}

}  // namespace

std::string HelpJson(absl::string_view command) {
  std::vector<std::string> commands;
  for (const CommandSpec& spec : Commands()) {
    if (command.empty() || spec.name == command) commands.push_back(CommandJson(spec));
  }
  if (commands.empty()) return "";
  return JsonObject()
             .String("command", "help")
             .Bool("ok", true)
             .String("usage", "memloadctl COMMAND [flags]")
             .Raw("exitCodes", JsonObject()
                                   .String("0", "ok")
                                   .String("1", "a node failed")
                                   .String("2", "usage error, nothing sent")
                                   .String("130", "interrupted")
                                   .Compact())
             // One command a line, for people reading it too.
             .Raw("commands", absl::StrCat("[\n", absl::StrJoin(commands, ",\n"), "\n]"))
             .Compact() +
         "\n";
}

std::string CompletionJson() {
  std::vector<std::string> commands;
  for (const CommandSpec& command : Commands()) {
    std::vector<std::string> flags;
    for (absl::string_view name : AllowedFlags(command)) flags.push_back(absl::StrCat("--", name));
    commands.push_back(
        JsonObject().String("name", command.name).Raw("flags", JsonStringArray(flags)).Compact());
  }
  JsonObject values;
  for (const auto& [flag, choices] : FixedValues()) {
    values.Raw(absl::StrCat("--", flag), JsonStringArray(choices));
  }
  return JsonObject()
             .String("command", "completion")
             .Bool("ok", true)
             .String("shell", "bash")
             .Raw("commands", JsonArray(commands))
             .Raw("values", values.Compact())
             .String("script", BashCompletion())
             .Compact() +
         "\n";
}

std::string BashCompletion() {
  std::vector<absl::string_view> names;
  for (const CommandSpec& command : Commands()) names.push_back(command.name);
  std::string cases;
  for (const CommandSpec& command : Commands()) {
    std::vector<absl::string_view> flags = AllowedFlags(command);
    std::string words;
    for (absl::string_view flag : flags) {
      const FlagSpec* spec = FindFlag(flag);
      absl::StrAppend(&words, words.empty() ? "" : " ", "--", flag,
                      spec != nullptr && spec->type != FlagType::kBool ? "=" : "");
    }
    absl::StrAppend(&cases, "    ", command.name, ") flags=\"", words, " --help\" ;;\n");
  }
  std::string values;
  for (const auto& [flag, choices] : FixedValues()) {
    absl::StrAppend(&values, "    --", flag, "=*) COMPREPLY=($(compgen -W \"",
                    absl::StrJoin(choices, " "), "\" -- \"${cur#*=}\")); return ;;\n");
  }
  return absl::StrCat(
      "# bash completion for memloadctl: source <(memloadctl completion bash)\n"
      "_memloadctl() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" command=\"\" i flags\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case \"${COMP_WORDS[i]}\" in -*) ;; *) command=\"${COMP_WORDS[i]}\"; break ;; "
      "esac\n"
      "  done\n"
      "  if [[ -z \"$command\" ]]; then\n"
      "    COMPREPLY=($(compgen -W \"",
      JoinWords(names, ""),
      " --help --version\" -- \"$cur\"))\n"
      "    return\n"
      "  fi\n"
      "  case \"$command\" in\n",
      cases,
      "    *) flags=\"\" ;;\n"
      "  esac\n"
      "  case \"$cur\" in\n",
      values,
      "    --context=*) COMPREPLY=($(compgen -W \"$(memloadctl config get-contexts --no-headers "
      "2>/dev/null | cut -d' ' -f1)\" -- \"${cur#*=}\")); return ;;\n"
      "    --plan=*|--record=*|--html=*|--tls-*=*|--token-file=*) "
      "COMPREPLY=($(compgen -f -- \"${cur#*=}\")); return ;;\n"
      "    -*) COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
      "        [[ \"${COMPREPLY[0]}\" == *= ]] && compopt -o nospace\n"
      "        return ;;\n"
      "  esac\n"
      "  case \"$command\" in\n"
      "    help) COMPREPLY=($(compgen -W \"",
      JoinWords(names, ""),
      "\" -- \"$cur\")) ;;\n"
      "    completion) COMPREPLY=($(compgen -W \"bash\" -- \"$cur\")) ;;\n"
      "    config) COMPREPLY=($(compgen -W \"view get-contexts current-context set-context "
      "use-context delete-context\" -- \"$cur\")) ;;\n"
      "    report) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
      "  esac\n"
      "}\n"
      "complete -F _memloadctl memloadctl\n");
}

int RunCli(const std::vector<std::string>& args, const CliIo& io) {
  const std::string word = FindCommandWord(args);
  // --help anywhere (before a bare --) shows help, whatever else is wrong.
  bool wants_help = false;
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    wants_help |= args[i] == "--help" || args[i] == "-h";
  }
  const CommandSpec* command = word.empty() ? nullptr : FindCommand(word);
  if (command == nullptr) {
    // No command (or an unknown one): only --help, --version and the output flags apply.
    absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, "", FlagsOfGroup(FlagGroup::kOutput));
    const ParsedArgs none;
    Invocation inv{parsed.ok() ? *parsed : none, io, "",
                   parsed.ok() && parsed->Text("output") == "json", CommandEnv()};
    if (!word.empty()) return inv.UsageError(UnknownCommand(word));
    if (wants_help) {
      *io.out << (AsksForJson(args) ? HelpJson("") : OverviewHelp());
      return kExitOk;
    }
    if (!parsed.ok()) return inv.UsageError(parsed.status());
    if (parsed->version()) return RunVersionCommand(inv);
    *io.err << OverviewHelp();
    return kExitUsage;
  }
  if (wants_help) {
    *io.out << (AsksForJson(args) ? HelpJson(command->name) : CommandHelp(command->name));
    return kExitOk;
  }
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, command->name, AllowedFlags(*command));
  if (!parsed.ok()) {
    ParsedArgs empty;
    const bool json = AsksForJson(args);
    Invocation inv{empty, io, std::string(command->name), json, CommandEnv()};
    return inv.UsageError(parsed.status());
  }
  const std::string output = parsed->Text("output");
  Invocation inv{*parsed, io, std::string(command->name), output == "json", CommandEnv()};
  if (output != "json" && output != "table") {
    inv.json = false;
    return inv.UsageError(absl::InvalidArgumentError(
        absl::StrCat(parsed->Typed("output"), "=\"", output, "\": want table or json")));
  }
  if (parsed->version()) return RunVersionCommand(inv);
  SetTableHeaders(!parsed->Bool("no-headers"));
  if (command->agents) {
    if (absl::Status status = CheckOperands(inv, 0); !status.ok()) return inv.UsageError(status);
    if (absl::Status status = BuildEnv(inv); !status.ok()) return inv.UsageError(status);
  }
  return command->run(inv);
}

}  // namespace controller
}  // namespace memload
