#include "controller/fanout.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sync/mutex.h"

namespace memload {
namespace controller {

bool IsRetryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

absl::Duration BackoffWithoutJitter(const RetryPolicy& policy, int retry) {
  const double factor = std::pow(std::max(policy.multiplier, 1.0), std::max(retry - 1, 0));
  // Compare in seconds: a large factor would overflow the Duration multiplication.
  const double seconds = absl::ToDoubleSeconds(policy.initial_backoff) * factor;
  return std::min(policy.max_backoff, absl::Seconds(seconds));
}

int AutoParallelism(size_t targets) {
  constexpr size_t kMin = 256;
  constexpr size_t kMax = 4096;
  return static_cast<int>(std::clamp(targets / 8, kMin, kMax));
}

namespace fanout_internal {
namespace {

// How often a waiting FanOut looks at the cancel signal. CancelSignal offers no callback
// to wake another condition variable, so this bounds how late Ctrl-C is noticed.
constexpr absl::Duration kCancelPoll = absl::Milliseconds(20);

enum class Phase { kQueued, kInFlight, kAnswered, kBackoff, kDone };

struct Target {
  Phase phase = Phase::kQueued;
  int attempts = 0;
  uint64_t attempt_id = 0;  // The attempt in flight; answers to older ones are ignored.
  absl::Time start = absl::InfinitePast();
  absl::Time watchdog = absl::InfiniteFuture();  // kInFlight: when to give up on it.
  absl::Time retry_at = absl::InfiniteFuture();  // kBackoff: when to try again.
  absl::Time answered = absl::InfinitePast();    // kAnswered / kDone.
  absl::Status status;                           // Last outcome.
  std::any value;
};

// Shared with the callbacks, which may outlive RunFanOut (an attempt abandoned by the
// watchdog answers late). Callbacks only record answers; every decision (retry, give up,
// issue) is taken by the thread in RunFanOut.
struct State {
  Mutex mutex;
  std::condition_variable changed;
  std::vector<Target> targets ABSL_GUARDED_BY(mutex);
  std::vector<size_t> answered ABSL_GUARDED_BY(mutex);  // targets with a fresh answer.
  size_t in_flight ABSL_GUARDED_BY(mutex) = 0;
};

RawDone MakeDone(std::shared_ptr<State> state, Clock* clock, size_t index, uint64_t attempt_id) {
  return [state = std::move(state), clock, index, attempt_id](absl::Status status, std::any value) {
    {
      MutexLock lock(&state->mutex);
      Target& target = state->targets[index];
      if (target.phase != Phase::kInFlight || target.attempt_id != attempt_id) return;
      target.phase = Phase::kAnswered;
      target.answered = clock->Now();
      target.status = std::move(status);
      target.value = std::move(value);
      --state->in_flight;
      state->answered.push_back(index);
    }
    state->changed.notify_all();
  };
}

// The dispatcher: runs on the RunFanOut thread with `state->mutex` held, except while
// issuing calls (a client may answer inline, and its callback takes the mutex).
class Dispatcher {
 public:
  Dispatcher(const std::vector<AgentClient*>& clients, const RawCallFn& call,
             const FanOutOptions& options)
      : clients_(clients),
        call_(call),
        options_(options),
        parallelism_(static_cast<size_t>(options.parallelism == 0
                                             ? AutoParallelism(clients.size())
                                             : std::max(options.parallelism, 1))),
        max_attempts_(options.idempotent ? std::max(options.retry.max_attempts, 1) : 1),
        clock_(options.clock != nullptr ? options.clock : Clock::Real()),
        state_(std::make_shared<State>()) {
    state_->targets.resize(clients.size());
  }

  std::vector<RawResult> Run() {
    MutexLock lock(&state_->mutex);
    while (done_ < clients_.size()) {
      const absl::Time now = clock_->Now();
      for (size_t index : state_->answered) Settle(index, now);
      state_->answered.clear();
      EnforceWatchdog(now);
      if (Stopping()) AbandonUnstarted();
      cancel_seen_ = options_.cancel != nullptr && options_.cancel->cancelled();
      std::vector<std::pair<size_t, uint64_t>> issue = PickAttempts(now);
      if (!issue.empty()) {
        lock.Unlock();
        for (const auto& [index, attempt_id] : issue) {
          call_(*clients_[index], options_.timeout, MakeDone(state_, clock_, index, attempt_id));
        }
        lock.Lock();
        continue;
      }
      if (done_ == clients_.size()) break;
      clock_->WaitUntil(
          state_->changed, lock.native(), std::min(NextWake(now), now + absl::Hours(1)),
          [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
            // A cancel not acted upon yet wakes it too (on any clock).
            return !state_->answered.empty() ||
                   (!cancel_seen_ && options_.cancel != nullptr && options_.cancel->cancelled());
          });
    }
    return Results();
  }

 private:
  bool Stopping() const {
    if (options_.cancel != nullptr && options_.cancel->cancelled()) return true;
    return options_.stop_after_failures >= 0 &&
           failed_ > static_cast<size_t>(options_.stop_after_failures);
  }

  // Decides what an answer means: done, or another attempt after a backoff.
  void Settle(size_t index, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    Target& target = state_->targets[index];
    if (!target.status.ok() && IsRetryable(target.status) && target.attempts < max_attempts_ &&
        !Stopping()) {
      target.phase = Phase::kBackoff;
      target.retry_at = now + Backoff(target.attempts);
      target.value.reset();
      return;
    }
    Finish(target);
  }

