#include "controller/plan_builder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "core/base/quoted.h"
#include "core/base/status_macros.h"
#include "core/base/utf8.h"
#include "core/bounded_read.h"
#include "core/cli/flag_values.h"
#include "core/size.h"
#include "google/protobuf/util/json_util.h"
#include "proto/core_enums.h"
#include "proto/plan_rules.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

using plan_rules::AmountProblem;
using plan_rules::DurationProblem;
using plan_rules::FieldError;
using plan_rules::kMaxStreamWorkers;
using plan_rules::kUntouchedUtilization;
using plan_rules::OomScoreAdjProblem;
using plan_rules::PercentProblem;
using plan_rules::PlanIdProblem;
using plan_rules::WindowProblem;
using plan_rules::WorkersProblem;

bool Given(const PlanFlags& flags, const PlanFlagInfo& info) {
  if (flags.explicitly_set.count(std::string(info.name)) > 0) return true;
  return info.text != nullptr ? !(flags.*info.text).empty() : flags.*info.toggle;
}

// By field, so that a misspelt flag does not compile (rather than failing at run time).
bool Given(const PlanFlags& flags, std::string PlanFlags::*text) {
  for (const PlanFlagInfo& info : PlanFlagTable()) {
    if (info.text == text) return Given(flags, info);
  }
  return !(flags.*text).empty();  // Unreachable: every text field is in the table.
}
bool Given(const PlanFlags& flags, bool PlanFlags::*toggle) {
  for (const PlanFlagInfo& info : PlanFlagTable()) {
    if (info.toggle == toggle) return Given(flags, info);
  }
  return flags.*toggle;  // Unreachable: every toggle is in the table.
}

std::string KindsText(int kinds) {
  std::string text;
  for (auto [bit, name] : {std::pair<int, const char*>{kRetainedKind, "retained"},
                           {kUtilizationKind, "utilization"},
                           {kStreamingKind, "streaming"}}) {
    if ((kinds & bit) == 0) continue;
    absl::StrAppend(&text, text.empty() ? "" : " and ", name);
  }
  return text;
}

// --- Errors. Flags quote what the user typed; files name the proto field path. Both end
// with the same description of the problem where they check the same thing.

absl::Status FlagError(absl::string_view name, absl::string_view text, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, "=\"", absl::CHexEscape(text), "\": ", problem));
}

// --- Flag parsers.

absl::StatusOr<uint64_t> FlagSize(absl::string_view name, const std::string& text) {
  absl::StatusOr<uint64_t> bytes = ParseSize(text);
  if (!bytes.ok()) return FlagError(name, text, bytes.status().message());
  return *bytes;
}

absl::StatusOr<absl::Duration> FlagDuration(absl::string_view name, const std::string& text,
                                            bool positive) {
  absl::Duration duration;
  if (!absl::ParseDuration(std::string(absl::StripAsciiWhitespace(text)), &duration) ||
      duration == absl::InfiniteDuration() || duration == -absl::InfiniteDuration()) {
    return FlagError(name, text, "not a duration: want e.g. 500ms, 30s, 5m, 1h30m");
  }
  if (std::optional<std::string> problem = DurationProblem(duration, positive)) {
    return FlagError(name, text, *problem);
  }
  return duration;
}

bool IsForever(const std::string& text) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(text)) == "forever";
}

// "64MiB/s" or "64MiB": bytes per second, > 0.
absl::StatusOr<uint64_t> FlagRate(absl::string_view name, const std::string& text) {
  absl::string_view size = absl::StripAsciiWhitespace(text);
  absl::ConsumeSuffix(&size, "/s");
  absl::StatusOr<uint64_t> bytes = ParseSize(size);
  if (!bytes.ok()) return FlagError(name, text, bytes.status().message());
  if (*bytes == 0) return FlagError(name, text, "a rate must be more than 0 bytes per second");
  return *bytes;
}

template <typename Int>
absl::StatusOr<Int> FlagInt(absl::string_view name, const std::string& text,
                            absl::string_view want) {
  Int value;
  if (!absl::SimpleAtoi(text, &value)) {
    // A whole number that does not fit says so, rather than "not a whole number".
    absl::string_view digits = text;
    const bool negative = absl::ConsumePrefix(&digits, "-");
    if (!digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
          return absl::ascii_isdigit(static_cast<unsigned char>(c));
        })) {
      if (negative && !std::numeric_limits<Int>::is_signed) {
        return FlagError(name, text, absl::StrCat("negative: want ", want));
      }
      return FlagError(name, text,
                       negative ? absl::StrCat("smaller than the minimum of ",
                                               std::numeric_limits<Int>::min(), ": want ", want)
                                : absl::StrCat("larger than the maximum of ",
                                               std::numeric_limits<Int>::max(), ": want ", want));
    }
    return FlagError(name, text, absl::StrCat("not a whole number: want ", want));
  }
  return value;
}

// "80" of "80%..." → 80, with the shared range check.
absl::StatusOr<double> FlagPercent(absl::string_view name, const std::string& text,
                                   absl::string_view number, bool allow_100) {
  const std::optional<double> percent = ParsePercentNumber(number);
  if (!percent.has_value()) {
    return FlagError(name, text, "not a percentage: want a number then %, e.g. 80%");
  }
  if (std::optional<std::string> problem = PercentProblem(*percent, allow_100)) {
    return FlagError(name, text, *problem);
  }
  return *percent;
}

