#include "controller/cli_flags.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace memload {
namespace controller {
namespace {

std::string Dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

using FT = FlagType;
using FG = FlagGroup;

FlagSpec Text(absl::string_view name, FlagGroup group, absl::string_view value_name,
              absl::string_view default_value, absl::string_view help) {
  FlagSpec flag;
  flag.name = name;
  flag.group = group;
  flag.value_name = value_name;
  flag.default_value = default_value;
  flag.help = help;
  return flag;
}

FlagSpec Bool(absl::string_view name, FlagGroup group, absl::string_view help) {
  FlagSpec flag = Text(name, group, "", "false", help);
  flag.type = FT::kBool;
  return flag;
}

FlagSpec Int(absl::string_view name, FlagGroup group, absl::string_view default_value, int64_t min,
             int64_t max, absl::string_view help) {
  FlagSpec flag = Text(name, group, "N", default_value, help);
  flag.type = FT::kInt;
  flag.min = min;
  flag.max = max;
  return flag;
}

FlagSpec Dur(absl::string_view name, FlagGroup group, absl::string_view default_value,
             absl::string_view help) {
  FlagSpec flag = Text(name, group, "DURATION", default_value, help);
  flag.type = FT::kDuration;
  return flag;
}

// "retained: " before the help of a flag that applies to some kinds only.
std::string KindsPrefix(int kinds) {
  if (kinds == kAnyKind) return "";
  std::string prefix;
  for (auto [bit, name] : {std::pair<int, const char*>{kRetainedKind, "retained"},
                           {kUtilizationKind, "utilization"},
                           {kStreamingKind, "streaming"}}) {
    if ((kinds & bit) != 0) absl::StrAppend(&prefix, prefix.empty() ? "" : ", ", name);
  }
  return absl::StrCat(prefix, ": ");
}

// The plan flags, made from the plan builder's PlanFlagTable() (the only list of them):
// dashed name, value name, help (with the kinds it applies to) and, for help only, what an
// unset flag means. The names and help texts are kept here for the process's lifetime.
std::vector<FlagSpec> PlanFlagSpecs() {
  static auto* const kText = new std::deque<std::string>();
  std::vector<FlagSpec> specs;
  for (const PlanFlagInfo& info : PlanFlagTable()) {
    kText->push_back(Dashed(info.name));
    const absl::string_view name = kText->back();
    // Help that names kinds itself ("retained: SIZE...; utilization: N%...") needs no prefix.
    const bool names_kinds = absl::StartsWith(info.help, "retained:") ||
                             absl::StartsWith(info.help, "utilization:") ||
                             absl::StartsWith(info.help, "streaming:");
    kText->push_back(absl::StrCat(names_kinds ? "" : KindsPrefix(info.kinds), info.help));
    const absl::string_view help = kText->back();
    FlagSpec flag = info.toggle != nullptr ? Bool(name, FG::kPlan, help)
                                           : Text(name, FG::kPlan, info.value_name, "", help);
    flag.shown_default = info.default_text;
    flag.plan = &info;
    specs.push_back(flag);
  }
  return specs;
}

std::vector<FlagSpec> MakeFlags() {
  std::vector<FlagSpec> flags = {
      // Where and how (every command that talks to agents).
      Text("targets", FG::kConnection, "LIST", "",
           "agents: host:port,... | @FILE | dns:///NAME:PORT | dns://SERVER:PORT/NAME:PORT "
           "(env MEMLOAD_TARGETS)"),
      Text("context", FG::kConnection, "NAME", "",
           "take targets, selector and TLS/token files from this context of the config file "
           "(env MEMLOAD_CONTEXT; default: its current context)"),
      Text("selector", FG::kConnection, "SELECTOR", "",
           "keep agents whose labels match k=v,k2!=v2 (env MEMLOAD_SELECTOR)"),
      // 0 = AutoParallelism (controller/fanout.h): targets / 8 within 256..4096. A call in
      // flight costs a few KiB and no thread, while stops wait for the agent to see its
      // worker exit; at 64, start+stop over 1,000 agents took 1.7-2x a raw fan-out, and at
      // 256 a warm usage over 10,000 about 2x (//controller:fanout_benchmark).
      Int("parallelism", FG::kConnection, "0", 0, 100000,
          "calls in flight at once (0: targets/8, at least 256, at most 4096)"),
      Dur("timeout", FG::kConnection, "10s", "deadline of each call"),
      // Backoff is capped at 2 s: 10 retries is ~20 s per call, not "until killed".
      Int("retries", FG::kConnection, "2", 0, 10,
          "retries of idempotent calls on UNAVAILABLE/DEADLINE_EXCEEDED"),
      Text("tls-ca", FG::kConnection, "FILE", "",
           "PEM CA certificate(s) of the agents: talk TLS (env MEMLOAD_TLS_CA)"),
      Text("tls-cert", FG::kConnection, "FILE", "",
           "PEM client certificate for mutual TLS, with --tls-key (env MEMLOAD_TLS_CERT)"),
      Text("tls-key", FG::kConnection, "FILE", "",
           "PEM private key of --tls-cert, unencrypted (env MEMLOAD_TLS_KEY)"),
      Text("tls-server-name", FG::kConnection, "NAME", "",
           "name the agents' certificates carry, instead of each target's host "
           "(env MEMLOAD_TLS_SERVER_NAME)"),
      Text("token-file", FG::kConnection, "FILE", "",
           "file holding the bearer token (env MEMLOAD_TOKEN_FILE; or the token itself in "
           "MEMLOAD_TOKEN)"),
      // Output.
      Text("output", FG::kOutput, "FORMAT", "table", "table (for people) or json (for scripts)"),
      Bool("no-headers", FG::kOutput, "tables without their header lines"),
      // Rollout.
      Text("rollout", FG::kRollout, "HOW", "all", "all | serial | batch:N | batch:N%"),
      Text("stagger", FG::kRollout, "DURATION", "0s", "pause between rollout waves"),
      Text("max-failures", FG::kRollout, "N|N%", "",
           "stop rolling out (and release) after N or N% failures"),
      // One command's own.
      Bool("dry-run", FG::kCommand,
           "show what each node would get (percentages resolved from its usage); start "
           "nothing"),
      Text("for", FG::kCommand, "DURATION", "",
           "keep the plan this long, then stop it (default: until it ends, or Ctrl-C)"),
      Dur("interval", FG::kCommand, "1s", "refresh interval"),
      Int("count", FG::kCommand, "0", 0, 1000000000,
          "frames to show, then exit (0 = until Ctrl-C)"),
      Bool("all", FG::kCommand, "every running plan"),
      Text("record", FG::kCommand, "FILE", "", "write samples and events to FILE (JSON Lines)"),
      Text("html", FG::kCommand, "FILE", "", "write the HTML page to FILE"),
      Text("pods", FG::kCommand, "FILE|-", "",
           "one plan per pod of `kubectl get pods -o json` (FILE, or - for stdin), placed in "
           "the pod's container on the agent of its node"),
      Text("container", FG::kCommand, "NAME", "",
           "with --pods: the container to load (default: the pod's only one)"),
  };
  // The plan flags after the output flags.
  const std::vector<FlagSpec> plan = PlanFlagSpecs();
  auto rollout = std::find_if(flags.begin(), flags.end(),
                              [](const FlagSpec& flag) { return flag.group == FG::kRollout; });
  flags.insert(rollout, plan.begin(), plan.end());
  // -o for --output.
  for (FlagSpec& flag : flags) {
    if (flag.name == "output") flag.short_name = 'o';
  }
  return flags;
}

bool ParseBoolText(absl::string_view text, bool* value) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true" || lower == "1" || lower == "yes") {
    *value = true;
    return true;
  }
  if (lower == "false" || lower == "0" || lower == "no") {
    *value = false;
    return true;
  }
  return false;
}

