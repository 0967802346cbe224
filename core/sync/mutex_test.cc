#include "core/sync/mutex.h"

#include <condition_variable>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace memload {
namespace {

// The class comment's example, compiled under -Wthread-safety by --config=clang.
class Counter {
 public:
  void Add(int n) ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    total_ += n;
    changed_.notify_all();
  }
  void WaitFor(int n) ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    changed_.wait(lock.native(),
                  [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return total_ >= n; });
  }
  int total() ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    return total_;
  }

 private:
  Mutex mutex_;
  std::condition_variable changed_;
  int total_ ABSL_GUARDED_BY(mutex_) = 0;
};

TEST(MutexTest, ExcludesAndWakes) {
  Counter counter;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 1000; ++j) counter.Add(1);
    });
  }
  counter.WaitFor(4000);
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counter.total(), 4000);
}

TEST(MutexTest, LockCanBeReleasedAndRetaken) {
  Mutex mutex;
  MutexLock lock(&mutex);
  lock.Unlock();
  bool taken = false;
  std::thread other([&] {
    if (mutex.TryLock()) {
      taken = true;
      mutex.Unlock();
    }
  });
  other.join();
  EXPECT_TRUE(taken);
  lock.Lock();
}

}  // namespace
}  // namespace memload
