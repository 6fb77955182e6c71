//! The scheduler: per-CPU run queues, `schedule()`, wakeups, and the carrier's idle loop.
//!
//! ## CPUs
//!
//! A [`Cpu`] is one carrier OS thread and everything it owns: its run queue, timers,
//! stack pool, trace ring, and the saved context of its *idle loop* (the carrier's own
//! stack, which runs whenever no green thread is runnable). Fields come in two kinds:
//!
//! * **shared** — the wake list, the idle flag, the doorbell eventfd, the shutdown flag,
//!   statistics: atomics, touched by any thread;
//! * **local** (`CpuLocal`) — touched only by the carrier itself with preemption
//!   disabled (invariant 3). Access goes through [`Cpu::local`], and no reference into it
//!   is ever held across a context switch.
//!
//! ## Switching (invariant 1)
//!
//! A context switch happens only in [`schedule`], entered with preemption disabled by
//! exactly `SCHED_OFFSET`. The caller has set the current task's state: `RUNNING` to
//! yield (it is re-queued behind its equals), `BLOCKED` to sleep (it stays off the queue
//! until a waker's CAS makes it `RUNNING` and queues it), `DEAD` to exit. `schedule`
//! pulls pending wakeups, picks the highest-priority runnable task (or the idle loop),
//! and calls the assembly `switch`, which saves exactly the registers the ABI makes
//! callee-saved. The resumed side runs [`finish_task_switch`], which releases the stack
//! and the scheduler's reference of a task that just died: a thread cannot free the
//! stack it is running on.
//!
//! Under `Model::None` nothing else switches: a thread runs until it blocks, sleeps,
//! yields or exits. Under `Voluntary` the timer interrupt sets `NEED_RESCHED` and the
//! switch happens at the next `cond_resched()` or blocking call. Under `Full` the
//! interrupt preempts.
//!
//! ## Preemption: redirect, not switch-in-handler
//!
//! An asynchronous preemption reaches `schedule` the way DESIGN.md §4 prefers (and Go's
//! `asyncPreempt` does): the `SIGALRM` handler rewrites the interrupted context so that
//! after sigreturn the thread runs an assembly stub that saves flags, the caller-saved
//! registers and the full XSAVE image, then calls `schedule` in ordinary context
//! (`irq` module docs). The scheduler therefore never runs in signal context, the
//! signal mask is the thread's own again when it is switched out (H8 holds by
//! construction), and nested ticks need no special care: the handler raises
//! `preempt_count` to `SCHED_OFFSET` on the stub's behalf, so a tick landing in the stub
//! only defers.
//!
//! Measured on the project's machine (`cargo bench --bench preempt`, medians): one
//! preemption — tick raised, handler, redirect, XSAVE/XRSTOR of the AVX-512 state,
//! switch — 2.8 µs against a 2.45 µs bare signal round trip measured in the same run
//! (1.15×); a lone thread pays only for the signal, since the handler switches only
//! when another thread is queued or a timer is due (published to it through the
//! `queued`/`next_timer` mirrors).
//!
//! ## Timers and the tick
//!
//! Sleepers sit in the CPU's timer heap; the clock-event device fires at whichever
//! comes first, the next periodic tick or the earliest timer (an hrtimer's one-shot).
//!
//! * The periodic tick runs only while a queued thread could take the CPU at a tick — a
//!   round-robin peer of the running thread's priority, or a higher one not yet
//!   switched to (the kernel's `sched_can_stop_tick`; `Cpu::publish_queued`). A thread
//!   alone, or above everything queued, runs tickless (`NO_HZ_FULL`); an idle CPU stops
//!   the device and waits in epoll until the earliest deadline (`NO_HZ_IDLE`).
//! * A timer gets a one-shot when it is armed, when an earlier one expires, when the CPU
//!   leaves idle, and when a periodic tick finds it due before the next tick
//!   (`Cpu::arm_timer` and its callers); the handler retries after 50 µs when a due
//!   wakeup had to be deferred, and re-arms a one-shot that came early.
//! * One-shots for timers are programmed early by a learned *timer advance*, and the
//!   handler spins out the remainder when it could preempt for the timer
//!   (`Cpu::arm_timer`): on this class of VM a signal reaches a busy thread 15–25 µs
//!   after its timer expires, and this takes that delay out of a wakeup's lateness.
//!
//! Measured (`cargo bench --bench preempt -- lateness`): a 1 ms periodic priority-50
//! sleeper beside a CPU hog under `Full` wakes with a lateness of p50 0–3 µs and p99
//! 10–27 µs in quiet runs at ticks of 1 ms, 250 µs and 100 µs, against a bare
//! `setitimer` one-shot's p50 49–65 µs and p99 96–122 µs in the same runs.

//! ## Wakeups (invariant 5)
//!
//! Sleeping is a two-step protocol, so no wakeup is lost:
//!
//! 1. the sleeper, preemption disabled, stores `BLOCKED` (SeqCst), **then** re-checks its
//!    condition (a park token, a timer); if it already holds, it stores `RUNNING` and
//!    returns; otherwise it calls `schedule`;
//! 2. a waker makes the condition true (SeqCst), **then** CASes `BLOCKED → RUNNING`; the
//!    one that succeeds owns the wakeup and queues the task.
//!
//! Either the sleeper sees the condition or the waker sees `BLOCKED`. A waker on the
//! task's own CPU queues it directly; any other thread pushes it on the CPU's lock-free
//! wake list (at most once: `wake_queued`) and rings the doorbell if the CPU is idle.
//! The CPU drains the list in `schedule` and in the idle loop: for each entry it clears
//! `wake_queued`, then queues the task if it is `RUNNING`, not current and not queued —
//! an entry whose task has since blocked again is stale and dropped, and a waker racing
//! with that check finds the flag clear and pushes anew.
//!
//! The doorbell: the CPU stores `idle = true`, issues a `SeqCst` fence and re-checks the
//! wake list (and the shutdown flag) before it waits; a remote waker pushes (or sets
//! shutdown), issues a `SeqCst` fence and then swaps `idle` to false, writing the eventfd
//! if it was set. The two fences order each side's store before its load, so one of
//! them sees the other (Dekker). `tests/loom_wake.rs` checks both protocols.

mod clock;
pub(crate) mod deadline;
mod list;
pub(crate) mod normal;
mod prio;
mod rq;
mod waiter;
pub(crate) mod wake_list;

pub(crate) use deadline::{DlEntity, DlParams};
pub(crate) use normal::{FairEntity, Stop};
pub use prio::Priority;
pub(crate) use waiter::Waiter;

use crate::arch::{self, Context};
use crate::irq::{self, tick};
use crate::loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
use crate::preempt::{self, SCHED_OFFSET};
use crate::rt::Model;
use crate::stack::{Stack, StackPool};
use crate::task::{BLOCKED, DEAD, RUNNING, Task, TaskStats};
use crate::time::TimerHeap;
use crate::trace::{self, Event};
use crate::{debug, sys};
use rq::RunQueue;
use std::cell::{Cell, UnsafeCell};
use std::io;
use std::os::fd::OwnedFd;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wake_list::WakeList;

/// What a CPU needs to know about the runtime it belongs to. Immutable.
pub(crate) struct Config {
    pub(crate) default_stack: usize,
    /// The effective preemption model (after any environment downgrade).
    pub(crate) model: Model,
    /// The timer interrupt's period (used by the preemptive models only).
    pub(crate) tick: Duration,
    /// NAPI budgets for the epoll device's softirq (`io::device`).
    pub(crate) napi: bool,
    /// The normal class is the fair class (else round-robin).
    pub(crate) fair: bool,
    /// Tickless full: a busy CPU with nothing to preempt for stops its tick (else the
    /// tick runs whenever the CPU is busy, as with `NO_HZ_IDLE`).
    pub(crate) nohz_full: bool,
}

impl Config {
    /// Whether this runtime takes timer interrupts.
    pub(crate) fn ticks(&self) -> bool {
        self.model != Model::None
    }
}

/// Scheduler statistics of one CPU. Written only by its carrier; read by anyone.
#[derive(Default)]
pub(crate) struct CpuStats {
    pub(crate) switches_voluntary: AtomicU64,
    pub(crate) switches_involuntary: AtomicU64,
    pub(crate) spawned: AtomicU64,
    pub(crate) exited: AtomicU64,
    pub(crate) wakeups_local: AtomicU64,
    pub(crate) wakeups_remote: AtomicU64,
    pub(crate) idle_waits: AtomicU64,
    pub(crate) ticks: AtomicU64,
    pub(crate) ticks_late: AtomicU64,
    pub(crate) ticks_lost: AtomicU64,
    pub(crate) preemptions: AtomicU64,
    pub(crate) deferred_atomic: AtomicU64,
    pub(crate) deferred_pc: AtomicU64,
    pub(crate) deferred_irq_mask: AtomicU64,
    pub(crate) deferred_panicking: AtomicU64,
    pub(crate) dl_throttled: AtomicU64,
}

