//! The epoll device: its interrupt, its softirq with a NAPI budget, and `ksoftirqd`.
//!
//! Each CPU owns one epoll instance (`Cpu::epoll`) in which every descriptor its green
//! threads wait on is registered, edge-triggered (`reactor`). Readiness reaches the CPU
//! three ways, as a NIC's packets reach a kernel:
//!
//! * **Idle**: the idle loop waits in the epoll instance itself (its `hlt`), with the
//!   next timer as a nanosecond timeout, and dispatches what it returns.
//! * **Busy: the device interrupt.** An *interrupt controller* OS thread (one per
//!   runtime, [`IrqChip`]) waits on a second epoll instance in which each CPU's epoll
//!   fd is registered `EPOLLONESHOT` — an epoll fd raises no `SIGIO`, but it is itself
//!   pollable. When a CPU's instance becomes ready the controller *fires*: the oneshot
//!   disarms itself (the interrupt line is masked), the controller raises the CPU's net
//!   softirq (`pending`) and, if the CPU is busy under a model that takes interrupts,
//!   sends its carrier a `SIGALRM` with `tgkill`. The handler (the hardirq) does only
//!   that: it sees the raised softirq and asks for a switch, as for a due timer.
//! * **The softirq** ([`net_rx_action`]) runs in the scheduler, in ordinary context with
//!   preemption disabled: it polls the epoll instance with a zero timeout and wakes the
//!   waiters of each event, until the instance is empty — then it lowers the softirq and
//!   unmasks the interrupt (re-arms the oneshot; the re-arm reports readiness that came
//!   meanwhile, so none is lost) — or until its budget is spent.
//!
//! **NAPI.** A pass takes at most [`BUDGET_EVENTS`] events and [`BUDGET_NS`] of time.
//! A pass that ends with work left keeps the interrupt masked and hands the polling to
//! the CPU's `ksoftirqd`, a green thread at `Priority::DEFAULT`: under a flood the device
//! costs throughput at the default priority, and every higher-priority thread keeps
//! running. `Builder::napi(false)` turns this off for comparison (`examples/flood.rs`):
//! the pre-NAPI kernel, where receive processing ran in interrupt context, unbudgeted.
//! Every pass polls until the instance is empty, the interrupt is unmasked at once, and
//! a thread a pass wakes runs at interrupt level (`Priority::IRQ`, above every thread)
//! until it blocks again — its processing of the input is the receive processing.
//! Under a flood that never lets it block, nothing else runs: receive livelock.
//!
//! **Threaded, under `Model::Rt`** (`PREEMPT_RT`'s forced irq threading): the
//! scheduler runs no pass of its own once the CPU has its softirq thread; a raised
//! softirq is handed to that thread at once, and the thread — named `irq/net/N` and
//! running at real-time priority [`RT_IRQ_PRIORITY`] — does every pass. Device work
//! then preempts the threads below 50 and waits for the ones above, like any thread
//! of its priority. (The idle loop still dispatches what its own epoll wait returns:
//! an idle CPU interrupts nobody.)
//!
//! **Deferred interrupts** (the kernel's `napi_defer_hard_irqs` with its hrtimer):
//! on a busy CPU an interrupt per batch of events costs more than the events — a
//! controller wakeup and a signal, some 5–10 µs here. So a pass that found events keeps
//! the interrupt masked and the scheduler polls again within [`DEFER_NS`]: at the next
//! switch, or at a one-shot of the clock-event device if the running thread does not
//! switch. A pass that finds nothing unmasks the interrupt for the next thread to run.
//! An idle CPU masks it: its wait in the epoll instance is the poll, and an
//! idle wait that ends with events goes on polling as a pass that found them does —
//! unmasked, the input that ends the wait would wake the controller too, on the
//! carrier's core and at its real-time priority, only to find the CPU awake.
//!
//! **Invariant** (kept at every pick by [`thread_picked`]): while a thread runs, the
//! interrupt is unmasked (`armed`), or the CPU polls (`polling`: a poll is due within
//! `DEFER_NS`: by the thread's switch, a one-shot if it computes, or the tick — with
//! the tick stopped, a thread that does not compute gets the interrupt instead,
//! [`poll_by_interrupt`]), or a pass is raised (`pending`) — input always reaches a
//! busy CPU. While the CPU idles, its wait is the poll.
//! Under `Model::None` there is no clock-event device and nothing preempts: the poll
//! waits for the next switch, as everything else does under that model. (With the
//! interrupt unmasked after every pass instead, the controller woke on the carrier's
//! core some 50,000 times a second under an HTTP server's load, which then made half
//! the requests/s of `Full`.)
//!
//! Of the two busy-CPU designs DESIGN.md §6 names — per-descriptor `F_SETSIG` signals
//! from the kernel, and this controller thread — this one is built, on measurement
//! (`cargo bench --bench device_signal`, 2026-11-23): `F_SETSIG` reaches a spinning
//! thread's handler 4–5 µs sooner (p50 13 µs against 17.5 µs), but a burst of 1,000
//! datagrams costs it 130–166 signals (a standard signal coalesces only while pending)
//! against the controller's one, and the line cannot be masked as a whole for NAPI.

