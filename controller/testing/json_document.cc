#include "controller/testing/json_document.h"

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace memload {
namespace testing {

google::protobuf::Struct ParseJsonDocument(const std::string& text) {
  google::protobuf::Struct document;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &document);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << text;
  return document;
}

const google::protobuf::Value& Field(const google::protobuf::Struct& object,
                                     const std::string& key) {
  static const google::protobuf::Value* const kMissing = new google::protobuf::Value;
  const auto it = object.fields().find(key);
  EXPECT_TRUE(it != object.fields().end()) << "no field " << key;
  return it == object.fields().end() ? *kMissing : it->second;
}

const google::protobuf::Struct& Sub(const google::protobuf::Struct& object,
                                    const std::string& key) {
  return Field(object, key).struct_value();
}

void ExpectSummary(const google::protobuf::Struct& document, int nodes, int ok, int failed) {
  const google::protobuf::Struct& summary = Sub(document, "summary");
  EXPECT_EQ(Field(summary, "nodes").number_value(), nodes);
  EXPECT_EQ(Field(summary, "ok").number_value(), ok);
  EXPECT_EQ(Field(summary, "failed").number_value(), failed);
  EXPECT_EQ(Field(document, "ok").bool_value(), failed == 0);
}

}  // namespace testing
}  // namespace memload
