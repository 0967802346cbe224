#include "controller/report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "controller/output.h"
#include "controller/recording.h"
#include "core/base/status_macros.h"
#include "core/base/utf8.h"
#include "core/bounded_read.h"
#include "core/size.h"
#include "google/protobuf/util/json_util.h"

namespace memload {
namespace controller {
namespace {

// ---- A small JSON scanner for the recording's flat objects ------------------------------
// memloadctl writes one flat object per line (the "run" line nests its spec and targets);
// protobuf's JSON parser costs ~10x more per line, which matters at millions of samples.

struct JsonValue {
  char kind = 0;          // 's' string, 'n' number, 'b' bool, 'z' null, 'o' object, 'a' array.
  absl::string_view raw;  // Strings: between the quotes, escapes not undone; others: as is.
  bool escaped = false;   // A string with a backslash in it.
};

class JsonScanner {
 public:
  explicit JsonScanner(absl::string_view text) : text_(text) {}

  // Fills `fields` (key → value) from one object; false with `error` set otherwise.
  bool Object(std::vector<std::pair<absl::string_view, JsonValue>>* fields, std::string* error) {
    SkipSpace();
    if (!Eat('{')) return Fail("does not start with '{'", error);
    SkipSpace();
    if (Eat('}')) return End(error);
    while (true) {
      SkipSpace();
      JsonValue key;
      if (!String(&key)) return Fail("expected a quoted key", error);
      SkipSpace();
      if (!Eat(':')) return Fail("expected ':' after a key", error);
      SkipSpace();
      JsonValue value;
      if (!Value(&value, 0)) return Fail("bad value", error);
      fields->emplace_back(key.raw, value);
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat('}')) return End(error);
      return Fail("expected ',' or '}'", error);
    }
  }

 private:
  bool Fail(const char* what, std::string* error) {
    *error = absl::StrCat(what, " at column ", at_ + 1);
    return false;
  }
  bool End(std::string* error) {
    SkipSpace();
    if (at_ != text_.size()) return Fail("text after the object", error);
    return true;
  }
  void SkipSpace() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\r')) {
      ++at_;
    }
  }
  bool Eat(char c) {
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool String(JsonValue* value) {
    if (!Eat('"')) return false;
    const size_t start = at_;
    while (at_ < text_.size()) {
      const char c = text_[at_];
      if (c == '"') {
        value->kind = 's';
        value->raw = text_.substr(start, at_ - start);
        ++at_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c == '\\') {
        value->escaped = true;
        ++at_;
      }
      ++at_;
    }
    return false;
  }
  bool Value(JsonValue* value, int depth) {
    if (at_ >= text_.size() || depth > 32) return false;
    const char c = text_[at_];
    if (c == '"') return String(value);
    const size_t start = at_;
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++at_;
      SkipSpace();
      if (!Eat(close)) {
        while (true) {
          SkipSpace();
          if (c == '{') {
            JsonValue key;
            if (!String(&key)) return false;
            SkipSpace();
            if (!Eat(':')) return false;
            SkipSpace();
          }
          JsonValue inner;
          if (!Value(&inner, depth + 1)) return false;
          SkipSpace();
          if (Eat(',')) continue;
          if (Eat(close)) break;
          return false;
        }
      }
      value->kind = c == '{' ? 'o' : 'a';
      value->raw = text_.substr(start, at_ - start);
      return true;
    }
    while (at_ < text_.size() && text_[at_] != ',' && text_[at_] != '}' && text_[at_] != ']' &&
           text_[at_] != ' ') {
      ++at_;
    }
    value->raw = text_.substr(start, at_ - start);
    if (value->raw == "true" || value->raw == "false") {
      value->kind = 'b';
    } else if (value->raw == "null") {
      value->kind = 'z';
    } else {
      double number;
      if (!absl::SimpleAtod(value->raw, &number)) return false;
      value->kind = 'n';
    }
    return true;
  }

  absl::string_view text_;
  size_t at_ = 0;
};

// The text of a JSON string value, escapes undone (bad escapes become U+FFFD).
std::string Unescape(const JsonValue& value) {
  if (!value.escaped) return std::string(value.raw);
  std::string out;
  const absl::string_view raw = value.raw;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\' || i + 1 >= raw.size()) {
      out += raw[i];
      continue;
    }
    const char c = raw[++i];
    switch (c) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'u': {
        uint32_t code = 0;
        if (i + 4 < raw.size() + 0 && i + 4 <= raw.size() - 1 + 1) {
          const std::string hex(raw.substr(i + 1, 4));
          char* end = nullptr;
          code = static_cast<uint32_t>(std::strtoul(hex.c_str(), &end, 16));
          if (end != hex.c_str() + 4 || (code >= 0xd800 && code <= 0xdfff)) code = 0xfffd;
          i += 4;
        } else {
          code = 0xfffd;
          i = raw.size();
        }
        AppendUtf8(code, &out);
        break;
      }
      default:
        out += c;  // \" \\ \/
    }
  }
  return out;
}

// ---- Times ------------------------------------------------------------------------------

