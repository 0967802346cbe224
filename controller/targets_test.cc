#include "controller/targets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/map.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAAAA = 28;

// A tiny authoritative DNS server on 127.0.0.1:0 (UDP), for tests only: it answers A and
// AAAA queries for one name with fixed addresses and NXDOMAIN for every other name. When
// `silent`, it reads queries and never answers (a dead server).
class FakeDnsServer {
 public:
  FakeDnsServer(std::string name, std::vector<std::string> ipv4, std::vector<std::string> ipv6,
                bool silent = false)
      : name_(absl::AsciiStrToLower(name)), ipv4_(ipv4), ipv6_(ipv6), silent_(silent) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    EXPECT_EQ(pipe(stop_), 0);
    thread_ = std::thread([this] { Serve(); });
  }

  ~FakeDnsServer() {
    EXPECT_EQ(write(stop_[1], "x", 1), 1);
    thread_.join();
    close(stop_[0]);
    close(stop_[1]);
    close(fd_);
  }

  int port() const { return port_; }
  int queries(uint16_t type) const { return type == kTypeA ? a_queries_ : aaaa_queries_; }

 private:
  void Serve() {
    while (true) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) return;
      if (fds[1].revents != 0) return;
      uint8_t query[512];
      sockaddr_storage from;
      socklen_t from_length = sizeof(from);
      const ssize_t n =
          recvfrom(fd_, query, sizeof(query), 0, reinterpret_cast<sockaddr*>(&from), &from_length);
      if (n < 12) continue;
      std::string reply;
      if (!Answer(query, static_cast<size_t>(n), &reply) || silent_) continue;
      sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_length);
    }
  }

  // Builds the answer to one query; false for anything that is not a simple question.
  bool Answer(const uint8_t* query, size_t size, std::string* reply) {
    if (((query[4] << 8) | query[5]) != 1) return false;  // QDCOUNT must be 1.
    size_t at = 12;
    std::string qname;
    while (at < size && query[at] != 0) {
      const size_t length = query[at];
      if (length > 63 || at + 1 + length > size) return false;
      if (!qname.empty()) qname += '.';
      qname.append(reinterpret_cast<const char*>(query + at + 1), length);
      at += 1 + length;
    }
    if (at + 5 > size) return false;
    const size_t question_end = at + 5;  // Root label, QTYPE, QCLASS.
    const uint16_t qtype = (query[at + 1] << 8) | query[at + 2];
    if (qtype == kTypeA) ++a_queries_;
    if (qtype == kTypeAAAA) ++aaaa_queries_;

    std::vector<std::string> rdata;
    const bool known = absl::AsciiStrToLower(qname) == name_;
    if (known && qtype == kTypeA) {
      for (const std::string& ip : ipv4_) {
        in_addr address;
        inet_pton(AF_INET, ip.c_str(), &address);
        rdata.emplace_back(reinterpret_cast<const char*>(&address), sizeof(address));
      }
    } else if (known && qtype == kTypeAAAA) {
      for (const std::string& ip : ipv6_) {
        in6_addr address;
        inet_pton(AF_INET6, ip.c_str(), &address);
        rdata.emplace_back(reinterpret_cast<const char*>(&address), sizeof(address));
      }
    }
    auto put16 = [reply](uint16_t value) {
      reply->push_back(static_cast<char>(value >> 8));
      reply->push_back(static_cast<char>(value & 0xff));
    };
    reply->assign(reinterpret_cast<const char*>(query), 2);         // Same ID.
    reply->push_back(static_cast<char>(0x84 | (query[2] & 0x01)));  // QR, AA, copy RD.
    reply->push_back(static_cast<char>(0x80 | (known ? 0 : 3)));    // RA; NXDOMAIN if unknown.
    put16(1);
    put16(static_cast<uint16_t>(rdata.size()));
    put16(0);
    put16(0);
    reply->append(reinterpret_cast<const char*>(query + 12), question_end - 12);
    for (const std::string& data : rdata) {
      put16(0xc00c);  // The name: a pointer to the question's.
      put16(qtype);
      put16(1);  // IN
      put16(0);  // TTL: 60 s.
      put16(60);
      put16(static_cast<uint16_t>(data.size()));
      reply->append(data);
    }
    return true;
  }

  const std::string name_;
  const std::vector<std::string> ipv4_;
  const std::vector<std::string> ipv6_;
  const bool silent_;
  int fd_ = -1;
  int port_ = 0;
  int stop_[2] = {-1, -1};
  std::atomic<int> a_queries_{0};
  std::atomic<int> aaaa_queries_{0};
  std::thread thread_;
};

