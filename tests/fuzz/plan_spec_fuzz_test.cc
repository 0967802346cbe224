// Fuzzes the agent's plan path with PlanSpec bytes as a client sends them: the protobuf
// parse, the CLI's ValidatePlanSpec, then PlanManager::Start (validation, quantity
// resolution against a node, safety limits, the WorkerSpec it launches — over fake workers)
// and, for a plan the manager launched, the worker's own conversion of that WorkerSpec to
// core specs (agent/plan_convert.h), as memload-worker does. Every started plan is stopped.
#include <cstdint>
#include <cstdlib>
#include <future>
#include <memory>

#include "agent/plan_convert.h"
#include "agent/plan_manager.h"
#include "agent/testing/fake_worker.h"
#include "controller/plan_builder.h"
#include "proto/memload.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr uint64_t kGiB = 1ull << 30;

using ::memload::testing::FuzzCheck;

struct Agent {
  Agent() : probe(16 * kGiB, 12 * kGiB) {
    probe.SetCgroup(8 * kGiB, 2 * kGiB);
    memload::agent::PlanManagerOptions options;
    options.max_memory_bytes = 8 * kGiB;
    options.reserve_bytes = 1 * kGiB;
    options.ended_plans_kept = 4;
    manager = std::make_unique<memload::agent::PlanManager>(options, &probe, &launcher);
  }
  memload::agent::FakeNodeProbe probe;
  memload::agent::FakeWorkerLauncher launcher;
  std::unique_ptr<memload::agent::PlanManager> manager;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  memload::v1::PlanSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)memload::controller::ValidatePlanSpec(spec);

  static Agent* agent = new Agent();  // One manager (and its thread) for the whole run.
  const size_t launched_before = agent->launcher.launched();
  std::promise<absl::StatusOr<memload::agent::PlanManager::StartResult>> started;
  agent->manager->Start(spec, [&](auto result) { started.set_value(std::move(result)); });
  auto result = started.get_future().get();
  if (!result.ok() || !result->created) return 0;

  FuzzCheck(agent->launcher.launched() == launched_before + 1, "a created plan launched a worker");
  const memload::agent::WorkerSpec& worker = agent->launcher.worker(launched_before)->spec();
  const memload::v1::PlanSpec& plan = worker.plan();
  switch (plan.kind_case()) {
    case memload::v1::PlanSpec::kRetained: {
      // The manager resolved every target to bytes; the worker must accept the result.
      FuzzCheck(memload::agent::ToRetainedPlanSpec(plan.retained()).ok(),
                "the worker accepts the retained plan the manager launched");
      break;
    }
    case memload::v1::PlanSpec::kStreaming:
      FuzzCheck(memload::agent::ToStreamOptions(plan.streaming()).ok(),
                "the worker accepts the streaming plan the manager launched");
      break;
    case memload::v1::PlanSpec::kUtilization:
      FuzzCheck(memload::agent::ToUtilizationSpec(plan.utilization(), nullptr).ok(),
                "the worker accepts the utilization plan the manager launched");
      break;
    case memload::v1::PlanSpec::KIND_NOT_SET:
      FuzzCheck(false, "a launched plan has a kind");
  }
  std::promise<void> stopped;
  agent->manager->Stop(spec.plan_id(), [&](auto) { stopped.set_value(); });
  // A fake worker exits when told to stop; the manager reaps it on its next tick.
  agent->launcher.worker(launched_before)->Exit(memload::agent::WorkerExit());
  stopped.get_future().wait();
  return 0;
}