// "2026-11-25T16:02:41.123Z" (what memloadctl writes) without a general parser; anything
// else through absl's RFC 3339 one.
bool ParseRecordingTime(absl::string_view text, absl::Time* time) {
  auto digits = [&](size_t at, size_t count, int* value) {
    int v = 0;
    for (size_t i = at; i < at + count; ++i) {
      if (i >= text.size() || text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *value = v;
    return true;
  };
  int year, month, day, hour, minute, second, millis;
  if (text.size() == 24 && text[4] == '-' && text[7] == '-' && text[10] == 'T' && text[13] == ':' &&
      text[16] == ':' && text[19] == '.' && text[23] == 'Z' && digits(0, 4, &year) &&
      digits(5, 2, &month) && digits(8, 2, &day) && digits(11, 2, &hour) &&
      digits(14, 2, &minute) && digits(17, 2, &second) && digits(20, 3, &millis) && month >= 1 &&
      month <= 12 && day >= 1 && day <= 31 && hour < 24 && minute < 60 && second < 61) {
    const absl::CivilSecond civil(year, month, day, hour, minute, second);
    if (civil.day() == day) {  // Not normalized: a real date.
      *time = absl::FromCivil(civil, absl::UTCTimeZone()) + absl::Milliseconds(millis);
      return true;
    }
  }
  std::string error;
  return absl::ParseTime(absl::RFC3339_full, std::string(text), time, &error);
}

}  // namespace

// ---- Nodes and the report ------------------------------------------------------------------

bool NodeReport::ok() const {
  if (result_ok.has_value()) return *result_ok;
  return samples > 0 && !call_errors && !plan_failed && !lease_expired &&
         !(oom_killed && !oom_expected);
}

size_t Report::ok_nodes() const {
  size_t ok = 0;
  for (const NodeReport& node : nodes) ok += node.ok();
  return ok;
}

bool Report::ok() const {
  return ok_nodes() == nodes.size() && (!exit_code.has_value() || *exit_code == 0);
}

struct ReportBuilder::State {
  std::string name;
  ReportOptions options;
  int line = 0;
  int records = 0;
  Report report;
  bool origin_set = false;
  bool saw_run = false;
  absl::Time origin;
  absl::Duration width = absl::Seconds(1);
  std::unordered_map<std::string, size_t> index;                // By target.
  std::vector<std::pair<absl::string_view, JsonValue>> fields;  // Reused per line.

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(name, ":", line, ": ", what));
  }

  const JsonValue* Find(absl::string_view key) const {
    for (const auto& [name, value] : fields) {
      if (name == key) return &value;
    }
    return nullptr;
  }
  absl::StatusOr<std::string> Text(absl::string_view key, bool required) const {
    const JsonValue* value = Find(key);
    if (value == nullptr) {
      if (required) return Error(absl::StrCat("\"", key, "\" is missing"));
      return std::string();
    }
    if (value->kind != 's') return Error(absl::StrCat("\"", key, "\" must be a string"));
    return Unescape(*value);
  }
  // A byte count: a non-negative whole JSON number, or a string of digits.
  absl::StatusOr<std::optional<uint64_t>> Bytes(absl::string_view key, bool required) const {
    const JsonValue* value = Find(key);
    if (value == nullptr) {
      if (required) return Error(absl::StrCat("\"", key, "\" is missing"));
      return std::optional<uint64_t>();
    }
    uint64_t bytes = 0;
    if ((value->kind == 'n' || value->kind == 's') && absl::SimpleAtoi(value->raw, &bytes)) {
      return std::optional<uint64_t>(bytes);
    }
    double number = 0;
    if (value->kind == 'n' && absl::SimpleAtod(value->raw, &number) && number >= 0 &&
        number < 1.8e19 && number == std::floor(number)) {
      return std::optional<uint64_t>(static_cast<uint64_t>(number));
    }
    return Error(absl::StrCat("\"", key, "\" must be a byte count (a whole number >= 0)"));
  }

  NodeReport* Node(const std::string& node, const std::string& target) {
    auto it = index.find(target);
    if (it != index.end()) {
      NodeReport& found = report.nodes[it->second];
      if (found.node == found.target && !node.empty()) found.node = node;  // Name learnt.
      return &found;
    }
    if (report.nodes.size() >= options.max_nodes) return nullptr;
    index.emplace(target, report.nodes.size());
    NodeReport added;
    added.node = node.empty() ? target : node;
    added.target = target;
    added.buckets.resize(static_cast<size_t>(options.buckets));
    report.nodes.push_back(std::move(added));
    return &report.nodes.back();
  }

  // The bucket of `time`, widening every node's buckets (pairs merged) when it is beyond.
  size_t Bucket(absl::Time time) {
    if (time <= origin) return 0;
    const size_t count = static_cast<size_t>(options.buckets);
    while (time - origin >= width * static_cast<double>(count)) {
      width *= 2;
      for (NodeReport& node : report.nodes) {
        for (size_t i = 0; i < count; ++i) {
          const ReportBucket a = 2 * i < count ? node.buckets[2 * i] : ReportBucket();
          const ReportBucket b = 2 * i + 1 < count ? node.buckets[2 * i + 1] : ReportBucket();
          ReportBucket merged = a.set ? a : b;
          if (a.set && b.set) {
            merged.min = std::min(a.min, b.min);
            merged.max = std::max(a.max, b.max);
            merged.last = b.last;
            merged.target = b.target;
            const bool max_in_a = a.max >= b.max, min_in_a = a.min <= b.min;
            merged.max_first = max_in_a && min_in_a ? a.max_first : max_in_a;
          }
          node.buckets[i] = merged;
        }
      }
    }
    return std::min(static_cast<size_t>((time - origin) / width), count - 1);
  }
};

ReportBuilder::ReportBuilder(std::string name, ReportOptions options)
    : state_(std::make_unique<State>()) {
  options.buckets = std::clamp(options.buckets, 16, 4096);
  state_->name = std::move(name);
  state_->options = options;
  state_->report.name = state_->name;
  state_->report.options = options;
}

ReportBuilder::~ReportBuilder() = default;