std::string TempFile(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
  std::ofstream(path) << contents;
  return path;
}

TEST(ParseTargetsTest, HostPortListSortedAndDeduplicated) {
  EXPECT_THAT(ParseTargets("10.0.0.10:7070, 10.0.0.2:7070,node-b:7070,[0:0::1]:7070,"
                           "Node-A:7070,10.0.0.2:7070,[::1]:7070,10.0.0.2:80"),
              IsOk());
  EXPECT_THAT(*ParseTargets("10.0.0.10:7070, 10.0.0.2:7070,node-b:7070,[0:0::1]:7070,"
                            "Node-A:7070,10.0.0.2:7070,[::1]:7070,10.0.0.2:80"),
              ElementsAre("10.0.0.2:80", "10.0.0.2:7070", "10.0.0.10:7070", "[::1]:7070",
                          "node-a:7070", "node-b:7070"));
}

TEST(ParseTargetsTest, FileWithCommentsAndBlankLines) {
  const std::string path = TempFile("targets.txt",
                                    "# the lab\n"
                                    "10.0.0.3:7070\n"
                                    "\n"
                                    "   10.0.0.1:7070   # rack 1\n"
                                    "[fd00::1]:7070\n");
  EXPECT_THAT(*ParseTargets("@" + path),
              ElementsAre("10.0.0.1:7070", "10.0.0.3:7070", "[fd00::1]:7070"));
  EXPECT_THAT(*ParseTargets("@" + path + ",10.0.0.2:7070"),
              ElementsAre("10.0.0.1:7070", "10.0.0.2:7070", "10.0.0.3:7070", "[fd00::1]:7070"));
}

