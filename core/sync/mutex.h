// memload::Mutex: std::mutex with clang's thread-safety annotations.
//
// memload uses std primitives (not absl::Mutex: Debian's Abseil is not built for TSan, so
// absl::Mutex shows up as false races). std::mutex carries no capability annotations in
// libstdc++, so clang's -Wthread-safety cannot check fields "guarded by" one. This wrapper, in
// the style of LevelDB's port::Mutex, adds them and nothing else: TSan still sees a plain
// std::mutex underneath.
//
//   class Counter {
//    public:
//     void Add(int n) ABSL_LOCKS_EXCLUDED(mutex_) {
//       MutexLock lock(&mutex_);
//       total_ += n;
//       changed_.notify_all();
//     }
//     void WaitFor(int n) ABSL_LOCKS_EXCLUDED(mutex_) {
//       MutexLock lock(&mutex_);
//       changed_.wait(lock.native(), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
//         return total_ >= n;
//       });
//     }
//    private:
//     Mutex mutex_;
//     std::condition_variable changed_;
//     int total_ ABSL_GUARDED_BY(mutex_) = 0;
//   };
//
// The annotation macros are Abseil's (absl/base/thread_annotations.h: ABSL_GUARDED_BY,
// ABSL_EXCLUSIVE_LOCKS_REQUIRED, ABSL_LOCKS_EXCLUDED, ...); gcc ignores them, clang checks
// them under --config=clang (-Wthread-safety, as errors). Waits go through the standard
// std::condition_variable with MutexLock::native(), and so through Clock::WaitUntil.
//
// Thread-safety: Mutex is a mutex; a MutexLock belongs to the thread that made it.

#ifndef MEMLOAD_CORE_SYNC_MUTEX_H_
#define MEMLOAD_CORE_SYNC_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace memload {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mutex_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mutex_.unlock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mutex_.try_lock(); }

  // Tells the analysis the caller holds this mutex (where it cannot see so itself: a
  // callback run under the lock). Checks nothing at run time.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class MutexLock;
  std::mutex mutex_;
};

// Holds a Mutex for its scope; may be released and taken again inside it.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ABSL_EXCLUSIVE_LOCK_FUNCTION(mutex) : lock_(mutex->mutex_) {}
  ~MutexLock() ABSL_UNLOCK_FUNCTION() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Releases the mutex early (e.g. before a blocking call) ...
  void Unlock() ABSL_UNLOCK_FUNCTION() { lock_.unlock(); }
  // ... and takes it again.
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { lock_.lock(); }

  // The underlying lock, for std::condition_variable::wait and Clock::WaitUntil. A wait
  // releases and retakes the mutex; the lock is held again when it returns.
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace memload

#endif  // MEMLOAD_CORE_SYNC_MUTEX_H_
