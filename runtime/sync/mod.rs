//! Synchronization that the scheduler understands (DESIGN.md §1, §3 invariant 1).
//!
//! | kernel | here | sleeps? | preemption while held |
//! |---|---|---|---|
//! | `raw_spinlock_t` | [`RawSpinLock`] | never | off (invariant 1) |
//! | `spinlock_t` | [`SpinLock`] | never (it will sleep, with priority inheritance, under `Model::Rt`) | off |
//! | `rt_mutex` | [`Mutex`] | yes, with priority inheritance through owner chains | on |
//!
//! Names and signatures follow `std::sync`, so code ports by changing imports.
//!
//! **Lock order.** A spinlock may be taken inside a sleeping lock's critical section,
//! never the other way round: blocking while a spinlock is held is the `might_sleep`
//! bug report (the holder would sleep in atomic context).

mod mutex;
mod spinlock;

pub use mutex::{Deadlock, LockPiError, MAX_CHAIN, Mutex, MutexGuard};
pub(crate) use mutex::{MutexWaiter, RawMutexState};
pub use spinlock::{RawSpinLock, RawSpinLockGuard, SpinLock, SpinLockGuard, SpinLockIrqGuard};
