#include "controller/cli_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/bounded_read.h"

namespace memload {
namespace controller {
namespace {

bool ValidContextName(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

bool IsContextKey(absl::string_view key) {
  for (const std::string& known : ContextKeys()) {
    if (known == key) return true;
  }
  return false;
}

absl::Status LineError(absl::string_view file, size_t line, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", problem));
}

}  // namespace

const CliContext* CliConfig::Find(absl::string_view name) const {
  for (const CliContext& context : contexts) {
    if (context.name == name) return &context;
  }
  return nullptr;
}

CliContext* CliConfig::Find(absl::string_view name) {
  for (CliContext& context : contexts) {
    if (context.name == name) return &context;
  }
  return nullptr;
}

const std::vector<std::string>& ContextKeys() {
  static const auto* const kKeys = new std::vector<std::string>{
      "targets", "selector", "token-file", "tls-ca", "tls-cert", "tls-key", "tls-server-name"};
  return *kKeys;
}

std::string EnvVarOf(absl::string_view key) {
  std::string name = absl::StrCat("MEMLOAD_", key);
  for (char& c : name) c = c == '-' ? '_' : absl::ascii_toupper(static_cast<unsigned char>(c));
  return name;
}

absl::StatusOr<CliConfig> ParseCliConfig(absl::string_view text, absl::string_view file_name) {
  CliConfig config;
  CliContext* section = nullptr;
  size_t line_number = 0;
  size_t current_line = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (absl::ConsumePrefix(&line, "[")) {
      absl::string_view name = line;
      if (!absl::ConsumePrefix(&name, "context \"") || !absl::ConsumeSuffix(&name, "\"]")) {
        return LineError(file_name, line_number, "want [context \"NAME\"]");
      }
      if (!ValidContextName(name)) {
        return LineError(file_name, line_number,
                         absl::StrCat("context name \"", name, "\": want 1-63 of [A-Za-z0-9._-]"));
      }
      if (config.Find(name) != nullptr) {
        return LineError(file_name, line_number,
                         absl::StrCat("context \"", name, "\" given twice"));
      }
      if (config.contexts.size() >= kMaxContexts) {
        return LineError(file_name, line_number,
                         absl::StrCat("more than ", kMaxContexts, " contexts"));
      }
      config.contexts.push_back(CliContext{std::string(name), {}});
      section = &config.contexts.back();
      continue;
    }
    const size_t equals = line.find('=');
    if (equals == absl::string_view::npos) {
      return LineError(file_name, line_number, "want KEY = VALUE");
    }
    const std::string key(absl::StripAsciiWhitespace(line.substr(0, equals)));
    const std::string value(absl::StripAsciiWhitespace(line.substr(equals + 1)));
    if (value.size() > kMaxSettingBytes) {
      return LineError(file_name, line_number,
                       absl::StrCat(key, ": longer than ", kMaxSettingBytes, " bytes"));
    }
    if (section == nullptr) {
      if (key != "current-context") {
        return LineError(file_name, line_number,
                         absl::StrCat("unknown setting \"", key,
                                      "\" (before any [context]: only current-context)"));
      }
      config.current_context = value;
      current_line = line_number;
      continue;
    }
    if (!IsContextKey(key)) {
      return LineError(file_name, line_number,
                       absl::StrCat("unknown setting \"", key,
                                    "\"; want one of: ", absl::StrJoin(ContextKeys(), ", ")));
    }
    if (!section->settings.emplace(key, value).second) {
      return LineError(file_name, line_number, absl::StrCat(key, " given twice"));
    }
  }
  if (!config.current_context.empty() && config.Find(config.current_context) == nullptr) {
    return LineError(
        file_name, current_line,
        absl::StrCat("current-context \"", config.current_context, "\" names no context"));
  }
  return config;
}

std::string FormatCliConfig(const CliConfig& config) {
  std::string out = "# memloadctl config (memloadctl config set-context/use-context)\n";
  if (!config.current_context.empty()) {
    absl::StrAppend(&out, "current-context = ", config.current_context, "\n");
  }
  for (const CliContext& context : config.contexts) {
    absl::StrAppend(&out, "\n[context \"", context.name, "\"]\n");
    for (const std::string& key : ContextKeys()) {  // Always in the same order.
      if (auto it = context.settings.find(key); it != context.settings.end()) {
        absl::StrAppend(&out, key, " = ", it->second, "\n");
      }
    }
  }
  return out;
}

std::string ConfigPath(const GetEnv& getenv) {
  if (const char* path = getenv("MEMLOAD_CONFIG"); path != nullptr && *path != '\0') return path;
  if (const char* home = getenv("HOME"); home != nullptr && *home != '\0') {
    return absl::StrCat(home, "/.config/memload/config");
  }
  return "";
}

absl::StatusOr<CliConfig> ReadCliConfig(const std::string& path) {
  if (path.empty()) return CliConfig();
  absl::StatusOr<std::string> text = ReadRegularFileUpTo(path, kMaxConfigBytes, "config");
  if (absl::IsNotFound(text.status())) return CliConfig();
  if (!text.ok()) return text.status();
  return ParseCliConfig(*text, path);
}

absl::Status WriteCliConfig(const std::string& path, const CliConfig& config) {
  if (path.empty()) {
    return absl::FailedPreconditionError("no config file: set MEMLOAD_CONFIG or HOME");
  }
  // mkdir -p of the directory.
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", dir));
    }
  }
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", temp));
  const std::string text = FormatCliConfig(config);
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      close(fd);
      unlink(temp.c_str());
      return absl::ErrnoToStatus(error, absl::StrCat("cannot write ", temp));
    }
    written += static_cast<size_t>(n);
  }
  if (close(fd) != 0 || rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    unlink(temp.c_str());
    return absl::ErrnoToStatus(error, absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<ConnectionSettings> ResolveConnection(
    const std::map<std::string, std::string>& flags, const std::string& context_flag,
    const CliConfig& config, const GetEnv& getenv) {
  ConnectionSettings settings;
  // The explicitly chosen context (flag, then environment), else the current one.
  std::string chosen = context_flag;
  std::string chosen_by = "--context";
  if (chosen.empty()) {
    if (const char* env = getenv("MEMLOAD_CONTEXT"); env != nullptr && *env != '\0') {
      chosen = env;
      chosen_by = "MEMLOAD_CONTEXT";
    }
  }
  const CliContext* explicit_context = nullptr;
  if (!chosen.empty()) {
    explicit_context = config.Find(chosen);
    if (explicit_context == nullptr) {
      std::vector<std::string> names;
      for (const CliContext& context : config.contexts) names.push_back(context.name);
      return absl::NotFoundError(
          absl::StrCat(chosen_by, "=", chosen, ": no such context",
                       names.empty() ? " (the config file has none; memloadctl config set-context)"
                                     : absl::StrCat(" (have: ", absl::StrJoin(names, ", "), ")")));
    }
  }
  const CliContext* current = explicit_context == nullptr && !config.current_context.empty()
                                  ? config.Find(config.current_context)
                                  : nullptr;
  if (explicit_context != nullptr) settings.context = explicit_context->name;
  if (current != nullptr) settings.context = current->name;
  for (const std::string& key : ContextKeys()) {
    auto take = [&](const std::string& value, std::string source) {
      settings.values[key] = value;
      settings.sources[key] = std::move(source);
    };
    if (auto it = flags.find(key); it != flags.end()) {
      take(it->second, "flag");
      continue;
    }
    if (explicit_context != nullptr) {
      if (auto it = explicit_context->settings.find(key); it != explicit_context->settings.end()) {
        take(it->second, absl::StrCat("context ", explicit_context->name));
        continue;
      }
    }
    const std::string var = EnvVarOf(key);
    if (const char* env = getenv(var.c_str()); env != nullptr && *env != '\0') {
      take(env, absl::StrCat("env ", var));
      continue;
    }
    if (current != nullptr) {
      if (auto it = current->settings.find(key); it != current->settings.end()) {
        take(it->second, absl::StrCat("context ", current->name));
      }
    }
  }
  return settings;
}

}  // namespace controller
}  // namespace memload