absl::StatusOr<v1::Quantity> RetainedTarget(const std::string& text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  v1::Quantity quantity;
  const size_t percent_sign = trimmed.find('%');
  if (percent_sign == absl::string_view::npos) {
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t bytes, FlagSize("target", text));
    quantity.set_bytes(bytes);
    return quantity;
  }
  MEMLOAD_ASSIGN_OR_RETURN(
      double percent,
      FlagPercent("target", text, trimmed.substr(0, percent_sign), /*allow_100=*/true));
  const std::string of = absl::AsciiStrToLower(trimmed.substr(percent_sign + 1));
  if (of.empty() || of == "total") {
    quantity.set_percent_of_total(percent);
  } else if (of == "available") {
    quantity.set_percent_of_available(percent);
  } else if (of == "cgroup") {
    quantity.set_percent_of_cgroup_limit(percent);
  } else {
    return FlagError("target", text,
                     absl::StrCat("unknown percentage suffix \"", absl::CHexEscape(of),
                                  "\": want N%, N%available or N%cgroup"));
  }
  return quantity;
}

absl::Status SetUtilizationTarget(const std::string& text, v1::UtilizationPlan* plan) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  const size_t percent_sign = trimmed.find('%');
  if (percent_sign == absl::string_view::npos) {
    return FlagError("target", text,
                     "utilization plans take a percentage of memory in use, e.g. 80%");
  }
  MEMLOAD_ASSIGN_OR_RETURN(
      double percent,
      FlagPercent("target", text, trimmed.substr(0, percent_sign), /*allow_100=*/false));
  plan->set_target_percent(percent);
  const std::string of = absl::AsciiStrToLower(trimmed.substr(percent_sign + 1));
  if (of == "node") {
    plan->set_reference(v1::UtilizationPlan::REFERENCE_NODE);
  } else if (of == "cgroup") {
    plan->set_reference(v1::UtilizationPlan::REFERENCE_CGROUP);
  } else if (!of.empty()) {
    return FlagError("target", text,
                     absl::StrCat("unknown percentage suffix \"", absl::CHexEscape(of),
                                  "\": want N%, N%node or N%cgroup"));
  }
  return absl::OkStatus();
}

// core's parsers, case-insensitive and trimmed, with the flag quoted in front.
absl::StatusOr<v1::TouchMode> FlagTouch(const std::string& text) {
  absl::StatusOr<TouchMode> mode =
      ParseTouchMode(absl::AsciiStrToLower(absl::StripAsciiWhitespace(text)));
  if (!mode.ok()) return FlagError("touch", text, "want none, page or fill");
  return ToProto(*mode);
}

absl::StatusOr<v1::Backing> FlagBacking(const std::string& text) {
  absl::StatusOr<Backing> backing =
      ParseBacking(absl::AsciiStrToLower(absl::StripAsciiWhitespace(text)));
  if (!backing.ok()) return FlagError("backing", text, "want malloc, mmap or shmem");
  return ToProto(*backing);
}

// Touch, backing and block size: the flags every kind with a set of blocks shares. Unset
// ones stay unset (the proto's defaults), except the block size (see plan_rules::kDefaultBlockSize:
// the CLI fills it in so that what it prints is what runs, and streaming, which requires a block
// size, needs no extra flag).
struct BlockFlags {
  v1::TouchMode touch = v1::TOUCH_MODE_UNSPECIFIED;
  v1::Backing backing = v1::BACKING_UNSPECIFIED;
  uint64_t block_size = plan_rules::kDefaultBlockSize;
};

absl::StatusOr<BlockFlags> ParseBlockFlags(const PlanFlags& flags) {
  BlockFlags out;
  if (Given(flags, &PlanFlags::touch)) {
    MEMLOAD_ASSIGN_OR_RETURN(out.touch, FlagTouch(flags.touch));
  }
  if (Given(flags, &PlanFlags::backing)) {
    MEMLOAD_ASSIGN_OR_RETURN(out.backing, FlagBacking(flags.backing));
  }
  if (Given(flags, &PlanFlags::block_size)) {
    MEMLOAD_ASSIGN_OR_RETURN(out.block_size, FlagSize("block_size", flags.block_size));
    if (out.block_size == 0) {
      return FlagError("block_size", flags.block_size, "must be at least 1 byte");
    }
    if (std::optional<std::string> problem = plan_rules::BlockSizeProblem(out.block_size)) {
      return FlagError("block_size", flags.block_size, *problem);
    }
  }
  return out;
}

// --duration: "forever" or unset → nullopt (run until stopped); otherwise positive.
absl::StatusOr<std::optional<absl::Duration>> RunDuration(const PlanFlags& flags) {
  if (!Given(flags, &PlanFlags::duration) || IsForever(flags.duration)) return std::nullopt;
  return FlagDuration("duration", flags.duration, /*positive=*/true);
}

