//! The per-CPU run queue: 100 priorities, O(1) pick.
//!
//! ```text
//!  deadline threads ─────────► DlQueue (EDF)        before every priority list
//!  bitmap (128 bits)            lists               (but the interrupt level's)
//!  bit 99 ─ set ───────────►  [99]  T ─ T          real-time: FIFO per priority,
//!  ...                         ...                   highest non-empty list wins
//!  bit  1 ─ clear            [ 1]  (empty)
//!  bit  0   (unused)         normal class ─► NormalQueue (fair: EEVDF; or round-robin)
//! ```
//!
//! A bit is set exactly when its list is non-empty. Only the owning CPU touches the
//! queue, with preemption disabled (invariant 3); once the timer interrupt walks it, with
//! the soft irq mask held too.

use super::Priority;
use super::deadline::DlQueue;
use super::list::TaskList;
use super::normal::{NormalQueue, Stop};
use crate::task::{Task, TaskStats};
use std::sync::atomic::Ordering::Relaxed;

pub(crate) struct RunQueue {
    bitmap: [u64; 2],
    rt: [TaskList; Priority::LEVELS],
    pub(crate) normal: NormalQueue,
    pub(crate) dl: DlQueue,
    nr_running: usize,
}

impl RunQueue {
    /// An empty queue; `fair`: the normal class is the fair class, else round-robin.
    pub(crate) const fn new(fair: bool) -> RunQueue {
        RunQueue {
            bitmap: [0; 2],
            rt: [const { TaskList::new() }; Priority::LEVELS],
            normal: NormalQueue::new(fair),
            dl: DlQueue::new(),
            nr_running: 0,
        }
    }

    /// Queues `t` at `now` (CPU clock): behind every task of its real-time priority, or
    /// in the normal class.
    ///
    /// # Safety
    /// `t` is alive, belongs to this CPU, is not on the queue; the caller owns this CPU's
    /// scheduler state (preemption disabled).
    pub(crate) unsafe fn enqueue(&mut self, t: *const Task, now: u64) {
        // SAFETY: per the contract.
        unsafe {
            debug_assert!(!(*t).se().on_rq);
            (*t).se().on_rq = true;
            (*t).se().queued_at = now;
            let p = (*t).se().prio.get() as usize;
            if p == 0 {
                self.normal.enqueue(t);
            } else if (*t).se().dl.is_some() && p == Priority::DEADLINE.get() as usize {
                self.dl.push(t);
            } else {
                // Blocked in the fair class, woken in another (priority inheritance).
                self.normal.forget_delayed(t);
                self.rt[p].push_back(t);
                self.bitmap[p / 64] |= 1 << (p % 64);
            }
        }
        self.nr_running += 1;
    }

    /// Dequeues and returns the task that should run next, at `now` (CPU clock).
    ///
    /// # Safety
    /// The caller owns this CPU's scheduler state; the task that ran last has been put
    /// back (`put_prev`).
    pub(crate) unsafe fn pick_next(&mut self, now: u64) -> Option<*const Task> {
        let top = self.highest_rt();
        if top.is_some() || !self.dl.is_empty() {
            self.normal.higher_class_picked();
        }
        let t = match top {
            Some(p) if p < Priority::IRQ.get() as usize && !self.dl.is_empty() => self.dl.pop(),
            None if !self.dl.is_empty() => self.dl.pop(),
            Some(p) => {
                // SAFETY: the bit says the list is non-empty; its tasks are ours.
                let t = unsafe { self.rt[p].pop_front() };
                if self.rt[p].is_empty() {
                    self.bitmap[p / 64] &= !(1 << (p % 64));
                }
                t
            }
            // SAFETY: as above.
            None => unsafe { self.normal.pick_next(now) },
        }?;
        self.nr_running -= 1;
        // SAFETY: t was on our queue, hence alive and ours.
        unsafe {
            let se = (*t).se();
            se.on_rq = false;
            se.ran_at = now;
            TaskStats::add(&(*t).stats.wait_ns, now.saturating_sub(se.queued_at));
        }
        Some(t)
    }

    /// The task that ran until now stops running, for the reason `stop`; the normal
    /// class charges it, and its statistics count the run.
    ///
    /// # Safety
    /// `t` is the CPU's running task; the caller owns this CPU's scheduler state.
    pub(crate) unsafe fn put_prev(&mut self, t: *const Task, now: u64, stop: Stop) {
        // SAFETY: per the contract.
        unsafe {
            self.normal.put_curr(t, now, stop);
            let se = (*t).se();
            let ran = now.saturating_sub(se.ran_at);
            TaskStats::add(&(*t).stats.runtime_ns, ran);
            se.ran_at = now;
            se.burst += ran;
            if !stop.runnable() {
                se.end_burst();
            }
            if let Some(dl) = &mut se.dl {
                dl.runtime_left -= ran as i64;
                dl.blocked = !stop.runnable();
                self.dl.set_curr_end(u64::MAX);
            }
            if self.normal.is_fair() && stop != Stop::Yielded {
                // (Not at a yield, the hottest switch: its lag is as it gave it up.)
                (*t).stats.lag_ns.store(self.normal.lag(t), Relaxed);
            }
        }
    }

    /// Unlinks `t`, which is queued (to requeue it at another priority).
    ///
    /// # Safety
    /// `t` is on this queue at its current effective priority; the caller owns this
    /// CPU's scheduler state.
    pub(crate) unsafe fn remove(&mut self, t: *const Task) {
        // SAFETY: per the contract.
        unsafe {
            let p = (*t).se().prio.get() as usize;
            if p == 0 {
                self.normal.remove(t);
            } else if (*t).se().dl.is_some() && p == Priority::DEADLINE.get() as usize {
                self.dl.remove(t);
            } else {
                self.rt[p].remove(t);
                if self.rt[p].is_empty() {
                    self.bitmap[p / 64] &= !(1 << (p % 64));
                }
            }
            (*t).se().on_rq = false;
        }
        self.nr_running -= 1;
    }

    /// The highest real-time priority with a queued task.
    fn highest_rt(&self) -> Option<usize> {
        if self.bitmap[1] != 0 {
            Some(127 - self.bitmap[1].leading_zeros() as usize)
        } else if self.bitmap[0] != 0 {
            Some(63 - self.bitmap[0].leading_zeros() as usize)
        } else {
            None
        }
    }

    /// The highest priority with a queued task (a queued deadline thread counts as
    /// [`Priority::DEADLINE`]).
    pub(crate) fn top_prio(&self) -> Option<usize> {
        let dl = (!self.dl.is_empty()).then_some(Priority::DEADLINE.get() as usize);
        self.highest_rt().max(dl).or(if self.normal.is_empty() {
            None
        } else {
            Some(0)
        })
    }

    /// Runnable tasks queued (the running one is not counted).
    pub(crate) fn len(&self) -> usize {
        self.nr_running
    }

    pub(crate) fn is_empty(&self) -> bool {
        debug_assert_eq!(
            self.nr_running == 0,
            self.bitmap == [0; 2] && self.normal.is_empty() && self.dl.is_empty()
        );
        self.nr_running == 0
    }
}
