#include "core/node_readers.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"

namespace memload {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::Optional;

constexpr uint64_t kKi = 1024;
constexpr uint64_t kMi = uint64_t{1} << 20;
constexpr uint64_t kGi = uint64_t{1} << 30;

// ---- Fixtures (copied from a Debian 12 VM, kernel 6.x, cgroup v1 + unified hybrid) -----

constexpr char kMeminfo[] = R"(MemTotal:       24684092 kB
MemFree:        23871676 kB
MemAvailable:   24172592 kB
Buffers:           10288 kB
Cached:           473520 kB
SwapCached:            0 kB
Active:           148092 kB
Inactive:         524668 kB
Active(anon):       1496 kB
Inactive(anon):   196316 kB
Active(file):     146596 kB
Inactive(file):   328352 kB
Unevictable:       11268 kB
Mlocked:           10344 kB
SwapTotal:       2097148 kB
SwapFree:        2097000 kB
Zswap:                 0 kB
Zswapped:              0 kB
Dirty:               160 kB
Writeback:             0 kB
AnonPages:        200256 kB
Mapped:            31376 kB
Shmem:              8856 kB
KReclaimable:      66180 kB
Slab:              89204 kB
SReclaimable:      66180 kB
SUnreclaim:        23024 kB
KernelStack:        1880 kB
PageTables:         2272 kB
SecPageTables:         0 kB
NFS_Unstable:          0 kB
Bounce:                0 kB
WritebackTmp:          0 kB
CommitLimit:    12342044 kB
Committed_AS:     322368 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       14700 kB
VmallocChunk:          0 kB
Percpu:              712 kB
AnonHugePages:         0 kB
ShmemHugePages:        0 kB
ShmemPmdMapped:        0 kB
FileHugePages:         0 kB
FilePmdMapped:         0 kB
Balloon:               0 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
DirectMap4k:       32768 kB
DirectMap2M:     2064384 kB
DirectMap1G:    25165824 kB
)";

constexpr char kProcStatus[] =
    "Name:\tcat\n"
    "Umask:\t0022\n"
    "State:\tR (running)\n"
    "Tgid:\t3467\n"
    "Pid:\t3467\n"
    "PPid:\t3460\n"
    "Uid:\t0\t0\t0\t0\n"
    "FDSize:\t256\n"
    "Groups:\t \n"
    "VmPeak:\t    3060 kB\n"
    "VmSize:\t    3060 kB\n"
    "VmLck:\t       0 kB\n"
    "VmPin:\t       0 kB\n"
    "VmHWM:\t    1780 kB\n"
    "VmRSS:\t    1780 kB\n"
    "RssAnon:\t     116 kB\n"
    "RssFile:\t    1664 kB\n"
    "RssShmem:\t       8 kB\n"
    "VmData:\t     360 kB\n"
    "VmStk:\t     132 kB\n"
    "VmSwap:\t       0 kB\n"
    "HugetlbPages:\t       0 kB\n"
    "Threads:\t1\n"
    "SigQ:\t0/96365\n"
    "Cpus_allowed_list:\t0-1\n"
    "voluntary_ctxt_switches:\t0\n";

// A kernel thread: no Vm* lines at all.
constexpr char kKernelThreadStatus[] =
    "Name:\tkthreadd\nUmask:\t0000\nState:\tS (sleeping)\nTgid:\t2\nPid:\t2\nPPid:\t0\n"
    "Threads:\t1\n";

constexpr char kHybridCgroup[] = R"(9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/1fd59729f28187bebacb7af6c892f8ec
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
)";

constexpr char kHybridMountinfo[] =
    R"(22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334492k,nr_inodes=3083623,mode=755
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
)";

// A systemd host on the unified hierarchy (cgroup v2 only).
constexpr char kV2Cgroup[] = "0::/user.slice/user-1000.slice/session-2.scope\n";
constexpr char kV2Mountinfo[] =
    R"(22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
)";

// A Docker container on cgroup v1: it sees only its own cgroup, mounted at the usual place.
constexpr char kContainerCgroup[] = R"(12:pids:/docker/0123abcd
11:cpu,cpuacct:/docker/0123abcd
5:memory:/docker/0123abcd
0::/system.slice/containerd.service
)";
constexpr char kContainerMountinfo[] =
    R"(700 650 0:50 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
710 700 0:55 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
711 710 0:56 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
712 711 0:30 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:11 - cgroup cgroup rw,cpu,cpuacct
713 711 0:33 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:14 - cgroup cgroup rw,memory
714 711 0:40 /docker/0123abcd /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime master:21 - cgroup cgroup rw,pids
)";