absl::Status BuildRetained(const PlanFlags& flags, v1::RetainedPlan* plan) {
  MEMLOAD_ASSIGN_OR_RETURN(BlockFlags blocks, ParseBlockFlags(flags));
  plan->set_block_size(blocks.block_size);
  plan->set_touch(blocks.touch);
  plan->set_backing(blocks.backing);
  plan->set_huge_pages(flags.huge_pages);
  plan->set_mlock(flags.mlock);

  if (!Given(flags, &PlanFlags::target)) {
    return absl::InvalidArgumentError(
        "--target is required for --kind=retained: a size (512MiB) or a percentage (80%, "
        "80%available, 80%cgroup)");
  }
  v1::Phase* phase = plan->add_phases();
  MEMLOAD_ASSIGN_OR_RETURN(*phase->mutable_target(), RetainedTarget(flags.target));

  if (Given(flags, &PlanFlags::ramp)) {
    if (absl::EndsWith(absl::StripAsciiWhitespace(flags.ramp), "/s")) {
      MEMLOAD_ASSIGN_OR_RETURN(uint64_t rate, FlagRate("ramp", flags.ramp));
      phase->set_ramp_bytes_per_sec(rate);
    } else {
      MEMLOAD_ASSIGN_OR_RETURN(absl::Duration ramp,
                               FlagDuration("ramp", flags.ramp, /*positive=*/false));
      ToProtoDuration(ramp, phase->mutable_ramp_duration());
    }
  }

  const bool repeats = Given(flags, &PlanFlags::repeat);
  if (repeats) {
    if (IsForever(flags.repeat)) {
      plan->set_repeat_forever(true);
    } else {
      MEMLOAD_ASSIGN_OR_RETURN(uint32_t cycles,
                               FlagInt<uint32_t>("repeat", flags.repeat, "N >= 1 or forever"));
      if (cycles == 0) return FlagError("repeat", flags.repeat, "want N >= 1 or forever");
      plan->set_repeat(cycles);
    }
  }

  if (!Given(flags, &PlanFlags::hold)) {
    // Without --repeat the load stays until stop, Ctrl-C or the lease: what `start` means.
    phase->set_hold_forever(!repeats);
  } else if (IsForever(flags.hold)) {
    if (repeats) {
      return FlagError("hold", flags.hold,
                       "a hold that never ends leaves nothing for --repeat to repeat");
    }
    phase->set_hold_forever(true);
  } else {
    MEMLOAD_ASSIGN_OR_RETURN(absl::Duration hold,
                             FlagDuration("hold", flags.hold, /*positive=*/false));
    ToProtoDuration(hold, phase->mutable_hold());
  }

  if (repeats) {
    // The drop that turns one phase into a sawtooth: release everything, at once.
    plan->add_phases()->mutable_target()->set_bytes(0);
  }
  return absl::OkStatus();
}

absl::Status BuildUtilization(const PlanFlags& flags, v1::UtilizationPlan* plan) {
  MEMLOAD_ASSIGN_OR_RETURN(BlockFlags blocks, ParseBlockFlags(flags));
  if (blocks.touch == v1::TOUCH_MODE_NONE) {
    return FlagError("touch", flags.touch, kUntouchedUtilization);
  }
  plan->set_block_size(blocks.block_size);
  plan->set_touch(blocks.touch);
  plan->set_backing(blocks.backing);
  if (!Given(flags, &PlanFlags::target)) {
    return absl::InvalidArgumentError(
        "--target is required for --kind=utilization: a percentage of memory in use (80%, "
        "80%node, 80%cgroup)");
  }
  MEMLOAD_RETURN_IF_ERROR(SetUtilizationTarget(flags.target, plan));
  MEMLOAD_ASSIGN_OR_RETURN(std::optional<absl::Duration> duration, RunDuration(flags));
  if (duration.has_value()) ToProtoDuration(*duration, plan->mutable_duration());
  return absl::OkStatus();
}

absl::Status BuildStreaming(const PlanFlags& flags, v1::StreamingPlan* plan) {
  MEMLOAD_ASSIGN_OR_RETURN(BlockFlags blocks, ParseBlockFlags(flags));
  plan->set_block_size(blocks.block_size);
  plan->set_touch(blocks.touch);
  plan->set_return_to_os(flags.return_to_os);
  if (Given(flags, &PlanFlags::rate)) {
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t rate, FlagRate("rate", flags.rate));
    plan->set_rate_bytes_per_sec(rate);
  }
  if (Given(flags, &PlanFlags::window)) {
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t window,
                             FlagInt<uint64_t>("window", flags.window, "a block count"));
    if (std::optional<std::string> problem = WindowProblem(window, blocks.block_size)) {
      return FlagError("window", flags.window, *problem);
    }
    plan->set_window(window);
  }
  if (Given(flags, &PlanFlags::workers)) {
    MEMLOAD_ASSIGN_OR_RETURN(uint32_t workers,
                             FlagInt<uint32_t>("workers", flags.workers, "1..64"));
    std::optional<std::string> problem = WorkersProblem(workers);
    if (workers == 0) problem = absl::StrCat("must be 1..", kMaxStreamWorkers, ", got 0");
    if (problem) return FlagError("workers", flags.workers, *problem);
    plan->set_workers(workers);
  }
  if (Given(flags, &PlanFlags::amount)) {
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t amount, FlagSize("amount", flags.amount));
    if (amount == 0) return FlagError("amount", flags.amount, "must be more than 0 bytes");
    if (std::optional<std::string> problem = AmountProblem(amount, blocks.block_size)) {
      return FlagError("amount", flags.amount, *problem);
    }
    plan->set_amount_bytes(amount);
  }
  MEMLOAD_ASSIGN_OR_RETURN(std::optional<absl::Duration> duration, RunDuration(flags));
  if (duration.has_value()) ToProtoDuration(*duration, plan->mutable_duration());
  return absl::OkStatus();
}

