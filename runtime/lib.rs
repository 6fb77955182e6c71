//! Preemptive stackful green threads for Linux.
//!
//! `preempt` runs many green threads — each with its own guarded stack, switched by
//! hand-written assembly — on a carrier OS thread, scheduled by priority the way the
//! Linux kernel schedules tasks, with the kernel's vocabulary: a per-CPU run queue,
//! `preempt_count`, `might_sleep`, wake lists. The API mirrors `std::thread`, so code
//! ports by changing imports:
//!
//! ```
//! let rt = preempt::Runtime::builder().build()?;
//! let answer: u32 = rt.block_on(|| {
//!     let h = preempt::thread::Builder::new()
//!         .name("worker".into())
//!         .priority(preempt::Priority::new(50))
//!         .spawn(|| 6 * 7)
//!         .expect("spawn");
//!     h.join().unwrap()
//! });
//! assert_eq!(answer, 42);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Preemption models (see [`Model`]): `None` (threads switch only when they block,
//! sleep, yield or exit), `Voluntary` (also at `cond_resched()` when the timer interrupt
//! asks), `Full` (the timer interrupt preempts any thread outside atomic context) and
//! `Rt` (`Full` with sleeping spinlocks and a threaded device); the last two are chosen
//! with the `unsafe` [`Builder::preemptive`] — read [`safety`] first.
//!
//! Scheduling classes (see [`Policy`]): deadline threads (earliest deadline first, with
//! admission control and throttling) before real-time priorities `1..=99`, before the
//! normal class at [`Priority::DEFAULT`].
//!
//! [`sync`] holds the locks the scheduler understands: spinlocks that hold preemption
//! off, a priority-inheriting `Mutex`, and std's `Condvar`, `RwLock`, `Barrier` and
//! channels, usable from green threads and plain OS threads alike.
//!
//! Each module's documentation says what it owns and which invariants it keeps; the
//! invariants are numbered as in the project's design notes.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod alloc;
mod arch;
mod debug;
pub mod fs;
pub mod io;
pub mod irq;
mod loom;
pub mod net;
pub mod os;
mod preempt;
#[doc(hidden)]
pub mod print;
mod rt;
pub mod safety;
mod sched;
pub mod spans;
mod stack;
pub mod sync;
mod sys;
pub mod task;
pub mod thread;
mod time;
mod trace;

pub use preempt::{
    HARDIRQ_MASK, HARDIRQ_OFFSET, NEED_RESCHED, NMI_MASK, PREEMPT_MASK, PREEMPT_OFFSET,
    PreemptGuard, SOFTIRQ_MASK, SOFTIRQ_OFFSET, count, disable, in_atomic, in_interrupt,
    need_resched,
};
pub use rt::{Builder, MAX_TICK, MIN_TICK, MODEL_ENV, Model, Runtime, Stats};
pub use sched::Priority;
pub use stack::{DEFAULT_STACK_SIZE, min_stack_size};
pub use thread::{Policy, spawn};

/// Internals exposed to the loom models in `tests/loom_*.rs` (built with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::io::reactor::{AlreadyWaiting, IoWaker, READ, ScheduledIo, WRITE};
    pub use crate::sched::wake_list::{WakeList, WakeNode};
    pub use crate::sync::waitqueue::{Node, WaitQueue, Wake, Waking};
}
