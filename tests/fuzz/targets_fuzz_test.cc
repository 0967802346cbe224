// Fuzzes --targets lists (controller/targets.h): ParseTargets on literal lists (items that
// read a file, "@path", or ask DNS, "dns:...", are left out: they reach the outside world),
// ParseHostPort with its JoinHostPort round trip, and --selector parsing and matching.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "controller/targets.h"
#include "tests/fuzz/fuzz_check.h"

using ::memload::testing::FuzzCheck;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  using memload::controller::HostPort;

  if (!absl::StrContains(text, "@") && !absl::StrContains(text, "dns:")) {
    (void)memload::controller::ParseTargets(text);
  }
  if (absl::StatusOr<HostPort> host_port = memload::controller::ParseHostPort(text);
      host_port.ok()) {
    FuzzCheck(host_port->port >= 1 && host_port->port <= 65535, "ParseHostPort port in 1..65535");
    const std::string joined = memload::controller::JoinHostPort(host_port->host, host_port->port);
    absl::StatusOr<HostPort> again = memload::controller::ParseHostPort(joined);
    FuzzCheck(again.ok() && again->host == host_port->host && again->port == host_port->port,
              "JoinHostPort(ParseHostPort(x)) parses back to the same host and port");
  }
  if (auto selector = memload::controller::ParseSelector(text); selector.ok()) {
    const std::map<std::string, std::string> labels = {{"zone", "a"}, {"tier", "gold"}};
    (void)memload::controller::MatchesSelector(labels, *selector);
  }
  return 0;
}
