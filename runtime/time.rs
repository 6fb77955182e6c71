//! Timers: each CPU's heap of sleeping threads, and `sleep`.
//!
//! A timer entry names a task, a deadline (nanoseconds on the CPU's clock) and a token.
//! Entries are never removed early: a task that is woken some other way bumps its
//! `timer_token`, and the entry, when it expires, finds the token changed and does
//! nothing (lazy deletion). Each entry holds a strong reference, since it can outlive
//! the sleep that armed it.
//!
//! The heap belongs to its CPU and is touched with preemption disabled. An idle CPU
//! waits in epoll until the earliest deadline, with nanosecond resolution and 1 ns timer
//! slack, so a sleeper wakes when asked, never earlier: `sleep` re-checks the clock and
//! sleeps again if a wakeup came early for any reason.
//!
//! A thread that sleeps while unwinding keeps its CPU (see `sleep_on`): the panic count
//! is per OS thread.

use crate::sched::{self, Cpu};
use crate::task::Task;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Timer {
    deadline: u64,
    seq: u64,
    token: u64,
    task: Arc<Task>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// A CPU's pending timers, earliest first (FIFO among equal deadlines).
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<Timer>>,
    seq: u64,
}

impl TimerHeap {
    pub(crate) fn new() -> TimerHeap {
        TimerHeap {
            heap: BinaryHeap::with_capacity(64),
            seq: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub(crate) fn push(&mut self, deadline: u64, task: Arc<Task>, token: u64) {
        self.seq += 1;
        self.heap.push(Reverse(Timer {
            deadline,
            seq: self.seq,
            token,
            task,
        }));
    }

    /// Drops every entry (and the task references they hold).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|t| t.0.deadline)
    }

    /// The earliest entry if it is due at `now`.
    pub(crate) fn pop_expired(&mut self, now: u64) -> Option<(Arc<Task>, u64, u64)> {
        if self.heap.peek()?.0.deadline > now {
            return None;
        }
        let Reverse(t) = self.heap.pop()?;
        Some((t.task, t.token, t.deadline))
    }
}

/// Puts the current green thread to sleep until `deadline`.
#[track_caller]
pub(crate) fn sleep_until(deadline: Instant) {
    crate::preempt::might_sleep();
    let (cpu, t) = sched::current_or_panic("sleep");
    sleep_on(cpu, t, deadline);
}

fn sleep_on(cpu: &Cpu, t: *const Task, deadline: Instant) {
    if std::thread::panicking() {
        // The panic count is per OS thread: a green thread that switched away while
        // unwinding would make `panicking()` true for every other thread of its CPU,
        // and a panic in one of them would abort as a double panic. So a thread that
        // sleeps while unwinding (in a destructor) keeps its CPU and sleeps in the
        // kernel; std::thread::sleep retries on EINTR.
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
        return;
    }
    let ns = cpu.instant_to_ns(deadline);
    while Instant::now() < deadline {
        sched::block_current(cpu, t, Some(ns), || false);
    }
}

/// Puts the current green thread to sleep for at least `dur`.
#[track_caller]
pub(crate) fn sleep(dur: Duration) {
    let deadline = Instant::now().checked_add(dur);
    crate::preempt::might_sleep();
    let (cpu, t) = sched::current_or_panic("sleep");
    match deadline {
        Some(d) => sleep_on(cpu, t, d),
        // Too far to represent: sleep forever, like std does for huge durations.
        None => loop {
            sched::block_current(cpu, t, None, || false);
        },
    }
}
