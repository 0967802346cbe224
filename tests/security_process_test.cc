// memload-agent and memloadctl as a user runs them with security on: the plaintext
// refusal, bad files, and memloadctl over mutual TLS with a token (from a file and from
// MEMLOAD_TOKEN), with the agent's audit log read from its stderr.
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_certs.h"

namespace memload {
namespace testing {
namespace {

using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFullToken[] = "e2e-full-5d41402abc4b2a76b9719d911017c592";
constexpr char kReadOnlyToken[] = "e2e-reader-7d793037a0760186574b0282f2f435e7";

class SecurityProcessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/pki"));
    mkdir(dir_->c_str(), 0700);
    absl::StatusOr<TestPki> pki = MakeTestPki(*dir_);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new TestPki(*std::move(pki));
    WriteFile(Path("tokens"), absl::StrCat(kFullToken, "\n", kReadOnlyToken, ":read-only\n"));
    WriteFile(Path("full.token"), absl::StrCat(kFullToken, "\n"));
    WriteFile(Path("empty"), "# no token here\n");
  }
  static std::string Path(const std::string& name) { return absl::StrCat(*dir_, "/", name); }

  // An agent that is expected to refuse to start: its exit code and stderr.
  static CommandResult RefusedAgent(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {AgentBinary()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunCommand(argv, absl::Seconds(20));
  }

  static CommandResult Ctl(const std::vector<std::string>& args,
                           const std::string& memload_token = "") {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "MEMLOAD_TOKEN"};
    if (!memload_token.empty()) argv.push_back("MEMLOAD_TOKEN=" + memload_token);
    argv.push_back(CtlBinary());
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60));
  }

  static std::string* dir_;
  static TestPki* pki_;
};
std::string* SecurityProcessTest::dir_ = nullptr;
TestPki* SecurityProcessTest::pki_ = nullptr;

TEST_F(SecurityProcessTest, PlaintextOnANonLoopbackAddressWithoutTokensIsRefused) {
  CommandResult refused = RefusedAgent({"--listen=0.0.0.0:0"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_THAT(refused.err,
              AllOf(HasSubstr("refusing to serve 0.0.0.0:0 (not a loopback address) in "
                              "plaintext without authenticating clients"),
                    HasSubstr("--auth-token-file"), HasSubstr("--insecure")));
  EXPECT_THAT(refused.err, Not(HasSubstr("listening on")));
}

TEST_F(SecurityProcessTest, InsecureServesANonLoopbackAddressAndWarns) {
  // Bound only: nothing is sent to it from outside loopback.
  absl::StatusOr<Subprocess> agent =
      Subprocess::Start({AgentBinary(), "--listen=0.0.0.0:0", "--insecure"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_THAT(WaitForAgentAddress(*agent, absl::Seconds(10)), HasSubstr("0.0.0.0:"))
      << agent->Stderr();
  // The warning may follow the "listening on" line: wait for it.
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(agent->Stderr(), "warning: --insecure: anyone who can reach");
  })) << agent->Stderr();
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(absl::Seconds(5)).value_or(-1), 0);
}

TEST_F(SecurityProcessTest, BadFilesStopTheAgentAtStart) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--tls-cert=" + Path("missing.crt"), "--tls-key=" + pki_->server.key},
       Path("missing.crt") + ": cannot read"},
      {{"--tls-cert=" + pki_->server.cert}, "--tls-cert and --tls-key go together"},
      {{"--tls-cert=" + pki_->server.cert, "--tls-key=" + pki_->client.key},
       "is not the private key of"},
      {{"--tls-cert=" + pki_->expired_server.cert, "--tls-key=" + pki_->expired_server.key},
       "expired on"},
      {{"--tls-cert=" + pki_->server.cert, "--tls-key=" + pki_->server.key,
        "--tls-client-ca=" + pki_->server.key},
       "no PEM certificate"},
      {{"--auth-token-file=" + Path("missing-tokens")}, "missing-tokens: cannot read"},
      {{"--auth-token-file=" + Path("empty")}, "no token in it"},
  };
  for (const auto& [flags, message] : cases) {
    std::vector<std::string> argv = {"--listen=127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    CommandResult refused = RefusedAgent(argv);
    EXPECT_EQ(refused.exit_code, 2) << absl::StrJoin(flags, " ") << "\n" << refused.err;
    EXPECT_THAT(refused.err, HasSubstr(message)) << absl::StrJoin(flags, " ");
  }
}

TEST_F(SecurityProcessTest, BadFilesAreUsageErrorsOfMemloadctl) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--tls-ca=" + Path("missing-ca.crt")}, Path("missing-ca.crt") + ": cannot read"},
      {{"--tls-ca=" + pki_->ca_cert, "--tls-cert=" + pki_->client.cert},
       "--tls-cert and --tls-key go together"},
      {{"--tls-cert=" + pki_->client.cert, "--tls-key=" + pki_->client.key}, "need --tls-ca"},
      {{"--tls-ca=" + pki_->ca_cert, "--tls-cert=" + pki_->expired_client.cert,
        "--tls-key=" + pki_->expired_client.key},
       "expired on"},
      {{"--token-file=" + Path("missing.token")}, "missing.token: cannot read"},
      {{"--token-file=" + Path("empty")}, "no token in it"},
  };
  for (const auto& [flags, message] : cases) {
    std::vector<std::string> argv = {"usage", "--targets=127.0.0.1:1"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    CommandResult refused = Ctl(argv);
    EXPECT_EQ(refused.exit_code, 2) << absl::StrJoin(flags, " ") << "\n" << refused.err;
    EXPECT_THAT(refused.err, HasSubstr(message)) << absl::StrJoin(flags, " ");
  }
  CommandResult bad_env = Ctl({"usage", "--targets=127.0.0.1:1"}, "two words");
  EXPECT_EQ(bad_env.exit_code, 2);
  EXPECT_THAT(bad_env.err, AllOf(HasSubstr("MEMLOAD_TOKEN"), Not(HasSubstr("two words"))));
}