constexpr char kPressure[] =
    "some avg10=1.53 avg60=0.87 avg300=0.21 total=4711\n"
    "full avg10=0.50 avg60=0.25 avg300=0.05 total=1234567890123\n";

// ---- Helpers -----------------------------------------------------------------------------

// A fresh directory under TEST_TMPDIR named after the running test.
std::string TestDir() { return memload::testing::FreshTestDir(); }

void WriteFile(const std::string& path, const std::string& contents) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(memload::testing::WriteFile(path, contents)) << path;
}

// ---- PathExists --------------------------------------------------------------------------

TEST(PathExistsTest, FilesAndDirectoriesExistMissingPathsAndDanglingLinksDoNot) {
  const std::string dir = TestDir();
  WriteFile(dir + "/memory.max", "max\n");
  EXPECT_TRUE(PathExists(dir));
  EXPECT_TRUE(PathExists(dir + "/memory.max"));
  EXPECT_FALSE(PathExists(dir + "/memory.limit_in_bytes"));
  ASSERT_EQ(symlink("nowhere", (dir + "/dangling").c_str()), 0);
  EXPECT_FALSE(PathExists(dir + "/dangling"));
}

// ---- ReadFileToString --------------------------------------------------------------------

TEST(ReadFileToStringTest, ReadsWholeFile) {
  const std::string path = TestDir() + "/big";
  std::string contents;
  for (int i = 0; i < 5000; ++i) absl::StrAppend(&contents, "line ", i, "\n");
  ASSERT_GT(contents.size(), 3 * 8192u);
  WriteFile(path, contents);
  EXPECT_THAT(ReadFileToString(path), IsOk());
  EXPECT_EQ(ReadFileToString(path).value_or(""), contents);
}

TEST(ReadFileToStringTest, ReadsEmptyFile) {
  const std::string path = TestDir() + "/empty";
  WriteFile(path, "");
  EXPECT_THAT(ReadFileToString(path), IsOk());
  EXPECT_EQ(ReadFileToString(path).value_or("x"), "");
}

TEST(ReadFileToStringTest, ReadsProcFilesThatReportSizeZero) {
  ASSERT_EQ(std::filesystem::file_size("/proc/self/status"), 0u);
  const absl::StatusOr<std::string> status = ReadFileToString("/proc/self/status");
  ASSERT_THAT(status, IsOk());
  EXPECT_THAT(*status, HasSubstr("VmRSS:"));
}

TEST(ReadFileToStringTest, MissingFileIsNotFoundNamingPath) {
  const std::string path = TestDir() + "/no-such-file";
  EXPECT_THAT(ReadFileToString(path), StatusIs(absl::StatusCode::kNotFound,
                                               AllOf(HasSubstr(path), HasSubstr("No such file"))));
}

TEST(ReadFileToStringTest, OtherErrorsCarryPathAndStrerror) {
  const std::string dir = TestDir();
  absl::StatusOr<std::string> read = ReadFileToString(dir);  // EISDIR on read
  EXPECT_THAT(read, StatusIs(absl::StatusCode::kFailedPrecondition,
                             AllOf(HasSubstr(dir), HasSubstr("Is a directory"))));
  WriteFile(dir + "/file", "x");
  EXPECT_THAT(ReadFileToString(dir + "/file/below"),  // ENOTDIR on open
              StatusIs(absl::ErrnoToStatusCode(ENOTDIR),
                       AllOf(HasSubstr(dir + "/file/below"), HasSubstr("Not a directory"))));
}

// ---- /proc/meminfo -----------------------------------------------------------------------

TEST(ParseMeminfoTest, ParsesRealFile) {
  const absl::StatusOr<Meminfo> m = ParseMeminfo(kMeminfo);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->total_bytes, 24684092 * kKi);
  EXPECT_EQ(m->available_bytes, 24172592 * kKi);
  EXPECT_EQ(m->free_bytes, 23871676 * kKi);
  EXPECT_EQ(m->cached_bytes, 473520 * kKi);
  EXPECT_EQ(m->shmem_bytes, 8856 * kKi);
  EXPECT_EQ(m->swap_total_bytes, 2097148 * kKi);
  EXPECT_EQ(m->swap_free_bytes, 2097000 * kKi);
}

TEST(ParseMeminfoTest, OptionalFieldsDefaultToZero) {
  const absl::StatusOr<Meminfo> m =
      ParseMeminfo("MemTotal: 1000 kB\nMemAvailable: 600 kB");  // no final newline
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->total_bytes, 1000 * kKi);
  EXPECT_EQ(m->available_bytes, 600 * kKi);
  EXPECT_EQ(m->free_bytes, 0u);
  EXPECT_EQ(m->cached_bytes, 0u);
  EXPECT_EQ(m->shmem_bytes, 0u);
  EXPECT_EQ(m->swap_total_bytes, 0u);
  EXPECT_EQ(m->swap_free_bytes, 0u);
}