/// Adds one to a counter that only the calling carrier writes (no RMW needed; its
/// signal handler, which may interrupt the carrier between the load and the store, only
/// writes counters the carrier itself never writes). ASYNC-SIGNAL-SAFE.
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// One CPU: a carrier thread and the state it schedules with.
pub(crate) struct Cpu {
    pub(crate) id: usize,
    pub(crate) config: Config,
    // ---- shared ----
    wake_list: WakeList<Task>,
    /// Set by the carrier just before it waits in epoll; see the doorbell protocol.
    idle: AtomicBool,
    pub(crate) doorbell: OwnedFd,
    /// The CPU's epoll instance: the doorbell and every descriptor its threads wait on.
    pub(crate) epoll: OwnedFd,
    /// The epoll device's per-CPU state (`io::device`).
    pub(crate) net: crate::io::device::NetDevice,
    pub(crate) shutdown: AtomicBool,
    /// Green threads spawned and not yet finished.
    pub(crate) nr_live: AtomicUsize,
    /// Of those, the runtime's own (`ksoftirqd`), asked to exit at shutdown.
    pub(crate) daemons: AtomicUsize,
    /// Mirrors for the timer interrupt, which must not look at `local`: how many tasks
    /// are queued; from when one of them should take the CPU (`preempt_at`, CPU clock:
    /// 0 now — a higher priority, or a round-robin peer at the next tick past `rr_floor` —,
    /// the end of the running fair-class thread's slice, or `u64::MAX`: none); and the
    /// earliest timer deadline (`u64::MAX`: none). Written by the carrier whenever the
    /// run queue, the running task or the timer heap changes.
    pub(crate) queued: AtomicUsize,
    preempt_at: AtomicU64,
    /// With a round-robin peer queued (`preempt_at` 0), the tick hands it the CPU only
    /// from this time (CPU clock): half a tick after the running thread was picked.
    /// The kernel's round-robin charges each tick to whoever it finds running, so a
    /// thread picked a microsecond before one loses its turn to it; charged by time
    /// instead, a turn lasts from half a tick to a tick and a half, a tick on average,
    /// and a thread that runs a few microseconds between blocks is never preempted.
    rr_floor: AtomicU64,
    /// The running thread tends to compute for longer than the epoll device's deferred
    /// poll may wait (its current or previous burst did), and the timer interrupt has
    /// not yet retried a poll deferred in its system calls: set at each pick, taken by
    /// the retry (`irq::retry_soon_if_urgent`), so it retries once per turn.
    compute_retry: AtomicBool,
    /// The clock-event device's period (ns): the runtime's tick while a thread that
    /// computes is about, else [`BACKSTOP_TICK_NS`] (see [`Cpu::follow_work`]); when
    /// the fine period may end (CPU clock: a tick after the last pick of a thread that
    /// computes); and from when the running thread counts as computing (CPU
    /// clock: 0 if its bursts say so, else half a tick after its pick, `u64::MAX` while
    /// the idle loop runs). Written by the carrier and its handler only.
    period: AtomicU64,
    fine_until: AtomicU64,
    computes_from: AtomicU64,
    /// Until when (CPU clock) the running thread is expected to switch by itself, and
    /// so poll the epoll device: [`net::DEFER_NS`] after its pick if its bursts are
    /// shorter than that, else 0 (see [`Cpu::switches_soon`]). Written by the carrier,
    /// read by its handler.
    poll_waits_until: AtomicU64,
    pub(crate) next_timer: AtomicU64,
    /// The timer advance (see [`Cpu::arm_timer`]), in ns; and when the pending one-shot
    /// for a timer deadline was programmed to fire (CPU clock, 0: none). Written by the
    /// carrier and its handler only.
    timer_advance: AtomicU64,
    oneshot_at: AtomicU64,
    /// For the watchdog: the running task (null: idle) and the carrier's kernel tid.
    pub(crate) running: AtomicPtr<Task>,
    pub(crate) tid: std::sync::atomic::AtomicI32,
    pub(crate) stats: CpuStats,
    /// The deadline bandwidth admitted on this CPU (`deadline`).
    pub(crate) dl_bw: deadline::Bandwidth,
    /// Zero of the CPU's nanosecond clock (timers are kept as offsets from it).
    epoch: Instant,
    /// The cheap clock that run and wait times are charged with (`clock`), and the CPU
    /// clock minus it, refreshed at every tick and idle wakeup (the two drift apart by
    /// the calibration's error, ~10⁻⁴, so a slice end converted with it is off by
    /// nanoseconds).
    acct: clock::Clock,
    acct_offset: std::sync::atomic::AtomicI64,
    /// Interrupt time, left out of the accounting clock (the kernel's
    /// `IRQ_TIME_ACCOUNTING`): the accounting-clock ns spent in the timer interrupt's
    /// handler and in device passes run by the scheduler — the wakeups they make —
    /// which the thread they ran beside did not ask for. Charged to it, a µs-long
    /// request handler beside which a pass woke a dozen siblings ran "100+ µs" and then
    /// waited for the others to catch up (the HTTP bench under the fair class).
    /// `irq_since`: when the section running now began (0: none). The carrier and its
    /// handler only (`SIGALRM` is blocked while the handler runs: it does not nest
    /// in itself).
    irq_time: AtomicU64,
    irq_since: AtomicU64,
    // ---- local: the carrier only, preemption disabled ----
    local: UnsafeCell<CpuLocal>,
}

// SAFETY: the shared fields are atomics or immutable; `local` is touched only by the
// carrier thread with preemption disabled (module docs), which serialises it.
unsafe impl Send for Cpu {}
// SAFETY: as above.
unsafe impl Sync for Cpu {}

pub(crate) struct CpuLocal {
    rq: RunQueue,
    pub(crate) timers: TimerHeap,
    /// The running task; null while the idle loop runs.
    curr: *const Task,
    /// The task switched away from, for `finish_task_switch`; null after idle.
    prev: *const Task,
    idle_ctx: Context,
    stacks: StackPool,
    trace: trace::Ring,
}

use crate::io::device::{self as net, DOORBELL_TOKEN};

/// The largest timer advance [`Cpu::arm_timer`] learns, and so the longest the handler
/// spins for a timer: about twice the VM's usual delivery delay.
const MAX_TIMER_ADVANCE_NS: u64 = 40_000;
/// The nearest a slice's end (or a short member's eligibility) is programmed from the
/// switch that starts the slice. Armed nearer, the one-shot fires inside the switch
/// itself, the `enable` that ends it picks again before the running thread has run
/// long enough to move `V`, and the same thread is picked and armed for again: a storm
/// of interrupts that keeps every thread off the CPU (an HTTP server's `/` p99 went
/// from 1 ms to 20–40 ms).
const MIN_SLICE_ONESHOT_NS: u64 = 50_000;
/// The period of the clock-event device under a tick finer than this while no thread
/// that computes is about: the default tick (see [`Cpu::follow_work`]).
pub(crate) const BACKSTOP_TICK_NS: u64 = 1_000_000;

thread_local! {
    /// The CPU this OS thread carries, or null.
    static THIS_CPU: Cell<*const Cpu> = const { Cell::new(ptr::null()) };
}

/// The CPU the calling OS thread carries, if it is a carrier.
///
/// Not inlined (invariant 8): the TLS address is looked up afresh on every call.
#[inline(never)]
pub(crate) fn this_cpu() -> Option<&'static Cpu> {
    let p = THIS_CPU.with(Cell::get);
    // SAFETY: THIS_CPU is set only by `run_carrier` for the duration of the carrier's
    // run, during which it holds an Arc keeping the Cpu alive; everything that reads
    // it runs on the carrier inside that window.
    unsafe { p.as_ref() }
}

/// The green thread running on the calling carrier, if any.
#[inline]
pub(crate) fn current_task() -> Option<*const Task> {
    let cpu = this_cpu()?;
    // SAFETY: `curr` is written only by this carrier, which is the caller; reading a
    // word it wrote on this same thread is race-free.
    let t = unsafe { (*cpu.local.get()).curr };
    (!t.is_null()).then_some(t)
}

/// The calling green thread as an owned reference.
pub(crate) fn current_arc() -> Option<Arc<Task>> {
    let t = current_task()?;
    // SAFETY: the current task is alive (the scheduler holds a reference while it
    // runs); this makes a new strong reference from its pointer.
    unsafe {
        Arc::increment_strong_count(t);
        Some(Arc::from_raw(t))
    }
}

/// Panics, tokio-style, when a runtime-only call is made outside a runtime.
#[cold]
#[track_caller]
pub(crate) fn no_runtime(what: &str) -> ! {
    panic!(
        "`{what}` must be called from a preempt runtime (a green thread started by \
         `Runtime::block_on` or `spawn`)"
    )
}

/// The current green thread and its CPU, or the tokio-style panic.
#[track_caller]
pub(crate) fn current_or_panic(what: &str) -> (&'static Cpu, *const Task) {
    match this_cpu().and_then(|c| current_task().map(|t| (c, t))) {
        Some(x) => x,
        None => no_runtime(what),
    }
}

impl Cpu {
    pub(crate) fn new(id: usize, config: Config, chip: &net::IrqChip) -> io::Result<Arc<Cpu>> {
        let tick_ns = config.tick.as_nanos() as u64;
        let fair = config.fair;
        let doorbell = sys::eventfd()?;
        let epoll = sys::epoll_create()?;
        use std::os::fd::AsRawFd;
        sys::epoll_ctl(
            &epoll,
            libc::EPOLL_CTL_ADD,
            doorbell.as_raw_fd(),
            libc::EPOLLIN as u32,
            DOORBELL_TOKEN,
        )?;
        let net = net::NetDevice::new(id, &epoll, chip, config.napi)?;
        let stacks = StackPool::new(config.default_stack);
        Ok(Arc::new(Cpu {
            id,
            config,
            wake_list: WakeList::new(),
            idle: AtomicBool::new(false),
            doorbell,
            epoll,
            net,
            shutdown: AtomicBool::new(false),
            nr_live: AtomicUsize::new(0),
            daemons: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            preempt_at: AtomicU64::new(u64::MAX),
            rr_floor: AtomicU64::new(0),
            compute_retry: AtomicBool::new(false),
            period: AtomicU64::new(tick_ns),
            fine_until: AtomicU64::new(0),
            computes_from: AtomicU64::new(u64::MAX),
            poll_waits_until: AtomicU64::new(0),
            next_timer: AtomicU64::new(u64::MAX),
            timer_advance: AtomicU64::new(0),
            oneshot_at: AtomicU64::new(0),
            running: AtomicPtr::new(ptr::null_mut()),
            tid: std::sync::atomic::AtomicI32::new(0),
            stats: CpuStats::default(),
            dl_bw: deadline::Bandwidth::default(),
            epoch: Instant::now(),
            acct: clock::Clock::new(),
            acct_offset: std::sync::atomic::AtomicI64::new(0),
            irq_time: AtomicU64::new(0),
            irq_since: AtomicU64::new(0),
            local: UnsafeCell::new(CpuLocal {
                rq: RunQueue::new(fair),
                timers: TimerHeap::new(),
                curr: ptr::null(),
                prev: ptr::null(),
                idle_ctx: Context::empty(),
                stacks,
                trace: trace::Ring::new(trace::enabled()),
            }),
        }))
    }

