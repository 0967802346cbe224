#include "controller/cli_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::testing::HasSubstr;

GetEnv EnvOf(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

constexpr char kConfig[] = R"(# two contexts
current-context = lab

[context "lab"]
targets = 10.0.0.5:7070,10.0.0.6:7070
token-file = /lab/token

[context "prod"]
targets = dns:///memload-agent.memload.svc:7070
selector = zone=a
tls-ca = /prod/ca.pem
)";

TEST(CliConfigTest, ParsesAndFormatsRoundTrip) {
  absl::StatusOr<CliConfig> config = ParseCliConfig(kConfig, "config");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->current_context, "lab");
  ASSERT_EQ(config->contexts.size(), 2u);
  EXPECT_EQ(config->Find("prod")->settings.at("selector"), "zone=a");
  absl::StatusOr<CliConfig> again = ParseCliConfig(FormatCliConfig(*config), "config");
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(FormatCliConfig(*again), FormatCliConfig(*config));
}

TEST(CliConfigTest, RejectsBadFilesNamingTheLine) {
  EXPECT_THAT(ParseCliConfig("[context \"a\"]\ncolour = red\n", "c"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("c:2: unknown setting")));
  EXPECT_THAT(ParseCliConfig("current-context = nope\n", "c"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names no context")));
  EXPECT_THAT(ParseCliConfig("[context \"a b\"]\n", "c"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("c:1")));
  EXPECT_THAT(ParseCliConfig("[context \"a\"]\n[context \"a\"]\n", "c"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("given twice")));
  EXPECT_THAT(ParseCliConfig("targets\n", "c"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("want KEY = VALUE")));
}

TEST(CliConfigTest, PathFromEnvironment) {
  EXPECT_EQ(ConfigPath(EnvOf({{"MEMLOAD_CONFIG", "/x/c"}, {"HOME", "/home/u"}})), "/x/c");
  EXPECT_EQ(ConfigPath(EnvOf({{"HOME", "/home/u"}})), "/home/u/.config/memload/config");
  EXPECT_EQ(ConfigPath(EnvOf({})), "");
  EXPECT_EQ(EnvVarOf("tls-server-name"), "MEMLOAD_TLS_SERVER_NAME");
}

// Flags win over --context, which wins over the environment, which wins over the
// current context.
TEST(CliConfigTest, Precedence) {
  const CliConfig config = *ParseCliConfig(kConfig, "config");
  // Current context only.
  absl::StatusOr<ConnectionSettings> s = ResolveConnection({}, "", config, EnvOf({}));
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->context, "lab");
  EXPECT_EQ(s->values.at("targets"), "10.0.0.5:7070,10.0.0.6:7070");
  EXPECT_EQ(s->sources.at("token-file"), "context lab");
  // The environment beats the current context.
  s = ResolveConnection({}, "", config,
                        EnvOf({{"MEMLOAD_TARGETS", "env:1"}, {"MEMLOAD_TOKEN_FILE", "/env/t"}}));
  EXPECT_EQ(s->values.at("targets"), "env:1");
  EXPECT_EQ(s->sources.at("targets"), "env MEMLOAD_TARGETS");
  EXPECT_EQ(s->values.at("token-file"), "/env/t");
  // --context beats the environment where it has the setting; env fills the rest.
  s = ResolveConnection({}, "prod", config,
                        EnvOf({{"MEMLOAD_TARGETS", "env:1"}, {"MEMLOAD_TOKEN_FILE", "/env/t"}}));
  EXPECT_EQ(s->context, "prod");
  EXPECT_EQ(s->values.at("targets"), "dns:///memload-agent.memload.svc:7070");
  EXPECT_EQ(s->values.at("token-file"), "/env/t");
  EXPECT_EQ(s->values.count("tls-cert"), 0u);
  // MEMLOAD_CONTEXT chooses like --context; the flag wins over it.
  s = ResolveConnection({}, "", config, EnvOf({{"MEMLOAD_CONTEXT", "prod"}}));
  EXPECT_EQ(s->values.at("tls-ca"), "/prod/ca.pem");
  s = ResolveConnection({}, "lab", config, EnvOf({{"MEMLOAD_CONTEXT", "prod"}}));
  EXPECT_EQ(s->context, "lab");
  // Flags beat everything.
  s = ResolveConnection({{"targets", "flag:1"}}, "prod", config,
                        EnvOf({{"MEMLOAD_TARGETS", "env:1"}}));
  EXPECT_EQ(s->values.at("targets"), "flag:1");
  EXPECT_EQ(s->sources.at("targets"), "flag");
  // An unknown context is an error naming the known ones.
  EXPECT_THAT(ResolveConnection({}, "staging", config, EnvOf({})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("have: lab, prod")));
}

TEST(CliConfigTest, FilesAreBoundedAndWrittenPrivately) {
  const std::string dir = ::testing::TempDir() + "/cli_config_test";
  const std::string path = dir + "/sub/config";
  EXPECT_THAT(ReadCliConfig(path), IsOk());  // Absent: empty.
  CliConfig config = *ParseCliConfig(kConfig, "config");
  ASSERT_THAT(WriteCliConfig(path, config), IsOk());
  absl::StatusOr<CliConfig> read = ReadCliConfig(path);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(FormatCliConfig(*read), FormatCliConfig(config));
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  // Too large, and not a regular file.
  {
    std::ofstream big(path, std::ios::trunc);
    big << std::string(kMaxConfigBytes + 1, '#');
  }
  EXPECT_THAT(ReadCliConfig(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("larger than")));
  EXPECT_THAT(ReadCliConfig("/dev/zero"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
  // A FIFO nobody writes to: refused at once (the config's own reader used to block in
  // open() until a writer came).
  const std::string fifo = path + ".fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(ReadCliConfig(fifo),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
}

}  // namespace
}  // namespace controller
}  // namespace memload