use super::reactor::{READ, WRITE};
use super::{Io, IoRef};
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use crate::preempt;
use crate::rt::Model;
use crate::sched::{self, Cpu, Priority, bump};
use crate::sys;
use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// The priority of the device's thread under `Model::Rt`: the kernel's default for
/// threaded interrupt handlers (`SCHED_FIFO` 50).
pub(crate) const RT_IRQ_PRIORITY: Priority = Priority::new(50);

/// Events one softirq pass may take before it hands the rest to `ksoftirqd`.
pub(crate) const BUDGET_EVENTS: u64 = 256;
/// Time one softirq pass may take (the kernel's `netdev_budget_usecs` is 2 ms; a
/// green-thread runtime's ticks are shorter).
pub(crate) const BUDGET_NS: u64 = 200_000;
/// The longest a busy CPU running a computing thread goes between polls in
/// deferred-interrupt mode. A thread whose CPU bursts are shorter (run time between
/// blocks, `SchedEntity::outlasts_deferred_poll`) gets no one-shot for the poll (its next block
/// polls, or the tick): a one-shot per pass, each preempting
/// a request handler about to block anyway, cost an HTTP server over a third of its
/// throughput.
pub(crate) const DEFER_NS: u64 = 100_000;
/// A switch this close to the next deferred poll polls at once: else the thread it
/// picks would get a one-shot a few µs away, which would land in the switch itself.
pub(crate) const DEFER_EARLY_NS: u64 = DEFER_NS / 4;
/// Events taken per `epoll_wait`.
const BATCH: usize = 64;

/// The token of the CPU's doorbell eventfd in its epoll instance.
pub(crate) const DOORBELL_TOKEN: u64 = u64::MAX;

/// A CPU's side of the device. Shared fields are atomics; `events` and `ksoftirqd`
/// are the carrier's, touched with preemption disabled.
pub(crate) struct NetDevice {
    /// The net softirq is raised: the epoll instance may hold events.
    pending: AtomicBool,
    /// The interrupt controller's oneshot for this CPU is armed (interrupt unmasked).
    armed: AtomicBool,
    /// `ksoftirqd` owns the polling (a pass ran out of budget); the scheduler leaves it.
    handed_off: AtomicBool,
    /// The runtime asked `ksoftirqd` to exit.
    stop: AtomicBool,
    /// Deferred-interrupt polling (`napi_defer_hard_irqs`): the interrupt stays masked
    /// and the scheduler polls at most [`DEFER_NS`] apart, paced by the clock-event
    /// device, while passes keep finding events.
    polling: AtomicBool,
    /// When the last pass started (ns on the CPU's clock).
    last_poll: AtomicU64,
    /// NAPI budgets on (the default).
    napi: bool,
    /// The controller's epoll instance, where this CPU's instance is registered.
    chip: Arc<OwnedFd>,
    /// Registrations dropped on another thread while a pass might be looking at them;
    /// freed by the carrier at the start of its next pass.
    graveyard: std::sync::Mutex<Vec<Arc<Io>>>,
    graveyard_nonempty: AtomicBool,
    events: UnsafeCell<[libc::epoll_event; BATCH]>,
    ksoftirqd: UnsafeCell<Option<Arc<crate::task::Task>>>,
    /// `ksoftirqd` has been (or is being) started: claimed by the first registration,
    /// so registrations that race (preempted between the claim and the spawn) start
    /// one, not one each.
    ksoftirqd_claimed: AtomicBool,
    pub(crate) stats: NetStats,
}

