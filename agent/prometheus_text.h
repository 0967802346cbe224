// The Prometheus text exposition format (version 0.0.4), written by hand: a handful of
// gauges and counters do not need a client library, and Debian ships none for C++.
//
//   MetricFamily family{"memload_plan_resident_bytes", "Resident bytes of a plan.",
//                       MetricType::kGauge, {}};
//   family.samples.push_back({{{"node", "n1"}, {"plan_id", "drill"}}, 67108864});
//   std::string text = FormatPrometheusText({family});
//   // # HELP memload_plan_resident_bytes Resident bytes of a plan.
//   // # TYPE memload_plan_resident_bytes gauge
//   // memload_plan_resident_bytes{node="n1",plan_id="drill"} 67108864
//
// Thread-safety: pure functions, thread-safe.
#ifndef MEMLOAD_AGENT_PROMETHEUS_TEXT_H_
#define MEMLOAD_AGENT_PROMETHEUS_TEXT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace memload {
namespace agent {

// The content type Prometheus expects for this format.
inline constexpr char kPrometheusTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kGauge, kCounter };

struct MetricSample {
  std::vector<std::pair<std::string, std::string>> labels;  // Name, value; in this order.
  double value = 0;
};

struct MetricFamily {
  std::string name;  // [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total.
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<MetricSample> samples;
};

// Label values: backslash, double quote and line feed become \\, \" and \n.
std::string EscapeLabelValue(absl::string_view value);
// HELP text: backslash and line feed become \\ and \n.
std::string EscapeHelp(absl::string_view help);
// Integral values up to 2^63 exactly ("67108864", never "6.7e+07"); others in as few
// digits as read back exactly ("0.1"); "+Inf", "-Inf", "NaN".
std::string FormatMetricValue(double value);

// Every family as "# HELP", "# TYPE" and one line per sample, each line ending in '\n'.
// A family without samples is left out (Prometheus would show a metric with no series).
std::string FormatPrometheusText(const std::vector<MetricFamily>& families);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_PROMETHEUS_TEXT_H_