absl::Status ReportBuilder::AddLine(absl::string_view text) {
  State& s = *state_;
  ++s.line;
  if (text.size() > s.options.max_line_bytes) {
    return s.Error(absl::StrCat("line longer than ", s.options.max_line_bytes,
                                " bytes: not a memloadctl recording?"));
  }
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return absl::OkStatus();
  ++s.records;
  s.fields.clear();
  std::string error;
  if (!JsonScanner(text).Object(&s.fields, &error)) {
    return s.Error(absl::StrCat("not a JSON object (", error, ")"));
  }
  const JsonValue* time_value = s.Find("time");
  if (time_value == nullptr) return s.Error("\"time\" is missing");
  if (time_value->kind != 's') return s.Error("\"time\" must be a string");
  absl::Time time;
  if (!ParseRecordingTime(time_value->raw, &time)) {
    return s.Error(
        absl::StrCat("\"time\" is not an RFC 3339 time: \"", Unescape(*time_value), "\""));
  }
  if (!s.origin_set) {
    s.origin_set = true;
    s.origin = time;
    s.report.begin = time;
    s.report.end = time;
  }
  s.report.end = std::max(s.report.end, time);
  MEMLOAD_ASSIGN_OR_RETURN(std::string event, s.Text("event", false));
  MEMLOAD_ASSIGN_OR_RETURN(std::string plan_id, s.Text("planId", false));
  if (!plan_id.empty() && s.report.plan_id.empty()) s.report.plan_id = plan_id;
  if (event == "run") {
    s.saw_run = true;
    if (const JsonValue* spec = s.Find("spec"); spec != nullptr && spec->kind == 'o') {
      v1::PlanSpec parsed;
      google::protobuf::util::JsonParseOptions options;
      options.ignore_unknown_fields = true;
      if (google::protobuf::util::JsonStringToMessage(
              google::protobuf::StringPiece(spec->raw.data(), spec->raw.size()), &parsed, options)
              .ok()) {
        s.report.kind = parsed.kind_case() == v1::PlanSpec::kRetained      ? "retained"
                        : parsed.kind_case() == v1::PlanSpec::kUtilization ? "utilization"
                        : parsed.kind_case() == v1::PlanSpec::kStreaming   ? "streaming"
                                                                           : "";
        s.report.spec = std::move(parsed);
      }
    }
    // Every target the run was given, so that a node that never answered is listed too.
    if (const JsonValue* targets = s.Find("targets"); targets != nullptr && targets->kind == 'a') {
      std::vector<std::pair<absl::string_view, JsonValue>> none;
      absl::string_view rest = targets->raw.substr(1, targets->raw.size() - 2);
      while (!rest.empty()) {
        const size_t open = rest.find('"');
        if (open == absl::string_view::npos) break;
        size_t close = open + 1;
        while (close < rest.size() && (rest[close] != '"' || rest[close - 1] == '\\')) ++close;
        JsonValue value;
        value.kind = 's';
        value.raw = rest.substr(open + 1, close - open - 1);
        value.escaped = value.raw.find('\\') != absl::string_view::npos;
        const std::string target = Unescape(value);
        if (s.Node("", target) == nullptr) {
          return s.Error(absl::StrCat("more than ", s.options.max_nodes, " nodes"));
        }
        rest = close < rest.size() ? rest.substr(close + 1) : absl::string_view();
      }
    }
    return absl::OkStatus();
  }
  if (event == "end") {
    const JsonValue* code = s.Find("exitCode");
    int exit_code = 0;
    if (code != nullptr && code->kind == 'n' && absl::SimpleAtoi(code->raw, &exit_code)) {
      s.report.exit_code = exit_code;
    }
    return absl::OkStatus();
  }
  const bool has_node = s.Find("node") != nullptr, has_target = s.Find("target") != nullptr;
  MEMLOAD_ASSIGN_OR_RETURN(std::string target, s.Text("target", !has_node));
  MEMLOAD_ASSIGN_OR_RETURN(std::string node_name, s.Text("node", !has_target));
  if (target.empty()) target = node_name;
  NodeReport* node = s.Node(node_name, target);
  if (node == nullptr) return s.Error(absl::StrCat("more than ", s.options.max_nodes, " nodes"));
  if (!event.empty()) {
    MEMLOAD_ASSIGN_OR_RETURN(std::string state, s.Text("state", false));
    MEMLOAD_ASSIGN_OR_RETURN(std::string message, s.Text("message", false));
    if (event == "result") {
      const JsonValue* ok = s.Find("ok");
      if (ok != nullptr && ok->kind == 'b') node->result_ok = ok->raw == "true";
      if (!state.empty()) node->final_state = state;
      if (!message.empty()) node->error = message;
      return absl::OkStatus();
    }
    if (event == "start" && !node->started) node->started = time;
    if (event == "target_reached" && !node->reached) node->reached = time;
    if (event == "capped") node->capped = true;
    if (event == "oom_killed") node->oom_killed = true;
    if (event == "lease_expired") node->lease_expired = true;
    if (event == "failed") node->plan_failed = true;
    if (event == "error") node->call_errors = true;
    if (event == "stop" || event == "oom_killed" || event == "lease_expired" || event == "failed") {
      node->ended = time;
    }
    if ((event == "error" || event == "failed" || event == "oom_killed") && !message.empty()) {
      node->error = message;
    }
    ++s.report.events_total;
    if (s.report.events.size() < s.options.max_events) {
      s.report.events.push_back(
          RecordingEvent{time, std::move(event), node->node, node->target, state, message});
    } else {
      ++s.report.events_dropped[event];
    }
    return absl::OkStatus();
  }
  if (s.Find("residentBytes") == nullptr) {
    return s.Error("neither an event (\"event\") nor a sample (\"residentBytes\")");
  }
  MEMLOAD_ASSIGN_OR_RETURN(std::string state, s.Text("state", true));
  MEMLOAD_ASSIGN_OR_RETURN(std::optional<uint64_t> resident, s.Bytes("residentBytes", true));
  MEMLOAD_ASSIGN_OR_RETURN(std::optional<uint64_t> target_bytes, s.Bytes("targetBytes", true));
  MEMLOAD_RETURN_IF_ERROR(s.Bytes("payloadBytes", false).status());
  MEMLOAD_RETURN_IF_ERROR(s.Bytes("availableBytes", false).status());
  const size_t at = s.Bucket(time);
  node = &s.report.nodes[s.index[target]];  // Bucket() may not move nodes, but be plain.
  ++node->samples;
  ++s.report.samples;
  node->final_state = state;
  if (node->target_bytes == 0) node->target_bytes = *target_bytes;
  node->last_target_bytes = *target_bytes;
  node->peak_resident_bytes = std::max(node->peak_resident_bytes, *resident);
  if (!node->first_sample) node->first_sample = time;
  node->last_sample = time;
  ReportBucket& bucket = node->buckets[at];
  if (!bucket.set) {
    bucket = ReportBucket{true, false, *resident, *resident, *resident, *target_bytes};
  } else {
    if (*resident > bucket.max) {
      bucket.max = *resident;
      bucket.max_first = false;
    }
    if (*resident < bucket.min) {
      bucket.min = *resident;
      bucket.max_first = true;
    }
    bucket.last = *resident;
    bucket.target = *target_bytes;
  }
  return absl::OkStatus();
}

absl::StatusOr<Report> ReportBuilder::Finish() && {
  State& s = *state_;
  if (s.records == 0) {
    return absl::InvalidArgumentError(absl::StrCat(s.name, " is empty: no records"));
  }
  if (s.report.samples == 0 && !s.saw_run) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.name,
                     ": no samples (lines with \"residentBytes\"); is it a recording of "
                     "memloadctl run --record?"));
  }
  for (NodeReport& node : s.report.nodes) {
    node.oom_expected = s.report.spec.has_value() && s.report.spec->expect_oom();
    if (node.started && node.reached) node.time_to_target = *node.reached - *node.started;
    if (node.error.empty() && !node.ok()) {
      node.error = node.samples == 0    ? "no sample recorded: the plan never ran here"
                   : node.lease_expired ? "the plan's lease expired"
                                        : "the plan did not end well";
    }
  }
  s.report.bucket_width = s.width;
  s.report.buckets = s.options.buckets;
  return std::move(s.report);
}

absl::StatusOr<Report> ParseRecording(absl::string_view text, absl::string_view name,
                                      ReportOptions options) {
  ReportBuilder builder(std::string(name), options);
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == absl::string_view::npos) end = text.size();
    MEMLOAD_RETURN_IF_ERROR(builder.AddLine(text.substr(start, end - start)));
    start = end + 1;
  }
  return std::move(builder).Finish();
}

// ---- Drawing --------------------------------------------------------------------------