// Checks `value` against the flag's type; the error quotes the flag as typed.
absl::Status CheckValue(const FlagSpec& flag, absl::string_view typed, absl::string_view value) {
  auto error = [&](absl::string_view want) {
    return absl::InvalidArgumentError(absl::StrCat(typed, "=\"", value, "\": ", want));
  };
  switch (flag.type) {
    case FT::kText:
      return absl::OkStatus();
    case FT::kBool: {
      bool parsed = false;
      return ParseBoolText(value, &parsed) ? absl::OkStatus() : error("want true or false");
    }
    case FT::kInt: {
      int64_t parsed = 0;
      if (!absl::SimpleAtoi(value, &parsed) || parsed < flag.min || parsed > flag.max) {
        return error(absl::StrCat("want an integer in ", flag.min, "..", flag.max));
      }
      return absl::OkStatus();
    }
    case FT::kDuration: {
      absl::Duration parsed;
      if (!absl::ParseDuration(value, &parsed)) {
        return error("want a duration such as 500ms, 10s, 1m30s");
      }
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

// One argument that looks like a flag, split.
struct FlagArg {
  std::string typed;  // "--plan_id", "-o", "--no-mlock" (the name part, as typed)
  std::string name;   // Dashed, without dashes: "plan-id", "o" for a short flag.
  bool is_short = false;
  std::optional<std::string> value;  // After '=' (or glued to a short flag).
};

bool LooksLikeFlag(absl::string_view arg) {
  return arg.size() > 1 && arg[0] == '-' && arg != "--" &&
         !absl::ascii_isdigit(static_cast<unsigned char>(arg[1]));
}

FlagArg SplitFlag(absl::string_view arg) {
  FlagArg flag;
  if (absl::StartsWith(arg, "--")) {
    const size_t equals = arg.find('=');
    flag.typed = std::string(arg.substr(0, equals));
    flag.name = Dashed(flag.typed.substr(2));
    if (equals != absl::string_view::npos) flag.value = std::string(arg.substr(equals + 1));
    return flag;
  }
  // -o json, -ojson, -o=json, -h.
  flag.is_short = true;
  flag.typed = std::string(arg.substr(0, 2));
  flag.name = std::string(arg.substr(1, 1));
  absl::string_view rest = arg.substr(2);
  if (!rest.empty()) {
    absl::ConsumePrefix(&rest, "=");
    flag.value = std::string(rest);
  }
  return flag;
}

const FlagSpec* FindShort(char c) {
  for (const FlagSpec& flag : AllFlags()) {
    if (flag.short_name == c) return &flag;
  }
  return nullptr;
}

}  // namespace

const std::vector<FlagSpec>& AllFlags() {
  static const auto* const kFlags = new std::vector<FlagSpec>(MakeFlags());
  return *kFlags;
}

const FlagSpec* FindFlag(absl::string_view name) {
  const std::string dashed = Dashed(name);
  for (const FlagSpec& flag : AllFlags()) {
    if (flag.name == dashed) return &flag;
  }
  return nullptr;
}

std::vector<absl::string_view> FlagsOfGroup(FlagGroup group) {
  std::vector<absl::string_view> names;
  for (const FlagSpec& flag : AllFlags()) {
    if (flag.group == group) names.push_back(flag.name);
  }
  return names;
}

bool ParsedArgs::Has(absl::string_view name) const { return values_.count(name) > 0; }

std::string ParsedArgs::Text(absl::string_view name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  const FlagSpec* flag = FindFlag(name);
  return flag != nullptr ? std::string(flag->default_value) : "";
}

bool ParsedArgs::Bool(absl::string_view name) const {
  bool value = false;
  ParseBoolText(Text(name), &value);
  return value;
}

int64_t ParsedArgs::Int(absl::string_view name) const {
  int64_t value = 0;
  if (!absl::SimpleAtoi(Text(name), &value)) return 0;
  return value;
}

absl::Duration ParsedArgs::Duration(absl::string_view name) const {
  absl::Duration value = absl::ZeroDuration();
  if (!absl::ParseDuration(Text(name), &value)) return absl::ZeroDuration();
  return value;
}

std::string ParsedArgs::Typed(absl::string_view name) const {
  if (auto it = typed_.find(name); it != typed_.end()) return it->second;
  return absl::StrCat("--", name);
}

std::set<std::string> ParsedArgs::GivenNames() const {
  std::set<std::string> names;
  for (const auto& [name, value] : values_) names.insert(name);
  return names;
}

void ParsedArgs::Set(absl::string_view name, std::string value, std::string typed) {
  values_[std::string(name)] = std::move(value);
  typed_[std::string(name)] = std::move(typed);
}

std::string FindCommandWord(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") return i + 1 < args.size() ? args[i + 1] : "";
    if (!LooksLikeFlag(arg)) return arg;
    const FlagArg flag = SplitFlag(arg);
    const FlagSpec* spec = flag.is_short ? FindShort(flag.name[0]) : FindFlag(flag.name);
    if (spec != nullptr && spec->type != FT::kBool && !flag.value.has_value()) ++i;
  }
  return "";
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     absl::string_view command,
                                     const std::vector<absl::string_view>& allowed) {
  ParsedArgs parsed;
  const std::set<absl::string_view> allowed_set(allowed.begin(), allowed.end());
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      parsed.mutable_positional()->insert(parsed.mutable_positional()->end(), args.begin() + i + 1,
                                          args.end());
      break;
    }
    if (!LooksLikeFlag(arg)) {
      parsed.mutable_positional()->push_back(arg);
      continue;
    }
    FlagArg flag = SplitFlag(arg);
    if (flag.name == "help" || (flag.is_short && flag.name == "h")) {
      parsed.set_help(true);
      continue;
    }
    if (flag.name == "version" && !flag.is_short) {
      parsed.set_version(true);
      continue;
    }
    const FlagSpec* spec = flag.is_short ? FindShort(flag.name[0]) : FindFlag(flag.name);
    bool negated = false;
    if (spec == nullptr && !flag.is_short && !flag.value.has_value()) {
      // --no-mlock, --nomlock: a bool set to false.
      absl::string_view rest = flag.name;
      if (absl::ConsumePrefix(&rest, "no")) {
        absl::ConsumePrefix(&rest, "-");
        const FlagSpec* base = FindFlag(rest);
        if (base != nullptr && base->type == FT::kBool) {
          spec = base;
          negated = true;
        }
      }
    }
    if (spec == nullptr) {
      std::vector<absl::string_view> candidates(allowed.begin(), allowed.end());
      candidates.push_back("help");
      std::string message = absl::StrCat("unknown flag ", flag.typed);
      if (!flag.is_short) {
        if (std::optional<std::string> close = DidYouMean(flag.name, candidates)) {
          absl::StrAppend(&message, " (did you mean --", *close, "?)");
        }
      }
      return absl::InvalidArgumentError(message);
    }
    if (allowed_set.count(spec->name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag.typed, " does not apply to ", command.empty() ? "memloadctl" : command,
                       " (memloadctl help ", command.empty() ? "" : command,
                       command.empty() ? "" : " ", "lists its flags)"));
    }
    std::string value;
    if (negated) {
      value = "false";
    } else if (flag.value.has_value()) {
      value = *flag.value;
    } else if (spec->type == FT::kBool) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];  // "--timeout 5s", "-o json"
    } else {
      return absl::InvalidArgumentError(absl::StrCat(flag.typed, " needs a value"));
    }
    if (parsed.Has(spec->name)) {
      return absl::InvalidArgumentError(absl::StrCat(flag.typed, " given twice (\"",
                                                     parsed.Text(spec->name), "\", then \"", value,
                                                     "\"): give it once"));
    }
    if (absl::Status status = CheckValue(*spec, flag.typed, value); !status.ok()) return status;
    parsed.Set(spec->name, std::move(value), flag.typed);
  }
  return parsed;
}

