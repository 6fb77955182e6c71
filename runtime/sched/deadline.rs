//! The deadline class: earliest-deadline-first among threads with
//! [`Policy::Deadline`](crate::thread::Policy::Deadline), above every fixed priority
//! (the kernel's `SCHED_DEADLINE`).
//!
//! A deadline thread declares a *runtime* `Q`, a relative *deadline* `D` and a *period*
//! `P` (`Q ≤ D ≤ P`): every period it may run `Q` of CPU, finishing within `D` of the
//! period's start. The class keeps, per thread (`DlEntity`), an absolute deadline `d`
//! and the runtime `q` left before it, and three rules — the constant bandwidth
//! server the kernel's class is built on:
//!
//! * **Order.** The queued thread with the earliest `d` runs; a woken thread with an
//!   earlier `d` than the running one preempts it (under the preemptive models).
//! * **Wakeup.** A thread that blocked keeps its `(d, q)` if running `q` before `d`
//!   stays within its bandwidth (`q / (d − now) ≤ Q / P`); otherwise it gets a fresh
//!   `d = now + D`, `q = Q`. So a thread that slept cannot come back with a budget
//!   crammed before an old deadline.
//! * **Throttling.** Each run is charged to `q`. When `q` runs out — the end of the
//!   budget is a preemption point published like a slice end — or the thread yields
//!   (`yield_now` ends the current job, as `sched_yield` does), it is replenished
//!   (`d += P`, `q += Q`, until `q > 0`) and, if the new period has not started
//!   (`d − D > now`), *throttled*: kept off the run queue until then. An overrunning
//!   thread therefore takes at most `Q` per `P`, whatever it does.
//!
//! **Admission.** Spawning a deadline thread reserves `Q/P` of its CPU; the sum over a
//! CPU's live deadline threads may not exceed 1 (the spawn fails with `ResourceBusy`,
//! as `sched_setattr` fails with `EBUSY`). With that, EDF meets every deadline as long
//! as nothing holds the CPU non-preemptibly — which is what
//! `examples/compare_models.rs`' real-time workload shows going wrong.
//!
//! The queue is a vector sorted by deadline, latest first (the next to run is popped
//! from the end); its room is reserved at admission, so queueing never allocates.
//! Deadline threads are few (admission bounds their total, not their number, but each
//! needs a period's worth of bandwidth), so linear insertion is cheaper here than a
//! tree. Only the owning CPU touches any of this, with preemption disabled.

use crate::task::Task;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Runtime left below which a budget counts as spent: the accounting clock and the CPU
/// clock the budget's end is published on differ by nanoseconds, and a budget of a
/// few µs would only buy a switch and an interrupt.
pub(crate) const SPENT_NS: i64 = 2_000;

/// Fixed-point unit of bandwidth: 1.0.
const BW_ONE: u64 = 1 << 32;

/// A deadline thread's reservation, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DlParams {
    pub(crate) runtime: u64,
    pub(crate) deadline: u64,
    pub(crate) period: u64,
}

impl DlParams {
    /// Checks `0 < runtime ≤ deadline ≤ period` (all of at least 1 µs, the period at
    /// most 10 s).
    pub(crate) fn new(runtime: Duration, deadline: Duration, period: Duration) -> io::Result<Self> {
        let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        let p = DlParams {
            runtime: ns(runtime),
            deadline: ns(deadline),
            period: ns(period),
        };
        let micro = 1_000;
        if p.runtime < micro || p.runtime > p.deadline || p.deadline > p.period {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "deadline policy needs 1 µs <= runtime <= deadline <= period \
                     (runtime {runtime:?}, deadline {deadline:?}, period {period:?})"
                ),
            ));
        }
        if p.period > 10_000_000_000 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("deadline policy: period {period:?} is longer than 10 s"),
            ));
        }
        Ok(p)
    }

    /// The bandwidth `runtime / period`, in units of 2⁻³².
    fn bandwidth(&self) -> u64 {
        (self.runtime as u128 * BW_ONE as u128 / self.period as u128) as u64
    }
}

/// A deadline thread's state in the class. Owned by its CPU (task's `se`).
#[derive(Debug)]
pub(crate) struct DlEntity {
    pub(crate) params: DlParams,
    /// The absolute deadline, on the CPU clock.
    pub(crate) deadline: u64,
    /// Runtime left before `deadline`, in ns (negative: overran).
    pub(crate) runtime_left: i64,
    /// New, or blocked since it last ran: its next queueing applies the wakeup rule.
    pub(crate) blocked: bool,
    /// Throttled until `release` (CPU clock).
    pub(crate) throttled: bool,
    pub(crate) release: u64,
}