namespace {

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                    "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};
constexpr const char* kDashes[] = {"", "7 3", "2 3", "10 3 2 3"};
constexpr size_t kColourCount = sizeof(kColours) / sizeof(kColours[0]);
// Event labels get rows in a band above the plot; a label that finds no free row keeps its
// marker and tooltip only.
constexpr int kLabelRows = 6;
constexpr double kLabelRowHeight = 16;
constexpr size_t kMaxEventRows = 300;  // Events table rows.
constexpr size_t kMaxLookRows = 50;    // Rows of a fleet's "need a look" table.
constexpr size_t kMaxFailedListed = 50;

std::string Html(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EventLabel(const RecordingEvent& event) {
  if (event.event == "target_reached") return "target reached";
  if (event.event == "oom_killed") return "OOM killed";
  if (event.event == "lease_expired") return "lease expired";
  if (event.event == "stop" && !event.state.empty()) return event.state;
  return event.event;
}

// A round step near `raw` for byte axes: 1, 2 or 5 × 10^k of a binary unit.
double ByteStep(double raw) {
  double unit = 1;
  while (unit * 1024 <= raw) unit *= 1024;
  for (double nice : {1, 2, 5, 10, 20, 50, 100, 200, 500}) {
    if (nice * unit >= raw) return nice * unit;
  }
  return 1024 * unit;
}

// A round step near `raw` seconds for time axes.
double SecondStep(double raw) {
  for (double nice :
       {0.1,   0.2,   0.5,   1.0,   2.0,    5.0,    10.0,   15.0,    30.0,    60.0,
        120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0, 86400.0}) {
    if (nice >= raw) return nice;
  }
  return 86400 * std::ceil(raw / 86400);
}

// Plot geometry of one chart: time on x, bytes on y; a band above the plot for labels.
class Chart {
 public:
  static constexpr double kWidth = 1000, kLeft = 80, kRight = 150, kBottom = 36;

  Chart(absl::Time begin, absl::Time end, double max_bytes, int label_rows)
      : begin_(begin), top_(12 + label_rows * kLabelRowHeight) {
    seconds_ = std::max(absl::ToDoubleSeconds(end - begin), 1.0);
    y_step_ = ByteStep(std::max(max_bytes, 1.0) / 4);
    y_max_ = y_step_ * std::ceil(std::max(max_bytes, 1.0) * 1.05 / y_step_);
  }
  double height() const { return top_ + 280 + kBottom; }
  double top() const { return top_; }
  double bottom() const { return top_ + 280; }
  double right() const { return kWidth - kRight; }
  double X(absl::Time time) const {
    const double t = std::clamp(absl::ToDoubleSeconds(time - begin_), 0.0, seconds_);
    return kLeft + t / seconds_ * (right() - kLeft);
  }
  double Y(double bytes) const {
    return top_ + (1 - std::min(bytes, y_max_) / y_max_) * (bottom() - top_);
  }

  std::string Open(absl::string_view id, absl::string_view label) const {
    return absl::StrFormat(
        "<svg class=\"chart\" id=\"%s\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
        "aria-label=\"%s\" data-plot-top=\"%.1f\" data-plot-bottom=\"%.1f\">",
        id, kWidth, height(), Html(label), top_, bottom());
  }

  // Grid lines and tick labels.
  std::string Axes() const {
    std::string svg = "<g class=\"axes\">";
    for (double bytes = 0; bytes <= y_max_ + 1; bytes += y_step_) {
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                            kLeft, Y(bytes), right(), Y(bytes), kLeft - 6, Y(bytes) + 4,
                            Html(FormatSize(static_cast<uint64_t>(bytes))));
    }
    const double step = SecondStep(seconds_ / 8);
    for (double t = 0; t <= seconds_ + 1e-9; t += step) {
      const absl::Time at = begin_ + absl::Seconds(t);
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                            X(at), top_, X(at), bottom(), X(at), bottom() + 16,
                            t == 0 ? "0s" : Html(FormatShortDuration(absl::Seconds(t))));
    }
    return svg + "</g>";
  }

 private:
  absl::Time begin_;
  double top_;
  double seconds_ = 1;
  double y_step_ = 1;
  double y_max_ = 1;
};

using Points = std::vector<std::pair<absl::Time, double>>;

std::string PointText(const Chart& chart, const Points& points) {
  std::string out;
  out.reserve(points.size() * 12);
  for (const auto& [time, bytes] : points) {
    absl::StrAppendFormat(&out, "%s%.1f,%.1f", out.empty() ? "" : " ", chart.X(time),
                          chart.Y(bytes));
  }
  return out;
}

absl::Time BucketStart(const Report& report, size_t i) {
  return report.begin + report.bucket_width * static_cast<double>(i);
}

// A node's resident line: from its start event (at 0), then each bucket's extremes in the
// order they came, ending at its last sample.
Points ResidentPoints(const Report& report, const NodeReport& node) {
  Points points;
  if (node.started && (!node.first_sample || *node.started <= *node.first_sample)) {
    points.emplace_back(*node.started, 0);
  }
  for (size_t i = 0; i < node.buckets.size(); ++i) {
    const ReportBucket& bucket = node.buckets[i];
    if (!bucket.set) continue;
    // Never before the node's first sample (or the line would run back in time).
    const absl::Time at =
        std::max(BucketStart(report, i), node.first_sample.value_or(report.begin));
    if (bucket.min == bucket.max) {
      points.emplace_back(at, bucket.last);
      continue;
    }
    const absl::Time mid = std::max(at, BucketStart(report, i) + report.bucket_width / 2);
    points.emplace_back(at, bucket.max_first ? bucket.max : bucket.min);
    points.emplace_back(mid, bucket.max_first ? bucket.min : bucket.max);
    if (bucket.last != (bucket.max_first ? bucket.min : bucket.max)) {
      points.emplace_back(mid, bucket.last);
    }
  }
  if (node.last_sample && !points.empty())
    points.emplace_back(*node.last_sample, points.back().second);
  return points;
}

// The bytes a phase's quantity means on this node: exact for bytes; for percentages,
// scaled from what the node resolved for the first phase (its first recorded target).
std::optional<double> PhaseBytes(const v1::PlanSpec& spec, int phase, const NodeReport& node) {
  const v1::Quantity& quantity = spec.retained().phases(phase).target();
  if (quantity.value_case() == v1::Quantity::kBytes) return static_cast<double>(quantity.bytes());
  const v1::Quantity& first = spec.retained().phases(0).target();
  auto percent = [](const v1::Quantity& q) -> std::optional<double> {
    switch (q.value_case()) {
      case v1::Quantity::kPercentOfTotal:
        return q.percent_of_total();
      case v1::Quantity::kPercentOfAvailable:
        return q.percent_of_available();
      case v1::Quantity::kPercentOfCgroupLimit:
        return q.percent_of_cgroup_limit();
      default:
        return std::nullopt;
    }
  };
  const std::optional<double> mine = percent(quantity), base = percent(first);
  if (!mine || !base || *base <= 0 || first.value_case() != quantity.value_case() ||
      node.target_bytes == 0) {
    return std::nullopt;
  }
  return static_cast<double>(node.target_bytes) * *mine / *base;
}