/// Device counters (see `Stats`).
#[derive(Default)]
pub(crate) struct NetStats {
    pub(crate) interrupts: AtomicU64,
    pub(crate) passes: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) handoffs: AtomicU64,
}

// SAFETY: `events` and `ksoftirqd` are touched only by the carrier with preemption
// disabled (module docs), which serialises them; everything else is atomic or locked.
unsafe impl Sync for NetDevice {}
// SAFETY: as above.
unsafe impl Send for NetDevice {}

impl NetDevice {
    /// The device of the CPU `id` whose epoll instance is `epoll`: registers the
    /// instance with the controller `chip` (interrupt unmasked).
    pub(crate) fn new(
        id: usize,
        epoll: &OwnedFd,
        chip: &IrqChip,
        napi: bool,
    ) -> io::Result<NetDevice> {
        sys::epoll_ctl(
            &chip.ep,
            libc::EPOLL_CTL_ADD,
            epoll.as_raw_fd(),
            oneshot(),
            id as u64,
        )?;
        Ok(NetDevice {
            pending: AtomicBool::new(false),
            armed: AtomicBool::new(true),
            handed_off: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            last_poll: AtomicU64::new(0),
            napi,
            chip: chip.ep.clone(),
            graveyard: std::sync::Mutex::new(Vec::new()),
            graveyard_nonempty: AtomicBool::new(false),
            events: UnsafeCell::new([libc::epoll_event { events: 0, u64: 0 }; BATCH]),
            ksoftirqd: UnsafeCell::new(None),
            ksoftirqd_claimed: AtomicBool::new(false),
            stats: NetStats::default(),
        })
    }

    /// Whether the scheduler should run a softirq pass (the hardirq's reason to switch):
    /// the softirq is raised and `ksoftirqd` does not own it, or a deferred poll is due.
    /// ASYNC-SIGNAL-SAFE.
    #[inline]
    pub(crate) fn softirq_wanted(&self, now: u64) -> bool {
        self.interrupt_pending() || now >= self.poll_due()
    }

    /// Whether the device interrupt fired and its softirq waits for a pass (not a
    /// deferred poll). ASYNC-SIGNAL-SAFE.
    #[inline]
    pub(crate) fn interrupt_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed) && !self.handed_off.load(Ordering::Relaxed)
    }

    /// When the next deferred poll is due (ns on the CPU's clock; `u64::MAX` when the
    /// interrupt is unmasked). The clock-event device treats it as a timer: a tick must
    /// not stop while it is pending, or the masked interrupt would never be polled.
    /// ASYNC-SIGNAL-SAFE.
    #[inline]
    pub(crate) fn poll_due(&self) -> u64 {
        if self.polling.load(Ordering::Relaxed) {
            self.last_poll.load(Ordering::Relaxed) + DEFER_NS
        } else {
            u64::MAX
        }
    }

    /// Raises the softirq from the carrier itself (its idle wait filled its buffer).
    pub(crate) fn raise(&self) {
        self.pending.store(true, Ordering::SeqCst);
    }

    /// Keeps a registration dropped away from its carrier until the next pass.
    pub(crate) fn bury(&self, io: Arc<Io>) {
        // Preemption off while the OS lock is held: another green thread of this CPU
        // burying into the same graveyard must not find it held by a preempted one (H3).
        let _p = crate::preempt::disable();
        self.graveyard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(io);
        self.graveyard_nonempty.store(true, Ordering::Release);
    }
}

fn oneshot() -> u32 {
    (libc::EPOLLIN | libc::EPOLLONESHOT) as u32
}

/// Where a softirq pass runs, which decides how it wakes threads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    /// In `schedule` or the idle loop, before the next thread is picked: woken threads
    /// are only queued (the pick that follows sees them).
    Scheduler,
    /// In `ksoftirqd`: a woken thread that outranks it preempts it at the pass's end.
    Thread,
}