TEST(ParseMeminfoTest, IgnoresUnknownAndOddLines) {
  EXPECT_THAT(ParseMeminfo("Weird line without colon\nHugePages_Total: lots\nFuture: 1 MB\n"
                           "MemTotal: 1 kB\nMemAvailable: 0 kB\n\n"),
              IsOk());
}

TEST(ParseMeminfoTest, MissingRequiredFieldNamesIt) {
  EXPECT_THAT(ParseMeminfo(""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("/proc/meminfo"), HasSubstr("\"MemTotal\" is missing"))));
  EXPECT_THAT(ParseMeminfo("MemTotal:       24684092 kB\nMemFree:        23871676 kB\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("/proc/meminfo"), HasSubstr("\"MemAvailable\""))));
}

TEST(ParseMeminfoTest, TruncatedFileIsAnError) {
  const std::string meminfo = kMeminfo;
  // Cut in the middle of the MemAvailable number: the line lacks its unit.
  const std::string cut = meminfo.substr(0, meminfo.find("24172592") + 4);
  EXPECT_THAT(ParseMeminfo(cut),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("/proc/meminfo"), HasSubstr("\"MemAvailable:   2417\""),
                             HasSubstr("<number> kB"))));
  // Cut in the middle of the MemAvailable key.
  EXPECT_THAT(ParseMeminfo(meminfo.substr(0, meminfo.find("MemAvailable") + 6)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("MemAvailable")));
}

TEST(ParseMeminfoTest, MalformedValuesNameTheLine) {
  for (const char* line :
       {"MemTotal: abc kB", "MemTotal: 12", "MemTotal: 12 MB", "MemTotal: -12 kB",
        "MemTotal: 12 kB extra", "MemTotal: 1.5 kB", "MemTotal:", "MemTotal: kB"}) {
    EXPECT_THAT(
        ParseMeminfo(absl::StrCat(line, "\nMemAvailable: 1 kB\n")),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 AllOf(HasSubstr("/proc/meminfo"), HasSubstr(absl::StrCat("\"", line, "\"")))))
        << line;
  }
}

