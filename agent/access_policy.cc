#include "agent/access_policy.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/bounded_read.h"

namespace memload {
namespace agent {
namespace {

constexpr absl::string_view kReadOnlySuffix = ":read-only";
constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxTokenLength = 4096;
constexpr absl::string_view kAgentService = "/memload.v1.Agent/";

std::array<uint8_t, 32> Sha256(absl::string_view text) {
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

// "Bearer TOKEN" → TOKEN (the scheme is case-insensitive, RFC 7235); nullopt otherwise.
std::optional<absl::string_view> BearerToken(std::optional<absl::string_view> authorization) {
  if (!authorization.has_value()) return std::nullopt;
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() || !absl::StartsWithIgnoreCase(value, kScheme)) {
    return std::nullopt;
  }
  return absl::StripLeadingAsciiWhitespace(value.substr(kScheme.size()));
}

// Why `token` cannot be a token, or "" when it can. Says nothing of its content.
std::string TokenProblem(absl::string_view token) {
  if (token.size() < kMinTokenLength) {
    return absl::StrCat("a token must be at least ", kMinTokenLength,
                        " characters (make one with `openssl rand -hex 32`)");
  }
  if (token.size() > kMaxTokenLength) return "a token must be at most 4096 characters";
  for (char c : token) {
    if (c == ':') {
      return "':' in a token is reserved for the \":read-only\" marker (a typo of it?)";
    }
    if (c < 0x21 || c > 0x7e) {
      return "a token is visible ASCII only: no spaces, tabs or other characters";
    }
  }
  return "";
}

}  // namespace

bool IsHealthMethod(absl::string_view method) {
  return absl::StartsWith(method, "/grpc.health.v1.Health/");
}

bool IsReadOnlyMethod(absl::string_view method) {
  if (absl::StartsWith(method, "/grpc.reflection.v1alpha.ServerReflection/") ||
      absl::StartsWith(method, "/grpc.reflection.v1.ServerReflection/")) {
    return true;
  }
  if (!absl::ConsumePrefix(&method, kAgentService)) return false;
  return method == "GetUsage" || method == "WatchUsage" || method == "ListPlans" ||
         method == "GetNodeInfo";
}

bool IsMutatingMethod(absl::string_view method) {
  return absl::StartsWith(method, kAgentService) && !IsReadOnlyMethod(method);
}

absl::StatusOr<AccessPolicy> AccessPolicy::Parse(absl::string_view text) {
  AccessPolicy policy;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    Entry entry;
    entry.read_only = absl::ConsumeSuffix(&line, kReadOnlySuffix);
    if (const std::string problem = TokenProblem(line); !problem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": want TOKEN or TOKEN:read-only; ", problem));
    }
    entry.digest = Sha256(line);
    for (const Entry& other : policy.entries_) {
      if (other.digest == entry.digest) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_number, " repeats the token named ", other.name));
      }
    }
    const std::string hex = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(entry.digest.data()), entry.digest.size()));
    // Four hex digits name a token in a small file; two tokens sharing them get more (all
    // 64 differ, as the digests do).
    auto taken = [&policy](const std::string& name) {
      for (const Entry& other : policy.entries_) {
        if (other.name == name) return true;
      }
      return false;
    };
    size_t digits = 4;
    do {
      entry.name = absl::StrCat("token-", hex.substr(0, digits));
      digits *= 2;
    } while (taken(entry.name) && digits <= hex.size());
    policy.entries_.push_back(std::move(entry));
  }
  if (policy.entries_.empty()) {
    return absl::InvalidArgumentError(
        "no token in it (want one per line: TOKEN or TOKEN:read-only; '#' starts a comment)");
  }
  return policy;
}

absl::StatusOr<AccessPolicy> AccessPolicy::ReadTokenFile(const std::string& path) {
  // Bounded (issue 12.7): --auth-token-file=/dev/zero is an error at once.
  absl::StatusOr<std::string> text = ReadFileUpTo(path, kMaxTokenFileBytes, "token file");
  if (!text.ok()) return text.status();
  absl::StatusOr<AccessPolicy> policy = Parse(*text);
  if (!policy.ok()) {
    return absl::Status(policy.status().code(),
                        absl::StrCat("token file ", path, ": ", policy.status().message()));
  }
  return policy;
}

const AccessPolicy::Entry* AccessPolicy::Find(
    std::optional<absl::string_view> authorization) const {
  const std::optional<absl::string_view> token = BearerToken(authorization);
  if (!token.has_value()) return nullptr;
  const std::array<uint8_t, 32> digest = Sha256(*token);
  // Every entry is compared, whichever matches, so the time taken does not say which.
  const Entry* found = nullptr;
  for (const Entry& entry : entries_) {
    const bool equal = CRYPTO_memcmp(digest.data(), entry.digest.data(), digest.size()) == 0;
    if (equal) found = &entry;
  }
  return found;
}

absl::StatusOr<Caller> AccessPolicy::Authorize(
    absl::string_view method, std::optional<absl::string_view> authorization) const {
  if (IsHealthMethod(method)) return Caller();
  if (!BearerToken(authorization).has_value()) {
    return absl::UnauthenticatedError(
        "this agent requires a bearer token (metadata \"authorization: Bearer TOKEN\"; "
        "memloadctl --token-file or MEMLOAD_TOKEN)");
  }
  const Entry* entry = Find(authorization);
  if (entry == nullptr) return absl::UnauthenticatedError("the bearer token is not valid");
  if (entry->read_only && !IsReadOnlyMethod(method)) {
    return absl::PermissionDeniedError(
        absl::StrCat(entry->name,
                     " is read-only: it may call GetUsage, WatchUsage, ListPlans, "
                     "GetNodeInfo and reflection, not ",
                     method));
  }
  Caller caller;
  caller.token_name = entry->name;
  caller.read_only = entry->read_only;
  return caller;
}

std::string AccessPolicy::NameOf(std::optional<absl::string_view> authorization) const {
  const Entry* entry = Find(authorization);
  return entry != nullptr ? entry->name : "";
}

int AccessPolicy::read_only_tokens() const {
  int count = 0;
  for (const Entry& entry : entries_) count += entry.read_only ? 1 : 0;
  return count;
}

}  // namespace agent
}  // namespace memload
