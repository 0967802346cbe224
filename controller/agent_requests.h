// Requests memloadctl sends about a plan, built in one place (commands, --pods, tests).
//
//   FanOut(clients, Rpc(&AgentClient::StopPlan, StopRequest("drill-1")), options);
//
// Thread-safety: plain functions.
#ifndef MEMLOAD_CONTROLLER_AGENT_REQUESTS_H_
#define MEMLOAD_CONTROLLER_AGENT_REQUESTS_H_

#include <string>
#include <vector>

#include "proto/memload.pb.h"

namespace memload {
namespace controller {

// StopPlan of `plan_id`.
inline v1::StopPlanRequest StopRequest(const std::string& plan_id) {
  v1::StopPlanRequest request;
  request.set_plan_id(plan_id);
  return request;
}

// RenewLeases of `plan_ids`, in that order.
inline v1::RenewLeasesRequest RenewRequest(const std::vector<std::string>& plan_ids) {
  v1::RenewLeasesRequest request;
  for (const std::string& id : plan_ids) request.add_plan_ids(id);
  return request;
}

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_AGENT_REQUESTS_H_