impl DlEntity {
    pub(crate) fn new(params: DlParams) -> DlEntity {
        DlEntity {
            params,
            deadline: 0,
            runtime_left: 0,
            blocked: true,
            throttled: false,
            release: 0,
        }
    }

    /// The wakeup rule (module docs), at `now` (CPU clock).
    pub(crate) fn wake(&mut self, now: u64) {
        self.blocked = false;
        let p = &self.params;
        let left = self.runtime_left.max(0) as u128;
        let overflow = self.deadline <= now
            || left * p.period as u128 > (self.deadline - now) as u128 * p.runtime as u128;
        if overflow {
            self.deadline = now + p.deadline;
            self.runtime_left = p.runtime as i64;
        }
    }

    /// Whether its budget is spent.
    pub(crate) fn spent(&self) -> bool {
        self.runtime_left <= SPENT_NS
    }

    /// Replenishes a spent (or yielded) budget; returns whether the thread must wait
    /// for the new period, at `now` (CPU clock), and marks it throttled if so.
    pub(crate) fn replenish(&mut self, now: u64) -> bool {
        let p = self.params;
        while self.runtime_left <= SPENT_NS {
            self.deadline += p.period;
            self.runtime_left += p.runtime as i64;
        }
        self.release = self.deadline - p.deadline;
        self.throttled = self.release > now;
        self.throttled
    }
}

/// The class's queues on one CPU.
pub(crate) struct DlQueue {
    /// Runnable deadline threads, latest deadline first.
    queued: Vec<*const Task>,
    /// Throttled ones, until their release.
    throttled: Vec<*const Task>,
    /// The running deadline thread's budget end (CPU clock), or `u64::MAX`.
    curr_end: u64,
}

/// The deadline state of `t`, which is a deadline thread.
///
/// # Safety
/// `t` is alive, belongs to the calling carrier, which has preemption disabled.
unsafe fn dl<'a>(t: *const Task) -> &'a mut DlEntity {
    // SAFETY: per the contract.
    unsafe { (*t).se().dl.as_mut().expect("a deadline thread") }
}

impl DlQueue {
    pub(crate) const fn new() -> DlQueue {
        DlQueue {
            queued: Vec::new(),
            throttled: Vec::new(),
            curr_end: u64::MAX,
        }
    }

