//! The one place atomics and cells come from, so lock-free protocols can be checked
//! with `loom` (`RUSTFLAGS="--cfg loom"`), tokio-style.
//!
//! Loom cannot model signals, stack switching or epoll: it models the *algorithms*
//! (the wake list and its doorbell, later lock words and wait queues) with loom threads
//! standing in for carriers and for foreign OS threads.

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{
            AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
}

/// One step of a spin-wait: crossbeam's `Backoff` normally; under loom a yield, which
/// lets the model's scheduler run the thread being waited for.
pub(crate) struct Backoff(#[cfg(not(loom))] crossbeam_utils::Backoff);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        #[cfg(not(loom))]
        return Backoff(crossbeam_utils::Backoff::new());
        #[cfg(loom)]
        return Backoff();
    }

    pub(crate) fn snooze(&self) {
        #[cfg(not(loom))]
        self.0.snooze();
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}

/// The model's yield, for the loops that poll under loom where the real code parks.
#[cfg(loom)]
pub(crate) fn yield_now() {
    loom::thread::yield_now();
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{
            AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
}

/// Declares a `const fn` that is an ordinary `fn` under loom, whose atomics cannot be
/// made in constant context (tokio's shim does the same).
macro_rules! const_fn_unless_loom {
    ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$m])* $vis fn $($rest)*
    };
}
pub(crate) use const_fn_unless_loom;