/// The scheduler's softirq check: a pass if the softirq is raised and `ksoftirqd` does
/// not own it.
///
/// # Safety
/// Carrier of `cpu`, preemption disabled, no reference into its local state held.
#[inline]
pub(crate) unsafe fn do_softirq(cpu: &Cpu) {
    let dev = &cpu.net;
    let polling = dev.polling.load(Ordering::Relaxed);
    if (dev.pending.load(Ordering::Relaxed) || polling)
        && dev.softirq_wanted(if polling {
            cpu.now_ns() + DEFER_EARLY_NS
        } else {
            0
        })
    {
        if cpu.config.model == Model::Rt
            // SAFETY: forwarded.
            && let Some(k) = unsafe { &*dev.ksoftirqd.get() }
        {
            // Threaded: the irq thread polls (module docs).
            if !dev.handed_off.swap(true, Ordering::SeqCst) {
                wake(k.clone(), Ctx::Scheduler, false);
            }
            return;
        }
        // Interrupt time, as in the handler: the thread switched out did not ask for it.
        let outer = cpu.irq_time_enter();
        // SAFETY: forwarded.
        unsafe { net_rx_action(cpu, Ctx::Scheduler) };
        if outer {
            cpu.irq_time_exit();
        }
    }
}

/// One softirq pass (module docs). Returns whether the instance was drained.
///
/// # Safety
/// Carrier of `cpu`, preemption disabled, no reference into its local state held.
#[inline(never)]
pub(crate) unsafe fn net_rx_action(cpu: &Cpu, ctx: Ctx) -> bool {
    let dev = &cpu.net;
    bump(&dev.stats.passes);
    if dev.graveyard_nonempty.swap(false, Ordering::Acquire) {
        // Any pass that could have seen these registrations has finished.
        let dead = std::mem::take(&mut *dev.graveyard.lock().unwrap_or_else(|e| e.into_inner()));
        drop(dead);
    }
    let start = cpu.now_ns();
    // A pass raised by the interrupt while the CPU polls anyway, before its poll is
    // due: the controller fired just as the CPU masked it to go idle, and the idle wait
    // took the events (`idle_exit`). That it finds nothing does not end the polling.
    let early = dev.polling.load(Ordering::Relaxed) && start + DEFER_EARLY_NS < dev.poll_due();
    dev.last_poll.store(start, Ordering::Relaxed);
    let mut taken = 0;
    let drained = loop {
        // SAFETY: carrier, preemption disabled; passes never nest (nothing a pass calls
        // runs another).
        let events = unsafe { &mut *dev.events.get() };
        let n =
            sys::epoll_wait_ns(&cpu.epoll, events, Some(std::time::Duration::ZERO)).unwrap_or(0);
        if n == 0 {
            break true;
        }
        taken += n as u64;
        for ev in &events[..n] {
            // SAFETY: forwarded from our contract.
            unsafe { dispatch(cpu, *ev, ctx) };
        }
        if dev.napi && (taken >= BUDGET_EVENTS || cpu.now_ns() - start >= BUDGET_NS) {
            break false;
        }
    };
    dev.stats.events.store(
        dev.stats.events.load(Ordering::Relaxed) + taken,
        Ordering::Relaxed,
    );
    if drained {
        // Lower the softirq, *then* unmask: an event after the last poll makes the
        // re-armed oneshot fire at once.
        dev.handed_off.store(false, Ordering::Relaxed);
        dev.pending.store(false, Ordering::SeqCst);
        let threaded = cpu.config.model == Model::Rt;
        if (taken > 0 || early) && (ctx == Ctx::Scheduler || threaded) && dev.napi {
            // Busy: keep the interrupt masked and poll again within DEFER_NS, at a
            // switch, or at a one-shot if the thread picked next tends to run that
            // long (`Cpu::picked`), or at the tick (threaded, the poll is handed to the
            // irq thread); under `None`, at the next switch after DEFER_NS. A pass that
            // finds nothing ends it. Input that comes while a woken thread handles the
            // last then waits for it to block instead of interrupting it.
            dev.polling.store(true, Ordering::Relaxed);
        } else {
            if ctx == Ctx::Thread || !dev.napi {
                unmask(cpu);
            }
            // Else the scheduler picks next: the interrupt is unmasked for the thread
            // it picks (`thread_picked`), and if it picks none the idle wait polls by
            // itself (`idle_exit`). Unmasked here, the input the wait is for would wake
            // the controller too, whenever a poll came due just before the CPU idled.
            if dev.polling.swap(false, Ordering::Relaxed) {
                // The poll's one-shot may have replaced a stopped device's one-shot for
                // the next timer.
                cpu.rearm_stopped_tick();
            }
        }
    } else if !dev.handed_off.swap(true, Ordering::SeqCst) {
        bump(&dev.stats.handoffs);
        // SAFETY: carrier, preemption disabled.
        if let Some(k) = unsafe { &*dev.ksoftirqd.get() } {
            wake(k.clone(), ctx, false);
        } else {
            // No ksoftirqd (none registered yet): poll again at the next switch.
            dev.handed_off.store(false, Ordering::Relaxed);
        }
    }
    drained
}

