// CancelSignal: a cancellation flag that sleepers can wait on, so a held or rate-limited
// plan sleeps (no CPU) yet stops or reacts within microseconds of a request.
//
//   CancelSignal cancel;
//   // plan thread:
//   while (!cancel.cancelled()) {
//     ... do a step ...
//     if (cancel.WaitUntil(next_step)) break;   // woken early by Cancel() or Notify()
//   }
//   // any thread:
//   cancel.Cancel();
//
// Deadlines are read on a Clock (core/clock.h): the real one by default, a SimulatedClock
// in tests, so a plan's sleeps follow simulated time.
//
// Who answers a cancellation: code that will answer one itself — stop what it started,
// then return — opens a CancelScope first; Cancel() says whether one was open. When none
// was, nobody will: the canceller may end the process at once (memloadctl's Ctrl-C), and no
// scope can open any more, so nothing starts behind its back.
//
// Thread-safety: every method is thread-safe.
#ifndef MEMLOAD_CORE_CANCEL_SIGNAL_H_
#define MEMLOAD_CORE_CANCEL_SIGNAL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/sync/mutex.h"

namespace memload {

class CancelSignal {
 public:
  // `clock` (not owned, never null) must outlive the signal.
  explicit CancelSignal(Clock* clock = Clock::Real()) : clock_(clock) {}
  CancelSignal(const CancelSignal&) = delete;
  CancelSignal& operator=(const CancelSignal&) = delete;

  // Sets the flag for good and wakes every waiter. Returns whether a CancelScope was open
  // (someone answers the cancellation); either way no scope opens from now on.
  bool Cancel();
  // Wakes every waiter without cancelling (e.g. a plan's target changed).
  void Notify();
  // Cheap enough for a hot loop: one relaxed load.
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

  // Sleeps until `deadline` on the signal's clock, Cancel() or Notify() — whichever comes
  // first. Returns cancelled(). A Notify() that happened after the last WaitUntil returned is not
  // lost: the next WaitUntil returns at once.
  bool WaitUntil(absl::Time deadline);

  Clock* clock() const { return clock_; }

 private:
  friend class CancelScope;
  bool OpenScope();  // False once cancelled.
  void CloseScope();

  Clock* const clock_;
  std::atomic<bool> cancelled_{false};
  Mutex mutex_;
  std::condition_variable wake_;
  uint64_t notifications_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t seen_ ABSL_GUARDED_BY(mutex_) = 0;  // notifications_ at the last wake-up.
  int scopes_ ABSL_GUARDED_BY(mutex_) = 0;     // CancelScopes open.
};

// A stretch of code that answers a cancellation of `signal` itself (see above), e.g. from
// just before a command starts what it must stop until it has stopped it:
//
//   CancelScope scope(cancel);
//   if (!scope.open()) return kInterrupted;  // Cancelled already: start nothing.
//   ... start; on cancel->cancelled(), stop what started ...
//
// Thread-safety: thread-safe (it may be closed on another thread than the one that
// opened it); the signal may be cancelled from any thread meanwhile.
class CancelScope {
 public:
  // `signal` (not owned) may be null: nothing cancels it, and the scope is open.
  explicit CancelScope(CancelSignal* signal)
      : signal_(signal), open_(signal == nullptr || signal->OpenScope()) {}
  ~CancelScope() {
    if (signal_ != nullptr && open_) signal_->CloseScope();
  }
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  // False when the signal had been cancelled before: the code must not start anything.
  bool open() const { return open_; }

 private:
  CancelSignal* const signal_;
  const bool open_;
};

}  // namespace memload

#endif  // MEMLOAD_CORE_CANCEL_SIGNAL_H_
