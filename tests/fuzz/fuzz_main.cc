// The main() of every fuzz target in tests/fuzz (each defines LLVMFuzzerTestOneInput).
//
// Under --config=asan (clang, libFuzzer: MEMLOAD_LIBFUZZER), it fuzzes: libFuzzer starts
// from the seed corpus given by --corpus=DIR (read-only, in the tree), writes what it finds
// to a scratch directory, and stops after -max_total_time (10 s unless flags given after
// the target's own say otherwise). A crashing input is saved under the test's undeclared
// outputs (bazel-testlogs/.../test.outputs/) and fails the test.
//
//   bazel test --config=asan //tests/fuzz:size_fuzz_test            # 10 s
//   bazel run --config=asan //tests/fuzz:size_fuzz_test -- -max_total_time=600
//
// In every other build (gcc, TSan) it replays the seed corpus once, so each seed is also a
// regression test of the parsers it reaches.

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#ifdef MEMLOAD_LIBFUZZER
extern "C" int LLVMFuzzerRunDriver(int* argc, char*** argv,
                                   int (*callback)(const uint8_t* data, size_t size));
#endif

namespace {

constexpr char kCorpusFlag[] = "--corpus=";

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> files;
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) {
    std::fprintf(stderr, "fuzz: cannot open corpus %s: %s\n", dir.c_str(), std::strerror(errno));
    std::exit(2);
  }
  while (dirent* entry = readdir(handle)) {
    std::string path = dir + "/" + entry->d_name;
    struct stat info;
    if (stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)) files.push_back(path);
  }
  closedir(handle);
  return files;
}

int Replay(const std::string& corpus) {
  const std::vector<std::string> files = ListFiles(corpus);
  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream contents;
    contents << in.rdbuf();
    const std::string data = contents.str();
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  std::printf("fuzz: replayed %zu seed inputs from %s (no libFuzzer in this build)\n", files.size(),
              corpus.c_str());
  return files.empty() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus;
  std::vector<std::string> flags;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kCorpusFlag, std::strlen(kCorpusFlag)) == 0) {
      corpus = argv[i] + std::strlen(kCorpusFlag);
    } else {
      flags.push_back(argv[i]);
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "usage: %s --corpus=DIR [libFuzzer flags]\n", argv[0]);
    return 2;
  }
#ifdef MEMLOAD_LIBFUZZER
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string scratch = std::string(tmp != nullptr ? tmp : "/tmp") + "/fuzz-corpus-XXXXXX";
  if (mkdtemp(scratch.data()) == nullptr) {
    std::fprintf(stderr, "fuzz: mkdtemp: %s\n", std::strerror(errno));
    return 2;
  }
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  std::vector<std::string> args = {
      argv[0],
      "-max_total_time=10",
      "-timeout=10",
      "-rss_limit_mb=2048",
      "-print_final_stats=1",
      std::string("-artifact_prefix=") + (outputs != nullptr ? outputs : ".") + "/",
  };
  // Flags given on the command line come later and so win over the defaults above.
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back(scratch);  // New inputs go to the first directory ...
  args.push_back(corpus);   // ... the seeds stay as they are.
  std::vector<char*> pointers;
  for (std::string& arg : args) pointers.push_back(arg.data());
  pointers.push_back(nullptr);
  int fuzz_argc = static_cast<int>(args.size());
  char** fuzz_argv = pointers.data();
  return LLVMFuzzerRunDriver(&fuzz_argc, &fuzz_argv, LLVMFuzzerTestOneInput);
#else
  return Replay(corpus);
#endif
}
