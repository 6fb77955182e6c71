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
///
/// The report is written with `write(2)` from stack buffers, so it is ASYNC-SIGNAL-SAFE
/// up to the final decision: in an interrupt nothing may unwind, so it aborts; anywhere
/// else the caller broke a rule it can recover from, so it panics.
#[cold]
#[inline(never)]
pub(crate) fn sleeping_in_atomic(at: &'static Location<'static>, count: u32) {
    let (name, prio) = match sched::current_task() {
        // SAFETY: the current task is alive while it runs; the name lives as long as it.
        Some(t) => unsafe { ((*t).display_name(), (*t).se().prio.get()) },
        None => ("<not a green thread>", 0),
    };
    let irq = preempt::in_interrupt();
    let (mut line, mut hex, mut pr) = ([0u8; 20], [0u8; 16], [0u8; 20]);
    for piece in [
        &b"BUG: sleeping function called from invalid context at "[..],
        at.file().as_bytes(),
        b":",
        fmt_u64(&mut line, at.line().into(), 10),
        b"\nin_atomic(): 1, preempt_count: 0x",
        fmt_u64(&mut hex, count.into(), 16),
        if irq {
            b", in_interrupt(): 1"
        } else {
            b", in_interrupt(): 0"
        },
        b", thread: '",
        name.as_bytes(),
        b"', priority: ",
        fmt_u64(&mut pr, prio.into(), 10),
        b"\n",
    ] {
        sys::write_stderr(piece);
    }
    if irq {
        fatal("preempt: cannot unwind out of interrupt context; aborting");
    }
    panic!("sleeping function called from invalid context (preempt_count {count:#x})");
}

/// Formats `v` in `radix` into the end of `buf`. ASYNC-SIGNAL-SAFE.
pub(crate) fn fmt_u64(buf: &mut [u8], mut v: u64, radix: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v % radix) as usize];
        v /= radix;
        if v == 0 || i == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_numbers_without_allocating() {
        let mut b = [0u8; 20];
        assert_eq!(super::fmt_u64(&mut b, 0, 10), b"0");
        assert_eq!(super::fmt_u64(&mut b, 65536 >> 10, 10), b"64");
        let mut h = [0u8; 16];
        assert_eq!(
            super::fmt_u64(&mut h, 0x7fff_dead_beef, 16),
            b"7fffdeadbeef"
        );
        assert_eq!(super::fmt_u64(&mut h, u64::MAX, 16), b"ffffffffffffffff");
    }
}
