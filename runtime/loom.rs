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

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{
            AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
}
