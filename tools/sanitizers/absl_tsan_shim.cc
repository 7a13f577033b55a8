// TSan builds only (--config=tsan): tells ThreadSanitizer about the
// synchronisation inside Debian's Abseil.
//
// Why: libabsl_synchronization.so is built without TSan, so TSan sees neither
// the atomics nor the futex waits inside absl::Mutex, absl::Notification and
// absl::BlockingCounter, and reports every hand-off through them as a data race
// (false positives in the client, the server's shutdown and the verifier
// stage). Abseil built with TSan annotates itself; this does the same from
// outside.
//
// How: the linker flags in BUILD.bazel (-Wl,--wrap=<symbol>) send our calls to
// each function below to __wrap_<symbol>, which calls the real function
// (__real_<symbol>) and adds the happens-before edge that the function
// guarantees: release before a lock is given up or a notification sent, acquire
// after a lock is taken or a wait succeeds. The sync object is the Mutex,
// Notification or BlockingCounter's own address. Only the calls in our objects
// are wrapped: Abseil's internal calls stay unseen, which is fine because the
// public entry points carry the ordering. Requires --dynamic_mode=off, so that
// one link sees every call.
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

// The wrapped symbols are Itanium-mangled member functions; `self` is their
// `this`.
#define VOUCH_REAL_AND_WRAP(ret, symbol, ...)  \
  extern "C" ret __real_##symbol(__VA_ARGS__); \
  extern "C" ret __wrap_##symbol(__VA_ARGS__)

using absl::BlockingCounter;
using absl::Condition;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

namespace {

// Abseil evaluates a Condition inside the Mutex, with the lock held, before Await or LockWhen
// returns, on the waiting thread or on whichever thread is unlocking. Each evaluation is a
// critical section of its own: it must see the last holder's writes (acquire), and the next
// holder must see its reads (release), including the reads of the Condition object itself.
class AnnotatedCondition {
 public:
  AnnotatedCondition(Mutex *mu, const Condition &cond) : mu_(mu), cond_(&cond) {}
  Condition condition() { return Condition(&AnnotatedCondition::Eval, this); }

 private:
  static bool Eval(AnnotatedCondition *self) {
    __tsan_acquire(self->mu_);
    const bool met = self->cond_->Eval();
    __tsan_release(self->mu_);
    return met;
  }
  Mutex *mu_;
  const Condition *cond_;
};

}  // namespace

// absl::Mutex::Lock / TryLock / ReaderLock: acquire after the lock is held.
VOUCH_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex4LockEv, Mutex *self) {
  __real__ZN4absl7debian35Mutex4LockEv(self);
  __tsan_acquire(self);
}
VOUCH_REAL_AND_WRAP(bool, _ZN4absl7debian35Mutex7TryLockEv, Mutex *self) {
  const bool locked = __real__ZN4absl7debian35Mutex7TryLockEv(self);
  if (locked) __tsan_acquire(self);
  return locked;
}
VOUCH_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex10ReaderLockEv, Mutex *self) {
  __real__ZN4absl7debian35Mutex10ReaderLockEv(self);
  __tsan_acquire(self);
}
VOUCH_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, Mutex *self,
                    const Condition &cond) {
  __real__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(
      self, AnnotatedCondition(self, cond).condition());
  __tsan_acquire(self);
}
VOUCH_REAL_AND_WRAP(bool,
                    _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
                    Mutex *self, const Condition &cond, Duration timeout) {
  // The lock is held on return whatever the result.
  const bool met =
      __real__ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
          self, AnnotatedCondition(self, cond).condition(), timeout);
  __tsan_acquire(self);
  return met;
}

// absl::Mutex::Unlock / ReaderUnlock: release before the lock is given up.
VOUCH_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex6UnlockEv, Mutex *self) {
  __tsan_release(self);
  __real__ZN4absl7debian35Mutex6UnlockEv(self);
}
VOUCH_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex12ReaderUnlockEv, Mutex *self) {
  __tsan_release(self);
  __real__ZN4absl7debian35Mutex12ReaderUnlockEv(self);
}

// absl::Mutex::Await*: gives the lock up while waiting and holds it again on
// return.
VOUCH_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, Mutex *self,
                    const Condition &cond) {
  __tsan_release(self);
  __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(self,
                                                        AnnotatedCondition(self, cond).condition());
  __tsan_acquire(self);
}
VOUCH_REAL_AND_WRAP(bool, _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
                    Mutex *self, const Condition &cond, Duration timeout) {
  __tsan_release(self);
  const bool met = __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
      self, AnnotatedCondition(self, cond).condition(), timeout);
  __tsan_acquire(self);
  return met;
}
VOUCH_REAL_AND_WRAP(bool, _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
                    Mutex *self, const Condition &cond, Time deadline) {
  __tsan_release(self);
  const bool met = __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
      self, AnnotatedCondition(self, cond).condition(), deadline);
  __tsan_acquire(self);
  return met;
}

// absl::Notification: Notify releases; a wait or check that sees the
// notification acquires.
VOUCH_REAL_AND_WRAP(void, _ZN4absl7debian312Notification6NotifyEv, Notification *self) {
  __tsan_release(self);
  __real__ZN4absl7debian312Notification6NotifyEv(self);
}
VOUCH_REAL_AND_WRAP(void, _ZNK4absl7debian312Notification19WaitForNotificationEv,
                    const Notification *self) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(self);
  __tsan_acquire(const_cast<Notification *>(self));
}
VOUCH_REAL_AND_WRAP(bool,
                    _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE,
                    const Notification *self, Duration timeout) {
  const bool notified =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
          self, timeout);
  if (notified) __tsan_acquire(const_cast<Notification *>(self));
  return notified;
}
VOUCH_REAL_AND_WRAP(bool,
                    _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE,
                    const Notification *self, Time deadline) {
  const bool notified =
      __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(self,
                                                                                         deadline);
  if (notified) __tsan_acquire(const_cast<Notification *>(self));
  return notified;
}

// absl::BlockingCounter: each DecrementCount releases; Wait acquires all of
// them.
VOUCH_REAL_AND_WRAP(bool, _ZN4absl7debian315BlockingCounter14DecrementCountEv,
                    BlockingCounter *self) {
  __tsan_release(self);
  return __real__ZN4absl7debian315BlockingCounter14DecrementCountEv(self);
}
VOUCH_REAL_AND_WRAP(void, _ZN4absl7debian315BlockingCounter4WaitEv, BlockingCounter *self) {
  __real__ZN4absl7debian315BlockingCounter4WaitEv(self);
  __tsan_acquire(self);
}
