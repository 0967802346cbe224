#include "controller/pods.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/cli/flag_values.h"
#include "core/node_readers.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace memload {
namespace controller {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

const Value* Field(const Struct& object, const char* name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? nullptr : &it->second;
}

const Struct* Object(const Struct& object, const char* name) {
  const Value* value = Field(object, name);
  return value != nullptr && value->has_struct_value() ? &value->struct_value() : nullptr;
}

std::string Text(const Struct* object, const char* name) {
  if (object == nullptr) return "";
  const Value* value = Field(*object, name);
  return value != nullptr && value->has_string_value() ? value->string_value() : "";
}

// A quantity field: a string ("128Mi") or, rarely, a number.
absl::StatusOr<std::optional<uint64_t>> QuantityField(const Struct* object, const char* name,
                                                      const std::string& where) {
  if (object == nullptr) return std::optional<uint64_t>();
  const Value* value = Field(*object, name);
  if (value == nullptr) return std::optional<uint64_t>();
  std::string text;
  if (value->has_string_value()) {
    text = value->string_value();
  } else if (value->kind_case() == Value::kNumberValue) {
    text = absl::StrCat(value->number_value());
  } else {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not a quantity"));
  }
  absl::StatusOr<uint64_t> bytes = ParseKubernetesQuantity(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", bytes.status().message()));
  }
  return std::optional<uint64_t>(*bytes);
}

absl::StatusOr<Pod> ParsePod(const Struct& item, const std::string& where) {
  Pod pod;
  const Struct* metadata = Object(item, "metadata");
  pod.ns = Text(metadata, "namespace");
  pod.name = Text(metadata, "name");
  pod.uid = Text(metadata, "uid");
  if (pod.name.empty() || pod.uid.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": not a pod: metadata.name and metadata.uid are required"));
  }
  const std::string kind = Text(&item, "kind");
  if (!kind.empty() && kind != "Pod") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " (", pod.name, "): kind \"", kind, "\", want Pod"));
  }
  const Struct* spec = Object(item, "spec");
  pod.node_name = Text(spec, "nodeName");
  const Struct* status = Object(item, "status");
  pod.phase = Text(status, "phase");
  const Value* containers = spec != nullptr ? Field(*spec, "containers") : nullptr;
  if (containers != nullptr && containers->has_list_value()) {
    for (int i = 0; i < containers->list_value().values_size(); ++i) {
      const Value& c = containers->list_value().values(i);
      if (!c.has_struct_value()) continue;
      PodContainer container;
      container.name = Text(&c.struct_value(), "name");
      const Struct* resources = Object(c.struct_value(), "resources");
      const std::string at =
          absl::StrCat(where, " (", pod.DisplayName(), ") spec.containers[", i, "].resources");
      absl::StatusOr<std::optional<uint64_t>> request = QuantityField(
          resources ? Object(*resources, "requests") : nullptr, "memory", at + ".requests.memory");
      if (!request.ok()) return request.status();
      absl::StatusOr<std::optional<uint64_t>> limit = QuantityField(
          resources ? Object(*resources, "limits") : nullptr, "memory", at + ".limits.memory");
      if (!limit.ok()) return limit.status();
      container.memory_request_bytes = *request;
      container.memory_limit_bytes = *limit;
      // The kubelet defaults a request to the limit when only the limit is set.
      if (!container.memory_request_bytes) container.memory_request_bytes = *limit;
      pod.containers.push_back(std::move(container));
    }
  }
  const Value* statuses = status != nullptr ? Field(*status, "containerStatuses") : nullptr;
  if (statuses != nullptr && statuses->has_list_value()) {
    for (const Value& s : statuses->list_value().values()) {
      if (!s.has_struct_value()) continue;
      const std::string name = Text(&s.struct_value(), "name");
      for (PodContainer& container : pod.containers) {
        if (container.name != name) continue;
        container.container_id = Text(&s.struct_value(), "containerID");
        const Struct* state = Object(s.struct_value(), "state");
        container.running = state != nullptr && Object(*state, "running") != nullptr;
      }
    }
  }
  return pod;
}

// "<base>-<pod name>-<uid8>" within plan-id rules.
std::string PodPlanId(const std::string& base, const Pod& pod) {
  std::string name;
  for (char c : pod.name) {
    name.push_back(
        absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '-');
  }
  std::string uid;
  for (char c : pod.uid) {
    if (absl::ascii_isxdigit(static_cast<unsigned char>(c)) && uid.size() < 8) uid.push_back(c);
  }
  std::string id = absl::StrCat(base, "-", name);
  const size_t room = 128 - uid.size() - 1;
  if (id.size() > room) id.resize(room);
  return absl::StrCat(id, "-", uid);
}

}  // namespace

