//! One registration with the epoll device: per-direction readiness and the wait
//! protocol (invariant 5).
//!
//! Every pollable descriptor a green thread waits on is registered once with its CPU's
//! epoll instance, edge-triggered, for both directions. The registration is a
//! [`ScheduledIo`]: for each direction (read, write) an event counter and a slot for the
//! one thread waiting in that direction.
//!
//! Readiness is not cached as a flag that could be stale: an I/O call is simply tried,
//! and only when the kernel answers `EAGAIN` does the thread wait. The protocol:
//!
//! 1. the waiter reads the direction's counter (a *snapshot*) **before** the call;
//! 2. the call fails with `EAGAIN`;
//! 3. the waiter installs itself in the direction's slot (CAS `null → me`, SeqCst; a
//!    slot already taken means a second waiter in that direction: an error), **then**
//!    re-reads the counter as it marks itself blocked (`block_current`'s cancel step):
//!    if it moved, an event came after the snapshot and the call is simply retried;
//! 4. the device's softirq, for each event, **first** bumps the counter (SeqCst RMW),
//!    **then** swaps the slot empty and wakes whoever it held.
//!
//! Either the waiter sees the bumped counter or the softirq sees the waiter — the same
//! store-then-load pairing as the scheduler's sleep protocol. Readiness that arrives
//! between the `EAGAIN` and the installation is not lost either: with `EPOLLET` the
//! kernel queues an event for every new arrival after the call, and a registration made
//! only after the first `EAGAIN` reports the descriptor's current state at once.
//!
//! A waiter that wakes for any reason (an event, its timeout, a spurious wake) takes
//! itself out of the slot again; a wake the softirq had already taken from the slot
//! then arrives later, as a spurious wake, which every sleeper tolerates.
//! `tests/loom_io.rs` checks the protocol with the softirq and the waiter on two
//! threads, including a close racing with a waiter.

use crate::loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::marker::PhantomData;
use std::ptr;

/// The read direction (`EPOLLIN`, `EPOLLRDHUP`, hang-ups and errors).
pub const READ: usize = 0;
/// The write direction (`EPOLLOUT`, hang-ups and errors).
pub const WRITE: usize = 1;

/// Whoever waits on a registration: a green thread in the runtime, a loom thread in
/// the models. Stored in a slot as one pointer.
pub trait IoWaker: Sized {
    /// Gives up the waker as a pointer (never null).
    fn into_raw(self) -> *mut ();
    /// Takes back a pointer made by [`into_raw`](IoWaker::into_raw).
    ///
    /// # Safety
    /// `p` came from `into_raw` and is taken back once.
    unsafe fn from_raw(p: *mut ()) -> Self;
    /// Wakes the waiter.
    fn wake(self);
}

/// A second thread tried to wait in a direction somebody already waits in.
#[derive(Debug)]
pub struct AlreadyWaiting;

/// One registration: see the module docs.
pub struct ScheduledIo<W: IoWaker> {
    events: [AtomicUsize; 2],
    waiter: [AtomicPtr<()>; 2],
    closed: AtomicBool,
    /// The peer hung up or the descriptor failed (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`):
    /// a final state, which later reads report at once.
    hung_up: AtomicBool,
    _waker: PhantomData<fn(W)>,
}

// SAFETY: the slots hold wakers handed between threads only through atomic swaps; a
// waker is sent to whichever thread takes it out, so it must be `Send`.
unsafe impl<W: IoWaker + Send> Send for ScheduledIo<W> {}
// SAFETY: as above; every field is an atomic.
unsafe impl<W: IoWaker + Send> Sync for ScheduledIo<W> {}

impl<W: IoWaker> Default for ScheduledIo<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: IoWaker> ScheduledIo<W> {
    /// A registration that has seen no events (every snapshot taken before its first
    /// event is 0).
    pub fn new() -> Self {
        ScheduledIo {
            events: [AtomicUsize::new(0), AtomicUsize::new(0)],
            waiter: [
                AtomicPtr::new(ptr::null_mut()),
                AtomicPtr::new(ptr::null_mut()),
            ],
            closed: AtomicBool::new(false),
            hung_up: AtomicBool::new(false),
            _waker: PhantomData,
        }
    }

    /// Step 1: the direction's event count, read before the I/O call.
    #[inline]
    pub fn snapshot(&self, dir: usize) -> usize {
        self.events[dir].load(Ordering::SeqCst)
    }

    /// Step 3: installs `w` as the direction's waiter.
    pub fn arm(&self, dir: usize, w: W) -> Result<(), AlreadyWaiting> {
        let p = w.into_raw();
        match self.waiter[dir].compare_exchange(
            ptr::null_mut(),
            p,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => Ok(()),
            Err(_) => {
                // SAFETY: `p` came from into_raw just above and was never published.
                drop(unsafe { W::from_raw(p) });
                Err(AlreadyWaiting)
            }
        }
    }

    /// Step 3's re-check: an event (or a close) came after `snapshot`.
    #[inline]
    pub fn ready_since(&self, dir: usize, snapshot: usize) -> bool {
        self.events[dir].load(Ordering::SeqCst) != snapshot || self.is_closed()
    }

    /// After waking: takes the caller's waker out of the slot if the softirq has not.
    /// Only the thread that armed the slot calls this.
    pub fn disarm(&self, dir: usize) {
        let p = self.waiter[dir].swap(ptr::null_mut(), Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: the slot held our waker (only we arm it while we wait).
            drop(unsafe { W::from_raw(p) });
        }
    }

    /// Step 4: an event in direction `dir`. Returns the waiter to wake, if one waits
    /// (the caller wakes it in the way its context allows).
    #[must_use = "the returned waiter must be woken"]
    pub fn set_ready(&self, dir: usize) -> Option<W> {
        self.events[dir].fetch_add(1, Ordering::SeqCst);
        let p = self.waiter[dir].swap(ptr::null_mut(), Ordering::SeqCst);
        // SAFETY: a non-null slot holds a waker made by into_raw; the swap gave it to us
        // alone.
        (!p.is_null()).then(|| unsafe { W::from_raw(p) })
    }

    /// Closes the registration: current waiters wake, and every later wait fails.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for dir in [READ, WRITE] {
            if let Some(w) = self.set_ready(dir) {
                w.wake();
            }
        }
    }

    /// Whether [`close`](Self::close) was called.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Records a hang-up or an error, before the event that reports it
    /// ([`set_ready`](Self::set_ready)): whoever reads the event count after it sees it.
    pub fn set_hung_up(&self) {
        self.hung_up.store(true, Ordering::SeqCst);
    }

    /// Whether [`set_hung_up`](Self::set_hung_up) was called.
    #[inline]
    pub fn is_hung_up(&self) -> bool {
        self.hung_up.load(Ordering::SeqCst)
    }
}

impl<W: IoWaker> Drop for ScheduledIo<W> {
    fn drop(&mut self) {
        self.disarm(READ);
        self.disarm(WRITE);
    }
}

impl<W: IoWaker> std::fmt::Debug for ScheduledIo<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledIo")
            .field("read_events", &self.snapshot(READ))
            .field("write_events", &self.snapshot(WRITE))
            .field("closed", &self.is_closed())
            .finish()
    }
}