    /// This CPU's local state.
    ///
    /// # Safety
    /// The caller is this CPU's carrier with preemption disabled, and drops the
    /// reference before anything else can take one (in particular before any switch).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn local(&self) -> &mut CpuLocal {
        debug_assert!(ptr::eq(THIS_CPU.with(Cell::get), self));
        debug_assert!(preempt::count() != 0);
        // SAFETY: forwarded from the caller.
        unsafe { &mut *self.local.get() }
    }

    /// Whether a green thread (not the idle loop) is running. Carrier only.
    #[inline]
    pub(crate) fn has_current(&self) -> bool {
        // SAFETY: `curr` is written only by this carrier, which the caller is (it got
        // `self` from `this_cpu`); reading a word it wrote on this thread is race-free.
        unsafe { !(*self.local.get()).curr.is_null() }
    }

    /// Nanoseconds since this CPU's epoch.
    pub(crate) fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The accounting clock (ns; only its differences mean anything): the cheap clock
    /// without interrupt time, and standing still while the handler runs. Carrier
    /// only. ASYNC-SIGNAL-SAFE.
    #[inline]
    pub(crate) fn acct_ns(&self) -> u64 {
        let since = self.irq_since.load(Ordering::Relaxed);
        let now = if since != 0 { since } else { self.acct.now() };
        // (Steal is taken out in a handler that began at `since`, measured up to a
        // moment after it: the difference may pass `since` by that moment.)
        now.saturating_sub(self.irq_time.load(Ordering::Relaxed))
    }

    /// The accounting clock's counter, interrupt and steal time included. Carrier only.
    /// ASYNC-SIGNAL-SAFE.
    pub(crate) fn acct_raw(&self) -> u64 {
        self.acct.now()
    }

    /// Interrupt context begins — the timer interrupt's handler, or a device pass the
    /// scheduler runs — and the accounting clock stops; false if it had stopped already
    /// (the handler interrupted a pass: the pass's section counts it), and then the
    /// caller does not call [`Cpu::irq_time_exit`]. A handler that lands between this
    /// load and store, or between the exit's read and clear, is counted twice or not at
    /// all: a few µs, rarely. ASYNC-SIGNAL-SAFE.
    pub(crate) fn irq_time_enter(&self) -> bool {
        if self.irq_since.load(Ordering::Relaxed) != 0 {
            return false;
        }
        self.irq_since
            .store(self.acct.now().max(1), Ordering::Relaxed);
        true
    }

    /// Interrupt context ends: its time is interrupt time, and the accounting clock
    /// goes on. ASYNC-SIGNAL-SAFE.
    pub(crate) fn irq_time_exit(&self) {
        let since = self.irq_since.load(Ordering::Relaxed);
        let spent = self.acct.now().saturating_sub(since);
        let total = self.irq_time.load(Ordering::Relaxed) + spent;
        self.irq_time.store(total, Ordering::Relaxed);
        self.irq_since.store(0, Ordering::Relaxed);
    }

    /// `ns` of the recent past were stolen (the carrier did not run: see
    /// `irq::account_tick`): the accounting clock leaves them out, as it leaves out
    /// interrupt time. Carrier only. ASYNC-SIGNAL-SAFE.
    pub(crate) fn steal(&self, ns: u64) {
        if ns > 0 {
            let total = self.irq_time.load(Ordering::Relaxed) + ns;
            self.irq_time.store(total, Ordering::Relaxed);
        }
    }

    /// Re-measures the offset between the CPU clock and the accounting clock, given the
    /// CPU clock's `now`. ASYNC-SIGNAL-SAFE (the accounting clock reads a counter).
    pub(crate) fn sync_clocks(&self, now: u64) {
        let off = now as i64 - self.acct_ns() as i64;
        self.acct_offset.store(off, Ordering::Relaxed);
    }

    /// After a pick at `now` (accounting clock): a fair-class thread's slice ends, on
    /// the CPU clock the timer interrupt reads, when its request runs out; the mirrors
    /// are published for `next`.
    fn picked(&self, l: &mut CpuLocal, next: *const Task, now: u64) {
        self.start_slice(l, next, now);
        self.follow_work(next, l.rq.len() as u64);
        self.publish_queued(l, next);
        self.arm_slice_end(l);
        if !next.is_null() {
            net::thread_picked(self);
        }
        self.arm_deferred_poll(next);
    }

    /// The timer interrupt found the carrier idle (in its wait, or about to be, or just
    /// out of it): the device stops (tickless idle; the idle wait has the next timer as
    /// its timeout, and the carrier programs the device again as it resumes a thread).
    /// ASYNC-SIGNAL-SAFE.
    pub(crate) fn idle_tick(&self) {
        tick::stop();
        self.oneshot_at.store(0, Ordering::Relaxed);
    }

    /// The clock-event device's period now. ASYNC-SIGNAL-SAFE.
    #[inline]
    pub(crate) fn tick_period(&self) -> Duration {
        Duration::from_nanos(self.period.load(Ordering::Relaxed))
    }

    /// The tick follows the work. A tick finer than the default exists to cut threads
    /// that compute into short turns. A thread that blocks well within a tick (a request
    /// handler) is not cut before half a tick (`rr_floor`), and its own switch runs a
    /// deferred device poll as soon as a tick would ([`Cpu::poll_left_to_switch`]): the
    /// ticks it meets are spent for nothing — at 100 µs, a tenth to a quarter of the CPU
    /// on a virtual machine, whose timer interrupts cost 10–25 µs each (an HTTP server's
    /// `/` at saturation made 0.72× tokio's requests/s, 0.93× at the 1 ms tick). So the
    /// device keeps the runtime's tick from the pick of a thread that computes — its
    /// current burst, or its average burst, reached a tick, or it has not blocked yet
    /// (`SchedEntity::computes_for`) — through that thread's turn (unless the deferred
    /// poll's one-shot ends the turn within a tick; [`Cpu::fine_if_computing`] catches a
    /// turn that goes on), and ticks at a backstop period ([`BACKSTOP_TICK_NS`]) from
    /// the first tick after it that finds a thread that does not compute (the handler
    /// relaxes it: [`Cpu::relax_tick`]), or from the pick after it of such a thread
    /// that, with the `queued` ones, will by their average bursts outlast a tick.
    /// Relaxed only a backstop period after the last such pick, the device kept ticking
    /// through the batch of request handlers that follows each turn of a `/spin`
    /// handler (the HTTP bench at 50 connections, 100 µs tick: ~10,000 interrupts a
    /// second); relaxed at the first tick in the batch, it took 6,000–9,000, and `/`'s
    /// p99 (medians of five interleaved rounds) went from 0.93 ms to 0.65–1.0 ms in
    /// three runs; relaxed as the batch begins, 0.58 ms (single rounds 0.47–0.72 ms,
    /// against 0.56–1.42 ms in the same run). The price: a thread that computes for the
    /// first time after short bursts keeps the CPU for up to a backstop period before a
    /// tick cuts it (its next pick restores the fine tick). Called at every pick; a
    /// change of period costs one re-programming of the device.
    fn follow_work(&self, next: *const Task, queued: u64) {
        let fine = self.config.tick.as_nanos() as u64;
        if !self.config.ticks() || fine >= BACKSTOP_TICK_NS {
            return; // the period never changes: nothing reads `computes_from`
        }
        // SAFETY: `next` (if any) was just picked: alive and ours.
        let Some(se) = unsafe { next.as_ref() }.map(|t| unsafe { t.se() }) else {
            self.computes_from.store(u64::MAX, Ordering::Relaxed);
            return;
        };
        if !se.computes_for(fine) {
            let off = self.acct_offset.load(Ordering::Relaxed);
            let from = (se.ran_at + fine / 2).saturating_add_signed(off);
            self.computes_from.store(from, Ordering::Relaxed);
            // A batch of such threads that will outlast a tick (by their average
            // bursts) is starting after a computing thread's turn: relax now, one
            // re-programming, rather than at the next tick, an interrupt in the batch.
            if self.period.load(Ordering::Relaxed) == fine
                && se.avg_burst.saturating_mul(queued + 1) >= fine
                && self.now_ns() >= self.fine_until.load(Ordering::Relaxed)
            {
                self.tick_at_backstop();
            }
            return;
        }
        let now = self.now_ns();
        self.computes_from.store(0, Ordering::Relaxed);
        self.fine_until.store(now + fine, Ordering::Relaxed);
        if self.period.load(Ordering::Relaxed) == fine {
            return;
        }
        // The deferred poll's one-shot ends this turn within a tick (it gets one: the
        // thread computes for longer than the poll may wait, `arm_deferred_poll`), and
        // the batch of threads it wakes would have the device relax again: the period
        // stays, should the turn go on past it, the handler starts the fine one
        // (`Cpu::fine_if_computing`). A `/spin` handler's turns at 50 connections cost
        // one re-programming each instead of three.
        let due = self.net.poll_due();
        if se.outlasts_deferred_poll() && due > now && due - now <= fine {
            return;
        }
        self.set_period(fine);
    }

    /// The timer interrupt found a thread that computes running, at the backstop period
    /// its pick left for the deferred poll's one-shot to end its turn
    /// ([`Cpu::follow_work`]), with a thread queued: the turn went on past the poll,
    /// and the fine period starts. ASYNC-SIGNAL-SAFE.
    pub(crate) fn fine_if_computing(&self) {
        let fine = self.config.tick.as_nanos() as u64;
        if fine < BACKSTOP_TICK_NS
            && self.period.load(Ordering::Relaxed) != fine
            && self.now_ns() >= self.computes_from.load(Ordering::Relaxed)
        {
            self.set_period(fine);
        }
    }

    /// The timer interrupt found a running thread that did not need it: if no thread
    /// that computes has been picked for a tick and this one does not compute either,
    /// the device goes to the backstop period ([`Cpu::follow_work`]).
    /// ASYNC-SIGNAL-SAFE.
    pub(crate) fn relax_tick(&self) {
        if self.period.load(Ordering::Relaxed) >= BACKSTOP_TICK_NS {
            return;
        }
        let now = self.now_ns();
        if now >= self.fine_until.load(Ordering::Relaxed)
            && now < self.computes_from.load(Ordering::Relaxed)
        {
            self.tick_at_backstop();
        }
    }

    /// The device goes to the backstop period (one re-programming if it runs).
    /// ASYNC-SIGNAL-SAFE.
    fn tick_at_backstop(&self) {
        self.set_period(BACKSTOP_TICK_NS);
    }

    /// The device's period becomes `ns` (one re-programming if it runs).
    /// ASYNC-SIGNAL-SAFE.
    fn set_period(&self, ns: u64) {
        self.period.store(ns, Ordering::Relaxed);
        if !tick::is_stopped() {
            tick::start(self.tick_period());
        }
    }

    /// The epoll device is masked and polled (deferred interrupts): if `next` tends to
    /// compute for longer than the poll may wait — its current or previous CPU burst did
    /// (a preemption does not end a burst, so one preemption does not make a request
    /// handler look like a computing thread) — the poll gets a one-shot, and a retry if
    /// that is deferred (`compute_retry`); a thread that runs briefly polls at its next
    /// switch (`DEFER_NS`), and the timer interrupt leaves the poll to that switch until
    /// `DEFER_NS` after its pick (`poll_waits_until`) — if the tick runs: with the tick
    /// stopped, such a thread gets the interrupt unmasked instead.
    fn arm_deferred_poll(&self, next: *const Task) {
        if !self.config.ticks() {
            return;
        }
        // SAFETY: `next` (if any) was just picked: alive and ours.
        let se = unsafe { next.as_ref() }.map(|t| &*unsafe { t.se() });
        let computes = se.is_some_and(|se| se.outlasts_deferred_poll());
        let waits_until = match se {
            Some(se) if !computes => {
                let off = self.acct_offset.load(Ordering::Relaxed);
                (se.ran_at + net::DEFER_NS).saturating_add_signed(off)
            }
            _ => 0,
        };
        self.poll_waits_until.store(waits_until, Ordering::Relaxed);
        let due = self.net.poll_due();
        if due == u64::MAX {
            // Not polling (the common case). Polling starts in a pass before a pick —
            // or, under `Rt`, in the irq thread's own turn — so a stale `compute_retry`
            // (its retry needs a due poll) costs one spare retry at worst.
            return;
        }
        self.compute_retry.store(computes, Ordering::Relaxed);
        // (A due time already past was served by this switch's pass, or handed to the
        // irq thread, which may rank below `next`: re-arming for it would preempt
        // `next` over and over.)
        if computes {
            if due > self.now_ns() {
                self.arm_timer(due);
            }
        } else if tick::is_stopped() {
            // The CPU idled, or ran one thread: no tick backs the poll up should `next`
            // turn to computing (`Cpu::switches_soon`). The interrupt does.
            net::poll_by_interrupt(self);
        }
    }

    /// A fair-class thread's slice, or a deadline thread's budget, ends at `now` plus
    /// what is left of it, converted to the CPU clock.
    fn start_slice(&self, l: &mut CpuLocal, next: *const Task, now: u64) {
        let off = self.acct_offset.load(Ordering::Relaxed);
        if l.rq.normal.is_fair() && l.rq.normal.has_curr() {
            let end = (now + l.rq.normal.slice_left()).saturating_add_signed(off);
            l.rq.normal.set_slice_end(end);
        }
        // SAFETY: `next` (if any) was just picked: alive and ours.
        if let Some(dl) = unsafe { next.as_ref() }.and_then(|t| unsafe { t.se().dl.as_ref() }) {
            let left = dl.runtime_left.max(0) as u64;
            l.rq.dl
                .set_curr_end((now + left).saturating_add_signed(off));
        }
    }

    /// `deadline` as nanoseconds since this CPU's epoch (0 if it is earlier).
    pub(crate) fn instant_to_ns(&self, deadline: Instant) -> u64 {
        deadline.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Publishes the run queue's length and `preempt_at` (for the timer interrupt and
    /// the watchdog). Called wherever the queue or the running task changes.
    #[inline]
    fn publish_queued(&self, l: &CpuLocal, running: *const Task) {
        self.queued.store(l.rq.len(), Ordering::Relaxed);
        if !self.config.ticks() {
            return; // no timer interrupt to read the mirror
        }
        let mut floor = 0;
        let at = if running.is_null() {
            u64::MAX
        } else {
            // SAFETY: the running (or about to run) task is alive and ours.
            let se = unsafe { (*running).se() };
            let prio = se.prio.get() as usize;
            match (l.rq.top_prio(), &se.dl) {
                (Some(p), _) if p > prio => 0,
                // EDF: only an earlier deadline preempts; else the budget's end does.
                (_, Some(dl)) if l.rq.dl.earliest().is_some_and(|d| d < dl.deadline) => 0,
                (_, Some(_)) => l.rq.dl.curr_end(),
                (Some(0), _) if prio == 0 && l.rq.normal.is_fair() => {
                    let off = self.acct_offset.load(Ordering::Relaxed);
                    let short = l.rq.normal.short_eligible_at();
                    let short = short.map_or(u64::MAX, |t| t.saturating_add_signed(off));
                    l.rq.normal.slice_end().min(short)
                }
                (Some(p), _) if p == prio => {
                    let off = self.acct_offset.load(Ordering::Relaxed);
                    let half = self.config.tick.as_nanos() as u64 / 2;
                    floor = (se.ran_at + half).saturating_add_signed(off);
                    0
                }
                _ => u64::MAX,
            }
        };
        self.rr_floor.store(floor, Ordering::Relaxed);
        self.preempt_at.store(at, Ordering::Relaxed);
        // The kernel's `sched_can_stop_tick`: the periodic tick runs only while a
        // queued thread could take the CPU at a tick. Otherwise it stays stopped (timers
        // have one-shots of their own) and the next tick stops it if it runs.
        if at != u64::MAX && tick::is_stopped() {
            tick::start(self.tick_period());
        }
    }

    /// After a pick under a tick coarser than the fair class's base slice, or of a
    /// deadline thread: the end of the slice or budget gets a one-shot, so it does not
    /// depend on the tick.
    fn arm_slice_end(&self, l: &CpuLocal) {
        let at = self.preempt_at.load(Ordering::Relaxed);
        if self.tick_period().as_nanos() as u64 <= normal::BASE_SLICE
            && l.rq.dl.curr_end() == u64::MAX
            && at >= l.rq.normal.slice_end()
        {
            return; // the periodic tick ends slices in time
        }
        let now = self.now_ns();
        if at != 0 && at != u64::MAX && at > now {
            self.arm_timer(at.max(now + MIN_SLICE_ONESHOT_NS));
        }
    }

    /// Publishes the earliest timer deadline for the timer interrupt. Called wherever
    /// the timer heap changes (a push in `block_current`, expiries in
    /// `pull_wakeups_slow`) — not on every switch.
    fn publish_timers(&self, l: &CpuLocal) {
        if self.config.ticks() {
            let next = Self::next_timer_of(l).unwrap_or(u64::MAX);
            self.next_timer.store(next, Ordering::Relaxed);
        }
    }

    /// The earliest timer deadline or deadline-class release, if any.
    fn next_timer_of(l: &CpuLocal) -> Option<u64> {
        let release = l.rq.dl.next_release();
        match l.timers.next_deadline() {
            Some(t) => Some(t.min(release)),
            None => (release != u64::MAX).then_some(release),
        }
    }

    /// Whether the timer interrupt should switch: a queued task could take the CPU, a
    /// remote wakeup waits, a timer is due, or the epoll device wants a pass.
    /// ASYNC-SIGNAL-SAFE.
    pub(crate) fn switch_wanted(&self) -> bool {
        let now = self.now_ns();
        self.switch_due(now) || now >= self.net.poll_due()
    }

    /// [`Cpu::switch_wanted`] but for a deferred poll that is due.
    fn switch_due(&self, now: u64) -> bool {
        (self.preempt_at.load(Ordering::Relaxed) <= now
            && self.rr_floor.load(Ordering::Relaxed) <= now)
            || !self.wake_list.is_empty_relaxed()
            || self.next_timer.load(Ordering::Relaxed) <= now
            || self.net.interrupt_pending()
    }

    /// Whether the running thread is expected to switch by itself — it was picked less
    /// than [`net::DEFER_NS`] before `now` and its bursts are shorter than that — with
    /// the periodic tick, at most [`BACKSTOP_TICK_NS`] away, in case it does not: device
    /// work left to its switch is late by a tick at worst. ASYNC-SIGNAL-SAFE.
    pub(crate) fn switches_soon(&self, now: u64) -> bool {
        now < self.poll_waits_until.load(Ordering::Relaxed)
            && !tick::is_stopped()
            && self.tick_period().as_nanos() as u64 <= BACKSTOP_TICK_NS
    }

    /// The switch the timer interrupt would make is only for a deferred poll, and the
    /// running thread is expected to switch by itself ([`Cpu::switches_soon`]): that
    /// switch polls (`do_softirq`). A switch for the poll would cost it a preemption —
    /// at the 1 ms tick, an HTTP server's request handlers took one at nearly every
    /// tick — and gain the poll a few µs. ASYNC-SIGNAL-SAFE.
    pub(crate) fn poll_left_to_switch(&self) -> bool {
        let now = self.now_ns();
        self.switches_soon(now) && !self.switch_due(now)
    }

    /// Whether the running thread tends to compute for longer than a deferred poll may
    /// wait and has not had its retry this turn; takes the retry. ASYNC-SIGNAL-SAFE.
    pub(crate) fn take_compute_retry(&self) -> bool {
        self.compute_retry.swap(false, Ordering::Relaxed)
    }

    /// Whether a queued thread could take the CPU at some tick (the periodic tick runs).
    /// ASYNC-SIGNAL-SAFE.
    pub(crate) fn has_contender(&self) -> bool {
        self.preempt_at.load(Ordering::Relaxed) != u64::MAX
    }

    /// Whether the carrier waits in its idle loop (or is about to).
    pub(crate) fn is_idle(&self) -> bool {
        self.idle.load(Ordering::SeqCst)
    }

    /// Sends the carrier a `SIGALRM` (an IPI, or the epoll device's interrupt). Any
    /// thread.
    pub(crate) fn interrupt(&self) {
        let tid = self.tid.load(Ordering::Acquire);
        if tid != 0 {
            // SAFETY: tgkill with plain integers; a stale tid signals nobody.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGALRM) };
        }
    }

    /// The earliest deadline the clock-event device must serve: the timer wheel's next
    /// expiry, the epoll device's next deferred poll, or the end of the running fair
    /// thread's slice if it is still ahead (one that has passed is the tick's business,
    /// and must not hide a timer behind it). ASYNC-SIGNAL-SAFE.
    #[inline]
    pub(crate) fn next_event(&self) -> u64 {
        self.next_event_polling_at(self.net.poll_due())
    }

    /// [`Cpu::next_event`] with the deferred poll due at `poll`.
    #[inline]
    fn next_event_polling_at(&self, poll: u64) -> u64 {
        let next = self.next_timer.load(Ordering::Relaxed).min(poll);
        match self.preempt_at.load(Ordering::Relaxed) {
            at if at < next && at > self.now_ns() => at,
            _ => next,
        }
    }

    /// Tickless full: called by the handler when nothing else can run. Stops the
    /// periodic tick — keeping a one-shot for the next timer, if one is pending further
    /// than a period away; a nearer one gets its own one-shot and the tick keeps going —
    /// then re-checks the wake list against remote wakers (the other half is in `kick`).
    /// ASYNC-SIGNAL-SAFE.
    pub(crate) fn stop_tick_if_alone(&self) {
        if !self.config.nohz_full {
            // Periodic while busy: the tick keeps running; a timer before the next tick
            // still gets its one-shot.
            self.arm_timer_before_next_tick();
            return;
        }
        let next = self.next_event();
        if next == u64::MAX {
            tick::stop();
        } else {
            let now = self.now_ns();
            // A tick that came a hair before its timer (the device rounds, or the advance
            // brought it early under a model that does not wait for it) lands here too:
            // within the advance, the re-arm is exact, or the interrupt would repeat.
            let adv = self.timer_advance.load(Ordering::Relaxed);
            let left = next.saturating_sub(now);
            let at = if left > adv { next - adv } else { next };
            let delay = Duration::from_nanos(at.saturating_sub(now));
            self.oneshot_at.store(at, Ordering::Relaxed);
            if Duration::from_nanos(left) < self.tick_period() {
                tick::oneshot_then_periodic(delay, self.tick_period());
                return;
            }
            tick::stop_until(delay);
        }
        fence(Ordering::SeqCst);
        if !self.wake_list.is_empty() {
            tick::start(self.tick_period());
        }
    }

    /// A periodic tick that is about to switch for another reason: a timer due before
    /// the next tick gets a one-shot of its own (the device fires at whichever comes
    /// first, as an hrtimer would). A deferred poll does not while the running thread's
    /// own switch is expected to take it ([`Cpu::poll_left_to_switch`]): that one-shot
    /// would only find the poll left to the switch — two re-programmings and an
    /// interrupt per tick for nothing (an HTTP server at the 1 ms tick: a third of its
    /// `timer_settime` calls). The periodic tick backs the poll up. ASYNC-SIGNAL-SAFE.
    pub(crate) fn arm_timer_before_next_tick(&self) {
        let now = self.now_ns();
        let poll = if self.switches_soon(now) {
            u64::MAX
        } else {
            self.net.poll_due()
        };
        let next = self.next_event_polling_at(poll);
        if next == u64::MAX {
            return;
        }
        if next > now && next - now < self.tick_period().as_nanos() as u64 {
            self.arm_timer(next);
        }
    }

    /// After expiries, or when leaving idle: the earliest timer left gets a one-shot if
    /// the device would fire later — stopped, or its next tick beyond the timer (a
    /// running tick only looks for timers when it fires, which may be most of a period
    /// after a deadline that was a few µs behind the one just served).
    fn arm_next_timer(&self, l: &CpuLocal) {
        if self.config.ticks()
            && let Some(next) = Self::next_timer_of(l)
        {
            self.arm_timer(next);
        }
    }

    /// A stopped device (tickless full) whose one-shot served something else — the epoll
    /// device's deferred poll — is programmed again for the earliest event left.
    /// Carrier only.
    pub(crate) fn rearm_stopped_tick(&self) {
        let next = self.next_event();
        if self.config.ticks() && tick::is_stopped() && next != u64::MAX {
            self.arm_timer(next);
        }
    }

    /// Programs the clock-event device for the timer deadline `deadline` (CPU clock), if
    /// that comes before the device's next expiry — a poor man's hrtimer.
    ///
    /// **Timer advance.** On a virtual machine a timer's signal reaches a busy thread
    /// some 15–25 µs after its expiry (the hypervisor's timer and interrupt injection;
    /// KVM's `lapic_timer_advance_ns` compensates for the same delay one level down). So
    /// the one-shot is programmed `timer_advance` early, the handler learns that delay
    /// from every such expiry ([`Cpu::timer_interrupt`]), and a handler that arrives
    /// early for a wakeup it is about to preempt for spins the remainder
    /// ([`Cpu::await_imminent_timer`]). Nobody wakes early; the spin is at most the
    /// advance, paid by the thread about to be preempted anyway. ASYNC-SIGNAL-SAFE.
    ///
    /// Armed from inside the advance (the handler came early, and could not act: atomic
    /// context, or a slice not yet over), the one-shot goes to the deadline itself: one
    /// more delivery delay late, rather than an interrupt at once that comes early again
    /// and arms the next — a storm of one every ~20 µs (each costing about that much
    /// CPU here) through every non-preemptible section near a deadline.
    pub(crate) fn arm_timer(&self, deadline: u64) {
        let now = self.now_ns();
        let early = deadline.saturating_sub(self.timer_advance.load(Ordering::Relaxed));
        let at = if early > now {
            early
        } else {
            deadline.max(now)
        };
        if tick::fire_by(Duration::from_nanos(at - now), self.tick_period()) {
            self.oneshot_at.store(at, Ordering::Relaxed);
        }
    }

    /// The handler's first step: if this is the expiry of a one-shot programmed for a
    /// timer, learn the delivery delay (an exponentially weighted average, 1/8 per
    /// sample, capped at [`MAX_TIMER_ADVANCE_NS`]; a VM stall longer than that is not a
    /// sample). ASYNC-SIGNAL-SAFE.
    pub(crate) fn timer_interrupt(&self) {
        let at = self.oneshot_at.load(Ordering::Relaxed);
        if at == 0 {
            return;
        }
        let now = self.now_ns();
        if now < at {
            return;
        }
        self.oneshot_at.store(0, Ordering::Relaxed);
        let late = now - at;
        if late <= 2 * MAX_TIMER_ADVANCE_NS {
            let adv = self.timer_advance.load(Ordering::Relaxed) as i64;
            let adv = adv + (late as i64 - adv) / 8;
            let adv = adv.clamp(0, MAX_TIMER_ADVANCE_NS as i64) as u64;
            self.timer_advance.store(adv, Ordering::Relaxed);
        }
    }

    /// Spins until the earliest timer is due if it is due within the advance: the
    /// interrupt was programmed early on purpose (see [`Cpu::arm_timer`]). Called only
    /// when the handler could preempt for it. Bounded by [`MAX_TIMER_ADVANCE_NS`].
    /// ASYNC-SIGNAL-SAFE.
    pub(crate) fn await_imminent_timer(&self) {
        let next = self.next_event();
        if next == u64::MAX {
            return;
        }
        let adv = self.timer_advance.load(Ordering::Relaxed);
        let now = self.now_ns();
        if next > now && next - now <= adv {
            while self.now_ns() < next {
                std::hint::spin_loop();
            }
        }
    }

    /// Queues a task woken or spawned on this CPU; returns whether it was queued (not
    /// running, not queued already). Publishes the queue length only: the caller decides
    /// about preemption and the tick.
    ///
    /// # Safety
    /// Carrier of this CPU, preemption disabled; `t` belongs to this CPU and is alive.
    unsafe fn enqueue_task(&self, l: &mut CpuLocal, t: *const Task) -> bool {
        // SAFETY: forwarded.
        unsafe { self.enqueue_woken(l, t, None) }
    }

    /// [`Cpu::enqueue_task`] for a wakeup that happened at `woken` (CPU clock) — a
    /// timer's expiry, which the scheduler may process late (the expiry waits for the
    /// end of a non-preemptible section) — so a deadline thread's wakeup rule sees the
    /// time it woke, as a hard interrupt's wakeup would, not the time it was queued.
    ///
    /// # Safety
    /// As for [`Cpu::enqueue_task`].
    unsafe fn enqueue_woken(&self, l: &mut CpuLocal, t: *const Task, woken: Option<u64>) -> bool {
        // SAFETY: per the contract.
        unsafe {
            if t == l.curr || (*t).se().on_rq {
                return false;
            }
            if let Some(dl) = &mut (*t).se().dl {
                if dl.throttled {
                    return false; // queued at its release
                }
                if dl.blocked {
                    dl.wake(woken.unwrap_or_else(|| self.now_ns()));
                }
            }
            l.rq.enqueue(t, self.acct_ns());
        }
        self.queued.store(l.rq.len(), Ordering::Relaxed);
        true
    }

    /// Queues a task woken or spawned on this CPU outside `schedule`. Under `Full` a
    /// task that outranks the running one preempts it at the `enable` that ends the
    /// caller's section (wakeup preemption: now, not at the next tick); otherwise the
    /// task may need the tick (a round-robin peer of the running one).
    ///
    /// # Safety
    /// As for [`Cpu::enqueue_task`].
    unsafe fn activate(&self, l: &mut CpuLocal, t: *const Task) {
        // SAFETY: per the contract.
        if !unsafe { self.enqueue_task(l, t) } {
            return;
        }
        // SAFETY: both tasks are alive and ours.
        let preempts = self.config.model >= Model::Full
            && !l.curr.is_null()
            && unsafe {
                let (p, curr) = ((*t).se().prio, (*l.curr).se().prio);
                p > curr
                    || matches!((&(*t).se().dl, &(*l.curr).se().dl),
                        (Some(a), Some(b)) if a.deadline < b.deadline)
                    || p == Priority::DEFAULT
                        && curr == Priority::DEFAULT
                        && l.rq.normal.wakeup_preempts(t, self.acct_ns())
            };
        if preempts {
            // The switch publishes the queue for the task it picks.
            preempt::set_need_resched();
        } else {
            self.publish_queued(l, l.curr);
            self.arm_slice_end(l);
        }
    }

    /// A deadline thread stopping runnable: if it yielded (its job is done) or spent its
    /// budget, it is replenished and, if its next period has not begun, throttled until
    /// then. Returns whether it was throttled (and so must not be queued).
    ///
    /// # Safety
    /// Carrier of this CPU, preemption disabled; `t` is its running task, just put back.
    unsafe fn throttle_if_spent(&self, l: &mut CpuLocal, t: *const Task, stop: Stop) -> bool {
        // SAFETY: per the contract.
        let Some(dl) = (unsafe { &mut (*t).se().dl }) else {
            return false;
        };
        if stop == Stop::Yielded {
            dl.runtime_left = 0;
        }
        if !dl.spent() || !dl.replenish(self.now_ns()) {
            return false;
        }
        l.rq.dl.throttle(t);
        bump(&self.stats.dl_throttled);
        self.publish_timers(l);
        self.arm_next_timer(l);
        true
    }

    /// Moves wakeups from the wake list and due timers onto the run queue.
    ///
    /// # Safety
    /// Carrier of this CPU, preemption disabled.
    #[inline]
    unsafe fn pull_wakeups(&self, l: &mut CpuLocal) {
        if !self.wake_list.is_empty_relaxed() || !l.timers.is_empty() || l.rq.dl.has_throttled() {
            // SAFETY: forwarded.
            unsafe { self.pull_wakeups_slow(l) }
        }
    }

    /// # Safety
    /// As for `pull_wakeups`.
    #[inline(never)]
    unsafe fn pull_wakeups_slow(&self, l: &mut CpuLocal) {
        for t in self.wake_list.take_all() {
            // Clear first, then look: a waker that CASes after our look finds the flag
            // clear and pushes again (module docs).
            t.wake_queued.store(false, Ordering::SeqCst);
            if t.state.load(Ordering::SeqCst) == RUNNING {
                // SAFETY: t is alive (we hold the entry's reference) and ours.
                unsafe { self.enqueue_task(l, Arc::as_ptr(&t)) };
                l.trace.record(self, Event::Wakeup(t.id.as_u64().get()));
            }
        }
        if l.timers.is_empty() && !l.rq.dl.has_throttled() {
            return; // (the common remote wakeup: no clock read)
        }
        let now = self.now_ns();
        let mut expired = false;
        while let Some(t) = l.rq.dl.take_released(now) {
            // Replenished and released: queued by its new deadline.
            expired = true;
            // SAFETY: a throttled task is alive (the scheduler's reference) and ours.
            unsafe { l.rq.enqueue(t, self.acct_ns()) };
        }
        while let Some((task, token, due)) = l.timers.pop_expired(now) {
            expired = true;
            // SAFETY: the task is alive (the timer held a reference) and ours.
            let current_token = unsafe { task.se().timer_token };
            if token == current_token && wake_cas(&task) {
                // SAFETY: as above.
                unsafe { self.enqueue_woken(l, Arc::as_ptr(&task), Some(due)) };
                bump(&self.stats.wakeups_local);
                l.trace.record(self, Event::Wakeup(task.id.as_u64().get()));
            }
        }
        if !expired {
            return;
        }
        self.publish_timers(l);
        self.arm_next_timer(l);
    }

    /// Rings the doorbell if the carrier is (about to be) idle.
    fn kick(&self) {
        // Orders the caller's push (or shutdown store) before the idle load: the other
        // half of the fence in the idle loop.
        fence(Ordering::SeqCst);
        if self.idle.load(Ordering::SeqCst) && self.idle.swap(false, Ordering::SeqCst) {
            sys::eventfd_signal(&self.doorbell);
        } else if self.config.ticks() && tick::is_stopped() && !self.idle.load(Ordering::SeqCst) {
            // Busy with a lone thread and tickless: nobody would look at the wake list
            // until that thread blocks. Interrupt it (our IPI).
            self.interrupt();
        }
    }

    /// Queues a task from a thread that is not this CPU's carrier.
    fn wake_remote(&self, t: &Arc<Task>) {
        if !t.wake_queued.swap(true, Ordering::SeqCst) {
            self.wake_list.push(t.clone());
        }
        bump_shared(&self.stats.wakeups_remote);
        self.kick();
    }

    /// Asks the carrier to finish once its last green thread has.
    pub(crate) fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.kick();
    }
}