// --- Plan files.

// Where `offset` falls in `json`: "LINE:COLUMN", both from 1, the column in bytes.
std::string LineColumn(absl::string_view json, size_t offset) {
  const absl::string_view before = json.substr(0, offset);
  const size_t line_start = before.rfind('\n');
  const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
  const size_t column = line_start == absl::string_view::npos ? offset + 1 : offset - line_start;
  return absl::StrCat(line, ":", column);
}

// A key given twice in one JSON object: protobuf's parser (3.21: no option to refuse it)
// keeps the last value of a field given twice and appends a repeated field given twice —
// in a plan file a setting silently lost — and refuses a map key given twice without
// saying where ("(labels[0]) team: Repeated map key: 'team' is already set."). The scan reads
// the grammar of protobuf's JsonStreamParser — "..." and '...' strings, bare keys
// [A-Za-z_$][A-Za-z0-9_$]*, a trailing comma before } or ], \uXXXX escapes with surrogate
// pairs and \c for any other c (the parser's decoding, so "plan\u0049d" is "planId") —
// and compares keys as the parser resolves them: in a message a key is its field, under
// its JSON name or its proto name (planId = plan_id); in a map (labels), a well-known type
// or under an unknown key it is the decoded text. It stops without a verdict (the parser
// then says what is wrong) at anything else: a syntax error, a number JSON does not allow,
// more than kMaxDepth levels (the parser's own limit for objects is 100). It only ever adds
// an error, never accepts: the parser reads every file the scan passes. One pass over the
// file, which ReadPlanFile bounds (kMaxPlanFileBytes); recursion at most kMaxDepth deep.
class DuplicateKeyScan {
 public:
  explicit DuplicateKeyScan(absl::string_view json) : json_(json) {}

  // The first key given twice ("FILE:LINE:COLUMN: key ... given twice ..."), or nullopt.
  std::optional<std::string> Run(absl::string_view file_name) {
    if (Value(Shape{v1::PlanSpec::descriptor(), false}, 0) || !duplicate_.has_value()) {
      return std::nullopt;
    }
    const Duplicate& d = *duplicate_;
    return absl::StrCat(file_name, ":", LineColumn(json_, d.offset), ": key ", Quoted(d.key),
                        " given twice in one object (first ",
                        d.first == d.key ? "" : absl::StrCat("as ", Quoted(d.first), " "), "at ",
                        LineColumn(json_, d.first_offset), ")");
  }

 private:
  static constexpr int kMaxDepth = 100;

  // What an object holds: a message's fields (`message`), or keys of their own (a map, a
  // well-known type, anything unknown: message null). `map` objects' values are `message`.
  struct Shape {
    const google::protobuf::Descriptor* message = nullptr;
    bool map = false;
  };
  struct Duplicate {
    std::string key, first;
    size_t offset = 0, first_offset = 0;
  };
  struct Seen {
    std::string spelling;
    size_t offset = 0;
  };

  // Messages of google.protobuf (Duration, Struct, wrappers, ...) have JSON forms of their
  // own: their objects' keys are compared as text.
  static const google::protobuf::Descriptor* Plain(const google::protobuf::Descriptor* type) {
    if (type == nullptr || type->file()->package() == "google.protobuf") return nullptr;
    return type;
  }
  // The shape of a field's value (of its elements, for a repeated field).
  static Shape FieldShape(const google::protobuf::FieldDescriptor* field) {
    if (field == nullptr || field->message_type() == nullptr) return Shape{};
    if (field->is_map())
      return Shape{Plain(field->message_type()->map_value()->message_type()), true};
    return Shape{Plain(field->message_type()), false};
  }
  static const google::protobuf::FieldDescriptor* FindField(
      const google::protobuf::Descriptor* type, absl::string_view key) {
    if (type == nullptr) return nullptr;
    for (int i = 0; i < type->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = type->field(i);
      if (field->json_name() == key || field->name() == key) return field;
    }
    return nullptr;
  }

