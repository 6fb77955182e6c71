//! The poison flag shared by `Mutex` and `RwLock`, with std's semantics: a guard
//! dropped while its thread panics — and was not already panicking when it took the
//! lock — poisons the lock; later acquisitions still succeed, wrapped in
//! `PoisonError`.

use crate::loom::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LockResult, PoisonError};

pub(crate) struct Flag(AtomicBool);

/// What a guard remembers from its acquisition.
pub(crate) struct Panicking(bool);

impl Flag {
    crate::loom::const_fn_unless_loom! {
        pub(crate) fn new() -> Flag {
            Flag(AtomicBool::new(false))
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn clear(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    /// `Ok(value)`, or `Err` wrapping it if poisoned.
    #[inline]
    pub(crate) fn result<T>(&self, value: T) -> LockResult<T> {
        if self.get() {
            Err(PoisonError::new(value))
        } else {
            Ok(value)
        }
    }

    /// Called when a guard is made.
    #[inline]
    pub(crate) fn guard(&self) -> Panicking {
        Panicking(std::thread::panicking())
    }

    /// Called when a guard is dropped, before the lock is released.
    #[inline]
    pub(crate) fn done(&self, at_lock: &Panicking) {
        if !at_lock.0 && std::thread::panicking() {
            self.set();
        }
    }
}
