// The generated code for memload_types.proto compiles, links against Debian's protobuf,
// and round-trips through the wire format.
#include <string>

#include "gtest/gtest.h"
#include "proto/memload_types.pb.h"

namespace memload {
namespace {

TEST(MemloadTypesProtoTest, QuantityRoundTripsThroughWireFormat) {
  v1::Quantity quantity;
  quantity.set_percent_of_cgroup_limit(80.0);
  std::string wire;
  ASSERT_TRUE(quantity.SerializeToString(&wire));
  v1::Quantity parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.value_case(), v1::Quantity::kPercentOfCgroupLimit);
  EXPECT_DOUBLE_EQ(parsed.percent_of_cgroup_limit(), 80.0);
}

TEST(MemloadTypesProtoTest, EnumsHaveTheDocumentedNames) {
  EXPECT_EQ(v1::TouchMode_Name(v1::TOUCH_MODE_FILL), "TOUCH_MODE_FILL");
  EXPECT_EQ(v1::Backing_Name(v1::BACKING_SHMEM), "BACKING_SHMEM");
}

}  // namespace
}  // namespace memload
