//! `preempt_count`: the carrier's atomic-context word, laid out like the kernel's.
//!
//! Each carrier (an OS thread running green threads) has one `u32`, read and written
//! only by that carrier (and, later, by its own signal handler interrupting it):
//!
//! ```text
//!  31          24 23      20 19    16 15           8 7            0
//! +--+-----------+----------+--------+--------------+--------------+
//! |NR|  unused   |   NMI    | HARDIRQ|   SOFTIRQ    |   PREEMPT    |
//! +--+-----------+----------+--------+--------------+--------------+
//!  NR = NEED_RESCHED: the scheduler wants this carrier to switch at the next chance.
//! ```
//!
//! * `PREEMPT` — nesting depth of [`disable()`]; the scheduler itself runs at depth 1
//!   (`SCHED_OFFSET`), and a context switch happens only at exactly that depth (DESIGN.md
//!   invariant 1).
//! * `SOFTIRQ`, `HARDIRQ`, `NMI` — interrupt nesting, filled in by the timer interrupt.
//! * `NEED_RESCHED` — set when a switch was wanted but the count was not zero; the
//!   [`PreemptGuard`] drop that brings the count to zero performs it.
//!
//! The word is atomic context whenever anything but `NEED_RESCHED` is set: sleeping
//! there is a bug ([`might_sleep`]).
//!
//! Invariant 8: the word is a `const`-initialised, `Drop`-free thread-local, accessed
//! only through the non-inlined functions below, so that no TLS address is ever held in
//! a register across a context switch (a green thread may, with SMP, resume on another
//! carrier).

use crate::arch;
use std::cell::Cell;
use std::marker::PhantomData;

/// Bits of the preemption-disable depth.
pub const PREEMPT_MASK: u32 = 0x0000_00ff;
/// Bits of the softirq nesting depth.
pub const SOFTIRQ_MASK: u32 = 0x0000_ff00;
/// Bits of the hardirq nesting depth.
pub const HARDIRQ_MASK: u32 = 0x000f_0000;
/// Bits of the NMI-like nesting depth.
pub const NMI_MASK: u32 = 0x00f0_0000;
/// The need-resched flag.
pub const NEED_RESCHED: u32 = 0x8000_0000;

/// One level of preemption-disable.
pub const PREEMPT_OFFSET: u32 = 1 << PREEMPT_MASK.trailing_zeros();
/// One level of softirq.
pub const SOFTIRQ_OFFSET: u32 = 1 << SOFTIRQ_MASK.trailing_zeros();
/// One level of hardirq.
pub const HARDIRQ_OFFSET: u32 = 1 << HARDIRQ_MASK.trailing_zeros();
/// The count at which the scheduler switches: its own single disable.
pub(crate) const SCHED_OFFSET: u32 = PREEMPT_OFFSET;

const _: () = assert!(PREEMPT_MASK & SOFTIRQ_MASK == 0 && SOFTIRQ_MASK & HARDIRQ_MASK == 0);
const _: () = assert!(HARDIRQ_MASK & NMI_MASK == 0 && NMI_MASK & NEED_RESCHED == 0);

#[cfg(not(loom))]
thread_local! {
    static PREEMPT_COUNT: Cell<u32> = const { Cell::new(0) };
}
// Loom's threads stand for OS threads, each with its own count.
#[cfg(loom)]
loom::thread_local! {
    static PREEMPT_COUNT: Cell<u32> = Cell::new(0);
}

/// The raw word, `NEED_RESCHED` included.
#[inline(never)]
pub(crate) fn raw() -> u32 {
    PREEMPT_COUNT.with(Cell::get)
}

/// Overwrites the raw word (the timer interrupt's redirect, on the stub's behalf).
#[inline(never)]
pub(crate) fn set_raw(v: u32) {
    PREEMPT_COUNT.with(|c| c.set(v))
}

/// The address of the calling carrier's word, for the preemption stub, which lowers the
/// count itself on its way back (`arch::StubReturn`). Valid while the caller stays on
/// this carrier, i.e. until its next switch.
#[inline(never)]
pub(crate) fn word() -> *mut u32 {
    PREEMPT_COUNT.with(Cell::as_ptr)
}

/// Sets `NEED_RESCHED` on the calling carrier. A timer interrupt that splits this
/// read-modify-write is harmless: the handler only ever adds `NEED_RESCHED`.
#[inline(never)]
pub(crate) fn set_need_resched() {
    PREEMPT_COUNT.with(|c| c.set(c.get() | NEED_RESCHED))
}

/// Lowers the disable depth by one and, if that makes the carrier preemptible with a
/// switch pending, switches (invariant 2: the `enable` that reaches zero reschedules).
#[inline]
pub(crate) fn enable() {
    if enable_no_resched() == NEED_RESCHED {
        crate::sched::preempt_schedule();
    }
}

