#include "agent/prometheus_text.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace memload {
namespace agent {

namespace {

// The text format's escapes: backslash and line feed always, the double quote where
// `quotes` (label values, which are quoted; HELP text is not).
std::string Escape(absl::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) { return Escape(value, /*quotes=*/true); }

std::string EscapeHelp(absl::string_view help) { return Escape(help, /*quotes=*/false); }

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Byte counts must survive exactly: %g would round 67108864 to 6.71089e+07.
  if (value == std::floor(value) && std::fabs(value) < 9.2e18) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // The shortest of %.15g and %.17g that reads back as the same double ("0.1", not
  // "0.10000000000000001").
  std::string text = absl::StrFormat("%.15g", value);
  double back = 0;
  if (absl::SimpleAtod(text, &back) && back == value) return text;
  return absl::StrFormat("%.17g", value);
}

std::string FormatPrometheusText(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const MetricFamily& family : families) {
    if (family.samples.empty()) continue;
    absl::StrAppend(&out, "# HELP ", family.name, " ", EscapeHelp(family.help), "\n", "# TYPE ",
                    family.name, " ", family.type == MetricType::kCounter ? "counter" : "gauge",
                    "\n");
    for (const MetricSample& sample : family.samples) {
      out += family.name;
      if (!sample.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < sample.labels.size(); ++i) {
          absl::StrAppend(&out, i > 0 ? "," : "", sample.labels[i].first, "=\"",
                          EscapeLabelValue(sample.labels[i].second), "\"");
        }
        out += '}';
      }
      absl::StrAppend(&out, " ", FormatMetricValue(sample.value), "\n");
    }
  }
  return out;
}

}  // namespace agent
}  // namespace memload
