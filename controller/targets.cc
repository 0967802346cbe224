#include "controller/targets.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <tuple>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/base/quoted.h"
#include "core/bounded_read.h"

namespace memload {
namespace controller {
namespace {

constexpr char kForms[] = "expected host:port, [ipv6]:port, @file or dns:///name:port";

absl::Status BadTarget(absl::string_view item, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("target ", Quoted(item), ": ", why));
}

bool IsIpv4(const std::string& host, in_addr* out = nullptr) {
  in_addr addr;
  if (inet_pton(AF_INET, host.c_str(), &addr) != 1) return false;
  if (out != nullptr) *out = addr;
  return true;
}

bool IsIpv6(const std::string& host, in6_addr* out = nullptr) {
  in6_addr addr;
  if (inet_pton(AF_INET6, host.c_str(), &addr) != 1) return false;
  if (out != nullptr) *out = addr;
  return true;
}

// A target in the form that sorts and de-duplicates: IPv4 numerically, then IPv6, then
// names (lower case); then port.
struct TargetKey {
  int family = 0;     // 0 IPv4, 1 IPv6, 2 name.
  std::string bytes;  // Address bytes, or the name.
  int port = 0;
  std::string text;  // The canonical "host:port".

  bool operator<(const TargetKey& other) const {
    return std::tie(family, bytes, port) < std::tie(other.family, other.bytes, other.port);
  }
};

TargetKey MakeKey(const HostPort& hp) {
  TargetKey key;
  key.port = hp.port;
  in_addr v4;
  in6_addr v6;
  char buffer[INET6_ADDRSTRLEN];
  if (IsIpv4(hp.host, &v4)) {
    key.family = 0;
    key.bytes.assign(reinterpret_cast<const char*>(&v4), sizeof(v4));
    inet_ntop(AF_INET, &v4, buffer, sizeof(buffer));
    key.text = JoinHostPort(buffer, hp.port);
  } else if (IsIpv6(hp.host, &v6)) {
    key.family = 1;
    key.bytes.assign(reinterpret_cast<const char*>(&v6), sizeof(v6));
    inet_ntop(AF_INET6, &v6, buffer, sizeof(buffer));
    key.text = JoinHostPort(buffer, hp.port);
  } else {
    key.family = 2;
    key.bytes = absl::AsciiStrToLower(hp.host);
    key.text = JoinHostPort(key.bytes, hp.port);
  }
  return key;
}

bool ValidHostName(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  bool all_numeric = true;
  for (char c : host) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '-' && c != '.' && c != '_') return false;
    if (!absl::ascii_isdigit(u) && c != '.') all_numeric = false;
  }
  // "10.0.0.256" or "010.1.2.3" is a broken address, not a name.
  return !all_numeric;
}

// Bounded (issue 12.7): `--targets=@/dev/zero` is an error at once, not a bad_alloc.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  return ReadFileUpTo(path, kMaxTargetsFileBytes, "--targets=@");
}

// One item that is not an @file: host:port or dns:...
absl::Status AddItem(absl::string_view item, const TargetOptions& options,
                     std::set<TargetKey>* out) {
  if (absl::StartsWith(item, "dns:")) {
    absl::StatusOr<std::vector<std::string>> resolved = ResolveDnsTarget(item, options);
    if (!resolved.ok()) return resolved.status();
    for (const std::string& target : *resolved) {
      absl::StatusOr<HostPort> hp = ParseHostPort(target);
      if (!hp.ok()) return hp.status();
      out->insert(MakeKey(*hp));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<HostPort> hp = ParseHostPort(item);
  if (!hp.ok()) return hp.status();
  out->insert(MakeKey(*hp));
  return absl::OkStatus();
}

absl::Status AddFile(absl::string_view path, const TargetOptions& options,
                     std::set<TargetKey>* out) {
  if (path.empty()) return BadTarget("@", "missing file name after @");
  absl::StatusOr<std::string> contents = ReadFile(std::string(path));
  if (!contents.ok()) return contents.status();
  int items = 0;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*contents, '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    for (absl::string_view item : absl::StrSplit(line, ',')) {
      item = absl::StripAsciiWhitespace(item);
      absl::Status status = absl::OkStatus();
      if (item.empty()) {
        status = BadTarget(line, "empty item");
      } else if (absl::StartsWith(item, "@")) {
        status = BadTarget(item, "@file inside a targets file");
      } else {
        status = AddItem(item, options, out);
        ++items;
      }
      if (!status.ok()) {
        return absl::Status(status.code(),
                            absl::StrFormat("%s:%d: %s", path, line_number, status.message()));
      }
    }
  }
  if (items == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--targets=@%s: no targets in the file", path));
  }
  return absl::OkStatus();
}