PlanFlags PlanFlagsFrom(const ParsedArgs& args) {
  PlanFlags plan;
  for (const FlagSpec& flag : AllFlags()) {
    if (flag.group != FG::kPlan || !args.Has(flag.name)) continue;
    if (flag.plan == nullptr) continue;
    if (flag.plan->text != nullptr) plan.*flag.plan->text = args.Text(flag.name);
    if (flag.plan->toggle != nullptr) plan.*flag.plan->toggle = args.Bool(flag.name);
    plan.explicitly_set.insert(std::string(flag.plan->name));
  }
  return plan;
}

std::string EchoFlagsAsTyped(absl::string_view message, const ParsedArgs& args) {
  std::string out(message);
  // Longest names first, so that "--target" does not rewrite part of "--targets".
  std::vector<const FlagSpec*> flags;
  for (const FlagSpec& flag : AllFlags()) flags.push_back(&flag);
  std::sort(flags.begin(), flags.end(),
            [](const FlagSpec* a, const FlagSpec* b) { return a->name.size() > b->name.size(); });
  for (const FlagSpec* flag : flags) {
    if (flag->name.find('-') == absl::string_view::npos) continue;
    const std::string underscored =
        absl::StrCat("--", absl::StrReplaceAll(flag->name, {{"-", "_"}}));
    out = absl::StrReplaceAll(out, {{underscored, args.Typed(flag->name)}});
  }
  return out;
}