// The target as the plan's phases draw it from the node's start: ramps as slopes, holds
// flat, steps (a sawtooth's drop to 0) vertical; until the node's end. Falls back to the
// recorded targets when the plan's shape is not known (no spec, not a retained plan,
// percentages that cannot be resolved).
Points TargetPoints(const Report& report, const NodeReport& node) {
  const absl::Time end = node.ended.value_or(node.last_sample.value_or(report.end));
  const std::optional<absl::Time> start = node.started ? node.started : node.first_sample;
  Points points;
  if (report.spec && report.spec->kind_case() == v1::PlanSpec::kRetained &&
      report.spec->retained().phases_size() > 0 && start) {
    const v1::RetainedPlan& plan = report.spec->retained();
    std::vector<double> bytes;
    bool known = true;
    for (int i = 0; i < plan.phases_size() && known; ++i) {
      const std::optional<double> b = PhaseBytes(*report.spec, i, node);
      known = b.has_value();
      bytes.push_back(b.value_or(0));
    }
    if (known) {
      absl::Time t = *start;
      double previous = 0;
      points.emplace_back(t, 0);
      const uint64_t cycles =
          plan.repeat_forever() ? UINT64_MAX : std::max<uint32_t>(plan.repeat(), 1);
      const size_t max_points = static_cast<size_t>(report.buckets) * 8;
      for (uint64_t cycle = 0; cycle < cycles && t < end && points.size() < max_points; ++cycle) {
        for (int i = 0; i < plan.phases_size() && t < end; ++i) {
          const v1::Phase& phase = plan.phases(i);
          absl::Duration ramp;
          if (phase.has_ramp_duration()) {
            ramp = absl::Seconds(phase.ramp_duration().seconds()) +
                   absl::Nanoseconds(phase.ramp_duration().nanos());
          } else if (phase.ramp_bytes_per_sec() > 0) {
            ramp = absl::Seconds(std::fabs(bytes[i] - previous) /
                                 static_cast<double>(phase.ramp_bytes_per_sec()));
          }
          if (ramp > absl::ZeroDuration() && t + ramp > end) {  // Cut short at the end.
            const double done = absl::FDivDuration(end - t, ramp);
            points.emplace_back(end, previous + (bytes[i] - previous) * done);
            return points;
          }
          t += ramp;
          points.emplace_back(t, bytes[i]);
          previous = bytes[i];
          if (phase.hold_forever()) break;
          t += absl::Seconds(phase.hold().seconds()) + absl::Nanoseconds(phase.hold().nanos());
          points.emplace_back(std::min(t, end), bytes[i]);
          if (points.size() >= max_points) break;
        }
        if (plan.phases(plan.phases_size() - 1).hold_forever()) break;
        if (t == points.front().first) break;  // No time passes: nothing more to draw.
      }
      if (t < end) points.emplace_back(end, previous);
      return points;
    }
  }
  // Recorded: the target each bucket last saw, as steps.
  if (start) points.emplace_back(*start, 0);
  for (size_t i = 0; i < node.buckets.size(); ++i) {
    if (!node.buckets[i].set) continue;
    const absl::Time at =
        std::max(BucketStart(report, i), node.first_sample.value_or(report.begin));
    if (!points.empty()) points.emplace_back(at, points.back().second);
    points.emplace_back(at, node.buckets[i].target);
  }
  if (!points.empty()) points.emplace_back(end, points.back().second);
  return points;
}

// Why a node is drawn on its own in a fleet report ("" = it is not).
std::string LookReason(const NodeReport& node) {
  if (!node.ok()) return "failed";
  if (node.oom_killed) return "OOM-killed";
  if (node.capped) return "capped";
  if (!node.reached && node.target_bytes > 0) return "never reached the target";
  return "";
}

std::string VerdictText(const Report& report) {
  const size_t ok = report.ok_nodes(), failed = report.nodes.size() - ok;
  std::string text =
      absl::StrCat(report.ok() ? "OK" : "FAILED", ": ", ok, " of ", report.nodes.size(),
                   report.nodes.size() == 1 ? " node" : " nodes", " ok");
  if (failed > 0) absl::StrAppend(&text, ", ", failed, " failed");
  if (report.exit_code) {
    absl::StrAppend(&text, "; memloadctl run exited ", *report.exit_code,
                    *report.exit_code == 130 ? " (interrupted)" : "");
  } else {
    absl::StrAppend(&text,
                    "; exit status unknown (the recording has no end line: the run was "
                    "interrupted or is still going)");
  }
  return text;
}

