//! Non-sleeping spinlocks: `RawSpinLock<T>` and `SpinLock<T>`.
//!
//! Taking one disables preemption first (invariant 1), so a holder is never switched
//! out on its carrier and nobody spins behind a preempted holder (HAZARDS.md H14: the
//! hazard is impossible by construction). Waiters on *other* OS threads spin with
//! `crossbeam_utils::Backoff`; a waiter on the holder's own carrier could only be the
//! holder itself (nothing else runs there while it holds the lock), so that case is a
//! recursion and is reported instead of spinning forever.
//!
//! The lock word:
//!
//! ```text
//!   0            unlocked
//!   token != 0   locked by the OS thread whose token this is (the address of a
//!                thread-local, unique among live threads): the carrier, for a green
//!                thread, since every green thread of a carrier shares its preemption
//!                state and cannot be switched out while it holds the lock
//! ```
//!
//! Transitions: `0 → token` by the acquiring thread (CAS, Acquire), `token → 0` by the
//! same thread (store, Release). Nothing else writes the word.

use crate::irq::{self, IrqGuard};
use crate::loom::Backoff;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::preempt::{self, PreemptGuard};
use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

#[cfg(not(loom))]
thread_local! {
    static TOKEN: u8 = const { 0 };
}
#[cfg(loom)]
loom::thread_local! {
    static TOKEN: u8 = 0;
}

/// This OS thread's lock token: the address of a thread-local, never 0.
fn token() -> usize {
    TOKEN.with(|t| t as *const u8 as usize)
}

/// The lock word and its protocol, shared by both lock types.
struct Word(AtomicUsize);

impl Word {
    crate::loom::const_fn_unless_loom! {
        fn new() -> Word {
            Word(AtomicUsize::new(0))
        }
    }