TEST(ParseMeminfoTest, OverflowIsAnError) {
  // 2^54 - 1 KiB is the largest that fits in 64 bits of bytes.
  const absl::StatusOr<Meminfo> max =
      ParseMeminfo("MemTotal: 18014398509481983 kB\nMemAvailable: 0 kB\n");
  ASSERT_THAT(max, IsOk());
  EXPECT_EQ(max->total_bytes, 18014398509481983u * 1024);
  EXPECT_THAT(ParseMeminfo("MemTotal: 18014398509481984 kB\nMemAvailable: 0 kB\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("18014398509481984"), HasSubstr("64 bits"))));
  EXPECT_THAT(ParseMeminfo("MemTotal: 99999999999999999999 kB\nMemAvailable: 0 kB\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("99999999999999999999")));
}

TEST(ReadMeminfoTest, ReadsThisMachine) {
  const absl::StatusOr<Meminfo> m = ReadMeminfo();
  ASSERT_THAT(m, IsOk());
  EXPECT_GT(m->total_bytes, 0u);
  EXPECT_LE(m->available_bytes, m->total_bytes);
  EXPECT_LE(m->free_bytes, m->total_bytes);
  EXPECT_LE(m->swap_free_bytes, m->swap_total_bytes);
}

// ---- /proc/PID/status --------------------------------------------------------------------

TEST(ParseProcStatusTest, ParsesRealFile) {
  const absl::StatusOr<ProcessMemory> m = ParseProcStatus(kProcStatus);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rss_bytes, 1780 * kKi);
  EXPECT_EQ(m->rss_anon_bytes, 116 * kKi);
  EXPECT_EQ(m->rss_file_bytes, 1664 * kKi);
  EXPECT_EQ(m->rss_shmem_bytes, 8 * kKi);
  EXPECT_EQ(m->vm_size_bytes, 3060 * kKi);
  EXPECT_EQ(m->vm_hwm_bytes, 1780 * kKi);
  EXPECT_EQ(m->vm_lck_bytes, 0u);
}

TEST(ParseProcStatusTest, OptionalFieldsDefaultToZero) {
  const absl::StatusOr<ProcessMemory> m = ParseProcStatus("VmRSS:\t  4 kB\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rss_bytes, 4 * kKi);
  EXPECT_EQ(m->rss_anon_bytes, 0u);
  EXPECT_EQ(m->vm_size_bytes, 0u);
  EXPECT_EQ(m->vm_hwm_bytes, 0u);
  EXPECT_EQ(m->vm_lck_bytes, 0u);
}

TEST(ParseProcStatusTest, ReadsLockedMemory) {
  const absl::StatusOr<ProcessMemory> m = ParseProcStatus("VmRSS:\t  4 kB\nVmLck:\t  12 kB\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->vm_lck_bytes, 12 * kKi);
}

TEST(ParseProcStatusTest, KernelThreadHasNoRss) {
  EXPECT_THAT(ParseProcStatus(kKernelThreadStatus),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"VmRSS\" is missing")));
}

TEST(ParseProcStatusTest, MalformedValueNamesTheLine) {
  EXPECT_THAT(ParseProcStatus("VmRSS:\t12 kB\nRssAnon:\tx kB\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(R"("RssAnon:\tx kB")")));
}

TEST(ReadProcessMemoryTest, ReadsSelf) {
  const absl::StatusOr<ProcessMemory> self = ReadProcessMemory(0);
  ASSERT_THAT(self, IsOk());
  EXPECT_GT(self->rss_bytes, 0u);
  EXPECT_GE(self->vm_size_bytes, self->rss_bytes);
  EXPECT_GE(self->vm_hwm_bytes, self->rss_bytes);

  const absl::StatusOr<ProcessMemory> by_pid = ReadProcessMemory(getpid());
  ASSERT_THAT(by_pid, IsOk());
  EXPECT_GT(by_pid->rss_bytes, 0u);
}

TEST(ReadProcessMemoryTest, BadPids) {
  EXPECT_THAT(ReadProcessMemory(-1), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-1")));
  EXPECT_THAT(ReadProcessMemory(INT_MAX),  // above pid_max
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/proc/2147483647/status")));
}

// ---- cgroup files ------------------------------------------------------------------------

TEST(ParseCgroupV2MaxTest, MaxIsUnlimited) {
  EXPECT_THAT(ParseCgroupV2Max("max\n"), IsOk());
  EXPECT_EQ(ParseCgroupV2Max("max\n").value_or(1), std::nullopt);
  EXPECT_EQ(ParseCgroupV2Max("max").value_or(1), std::nullopt);
}

TEST(ParseCgroupV2MaxTest, Numbers) {
  EXPECT_THAT(ParseCgroupV2Max("268435456\n").value_or(std::nullopt), Optional(Eq(268435456u)));
  EXPECT_THAT(ParseCgroupV2Max(" 0 ").value_or(std::nullopt), Optional(Eq(0u)));
  EXPECT_THAT(ParseCgroupV2Max("18446744073709551615").value_or(std::nullopt),
              Optional(Eq(UINT64_MAX)));
}

TEST(ParseCgroupV2MaxTest, GarbageIsInvalid) {
  for (const char* bad :
       {"", "\n", "Max", "maxx", "abc", "-1", "12 34", "1.5", "18446744073709551616", "max\nmax"}) {
    EXPECT_THAT(ParseCgroupV2Max(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory.max")))
        << bad;
  }
}

TEST(ParseCgroupV1LimitTest, HugeValuesAreUnlimited) {
  EXPECT_EQ(ParseCgroupV1Limit("9223372036854771712\n").value_or(1), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Limit("9223372036854775807").value_or(1), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Limit("4611686018427387904").value_or(1), std::nullopt);  // 2^62
  EXPECT_THAT(ParseCgroupV1Limit("4611686018427387903").value_or(std::nullopt),
              Optional(Eq(4611686018427387903u)));
  EXPECT_THAT(ParseCgroupV1Limit("268435456\n").value_or(std::nullopt), Optional(Eq(268435456u)));
}

TEST(ParseCgroupV1LimitTest, GarbageIsInvalid) {
  for (const char* bad : {"", "max", "-1", "12abc", "99999999999999999999"}) {
    EXPECT_THAT(ParseCgroupV1Limit(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory.limit_in_bytes")))
        << bad;
  }
}

TEST(ParseCgroupCounterTest, ParsesAndRejects) {
  EXPECT_EQ(ParseCgroupCounter("4108288\n").value_or(0), 4108288u);
  EXPECT_EQ(ParseCgroupCounter("0").value_or(1), 0u);
  for (const char* bad : {"", "x", "-5", "1 2", "18446744073709551616"}) {
    EXPECT_THAT(ParseCgroupCounter(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-negative integer")))
        << bad;
  }
}

TEST(ParseOomKillCountTest, V2MemoryEvents) {
  EXPECT_EQ(ParseOomKillCount("low 0\nhigh 17\nmax 12\noom 3\noom_kill 2\noom_group_kill 1\n")
                .value_or(99),
            2u);
}

TEST(ParseOomKillCountTest, V1OomControl) {
  EXPECT_EQ(ParseOomKillCount("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n").value_or(99), 5u);
}

TEST(ParseOomKillCountTest, AbsentIsZero) {
  EXPECT_EQ(ParseOomKillCount("oom_kill_disable 1\nunder_oom 0\n").value_or(99), 0u);
  EXPECT_EQ(ParseOomKillCount("").value_or(99), 0u);
}

TEST(ParseOomKillCountTest, MalformedIsInvalid) {
  for (const char* bad : {"oom_kill x\n", "oom_kill\n", "oom_kill 1 2\n", "oom_kill -1\n"}) {
    EXPECT_THAT(ParseOomKillCount(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("oom_kill")))
        << bad;
  }
}

// ---- FindMemoryCgroupPath ----------------------------------------------------------------

TEST(FindMemoryCgroupPathTest, HybridHostPrefersV1Memory) {
  EXPECT_EQ(FindMemoryCgroupPath(kHybridCgroup, kHybridMountinfo).value_or(""),
            "/sys/fs/cgroup/memory/process_api/1fd59729f28187bebacb7af6c892f8ec");
}

TEST(FindMemoryCgroupPathTest, UnifiedHost) {
  EXPECT_EQ(FindMemoryCgroupPath(kV2Cgroup, kV2Mountinfo).value_or(""),
            "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope");
  EXPECT_EQ(FindMemoryCgroupPath("0::/\n", kV2Mountinfo).value_or(""), "/sys/fs/cgroup");
}

TEST(FindMemoryCgroupPathTest, ContainerSeesItsCgroupAtTheMountPoint) {
  EXPECT_EQ(FindMemoryCgroupPath(kContainerCgroup, kContainerMountinfo).value_or(""),
            "/sys/fs/cgroup/memory");
  EXPECT_EQ(
      FindMemoryCgroupPath("5:memory:/docker/0123abcd/child\n", kContainerMountinfo).value_or(""),
      "/sys/fs/cgroup/memory/child");
}

TEST(FindMemoryCgroupPathTest, PathOutsideMountRootIsNotFound) {
  // "/docker/0123abcdef" shares a prefix with the root but is not below it.
  EXPECT_THAT(FindMemoryCgroupPath("5:memory:/docker/0123abcdef\n", kContainerMountinfo),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/docker/0123abcdef")));
  EXPECT_THAT(FindMemoryCgroupPath("5:memory:/\n", kContainerMountinfo),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no memory cgroup")));
}

TEST(FindMemoryCgroupPathTest, FallsBackToV2WithoutV1MemoryMount) {
  // A v1 memory line but only a cgroup2 mount.
  EXPECT_EQ(FindMemoryCgroupPath("4:memory:/a\n0::/b\n", kV2Mountinfo).value_or(""),
            "/sys/fs/cgroup/b");
}

TEST(FindMemoryCgroupPathTest, CoMountedControllers) {
  constexpr char kMountinfo[] =
      "35 31 0:32 / /sys/fs/cgroup/cpu,memory rw,relatime shared:5 - cgroup cgroup "
      "rw,cpu,memory\n";
  EXPECT_EQ(FindMemoryCgroupPath("3:cpu,memory:/job\n", kMountinfo).value_or(""),
            "/sys/fs/cgroup/cpu,memory/job");
}

TEST(FindMemoryCgroupPathTest, UsesFirstMountWhoseRootContainsThePath) {
  constexpr char kMountinfo[] =
      "50 31 0:32 /other /mnt/other rw - cgroup cgroup rw,memory\n"
      "51 31 0:32 /jobs /mnt/jobs rw - cgroup cgroup rw,memory\n";
  EXPECT_EQ(FindMemoryCgroupPath("4:memory:/jobs/7\n", kMountinfo).value_or(""), "/mnt/jobs/7");
}

TEST(FindMemoryCgroupPathTest, UnescapesMountPoint) {
  constexpr char kMountinfo[] = R"(51 31 0:32 / /mnt/my\040cgroups rw - cgroup cgroup rw,memory)";
  EXPECT_EQ(FindMemoryCgroupPath("4:memory:/a b\n", kMountinfo).value_or(""),
            "/mnt/my cgroups/a b");
}

TEST(FindMemoryCgroupPathTest, SkipsMalformedLines) {
  const std::string mountinfo =
      absl::StrCat("garbage\n1 2 3\n- cgroup cgroup rw,memory\n", kV2Mountinfo);
  EXPECT_EQ(FindMemoryCgroupPath("nonsense\n4:memory\n0::/x\n", mountinfo).value_or(""),
            "/sys/fs/cgroup/x");
}

TEST(FindMemoryCgroupPathTest, NoMemoryCgroupIsNotFound) {
  EXPECT_THAT(FindMemoryCgroupPath("", ""),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no memory cgroup")));
  // Only non-memory v1 controllers and no cgroup2 mount.
  EXPECT_THAT(FindMemoryCgroupPath("1:cpu:/\n0::/\n",
                                   "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no memory cgroup")));
  // A memory line, but no mount at all.
  EXPECT_THAT(FindMemoryCgroupPath(kHybridCgroup, "22 27 0:21 / /proc rw - proc proc rw\n"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no memory cgroup")));
}

// ---- ReadCgroupMemory on fake directory trees ----------------------------------------

TEST(ReadCgroupMemoryTest, V2ChildUnlimitedUnderLimitedParent) {
  const std::string root = TestDir() + "/cgroup";  // like the v2 root: no memory.max
  WriteFile(root + "/memory.current", "999999\n");
  WriteFile(root + "/a/memory.max", "1073741824\n");
  WriteFile(root + "/a/memory.current", "5000\n");
  WriteFile(root + "/a/b/memory.max", "max\n");
  WriteFile(root + "/a/b/memory.current", "12345\n");
  WriteFile(root + "/a/b/memory.events",
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n");

  const absl::StatusOr<CgroupMemory> m = ReadCgroupMemory(root + "/a/b");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->version, 2);
  EXPECT_EQ(m->limit_bytes, std::nullopt);
  EXPECT_THAT(m->hierarchical_limit_bytes, Optional(Eq(kGi)));
  EXPECT_EQ(m->usage_bytes, 12345u);
  EXPECT_EQ(m->oom_kill_count, 2u);
  EXPECT_EQ(m->path, root + "/a/b");
}

TEST(ReadCgroupMemoryTest, V1ParentLimitSmallerThanChild) {
  const std::string mount = TestDir() + "/memory";
  WriteFile(mount + "/memory.limit_in_bytes", "9223372036854771712\n");
  WriteFile(mount + "/parent/memory.limit_in_bytes", absl::StrCat(512 * kMi, "\n"));
  WriteFile(mount + "/parent/child/memory.limit_in_bytes", absl::StrCat(kGi, "\n"));
  WriteFile(mount + "/parent/child/memory.usage_in_bytes", "4108288\n");
  WriteFile(mount + "/parent/child/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");

  const absl::StatusOr<CgroupMemory> m = ReadCgroupMemory(mount + "/parent/child/");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->version, 1);
  EXPECT_THAT(m->limit_bytes, Optional(Eq(kGi)));
  EXPECT_THAT(m->hierarchical_limit_bytes, Optional(Eq(512 * kMi)));
  EXPECT_EQ(m->usage_bytes, 4108288u);
  EXPECT_EQ(m->oom_kill_count, 1u);
  EXPECT_EQ(m->path, mount + "/parent/child");  // trailing slash dropped
}

TEST(ReadCgroupMemoryTest, V1WorkingSetUsesHierarchicalInactiveFile) {
  const std::string mount = TestDir() + "/memory";
  WriteFile(mount + "/pod/memory.limit_in_bytes", absl::StrCat(kGi, "\n"));
  WriteFile(mount + "/pod/memory.usage_in_bytes", absl::StrCat(300 * kMi, "\n"));
  WriteFile(mount + "/pod/memory.stat",
            absl::StrCat("cache 1000\ninactive_file 7\ntotal_inactive_file ", 100 * kMi,
                         "\ntotal_active_file 5\n"));
  const absl::StatusOr<CgroupMemory> m = ReadCgroupMemory(mount + "/pod");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->inactive_file_bytes, 100 * kMi);
  EXPECT_EQ(m->WorkingSetBytes(), 200 * kMi);
  EXPECT_FALSE(m->oom_group);
}

// v1 counts each cgroup's own kills; the reader adds the descendants', as v2 does.
TEST(ReadCgroupMemoryTest, V1OomKillsIncludeTheChildCgroups) {
  const std::string mount = TestDir() + "/memory";
  WriteFile(mount + "/agent/memory.limit_in_bytes", absl::StrCat(96 * kMi, "\n"));
  WriteFile(mount + "/agent/memory.usage_in_bytes", absl::StrCat(90 * kMi, "\n"));
  WriteFile(mount + "/agent/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  WriteFile(mount + "/agent/memload-workers/memory.oom_control", "under_oom 0\noom_kill 2\n");
  WriteFile(mount + "/agent/memload-workers/deeper/memory.oom_control", "oom_kill 4\n");
  WriteFile(mount + "/agent/other/memory.oom_control", "oom_kill garbage\n");  // Counts 0.
  const absl::StatusOr<CgroupMemory> m = ReadCgroupMemory(mount + "/agent");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->oom_kill_count, 7u);
}

TEST(ReadCgroupMemoryTest, V2WorkingSetAndOomGroup) {
  const std::string root = TestDir() + "/cgroup";
  WriteFile(root + "/c/memory.max", "max\n");
  WriteFile(root + "/c/memory.current", "1000\n");
  WriteFile(root + "/c/memory.stat", "anon 900\nfile 100\ninactive_file 2000\n");
  WriteFile(root + "/c/memory.oom.group", "1\n");
  const absl::StatusOr<CgroupMemory> m = ReadCgroupMemory(root + "/c");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->inactive_file_bytes, 2000u);
  EXPECT_EQ(m->WorkingSetBytes(), 0u);  // Never negative.
  EXPECT_TRUE(m->oom_group);
}

TEST(ReadCgroupMemoryTest, MalformedMemoryStatNamesTheLine) {
  const std::string root = TestDir() + "/cgroup";
  WriteFile(root + "/c/memory.max", "max\n");
  WriteFile(root + "/c/memory.current", "1000\n");
  WriteFile(root + "/c/memory.stat", "inactive_file lots\n");
  EXPECT_THAT(ReadCgroupMemory(root + "/c"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("inactive_file lots")));
}

TEST(ParseMemoryStatValueTest, FindsKeysExactly) {
  const char* stat = "total_inactive_file 5\ninactive_file 3\n";
  const absl::StatusOr<std::optional<uint64_t>> inactive =
      ParseMemoryStatValue(stat, "inactive_file");
  ASSERT_THAT(inactive, IsOk());
  EXPECT_THAT(*inactive, Optional(Eq(3u)));
  const absl::StatusOr<std::optional<uint64_t>> active = ParseMemoryStatValue(stat, "active_file");
  ASSERT_THAT(active, IsOk());
  EXPECT_EQ(*active, std::nullopt);
}

TEST(ReadCgroupMemoryTest, V1AllUnlimited) {
  const std::string mount = TestDir() + "/memory";
  WriteFile(mount + "/memory.limit_in_bytes", "9223372036854771712\n");
  WriteFile(mount + "/job/memory.limit_in_bytes", "9223372036854771712\n");
  WriteFile(mount + "/job/memory.usage_in_bytes", "0\n");

  const absl::StatusOr<CgroupMemory> m = ReadCgroupMemory(mount + "/job");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->version, 1);
  EXPECT_EQ(m->limit_bytes, std::nullopt);
  EXPECT_EQ(m->hierarchical_limit_bytes, std::nullopt);
  EXPECT_EQ(m->oom_kill_count, 0u);  // no memory.oom_control
}

TEST(ReadCgroupMemoryTest, OwnLimitIsTheSmallest) {
  const std::string root = TestDir();
  WriteFile(root + "/a/memory.max", absl::StrCat(2 * kGi));
  WriteFile(root + "/a/b/memory.max", absl::StrCat(kGi));
  WriteFile(root + "/a/b/memory.current", "1");
  const absl::StatusOr<CgroupMemory> m = ReadCgroupMemory(root + "/a/b");
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(m->limit_bytes, Optional(Eq(kGi)));
  EXPECT_THAT(m->hierarchical_limit_bytes, Optional(Eq(kGi)));
}

TEST(ReadCgroupMemoryTest, NotACgroupIsNotFound) {
  const std::string dir = TestDir();
  EXPECT_THAT(ReadCgroupMemory(dir),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(dir), HasSubstr("not a memory cgroup"))));
  EXPECT_THAT(ReadCgroupMemory(dir + "/absent"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir + "/absent")));
}

TEST(ReadCgroupMemoryTest, MissingUsageFileIsNotFound) {
  const std::string dir = TestDir();
  WriteFile(dir + "/memory.max", "max\n");
  EXPECT_THAT(ReadCgroupMemory(dir),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir + "/memory.current")));
}

TEST(ReadCgroupMemoryTest, MalformedFilesNameTheCgroupAndFile) {
  const std::string dir = TestDir() + "/cg";
  WriteFile(dir + "/memory.max", "lots\n");
  WriteFile(dir + "/memory.current", "1\n");
  EXPECT_THAT(ReadCgroupMemory(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(dir), HasSubstr("memory.max"), HasSubstr("lots"))));

  WriteFile(dir + "/memory.max", "max\n");
  WriteFile(dir + "/memory.current", "-1\n");
  EXPECT_THAT(ReadCgroupMemory(dir), StatusIs(absl::StatusCode::kInvalidArgument,
                                              AllOf(HasSubstr(dir), HasSubstr("memory.current"))));

  WriteFile(dir + "/memory.current", "1\n");
  WriteFile(dir + "/memory.events", "oom_kill many\n");
  EXPECT_THAT(ReadCgroupMemory(dir), StatusIs(absl::StatusCode::kInvalidArgument,
                                              AllOf(HasSubstr(dir), HasSubstr("memory.events"))));
}

TEST(ReadCgroupMemoryTest, MalformedAncestorNamesIt) {
  const std::string root = TestDir();
  WriteFile(root + "/a/memory.limit_in_bytes", "oops");
  WriteFile(root + "/a/b/memory.limit_in_bytes", "100");
  WriteFile(root + "/a/b/memory.usage_in_bytes", "10");
  EXPECT_THAT(ReadCgroupMemory(root + "/a/b"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("\"" + root + "/a\""), HasSubstr("oops"))));
}

TEST(ReadCgroupMemoryTest, ReadsThisProcess) {
  // Whatever the machine runs (v1 here, v2 elsewhere), its own cgroup must be readable.
  const absl::StatusOr<CgroupMemory> m = ReadCgroupMemory();
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(m->version, AnyOf(1, 2));
  EXPECT_FALSE(m->path.empty());
  if (m->limit_bytes && m->hierarchical_limit_bytes) {
    EXPECT_LE(*m->hierarchical_limit_bytes, *m->limit_bytes);
  }
  if (m->limit_bytes) {
    EXPECT_TRUE(m->hierarchical_limit_bytes.has_value());
  }
}

// ---- Pressure ----------------------------------------------------------------------------

TEST(ParsePressureTest, ParsesBothLines) {
  const absl::StatusOr<Pressure> p = ParsePressure(kPressure);
  ASSERT_THAT(p, IsOk());
  EXPECT_DOUBLE_EQ(p->some_avg10, 1.53);
  EXPECT_DOUBLE_EQ(p->some_avg60, 0.87);
  EXPECT_DOUBLE_EQ(p->some_avg300, 0.21);
  EXPECT_EQ(p->some_total_us, 4711u);
  EXPECT_DOUBLE_EQ(p->full_avg10, 0.5);
  EXPECT_DOUBLE_EQ(p->full_avg60, 0.25);
  EXPECT_DOUBLE_EQ(p->full_avg300, 0.05);
  EXPECT_EQ(p->full_total_us, 1234567890123u);
}

TEST(ParsePressureTest, IgnoresUnknownKeysAndOrder) {
  const absl::StatusOr<Pressure> p = ParsePressure(
      "full total=2 avg300=0 avg60=0 avg10=0 new=1\n"
      "some avg10=100.00 avg60=0.00 avg300=0.00 total=1\n");
  ASSERT_THAT(p, IsOk());
  EXPECT_DOUBLE_EQ(p->some_avg10, 100.0);
  EXPECT_EQ(p->full_total_us, 2u);
}

TEST(ParsePressureTest, MissingLinesOrKeysAreInvalid) {
  EXPECT_THAT(ParsePressure(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"some\"")));
  EXPECT_THAT(ParsePressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"full\"")));
  EXPECT_THAT(ParsePressure("some avg10=0.00 avg60=0.00 total=0\n"
                            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("missing \"avg300\""), HasSubstr("some avg10"))));
}

TEST(ParsePressureTest, BadValuesNameTheLine) {
  for (const char* some :
       {"some avg10=x avg60=0 avg300=0 total=0", "some avg10=-1 avg60=0 avg300=0 total=0",
        "some avg10=nan avg60=0 avg300=0 total=0", "some avg10=0 avg60=0 avg300=0 total=1.5",
        "some avg10=0 avg60=0 avg300=0 total=", "some avg10 avg60=0 avg300=0 total=0"}) {
    EXPECT_THAT(ParsePressure(absl::StrCat(some, "\nfull avg10=0 avg60=0 avg300=0 total=0\n")),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(some)))
        << some;
  }
}

TEST(ReadMemoryPressureTest, ReadsThisMachineIfSupported) {
  const absl::StatusOr<std::optional<Pressure>> p = ReadMemoryPressure();
  ASSERT_THAT(p, IsOk());
  if (p->has_value()) {
    EXPECT_GE((*p)->some_avg10, 0);
    EXPECT_GE((*p)->some_total_us, (*p)->full_total_us);
  }
}

}  // namespace
}  // namespace memload