    /// Room for `n` deadline threads (called at admission, so queueing never
    /// allocates).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.queued.reserve(n.saturating_sub(self.queued.len()));
        self.throttled
            .reserve(n.saturating_sub(self.throttled.len()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Queues `t` in deadline order (behind equal deadlines).
    ///
    /// # Safety
    /// As for [`dl`]; `t` is not queued.
    pub(crate) unsafe fn push(&mut self, t: *const Task) {
        // SAFETY: per the contract (for t and every queued task).
        let d = unsafe { dl(t).deadline };
        let at = self
            .queued
            .partition_point(|&q| unsafe { dl(q).deadline } > d);
        self.queued.insert(at, t);
    }

    /// The earliest deadline queued.
    pub(crate) fn earliest(&self) -> Option<u64> {
        // SAFETY: queued tasks are alive and ours (the caller owns the CPU's state).
        self.queued.last().map(|&t| unsafe { dl(t).deadline })
    }

    pub(crate) fn pop(&mut self) -> Option<*const Task> {
        self.queued.pop()
    }

    /// Unlinks `t`, which is queued.
    pub(crate) fn remove(&mut self, t: *const Task) {
        if let Some(i) = self.queued.iter().position(|&q| q == t) {
            self.queued.remove(i);
        }
    }

    /// Keeps `t` off the queue until its release.
    pub(crate) fn throttle(&mut self, t: *const Task) {
        self.throttled.push(t);
    }

    /// The earliest release of a throttled thread (CPU clock), or `u64::MAX`.
    pub(crate) fn next_release(&self) -> u64 {
        self.throttled
            .iter()
            // SAFETY: throttled tasks are alive (the scheduler's reference) and ours.
            .map(|&t| unsafe { dl(t).release })
            .min()
            .unwrap_or(u64::MAX)
    }

    pub(crate) fn has_throttled(&self) -> bool {
        !self.throttled.is_empty()
    }

    /// Takes one throttled thread whose release has come at `now`, unthrottled.
    pub(crate) fn take_released(&mut self, now: u64) -> Option<*const Task> {
        // SAFETY: as in next_release.
        let i = self
            .throttled
            .iter()
            .position(|&t| unsafe { dl(t).release } <= now)?;
        let t = self.throttled.swap_remove(i);
        // SAFETY: as above.
        unsafe { dl(t).throttled = false };
        Some(t)
    }

    /// The running deadline thread's budget end (CPU clock; `u64::MAX`: none running).
    pub(crate) fn curr_end(&self) -> u64 {
        self.curr_end
    }

    pub(crate) fn set_curr_end(&mut self, end: u64) {
        self.curr_end = end;
    }
}

/// A CPU's admitted deadline bandwidth (module docs, "Admission").
#[derive(Default)]
pub(crate) struct Bandwidth(AtomicU64);

impl Bandwidth {
    /// Reserves `p`'s bandwidth, or refuses with `ResourceBusy` if the CPU's total
    /// would exceed 1.
    pub(crate) fn admit(&self, p: &DlParams, cpu: usize) -> io::Result<()> {
        let bw = p.bandwidth();
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(bw).filter(|&t| t <= BW_ONE)
            })
            .map(|_| ())
            .map_err(|cur| {
                let f = |x: u64| x as f64 / BW_ONE as f64;
                io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "deadline admission refused on cpu {cpu}: utilisation {:.3} already \
                         admitted + {:.3} asked (runtime {} µs / period {} µs) exceeds 1",
                        f(cur),
                        f(bw),
                        p.runtime / 1_000,
                        p.period / 1_000
                    ),
                )
            })
    }

    /// Returns `p`'s bandwidth (its thread exited, or its spawn failed).
    pub(crate) fn release(&self, p: &DlParams) {
        self.0.fetch_sub(p.bandwidth(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: u64, d: u64, p: u64) -> DlParams {
        DlParams::new(
            Duration::from_micros(q),
            Duration::from_micros(d),
            Duration::from_micros(p),
        )
        .unwrap()
    }

    #[test]
    fn parameters_are_checked() {
        let ms = Duration::from_millis;
        assert!(DlParams::new(ms(2), ms(5), ms(5)).is_ok());
        for (q, d, p) in [(0, 5, 5), (6, 5, 5), (2, 6, 5), (2, 5, 20_000)] {
            let e = DlParams::new(ms(q), ms(d), ms(p)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{q} {d} {p}");
        }
    }

    #[test]
    fn admission_sums_to_one_and_releases() {
        let bw = Bandwidth::default();
        let a = params(600, 1_000, 1_000);
        let b = params(500, 1_000, 1_000);
        bw.admit(&a, 0).unwrap();
        let e = bw.admit(&b, 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ResourceBusy);
        assert!(e.to_string().contains("0.600"), "{e}");
        bw.admit(&params(400, 1_000, 1_000), 0).unwrap();
        bw.release(&a);
        bw.admit(&b, 0).unwrap();
    }

    #[test]
    fn wakeup_keeps_a_budget_within_bandwidth_and_resets_one_beyond() {
        let mut e = DlEntity::new(params(2_000, 5_000, 10_000));
        e.wake(1_000_000);
        assert_eq!((e.deadline, e.runtime_left), (6_000_000, 2_000_000));
        // 1 ms left 3 ms before the deadline is a third of the CPU, over its 0.2: reset.
        e.runtime_left = 1_000_000;
        e.blocked = true;
        e.wake(3_000_000);
        assert_eq!((e.deadline, e.runtime_left), (8_000_000, 2_000_000));
        // 0.5 ms left in 4 ms (0.125 ≤ 0.2): kept.
        e.runtime_left = 500_000;
        e.wake(4_000_000);
        assert_eq!((e.deadline, e.runtime_left), (8_000_000, 500_000));
    }

    #[test]
    fn replenishment_moves_the_deadline_by_periods_and_throttles() {
        let mut e = DlEntity::new(params(2_000, 5_000, 10_000));
        e.wake(0);
        e.runtime_left = -2_500_000; // overran by 2.5 ms
        assert!(e.replenish(3_000_000));
        // Two periods' budgets pay the overrun: d = 5 + 20 ms, released at 20 ms.
        assert_eq!(e.deadline, 25_000_000);
        assert_eq!(e.runtime_left, 1_500_000);
        assert_eq!(e.release, 20_000_000);
        assert!(e.throttled);
    }
}
