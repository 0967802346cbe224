// memloadctl's command line: one table of every flag (name, value, default, help); its
// plan flags are made from the plan builder's PlanFlagTable(), the only list of them (a
// plan flag added there is parsed, shown in help and completed without a change here), and a parser
// that checks arguments against the flags of one command. memloadctl does not use absl flags: every
// command has its own flag list, help and completion come from the same table, and every usage
// error names the flag exactly as the user typed it.
//
//   absl::StatusOr<ParsedArgs> args = ParseArgs(argv_strings, "start", StartFlagNames());
//   if (!args.ok()) { ...exit 2 with args.status().message()... }
//   std::string target = args->Text("target");
//   absl::Duration timeout = args->Duration("timeout");
//
// Syntax: --name=value, --name value, --name (a bool: true), --no-name (a bool: false),
// -o json / -ojson / -o=json (short names), and `--` ends the flags. Names may be written
// with dashes or underscores (--plan-id = --plan_id). A flag given twice is an error (the
// second would silently win otherwise), as is an unknown flag (with a did-you-mean), a
// flag of another command, and a value its type refuses.
//
// Thread-safety: the table is immutable; the functions are thread-safe.
#ifndef MEMLOAD_CONTROLLER_CLI_FLAGS_H_
#define MEMLOAD_CONTROLLER_CLI_FLAGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controller/plan_builder.h"
#include "core/cli/did_you_mean.h"

namespace memload {
namespace controller {

enum class FlagType { kText, kBool, kInt, kDuration };

// Help shows flags by group, the command's own first.
enum class FlagGroup { kCommand, kPlan, kRollout, kConnection, kOutput };

struct FlagSpec {
  absl::string_view name;  // Dashed: "plan-id".
  char short_name = 0;     // 'o' for -o; 0 = none.
  FlagType type = FlagType::kText;
  FlagGroup group = FlagGroup::kCommand;
  absl::string_view value_name;     // "ID" in "--plan-id=ID"; empty for bools.
  absl::string_view default_value;  // As text; parsed by the type. "" = unset.
  absl::string_view help;           // One line.
  int64_t min = 0;                  // kInt: the accepted range.
  int64_t max = 0;
  // For help only, when it differs from default_value: what an unset flag means (plan
  // flags: "1MiB" for --block-size, which stays unset so that a plan file's value stands).
  absl::string_view shown_default;
  // Plan flags: their entry of the plan builder's PlanFlagTable() (the PlanFlags field the
  // value fills, the kinds it applies to), so the plan builder reads what this parsed.
  const PlanFlagInfo* plan = nullptr;
};

// Every flag memloadctl knows, in help order.
const std::vector<FlagSpec>& AllFlags();

// The flag named `name` (dashes or underscores, without leading dashes); null if none.
const FlagSpec* FindFlag(absl::string_view name);

// Names (dashed) of the flags in `group`, in table order.
std::vector<absl::string_view> FlagsOfGroup(FlagGroup group);

// What a command line said, after ParseArgs checked it.
class ParsedArgs {
 public:
  // Positional arguments: the command first, then its operands.
  const std::vector<std::string>& positional() const { return positional_; }
  bool help() const { return help_; }        // --help or -h.
  bool version() const { return version_; }  // --version.

  // Whether the flag was given (names dashed, as in the table).
  bool Has(absl::string_view name) const;
  // The value given, or the table's default. Only for flags of the command (else "").
  std::string Text(absl::string_view name) const;
  bool Bool(absl::string_view name) const;
  int64_t Int(absl::string_view name) const;
  absl::Duration Duration(absl::string_view name) const;
  // How the user spelt the flag ("--plan_id", "-o"); "--name" when not given.
  std::string Typed(absl::string_view name) const;
  // Names of the flags given, dashed.
  std::set<std::string> GivenNames() const;

  // For the parser and for tests.
  void Set(absl::string_view name, std::string value, std::string typed);
  std::vector<std::string>* mutable_positional() { return &positional_; }
  void set_help(bool help) { help_ = help; }
  void set_version(bool version) { version_ = version; }

 private:
  std::vector<std::string> positional_;
  bool help_ = false;
  bool version_ = false;
  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, std::string, std::less<>> typed_;
};

// The command word in `args` (args[0] is the program): the first positional argument,
// skipping flags and their separate values. "" when there is none. Never fails: unknown
// flags are taken to have no separate value.
std::string FindCommandWord(const std::vector<std::string>& args);

// Parses args[1..] against `allowed` (dashed names). --help/-h and --version are always
// accepted. InvalidArgument, naming the flag as typed, for: an unknown flag (with a
// suggestion when one is close: "unknown flag --taget (did you mean --target?)"), a flag
// not in `allowed` ("--all does not apply to usage"; `command` names it), a flag given
// twice, a missing value, a value its type refuses, an int outside its range.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     absl::string_view command,
                                     const std::vector<absl::string_view>& allowed);

// Fills PlanFlags from the plan flags given (text, toggles and explicitly_set with the
// plan builder's underscore names).
PlanFlags PlanFlagsFrom(const ParsedArgs& args);

// Rewrites "--plan_id"-style flag names in `message` (the plan builder's spelling) into
// the spelling the user typed, or the dashed form for flags not given.
std::string EchoFlagsAsTyped(absl::string_view message, const ParsedArgs& args);

// Help lines for `names`, grouped ("Flags:", "Plan flags:", ...): "  --name=VALUE  help
// (default X)", aligned.
std::string FormatFlagHelp(const std::vector<absl::string_view>& names);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_CLI_FLAGS_H_
