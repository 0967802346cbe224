#include "core/bounded_read.h"

#include <pthread.h>
#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

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
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Runs `body` on a thread of its own with a `stack_bytes` stack (as small as the threads of
// a library such as civetweb may be) and waits for it.
void RunOnStackOf(size_t stack_bytes, const std::function<void()>& body) {
  pthread_attr_t attributes;
  ASSERT_EQ(pthread_attr_init(&attributes), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attributes, stack_bytes), 0);
  pthread_t thread;
  std::function<void()> run = body;
  ASSERT_EQ(pthread_create(
                &thread, &attributes,
                [](void* argument) -> void* {
                  (*static_cast<std::function<void()>*>(argument))();
                  return nullptr;
                },
                &run),
            0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attributes);
}

// The readers keep their read buffer off the stack: the metrics endpoint calls them on
// civetweb's threads, and a 64 KiB array on the stack overflowed one there (ASan, -O0).
// Before, this test died of a stack overflow (SIGSEGV) on the 64 KiB thread.
TEST(ReadFileUpToTest, ReadsOnAThreadWithASmallStack) {
  const std::string path = TestTempPath("small_stack");
  ASSERT_TRUE(WriteFile(path, std::string(100 * 1024, 'x') + "\nlast"));
  RunOnStackOf(64 * 1024, [&] {
    absl::StatusOr<std::string> text = ReadFileUpTo(path, kMaxTokenFileBytes, "--x");
    ASSERT_THAT(text, IsOk());
    EXPECT_EQ(text->size(), 100 * 1024 + 5);
    int lines = 0;
    EXPECT_THAT(ReadLinesUpTo(path, 200 * 1024, "--x",
                              [&](absl::string_view) {
                                ++lines;
                                return absl::OkStatus();
                              }),
                IsOk());
    EXPECT_EQ(lines, 2);
  });
}

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

TEST(ReadRegularFileUpToTest, ReadsARegularFileAndRefusesTheRestWithoutBlocking) {
  const std::string path = TestTempPath("regular");
  ASSERT_TRUE(WriteFile(path, "abc\n"));
  absl::StatusOr<std::string> text = ReadRegularFileUpTo(path, 4, "config");
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(*text, "abc\n");
  EXPECT_THAT(ReadRegularFileUpTo(path, 3, "config"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("larger than")));
  EXPECT_THAT(ReadRegularFileUpTo(TestTempPath("absent"), 4, "config"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("config")));
  // A device, a directory and a FIFO nobody writes to (a blocking open would hang here).
  const std::string fifo = TestTempPath("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& other :
       {std::string("/dev/zero"), ::memload::testing::TestTempDir(), fifo}) {
    EXPECT_THAT(ReadRegularFileUpTo(other, 4, "config"),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr("config " + other), HasSubstr("not a regular file"))));
  }
}

// A FIFO nobody writes to blocked open() for good (memloadctl --targets=@FIFO ran 743 s:
// attack N6); it now reads as empty at once, through every reader.
TEST(ReadFileUpToTest, AFifoWithoutAWriterReadsAsEmptyAtOnce) {
  const std::string fifo = TestTempPath("lonely-fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<std::string> text = ReadFileUpTo(fifo, 4, "token file");
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(*text, "");
  int lines = 0;
  EXPECT_THAT(ReadLinesUpTo(fifo, 10, "recording",
                            [&](absl::string_view) {
                              ++lines;
                              return absl::OkStatus();
                            }),
              IsOk());
  EXPECT_EQ(lines, 0);
}

// Every line of `path` as ReadLinesUpTo passes them; the status it returned, if any, last.
std::vector<std::string> Lines(const std::string& path, size_t max_line_bytes) {
  std::vector<std::string> lines;
  const absl::Status status =
      ReadLinesUpTo(path, max_line_bytes, "recording", [&](absl::string_view line) {
        lines.emplace_back(line);
        return absl::OkStatus();
      });
  if (!status.ok()) lines.push_back(status.ToString());
  return lines;
}

absl::Status ReadNothing(const std::string& path) {
  return ReadLinesUpTo(path, 10, "recording", [](absl::string_view) { return absl::OkStatus(); });
}

TEST(ReadLinesUpToTest, PassesEveryLineWithoutItsNewline) {
  const std::string path = TestTempPath("lines");
  ASSERT_TRUE(WriteFile(path, "a\n\nbc\nlast"));
  EXPECT_THAT(Lines(path, 4), ElementsAre("a", "", "bc", "last"));
  ASSERT_TRUE(WriteFile(path, "a\n"));
  EXPECT_THAT(Lines(path, 4), ElementsAre("a"));
  ASSERT_TRUE(WriteFile(path, ""));
  EXPECT_THAT(Lines(path, 4), ElementsAre());
}

TEST(ReadLinesUpToTest, ALongLineIsPassedCutAndTheRestSkipped) {
  const std::string path = TestTempPath("long");
  // Longer than the reader's buffer too, so the cut line spans several reads.
  ASSERT_TRUE(WriteFile(path, "abcd\n" + std::string(200000, 'x') + "\nef\nghijk"));
  EXPECT_THAT(Lines(path, 4), ElementsAre("abcd", "xxxxx", "ef", "ghijk"));
}

TEST(ReadLinesUpToTest, StopsAtTheFirstErrorAndKeepsReadErrors) {
  const std::string path = TestTempPath("stop");
  ASSERT_TRUE(WriteFile(path, "1\n2\n3\n"));
  int calls = 0;
  EXPECT_THAT(ReadLinesUpTo(path, 10, "",
                            [&](absl::string_view line) {
                              ++calls;
                              return line == "2" ? absl::InvalidArgumentError("two")
                                                 : absl::OkStatus();
                            }),
              StatusIs(absl::StatusCode::kInvalidArgument, "two"));
  EXPECT_EQ(calls, 2);
  EXPECT_THAT(ReadNothing(TestTempPath("absent")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("recording ")));
  EXPECT_THAT(ReadNothing(::memload::testing::TestTempDir()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot read")));
}

}  // namespace
}  // namespace memload