std::string FormatFlagHelp(const std::vector<absl::string_view>& names) {
  const std::vector<std::pair<FlagGroup, absl::string_view>> groups = {
      {FG::kCommand, "Flags"},
      {FG::kPlan, "Plan flags"},
      {FG::kRollout, "Rollout flags"},
      {FG::kConnection, "Connection flags"},
      {FG::kOutput, "Output flags"}};
  std::vector<std::pair<std::string, std::string>> lines;  // (left, right); "" left = title
  for (const auto& [group, title] : groups) {
    bool titled = false;
    for (absl::string_view name : names) {
      const FlagSpec* flag = FindFlag(name);
      if (flag == nullptr || flag->group != group) continue;
      if (!titled) {
        lines.emplace_back("", absl::StrCat(lines.empty() ? "" : "\n", title, ":"));
        titled = true;
      }
      std::string left = "  ";
      if (flag->short_name != 0)
        absl::StrAppend(&left, "-", std::string(1, flag->short_name), ", ");
      absl::StrAppend(&left, "--", flag->name);
      if (flag->type != FT::kBool) absl::StrAppend(&left, "=", flag->value_name);
      std::string right(flag->help);
      const absl::string_view shown =
          flag->shown_default.empty() ? flag->default_value : flag->shown_default;
      if (!shown.empty() && flag->type != FT::kBool) {
        absl::StrAppend(&right, " (default ", shown, ")");
      }
      lines.emplace_back(std::move(left), std::move(right));
    }
  }
  lines.emplace_back("  -h, --help", "this help");
  size_t width = 0;
  for (const auto& [left, right] : lines) width = std::max(width, left.size());
  std::string out;
  // Help text wraps at 100 columns, continued under itself.
  constexpr size_t kColumns = 100;
  const size_t room = kColumns > width + 2 + 30 ? kColumns - width - 2 : 30;
  for (const auto& [left, right] : lines) {
    if (left.empty()) {
      absl::StrAppend(&out, right, "\n");
      continue;
    }
    absl::StrAppend(&out, left, std::string(width - left.size() + 2, ' '));
    absl::string_view rest = right;
    while (rest.size() > room) {
      size_t cut = rest.rfind(' ', room);
      if (cut == absl::string_view::npos || cut == 0) cut = room;
      absl::StrAppend(&out, rest.substr(0, cut), "\n", std::string(width + 2, ' '));
      rest = absl::StripLeadingAsciiWhitespace(rest.substr(cut));
    }
    absl::StrAppend(&out, rest, "\n");
  }
  return out;
}

}  // namespace controller
}  // namespace memload