  void SkipSpace() {
    while (at_ < json_.size() && absl::ascii_isspace(static_cast<unsigned char>(json_[at_]))) {
      ++at_;
    }
  }
  bool Next(char c) {
    SkipSpace();
    if (at_ < json_.size() && json_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool Peek(char c) {
    SkipSpace();
    return at_ < json_.size() && json_[at_] == c;
  }
  static bool HexValue(char c, uint32_t* value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isxdigit(u)) return false;
    *value = (*value << 4) + (absl::ascii_isdigit(u) ? u - '0' : absl::ascii_tolower(u) - 'a' + 10);
    return true;
  }
  // Four hex digits after "\u" at `at_`.
  bool Hex4(uint32_t* code) {
    if (json_.size() - at_ < 6 || json_[at_] != '\\' || json_[at_ + 1] != 'u') return false;
    *code = 0;
    for (size_t i = 2; i < 6; ++i) {
      if (!HexValue(json_[at_ + i], code)) return false;
    }
    at_ += 6;
    return true;
  }
  // A string at `at_` (its quote), decoded as the parser does; false when it is not one.
  bool String(std::string* text) {
    const char quote = json_[at_++];
    while (at_ < json_.size()) {
      const char c = json_[at_];
      if (c == quote) {
        ++at_;
        return true;
      }
      if (c != '\\') {
        text->push_back(c);
        ++at_;
        continue;
      }
      if (at_ + 1 >= json_.size()) return false;
      const char escaped = json_[at_ + 1];
      if (escaped == 'u') {
        uint32_t code = 0;
        if (!Hex4(&code)) return false;
        if (code >= 0xD800 && code <= 0xDBFF) {
          uint32_t low = 0;
          if (!Hex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
          code = 0x10000 + ((code & 0x3FF) << 10) + (low & 0x3FF);
        } else if (code >= 0xDC00 && code <= 0xDFFF) {
          return false;  // A lone low surrogate: the parser refuses it.
        }
        AppendUtf8(code, text);
        continue;
      }
      switch (escaped) {
        case 'b':
          text->push_back('\b');
          break;
        case 'f':
          text->push_back('\f');
          break;
        case 'n':
          text->push_back('\n');
          break;
        case 'r':
          text->push_back('\r');
          break;
        case 't':
          text->push_back('\t');
          break;
        case 'v':
          text->push_back('\v');
          break;
        default:
          text->push_back(escaped);
          break;
      }
      at_ += 2;
    }
    return false;  // No closing quote.
  }
  static bool KeyStart(char c) {
    return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$';
  }
  static bool KeyPart(char c) {
    return KeyStart(c) || absl::ascii_isdigit(static_cast<unsigned char>(c));
  }

  // A number as JSON writes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  bool Number() {
    auto digits = [&] {
      const size_t from = at_;
      while (at_ < json_.size() && absl::ascii_isdigit(static_cast<unsigned char>(json_[at_])))
        ++at_;
      return at_ > from;
    };
    if (json_[at_] == '-') ++at_;
    if (at_ < json_.size() && json_[at_] == '0') {
      ++at_;
    } else if (!digits()) {
      return false;
    }
    if (at_ < json_.size() && json_[at_] == '.') {
      ++at_;
      if (!digits()) return false;
    }
    if (at_ < json_.size() && (json_[at_] == 'e' || json_[at_] == 'E')) {
      ++at_;
      if (at_ < json_.size() && (json_[at_] == '+' || json_[at_] == '-')) ++at_;
      if (!digits()) return false;
    }
    // What the parser would read on as part of the number ("1x", "0123") is not JSON.
    return at_ >= json_.size() || !(absl::ascii_isalnum(static_cast<unsigned char>(json_[at_])) ||
                                    json_[at_] == '.' || json_[at_] == '+' || json_[at_] == '-');
  }

  // Each returns true to go on, false to stop: a duplicate found (duplicate_ set) or text
  // the scan does not read.
  bool Value(const Shape& shape, int depth) {
    SkipSpace();
    if (at_ >= json_.size()) return false;
    const char c = json_[at_];
    if (c == '{') return Object(shape, depth + 1);
    if (c == '[') return Array(shape, depth + 1);
    if (c == '"' || c == '\'') {
      std::string ignored;
      return String(&ignored);
    }
    if (c == '-' || absl::ascii_isdigit(static_cast<unsigned char>(c))) return Number();
    for (absl::string_view word : {"true", "false", "null"}) {
      if (absl::StartsWith(json_.substr(at_), word)) {
        at_ += word.size();
        return true;
      }
    }
    return false;
  }

  bool Array(const Shape& elements, int depth) {
    if (depth > kMaxDepth) return false;
    ++at_;  // '['
    if (Next(']')) return true;
    while (true) {
      if (!Value(elements, depth)) return false;
      if (Next(']')) return true;
      if (!Next(',')) return false;
      if (Next(']')) return true;  // A trailing comma.
    }
  }

  bool Object(const Shape& shape, int depth) {
    if (depth > kMaxDepth) return false;
    ++at_;                             // '{'
    std::map<std::string, Seen> seen;  // By identity: "#field number", or "=text".
    while (true) {
      if (Next('}')) return true;  // Also after a trailing comma.
      SkipSpace();
      if (at_ >= json_.size()) return false;
      const size_t key_offset = at_;
      std::string key;
      if (json_[at_] == '"' || json_[at_] == '\'') {
        if (!String(&key)) return false;
      } else if (KeyStart(json_[at_])) {
        while (at_ < json_.size() && KeyPart(json_[at_])) key.push_back(json_[at_++]);
        if (key == "true" || key == "false" || key == "null") return false;
      } else {
        return false;
      }
      const google::protobuf::FieldDescriptor* field =
          shape.map ? nullptr : FindField(shape.message, key);
      const std::string identity =
          field != nullptr ? absl::StrCat("#", field->number()) : absl::StrCat("=", key);
      auto [it, inserted] = seen.try_emplace(identity, Seen{key, key_offset});
      if (!inserted) {
        duplicate_ = Duplicate{key, it->second.spelling, key_offset, it->second.offset};
        return false;
      }
      if (!Next(':')) return false;
      const Shape value = shape.map ? Shape{shape.message, false} : FieldShape(field);
      if (!Value(value, depth)) return false;
      if (Next('}')) return true;
      if (!Next(',')) return false;
    }
  }

  const absl::string_view json_;
  size_t at_ = 0;
  std::optional<Duplicate> duplicate_;
};

// Makes protobuf's JSON parse errors point into the file. They come in three shapes:
//   syntax:  "<what>\n<up to 40 bytes around the spot>\n<spaces>^"
//   mapping: "(retained.block_size): invalid value \"1MiB\" for type TYPE_UINT64"
//   other:   "retaind: Cannot find field." / ": Root element must be a message."
std::string DescribeJsonError(absl::string_view json, absl::string_view file_name,
                              absl::string_view message) {
  const size_t first_newline = message.find('\n');
  const size_t last_newline = message.rfind('\n');
  if (first_newline != absl::string_view::npos && first_newline != last_newline &&
      absl::EndsWith(message, "^")) {
    const absl::string_view what = message.substr(0, first_newline);
    const absl::string_view context =
        message.substr(first_newline + 1, last_newline - first_newline - 1);
    const size_t caret = message.size() - last_newline - 2;
    // The context is a slice of the input: find it to turn the caret into line:column.
    // Empty context means the parser ran off the end of the input.
    std::optional<size_t> offset;
    if (context.empty()) {
      offset = json.size();
    } else {
      const size_t at = json.find(context);
      if (at != absl::string_view::npos && json.find(context, at + 1) == absl::string_view::npos) {
        offset = at + caret;
      }
    }
    if (offset.has_value()) {
      return absl::StrCat(file_name, ":", LineColumn(json, *offset), ": ", what);
    }
    return absl::StrCat(file_name, ": ", what, " near \"", absl::CHexEscape(context), "\"");
  }

  std::string text(message);
  if (absl::StartsWith(text, "(")) {
    const size_t close = text.find("): ");
    if (close != std::string::npos) {
      text = absl::StrCat(text.substr(1, close - 1), ": ", text.substr(close + 3));
    }
  }
  absl::string_view trimmed = text;
  absl::ConsumePrefix(&trimmed, ": ");
  std::string hint;
  if (absl::StrContains(trimmed, "TYPE_UINT64") || absl::StrContains(trimmed, "TYPE_INT64") ||
      absl::StrContains(trimmed, "TYPE_UINT32")) {
    hint =
        " (plan files take sizes as integer byte counts, e.g. \"536870912\", and a "
        "quantity as {\"bytes\": \"536870912\"} or {\"percentOfTotal\": 80})";
  } else if (absl::StrContains(trimmed, "google.protobuf.Duration")) {
    hint = " (durations are strings such as \"30s\" or \"0.5s\")";
  }
  return absl::StrCat(file_name, ": ", trimmed, hint);
}

}  // namespace