/// Ends deferred polling as the CPU goes idle: its idle wait polls by itself. The
/// interrupt is masked through the wait: unmasked, the readiness that ends the wait
/// would also wake the controller — on the carrier's core, at its real-time priority —
/// only to find the CPU already awake (an HTTP server's idle exits, some 5,000 a second,
/// each cost two more context switches). Carrier only.
pub(crate) fn idle_enter(cpu: &Cpu) {
    // Whether to poll after the wait is `idle_exit`'s decision; meanwhile no poll is due
    // (the wait's timeout is the next timer).
    cpu.net.polling.store(false, Ordering::Relaxed);
    // Unmasked for the thread that ran last (`thread_picked`, `poll_by_interrupt`).
    mask(cpu);
}

/// The idle wait ended, having `found` events (dispatched by the caller): with the
/// interrupt still masked (`idle_enter`), the CPU polls on as a pass that found events
/// does — within `DEFER_NS`, at a switch or a one-shot (`Cpu::picked`). Otherwise
/// (nothing found, or no NAPI) nothing changes: a thread picked next gets the interrupt
/// unmasked (`thread_picked`), and if none is, the next wait polls. Carrier only,
/// preemption disabled.
pub(crate) fn idle_exit(cpu: &Cpu, found: bool) {
    let dev = &cpu.net;
    if found && dev.napi {
        dev.last_poll.store(cpu.now_ns(), Ordering::Relaxed);
        dev.polling.store(true, Ordering::Relaxed);
    }
}

/// The CPU polls its device, but no tick backs the poll up while the thread just picked
/// runs (the tick is stopped) and that thread is not expected to compute: polling ends
/// and the interrupt is unmasked for it, should it compute after all. (Re-arming reports
/// what came since the last poll.) A one-shot for the poll instead cost a server with
/// one connection ~20 µs of CPU per request: it landed in the idle wait that followed.
/// Carrier only.
pub(crate) fn poll_by_interrupt(cpu: &Cpu) {
    if cpu.net.polling.swap(false, Ordering::Relaxed) {
        unmask(cpu);
    }
}

/// Disarms the controller's oneshot for `cpu` if it is armed (masks the interrupt). A
/// fire racing with it raises the softirq once more, for a pass that may find nothing.
fn mask(cpu: &Cpu) {
    let dev = &cpu.net;
    if dev.armed.swap(false, Ordering::SeqCst) {
        // No events: the kernel adds only EPOLLERR and EPOLLHUP, which an epoll
        // instance does not report.
        set_line(cpu, 0);
    }
}

/// A thread is about to run on `cpu`: it needs the device interrupt unmasked, unless
/// the CPU polls its device (deferred interrupts) or a pass is raised. Carrier only.
pub(crate) fn thread_picked(cpu: &Cpu) {
    let dev = &cpu.net;
    if !dev.polling.load(Ordering::Relaxed) && !dev.pending.load(Ordering::Relaxed) {
        unmask(cpu);
    }
}

/// Re-arms the controller's oneshot for `cpu` if it fired (unmasks the interrupt).
fn unmask(cpu: &Cpu) {
    let dev = &cpu.net;
    if dev.armed.load(Ordering::SeqCst) {
        return;
    }
    dev.armed.store(true, Ordering::SeqCst);
    set_line(cpu, oneshot());
}

