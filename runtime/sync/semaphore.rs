//! `Semaphore`: counting permits, handed directly to the highest-priority waiter.
//!
//! The count and the wait queue change together under the state lock (lock order: the
//! state lock, then the queue's). `release` with a waiter queued gives that waiter the
//! permit (token 1) instead of raising the count, so a thread arriving later cannot
//! take it first, and the priority order of the queue is the order of service.

use super::RawSpinLock;
use super::waitqueue::{WaitQueue, Wake};
use std::fmt;
use std::time::{Duration, Instant};

/// A counting semaphore. Green threads and plain OS threads may acquire and release;
/// waiters are served highest priority first.
pub struct Semaphore {
    permits: RawSpinLock<usize>,
    waiters: WaitQueue,
}

/// One permit of a [`Semaphore`], released when dropped (or kept with
/// [`forget`](SemaphorePermit::forget)).
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken: the semaphore's count stays one lower.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

impl Semaphore {
    crate::loom::const_fn_unless_loom! {
        /// Creates a semaphore with `permits` available.
        pub fn new(permits: usize) -> Semaphore {
            Semaphore {
                permits: RawSpinLock::new(permits),
                waiters: WaitQueue::new(),
            }
        }
    }

    /// Takes a permit, blocking until one is available.
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_until(None)
            .expect("an untimed wait cannot time out")
    }

    /// Takes a permit, waiting at most `timeout`; `None` if it ran out.
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_until(Instant::now().checked_add(timeout))
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut p = self.permits.lock();
        (*p > 0).then(|| {
            *p -= 1;
            SemaphorePermit { sem: self }
        })
    }

    #[track_caller]
    fn acquire_until(&self, deadline: Option<Instant>) -> Option<SemaphorePermit<'_>> {
        if let Some(permit) = self.try_acquire() {
            return Some(permit);
        }
        crate::preempt::might_sleep();
        loop {
            let mut p = self.permits.lock();
            if *p > 0 {
                *p -= 1;
                return Some(SemaphorePermit { sem: self });
            }
            match self.waiters.sleep(p, deadline) {
                (Wake::Notified, 1) => return Some(SemaphorePermit { sem: self }),
                (Wake::Notified, _) => {}
                (Wake::TimedOut, _) => return None,
            }
        }
    }

    /// Adds a permit: the highest-priority waiter gets it, or the count rises.
    pub fn release(&self) {
        let mut p = self.permits.lock();
        match self.waiters.notify_one(1) {
            Some(w) => {
                drop(p);
                w.wake();
            }
            None => *p += 1,
        }
    }

    /// Permits available now (a snapshot).
    pub fn available_permits(&self) -> usize {
        *self.permits.lock()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish_non_exhaustive()
    }
}