const std::vector<PlanFlagInfo>& PlanFlagTable() {
  constexpr int kBlocks = kRetainedKind | kUtilizationKind;
  // The plan rules' numbers, from proto/plan_rules.h.
  static const auto* const kLeaseHelp =
      new std::string(absl::StrCat(absl::FormatDuration(plan_rules::kMinLease), "..",
                                   absl::FormatDuration(plan_rules::kMaxLease),
                                   ": the agent stops the plan if not renewed within DURATION"));
  static const auto* const kLabelsHelp = new std::string(absl::StrCat(
      "plan labels: at most ", plan_rules::kMaxLabels, ", keys 1-", plan_rules::kMaxLabelKeyBytes,
      " bytes, values up to ", plan_rules::kMaxLabelValueBytes, " (no ',' in either)"));
  static const auto* const kTable = new std::vector<PlanFlagInfo>{
      // name, value name, unset means, help, field (text or toggle), kinds, with --plan
      {"plan", "FILE", "", "the whole plan from a JSON file (PlanSpec)", &PlanFlags::plan, nullptr,
       kAnyKind, true},
      {"kind", "KIND", "", "retained | streaming | utilization (required without --plan)",
       &PlanFlags::kind, nullptr, kAnyKind, false},
      {"target", "QUANTITY", "",
       "retained: SIZE, N%, N%available or N%cgroup; utilization: N%, N%node or N%cgroup",
       &PlanFlags::target, nullptr, kBlocks, false},
      {"touch", "MODE", "page", "none | page | fill", &PlanFlags::touch, nullptr, kAnyKind, false},
      {"backing", "BACKING", "mmap", "malloc | mmap | shmem", &PlanFlags::backing, nullptr, kBlocks,
       false},
      {"block_size", "SIZE", "1MiB", "bytes per block", &PlanFlags::block_size, nullptr, kAnyKind,
       false},
      {"ramp", "RAMP", "a step", "DURATION to reach the target, or SIZE/s", &PlanFlags::ramp,
       nullptr, kRetainedKind, false},
      {"hold", "HOLD", "forever", "DURATION at the target, or forever", &PlanFlags::hold, nullptr,
       kRetainedKind, false},
      {"repeat", "N", "once", "N or forever: ramp, hold, drop to 0, again (sawtooth)",
       &PlanFlags::repeat, nullptr, kRetainedKind, false},
      {"rate", "SIZE/s", "flat out", "bytes allocated per second", &PlanFlags::rate, nullptr,
       kStreamingKind, false},
      {"window", "N", "0", "blocks alive at once", &PlanFlags::window, nullptr, kStreamingKind,
       false},
      {"workers", "N", "1", "threads, 1..64", &PlanFlags::workers, nullptr, kStreamingKind, false},
      {"return_to_os", "", "", "mmap/munmap every block", nullptr, &PlanFlags::return_to_os,
       kStreamingKind, false},
      {"amount", "SIZE", "until stopped", "SIZE in total, then stop", &PlanFlags::amount, nullptr,
       kStreamingKind, false},
      {"duration", "DURATION", "forever", "DURATION or forever", &PlanFlags::duration, nullptr,
       kStreamingKind | kUtilizationKind, false},
      {"lease", "DURATION", "the agent's --default-lease", *kLeaseHelp, &PlanFlags::lease, nullptr,
       kAnyKind, true},
      {"plan_id", "ID", "generated", "idempotency key, 1-128 of [A-Za-z0-9._-]",
       &PlanFlags::plan_id, nullptr, kAnyKind, true},
      {"labels", "k=v,...", "", *kLabelsHelp, &PlanFlags::labels, nullptr, kAnyKind, true},
      {"expect_oom", "", "", "an OOM kill is this plan's success (OOM drills)", nullptr,
       &PlanFlags::expect_oom, kAnyKind, true},
      {"oom_score_adj", "N", "1000", "of the worker, -1000..1000", &PlanFlags::oom_score_adj,
       nullptr, kAnyKind, true},
      {"huge_pages", "", "", "madvise(MADV_HUGEPAGE)", nullptr, &PlanFlags::huge_pages,
       kRetainedKind, false},
      {"mlock", "", "", "mlock every block", nullptr, &PlanFlags::mlock, kRetainedKind, false},
  };
  return *kTable;
}