/// Sets the events the controller's epoll instance watches `cpu`'s instance for.
fn set_line(cpu: &Cpu, events: u32) {
    let _ = sys::epoll_ctl(
        &cpu.net.chip,
        libc::EPOLL_CTL_MOD,
        cpu.epoll.as_raw_fd(),
        events,
        cpu.id as u64,
    );
}

/// Handles one event of the CPU's epoll instance.
///
/// # Safety
/// Carrier of `cpu`, preemption disabled; `ev` was just returned by its instance.
pub(crate) unsafe fn dispatch(cpu: &Cpu, ev: libc::epoll_event, ctx: Ctx) {
    if ev.u64 == DOORBELL_TOKEN {
        sys::eventfd_drain(&cpu.doorbell);
        return;
    }
    // SAFETY: the token is a registration's `Arc::into_raw`, released only after the
    // descriptor left the instance (`Registration`'s drop) and, when that happens on
    // another thread, only after this pass (the graveyard).
    let io: &Io = unsafe { IoRef::from_token(ev.u64) };
    let e = ev.events as i32;
    let read = libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR;
    let write = libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR;
    if e & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
        io.set_hung_up();
    }
    if e & read != 0
        && let Some(t) = io.set_ready(READ)
    {
        wake(t, ctx, !cpu.net.napi);
    }
    if e & write != 0
        && let Some(t) = io.set_ready(WRITE)
    {
        wake(t, ctx, !cpu.net.napi);
    }
}

/// Wakes `t`; with `irq` (no NAPI) its work until it blocks is interrupt work.
fn wake(t: Arc<crate::task::Task>, ctx: Ctx, irq: bool) {
    match ctx {
        // SAFETY: the softirq's contract: the carrier, preemption disabled, no local
        // reference held.
        Ctx::Scheduler => unsafe { sched::wake_up_in_scheduler(&t, irq) },
        Ctx::Thread => sched::wake_up(&t),
    }
}

/// Starts the CPU's `ksoftirqd` if it has none. Called by the first registration on the
/// CPU, from one of its green threads.
pub(crate) fn ensure_ksoftirqd(cpu: &Arc<Cpu>) -> io::Result<()> {
    let dev = &cpu.net;
    if dev.ksoftirqd_claimed.load(Ordering::Acquire)
        || dev.ksoftirqd_claimed.swap(true, Ordering::AcqRel)
    {
        return Ok(());
    }
    // Until the task is recorded below, a pass that runs out of budget finds no
    // `ksoftirqd` and leaves the polling to the scheduler (`net_rx_action`).
    let c = cpu.clone();
    let (name, prio) = if cpu.config.model == Model::Rt {
        (format!("irq/net/{}", cpu.id), RT_IRQ_PRIORITY)
    } else {
        (format!("ksoftirqd/{}", cpu.id), Priority::DEFAULT)
    };
    let spawned = crate::thread::Builder::new()
        .name(name)
        .priority(prio)
        .spawn_on(cpu, move || ksoftirqd(&c));
    let h = match spawned {
        Ok(h) => h,
        Err(e) => {
            // The next registration tries again.
            dev.ksoftirqd_claimed.store(false, Ordering::Release);
            return Err(e);
        }
    };
    cpu.daemons.fetch_add(1, Ordering::SeqCst);
    let _p = preempt::disable();
    // SAFETY: carrier, preemption disabled.
    unsafe { *dev.ksoftirqd.get() = Some(h.thread().task.clone()) };
    Ok(())
}

/// The per-CPU softirq thread (under `Model::Rt`, the device's irq thread): polls the
/// device while a pass ran out of budget (under `Rt`: while the softirq is raised),
/// yielding to its equals between passes, and sleeps otherwise. Its passes run with
/// preemption disabled, so a registration cannot be freed under one (`dispatch`).
fn ksoftirqd(cpu: &Cpu) {
    let dev = &cpu.net;
    loop {
        let (_, me) = sched::current_or_panic("ksoftirqd");
        // Sleep protocol: the condition is set before the waker's wake (`net_rx_action`,
        // `stop_daemons`).
        sched::block_current(cpu, me, None, || {
            dev.handed_off.load(Ordering::SeqCst) || dev.stop.load(Ordering::SeqCst)
        });
        if dev.stop.load(Ordering::SeqCst) {
            return;
        }
        while dev.handed_off.load(Ordering::SeqCst) {
            let drained = {
                let _p = preempt::disable();
                // SAFETY: our carrier, preemption disabled, no local reference held.
                unsafe { net_rx_action(cpu, Ctx::Thread) }
            };
            if !drained {
                crate::thread::yield_now();
            }
        }
    }
}

