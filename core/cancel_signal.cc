#include "core/cancel_signal.h"

namespace memload {

void CancelSignal::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_.store(true, std::memory_order_relaxed);
    ++notifications_;
  }
  wake_.notify_all();
}

void CancelSignal::Notify() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++notifications_;
  }
  wake_.notify_all();
}

bool CancelSignal::WaitUntil(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  // Compare with seen_ as it was when this wait began, not as the first waiter to wake
  // leaves it: a Notify() must wake every wait in progress, not only the first to run.
  const uint64_t seen = seen_;
  clock_->WaitUntil(wake_, lock, deadline,
                    [&] { return notifications_ != seen || cancelled(); });
  seen_ = notifications_;
  return cancelled();
}

}  // namespace memload