absl::Status SetPlanFlag(PlanFlags& flags, absl::string_view name, absl::string_view value) {
  const PlanFlagInfo* info = FindPlanFlag(name);
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " is not a plan flag"));
  }
  if (info->text != nullptr) {
    flags.*info->text = std::string(value);
  } else {
    bool on = false;
    if (!absl::SimpleAtob(value, &on)) return FlagError(name, value, "want true or false");
    flags.*info->toggle = on;
  }
  flags.explicitly_set.insert(std::string(name));
  return absl::OkStatus();
}

const std::vector<absl::string_view>& PlanFlagNames() {
  static const auto* const kNames = [] {
    auto* names = new std::vector<absl::string_view>;
    for (const PlanFlagInfo& info : PlanFlagTable()) names->push_back(info.name);
    return names;
  }();
  return *kNames;
}

const PlanFlagInfo* FindPlanFlag(absl::string_view name) {
  for (const PlanFlagInfo& info : PlanFlagTable()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

std::string MakePlanId(absl::Time now, uint32_t random) {
  return absl::StrCat("memload-", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()), "-",
                      absl::StrFormat("%04x", random & 0xffff));
}

absl::Status ValidatePlanSpec(const v1::PlanSpec& spec) {
  MEMLOAD_RETURN_IF_ERROR(plan_rules::ValidatePlanSpec(spec));
  // What the blocks really cost, as the agent admits them: a count no node may hold fails
  // here with the agent's words, before anything is sent.
  return plan_rules::CheckRetainedCost(spec);
}

absl::StatusOr<v1::PlanSpec> ParsePlanFile(absl::string_view json_text,
                                           absl::string_view file_name) {
  if (std::optional<std::string> duplicate = DuplicateKeyScan(json_text).Run(file_name)) {
    return absl::InvalidArgumentError(*duplicate);
  }
  v1::PlanSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;  // A misspelt field must not silently drop a setting.
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(std::string(json_text), &spec, options);
  if (!parsed.ok()) {
    const auto message = parsed.message();
    return absl::InvalidArgumentError(
        DescribeJsonError(json_text, file_name, absl::string_view(message.data(), message.size())));
  }
  absl::Status valid = plan_rules::ValidatePlanSpec(spec, plan_rules::PlanIdRule::kOptional);
  if (valid.ok()) valid = plan_rules::CheckRetainedCost(spec);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": ", valid.message()));
  }
  return spec;
}

absl::StatusOr<v1::PlanSpec> ReadPlanFile(const std::string& path) {
  // Read until EOF rather than trusting st_size (pipes and /proc files report 0), bounded.
  MEMLOAD_ASSIGN_OR_RETURN(const std::string text,
                           ReadFileUpTo(path, kMaxPlanFileBytes, "plan file"));
  return ParsePlanFile(text, path);
}