// --- DNS through c-ares ---

struct Lookup {
  bool done = false;
  int status = ARES_SUCCESS;
  std::vector<std::string> addresses;
};

void OnAddrInfo(void* arg, int status, int /*timeouts*/, struct ares_addrinfo* result) {
  Lookup* lookup = static_cast<Lookup*>(arg);
  lookup->done = true;
  lookup->status = status;
  if (result == nullptr) return;
  for (ares_addrinfo_node* node = result->nodes; node != nullptr; node = node->ai_next) {
    char buffer[INET6_ADDRSTRLEN];
    const void* address = nullptr;
    if (node->ai_family == AF_INET) {
      address = &reinterpret_cast<const sockaddr_in*>(node->ai_addr)->sin_addr;
    } else if (node->ai_family == AF_INET6) {
      address = &reinterpret_cast<const sockaddr_in6*>(node->ai_addr)->sin6_addr;
    }
    if (address != nullptr && inet_ntop(node->ai_family, address, buffer, sizeof(buffer))) {
      lookup->addresses.push_back(buffer);
    }
  }
  ares_freeaddrinfo(result);
}

// Drives the channel until the lookup ends or `deadline` passes (then cancels it, which
// ends it with ARES_ECANCELLED).
void RunChannel(ares_channel channel, const Lookup& lookup, absl::Time deadline) {
  while (!lookup.done) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      ares_cancel(channel);
      return;
    }
    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> fds;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events != 0) fds.push_back(pollfd{sockets[i], events, 0});
    }
    // Wake for c-ares's own retry timer too.
    timeval max_wait = absl::ToTimeval(left);
    timeval wait_buffer;
    const timeval* wait = ares_timeout(channel, &max_wait, &wait_buffer);
    const int wait_ms = static_cast<int>(
        std::min<int64_t>(absl::ToInt64Milliseconds(absl::DurationFromTimeval(*wait)) + 1,
                          absl::ToInt64Milliseconds(left) + 1));
    const int ready = poll(fds.data(), fds.size(), wait_ms);
    if (ready <= 0) {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // Timeouts only.
      continue;
    }
    for (const pollfd& fd : fds) {
      const bool readable = fd.revents & (POLLIN | POLLERR | POLLHUP);
      const bool writable = fd.revents & POLLOUT;
      if (!readable && !writable) continue;
      ares_process_fd(channel, readable ? fd.fd : ARES_SOCKET_BAD,
                      writable ? fd.fd : ARES_SOCKET_BAD);
    }
  }
}

absl::Status DnsError(absl::string_view uri, absl::string_view name, const std::string& server,
                      int status, absl::Duration timeout) {
  const std::string asked = server.empty() ? "the system resolver" : "DNS server " + server;
  switch (status) {
    case ARES_ENOTFOUND:
      return absl::NotFoundError(absl::StrFormat(
          "%s: \"%s\" does not resolve: no such name (asked %s)", uri, name, asked));
    case ARES_ENODATA:
      return absl::NotFoundError(
          absl::StrFormat("%s: \"%s\" has no A or AAAA records (asked %s)", uri, name, asked));
    case ARES_ECANCELLED:
      return absl::UnavailableError(absl::StrFormat("%s: no DNS answer within %s (asked %s)", uri,
                                                    absl::FormatDuration(timeout), asked));
    default:
      return absl::UnavailableError(
          absl::StrFormat("%s: DNS lookup of \"%s\" failed: %s (asked %s)", uri, name,
                          ares_strerror(status), asked));
  }
}

