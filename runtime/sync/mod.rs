//! Synchronization that the scheduler understands (DESIGN.md §1, §3 invariant 1).
//!
//! | kernel | here | sleeps? | preemption while held |
//! |---|---|---|---|
//! | `raw_spinlock_t` | [`RawSpinLock`] | never | off (invariant 1) |
//! | `spinlock_t` | [`SpinLock`] | under `Model::Rt` only, with priority inheritance | off (on under `Rt`) |
//! | `rt_mutex` | [`Mutex`] | yes, with priority inheritance through owner chains | on |
//! | wait queues | [`Condvar`], [`Semaphore`], [`RwLock`], [`Barrier`], [`mpsc`] | yes, served by priority | on |
//!
//! Every blocking call may come from a green thread (which sleeps through the
//! scheduler) or from a plain OS thread (which parks with `parking_lot_core`), so a std
//! thread can feed a green thread through a channel. The wait queues (`waitqueue`) are
//! priority-ordered lists of nodes on the waiters' stacks under a `RawSpinLock`.
//!
//! Names and signatures follow `std::sync`, so code ports by changing imports; the
//! constructors are `const`, so a lock can be a `static`:
//!
//! ```
//! use preempt::sync::Mutex;
//!
//! static HITS: Mutex<u32> = Mutex::new(0);
//!
//! let rt = preempt::Runtime::builder().build()?;
//! rt.block_on(|| {
//!     let hs: Vec<_> = (0..4)
//!         .map(|_| preempt::spawn(|| *HITS.lock().unwrap() += 1))
//!         .collect();
//!     for h in hs {
//!         h.join().unwrap();
//!     }
//! });
//! assert_eq!(*HITS.lock().unwrap(), 4);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **Lock order.** A spinlock may be taken inside a sleeping lock's critical section,
//! never the other way round: blocking while a spinlock is held is the `might_sleep`
//! bug report (the holder would sleep in atomic context).

mod barrier;
mod condvar;
pub mod mpsc;
mod mutex;
mod poison;
mod rwlock;
mod semaphore;
pub(crate) mod spinlock;
pub(crate) mod waitqueue;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Deadlock, LockPiError, MAX_CHAIN, Mutex, MutexGuard};
pub(crate) use mutex::{MutexWaiter, RawMutexState, owner_exiting};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use spinlock::{RawSpinLock, RawSpinLockGuard, SpinLock, SpinLockGuard, SpinLockIrqGuard};