absl::StatusOr<uint64_t> ParseKubernetesQuantity(absl::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  const std::string original(rest);
  struct Suffix {
    const char* text;
    long double factor;
  };
  static const Suffix kSuffixes[] = {
      {"Ki", 1024.0L},
      {"Mi", 1048576.0L},
      {"Gi", 1073741824.0L},
      {"Ti", 1099511627776.0L},
      {"Pi", 1125899906842624.0L},
      {"Ei", 1152921504606846976.0L},
      {"k", 1e3L},
      {"M", 1e6L},
      {"G", 1e9L},
      {"T", 1e12L},
      {"P", 1e15L},
      {"E", 1e18L},
      {"m", 1e-3L},
  };
  long double factor = 1;
  for (const Suffix& suffix : kSuffixes) {
    if (absl::ConsumeSuffix(&rest, suffix.text)) {
      factor = suffix.factor;
      break;
    }
  }
  // Digits, one optional '.', an optional decimal exponent (e/E): no sign, no spaces.
  bool digit = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else if (c != '.' && !((c == 'e' || c == 'E') && factor == 1 && i > 0) &&
               !((c == '+' || c == '-') && i > 0 && (rest[i - 1] == 'e' || rest[i - 1] == 'E'))) {
      digit = false;
      break;
    }
  }
  double number = 0;
  if (!digit || !absl::SimpleAtod(rest, &number) || !std::isfinite(number) || number < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", original, "\" is not a memory quantity (e.g. 128Mi, 1Gi, 500M)"));
  }
  const long double bytes = std::ceil(static_cast<long double>(number) * factor);
  if (bytes >= 18446744073709551615.0L) {
    return absl::InvalidArgumentError(absl::StrCat("\"", original, "\" is too large"));
  }
  return static_cast<uint64_t>(bytes);
}

absl::StatusOr<std::vector<Pod>> ParsePods(absl::string_view json, absl::string_view source) {
  Struct document;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(std::string(json), &document, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": not JSON (want the output of kubectl get pods -o json): ", parsed.ToString()));
  }
  std::vector<Pod> pods;
  const Value* items = Field(document, "items");
  if (items != nullptr) {
    if (!items->has_list_value()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": \"items\" is not a list"));
    }
    if (static_cast<size_t>(items->list_value().values_size()) > kMaxPods) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": more than ", kMaxPods, " pods"));
    }
    for (int i = 0; i < items->list_value().values_size(); ++i) {
      const Value& item = items->list_value().values(i);
      const std::string where = absl::StrCat(source, ": items[", i, "]");
      if (!item.has_struct_value()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
      }
      absl::StatusOr<Pod> pod = ParsePod(item.struct_value(), where);
      if (!pod.ok()) return pod.status();
      pods.push_back(*std::move(pod));
    }
    return pods;
  }
  absl::StatusOr<Pod> pod = ParsePod(document, std::string(source));
  if (!pod.ok()) return pod.status();
  pods.push_back(*std::move(pod));
  return pods;
}

absl::StatusOr<std::string> ReadPodsInput(const std::string& path) {
  std::string text;
  if (path == "-") {
    char buffer[65536];
    while (std::cin.read(buffer, sizeof(buffer)) || std::cin.gcount() > 0) {
      text.append(buffer, static_cast<size_t>(std::cin.gcount()));
      if (text.size() > kMaxPodsInputBytes) break;
    }
  } else {
    absl::StatusOr<std::string> contents = ReadFileToString(path);
    if (!contents.ok()) {
      return absl::Status(contents.status().code(),
                          absl::StrCat("--pods: ", contents.status().message()));
    }
    text = *std::move(contents);
  }
  if (text.size() > kMaxPodsInputBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pods: input is larger than ", kMaxPodsInputBytes >> 20, " MiB"));
  }
  return text;
}

