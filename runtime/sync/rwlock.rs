//! `RwLock`: std's reader-writer lock, writer-preferring.
//!
//! State under one `RawSpinLock`: the number of readers inside, whether a writer is
//! inside, and how many writers wait. A reader enters only while no writer is inside
//! *or waiting*, so a stream of readers cannot starve a writer; an unlocking writer
//! hands over to the next writer if one waits, else wakes every waiting reader. Each
//! wait queue is ordered by priority. Poisoning follows std: a writer that panics
//! poisons the lock.

use super::RawSpinLock;
use super::poison;
use super::waitqueue::WaitQueue;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, TryLockError, TryLockResult};

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    writers_waiting: usize,
}

/// A reader-writer lock like [`std::sync::RwLock`], for green threads and OS threads;
/// writer-preferring (no writer starvation).
pub struct RwLock<T: ?Sized> {
    state: RawSpinLock<State>,
    readers: WaitQueue,
    writers: WaitQueue,
    poison: poison::Flag,
    data: UnsafeCell<T>,
}

// SAFETY: as for std's RwLock: readers share `&T` (T: Sync), the writer gets `&mut T`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    crate::loom::const_fn_unless_loom! {
        /// Creates an unlocked lock.
        pub fn new(value: T) -> RwLock<T> {
            RwLock {
                state: RawSpinLock::new(State {
                    readers: 0,
                    writer: false,
                    writers_waiting: 0,
                }),
                readers: WaitQueue::new(),
                writers: WaitQueue::new(),
                poison: poison::Flag::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock, returning the value (poisoned like std).
    pub fn into_inner(self) -> LockResult<T> {
        let poison = self.poison;
        poison.result(self.data.into_inner())
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, blocking while a writer is inside or waiting.
    ///
    /// # Errors
    /// If poisoned, like std (the guard is inside).
    #[track_caller]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        crate::preempt::might_sleep();
        loop {
            let mut s = self.state.lock();
            if !s.writer && s.writers_waiting == 0 {
                s.readers += 1;
                drop(s);
                return self.poison.result(RwLockReadGuard {
                    lock: self,
                    _not_send: PhantomData,
                });
            }
            self.readers.sleep(s, None);
        }
    }

    /// Exclusive access, blocking until no reader or writer is inside.
    ///
    /// # Errors
    /// If poisoned, like std (the guard is inside).
    #[track_caller]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        crate::preempt::might_sleep();
        let mut waiting = false;
        loop {
            let mut s = self.state.lock();
            if !s.writer && s.readers == 0 {
                s.writer = true;
                if waiting {
                    s.writers_waiting -= 1;
                }
                drop(s);
                return self.poison.result(RwLockWriteGuard {
                    lock: self,
                    panicking: self.poison.guard(),
                    _not_send: PhantomData,
                });
            }
            if !waiting {
                s.writers_waiting += 1;
                waiting = true;
            }
            self.writers.sleep(s, None);
        }
    }

    /// Shared access if available now.
    ///
    /// # Errors
    /// `WouldBlock`, or `Poisoned` like std.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        let mut s = self.state.lock();
        if s.writer || s.writers_waiting > 0 {
            return Err(TryLockError::WouldBlock);
        }
        s.readers += 1;
        drop(s);
        Ok(self.poison.result(RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        })?)
    }

    /// Exclusive access if available now.
    ///
    /// # Errors
    /// `WouldBlock`, or `Poisoned` like std.
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        let mut s = self.state.lock();
        if s.writer || s.readers > 0 {
            return Err(TryLockError::WouldBlock);
        }
        s.writer = true;
        drop(s);
        Ok(self.poison.result(RwLockWriteGuard {
            lock: self,
            panicking: self.poison.guard(),
            _not_send: PhantomData,
        })?)
    }

    /// Whether a writer panicked while holding the lock.
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// The value, through a unique reference (poisoned like std).
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.poison.result(self.data.get_mut())
    }

    fn read_unlock(&self) {
        let mut s = self.state.lock();
        s.readers -= 1;
        if s.readers == 0 && s.writers_waiting > 0 {
            let w = self.writers.notify_one(0);
            drop(s);
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    fn write_unlock(&self) {
        let mut s = self.state.lock();
        s.writer = false;
        let woken = if s.writers_waiting > 0 {
            self.writers.notify_one(0).into_iter().collect()
        } else {
            self.readers.notify_all(0)
        };
        drop(s);
        for w in woken {
            w.wake();
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(p)) => d.field("data", &&*p.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

/// Shared access to an [`RwLock`] until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: readers exclude the writer.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to an [`RwLock`] until dropped; dropping it while panicking
/// poisons the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    panicking: poison::Panicking,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the writer is alone inside.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and the guard is borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.done(&self.panicking);
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
