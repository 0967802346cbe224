#include "core/cli/flag_values.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/quoted.h"
#include "core/size.h"

namespace memload {
namespace {

bool ValidLabelText(absl::string_view text, bool key) {
  if (text.empty() ? key : false) return false;
  if (text.size() > 63) return false;
  for (char c : text) {
    const bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                    c == '-' || (key && c == '/');
    if (!ok) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SplitLabels(
    absl::string_view text) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::set<absl::string_view> keys;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return pairs;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    const size_t equals = entry.find('=');
    if (equals == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", Quoted(entry), " is not of the form key=value"));
    }
    const absl::string_view key = entry.substr(0, equals);
    if (!keys.insert(key).second) {
      return absl::InvalidArgumentError(absl::StrCat("label ", Quoted(key), " given twice"));
    }
    pairs.emplace_back(std::string(key), std::string(entry.substr(equals + 1)));
  }
  return pairs;
}

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(absl::string_view text) {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> pairs = SplitLabels(text);
  if (!pairs.ok()) return pairs.status();
  std::map<std::string, std::string> labels;
  for (auto& [key, value] : *pairs) {
    if (!ValidLabelText(key, /*key=*/true) || !ValidLabelText(value, /*key=*/false)) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", Quoted(absl::StrCat(key, "=", value)),
                       ": keys are 1-63 of [A-Za-z0-9._/-], values up to 63 of [A-Za-z0-9._-]"));
    }
    labels.emplace(std::move(key), std::move(value));
  }
  return labels;
}

std::map<std::string, std::string> ParseLabelLines(absl::string_view contents,
                                                   std::vector<std::string>* skipped) {
  std::map<std::string, std::string> labels;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    absl::StatusOr<std::map<std::string, std::string>> one = ParseLabels(line);
    if (one.ok() && one->size() == 1 && !labels.count(one->begin()->first)) {
      labels.insert(*one->begin());
    } else {
      skipped->push_back(std::string(line));
    }
  }
  return labels;
}

absl::StatusOr<uint64_t> SizeOrPercent::Resolve(uint64_t whole) const {
  if (bytes.has_value()) return *bytes;
  return PercentOf(percent.value_or(0), whole);
}

std::optional<double> ParsePercentNumber(absl::string_view number) {
  double percent = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(number), &percent) || !std::isfinite(percent)) {
    return std::nullopt;
  }
  return percent;
}

absl::StatusOr<SizeOrPercent> ParseSizeOrPercent(absl::string_view text) {
  SizeOrPercent result;
  absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (absl::ConsumeSuffix(&trimmed, "%")) {
    const std::optional<double> percent = ParsePercentNumber(trimmed);
    if (!percent.has_value() || *percent <= 0 || *percent > 100) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid percentage \"", text, "\": want a number in (0, 100] then %"));
    }
    result.percent = *percent;
    return result;
  }
  absl::StatusOr<uint64_t> bytes = ParseSize(trimmed);
  if (!bytes.ok()) return bytes.status();
  result.bytes = *bytes;
  return result;
}

std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-' || arg[1] != '-') continue;
    const size_t name_end = std::min(arg.find('='), arg.size());
    for (size_t k = 2; k < name_end; ++k) {
      if (arg[k] == '-') arg[k] = '_';
    }
  }
  return args;
}

}  // namespace memload
