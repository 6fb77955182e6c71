//! `Condvar`: std's condition variable for [`Mutex`](super::Mutex), on the wait queue.
//!
//! A waiter queues itself (by priority) *before* it releases the mutex, under the
//! queue's lock (`WaitQueue::wait`), so a notifier that takes the mutex afterwards and
//! notifies finds it queued: no lost wakeups. Like std, waits may wake spuriously; use
//! the `_while` forms.

use super::mutex::MutexGuard;
use super::waitqueue::{WaitQueue, Wake};
use std::fmt;
use std::sync::LockResult;
use std::time::{Duration, Instant};

/// A condition variable, like [`std::sync::Condvar`], for [`super::Mutex`] guards.
/// Waiters are woken highest priority first; both green threads and plain OS threads
/// may wait and notify.
pub struct Condvar {
    queue: WaitQueue,
}

/// Whether a timed wait returned because the time ran out (std's `WaitTimeoutResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait timed out.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    crate::loom::const_fn_unless_loom! {
        /// Creates a condition variable with no waiters.
        pub fn new() -> Condvar {
            Condvar {
                queue: WaitQueue::new(),
            }
        }
    }

    /// Releases the guard's mutex, sleeps until notified, and takes the mutex again.
    ///
    /// # Errors
    /// If the mutex is poisoned when retaken, like std (the guard is inside).
    #[track_caller]
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        self.wait_until_inner(guard, None).map_or_else(
            |e| Err(std::sync::PoisonError::new(e.into_inner().0)),
            |(g, _)| Ok(g),
        )
    }

    /// Waits while `condition` holds on the protected value.
    ///
    /// # Errors
    /// As for [`wait`](Condvar::wait).
    #[track_caller]
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T>> {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`wait`](Condvar::wait), giving up after `dur`.
    ///
    /// # Errors
    /// As for [`wait`](Condvar::wait).
    #[track_caller]
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        self.wait_until_inner(guard, Instant::now().checked_add(dur))
    }

    /// Waits while `condition` holds, giving up after `dur` in total.
    ///
    /// # Errors
    /// As for [`wait`](Condvar::wait).
    #[track_caller]
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let deadline = Instant::now().checked_add(dur);
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = self.wait_until_inner(guard, deadline)?.0;
        }
    }

    #[track_caller]
    fn wait_until_inner<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        crate::preempt::might_sleep();
        let mutex = guard.mutex();
        let (woke, _) = self.queue.sleep(guard, deadline);
        let timed_out = WaitTimeoutResult(woke == Wake::TimedOut);
        match mutex.lock() {
            Ok(g) => Ok((g, timed_out)),
            Err(p) => Err(std::sync::PoisonError::new((p.into_inner(), timed_out))),
        }
    }

    /// Wakes the highest-priority waiter, if any.
    pub fn notify_one(&self) {
        self.queue.wake_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.queue.wake_all();
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
