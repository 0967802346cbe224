#include "core/cli/flag_args.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "core/cli/did_you_mean.h"

namespace memload {
namespace {

// The binary's own flags (not those of absl or other libraries), underscored.
std::vector<std::string> OwnFlagNames() {
  std::vector<std::string> names;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "absl/")) continue;
    names.emplace_back(name);
  }
  return names;
}

std::string Dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

bool HasArg(const std::vector<char*>& args, std::initializer_list<absl::string_view> wanted) {
  for (size_t i = 1; i < args.size(); ++i) {
    const absl::string_view arg = args[i];
    if (arg == "--") break;
    for (absl::string_view one : wanted) {
      if (arg == one) return true;
    }
  }
  return false;
}

}  // namespace

absl::Status CheckFlagArgs(const std::vector<char*>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") break;
    if (arg == "-h") continue;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    const size_t equals = arg.find('=');
    const absl::string_view typed_name = arg.substr(0, equals);
    const std::string typed = absl::StrCat(
        absl::string_view(args[i]).substr(0, absl::string_view(args[i]).size() - arg.size()),
        typed_name);  // "--node-name"
    const std::string name = absl::StrReplaceAll(typed_name, {{"-", "_"}});
    // absl's own flags (--help, --flagfile, ...) are absl's to handle.
    static const std::set<absl::string_view> kAbslFlags = {
        "help",     "helpfull",        "helpshort", "helppackage", "version",
        "flagfile", "only_check_args", "fromenv",   "tryfromenv",  "undefok"};
    if (kAbslFlags.count(name) > 0) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no") && equals == absl::string_view::npos) {
      flag = absl::FindCommandLineFlag(name.substr(2));  // --noexpect_oom
      if (flag != nullptr && flag->IsOfType<bool>()) continue;
      flag = nullptr;
    }
    if (flag == nullptr) {
      std::string message = absl::StrCat("unknown flag ", typed);
      const std::vector<std::string> own = OwnFlagNames();
      const std::vector<absl::string_view> candidates(own.begin(), own.end());
      if (std::optional<std::string> close = DidYouMean(name, candidates)) {
        absl::StrAppend(&message, " (did you mean --", Dashed(*close), "?)");
      }
      return absl::InvalidArgumentError(message);
    }
    if (flag->IsOfType<bool>() && equals == absl::string_view::npos) continue;
    absl::string_view value;
    if (equals != absl::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];  // "--timeout 5s"
    } else {
      return absl::InvalidArgumentError(absl::StrCat(typed, " needs a value"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(typed, "=\"", value, "\": ", error));
    }
  }
  return absl::OkStatus();
}

bool WantsHelp(const std::vector<char*>& args) {
  return HasArg(args, {"--help", "-h", "--helpfull", "-help"});
}

bool WantsVersion(const std::vector<char*>& args) { return HasArg(args, {"--version"}); }

std::string FlagsHelp(absl::string_view summary, absl::string_view file_suffix) {
  std::vector<std::pair<std::string, std::string>> lines;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::EndsWith(flag->Filename(), file_suffix)) continue;
    std::string left = absl::StrCat("  --", Dashed(name));
    const bool is_bool = flag->IsOfType<bool>();
    if (!is_bool) absl::StrAppend(&left, "=VALUE");
    std::string right = flag->Help();
    const std::string value = flag->DefaultValue();
    if (!is_bool && !value.empty()) absl::StrAppend(&right, " (default ", value, ")");
    lines.emplace_back(std::move(left), std::move(right));
  }
  std::sort(lines.begin(), lines.end());
  lines.emplace_back("  -h, --help", "this help");
  lines.emplace_back("  --version", "print the version");
  size_t width = 0;
  for (const auto& line : lines) width = std::max(width, line.first.size());
  std::string out = absl::StrCat(summary, "\n\nFlags (dashes or underscores alike):\n");
  for (const auto& [left, right] : lines) {
    absl::StrAppend(&out, left, std::string(width - left.size() + 2, ' '), right, "\n");
  }
  return out;
}

}  // namespace memload
