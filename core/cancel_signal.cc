#include "core/cancel_signal.h"

namespace memload {

bool CancelSignal::Cancel() {
  bool answered;
  {
    MutexLock lock(&mutex_);
    cancelled_.store(true, std::memory_order_relaxed);
    ++notifications_;
    answered = scopes_ > 0;
  }
  wake_.notify_all();
  return answered;
}

bool CancelSignal::OpenScope() {
  MutexLock lock(&mutex_);
  // Read under the mutex that Cancel() sets it under: a scope opens before a Cancel (which
  // then counts it) or not at all.
  if (cancelled()) return false;
  ++scopes_;
  return true;
}

void CancelSignal::CloseScope() {
  MutexLock lock(&mutex_);
  --scopes_;
}

void CancelSignal::Notify() {
  {
    MutexLock lock(&mutex_);
    ++notifications_;
  }
  wake_.notify_all();
}

bool CancelSignal::WaitUntil(absl::Time deadline) {
  MutexLock lock(&mutex_);
  // Compare with seen_ as it was when this wait began, not as the first waiter to wake
  // leaves it: a Notify() must wake every wait in progress, not only the first to run.
  const uint64_t seen = seen_;
  clock_->WaitUntil(wake_, lock.native(), deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return notifications_ != seen || cancelled();
  });
  seen_ = notifications_;
  return cancelled();
}

}  // namespace memload