/// The preemption count of the calling carrier, without the `NEED_RESCHED` flag.
///
/// Zero means preemptible. Outside a runtime this is the calling OS thread's own count.
pub fn count() -> u32 {
    raw() & !NEED_RESCHED
}

/// Whether the caller is in atomic context: preemption disabled or inside an interrupt.
///
/// Blocking in atomic context is a bug the runtime reports (`might_sleep`).
pub fn in_atomic() -> bool {
    count() != 0
}

/// Whether the caller runs inside an interrupt (hardirq, softirq or NMI-like context).
pub fn in_interrupt() -> bool {
    count() & (SOFTIRQ_MASK | HARDIRQ_MASK | NMI_MASK) != 0
}

/// Whether the scheduler has asked this carrier to switch at the next chance.
pub fn need_resched() -> bool {
    raw() & NEED_RESCHED != 0
}

/// Raises the disable depth by one. Pair with [`enable_no_resched`] or a guard.
///
/// The thread's updates of the word are single instructions (`arch::count_*`): a
/// load-modify-store that the timer interrupt split would write back the word as it
/// was and lose the `NEED_RESCHED` the handler set in between. Non-inlined, so the TLS
/// address is looked up afresh (invariant 8).
#[inline(never)]
pub(crate) fn disable_raw() {
    PREEMPT_COUNT.with(|c| {
        debug_assert!(
            c.get() & PREEMPT_MASK != PREEMPT_MASK,
            "preempt_count overflow"
        );
        // SAFETY: the word is this thread's own count.
        unsafe { arch::count_add(c.as_ptr(), PREEMPT_OFFSET) };
    })
}

/// Lowers the disable depth by one without rescheduling; returns the new raw word.
///
/// # Panics
/// On an unbalanced enable (depth already zero): that is a bug in the caller.
#[inline(never)]
pub(crate) fn enable_no_resched() -> u32 {
    PREEMPT_COUNT.with(|c| {
        // The handler restores the depth it found, so this check cannot go stale.
        if c.get() & PREEMPT_MASK == 0 {
            unbalanced_enable();
        }
        // SAFETY: the word is this thread's own count.
        unsafe { arch::count_sub(c.as_ptr(), PREEMPT_OFFSET) }
    })
}

#[cold]
#[inline(never)]
fn unbalanced_enable() -> ! {
    panic!("preempt: unbalanced preempt_enable (preempt_count already 0)");
}

/// Clears `NEED_RESCHED` on the calling carrier (the scheduler does, as it switches).
#[inline(never)]
pub(crate) fn clear_need_resched() {
    PREEMPT_COUNT.with(|c| {
        // SAFETY: the word is this thread's own count.
        unsafe { arch::count_and(c.as_ptr(), !NEED_RESCHED) };
    })
}

/// Disables preemption on the calling carrier until the guard is dropped.
///
/// While any guard is alive the running green thread is not switched out by the timer
/// interrupt, so per-CPU data (including the carrier's `thread_local!`s) can be touched
/// safely. Guards nest. Blocking while one is alive is the `might_sleep` bug report.
///
/// ```
/// let _g = preempt::disable();
/// assert!(preempt::in_atomic());
/// ```
#[must_use = "preemption is enabled again as soon as the guard is dropped"]
pub fn disable() -> PreemptGuard {
    disable_raw();
    PreemptGuard {
        _not_send: PhantomData,
    }
}

/// Re-enables preemption when dropped; see [`disable()`].
///
/// Not `Send`: the count belongs to the carrier that raised it.
#[derive(Debug)]
pub struct PreemptGuard {
    _not_send: PhantomData<*const ()>,
}

impl Drop for PreemptGuard {
    fn drop(&mut self) {
        enable();
    }
}

/// The kernel's `might_sleep()`: every call that may block starts here.
///
/// Sleeping in atomic context (preemption disabled, or inside an interrupt) would
/// deadlock or corrupt per-CPU data; it is reported as
/// `BUG: sleeping function called from invalid context at FILE:LINE` and then panics
/// (or aborts inside an interrupt, where nothing may unwind).
///
/// It is also the kernel's `might_resched`: a switch that the timer interrupt asked for
/// (`NEED_RESCHED`, set under `Model::Voluntary`, or deferred under `Full`) happens here.
#[track_caller]
#[inline]
pub(crate) fn might_sleep() {
    let v = raw();
    if v & !NEED_RESCHED != 0 {
        crate::debug::sleeping_in_atomic(std::panic::Location::caller(), count());
    } else if v == NEED_RESCHED {
        crate::sched::preempt_schedule();
    }
}
