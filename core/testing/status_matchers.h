// GoogleTest matchers for absl::Status and absl::StatusOr (Abseil 20220623 ships none).
//
//   EXPECT_THAT(ParseSize("12Q"), StatusIs(absl::StatusCode::kInvalidArgument,
//                                          HasSubstr("12Q")));
//   ASSERT_THAT(set.Grow(4), IsOk());
#ifndef MEMLOAD_CORE_TESTING_STATUS_MATCHERS_H_
#define MEMLOAD_CORE_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace memload {
namespace testing_internal {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace testing_internal

// Matches an OK absl::Status or a StatusOr holding a value.
MATCHER(IsOk, "is OK") {
  const absl::Status& status = testing_internal::GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status;
  return status.ok();
}

// Matches a status with the given code whose message matches `message_matcher`.
MATCHER_P2(StatusIs, code, message_matcher, "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = testing_internal::GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_STATUS_MATCHERS_H_
