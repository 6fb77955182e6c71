//! Whoever waits for something: a green thread, or a plain OS thread.
//!
//! `join`, `block_on` and (later) every synchronisation primitive must work from both.
//! A green thread parks through the scheduler; an OS thread — a std thread, the thread
//! calling `Runtime::block_on` — parks in the kernel. Waking goes through the same two
//! steps either way: make the condition true, then [`Waiter::wake`].

use crate::task::Task;
use std::sync::Arc;

pub(crate) enum Waiter {
    Green(Arc<Task>),
    Os(std::thread::Thread),
}

impl Waiter {
    /// The calling thread, green or not.
    pub(crate) fn current() -> Waiter {
        match super::current_arc() {
            Some(t) => Waiter::Green(t),
            None => Waiter::Os(std::thread::current()),
        }
    }

    /// Unparks the waiter (its token absorbs a wake that arrives before it parks).
    pub(crate) fn wake(&self) {
        match self {
            Waiter::Green(t) => super::unpark(t),
            Waiter::Os(t) => t.unpark(),
        }
    }

    /// Parks the calling thread until `done()` holds. A green caller must be the one
    /// [`Waiter::current`] named; wakes with `done()` still false are absorbed.
    #[track_caller]
    pub(crate) fn wait_until(done: impl Fn() -> bool) {
        match super::this_cpu().zip(super::current_task()) {
            Some((cpu, t)) => {
                crate::preempt::might_sleep();
                while !done() {
                    super::park_current(cpu, t, None);
                }
            }
            None => {
                // A parked OS thread would still take the process-directed tick and
                // have to forward it (a second signal per tick): keep it masked while
                // parked. Restored afterwards, whatever it was.
                let _mask = crate::irq::MaskSigalrm::new();
                while !done() {
                    std::thread::park();
                }
            }
        }
    }
}
