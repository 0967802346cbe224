// Reading memloadctl's JSON output in tests, as a script would: the document parsed into a
// google.protobuf.Struct, fields looked up with a test failure (not a crash) when missing.
//
//   const google::protobuf::Struct document = ParseJsonDocument(out.str());
//   EXPECT_EQ(Field(document, "command").string_value(), "usage");
//   ExpectSummary(document, /*nodes=*/3, /*ok=*/2, /*failed=*/1);
//
// Thread-safety: thread-safe (no shared state).
#ifndef MEMLOAD_CONTROLLER_TESTING_JSON_DOCUMENT_H_
#define MEMLOAD_CONTROLLER_TESTING_JSON_DOCUMENT_H_

#include <string>

#include "google/protobuf/struct.pb.h"

namespace memload {
namespace testing {

// `text` as one JSON object; a test failure (and an empty Struct) when it is not one.
google::protobuf::Struct ParseJsonDocument(const std::string& text);

// object[key]; a test failure (and a null value) when there is no such field.
const google::protobuf::Value& Field(const google::protobuf::Struct& object,
                                     const std::string& key);
// object[key] as an object (empty when missing or not an object).
const google::protobuf::Struct& Sub(const google::protobuf::Struct& object, const std::string& key);

// The envelope's "summary" holds these counts and "ok" is true exactly when none failed.
void ExpectSummary(const google::protobuf::Struct& document, int nodes, int ok, int failed);

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_TESTING_JSON_DOCUMENT_H_
