// A protobuf message from its text format, for tests: a message that does not parse fails
// the running test (and an empty message is returned).
//
//   const v1::PlanSpec spec = ParseTextProto<v1::PlanSpec>(R"pb(plan_id: "drill")pb");
//
// Thread-safety: thread-safe (no shared state).
#ifndef MEMLOAD_CONTROLLER_TESTING_TEXT_PROTO_H_
#define MEMLOAD_CONTROLLER_TESTING_TEXT_PROTO_H_

#include <string>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace memload {
namespace testing {

template <typename Message>
Message ParseTextProto(const std::string& text) {
  Message message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_TESTING_TEXT_PROTO_H_