constexpr char kStyle[] = R"(
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; max-width: 1040px; }
h1 { font-size: 20px; margin: 0 0 8px; } h2 { font-size: 16px; margin-top: 28px; }
.verdict { font-size: 18px; font-weight: 600; padding: 10px 14px; border-radius: 4px; margin: 0 0 8px; }
.verdict.ok { background: #e6f4ea; color: #135c24; } .verdict.failed { background: #fce8e6; color: #a50e0e; }
ul.failed-nodes { margin: 4px 0 12px; padding-left: 20px; color: #a50e0e; }
.meta { color: #555; }
details > summary { cursor: pointer; margin: 6px 0; color: #1f4e8c; }
svg.chart { width: 100%; height: auto; border: 1px solid #ddd; background: #fff; }
svg .axes line { stroke: #eee; } svg .axes text { font-size: 11px; fill: #666; }
svg polyline { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg polyline.target, svg polyline.total-target, svg polyline.band-target { stroke-width: 1.5; stroke-dasharray: 6 4; opacity: 0.9; }
svg .event line { stroke-width: 1; stroke-dasharray: 2 3; opacity: 0.6; }
svg text.event-label, svg text.line-label { font-size: 11px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .band { fill: #1f77b4; opacity: 0.15; stroke: none; } svg .band-inner { fill: #1f77b4; opacity: 0.25; stroke: none; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px 16px; }
.swatch { display: inline-block; width: 22px; height: 0; border-top: 3px solid; margin-right: 6px; vertical-align: middle; }
table { border-collapse: collapse; margin-top: 8px; }
div.scroll { overflow-x: auto; max-width: 100%; }
td { overflow-wrap: anywhere; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.time, td.nowrap, th { white-space: nowrap; }
tr.failed td { color: #a50e0e; }
)";

}  // namespace

std::string RenderReportHtml(const Report& report) {
  const std::vector<NodeReport>& nodes = report.nodes;
  const bool fleet = nodes.size() > report.options.detailed_nodes;
  // The nodes drawn one by one: all, or in a fleet those that need a look, worst first.
  std::vector<size_t> drawn;
  std::map<size_t, std::string> reasons;
  if (!fleet) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].samples > 0) drawn.push_back(i);  // No sample, no line: see the summary.
    }
  } else {
    std::vector<std::pair<int, size_t>> ranked;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const std::string reason = LookReason(nodes[i]);
      if (reason.empty()) continue;
      reasons[i] = reason;
      ranked.emplace_back(reason == "failed"       ? 0
                          : reason == "OOM-killed" ? 1
                          : reason == "capped"     ? 2
                                                   : 3,
                          i);
    }
    std::stable_sort(ranked.begin(), ranked.end());
    for (const auto& [rank, i] : ranked) {
      if (drawn.size() >= report.options.highlighted_nodes) break;
      if (nodes[i].samples > 0) drawn.push_back(i);
    }
    // The slowest to their target, to fill up to three more.
    std::vector<std::pair<absl::Duration, size_t>> slow;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].time_to_target && reasons.count(i) == 0)
        slow.emplace_back(*nodes[i].time_to_target, i);
    }
    std::sort(slow.rbegin(), slow.rend());
    for (size_t k = 0;
         k < slow.size() && k < 3 && drawn.size() < report.options.highlighted_nodes + 3; ++k) {
      reasons[slow[k].second] =
          absl::StrCat("slowest to the target (", FormatShortDuration(slow[k].first), ")");
      drawn.push_back(slow[k].second);
    }
  }
  std::map<size_t, size_t> style;  // Node index → position among the drawn.
  for (size_t k = 0; k < drawn.size(); ++k) style[drawn[k]] = k;
  auto colour = [&](size_t i) { return kColours[style[i] % kColourCount]; };
  auto dash = [&](size_t i) { return kDashes[(style[i] / kColourCount) % 4]; };

  // Lines and their scale.
  double max_bytes = 1;
  std::vector<Points> resident(nodes.size()), target(nodes.size());
  for (size_t i : drawn) {
    resident[i] = ResidentPoints(report, nodes[i]);
    target[i] = TargetPoints(report, nodes[i]);
  }
  for (const NodeReport& node : nodes) {
    max_bytes = std::max({max_bytes, static_cast<double>(node.peak_resident_bytes),
                          static_cast<double>(node.target_bytes)});
  }
  for (size_t i : drawn) {
    for (const auto& point : target[i]) max_bytes = std::max(max_bytes, point.second);
  }

  // The fleet: per bucket, the distribution of the nodes' resident bytes (each node's
  // latest value carried forward from its start, until its end), and the cluster total.
  const size_t buckets = static_cast<size_t>(report.buckets);
  std::vector<double> lo(buckets), median(buckets), p90(buckets), hi(buckets), total(buckets),
      total_target(buckets), typical_target(buckets);
  std::vector<bool> any(buckets, false);
  {
    std::vector<double> carried(nodes.size(), 0), carried_target(nodes.size(), 0);
    std::vector<bool> live(nodes.size(), false);
    std::vector<double> values, targets;
    for (size_t b = 0; b < buckets; ++b) {
      values.clear();
      targets.clear();
      double sum = 0, sum_target = 0;
      for (size_t i = 0; i < nodes.size(); ++i) {
        const ReportBucket& bucket = nodes[i].buckets[b];
        if (bucket.set) {
          carried[i] = bucket.last;
          carried_target[i] = bucket.target;
          live[i] = true;
        }
        if (!live[i]) continue;
        values.push_back(carried[i]);
        targets.push_back(carried_target[i]);
        sum += carried[i];
        sum_target += carried_target[i];
      }
      total[b] = sum;
      total_target[b] = sum_target;
      if (values.empty()) continue;
      any[b] = true;
      std::sort(values.begin(), values.end());
      std::sort(targets.begin(), targets.end());
      lo[b] = values.front();
      hi[b] = values.back();
      median[b] = values[(values.size() - 1) / 2];
      p90[b] = values[static_cast<size_t>(std::ceil(0.9 * static_cast<double>(values.size()))) - 1];
      typical_target[b] = targets[(targets.size() - 1) / 2];
    }
  }
  double max_total = 1;
  for (size_t b = 0; b < buckets; ++b) max_total = std::max({max_total, total[b], total_target[b]});

  std::string html;
  html.reserve(64 << 10);
  const size_t ok_nodes = report.ok_nodes();
  absl::StrAppend(&html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
                  "<meta name=\"viewport\" content=\"width=device-width, "
                  "initial-scale=1\">\n<title>memload run ",
                  Html(report.plan_id), ": ", report.ok() ? "ok" : "FAILED", "</title>\n<style>",
                  kStyle, "</style>\n</head>\n<body>\n");
  // The verdict first.
  absl::StrAppend(&html, "<div class=\"verdict ", report.ok() ? "ok" : "failed",
                  "\" id=\"verdict\" data-ok=\"", ok_nodes, "\" data-failed=\"",
                  nodes.size() - ok_nodes, "\" data-exit=\"",
                  report.exit_code ? absl::StrCat(*report.exit_code) : "unknown", "\">",
                  Html(VerdictText(report)), "</div>\n");
  if (ok_nodes < nodes.size()) {
    html += "<ul class=\"failed-nodes\" id=\"failed-nodes\">";
    size_t listed = 0;
    for (const NodeReport& node : nodes) {
      if (node.ok()) continue;
      if (++listed > kMaxFailedListed) break;
      absl::StrAppend(&html, "<li data-node=\"", Html(node.node), "\"><b>", Html(node.node),
                      "</b> (", Html(node.target), "): ", Html(node.error), "</li>");
    }
    if (listed > kMaxFailedListed) {
      absl::StrAppend(&html, "<li>… and ", nodes.size() - ok_nodes - kMaxFailedListed,
                      " more failed nodes: see the summary below</li>");
    }
    html += "</ul>\n";
  }
  absl::StrAppend(
      &html, "<h1>memload run <code>", Html(report.plan_id), "</code></h1>\n", "<p class=\"meta\">",
      report.kind.empty() ? "" : Html(report.kind) + " plan, ", nodes.size(),
      nodes.size() == 1 ? " node" : " nodes", ", ",
      Html(absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", report.begin, absl::UTCTimeZone())), " for ",
      Html(FormatShortDuration(report.end - report.begin)), "; ", report.samples, " samples, ",
      report.events_total, " events; one point per ",
      Html(FormatShortDuration(report.bucket_width)), " at most.</p>\n");

  // Event labels: the events of drawn nodes, placed in free rows of the label band.
  std::vector<const RecordingEvent*> markers;
  {
    std::map<std::string, size_t> drawn_target;
    for (size_t i : drawn) drawn_target[nodes[i].target] = i;
    for (const RecordingEvent& event : report.events) {
      if (drawn_target.count(event.target) > 0) markers.push_back(&event);
    }
  }
  Chart chart(report.begin, report.end, max_bytes, kLabelRows);

  // Per-node chart (or the fleet's distribution with the outliers).
  absl::StrAppend(
      &html, "<h2>", fleet ? "Resident memory across nodes" : "Resident memory per node", "</h2>\n",
      chart.Open("per-node", fleet ? "distribution of resident memory across nodes "
                                     "with the nodes that need a look"
                                   : "resident memory per node over time, against the target"),
      chart.Axes());
  if (fleet) {
    Points band_hi, band_lo, inner_hi, inner_lo, mid, typical;
    for (size_t b = 0; b < buckets; ++b) {
      if (!any[b]) continue;
      const absl::Time at = BucketStart(report, b) + report.bucket_width / 2;
      band_hi.emplace_back(at, hi[b]);
      band_lo.emplace_back(at, lo[b]);
      inner_hi.emplace_back(at, p90[b]);
      inner_lo.emplace_back(at, median[b]);
      mid.emplace_back(at, median[b]);
      typical.emplace_back(at, typical_target[b]);
    }
    auto polygon = [&](const Points& upper, const Points& lower, const char* cls,
                       const char* title) {
      Points ring = upper;
      ring.insert(ring.end(), lower.rbegin(), lower.rend());
      return absl::StrCat("<polygon class=\"", cls, "\" points=\"", PointText(chart, ring),
                          "\"><title>", title, "</title></polygon>");
    };
    absl::StrAppend(&html, polygon(band_hi, band_lo, "band", "min to max across nodes"),
                    polygon(inner_hi, inner_lo, "band-inner", "median to p90 across nodes"),
                    "<polyline class=\"median\" stroke=\"#1f77b4\" points=\"",
                    PointText(chart, mid), "\"><title>median node</title></polyline>",
                    "<polyline class=\"band-target\" stroke=\"#555\" points=\"",
                    PointText(chart, typical), "\"><title>target (median node)</title></polyline>");
  }
  for (size_t i : drawn) {
    const NodeReport& node = nodes[i];
    const std::string dash_attr =
        *dash(i) == '\0' ? "" : absl::StrCat(" stroke-dasharray=\"", dash(i), "\"");
    absl::StrAppend(&html, "<polyline class=\"target\" data-node=\"", Html(node.node),
                    "\" stroke=\"", colour(i), "\" points=\"", PointText(chart, target[i]),
                    "\"><title>", Html(node.node), " target</title></polyline>");
    absl::StrAppend(&html, "<polyline class=\"series\" data-node=\"", Html(node.node),
                    "\" stroke=\"", colour(i), "\"", dash_attr, " points=\"",
                    PointText(chart, resident[i]), "\"><title>", Html(node.node),
                    " resident</title></polyline>");
  }
  // Line labels at the right end of each line, spread so they do not overlap.
  {
    std::vector<std::pair<double, size_t>> ends;
    for (size_t i : drawn) {
      if (!resident[i].empty()) ends.emplace_back(chart.Y(resident[i].back().second), i);
    }
    std::sort(ends.begin(), ends.end());
    double previous = -1e9;
    for (auto& [y, i] : ends) {
      y = std::max(y, previous + 13);
      previous = y;
    }
    for (const auto& [y, i] : ends) {
      absl::StrAppendFormat(&html,
                            "<text class=\"line-label\" data-node=\"%s\" x=\"%.1f\" y=\"%.1f\" "
                            "fill=\"%s\">%s</text>",
                            Html(nodes[i].node), chart.right() + 6, y + 4, colour(i),
                            Html(CutToWidth(nodes[i].node, 20)));
    }
  }
  // Event markers: a dotted line from the label band to a dot on the node's own line.
  {
    std::vector<double> row_end(kLabelRows, -1e9);
    std::map<std::string, size_t> by_target;
    for (size_t i : drawn) by_target[nodes[i].target] = i;
    for (const RecordingEvent* event : markers) {
      const size_t i = by_target[event->target];
      const std::string text = absl::StrCat(event->node, ": ", EventLabel(*event));
      // On the node's line as drawn: the event's x, and the y of the drawn segment under
      // it. Interpolated on the chart, not in time: the chart clamps points outside its time
      // range to its edges, so a line and its data differ there.
      const Points& line = resident[i];
      absl::Time at = event->time;
      double x = chart.X(at);
      double y = chart.Y(0);
      if (!line.empty()) {
        at = std::clamp(at, line.front().first, line.back().first);
        x = chart.X(at);
        y = chart.Y(line.back().second);
        for (size_t k = 0; k + 1 < line.size(); ++k) {
          const double x1 = chart.X(line[k].first), x2 = chart.X(line[k + 1].first);
          if (x2 < x) continue;
          const double y1 = chart.Y(line[k].second), y2 = chart.Y(line[k + 1].second);
          y = x2 <= x1 ? y2 : y1 + (y2 - y1) * (x - x1) / (x2 - x1);
          break;
        }
      }
      const double text_width = 7.2 * static_cast<double>(TextWidth(text)) + 10;
      int row = -1;
      const bool left = x + text_width > Chart::kWidth - 4;
      const double start = left ? x - text_width : x;
      for (int r = 0; r < kLabelRows; ++r) {
        if (row_end[r] < start) {
          row = r;
          row_end[r] = start + text_width;
          break;
        }
      }
      const double label_y = 12 + (row < 0 ? 0 : row) * kLabelRowHeight;
      absl::StrAppendFormat(
          &html,
          "<g class=\"event\" data-event=\"%s\" data-node=\"%s\"><title>%s %s%s</title>"
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>",
          Html(event->event), Html(event->node), Html(text), Html(RecordingTime(event->time)),
          event->message.empty() ? "" : Html(": " + event->message), x,
          row < 0 ? chart.top() : label_y + 3, x, y, colour(i), x, y, colour(i));
      if (row >= 0) {
        absl::StrAppendFormat(&html,
                              "<text class=\"event-label\" x=\"%.1f\" y=\"%.1f\" "
                              "text-anchor=\"%s\" fill=\"%s\">%s</text>",
                              left ? x - 3 : x + 3, label_y, left ? "end" : "start", colour(i),
                              Html(text));
      }
      html += "</g>";
    }
  }
  html += "</svg>\n<ul class=\"legend\">";
  if (fleet) {
    html +=
        "<li><span class=\"swatch\" style=\"border-color:#1f77b4\"></span>median node; "
        "shaded: min–max and median–p90 across nodes; dashed grey: target</li>";
  }
  for (size_t i : drawn) {
    const std::string border = *dash(i) == '\0' ? "solid" : "dashed";
    absl::StrAppend(&html, "<li data-node=\"", Html(nodes[i].node),
                    "\"><span class=\"swatch\" style=\"border-color:", colour(i),
                    ";border-top-style:", border, "\"></span>", Html(nodes[i].node),
                    reasons.count(i) > 0 ? absl::StrCat(": ", Html(reasons[i])) : "", "</li>");
  }
  absl::StrAppend(&html,
                  "<li>solid or dashed: resident; thin dashed: the target, following the plan's "
                  "phases</li></ul>\n");
  if (fleet) {
    absl::StrAppend(&html, "<p class=\"meta\">", drawn.size(), " of ", nodes.size(),
                    " nodes drawn one by one: those that need a look; every node is in the "
                    "summary below.</p>\n");
  }

  // Cluster chart.
  {
    Chart cluster(report.begin, report.end, max_total, 0);
    Points sum, sum_target;
    for (size_t b = 0; b < buckets; ++b) {
      if (!any[b]) continue;
      const absl::Time at = BucketStart(report, b) + report.bucket_width / 2;
      sum.emplace_back(at, total[b]);
      sum_target.emplace_back(at, total_target[b]);
    }
    absl::StrAppend(
        &html, "<h2>Cluster total</h2>\n",
        cluster.Open("cluster", "cluster total resident memory against the total target"),
        cluster.Axes(), "<polyline class=\"total-target\" stroke=\"#555\" points=\"",
        PointText(cluster, sum_target), "\"><title>total target</title></polyline>",
        "<polyline class=\"total\" stroke=\"#111\" points=\"", PointText(cluster, sum),
        "\"><title>total resident</title></polyline></svg>\n");
  }

  // Summary: every node, failed ones first. A fleet's full table is long (1,000 rows were
  // most of the page's ~2-4 s in Chromium): the nodes that need a look get a table of their
  // own, and the full table waits in a closed <details>, which the browser neither lays
  // out nor paints until it is opened.
  constexpr char kSummaryHeader[] =
      "<tr><th>node</th><th>agent</th><th>status</th><th>target</th><th>peak resident</th>"
      "<th>time to target</th><th>final state</th><th>error</th></tr>\n";
  absl::StrAppend(&html, "<h2>Summary</h2>\n");
  std::vector<size_t> order(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) order[i] = i;
  // The order of every memloadctl table: failed first, then by node name, then agent.
  std::vector<TableRowKey> keys;
  for (const NodeReport& node : nodes) keys.push_back(RowKey(node.ok(), node.node, node.target));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  auto row = [&](const NodeReport& node, absl::string_view row_class) {
    return absl::StrCat("<tr class=\"", row_class, node.ok() ? "" : " failed", "\" data-node=\"",
                        Html(node.node), "\"><td class=\"nowrap\">", Html(node.node),
                        "</td><td class=\"nowrap\">", Html(node.target), "</td><td>",
                        StatusCell(node.ok()), "</td><td class=\"num\">",
                        node.target_bytes > 0 ? Html(FormatSize(node.target_bytes)) : "-",
                        "</td><td class=\"num\">", Html(FormatSize(node.peak_resident_bytes)),
                        "</td><td class=\"num\">",
                        node.time_to_target ? Html(FormatShortDuration(*node.time_to_target)) : "-",
                        "</td><td>", Html(node.final_state.empty() ? "-" : node.final_state),
                        "</td><td>", Html(node.ok() ? "" : node.error), "</td></tr>\n");
  };
  size_t reached = 0;
  for (const NodeReport& node : nodes) reached += node.time_to_target.has_value();
  if (fleet) {
    std::vector<size_t> look;
    for (size_t i : order) {
      if (!LookReason(nodes[i]).empty()) look.push_back(i);
    }
    if (!look.empty()) {
      absl::StrAppend(&html, "<p>Nodes that need a look (", look.size(),
                      "): failed, OOM-killed, capped, never reached the target.</p>\n"
                      "<div class=\"scroll\"><table class=\"summary look\">\n",
                      kSummaryHeader);
      for (size_t k = 0; k < look.size() && k < kMaxLookRows; ++k) {
        absl::StrAppend(&html, row(nodes[look[k]], "look-row"));
      }
      html += "</table></div>\n";
      if (look.size() > kMaxLookRows) {
        absl::StrAppend(&html, "<p class=\"meta\">", look.size() - kMaxLookRows,
                        " more in the table of every node.</p>\n");
      }
    }
    const size_t ok = report.ok_nodes();
    absl::StrAppend(&html, "<details class=\"all-nodes\"><summary>Every node (", nodes.size(), ": ",
                    ok, " ok, ", nodes.size() - ok, " failed)</summary>\n");
  }
  absl::StrAppend(&html, "<div class=\"scroll\"><table class=\"summary\">\n", kSummaryHeader);
  for (size_t i : order) absl::StrAppend(&html, row(nodes[i], "node-row"));
  double peak_total = 0;
  for (size_t b = 0; b < buckets; ++b) peak_total = std::max(peak_total, total[b]);
  absl::StrAppend(&html, "<tr class=\"total-row\"><td>cluster</td><td colspan=\"2\">", reached,
                  " of ", nodes.size(), " reached the target</td><td></td><td class=\"num\">",
                  Html(FormatSize(static_cast<uint64_t>(peak_total))),
                  "</td><td></td><td></td><td></td></tr>\n</table></div>\n");
  if (fleet) html += "</details>\n";

  // Events (bounded; a fleet's wait in a closed <details>, as its full node table).
  absl::StrAppend(&html, "<h2>Events</h2>\n");
  if (fleet) {
    absl::StrAppend(&html, "<details class=\"events\"><summary>", report.events_total,
                    report.events_total == 1 ? " event" : " events",
                    report.events_total > kMaxEventRows
                        ? absl::StrCat(" (the first ", kMaxEventRows, " listed)")
                        : "",
                    "</summary>\n");
  }
  absl::StrAppend(&html,
                  "<div class=\"scroll\"><table class=\"events\">\n<tr><th>time (UTC)</th>"
                  "<th>+</th><th>node</th><th>event</th><th>detail</th></tr>\n");
  size_t rows = 0;
  for (const RecordingEvent& event : report.events) {
    if (++rows > kMaxEventRows) break;
    absl::StrAppend(&html, "<tr class=\"event-row\"><td class=\"time\">",
                    Html(absl::FormatTime("%Y-%m-%d %H:%M:%E3S", event.time, absl::UTCTimeZone())),
                    "</td><td class=\"num\">", Html(FormatShortDuration(event.time - report.begin)),
                    "</td><td class=\"nowrap\">", Html(event.node), "</td><td class=\"nowrap\">",
                    Html(EventLabel(event)), "</td><td>", Html(event.message), "</td></tr>\n");
  }
  html += "</table></div>\n";
  if (fleet) html += "</details>\n";
  if (report.events_total > std::min(report.events.size(), kMaxEventRows)) {
    std::map<std::string, size_t> kinds = report.events_dropped;
    for (size_t k = kMaxEventRows; k < report.events.size(); ++k) ++kinds[report.events[k].event];
    std::vector<std::string> counts;
    for (const auto& [kind, count] : kinds) counts.push_back(absl::StrCat(count, " ", kind));
    absl::StrAppend(&html, "<p class=\"meta\">",
                    report.events_total - std::min(report.events.size(), kMaxEventRows),
                    " more events not listed: ", Html(absl::StrJoin(counts, ", ")), ".</p>\n");
  }
  html += "</body>\n</html>\n";
  return html;
}

int RunReport(const std::string& path, const std::string& html_path, std::ostream& out,
              std::ostream& err, ReportVerdict* verdict) {
  if (path.empty() || html_path.empty()) {
    err << "memloadctl report: usage: memloadctl report FILE --html=OUT.html\n";
    return 2;
  }
  ReportBuilder builder(path);
  // One line held at a time: a line longer than the limit reaches the builder cut to one
  // byte over it, and the builder refuses it naming the line.
  const absl::Status read =
      ReadLinesUpTo(path, ReportOptions().max_line_bytes, "",
                    [&builder](absl::string_view line) { return builder.AddLine(line); });
  if (!read.ok()) {
    err << "memloadctl report: " << read.message() << "\n";
    return 2;
  }
  absl::StatusOr<Report> report = std::move(builder).Finish();
  if (!report.ok()) {
    err << "memloadctl report: " << report.status().message() << "\n";
    return 2;
  }
  if (verdict != nullptr) {
    verdict->ok = report->ok();
    verdict->nodes = report->nodes.size();
    verdict->ok_nodes = report->ok_nodes();
    verdict->exit_code = report->exit_code;
  }
  std::ofstream page(html_path, std::ios::out | std::ios::trunc);
  page << RenderReportHtml(*report);
  page.close();
  if (!page) {
    err << "memloadctl report: cannot write " << html_path << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  // The verdict, then every node (failed ones first), as on the page.
  Table table({{"NODE"},
               {"AGENT"},
               {"STATUS"},
               {"TARGET", Table::kRight},
               {"PEAK", Table::kRight},
               {"TIME-TO-TARGET", Table::kRight},
               {"FINAL"},
               {"ERROR", Table::kLeft, true}});
  std::vector<std::pair<TableRowKey, const NodeReport*>> order;
  for (const NodeReport& node : report->nodes) {
    order.emplace_back(RowKey(node.ok(), node.node, node.target), &node);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [key, node] : order) {
    table.AddRow({node->node, node->target, StatusCell(node->ok()),
                  node->target_bytes > 0 ? FormatSize(node->target_bytes) : "-",
                  FormatSize(node->peak_resident_bytes),
                  node->time_to_target ? FormatShortDuration(*node->time_to_target) : "-",
                  node->final_state.empty() ? "-" : node->final_state,
                  node->ok() ? "" : node->error});
  }
  out << VerdictText(*report) << "\n"
      << table.Render() << "wrote " << html_path << ": " << report->samples << " samples, "
      << report->events_total << " events\n";
  return 0;
}

}  // namespace controller
}  // namespace memload