  // Latency runs to the last answer (`answered`), even for a target abandoned in backoff.
  void Finish(Target& target) {
    target.phase = Phase::kDone;
    ++done_;
    if (!target.status.ok()) ++failed_;
  }

  absl::Duration Backoff(int attempts_so_far) {
    absl::Duration backoff = BackoffWithoutJitter(options_.retry, attempts_so_far);
    const double jitter = std::clamp(options_.retry.jitter, 0.0, 1.0);
    if (jitter > 0) {
      backoff = std::min(options_.retry.max_backoff,
                         backoff * absl::Uniform(rng_, 1.0 - jitter, 1.0 + jitter));
    }
    return backoff;
  }

  void EnforceWatchdog(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    for (size_t index = 0; index < state_->targets.size(); ++index) {
      Target& target = state_->targets[index];
      if (target.phase != Phase::kInFlight || target.watchdog > now) continue;
      // The client never called back: treat it as the deadline it should have reported.
      target.phase = Phase::kAnswered;
      target.answered = now;
      target.status = absl::DeadlineExceededError(
          absl::StrCat(clients_[index]->target(), ": no answer within ",
                       absl::FormatDuration(options_.timeout), " (the client never called back)"));
      --state_->in_flight;
      Settle(index, now);
    }
  }

  // Targets not started yet end unattempted; those waiting for a retry keep their last error.
  void AbandonUnstarted() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    const bool cancelled = options_.cancel != nullptr && options_.cancel->cancelled();
    for (; next_new_ < state_->targets.size(); ++next_new_) {
      Target& target = state_->targets[next_new_];
      target.status = cancelled ? absl::CancelledError("not attempted: cancelled")
                                : absl::AbortedError(absl::StrFormat(
                                      "not attempted: stopped after %d failures", failed_));
      Finish(target);
    }
    for (Target& target : state_->targets) {
      if (target.phase == Phase::kBackoff) Finish(target);
    }
  }

  // Fills free slots: due retries first (so that started targets finish), then new targets
  // in order. Marks them in flight; the caller issues them without the lock.
  std::vector<std::pair<size_t, uint64_t>> PickAttempts(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    std::vector<std::pair<size_t, uint64_t>> issue;
    auto start = [&](size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
      Target& target = state_->targets[index];
      target.phase = Phase::kInFlight;
      ++target.attempts;
      target.attempt_id = ++last_attempt_id_;
      if (target.attempts == 1) target.start = now;
      target.watchdog = now + options_.timeout + options_.watchdog_grace;
      ++state_->in_flight;
      issue.emplace_back(index, target.attempt_id);
    };
    for (size_t index = 0; index < state_->targets.size(); ++index) {
      if (state_->in_flight >= parallelism_) return issue;
      const Target& target = state_->targets[index];
      if (target.phase == Phase::kBackoff && target.retry_at <= now) start(index);
    }
    while (state_->in_flight < parallelism_ && next_new_ < state_->targets.size()) {
      start(next_new_++);
    }
    return issue;
  }

  absl::Time NextWake(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    absl::Time wake = absl::InfiniteFuture();
    for (const Target& target : state_->targets) {
      if (target.phase == Phase::kInFlight) wake = std::min(wake, target.watchdog);
      if (target.phase == Phase::kBackoff && state_->in_flight < parallelism_) {
        wake = std::min(wake, target.retry_at);
      }
    }
    if (options_.cancel != nullptr) wake = std::min(wake, now + kCancelPoll);
    return wake;
  }

  std::vector<RawResult> Results() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    std::vector<RawResult> results(clients_.size());
    for (size_t index = 0; index < clients_.size(); ++index) {
      Target& target = state_->targets[index];
      RawResult& result = results[index];
      result.target = clients_[index]->target();
      // Moved, not copied: an absl::Status's heap rep is counted inside Debian's
      // uninstrumented libabsl_status.so, and State may be freed last on a client's release
      // thread — a rep shared with it would be deleted there, out of TSan's sight of the
      // count (security_process_test's memloadctl children reported that race). The rep now
      // has one owner, the caller.
      if (target.status.ok()) result.value = std::move(target.value);
      if (!target.status.ok() && target.attempts > 1) {
        // The last attempt's error, and how many were made: "no answer within 5s" alone
        // read wrong after 15 s of three attempts (attack pass F5). A new status: its rep is
        // not shared with State (see below).
        result.status = absl::Status(
            target.status.code(),
            absl::StrCat(target.status.message(), " (", target.attempts, " attempts)"));
      } else {
        result.status = std::move(target.status);
      }
      result.attempts = target.attempts;
      result.start = target.attempts > 0 ? target.start : absl::InfinitePast();
      result.latency = target.attempts > 0 ? target.answered - target.start : absl::ZeroDuration();
    }
    return results;
  }

  const std::vector<AgentClient*>& clients_;
  const RawCallFn& call_;
  const FanOutOptions& options_;
  const size_t parallelism_;
  const int max_attempts_;
  Clock* const clock_;
  const std::shared_ptr<State> state_;
  // The fields below belong to the dispatching thread (used with state_->mutex held).
  size_t next_new_ = 0;       // The first target never started.
  bool cancel_seen_ = false;  // The cancel was acted upon (no target starts any more).
  size_t done_ = 0;
  size_t failed_ = 0;
  uint64_t last_attempt_id_ = 0;
  absl::BitGen rng_;
};

}  // namespace

std::vector<RawResult> RunFanOut(const std::vector<AgentClient*>& clients, const RawCallFn& call,
                                 const FanOutOptions& options) {
  return Dispatcher(clients, call, options).Run();
}

}  // namespace fanout_internal
}  // namespace controller
}  // namespace memload