// `server`: "" for the system resolver, else "ip:port" / "[ipv6]:port".
absl::StatusOr<std::vector<std::string>> Resolve(absl::string_view uri, const std::string& name,
                                                 const std::string& server,
                                                 absl::Duration timeout) {
  static std::once_flag init_once;
  std::call_once(init_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });

  ares_options options;
  std::memset(&options, 0, sizeof(options));
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  // Several tries fit in the bound: a lost UDP datagram should not fail the lookup.
  options.timeout =
      static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(timeout) / 3, 100, 2000));
  options.tries = 3;
  char lookups[] = "b";  // DNS only.
  if (!server.empty()) {
    // A named server is the only source asked: no hosts file, no search domains.
    options.lookups = lookups;
    options.ndomains = 0;
    options.domains = nullptr;
    mask |= ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS;
  }
  ares_channel channel;
  int status = ares_init_options(&channel, &options, mask);
  if (status != ARES_SUCCESS) {
    return absl::UnavailableError(
        absl::StrFormat("%s: cannot start the DNS resolver: %s", uri, ares_strerror(status)));
  }
  absl::Cleanup destroy = [channel] { ares_destroy(channel); };
  if (!server.empty()) {
    status = ares_set_servers_ports_csv(channel, server.c_str());
    if (status != ARES_SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: bad DNS server \"%s\": %s", uri, server, ares_strerror(status)));
    }
  }
  Lookup lookup;
  ares_addrinfo_hints hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;      // A and AAAA.
  hints.ai_flags = ARES_AI_NOSORT;  // The caller sorts; RFC 6724 sorting would probe routes.
  ares_getaddrinfo(channel, name.c_str(), nullptr, &hints, OnAddrInfo, &lookup);
  RunChannel(channel, lookup, absl::Now() + timeout);
  if (lookup.status != ARES_SUCCESS) return DnsError(uri, name, server, lookup.status, timeout);
  if (lookup.addresses.empty()) return DnsError(uri, name, server, ARES_ENODATA, timeout);
  return lookup.addresses;
}

}  // namespace

std::string JoinHostPort(absl::string_view host, int port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  HostPort hp;
  absl::string_view port;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos)
      return BadTarget(text, "missing ']' after an IPv6 address");
    hp.host = std::string(text.substr(1, close - 1));
    if (!IsIpv6(hp.host)) return BadTarget(text, "not an IPv6 address between [ ]");
    absl::string_view rest = text.substr(close + 1);
    if (rest.empty()) return BadTarget(text, absl::StrCat("missing port (", kForms, ")"));
    if (!absl::ConsumePrefix(&rest, ":")) return BadTarget(text, "expected ':port' after ']'");
    port = rest;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return BadTarget(text, absl::StrCat("missing port (", kForms, ")"));
    }
    hp.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (absl::StrContains(hp.host, ':')) {
      return BadTarget(text, "an IPv6 address needs brackets, as in [::1]:7070");
    }
    if (hp.host.empty()) return BadTarget(text, "missing host");
    if (!IsIpv4(hp.host) && !ValidHostName(hp.host)) {
      return BadTarget(text, "not a valid IPv4 address or host name");
    }
  }
  if (port.empty()) return BadTarget(text, "missing port number after ':'");
  int64_t number = 0;
  const bool digits = std::all_of(port.begin(), port.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
  if (!digits || port.size() > 6 || !absl::SimpleAtoi(port, &number)) {
    return BadTarget(text, absl::StrCat("port ", Quoted(port), " is not a number"));
  }
  if (number < 1 || number > 65535) {
    return BadTarget(text, absl::StrFormat("port %d is out of range (1-65535)", number));
  }
  hp.port = static_cast<int>(number);
  return hp;
}

