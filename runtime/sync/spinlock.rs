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
//!
//! ## `SpinLock` under `Model::Rt`
//!
//! As `spinlock_t` under `PREEMPT_RT`, a [`SpinLock`] then sleeps: while a runtime with
//! `Model::Rt` is live ([`SLEEPING`]), every taker first takes the lock's
//! priority-inheriting mutex (`sync::mutex`: a waiter sleeps and boosts the holder), and
//! only then the word, *without* disabling preemption. The holder can be preempted;
//! nobody spins behind it, since everybody else who wants the word waits for the mutex
//! first. The word still excludes everybody in every mode, so a lock taken before the
//! mode changed (by a plain OS thread across a runtime's start) stays exclusive: such a
//! taker is spun on, as before. [`RawSpinLock`] never sleeps.

use crate::irq::{self, IrqGuard};
use crate::loom::Backoff;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::preempt::{self, PreemptGuard};
use crate::sync::RawMutexState;
use crate::task::Task;
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

/// Set while a runtime with `Model::Rt` is live: [`SpinLock`]s sleep (module docs).
pub(crate) static SLEEPING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn sleeping() -> bool {
    SLEEPING.load(std::sync::atomic::Ordering::Relaxed)
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
    /// ([`irq::save`]): the kernel's `spin_lock_irqsave`, for data
    /// that interrupt-context work touches too.
    #[inline]
    #[track_caller]
    pub fn lock_irqsave(&self) -> SpinLockIrqGuard<'_, T> {
        let irq = irq::save();
        self.word.lock("RawSpinLock");
        SpinLockIrqGuard {
            lock: self,
            rt: None,
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
    /// A `SpinLock` under `Model::Rt`: its sleeping lock, released after the word.
    rt: Option<RtHold<'a>>,
    // Dropped after the word is released: the mask's replay may switch.
    _irq: IrqGuard,
}

/// A held sleeping lock of a [`SpinLock`] under `Model::Rt`.
struct RtHold<'a> {
    mutex: &'a RawMutexState,
    /// The owner record `lock` returned, for `unlock` (null: an OS thread).
    owner: *const Task,
}

impl<'a> RtHold<'a> {
    /// Takes `mutex`: may sleep, boosting its holder.
    #[track_caller]
    fn lock(mutex: &'a RawMutexState) -> RtHold<'a> {
        match mutex.lock() {
            // (A holder that exited without unlocking leaves no data half-written
            // behind the word, which it still holds: the word's spin reports it.)
            Ok((owner, _died)) => RtHold { mutex, owner },
            Err(deadlock) => panic!("SpinLock under Model::Rt: {deadlock}"),
        }
    }

    fn try_lock(mutex: &'a RawMutexState) -> Option<RtHold<'a>> {
        mutex.try_lock().map(|owner| RtHold { mutex, owner })
    }

    fn unlock(self) {
        self.mutex.unlock(self.owner);
    }
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
        if let Some(rt) = self.rt.take() {
            rt.unlock();
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLockIrqGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A spinlock: the kernel's `spinlock_t`.
///
/// Under `Model::None`, `Voluntary` and `Full` it is a [`RawSpinLock`]: preemption is off
/// while it is held. Under `Model::Rt` it sleeps, as `spinlock_t` does under
/// `PREEMPT_RT`: a contender blocks on a priority-inheriting lock (boosting the holder)
/// and the holder stays preemptible, so a higher-priority thread runs at once even while
/// a low-priority one holds the lock (module docs). Use it for ordinary short critical
/// sections, and `RawSpinLock` only where sleeping must be impossible (inside another
/// raw lock, in interrupt context). Under `Model::Rt`, `lock` may block, so it is a
/// `BUG` report to call it with preemption disabled, as in the kernel.
pub struct SpinLock<T: ?Sized> {
    rt: RawMutexState,
    inner: RawSpinLock<T>,
}

// SAFETY: `inner` is a RawSpinLock (Send and Sync for `T: Send`); the mutex state is
// shared exactly as `Mutex` shares it — its word is atomic and its slow-path state is
// touched only by the owning carrier with preemption disabled (`sync::mutex`).
unsafe impl<T: ?Sized + Send> Send for SpinLock<T> {}
// SAFETY: as above: `&SpinLock` gives `&mut T` only to the holder of the word.
unsafe impl<T: ?Sized + Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    crate::loom::const_fn_unless_loom! {
        /// Creates an unlocked lock holding `value`.
        pub fn new(value: T) -> SpinLock<T> {
            SpinLock {
                rt: RawMutexState::new(true),
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
    /// Acquires the lock: outside `Model::Rt`, disables preemption and spins as
    /// [`RawSpinLock::lock`]; under it, sleeps while another thread holds it (module
    /// docs).
    ///
    /// # Panics
    /// If this carrier (or OS thread) already holds it (outside `Rt`), or if it is held
    /// by the caller or blocking would close a cycle of waiting threads (under `Rt`).
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        if sleeping() {
            let rt = RtHold::lock(&self.rt);
            self.inner.word.lock("SpinLock");
            return SpinLockGuard {
                lock: &self.inner,
                rt: Some(rt),
                _preempt: None,
            };
        }
        let preempt = preempt::disable();
        self.inner.word.lock("SpinLock");
        SpinLockGuard {
            lock: &self.inner,
            rt: None,
            _preempt: Some(preempt),
        }
    }

    /// Acquires the lock if it is free, without spinning or sleeping.
    #[inline]
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        if sleeping() {
            let rt = RtHold::try_lock(&self.rt)?;
            if !self.inner.word.try_lock() {
                rt.unlock();
                return None;
            }
            return Some(SpinLockGuard {
                lock: &self.inner,
                rt: Some(rt),
                _preempt: None,
            });
        }
        let preempt = preempt::disable();
        self.inner.word.try_lock().then_some(SpinLockGuard {
            lock: &self.inner,
            rt: None,
            _preempt: Some(preempt),
        })
    }

    /// Like [`lock`](SpinLock::lock), also holding the soft irq mask; see
    /// [`RawSpinLock::lock_irqsave`]. (Under `Rt` the sleeping lock is taken first,
    /// then the mask and the word.)
    #[inline]
    #[track_caller]
    pub fn lock_irqsave(&self) -> SpinLockIrqGuard<'_, T> {
        let rt = sleeping().then(|| RtHold::lock(&self.rt));
        let irq = irq::save();
        self.inner.word.lock("SpinLock");
        SpinLockIrqGuard {
            lock: &self.inner,
            rt,
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

/// Holds a [`SpinLock`] until dropped (and, outside `Model::Rt`, preemption off).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SpinLockGuard<'a, T: ?Sized> {
    lock: &'a RawSpinLock<T>,
    /// Under `Model::Rt`: the sleeping lock, released after the word.
    rt: Option<RtHold<'a>>,
    // Outside `Rt`; dropped after `Drop::drop` released the word.
    _preempt: Option<PreemptGuard>,
}

impl<T: ?Sized> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the word is held by us.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and the guard is borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.word.unlock();
        if let Some(rt) = self.rt.take() {
            rt.unlock();
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
