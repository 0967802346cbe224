// memloadctl's contexts: named sets of connection settings (targets, selector, TLS and
// token files) kept in a small config file, kubeconfig-style, so that commands need not
// repeat them. Parsing and formatting are pure; reading and writing take a path.
//
// The file (default ~/.config/memload/config, or $MEMLOAD_CONFIG) is line-based:
//
//   # memloadctl config
//   current-context = prod
//
//   [context "prod"]
//   targets = dns:///memload-agent.memload.svc.cluster.local:7070
//   token-file = /etc/memload/token
//   tls-ca = /etc/memload/ca.pem
//
//   [context "lab"]
//   targets = 10.0.0.5:7070,10.0.0.6:7070
//
// Where a setting comes from, first match wins: the command-line flag; the context named
// by --context (or $MEMLOAD_CONTEXT); the environment (MEMLOAD_TARGETS, MEMLOAD_SELECTOR,
// MEMLOAD_TOKEN_FILE, MEMLOAD_TLS_CA, MEMLOAD_TLS_CERT, MEMLOAD_TLS_KEY,
// MEMLOAD_TLS_SERVER_NAME); the file's current context.
//
// Thread-safety: pure functions are thread-safe; the file functions are not atomic
// against another memloadctl writing the same file (the write itself is: temp + rename).
#ifndef MEMLOAD_CONTROLLER_CLI_CONFIG_H_
#define MEMLOAD_CONTROLLER_CLI_CONFIG_H_

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {
namespace controller {

// A config file larger than this is refused (it is a few lines; /dev/zero is not one).
inline constexpr size_t kMaxConfigBytes = 64 * 1024;
// Contexts in one file, and settings' lengths.
inline constexpr size_t kMaxContexts = 256;
inline constexpr size_t kMaxSettingBytes = 4096;

struct CliContext {
  std::string name;                             // 1-63 of [A-Za-z0-9._-].
  std::map<std::string, std::string> settings;  // Keys from ContextKeys().
};

struct CliConfig {
  std::string current_context;  // "" = none.
  std::vector<CliContext> contexts;

  const CliContext* Find(absl::string_view name) const;
  CliContext* Find(absl::string_view name);
};

// The settings a context may hold, as flag names: targets, selector, token-file, tls-ca,
// tls-cert, tls-key, tls-server-name.
const std::vector<std::string>& ContextKeys();
// The environment variable of a context key: "token-file" → "MEMLOAD_TOKEN_FILE".
std::string EnvVarOf(absl::string_view key);

// InvalidArgument "FILE:LINE: ..." for a malformed line, an unknown key, a bad or repeated
// context name, a current-context that names no context, too many contexts, a too-long
// value.
absl::StatusOr<CliConfig> ParseCliConfig(absl::string_view text, absl::string_view file_name);
std::string FormatCliConfig(const CliConfig& config);

// $MEMLOAD_CONFIG, else $HOME/.config/memload/config; "" when neither is set.
using GetEnv = std::function<const char*(const char*)>;
std::string ConfigPath(const GetEnv& getenv);

// An absent file is an empty config. Read with ReadRegularFileUpTo (core/bounded_read.h):
// InvalidArgument for a file over kMaxConfigBytes, FailedPrecondition for one that is not
// a regular file; the errors of ParseCliConfig; messages name the path.
absl::StatusOr<CliConfig> ReadCliConfig(const std::string& path);
// Creates the directory if needed; writes a temp file (mode 0600: it names token files)
// and renames it over `path`.
absl::Status WriteCliConfig(const std::string& path, const CliConfig& config);

// Connection settings after precedence (see the top of this file).
struct ConnectionSettings {
  std::map<std::string, std::string> values;   // Key → value; absent = unset.
  std::map<std::string, std::string> sources;  // Key → "flag", "context NAME", "env VAR".
  std::string context;                         // The context used, "" = none.
};

// `flags`: the connection flags given on the command line (key → value). `context_flag`:
// --context ("" = not given). NotFound when a context named by --context or
// MEMLOAD_CONTEXT does not exist.
absl::StatusOr<ConnectionSettings> ResolveConnection(
    const std::map<std::string, std::string>& flags, const std::string& context_flag,
    const CliConfig& config, const GetEnv& getenv);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_CLI_CONFIG_H_
