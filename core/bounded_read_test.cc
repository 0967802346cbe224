#include "core/bounded_read.h"

#include <string>

#include "absl/time/clock.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"

namespace memload {
namespace {

using ::memload::testing::TestTempPath;
using ::memload::testing::WriteFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ReadFileUpToTest, ReadsAFileUpToAndAtTheLimit) {
  const std::string path = TestTempPath("small");
  ASSERT_TRUE(WriteFile(path, "abc\n"));
  for (uint64_t limit : {uint64_t{100}, uint64_t{4}, UINT64_MAX}) {
    absl::StatusOr<std::string> text = ReadFileUpTo(path, limit, "--x");
    ASSERT_THAT(text, IsOk());
    EXPECT_EQ(*text, "abc\n");
  }
  ASSERT_TRUE(WriteFile(path, ""));
  absl::StatusOr<std::string> empty = ReadFileUpTo(path, 0, "--x");
  ASSERT_THAT(empty, IsOk());
  EXPECT_EQ(*empty, "");
}

TEST(ReadFileUpToTest, OneByteOverTheLimitIsRefusedNamingTheFlagAndFile) {
  const std::string path = TestTempPath("over");
  ASSERT_TRUE(WriteFile(path, "abcde"));
  EXPECT_THAT(ReadFileUpTo(path, 4, "--token-file"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--token-file " + path), HasSubstr("larger than"),
                             HasSubstr("4 B"))));
}

TEST(ReadFileUpToTest, EndlessAndHugeFilesStopAtTheLimitAtOnce) {
  // /dev/zero never ends: without a bound this read was ~10 s and a std::bad_alloc.
  const absl::Time start = absl::Now();
  EXPECT_THAT(ReadFileUpTo("/dev/zero", kMaxTokenFileBytes, "--token-file"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("larger than")));
  const std::string path = TestTempPath("huge");
  ASSERT_TRUE(WriteFile(path, std::string(kMaxTargetsFileBytes + 1, 'x')));
  EXPECT_THAT(ReadFileUpTo(path, kMaxTargetsFileBytes, "--targets=@"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--targets=@")));
  // Generous: what is measured is "reads no more than the limit", not speed.
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

TEST(ReadFileUpToTest, UnreadableFilesKeepTheirErrno) {
  EXPECT_THAT(ReadFileUpTo(TestTempPath("missing"), 10, "--labels-file"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("--labels-file")));
  absl::StatusOr<std::string> directory =
      ReadFileUpTo(::memload::testing::TestTempDir(), 10, "--labels-file");
  ASSERT_FALSE(directory.ok());
  EXPECT_THAT(std::string(directory.status().message()), HasSubstr("cannot read"));
}

}  // namespace
}  // namespace memload