absl::StatusOr<std::vector<std::string>> ResolveDnsTarget(absl::string_view uri,
                                                          const TargetOptions& options) {
  absl::string_view rest = uri;
  if (!absl::ConsumePrefix(&rest, "dns:")) {
    return BadTarget(uri, "expected dns:///name:port or dns://SERVER[:PORT]/name:port");
  }
  std::string server;
  if (absl::ConsumePrefix(&rest, "//")) {
    const size_t slash = rest.find('/');
    if (slash == absl::string_view::npos) {
      return BadTarget(uri, "expected dns:///name:port or dns://SERVER[:PORT]/name:port");
    }
    absl::string_view authority = rest.substr(0, slash);
    rest = rest.substr(slash + 1);
    if (!authority.empty()) {
      // The DNS server: an IP address, port 53 unless given.
      std::string with_port(authority);
      const bool bracketed = absl::StartsWith(authority, "[");
      const bool has_port =
          bracketed ? absl::StrContains(authority, "]:") : absl::StrContains(authority, ':');
      if (!has_port) with_port = absl::StrCat(authority, ":53");
      absl::StatusOr<HostPort> hp = ParseHostPort(with_port);
      if (!hp.ok()) {
        return BadTarget(uri, absl::StrCat("bad DNS server: ", hp.status().message()));
      }
      if (!IsIpv4(hp->host) && !IsIpv6(hp->host)) {
        return BadTarget(uri, "the DNS server must be an IP address");
      }
      server = JoinHostPort(hp->host, hp->port);
    }
  }
  absl::StatusOr<HostPort> name = ParseHostPort(rest);
  if (!name.ok()) {
    return BadTarget(
        uri, absl::StrCat("expected name:port after the DNS part: ", name.status().message()));
  }
  std::vector<std::string> addresses;
  if (IsIpv4(name->host) || IsIpv6(name->host)) {
    addresses.push_back(name->host);  // Nothing to look up.
  } else {
    absl::StatusOr<std::vector<std::string>> resolved =
        Resolve(uri, name->host, server, options.dns_timeout);
    if (!resolved.ok()) return resolved.status();
    addresses = *std::move(resolved);
  }
  std::set<TargetKey> keys;
  for (const std::string& address : addresses) keys.insert(MakeKey({address, name->port}));
  std::vector<std::string> targets;
  for (const TargetKey& key : keys) targets.push_back(key.text);
  return targets;
}

absl::StatusOr<std::vector<std::string>> ParseTargets(absl::string_view spec,
                                                      const TargetOptions& options) {
  spec = absl::StripAsciiWhitespace(spec);
  if (spec.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--targets is empty (", kForms, ")"));
  }
  std::set<TargetKey> keys;
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    item = absl::StripAsciiWhitespace(item);
    absl::Status status;
    if (item.empty()) {
      status = absl::InvalidArgumentError(
          absl::StrCat("--targets=", Quoted(spec), ": empty item between commas"));
    } else if (absl::ConsumePrefix(&item, "@")) {
      status = AddFile(item, options, &keys);
    } else {
      status = AddItem(item, options, &keys);
    }
    if (!status.ok()) return status;
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--targets=", Quoted(spec), ": no targets"));
  }
  std::vector<std::string> targets;
  for (const TargetKey& key : keys) targets.push_back(key.text);
  return targets;
}

absl::StatusOr<Selector> ParseSelector(absl::string_view text) {
  Selector selector;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return selector;
  auto valid = [](absl::string_view s, bool allow_slash) {
    return std::all_of(s.begin(), s.end(), [&](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
             c == '.' || (allow_slash && c == '/');
    });
  };
  for (absl::string_view term : absl::StrSplit(text, ',')) {
    term = absl::StripAsciiWhitespace(term);
    SelectorTerm parsed;
    size_t op = term.find("!=");
    size_t op_size = 2;
    if (op != absl::string_view::npos) {
      parsed.equal = false;
    } else if ((op = term.find("==")) == absl::string_view::npos) {
      op = term.find('=');
      op_size = 1;
    }
    if (op == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--selector term ", Quoted(term), ": expected key=value or key!=value"));
    }
    parsed.key = std::string(absl::StripAsciiWhitespace(term.substr(0, op)));
    parsed.value = std::string(absl::StripAsciiWhitespace(term.substr(op + op_size)));
    if (parsed.key.empty() || !valid(parsed.key, true)) {
      return absl::InvalidArgumentError(absl::StrCat("--selector term ", Quoted(term),
                                                     ": bad label key (letters, digits, - _ . /)"));
    }
    if (!valid(parsed.value, false)) {
      return absl::InvalidArgumentError(absl::StrCat("--selector term ", Quoted(term),
                                                     ": bad label value (letters, digits, - _ .)"));
    }
    selector.push_back(std::move(parsed));
  }
  return selector;
}

}  // namespace controller
}  // namespace memload