TEST_F(SecurityProcessTest, MemloadctlOverMutualTlsWithTokens) {
  absl::StatusOr<Subprocess> agent = Subprocess::Start(
      {AgentBinary(), "--listen=127.0.0.1:0", "--node-name=secure-1", "--reserve=16MiB",
       "--tls-cert=" + pki_->server.cert, "--tls-key=" + pki_->server.key,
       "--tls-client-ca=" + pki_->ca_cert, "--auth-token-file=" + Path("tokens")});
  ASSERT_TRUE(agent.ok()) << agent.status();
  const std::string address = WaitForAgentAddress(*agent, absl::Seconds(10));
  ASSERT_FALSE(address.empty()) << agent->Stderr();
  // The security line follows the "listening on" line: wait for it (read at once, it was
  // missing in 1 of 5 runs under load).
  EXPECT_TRUE(Eventually([&] { return absl::StrContains(agent->Stderr(), "security: "); }))
      << agent->Stderr();
  EXPECT_THAT(agent->Stderr(), HasSubstr("security: tls=mutual cert=\"CN=localhost\""));
  EXPECT_THAT(agent->Stderr(), HasSubstr("tokens=2 (1 read-only)"));

  const std::vector<std::string> tls = {"--targets=" + address, "--tls-ca=" + pki_->ca_cert,
                                        "--tls-cert=" + pki_->client.cert,
                                        "--tls-key=" + pki_->client.key};
  auto with = [&tls](std::vector<std::string> args) {
    args.insert(args.begin() + 1, tls.begin(), tls.end());
    return args;
  };

  CommandResult start = Ctl(with({"start", "--token-file=" + Path("full.token"), "--kind=retained",
                                  "--target=1MiB", "--plan-id=secure-e2e", "--lease=60s"}));
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  CommandResult usage = Ctl(with({"usage", "--output=json"}), kFullToken);
  EXPECT_EQ(usage.exit_code, 0) << usage.out << usage.err;
  EXPECT_THAT(usage.out, HasSubstr("secure-e2e"));
  // Read-only from MEMLOAD_TOKEN: usage yes, stop no.
  CommandResult read_only_usage = Ctl(with({"usage", "--output=json"}), kReadOnlyToken);
  EXPECT_EQ(read_only_usage.exit_code, 0) << read_only_usage.err;
  CommandResult read_only_stop =
      Ctl(with({"stop", "--plan-id=secure-e2e", "--output=json"}), kReadOnlyToken);
  EXPECT_EQ(read_only_stop.exit_code, 1) << read_only_stop.err;
  EXPECT_THAT(read_only_stop.out, HasSubstr("PERMISSION_DENIED"));
  // No token; and no client certificate.
  CommandResult anonymous = Ctl(with({"usage", "--output=json"}));
  EXPECT_EQ(anonymous.exit_code, 1) << anonymous.err;
  EXPECT_THAT(anonymous.out, HasSubstr("UNAUTHENTICATED"));
  CommandResult no_cert = Ctl({"usage", "--targets=" + address, "--tls-ca=" + pki_->ca_cert,
                               "--output=json", "--retries=0"},
                              kFullToken);
  EXPECT_EQ(no_cert.exit_code, 1) << no_cert.err;
  EXPECT_THAT(no_cert.out, HasSubstr("UNAVAILABLE"));

  CommandResult stop = Ctl(with({"stop", "--plan-id=secure-e2e"}), kFullToken);
  EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;

  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(absl::Seconds(5)).value_or(-1), 0);
  const std::string log = agent->Stderr();
  const std::string cert = "cert=\"O=memload tests,CN=memloadctl-test\" peer=ipv4:127.0.0.1:";
  EXPECT_THAT(log, ContainsRegex("audit: StartPlan plan=secure-e2e token=token-[0-9a-f]{4} " +
                                 cert + "[0-9]+ -> OK"));
  EXPECT_THAT(log, ContainsRegex("audit: StopPlan plan=secure-e2e token=token-[0-9a-f]{4} " + cert +
                                 "[0-9]+ -> OK"));
  EXPECT_THAT(log, ContainsRegex("audit: StopPlan plan=- token=token-[0-9a-f]{4} cert=\"O=memload "
                                 "tests,CN=memloadctl-test\" peer=- -> PERMISSION_DENIED "
                                 "\\(read-only token\\)"));
  EXPECT_THAT(log, HasSubstr("-> UNAUTHENTICATED (no token)"));
  EXPECT_THAT(log, Not(HasSubstr(kFullToken)));
  EXPECT_THAT(log, Not(HasSubstr(kReadOnlyToken)));
}

}  // namespace
}  // namespace testing
}  // namespace memload