/// Adds one to a counter several threads may write.
pub(crate) fn bump_shared(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The waker's half of the protocol: `BLOCKED → RUNNING`; true if this call owns the
/// wakeup.
fn wake_cas(t: &Task) -> bool {
    t.state
        .compare_exchange(BLOCKED, RUNNING, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Wakes `t` if it is blocked. Callable from any thread.
pub(crate) fn wake_up(t: &Arc<Task>) {
    if !wake_cas(t) {
        return;
    }
    match this_cpu() {
        Some(cpu) if ptr::eq(cpu, &*t.cpu) => {
            preempt::disable_raw();
            // SAFETY: we are t's carrier with preemption disabled; t is alive.
            unsafe {
                let l = cpu.local();
                cpu.activate(l, Arc::as_ptr(t));
                l.trace.record(cpu, Event::Wakeup(t.id.as_u64().get()));
            }
            bump(&cpu.stats.wakeups_local);
            preempt::enable();
        }
        _ => t.cpu.wake_remote(t),
    }
}

/// Wakes `t`, a task of the calling carrier, from inside the scheduler (the epoll
/// device's softirq): it is only queued — the pick that follows sees it — with no
/// `NEED_RESCHED` for the task being switched out. With `irq` it runs at
/// [`Priority::IRQ`] until it next blocks (the device without NAPI).
///
/// # Safety
/// The carrier of `t`'s CPU, preemption disabled, no reference into its local state
/// held.
pub(crate) unsafe fn wake_up_in_scheduler(t: &Arc<Task>, irq: bool) {
    if !wake_cas(t) {
        return;
    }
    let cpu = &*t.cpu;
    // SAFETY: per the contract; `l` dies at the end of this block.
    unsafe {
        let l = cpu.local();
        if irq {
            // Off every queue (it was blocked), so its level may change in place.
            let se = t.se();
            se.irq_saved.get_or_insert(se.prio);
            se.prio = Priority::IRQ;
        }
        cpu.enqueue_task(l, Arc::as_ptr(t));
        l.trace.record(cpu, Event::Wakeup(t.id.as_u64().get()));
    }
    bump(&cpu.stats.wakeups_local);
}

/// Sets the effective priority of `t` (priority inheritance), requeueing it if it is
/// queued. If the running task now ranks below a queued one, asks for a switch at the
/// end of the caller's section (under `Full`; the preemptive models), as a wakeup would.
///
/// # Safety
/// Carrier of `t`'s CPU, preemption disabled; `t` is alive.
pub(crate) unsafe fn set_effective_prio(t: *const Task, prio: Priority) {
    // SAFETY: per the contract.
    unsafe {
        let cpu = &*(*t).cpu;
        let l = cpu.local();
        let se = (*t).se();
        if let Some(saved) = &mut se.irq_saved {
            // At interrupt level until it blocks; it returns to `prio` then.
            *saved = prio;
            return;
        }
        if se.prio == prio {
            return;
        }
        if se.on_rq {
            l.rq.remove(t);
            se.prio = prio;
            l.rq.enqueue(t, cpu.acct_ns());
        } else {
            se.prio = prio;
        }
        if cpu.config.model >= Model::Full
            && !l.curr.is_null()
            && l.rq.top_prio() > Some((*l.curr).se().prio.get() as usize)
        {
            preempt::set_need_resched();
        }
        if !l.curr.is_null() {
            cpu.publish_queued(l, l.curr);
        }
    }
}

/// Switches to the next runnable task (or the idle loop).
///
/// # Safety
/// Called by the current green thread of `cpu`, with preemption disabled by exactly
/// `SCHED_OFFSET`, after setting its own state (module docs).
pub(crate) unsafe fn schedule(cpu: &Cpu) {
    // SAFETY: forwarded.
    unsafe { schedule_as(cpu, Switch::Voluntary) }
}

/// Why the running thread enters the scheduler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Switch {
    /// It blocks, sleeps or exits (its state says which; a blocker woken meanwhile is
    /// `RUNNING` again and simply continues).
    Voluntary,
    /// `yield_now`: it stays runnable and lets the others go first.
    Yield,
    /// The timer interrupt or a wakeup preempted it.
    Involuntary,
}

/// `schedule` for a thread the timer interrupt preempted (counted as involuntary).
///
/// # Safety
/// As for [`schedule`]; called only from the preemption stub's entry.
pub(crate) unsafe fn schedule_involuntary(cpu: &Cpu) {
    // SAFETY: forwarded.
    unsafe { schedule_as(cpu, Switch::Involuntary) }
}

#[inline]
unsafe fn schedule_as(cpu: &Cpu, how: Switch) {
    debug_assert_eq!(preempt::count(), SCHED_OFFSET);
    if crate::rt::in_forked_child() {
        debug::fatal(crate::rt::FORKED_MSG);
    }
    let (from, to) = {
        // SAFETY: carrier, preemption disabled; `l` dies before the switch.
        let l = unsafe { cpu.local() };
        // Cleared before looking for work, never after: a timer interrupt that finds a
        // due timer or a remote wakeup after this point sets it again, and the `enable`
        // that ends this section switches; cleared after the look, its request (and
        // the one-shot that carried it) would be lost until the next event.
        preempt::clear_need_resched();
        // The epoll device's softirq, before the look (it takes no local reference
        // while `l` is unused).
        // SAFETY: carrier, preemption disabled.
        unsafe { net::do_softirq(cpu) };
        // Remote wakeups are interrupt work too (the kernel queues them to the target
        // CPU's IPI): not the switched-out thread's time.
        let outer = cpu.irq_time_enter();
        // SAFETY: as above.
        unsafe { cpu.pull_wakeups(l) };
        if outer {
            cpu.irq_time_exit();
        }
        let now = cpu.acct_ns();
        let prev = l.curr;
        debug_assert!(!prev.is_null());
        // SAFETY: prev is the running task: alive and ours.
        let state = unsafe { (*prev).state.load(Ordering::SeqCst) };
        let stop = match (how, state) {
            (Switch::Involuntary, _) => Stop::Preempted,
            (Switch::Yield, _) => Stop::Yielded,
            (Switch::Voluntary, RUNNING) => Stop::Woken,
            (Switch::Voluntary, DEAD) => Stop::Exited,
            (Switch::Voluntary, _) => Stop::Blocked,
        };
        // SAFETY: as above.
        unsafe { l.rq.put_prev(prev, now, stop) };
        // SAFETY: as above.
        if stop.runnable() && !unsafe { cpu.throttle_if_spent(l, prev, stop) } {
            // SAFETY: as above; the running task is never on the queue.
            unsafe { l.rq.enqueue(prev, now) };
        } else {
            // SAFETY: as above.
            let se = unsafe { (*prev).se() };
            if let Some(p) = se.irq_saved.take() {
                // Blocked: its interrupt-level run is over.
                se.prio = p;
            }
        }
        // SAFETY: carrier, preemption disabled.
        let next = unsafe { l.rq.pick_next(now) }.unwrap_or(ptr::null());
        cpu.picked(l, next, now);
        if next == prev {
            return;
        }
        let involuntary = stop == Stop::Preempted;
        bump(if involuntary {
            &cpu.stats.switches_involuntary
        } else {
            &cpu.stats.switches_voluntary
        });
        // SAFETY: as above.
        TaskStats::add(
            unsafe {
                if involuntary {
                    &(*prev).stats.involuntary
                } else {
                    &(*prev).stats.voluntary
                }
            },
            1,
        );
        l.trace.record(
            cpu,
            Event::Switch {
                prev: task_id(prev),
                next: task_id(next),
                class: trace::class_of(next),
                reason: trace::Reason::from(stop),
            },
        );
        l.prev = prev;
        l.curr = next;
        cpu.running.store(next.cast_mut(), Ordering::Relaxed);
        // SAFETY: prev and next are alive tasks of this CPU.
        let from = unsafe { &raw mut (*prev).se().ctx };
        let to = if next.is_null() {
            &raw const l.idle_ctx
        } else {
            // SAFETY: as above.
            unsafe { &raw const (*next).se().ctx }
        };
        (from, to)
    };
    // SAFETY: `to` was saved by a switch or built by init_stack and nobody else resumes
    // it (it was just dequeued, or is the idle loop that only we switch to); `from` is
    // the running task's own context, alive while it is. Invariant 1 holds per our
    // contract.
    unsafe { arch::switch(from, to) };
    // SAFETY: we were just switched back to; carrier, preemption disabled.
    unsafe { finish_task_switch(cpu) };
}

fn task_id(t: *const Task) -> u64 {
    if t.is_null() {
        0
    } else {
        // SAFETY: callers pass live tasks.
        unsafe { (*t).id.as_u64().get() }
    }
}

/// Completes a switch on the side that was switched to: if the task switched away
/// from has died, take back its stack and drop the scheduler's reference.
///
/// # Safety
/// Called right after a switch returns (or first thing in a new thread), on the
/// carrier, preemption disabled.
pub(crate) unsafe fn finish_task_switch(cpu: &Cpu) {
    // SAFETY: per the contract.
    let l = unsafe { cpu.local() };
    let prev = std::mem::replace(&mut l.prev, ptr::null());
    if prev.is_null() {
        return;
    }
    // SAFETY: prev is alive: the scheduler's reference is released only below.
    if unsafe { (*prev).state.load(Ordering::Relaxed) } != DEAD {
        return;
    }
    // SAFETY: prev is dead and switched out: nothing runs on its stack any more.
    if let Some(stack) = unsafe { (*prev).se().stack.take() } {
        l.stacks.put(stack);
    }
    // SAFETY: as above.
    if let Some(dl) = unsafe { &(*prev).se().dl } {
        cpu.dl_bw.release(&dl.params);
    }
    bump(&cpu.stats.exited);
    cpu.nr_live.fetch_sub(1, Ordering::Release);
    // SAFETY: this is the scheduler's reference, taken with Arc::into_raw at spawn.
    drop(unsafe { Arc::from_raw(prev) });
}

/// The first thing a new green thread does: complete the switch that started it and
/// leave the scheduler's preemption-disable section.
pub(crate) fn enter_new_thread() {
    let Some(cpu) = this_cpu() else {
        debug::fatal("preempt: a green thread started outside its carrier");
    };
    // SAFETY: first instructions of a new thread, right after the switch to it; the
    // switcher left preemption disabled at SCHED_OFFSET.
    unsafe { finish_task_switch(cpu) };
    preempt::enable();
}

/// Yields the CPU to the next runnable thread of equal or higher priority.
pub(crate) fn yield_current(cpu: &Cpu) {
    preempt::disable_raw();
    // SAFETY: current green thread of `cpu`; count == SCHED_OFFSET (asserted inside);
    // our state is RUNNING, so this is a yield.
    unsafe { schedule_as(cpu, Switch::Yield) };
    preempt::enable();
}

/// The kernel's `cond_resched()`: switch if the timer interrupt asked for it and the
/// caller may be preempted.
pub(crate) fn cond_resched() {
    if preempt::raw() == preempt::NEED_RESCHED {
        preempt_schedule();
    }
}

/// Called when a preemption-disable section ends with `NEED_RESCHED` set.
///
/// Never switches while the caller unwinds: the panic count is per OS thread, so every
/// other thread of the CPU would see `std::thread::panicking()` (and the timer
/// interrupt would defer all preemption) until it resumed. `NEED_RESCHED` stays set for
/// the next chance after the unwinding.
pub(crate) fn preempt_schedule() {
    if let Some(cpu) = this_cpu()
        && cpu.has_current()
        && !std::thread::panicking()
    {
        preempt::disable_raw();
        loop {
            // SAFETY: as in yield_current.
            unsafe { schedule_as(cpu, Switch::Involuntary) };
            // A tick that landed inside the scheduler asked again.
            if !preempt::need_resched() {
                break;
            }
        }
        preempt::enable_no_resched();
    } else if !std::thread::panicking() {
        preempt::clear_need_resched();
    }
}

/// Blocks the current thread until a waker makes it `RUNNING`, unless `cancel` says
/// the condition already holds once `BLOCKED` is published (protocol step 1). With a
/// `timeout` (nanoseconds on this CPU's clock) a timer wakes it then at the latest; the
/// timer is armed after `BLOCKED` is published, so its wakeup cannot be lost.
///
/// Spurious returns are possible; callers loop on their own condition.
pub(crate) fn block_current(
    cpu: &Cpu,
    t: *const Task,
    timeout: Option<u64>,
    cancel: impl FnOnce() -> bool,
) {
    preempt::disable_raw();
    // SAFETY: t is the current task, alive.
    let task = unsafe { &*t };
    task.state.store(BLOCKED, Ordering::SeqCst);
    if let Some(deadline) = timeout {
        // SAFETY: carrier, preemption disabled; t is current, so alive and ours.
        unsafe {
            let se = task.se();
            se.timer_token += 1;
            let token = se.timer_token;
            Arc::increment_strong_count(t);
            let l = cpu.local();
            l.timers.push(deadline, Arc::from_raw(t), token);
            cpu.publish_timers(l);
        }
        // A busy CPU hears about the deadline from its tick; program the device
        // one-shot if the deadline comes before the next tick would (a poor man's
        // hrtimer). An idle CPU stops the tick and waits with the deadline instead.
        if cpu.config.ticks() {
            cpu.arm_timer(deadline);
        }
    }
    if cancel() {
        task.state.store(RUNNING, Ordering::SeqCst);
    } else {
        // SAFETY: current green thread; count == SCHED_OFFSET; state BLOCKED (or already
        // RUNNING again if a waker got in, which schedule() treats as a yield).
        unsafe { schedule(cpu) };
    }
    preempt::enable();
}

/// Sets the current thread's nice value (the fair class's weight).
pub(crate) fn set_nice_current(cpu: &Cpu, t: *const Task, nice: i8) {
    preempt::disable_raw();
    // SAFETY: carrier, preemption disabled; t is the current task, alive and ours.
    unsafe {
        let l = cpu.local();
        let now = cpu.acct_ns();
        l.rq.normal.set_nice(t, nice, now);
        (*t).stats
            .nice
            .store(nice, std::sync::atomic::Ordering::Relaxed);
        cpu.picked(l, t, now);
    }
    preempt::enable();
}

/// `park`: consume the token or block until `unpark` (or the deadline).
pub(crate) fn park_current(cpu: &Cpu, t: *const Task, deadline: Option<u64>) {
    use crate::task::{PARK_EMPTY, PARK_NOTIFIED};
    // SAFETY: t is the current task, alive.
    let task = unsafe { &*t };
    if task.park_token.swap(PARK_EMPTY, Ordering::SeqCst) == PARK_NOTIFIED {
        return;
    }
    block_current(cpu, t, deadline, || {
        task.park_token.swap(PARK_EMPTY, Ordering::SeqCst) == PARK_NOTIFIED
    });
}

/// `unpark`: set the token, then wake (protocol step 2).
pub(crate) fn unpark(t: &Arc<Task>) {
    use crate::task::PARK_NOTIFIED;
    if t.park_token.swap(PARK_NOTIFIED, Ordering::SeqCst) != PARK_NOTIFIED {
        wake_up(t);
    }
}

/// Ends the current green thread. Its stack is released by whoever runs next.
pub(crate) fn exit_current() -> ! {
    let (cpu, t) = current_or_panic("exit");
    preempt::disable_raw();
    // SAFETY: t is the current task.
    unsafe {
        if (*t).held_mutexes.get() > 0 {
            // Exiting with a mutex held (a leaked guard): the mutexes keep pointing
            // at us, so we stay allocated, and their waiters take over (owner died).
            Arc::increment_strong_count(t);
            crate::sync::owner_exiting(t);
        }
        (*t).state.store(DEAD, Ordering::SeqCst);
        let l = cpu.local();
        l.trace.record(cpu, Event::Exit((*t).id.as_u64().get()));
    }
    // SAFETY: current green thread; count == SCHED_OFFSET; state DEAD.
    unsafe { schedule(cpu) };
    debug::fatal("preempt: a dead green thread was resumed");
}

/// Creates a green thread on `cpu` and makes it runnable.
///
/// `make_ctx` receives the new stack and lays out its start record and first frame.
/// Called from `cpu`'s carrier (local spawn) or from any other thread (remote spawn,
/// through the wake list).
pub(crate) fn spawn_on(
    cpu: &Arc<Cpu>,
    spec: Spec,
    make_ctx: impl FnOnce(&Stack) -> io::Result<Context>,
) -> io::Result<Arc<Task>> {
    // Admission first: a refused deadline thread costs nothing.
    if let Some(p) = &spec.dl {
        cpu.dl_bw.admit(p, cpu.id)?;
    }
    let dl = spec.dl;
    let spawned = spawn_admitted(cpu, spec, make_ctx);
    if let (Err(_), Some(p)) = (&spawned, &dl) {
        cpu.dl_bw.release(p);
    }
    spawned
}

/// What a new thread is: its name, scheduling and stack size.
pub(crate) struct Spec {
    pub(crate) name: Option<Box<str>>,
    pub(crate) prio: Priority,
    pub(crate) nice: i8,
    /// A deadline reservation (the thread then runs in the deadline class).
    pub(crate) dl: Option<DlParams>,
    pub(crate) stack_size: usize,
}

fn spawn_admitted(
    cpu: &Arc<Cpu>,
    spec: Spec,
    make_ctx: impl FnOnce(&Stack) -> io::Result<Context>,
) -> io::Result<Arc<Task>> {
    let Spec {
        name,
        prio,
        nice,
        dl,
        stack_size,
    } = spec;
    let prio = if dl.is_some() {
        Priority::DEADLINE
    } else {
        prio
    };
    let local = this_cpu().is_some_and(|c| ptr::eq(c, &**cpu));
    let stack = if local {
        preempt::disable_raw();
        // SAFETY: our carrier, preemption disabled; `l` dies at once.
        let l = unsafe { cpu.local() };
        let s = l.stacks.get(stack_size);
        // Room in the run queue for every live thread, so queueing does not allocate.
        let live = cpu.nr_live.load(Ordering::Relaxed) + 1;
        l.rq.normal.reserve(live);
        if dl.is_some() {
            l.rq.dl.reserve(live);
        }
        preempt::enable_no_resched();
        s?
    } else {
        Stack::new(stack_size)?
    };
    let ctx = make_ctx(&stack)?;
    let task = Arc::new(Task::new(name, cpu.clone(), prio, nice, dl, ctx, stack));
    cpu.nr_live.fetch_add(1, Ordering::Relaxed);
    let sched_ref = Arc::into_raw(task.clone());
    if local {
        preempt::disable_raw();
        bump(&cpu.stats.spawned);
        // SAFETY: our carrier, preemption disabled; the task is new, alive and ours.
        unsafe {
            let l = cpu.local();
            l.trace
                .record(cpu, Event::Spawn(task.id.as_u64().get(), prio.get()));
            cpu.activate(l, sched_ref);
        }
        // A new thread that outranks its parent runs now under `Full`.
        preempt::enable();
    } else {
        bump_shared(&cpu.stats.spawned);
        cpu.wake_remote(&task);
    }
    Ok(task)
}

/// The carrier's body: run green threads until shutdown is requested and none is left.
pub(crate) fn run_carrier(cpu: Arc<Cpu>) {
    THIS_CPU.with(|c| c.set(Arc::as_ptr(&cpu)));
    // SAFETY: gettid has no preconditions.
    cpu.tid.store(unsafe { libc::gettid() }, Ordering::Release);
    sys::set_timer_slack_min();
    cpu.sync_clocks(cpu.now_ns());
    if cpu.config.ticks() {
        irq::become_carrier();
        tick::start(cpu.tick_period());
    } else {
        irq::set_sigalrm_blocked(true);
    }
    let _altstack = debug::overflow::AltStack::ensure();
    // The idle loop is the kernel's idle task: it runs with preemption disabled, at the
    // scheduler's offset, so it may switch.
    preempt::disable_raw();
    idle_loop(&cpu);
    // Every thread has finished. Timer entries (lazily deleted, so some may outlive the
    // sleeps that armed them) and stale wake-list entries hold tasks, and tasks hold
    // this Cpu: drop them now, or the Cpu — with its eventfd and epoll fds — would be
    // kept alive by that cycle after the runtime is gone.
    // SAFETY: carrier, preemption still disabled; nothing runs any more.
    let l = unsafe { cpu.local() };
    l.timers.clear();
    l.trace.drain(&cpu);
    drop(cpu.wake_list.take_all());
    preempt::enable_no_resched();
    if cpu.config.ticks() {
        irq::leave_carrier();
    }
    THIS_CPU.with(|c| c.set(ptr::null()));
}

fn idle_loop(cpu: &Cpu) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: carrier, preemption disabled, no local reference held.
        unsafe { net::do_softirq(cpu) };
        let next = {
            // SAFETY: carrier, preemption disabled; `l` dies before the switch.
            let l = unsafe { cpu.local() };
            // SAFETY: as above.
            unsafe { cpu.pull_wakeups(l) };
            let now = cpu.acct_ns();
            // SAFETY: as above.
            let next = unsafe { l.rq.pick_next(now) };
            cpu.picked(l, next.unwrap_or(ptr::null()), now);
            next
        };
        if let Some(next) = next {
            // SAFETY: as above.
            let l = unsafe { cpu.local() };
            l.prev = ptr::null();
            l.curr = next;
            cpu.running.store(next.cast_mut(), Ordering::Relaxed);
            l.trace.record(
                cpu,
                Event::Switch {
                    prev: 0,
                    next: task_id(next),
                    class: trace::class_of(next),
                    reason: trace::Reason::Idle,
                },
            );
            let from = &raw mut l.idle_ctx;
            // SAFETY: next was just dequeued: alive, ours, and resumed by nobody else.
            let to = unsafe { &raw const (*next).se().ctx };
            // SAFETY: as in schedule(); the idle context lives as long as the Cpu.
            unsafe { arch::switch(from, to) };
            // SAFETY: switched back to the idle loop.
            unsafe { finish_task_switch(cpu) };
            continue;
        }
        let finished =
            || cpu.shutdown.load(Ordering::SeqCst) && cpu.nr_live.load(Ordering::Acquire) == 0;
        if finished() {
            return;
        }
        // Only the runtime's own threads are left, and it is shutting down.
        let only_daemons = || {
            let daemons = cpu.daemons.load(Ordering::SeqCst);
            daemons > 0
                && cpu.shutdown.load(Ordering::SeqCst)
                && cpu.nr_live.load(Ordering::Acquire) == daemons
        };
        if only_daemons() {
            // Only the runtime's own threads are left: ask them to exit.
            cpu.daemons.store(0, Ordering::SeqCst);
            // SAFETY: carrier, preemption disabled, no local reference held.
            unsafe { net::stop_daemons(cpu) };
            continue;
        }
        // SAFETY: carrier, preemption disabled.
        let l = unsafe { cpu.local() };
        debug_assert!(l.rq.is_empty());
        l.trace.drain(cpu);
        // Doorbell protocol: publish idleness, then look once more (at the wake list and
        // at the shutdown flag, which `request_shutdown` sets before it rings: a shutdown
        // requested since the look above, while the carrier was not yet idle, rang no
        // bell — with only daemons left, nothing else would wake it).
        cpu.idle.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !cpu.wake_list.is_empty() || finished() || only_daemons() {
            cpu.idle.store(false, Ordering::SeqCst);
            continue;
        }
        let timeout = {
            // SAFETY: carrier, preemption disabled.
            let l = unsafe { cpu.local() };
            Cpu::next_timer_of(l).map(|d| Duration::from_nanos(d.saturating_sub(cpu.now_ns())))
        };
        bump(&cpu.stats.idle_waits);
        net::idle_enter(cpu);
        // Tickless idle, lazily: the device keeps running into the wait, and the first
        // tick that finds the carrier idle stops it (`Cpu::idle_tick`). Stopping it here
        // and starting it again as the wait ends cost two re-programmings, 5–6 µs each
        // on this class of machine, per idle period — most of them a few µs long when
        // a server keeps up with its load (some 3,000 a second in an HTTP server).
        // EINTR or a failure simply ends this wait: the loop recomputes everything.
        let n = sys::epoll_wait_ns(&cpu.epoll, &mut events, timeout).unwrap_or(0);
        cpu.idle.store(false, Ordering::SeqCst);
        cpu.sync_clocks(cpu.now_ns());
        if cpu.config.ticks() {
            if !tick::is_stopped() {
                // A short idle period: no steal or lateness across it.
                irq::restart_tick_accounting();
            } else if !cpu.config.nohz_full {
                tick::start(cpu.tick_period()); // periodic while busy
            }
        }
        // The tick stays stopped until a second thread needs it (`publish_queued`); a
        // timer still pending gets its one-shot.
        // SAFETY: carrier, preemption disabled.
        cpu.arm_next_timer(unsafe { cpu.local() });
        for ev in &events[..n] {
            // SAFETY: carrier, preemption disabled, no local reference held; the events
            // were just returned by the CPU's instance.
            unsafe { net::dispatch(cpu, *ev, net::Ctx::Scheduler) };
        }
        net::idle_exit(cpu, n > 0);
        if n == events.len() {
            // There may be more: the next pass polls for them.
            cpu.net.raise();
        }
    }
}
