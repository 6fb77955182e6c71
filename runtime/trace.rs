//! The scheduler's trace: a per-CPU ring of events, drained to `tracing` later.
//!
//! Invariant 4: the switch, wakeup and spawn paths never call a `tracing` subscriber —
//! a subscriber may allocate, lock or print, and (once preemption is asynchronous)
//! it is thread-local state that a preempted thread may be in the middle of. They only
//! store a fixed-size record into their CPU's ring. The carrier's idle loop, which is
//! ordinary context, drains the ring and emits each record as a `trace`-level event with
//! target `preempt::sched`. If the ring fills before a drain, the oldest records are
//! overwritten and counted as lost.
//!
//! Recording is decided once, when the runtime starts: if no subscriber wants
//! `preempt::sched` at `trace` level then, the ring is never written.

use crate::sched::Cpu;

/// What happened.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Spawn(u64, u8),
    Switch {
        prev: u64,
        next: u64,
        class: Class,
        reason: Reason,
    },
    Wakeup(u64),
    Exit(u64),
}

/// The scheduling class of the thread switched to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Class {
    Idle,
    /// Priority 0: the fair class (or round-robin).
    Normal,
    RealTime,
    /// The deadline class (EDF).
    Deadline,
    /// `Priority::IRQ`: woken by the device without NAPI.
    Interrupt,
}

/// Why the previous thread stopped running.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reason {
    /// The timer interrupt, a wakeup or the end of a slice preempted it.
    Preempt,
    Yield,
    Block,
    Exit,
    /// The CPU was idle.
    Idle,
}

impl From<crate::sched::Stop> for Reason {
    fn from(stop: crate::sched::Stop) -> Reason {
        use crate::sched::Stop;
        match stop {
            Stop::Preempted => Reason::Preempt,
            Stop::Yielded => Reason::Yield,
            Stop::Blocked | Stop::Woken => Reason::Block,
            Stop::Exited => Reason::Exit,
        }
    }
}

/// The class of `t` (null: the idle loop).
pub(crate) fn class_of(t: *const crate::task::Task) -> Class {
    if t.is_null() {
        return Class::Idle;
    }
    // SAFETY: callers pass a live task of the calling carrier, preemption disabled.
    match unsafe { (*t).se().prio } {
        crate::Priority::DEFAULT => Class::Normal,
        crate::Priority::DEADLINE => Class::Deadline,
        p if p > crate::Priority::MAX => Class::Interrupt,
        _ => Class::RealTime,
    }
}

#[derive(Clone, Copy)]
struct Record {
    ts_ns: u64,
    event: Event,
}

/// Records kept between drains.
const CAPACITY: usize = 4096;

/// One CPU's event ring. Touched only by its carrier, preemption disabled.
pub(crate) struct Ring {
    enabled: bool,
    buf: Vec<Record>,
    /// Index of the next write.
    head: usize,
    /// Records written since the last drain (≤ CAPACITY are kept).
    pending: usize,
    lost: u64,
}

/// Whether a subscriber wants the scheduler's events.
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "preempt::sched", tracing::Level::TRACE)
}

impl Ring {
    pub(crate) fn new(enabled: bool) -> Ring {
        let cap = if enabled { CAPACITY } else { 0 };
        Ring {
            enabled,
            buf: Vec::with_capacity(cap),
            head: 0,
            pending: 0,
            lost: 0,
        }
    }

    /// Stores one event. Never allocates after the ring's first lap, never calls out.
    #[inline]
    pub(crate) fn record(&mut self, cpu: &Cpu, event: Event) {
        if !self.enabled {
            return;
        }
        let rec = Record {
            ts_ns: cpu.now_ns(),
            event,
        };
        if self.buf.len() < CAPACITY {
            self.buf.push(rec); // within the capacity reserved at start: no allocation
        } else {
            self.buf[self.head] = rec;
        }
        self.head = (self.head + 1) % CAPACITY;
        if self.pending == CAPACITY {
            self.lost += 1;
        } else {
            self.pending += 1;
        }
    }

    /// Emits every pending record to `tracing`. Ordinary context only.
    pub(crate) fn drain(&mut self, cpu: &Cpu) {
        if self.pending == 0 && self.lost == 0 {
            return;
        }
        let cpu_id = cpu.id;
        if self.lost != 0 {
            tracing::trace!(target: "preempt::sched", cpu = cpu_id, lost = self.lost, "trace ring overflowed");
            self.lost = 0;
        }
        let start = (self.head + CAPACITY - self.pending) % CAPACITY;
        for i in 0..self.pending {
            let r = self.buf[(start + i) % CAPACITY];
            let ts_ns = r.ts_ns;
            match r.event {
                Event::Spawn(id, prio) => {
                    tracing::trace!(target: "preempt::sched", cpu = cpu_id, ts_ns, id, prio, "spawn")
                }
                Event::Switch {
                    prev,
                    next,
                    class,
                    reason,
                } => {
                    tracing::trace!(target: "preempt::sched", cpu = cpu_id, ts_ns, prev, next, class = ?class, reason = ?reason, "switch")
                }
                Event::Wakeup(id) => {
                    tracing::trace!(target: "preempt::sched", cpu = cpu_id, ts_ns, id, "wakeup")
                }
                Event::Exit(id) => {
                    tracing::trace!(target: "preempt::sched", cpu = cpu_id, ts_ns, id, "exit")
                }
            }
        }
        self.pending = 0;
    }
}
