// Targets: which agents a command talks to (--targets) and which of them it keeps
// (--selector).
//
// --targets is a comma-separated list of items, each one of:
//   host:port                 "10.0.0.5:7070", "node-3.lab:7070", "[fd00::7]:7070"
//   @file                     one item per line; '#' starts a comment; blank lines skipped
//   dns:///name:port          every address (A and AAAA) behind `name`, through the system
//                             resolver (a Kubernetes headless Service)
//   dns://SERVER[:PORT]/name:port   the same, asking the DNS server SERVER (an IP address;
//                             port 53 by default) and nobody else (no hosts file, no search)
// The result is sorted (IPv4 numerically, then IPv6, then names; then port) and
// de-duplicated, addresses in canonical form ("[fd00::7]:7070").
//
//   MEMLOAD_ASSIGN_OR_RETURN(std::vector<std::string> targets,
//                            ParseTargets("dns:///memload-agent.memload.svc:7070"));
//   MEMLOAD_ASSIGN_OR_RETURN(Selector selector, ParseSelector("zone=a,pool!=spot"));
//   if (MatchesSelector(node_info.labels(), selector)) { ... }
//
// Thread-safety: every function is thread-safe (each DNS lookup uses a c-ares channel of
// its own).
#ifndef MEMLOAD_CONTROLLER_TARGETS_H_
#define MEMLOAD_CONTROLLER_TARGETS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memload {
namespace controller {

struct TargetOptions {
  // Bound on each dns: item's whole lookup (A and AAAA, retries included).
  absl::Duration dns_timeout = absl::Seconds(5);
};

// Expands --targets. Errors:
//   InvalidArgument  bad syntax (missing port, port out of range, IPv6 without brackets,
//                    empty list or item); the message quotes the item (and file:line)
//   NotFound / PermissionDenied ...  an unreadable @file (from errno)
//   NotFound         a DNS name that does not exist or has no A/AAAA records
//   Unavailable      no DNS answer in time, or the server failed
absl::StatusOr<std::vector<std::string>> ParseTargets(
    absl::string_view spec, const TargetOptions& options = TargetOptions());

// One "host:port" split and checked: host without brackets ("::1"), port 1-65535.
struct HostPort {
  std::string host;
  int port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);
// "host:port", with brackets around an IPv6 address.
std::string JoinHostPort(absl::string_view host, int port);

// Resolves one "dns:///name:port" or "dns://SERVER[:PORT]/name:port" to every address
// behind the name, as "addr:port" (sorted, de-duplicated).
absl::StatusOr<std::vector<std::string>> ResolveDnsTarget(
    absl::string_view uri, const TargetOptions& options = TargetOptions());

// --selector: comma-separated terms "key=value" (also "key==value") and "key!=value"
// (a missing label counts as different). All terms must hold. "" selects everything.
struct SelectorTerm {
  std::string key;
  std::string value;
  bool equal = true;  // false for "!=".
};
using Selector = std::vector<SelectorTerm>;

// InvalidArgument names the bad term.
absl::StatusOr<Selector> ParseSelector(absl::string_view text);

// `labels`: any string→string map with find()/end() (std::map, google::protobuf::Map).
template <typename LabelMap>
bool MatchesSelector(const LabelMap& labels, const Selector& selector) {
  for (const SelectorTerm& term : selector) {
    const auto it = labels.find(term.key);
    const bool same = it != labels.end() && it->second == term.value;
    if (same != term.equal) return false;
  }
  return true;
}

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_TARGETS_H_