TEST(ParseTargetsTest, BadItemsSayWhatIsWrong) {
  const struct {
    const char* spec;
    const char* message;
  } cases[] = {
      {"10.0.0.1", "missing port"},
      {"node-a", "missing port"},
      {"[::1]", "missing port"},
      {"10.0.0.1:", "missing port number"},
      {"10.0.0.1:0", "port 0 is out of range (1-65535)"},
      {"10.0.0.1:65536", "port 65536 is out of range (1-65535)"},
      {"10.0.0.1:http", "port \"http\" is not a number"},
      {"10.0.0.1:-1", "is not a number"},
      {"::1:7070", "IPv6 address needs brackets"},
      {"[::g]:7070", "not an IPv6 address"},
      {"[::1]7070", "expected ':port'"},
      {"10.0.0.256:7070", "not a valid IPv4 address or host name"},
      {"bad host:7070", "not a valid IPv4 address or host name"},
      {":7070", "missing host"},
      {"", "--targets is empty"},
      {"   ", "--targets is empty"},
      {"10.0.0.1:7070,,10.0.0.2:7070", "empty item"},
      {"@", "missing file name"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(ParseTargets(c.spec),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.spec;
  }
}

TEST(ParseTargetsTest, UnreadableOrBadFiles) {
  EXPECT_THAT(ParseTargets("@/nonexistent/targets.txt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/targets.txt")));
  const char* dir = std::getenv("TEST_TMPDIR");
  EXPECT_THAT(ParseTargets(absl::StrCat("@", dir != nullptr ? dir : "/tmp")),
              ::testing::Not(IsOk()));
  const std::string empty = TempFile("empty.txt", "# nothing here\n\n");
  EXPECT_THAT(ParseTargets("@" + empty),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no targets in the file")));
  const std::string bad = TempFile("bad.txt", "10.0.0.1:7070\n10.0.0.2\n");
  EXPECT_THAT(ParseTargets("@" + bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr(bad + ":2: target \"10.0.0.2\"")));
  const std::string nested = TempFile("nested.txt", "@" + bad + "\n");
  EXPECT_THAT(ParseTargets("@" + nested),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("@file inside")));
}

// A bad target is quoted in the error, but never whole: a 15 MB line of a targets file was
// echoed back as a 15 MB message, and `--targets=@/proc/self/environ` printed the environment.
TEST(ParseTargetsTest, ErrorsQuoteAtMostThe64FirstBytesOfTheInput) {
  const std::string long_host(10000, 'h');
  const std::string secret = "SECRET_TOKEN=abcdef";
  const std::string file =
      TempFile("long.txt", absl::StrCat(std::string(100000, 'q'), secret, "\n"));
  const struct {
    std::string spec;
    size_t input_bytes;
  } cases[] = {
      {long_host + ":http", long_host.size() + 5},
      {"10.0.0.1:7070,," + long_host + ":7070", 15 + long_host.size() + 5},
      {"@" + file, 100000 + secret.size()},
      {"dns:///" + long_host, long_host.size() + 7},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::vector<std::string>> parsed = ParseTargets(c.spec);
    ASSERT_FALSE(parsed.ok()) << c.spec.substr(0, 80);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(parsed.status().message());
    EXPECT_LT(message.size(), 512u) << message.substr(0, 512);
    EXPECT_THAT(message, HasSubstr(absl::StrCat("...\" (", c.input_bytes, " bytes)")));
    EXPECT_THAT(message, ::testing::Not(HasSubstr(secret)));
  }
  // Short input is still quoted whole, control characters escaped.
  EXPECT_THAT(ParseTargets("10.0.0.2"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target \"10.0.0.2\"")));
  EXPECT_THAT(ParseTargets("bad\x1b[2Jhost:7070"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target \"bad\\x1b[2Jhost")));
  EXPECT_THAT(ParseSelector(absl::StrCat("k=", std::string(5000, 'v'), "!")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("...\" (5003 bytes)")));
}

TEST(ParseTargetsTest, DnsNameResolvesToEveryAddress) {
  FakeDnsServer dns("agents.test", {"10.1.0.2", "10.1.0.1", "10.1.0.10"}, {"fd00::2", "fd00::1"});
  const std::string uri = absl::StrCat("dns://127.0.0.1:", dns.port(), "/agents.test:7070");
  EXPECT_THAT(*ParseTargets(uri), ElementsAre("10.1.0.1:7070", "10.1.0.2:7070", "10.1.0.10:7070",
                                              "[fd00::1]:7070", "[fd00::2]:7070"));
  EXPECT_GE(dns.queries(kTypeA), 1);
  EXPECT_GE(dns.queries(kTypeAAAA), 1);
  // Mixed with plain targets, and de-duplicated against them.
  EXPECT_THAT(*ParseTargets("10.1.0.1:7070,10.0.0.9:7070," + uri),
              ElementsAre("10.0.0.9:7070", "10.1.0.1:7070", "10.1.0.2:7070", "10.1.0.10:7070",
                          "[fd00::1]:7070", "[fd00::2]:7070"));
}

TEST(ParseTargetsTest, DnsNameWithOnlyIpv4) {
  FakeDnsServer dns("v4only.test", {"192.0.2.7"}, {});
  EXPECT_THAT(*ResolveDnsTarget(absl::StrCat("dns://127.0.0.1:", dns.port(), "/v4only.test:1")),
              ElementsAre("192.0.2.7:1"));
}