    /// Acquires the word; the caller has disabled preemption.
    #[inline]
    #[track_caller]
    fn lock(&self, what: &str) {
        let me = token();
        if self
            .0
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended(me, what);
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn lock_contended(&self, me: usize, what: &str) {
        let backoff = Backoff::new();
        loop {
            let cur = self.0.load(Ordering::Relaxed);
            if cur == me {
                recursion(what);
            }
            if cur == 0
                && self
                    .0
                    .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            backoff.snooze();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(0, token(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    fn unlock(&self) {
        self.0.store(0, Ordering::Release);
    }

    fn is_locked(&self) -> bool {
        self.0.load(Ordering::Relaxed) != 0
    }
}

/// A lock taken again by the thread (or carrier) that holds it: spinning would never
/// end, since the holder cannot run until the spinner stops.
#[cold]
#[inline(never)]
#[track_caller]
fn recursion(what: &str) -> ! {
    panic!(
        "{what} recursion: this thread (or another green thread of its carrier, which \
         cannot have been switched in while the lock is held) already holds it; \
         spinning would deadlock"
    );
}

/// A spinlock that never sleeps, in every model: the kernel's `raw_spinlock_t`.
///
/// [`lock`](RawSpinLock::lock) disables preemption, then spins until the lock is free;
/// the guard releases the lock, then enables preemption (where a switch requested
/// meanwhile happens). Keep critical sections short and never block inside one:
/// `sleep`, a sleeping mutex, a channel receive… are reported as
/// `BUG: sleeping function called from invalid context`. Taking the lock again on the
/// same carrier panics with a recursion report instead of spinning forever.
///
/// Usable from any OS thread, inside or outside a runtime.
pub struct RawSpinLock<T: ?Sized> {
    word: Word,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `data`, and a `T: Send` may be handed
// between threads that take turns.
unsafe impl<T: ?Sized + Send> Send for RawSpinLock<T> {}
// SAFETY: as above: `&RawSpinLock` gives `&mut T` only to the holder.
unsafe impl<T: ?Sized + Send> Sync for RawSpinLock<T> {}

impl<T> RawSpinLock<T> {
    crate::loom::const_fn_unless_loom! {
        /// Creates an unlocked lock holding `value`.
        pub fn new(value: T) -> RawSpinLock<T> {
            RawSpinLock {
                word: Word::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock, returning the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RawSpinLock<T> {
    /// Disables preemption and acquires the lock, spinning while another OS thread
    /// holds it.
    ///
    /// # Panics
    /// If this carrier (or OS thread) already holds it.
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> RawSpinLockGuard<'_, T> {
        let preempt = preempt::disable();
        self.word.lock("RawSpinLock");
        RawSpinLockGuard {
            lock: self,
            _preempt: preempt,
        }
    }

    /// Acquires the lock if it is free, without spinning.
    #[inline]
    pub fn try_lock(&self) -> Option<RawSpinLockGuard<'_, T>> {
        let preempt = preempt::disable();
        self.word.try_lock().then_some(RawSpinLockGuard {
            lock: self,
            _preempt: preempt,
        })
    }

    /// Like [`lock`](RawSpinLock::lock), also holding the soft irq mask
    /// ([`irq::save`](crate::irq::save)): the kernel's `spin_lock_irqsave`, for data
    /// that interrupt-context work touches too.
    #[inline]
    #[track_caller]
    pub fn lock_irqsave(&self) -> SpinLockIrqGuard<'_, T> {
        let irq = irq::save();
        self.word.lock("RawSpinLock");
        SpinLockIrqGuard {
            lock: self,
            _irq: irq,
        }
    }

    /// Whether the lock is held by anyone (a snapshot, for diagnostics).
    pub fn is_locked(&self) -> bool {
        self.word.is_locked()
    }

    /// The value, through a unique reference: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RawSpinLock<T> {
    fn default() -> RawSpinLock<T> {
        RawSpinLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RawSpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RawSpinLock");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Holds a [`RawSpinLock`] (and preemption off) until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RawSpinLockGuard<'a, T: ?Sized> {
    lock: &'a RawSpinLock<T>,
    // Dropped after `Drop::drop` released the word: the lock is free before a switch.
    _preempt: PreemptGuard,
}

impl<T: ?Sized> Deref for RawSpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held by us.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RawSpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and the guard is borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RawSpinLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.word.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RawSpinLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Holds a spinlock, the soft irq mask and preemption off until dropped; see
/// [`RawSpinLock::lock_irqsave`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SpinLockIrqGuard<'a, T: ?Sized> {
    lock: &'a RawSpinLock<T>,
    // Dropped after the word is released: the mask's replay may switch.
    _irq: IrqGuard,
}

impl<T: ?Sized> Deref for SpinLockIrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held by us.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SpinLockIrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and the guard is borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for SpinLockIrqGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.word.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLockIrqGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A spinlock: the kernel's `spinlock_t`.
///
/// Today it behaves exactly as [`RawSpinLock`] in every model. Under `Model::Rt` it is
/// meant to become a sleeping, priority-inheriting lock (as `spinlock_t` does under
/// `PREEMPT_RT`), so use it for ordinary short critical sections, and `RawSpinLock`
/// only where sleeping must be impossible.
pub struct SpinLock<T: ?Sized> {
    inner: RawSpinLock<T>,
}

impl<T> SpinLock<T> {
    crate::loom::const_fn_unless_loom! {
        /// Creates an unlocked lock holding `value`.
        pub fn new(value: T) -> SpinLock<T> {
            SpinLock {
                inner: RawSpinLock::new(value),
            }
        }
    }

    /// Consumes the lock, returning the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Disables preemption and acquires the lock; see [`RawSpinLock::lock`].
    ///
    /// # Panics
    /// If this carrier (or OS thread) already holds it.
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        let preempt = preempt::disable();
        self.inner.word.lock("SpinLock");
        SpinLockGuard {
            guard: RawSpinLockGuard {
                lock: &self.inner,
                _preempt: preempt,
            },
        }
    }

    /// Acquires the lock if it is free, without spinning.
    #[inline]
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        self.inner.try_lock().map(|guard| SpinLockGuard { guard })
    }

    /// Like [`lock`](SpinLock::lock), also holding the soft irq mask; see
    /// [`RawSpinLock::lock_irqsave`].
    #[inline]
    #[track_caller]
    pub fn lock_irqsave(&self) -> SpinLockIrqGuard<'_, T> {
        let irq = irq::save();
        self.inner.word.lock("SpinLock");
        SpinLockIrqGuard {
            lock: &self.inner,
            _irq: irq,
        }
    }

    /// Whether the lock is held by anyone (a snapshot, for diagnostics).
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// The value, through a unique reference: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T: Default> Default for SpinLock<T> {
    fn default() -> SpinLock<T> {
        SpinLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SpinLock");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Holds a [`SpinLock`] (and preemption off) until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SpinLockGuard<'a, T: ?Sized> {
    guard: RawSpinLockGuard<'a, T>,
}

impl<T: ?Sized> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
