#include "agent/prometheus_text.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace memload {
namespace agent {
namespace {

TEST(PrometheusTextTest, GoldenExposition) {
  MetricFamily gauge{"memload_plan_resident_bytes",
                     "Resident bytes.\nSecond line \\ here.",
                     MetricType::kGauge,
                     {}};
  gauge.samples.push_back({{{"node", "n1"}, {"plan_id", "drill-1"}}, 67108864});
  gauge.samples.push_back({{{"node", "odd \"name\"\\with\nnewline"}, {"plan_id", "x"}}, 0.25});
  MetricFamily counter{
      "memload_plans_started_total", "Plans started.", MetricType::kCounter, {{{}, 3}}};
  MetricFamily empty{"memload_unused", "Never shown.", MetricType::kGauge, {}};
  EXPECT_EQ(FormatPrometheusText({gauge, counter, empty}),
            "# HELP memload_plan_resident_bytes Resident bytes.\\nSecond line \\\\ here.\n"
            "# TYPE memload_plan_resident_bytes gauge\n"
            "memload_plan_resident_bytes{node=\"n1\",plan_id=\"drill-1\"} 67108864\n"
            "memload_plan_resident_bytes{node=\"odd \\\"name\\\"\\\\with\\nnewline\","
            "plan_id=\"x\"} 0.25\n"
            "# HELP memload_plans_started_total Plans started.\n"
            "# TYPE memload_plans_started_total counter\n"
            "memload_plans_started_total 3\n");
}

TEST(PrometheusTextTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  // Only these three are escaped in label values; tabs and UTF-8 pass through.
  EXPECT_EQ(EscapeLabelValue("tab\tnœud"), "tab\tnœud");
  // HELP escapes backslash and line feed, not quotes.
  EXPECT_EQ(EscapeHelp("say \"hi\"\\\n"), "say \"hi\"\\\\\\n");
}

TEST(PrometheusTextTest, FormatsValuesExactly) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(67108864), "67108864");
  // 2^53 and a 40 GiB byte count stay exact; %g would have rounded them.
  EXPECT_EQ(FormatMetricValue(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatMetricValue(42949672960.0), "42949672960");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(0.5), "0.5");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(1.0 / 3), "0.33333333333333331");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatMetricValue(1e20), "1e+20");
}

}  // namespace
}  // namespace agent
}  // namespace memload