TEST(ParseTargetsTest, UnknownDnsNameIsNotFound) {
  FakeDnsServer dns("agents.test", {"10.1.0.1"}, {});
  const std::string uri = absl::StrCat("dns://127.0.0.1:", dns.port(), "/missing.test:7070");
  EXPECT_THAT(ParseTargets(uri),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("\"missing.test\" does not resolve: no such name (asked DNS "
                                 "server 127.0.0.1:")));
}

TEST(ParseTargetsTest, SilentDnsServerIsUnavailableWithinTheTimeout) {
  FakeDnsServer dns("agents.test", {"10.1.0.1"}, {}, /*silent=*/true);
  TargetOptions options;
  options.dns_timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  EXPECT_THAT(
      ParseTargets(absl::StrCat("dns://127.0.0.1:", dns.port(), "/agents.test:7070"), options),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("agents.test")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(ParseTargetsTest, DnsForms) {
  // An address needs no lookup.
  EXPECT_THAT(*ParseTargets("dns:///10.0.0.1:7070"), ElementsAre("10.0.0.1:7070"));
  EXPECT_THAT(*ParseTargets("dns:///[fd00::1]:7070"), ElementsAre("[fd00::1]:7070"));
  // The system resolver reads the hosts file.
  EXPECT_THAT(*ParseTargets("dns:///localhost:7070"), Contains("127.0.0.1:7070"));
  const struct {
    const char* spec;
    const char* message;
  } bad[] = {
      {"dns:///agents.test", "missing port"},
      {"dns://127.0.0.1", "expected dns:///name:port"},
      {"dns://dns.example/agents.test:7070", "the DNS server must be an IP address"},
      {"dns://127.0.0.1:99999/agents.test:7070", "bad DNS server"},
      {"dns://::1/agents.test:7070", "needs brackets"},
      {"dns:///agents.test:0", "out of range"},
  };
  for (const auto& c : bad) {
    EXPECT_THAT(ParseTargets(c.spec),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.spec;
  }
}

TEST(HostPortTest, SplitsAndJoins) {
  EXPECT_EQ(ParseHostPort("[::1]:7070")->host, "::1");
  EXPECT_EQ(ParseHostPort("[::1]:7070")->port, 7070);
  EXPECT_EQ(ParseHostPort("node:1")->host, "node");
  EXPECT_EQ(JoinHostPort("::1", 7070), "[::1]:7070");
  EXPECT_EQ(JoinHostPort("10.0.0.1", 7070), "10.0.0.1:7070");
}

TEST(SelectorTest, ParsesAndMatches) {
  const Selector selector = *ParseSelector("zone=a, pool!=spot,tier==gold");
  ASSERT_EQ(selector.size(), 3u);
  EXPECT_EQ(selector[1].key, "pool");
  EXPECT_FALSE(selector[1].equal);
  std::map<std::string, std::string> labels = {{"zone", "a"}, {"tier", "gold"}};
  EXPECT_TRUE(MatchesSelector(labels, selector));  // No pool label: not "spot".
  labels["pool"] = "spot";
  EXPECT_FALSE(MatchesSelector(labels, selector));
  labels["pool"] = "ondemand";
  labels["zone"] = "b";
  EXPECT_FALSE(MatchesSelector(labels, selector));
  // Works on protobuf maps (NodeInfo.labels) too.
  google::protobuf::Map<std::string, std::string> proto_labels;
  proto_labels["kubernetes.io/hostname"] = "n1";
  EXPECT_TRUE(MatchesSelector(proto_labels, *ParseSelector("kubernetes.io/hostname=n1")));
  EXPECT_FALSE(MatchesSelector(proto_labels, *ParseSelector("kubernetes.io/hostname=n2")));
  EXPECT_TRUE(MatchesSelector(proto_labels, *ParseSelector("")));
}

TEST(SelectorTest, RefusesBadTerms) {
  for (const char* text : {"zone", "=a", "zone=a,", "zone=a b", "zo ne=a", "zone=a/b"}) {
    EXPECT_THAT(ParseSelector(text),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--selector term")))
        << text;
  }
}

}  // namespace
}  // namespace controller
}  // namespace memload
