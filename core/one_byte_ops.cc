// one_byte_ops: N operations of one 1-byte path and nothing else, for instruction counts
// under callgrind (README "Performance"; the benchmark library's own loop varies its
// iteration count, this does not).
//
//   bazel build --config=bench //core:one_byte_ops
//   valgrind --tool=callgrind bazel-bin/core/one_byte_ops --op=stream --count=1000000
//   (instructions/op = (Ir at --count=N − Ir at --count=0) / N)
//
// --op: glibc_raw (glibc's own malloc(1) + free from libc.so.6, whatever allocator the
// process runs on), raw (malloc(1) + free: the process allocator), stream (one
// StreamWorker::Step of a 1-byte block, no touch: the seed's NewBackground(1, Byte)),
// retain (RetainedSet::Create of one 1-byte block, then its release: the seed's New).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "core/block_allocator.h"
#include "core/retained_set.h"
#include "core/streaming.h"

ABSL_FLAG(std::string, op, "stream", "glibc_raw, raw, stream or retain");
ABSL_FLAG(int64_t, count, 1000000, "operations");

namespace memload {
namespace {

// Keeps the compiler from dropping a pointer nobody reads.
inline void Escape(void* pointer) { asm volatile("" : : "g"(pointer) : "memory"); }

int Run(const std::string& op, int64_t count) {
  if (op == "glibc_raw") {
    // glibc's own pair, found in libc.so.6 (tcmalloc also defines __libc_malloc).
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    auto* glibc_malloc =
        libc ? reinterpret_cast<void* (*)(size_t)>(dlsym(libc, "malloc")) : nullptr;
    auto* glibc_free = libc ? reinterpret_cast<void (*)(void*)>(dlsym(libc, "free")) : nullptr;
    if (glibc_malloc == nullptr || glibc_free == nullptr) return 1;
    for (int64_t i = 0; i < count; ++i) {
      void* block = glibc_malloc(1);
      Escape(block);
      glibc_free(block);
    }
  } else if (op == "raw") {
    for (int64_t i = 0; i < count; ++i) {
      void* block = std::malloc(1);
      Escape(block);
      std::free(block);
    }
  } else if (op == "stream") {
    StreamOptions options;
    options.block_size = 1;
    options.touch = TouchMode::kNone;
    StreamWorker worker(options, SharedBlockAllocator(Backing::kMalloc, {}), 0, 1);
    for (int64_t i = 0; i < count; ++i) {
      if (!worker.Step().ok()) return 1;
    }
  } else if (op == "retain") {
    RetainedSetOptions options;
    options.block_size = 1;
    options.touch = TouchMode::kNone;
    options.backing = Backing::kMalloc;
    for (int64_t i = 0; i < count; ++i) {
      absl::StatusOr<RetainedSet> set = RetainedSet::Create(options, 1);
      if (!set.ok()) return 1;
      Escape(&set);
    }
  } else {
    std::fprintf(stderr, "one_byte_ops: unknown --op=%s\n", op.c_str());
    return 2;
  }
  return 0;
}

}  // namespace
}  // namespace memload

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return memload::Run(absl::GetFlag(FLAGS_op), absl::GetFlag(FLAGS_count));
}