absl::StatusOr<std::optional<PodRelativeTarget>> ParsePodRelativeTarget(absl::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  const std::string lower = absl::AsciiStrToLower(rest);
  PodRelativeTarget target;
  absl::string_view number;
  if (absl::EndsWith(lower, "%request")) {
    number = rest.substr(0, rest.size() - 8);
    target.of = PodRelativeTarget::Of::kRequest;
  } else if (absl::EndsWith(lower, "%limit")) {
    number = rest.substr(0, rest.size() - 6);
    target.of = PodRelativeTarget::Of::kLimit;
  } else {
    return std::optional<PodRelativeTarget>();
  }
  const std::optional<double> percent = ParsePercentNumber(number);
  if (percent.has_value()) target.percent = *percent;
  if (!percent.has_value() || target.percent <= 0 || target.percent > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target=\"", text, "\": want N%request or N%limit with N in (0, 1000]"));
  }
  return std::optional<PodRelativeTarget>(target);
}

std::vector<PodPlan> PlanPods(const std::vector<Pod>& pods,
                              const std::map<std::string, std::string>& agents,
                              const v1::PlanSpec& base, const std::string& container,
                              const std::optional<PodRelativeTarget>& relative) {
  std::vector<PodPlan> plans;
  for (const Pod& pod : pods) {
    PodPlan plan;
    plan.pod = pod;
    plan.spec = base;
    plan.spec.set_plan_id(PodPlanId(base.plan_id(), pod));
    auto fail = [&plan](std::string why) {
      plan.status = absl::FailedPreconditionError(std::move(why));
    };
    const PodContainer* chosen = nullptr;
    if (!container.empty()) {
      for (const PodContainer& c : pod.containers) {
        if (c.name == container) chosen = &c;
      }
    } else if (pod.containers.size() == 1) {
      chosen = &pod.containers[0];
    }
    auto names = [&pod] {
      return absl::StrJoin(pod.containers, ", ",
                           [](std::string* out, const PodContainer& c) { out->append(c.name); });
    };
    if (pod.node_name.empty()) {
      fail(absl::StrCat("pod ", pod.DisplayName(), " is not scheduled on a node (phase ",
                        pod.phase.empty() ? "unknown" : pod.phase, ")"));
    } else if (auto agent = agents.find(pod.node_name); agent == agents.end()) {
      plan.status = absl::NotFoundError(absl::StrCat("no agent on node \"", pod.node_name,
                                                     "\" (of pod ", pod.DisplayName(), ")"));
    } else if (chosen == nullptr) {
      plan.agent = agent->second;
      fail(container.empty()
               ? absl::StrCat("pod ", pod.DisplayName(), " has ", pod.containers.size(),
                              " containers (", names(), "): choose one with --container")
               : absl::StrCat("pod ", pod.DisplayName(), " has no container \"", container,
                              "\" (it has ", names(), ")"));
    } else {
      plan.agent = agent->second;
    }
    if (chosen != nullptr) {
      plan.container = chosen->name;
      if (plan.status.ok() && chosen->container_id.empty()) {
        fail(absl::StrCat("container \"", chosen->name, "\" of pod ", pod.DisplayName(),
                          " has not started (no containerID in its status)"));
      }
      if (plan.status.ok() && relative.has_value()) {
        const bool request = relative->of == PodRelativeTarget::Of::kRequest;
        const std::optional<uint64_t> base_bytes =
            request ? chosen->memory_request_bytes : chosen->memory_limit_bytes;
        if (!base_bytes.has_value()) {
          fail(absl::StrCat("container \"", chosen->name, "\" of pod ", pod.DisplayName(),
                            " sets no memory ", request ? "request" : "limit",
                            " for --target=", relative->percent, request ? "%request" : "%limit"));
        } else if (!plan.spec.has_retained()) {
          fail("N%request and N%limit are for retained plans");
        } else {
          // Exact for whole percents; rounded down to a byte otherwise.
          const long double bytes =
              std::floor(static_cast<long double>(*base_bytes) * relative->percent / 100.0L);
          // Phases that drop to 0 (a sawtooth's) stay at 0.
          for (v1::Phase& phase : *plan.spec.mutable_retained()->mutable_phases()) {
            const v1::Quantity& target = phase.target();
            if (target.value_case() == v1::Quantity::kBytes && target.bytes() == 0) continue;
            phase.mutable_target()->set_bytes(static_cast<uint64_t>(bytes));
          }
        }
      }
    }
    v1::PodTarget* target = plan.spec.mutable_placement()->mutable_pod();
    target->set_pod_uid(pod.uid);
    target->set_pod_namespace(pod.ns);
    target->set_pod_name(pod.name);
    target->set_container_name(plan.container);
    if (chosen != nullptr) target->set_container_id(chosen->container_id);
    (*plan.spec.mutable_labels())["pod"] = pod.DisplayName();
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace controller
}  // namespace memload
