// memory_hog: a competing workload for end-to-end tests. Grows to MIB mebibytes at RATE
// MiB/s (1 MiB mappings, every page written, so the memory is resident and charged to the
// process's cgroup), holds for HOLD_MS, shrinks at the same rate and exits 0. Growing and
// shrinking gradually is how real workloads come and go. Prints "holding" and "released".
//
//   memory_hog 100 40 1000
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: memory_hog MIB RATE_MIB_PER_S HOLD_MS\n");
    return 2;
  }
  const long mib = std::atol(argv[1]);
  const double rate = std::atof(argv[2]);
  const long hold_ms = std::atol(argv[3]);
  if (mib <= 0 || rate <= 0 || hold_ms < 0) return 2;
  constexpr size_t kChunk = 1 << 20;
  const auto step = std::chrono::duration<double>(1.0 / rate);
  std::vector<char*> chunks;
  // Pacing sleeps: they set the workload's rate, they do not wait for anything.
  auto next = std::chrono::steady_clock::now();
  for (long i = 0; i < mib; ++i) {
    void* chunk = mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (chunk == MAP_FAILED) return 1;
    for (size_t page = 0; page < kChunk; page += 4096) static_cast<char*>(chunk)[page] = 1;
    chunks.push_back(static_cast<char*>(chunk));
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(step);
    std::this_thread::sleep_until(next);
  }
  std::printf("holding\n");
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  next = std::chrono::steady_clock::now();
  while (!chunks.empty()) {
    munmap(chunks.back(), kChunk);
    chunks.pop_back();
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(step);
    std::this_thread::sleep_until(next);
  }
  std::printf("released\n");
  std::fflush(stdout);
  return 0;
}