/// Asks `ksoftirqd` to exit (the runtime is shutting down and only daemons are left).
///
/// # Safety
/// Carrier of `cpu`, preemption disabled, no local reference held.
pub(crate) unsafe fn stop_daemons(cpu: &Cpu) {
    cpu.net.stop.store(true, Ordering::SeqCst);
    // SAFETY: per the contract.
    if let Some(k) = unsafe { (*cpu.net.ksoftirqd.get()).take() } {
        sched::wake_up(&k);
    }
}

/// The interrupt controller: an OS thread that turns a busy CPU's epoll readiness into
/// a signal (module docs). One per runtime; stopped when dropped.
pub(crate) struct IrqChip {
    ep: Arc<OwnedFd>,
    stop: OwnedFd,
    thread: Option<std::thread::JoinHandle<()>>,
}

const STOP_TOKEN: u64 = u64::MAX;

impl IrqChip {
    /// Creates the controller's epoll instance; [`start`](Self::start) runs it.
    pub(crate) fn new() -> io::Result<IrqChip> {
        let ep = sys::epoll_create()?;
        let stop = sys::eventfd()?;
        sys::epoll_ctl(
            &ep,
            libc::EPOLL_CTL_ADD,
            stop.as_raw_fd(),
            libc::EPOLLIN as u32,
            STOP_TOKEN,
        )?;
        Ok(IrqChip {
            ep: Arc::new(ep),
            stop,
            thread: None,
        })
    }

    /// Starts the controller thread for `cpus` (their devices made with this chip),
    /// indexed by CPU id.
    pub(crate) fn start(&mut self, cpus: Vec<Arc<Cpu>>, name: &str) -> io::Result<()> {
        let ep = self.ep.clone();
        self.thread = Some(
            std::thread::Builder::new()
                .name(format!("{name}-irq"))
                .spawn(move || controller(&ep, &cpus))?,
        );
        Ok(())
    }
}

impl Drop for IrqChip {
    fn drop(&mut self) {
        sys::eventfd_signal(&self.stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for IrqChip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqChip").finish_non_exhaustive()
    }
}

fn controller(ep: &OwnedFd, cpus: &[Arc<Cpu>]) {
    // Ticks are the carrier's business.
    crate::irq::set_sigalrm_blocked(true);
    // Like the kernel's threaded interrupts (SCHED_FIFO 50): a controller that waited
    // for the host scheduler behind its own busy carrier would deliver the interrupt a
    // host time slice late. Needs CAP_SYS_NICE; without it the thread runs at the
    // highest nice level it may take, or as it is.
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sched_setscheduler on the calling thread with a live param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        // SAFETY: setpriority on the calling thread; failure leaves it unchanged.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -20) };
    }
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
    loop {
        let n = match sys::epoll_wait_ns(ep, &mut events, None) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        for ev in &events[..n] {
            match cpus.get(ev.u64 as usize) {
                Some(cpu) => fire(cpu),
                None => return, // STOP_TOKEN
            }
        }
    }
}

/// The interrupt line of `cpu` fired: it is masked (the oneshot disarmed itself);
/// raise the softirq and interrupt the carrier if it is busy.
fn fire(cpu: &Cpu) {
    let dev = &cpu.net;
    dev.armed.store(false, Ordering::SeqCst);
    dev.pending.store(true, Ordering::SeqCst);
    // Against the idle loop's store of `idle` and its wait: an idle carrier sees the
    // events in its own wait; a busy one needs the signal.
    fence(Ordering::SeqCst);
    if !cpu.is_idle() {
        sched::bump_shared(&dev.stats.interrupts);
        if cpu.config.ticks() {
            cpu.interrupt();
        }
    }
}
