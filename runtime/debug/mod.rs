//! Bug reports: what the runtime prints when a rule is broken.
//!
//! Two kinds (HOUSE.md rule 10): a misuse the caller can recover from panics with a
//! message that names the rule; a broken runtime invariant, or anything found where
//! nothing may unwind (a signal handler, the scheduler between two switches), writes a
//! constant message with `write(2)` and aborts.

pub(crate) mod overflow;
pub(crate) mod panic;
pub(crate) mod watchdog;

use crate::{preempt, sched, sys};
use std::panic::Location;

/// Writes `msg` and aborts. For broken invariants; ASYNC-SIGNAL-SAFE.
#[cold]
pub(crate) fn fatal(msg: &str) -> ! {
    sys::write_stderr(msg.as_bytes());
    sys::write_stderr(b"\n");
    sys::abort()
}

/// The `might_sleep` report: a blocking call in atomic context.
#[cold]
#[inline(never)]
pub(crate) fn sleeping_in_atomic(at: &'static Location<'static>, count: u32) {
    let (name, prio) = match sched::current_task() {
        // SAFETY: the current task is alive while it runs.
        Some(t) => unsafe { ((*t).display_name().to_owned(), (*t).prio.get()) },
        None => ("<not a green thread>".to_owned(), 0),
    };
    let msg = format!(
        "BUG: sleeping function called from invalid context at {}:{}\n\
         in_atomic(): 1, preempt_count: {count:#x}, in_interrupt(): {}, thread: '{name}', priority: {prio}\n",
        at.file(),
        at.line(),
        preempt::in_interrupt() as u8,
    );
    sys::write_stderr(msg.as_bytes());
    if preempt::in_interrupt() {
        fatal("preempt: cannot unwind out of interrupt context; aborting");
    }
    panic!("sleeping function called from invalid context (preempt_count {count:#x})");
}