namespace {

// The plan-level flags over `spec` (built from flags or read from a file), then the checks.
absl::StatusOr<v1::PlanSpec> ApplyPlanLevelFlags(v1::PlanSpec spec, const PlanFlags& flags,
                                                 absl::Time now, uint32_t random) {
  if (Given(flags, &PlanFlags::plan_id)) {
    if (std::optional<std::string> problem = PlanIdProblem(flags.plan_id)) {
      return FlagError("plan_id", flags.plan_id, *problem);
    }
    spec.set_plan_id(flags.plan_id);
  } else if (spec.plan_id().empty()) {
    spec.set_plan_id(MakePlanId(now, random));
  }
  if (Given(flags, &PlanFlags::lease)) {
    MEMLOAD_ASSIGN_OR_RETURN(absl::Duration lease,
                             FlagDuration("lease", flags.lease, /*positive=*/true));
    if (std::optional<std::string> problem = plan_rules::LeaseProblem(lease)) {
      return FlagError("lease", flags.lease, *problem);
    }
    ToProtoDuration(lease, spec.mutable_lease());
  }
  if (Given(flags, &PlanFlags::labels)) {
    // The k=v,... syntax, then the plan-label rule the agent applies (not ParseLabels': that
    // is the rule of a node's labels, which --selector matches).
    const int in_file = spec.labels_size();
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> labels =
        SplitLabels(flags.labels);
    if (!labels.ok()) return FlagError("labels", flags.labels, labels.status().message());
    for (const auto& [key, value] : *labels) {
      if (absl::Status valid = plan_rules::CheckPlanLabel(key, value); !valid.ok()) {
        return FlagError("labels", flags.labels, valid.message());
      }
      (*spec.mutable_labels())[key] = value;
    }
    if (absl::Status count =
            plan_rules::CheckPlanLabelCount(static_cast<size_t>(spec.labels_size()));
        !count.ok()) {
      return FlagError("labels", flags.labels,
                       in_file == 0
                           ? std::string(count.message())
                           : absl::StrCat(count.message(), " (the plan file has ", in_file, ")"));
    }
  }
  if (Given(flags, &PlanFlags::expect_oom)) spec.set_expect_oom(flags.expect_oom);
  if (Given(flags, &PlanFlags::oom_score_adj)) {
    MEMLOAD_ASSIGN_OR_RETURN(int64_t adj,
                             FlagInt<int64_t>("oom_score_adj", flags.oom_score_adj, "-1000..1000"));
    if (std::optional<std::string> problem = OomScoreAdjProblem(adj)) {
      return FlagError("oom_score_adj", flags.oom_score_adj, *problem);
    }
    spec.set_oom_score_adj(static_cast<int32_t>(adj));
  }
  MEMLOAD_RETURN_IF_ERROR(ValidatePlanSpec(spec));
  return spec;
}

// Plan flags other than the plan-level ones conflict with a plan file.
absl::Status CheckCombinableWithPlanFile(const PlanFlags& flags) {
  for (const PlanFlagInfo& def : PlanFlagTable()) {
    if (def.overrides_plan_file || !Given(flags, def)) continue;
    return absl::InvalidArgumentError(
        absl::StrCat("--", def.name,
                     " cannot be combined with --plan: the file defines the plan (only --plan_id, "
                     "--lease, --labels, --expect_oom and --oom_score_adj override it)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::PlanSpec> ApplyPlanOverrides(v1::PlanSpec spec, const PlanFlags& flags,
                                                absl::Time now, uint32_t random) {
  MEMLOAD_RETURN_IF_ERROR(CheckCombinableWithPlanFile(flags));
  return ApplyPlanLevelFlags(std::move(spec), flags, now, random);
}

absl::StatusOr<v1::PlanSpec> BuildPlanFromFlags(const PlanFlags& flags, absl::Time now,
                                                uint32_t random) {
  if (Given(flags, &PlanFlags::plan)) {
    if (flags.plan.empty()) return FlagError("plan", flags.plan, "want a file name");
    MEMLOAD_RETURN_IF_ERROR(CheckCombinableWithPlanFile(flags));  // Before any I/O.
    MEMLOAD_ASSIGN_OR_RETURN(v1::PlanSpec spec, ReadPlanFile(flags.plan));
    return ApplyPlanOverrides(std::move(spec), flags, now, random);
  }

  if (!Given(flags, &PlanFlags::kind)) {
    return absl::InvalidArgumentError(
        "--kind is required (retained, streaming or utilization), or --plan=FILE");
  }
  const std::string kind_name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(flags.kind));
  int kind = 0;
  if (kind_name == "retained") {
    kind = kRetainedKind;
  } else if (kind_name == "utilization") {
    kind = kUtilizationKind;
  } else if (kind_name == "streaming") {
    kind = kStreamingKind;
  } else {
    return FlagError("kind", flags.kind, "want retained, streaming or utilization");
  }
  for (const PlanFlagInfo& def : PlanFlagTable()) {
    if ((def.kinds & kind) != 0 || !Given(flags, def)) continue;
    return absl::InvalidArgumentError(absl::StrCat("--", def.name,
                                                   " does not apply to --kind=", kind_name,
                                                   " (only to ", KindsText(def.kinds), " plans)"));
  }

  v1::PlanSpec spec;
  switch (kind) {
    case kRetainedKind:
      MEMLOAD_RETURN_IF_ERROR(BuildRetained(flags, spec.mutable_retained()));
      break;
    case kUtilizationKind:
      MEMLOAD_RETURN_IF_ERROR(BuildUtilization(flags, spec.mutable_utilization()));
      break;
    default:
      MEMLOAD_RETURN_IF_ERROR(BuildStreaming(flags, spec.mutable_streaming()));
      break;
  }
  return ApplyPlanLevelFlags(std::move(spec), flags, now, random);
}

absl::StatusOr<v1::PlanSpec> BuildPlanFromFlags(const PlanFlags& flags, Clock* clock) {
  absl::BitGen random;
  return BuildPlanFromFlags(flags, clock->Now(), absl::Uniform<uint32_t>(random));
}

absl::StatusOr<v1::Quantity> ParseTargetFlag(const std::string& text) {
  return RetainedTarget(text);
}

}  // namespace controller
}  // namespace memload
