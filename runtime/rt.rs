//! `Runtime`: build it, run green threads in it, drop it.
//!
//! A runtime owns its CPUs: today one carrier OS thread that runs every green thread
//! (`cpus(1)`). The thread that builds it is not a carrier: `block_on` hands its closure
//! to the carrier as the green thread `main` and parks in the kernel until it returns,
//! which is why that closure must be `Send + 'static`.
//!
//! One runtime may be live in a process at a time — the timer signal and the interval
//! timer it will own are process-wide — but runtimes may follow each other (the model
//! comparison builds one per model).

use crate::debug;
use crate::sched::{self, Config, Cpu};
use crate::stack::DEFAULT_STACK_SIZE;
use crate::thread::{self, JoinHandle};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The preemption model: when may the running green thread be switched out?
///
/// Mirrors the kernel's `CONFIG_PREEMPT_*` choices (and, like `PREEMPT_DYNAMIC`, is
/// chosen when the runtime starts). Ordered from least to most preemptive; each trades
/// throughput for latency a step further (`examples/compare_models.rs` measures it):
///
/// | model | kernel option | a waiting higher-priority thread runs… | costs |
/// |---|---|---|---|
/// | `None` | `PREEMPT_NONE` | when the running thread blocks, sleeps, yields or exits | nothing: no timer interrupt at all |
/// | `Voluntary` | `PREEMPT_VOLUNTARY` | also at its next `cond_resched()` or blocking call | a tick while threads compete |
/// | `Full` | `PREEMPT` | at once, unless the runner is in atomic context (a spinlock, `preempt::disable`) | ticks, signals, the thread-local contract |
/// | `Rt` | `PREEMPT_RT` | at once, also while the runner holds a [`SpinLock`](crate::sync::SpinLock); device work runs in a thread | as `Full`, plus a mutex per spinlock and a thread switch per device interrupt |
///
/// `None` and `Voluntary` are safe to choose with [`Builder::model`]; `Full` and `Rt`
/// asynchronously preempt arbitrary code and are chosen with the `unsafe`
/// [`Builder::preemptive`].
///
/// The environment variable `PREEMPT_MODEL` (`none`, `voluntary`, `full`, `rt`) can
/// lower the model a program asks for — never raise it — like Go's `asyncpreemptoff`;
/// [`Runtime::model`] reports the model in effect, so a program can say that it was
/// downgraded.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[non_exhaustive]
pub enum Model {
    /// `CONFIG_PREEMPT_NONE`: a thread runs until it blocks, sleeps, yields or exits. A
    /// thread that computes without doing any of those keeps every other thread of its
    /// CPU waiting. Highest throughput, unbounded latency.
    #[default]
    None,
    /// `CONFIG_PREEMPT_VOLUNTARY`: the timer interrupt only asks for a switch
    /// (`NEED_RESCHED`); it happens at the next [`cond_resched`](crate::thread::cond_resched)
    /// or blocking call of the running thread. Safe: nothing is interrupted mid-way.
    Voluntary,
    /// `CONFIG_PREEMPT`: the timer interrupt preempts any thread outside atomic context,
    /// at its next tick; a woken thread of higher priority preempts at once. Bounded
    /// latency, at the price of the thread-local contract of [`Builder::preemptive`].
    Full,
    /// `CONFIG_PREEMPT_RT`: everything `Full` does, and the sections `Full` still
    /// cannot preempt shrink to the runtime's own:
    ///
    /// * [`SpinLock`](crate::sync::SpinLock) becomes a sleeping, priority-inheriting
    ///   lock: its holder is preemptible and a contender sleeps, boosting the holder
    ///   (only [`RawSpinLock`](crate::sync::RawSpinLock) still spins with preemption
    ///   off, as `raw_spinlock_t` does);
    /// * the epoll device's work is threaded: its interrupt only marks the device
    ///   pending and wakes the CPU's `irq/net` thread, at real-time priority 50 (the
    ///   kernel's default for irq threads), which polls it and wakes the waiters — so
    ///   a thread above 50 is not interrupted by network work, and one below is
    ///   preempted by it as by any thread of priority 50. (The timer interrupt stays
    ///   in the handler: it only decides a switch, and sleepers' timers expire in the
    ///   scheduler, as `PREEMPT_RT` keeps sleepers' hrtimers in hard interrupt
    ///   context.)
    Rt,
}

/// Configures and builds a [`Runtime`]. Created by [`Runtime::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    model: Model,
    tick: Duration,
    cpus: usize,
    stack_size: usize,
    name: String,
    shutdown_timeout: Duration,
    /// Set by the `unsafe` [`Builder::preemptive`]: the caller accepted its contract.
    preemptive_ack: bool,
    napi: bool,
    fair: bool,
    tickless: bool,
}

/// The shortest tick the timer interrupt can keep on this class of machine.
pub const MIN_TICK: Duration = Duration::from_micros(50);
/// The longest tick accepted.
pub const MAX_TICK: Duration = Duration::from_millis(100);

impl Default for Builder {
    fn default() -> Self {
        Builder {
            model: Model::None,
            tick: Duration::from_millis(1),
            cpus: 1,
            stack_size: DEFAULT_STACK_SIZE,
            name: "preempt".into(),
            shutdown_timeout: Duration::from_secs(10),
            preemptive_ack: false,
            napi: true,
            fair: false,
            tickless: true,
        }
    }
}

impl Builder {
    /// The preemption model (default [`Model::None`]). `None` and `Voluntary` only:
    /// `Full` and `Rt` need [`Builder::preemptive`], and `build()` says so.
    pub fn model(mut self, model: Model) -> Self {
        self.model = model;
        self
    }

    /// Chooses an asynchronously preemptive model (`Full` or `Rt`).
    ///
    /// # Safety
    ///
    /// Under these models a green thread can be switched out between any two
    /// instructions of the program's own code. Green threads of one CPU share its OS
    /// thread, so its `thread_local!`s are **per-CPU data** in the kernel's sense: the
    /// caller promises that no green thread touches a thread-local across a point where
    /// another green thread of the same CPU may run, unless it holds
    /// [`preempt::disable()`](crate::disable) (or uses a task-local instead). This covers
    /// code that keeps state in thread-locals without saying so: a thread-local RNG or
    /// allocator cache written in Rust, a `RefCell` in a `thread_local!`, `std`'s
    /// re-entrant stdout lock, `std::sync::Mutex` held across a preemption point while
    /// another green thread of the CPU takes it (it blocks the whole CPU in the kernel).
    /// Foreign code (libc, including its allocator, and other shared objects) is never
    /// preempted: a tick landing there is deferred.
    pub unsafe fn preemptive(mut self, model: Model) -> Self {
        self.model = model;
        self.preemptive_ack = true;
        self
    }

    /// The period of the timer interrupt, [`MIN_TICK`]`..=`[`MAX_TICK`] (default 1 ms).
    ///
    /// A tick finer than the default runs at this period through the turns of threads
    /// that compute (whose CPU bursts, on average or now, last a tick or more), and at
    /// 1 ms while only threads that block within a tick run: those are never cut by
    /// one, and on a virtual machine each timer interrupt costs 10–25 µs of CPU. A
    /// thread that starts computing after short bursts may so keep the CPU for up to
    /// 1 ms once before its turns shorten to this tick.
    ///
    /// Validated by `build`. `Model::None` takes no ticks.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// NAPI for the epoll device (default on): each softirq pass polls within a budget
    /// of events and time, and a pass that runs out of it keeps the device interrupt
    /// masked and hands the polling to the CPU's `ksoftirqd` thread at
    /// `Priority::DEFAULT`, so a flood of I/O costs throughput, not control. `false`
    /// gives the pre-NAPI behaviour for comparison: every pass polls until the device
    /// is empty, above every thread, the interrupt is unmasked at once, and a thread the
    /// device wakes runs above every priority until it blocks again (its handling of the
    /// input is receive processing, which ran in interrupt context before NAPI). Under a
    /// flood that is receive livelock: see `examples/flood.rs`.
    pub fn napi(mut self, on: bool) -> Self {
        self.napi = on;
        self
    }

    /// The fair class for threads at [`Priority::DEFAULT`](crate::Priority::DEFAULT)
    /// (default off: round-robin). On: EEVDF-style virtual time weighted by nice values
    /// ([`thread::Builder::nice`](crate::thread::Builder::nice)), slices of up to 3 ms
    /// whatever the tick, and a thread woken after sleeping preempts a CPU hog at once
    /// under the preemptive models (a sleeper beside three hogs wakes with a p99
    /// lateness of tens of µs instead of a tick). Off: round-robin at priority 0, every
    /// tick a switch.
    ///
    /// Not yet the default: with dozens of runnable request handlers (an HTTP server
    /// under 50 connections) the fair class gives `/` a p99 of 1.5–5× round-robin's
    /// (`benches/http_compare.sh`): a handler that got ahead of its siblings waits for
    /// all of them to catch up.
    /// Real-time priorities are FIFO with round-robin among equals either way.
    pub fn fair(mut self, on: bool) -> Self {
        self.fair = on;
        self
    }

    /// Tickless full (default on, the kernel's `NO_HZ_FULL`): a CPU running one thread
    /// with nothing queued that could preempt it, and no timer due before the next
    /// tick, stops its tick, so a lone computation is not interrupted at all
    /// ([`Stats::ticks`] counts the ticks taken). `false` keeps the tick running
    /// whenever the CPU is busy (`NO_HZ_IDLE`: an idle CPU stops it either way), for
    /// comparison.
    pub fn tickless(mut self, on: bool) -> Self {
        self.tickless = on;
        self
    }

    /// Number of CPUs (carrier OS threads). Only `1` is supported today.
    pub fn cpus(mut self, n: usize) -> Self {
        self.cpus = n;
        self
    }

    /// Default stack size of green threads, rounded up to whole pages (default 64 KiB,
    /// at least [`min_stack_size()`](crate::min_stack_size)).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Prefix of the carrier threads' OS names (default `preempt`; `-cpu0` is appended).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How long dropping the runtime waits for live green threads to finish before it
    /// aborts the process (default 10 s). See [`Runtime`]'s drop behaviour.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the runtime.
    ///
    /// # Errors
    /// * `InvalidInput` — `cpus(0)`, a tick outside `MIN_TICK..=MAX_TICK`, a stack size
    ///   below the minimum, a name containing a NUL byte;
    /// * `Unsupported` — `cpus(n > 1)`, or `Full`/`Rt` on a build where asynchronous
    ///   preemption is unavailable;
    /// * `ResourceBusy` — another runtime is live in this process, or the caller is a
    ///   green thread;
    /// * any OS error from creating the carrier's eventfd, epoll instance or thread.
    pub fn build(self) -> io::Result<Runtime> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.cpus == 0 {
            return invalid("a runtime needs at least one CPU (cpus(0) given)".into());
        }
        if self.cpus > 1 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("cpus({}): only one CPU is supported so far", self.cpus),
            ));
        }
        if !(MIN_TICK..=MAX_TICK).contains(&self.tick) {
            return invalid(format!(
                "tick {:?} out of range: the timer interrupt takes periods from {:?} to {:?}",
                self.tick, MIN_TICK, MAX_TICK
            ));
        }
        let stack_size = thread::checked_stack_size(self.stack_size)?;
        if self.name.contains('\0') {
            return invalid(format!("runtime name {:?} contains a NUL byte", self.name));
        }
        if self.model >= Model::Full && !self.preemptive_ack {
            return invalid(format!(
                "Model::{:?} preempts threads asynchronously: choose it with the unsafe \
                 `Builder::preemptive`, whose # Safety section states the thread-local contract",
                self.model
            ));
        }
        let model = match env_model()? {
            Some(limit) if limit < self.model => limit,
            _ => self.model,
        };
        if model >= Model::Full
            && let Err(why) = crate::arch::check_async_preemption()
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("Model::{model:?} is unavailable: {why}"),
            ));
        }
        if in_forked_child() {
            return Err(io::Error::other(FORKED_MSG));
        }
        if sched::this_cpu().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "cannot build a runtime from inside a green thread",
            ));
        }
        if LIVE.swap(true, Ordering::AcqRel) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "a preempt runtime is already live in this process; drop it before building another",
            ));
        }
        let live = LiveToken;
        crate::sync::spinlock::SLEEPING.store(model == Model::Rt, Ordering::Relaxed);
        watch_fork();
        debug::overflow::install();
        debug::panic::install_hook();
        if model != Model::None {
            crate::irq::install()?;
        }
        let mut chip = crate::io::device::IrqChip::new()?;
        let cpu = Cpu::new(
            0,
            Config {
                default_stack: stack_size,
                model,
                tick: self.tick,
                napi: self.napi,
                fair: self.fair,
                nohz_full: self.tickless,
            },
            &chip,
        )?;
        chip.start(vec![cpu.clone()], &self.name)?;
        let watchdog = debug::watchdog::Watchdog::start(cpu.clone(), &self.name)?;
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let carrier_cpu = cpu.clone();
        let carrier = std::thread::Builder::new()
            .name(format!("{}-cpu0", self.name))
            .spawn(move || {
                sched::run_carrier(carrier_cpu);
                let _ = done_tx.send(());
            })?;
        let rt = Runtime {
            cpu,
            irq_chip: Some(chip),
            carrier: Some(carrier),
            done: std::sync::Mutex::new(done_rx),
            shutdown_timeout: self.shutdown_timeout,
            watchdog: Some(watchdog),
            _live: live,
        };
        if model == Model::Rt {
            // The device's irq thread exists from the start, as a requested irq's
            // thread does (under the other models `ksoftirqd` starts with the first
            // registration). On failure `rt` is dropped: a clean shutdown.
            let c = rt.cpu.clone();
            thread::Builder::new()
                .name("irq-setup".into())
                .spawn_on(&rt.cpu, move || crate::io::device::ensure_ksoftirqd(&c))?
                .join()
                .map_err(|_| io::Error::other("starting the device's irq thread panicked"))??;
        }
        Ok(rt)
    }
}

/// The environment variable that can lower the model.
pub const MODEL_ENV: &str = "PREEMPT_MODEL";

/// The model limit set by `PREEMPT_MODEL`, if any.
fn env_model() -> io::Result<Option<Model>> {
    let Some(v) = std::env::var_os(MODEL_ENV) else {
        return Ok(None);
    };
    match v.to_string_lossy().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "none" => Ok(Some(Model::None)),
        "voluntary" => Ok(Some(Model::Voluntary)),
        "full" => Ok(Some(Model::Full)),
        "rt" => Ok(Some(Model::Rt)),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{MODEL_ENV}={other:?}: expected none, voluntary, full or rt"),
        )),
    }
}

/// Set in the child of a `fork()` (HAZARDS.md H13): only the forking thread survives
/// there — no carrier, no timer, no interrupt controller — so the runtime cannot run.
static FORKED: AtomicBool = AtomicBool::new(false);

pub(crate) const FORKED_MSG: &str = "preempt: the runtime cannot be used in the child of a fork() \
    that has not called exec: only the forking thread survives fork, and the carriers, timers \
    and interrupt controller are gone (run the child with std::process::Command, and wait for \
    it with preempt::task::spawn_blocking)";

/// Whether this process is a forked child of a process that ran a runtime.
pub(crate) fn in_forked_child() -> bool {
    FORKED.load(Ordering::Relaxed)
}

/// Registers the fork hook, once.
fn watch_fork() {
    extern "C" fn child() {
        FORKED.store(true, Ordering::Relaxed);
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: the hook only stores to an atomic, which is async-signal-safe as a
    // fork-child handler must be.
    ONCE.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(child));
    });
}

/// Set while a runtime is live.
static LIVE: AtomicBool = AtomicBool::new(false);

/// Clears `LIVE` when the runtime (or a failed build) is gone.
struct LiveToken;
impl Drop for LiveToken {
    fn drop(&mut self) {
        crate::sync::spinlock::SLEEPING.store(false, Ordering::Relaxed);
        LIVE.store(false, Ordering::Release);
    }
}

/// A preempt runtime: the carriers that run green threads.
///
/// # Dropping
///
/// Dropping a `Runtime` waits for every green thread to finish, detached ones included,
/// for up to its [`shutdown_timeout`](Builder::shutdown_timeout). A stackful thread
/// cannot be cancelled safely — its stack holds borrows and locks nobody else can
/// release — so if threads are still alive when the timeout expires, the drop prints how
/// many and **aborts the process** rather than free stacks that are still in use.
#[derive(Debug)]
pub struct Runtime {
    cpu: Arc<Cpu>,
    irq_chip: Option<crate::io::device::IrqChip>,
    carrier: Option<std::thread::JoinHandle<()>>,
    done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    shutdown_timeout: Duration,
    watchdog: Option<debug::watchdog::Watchdog>,
    _live: LiveToken,
}

impl std::fmt::Debug for LiveToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveToken")
    }
}

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cpu")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with the defaults: `Model::None`, 1 ms tick, one CPU, 64 KiB stacks.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Runs `f` as the green thread `main` and returns its result, blocking the calling
    /// OS thread meanwhile.
    ///
    /// # Panics
    /// If called from a green thread (that would block a carrier), or if spawning fails;
    /// a panic inside `f` is resumed here.
    #[track_caller]
    pub fn block_on<T, F>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if sched::this_cpu().is_some() {
            panic!(
                "`Runtime::block_on` called from a green thread: that would block its \
                 carrier; spawn a thread and join it instead"
            );
        }
        let handle = thread::Builder::new()
            .name("main".into())
            .spawn_on(&self.cpu, f)
            .unwrap_or_else(|e| panic!("failed to spawn the block_on thread: {e}"));
        match handle.join() {
            Ok(v) => v,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Spawns a green thread from outside the runtime (any OS thread).
    ///
    /// # Panics
    /// If the thread cannot be created, like [`std::thread::spawn`]; use
    /// [`thread::Builder::spawn_in`] to get the error instead.
    pub fn spawn<T, F>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        thread::Builder::new()
            .spawn_in(self, f)
            .expect("failed to spawn green thread")
    }

    /// The preemption model in effect (the one asked for, or lower if `PREEMPT_MODEL`
    /// lowered it).
    pub fn model(&self) -> Model {
        self.cpu.config.model
    }

    /// A snapshot of the scheduler's counters.
    pub fn stats(&self) -> Stats {
        let s = &self.cpu.stats;
        let r = |c: &crate::loom::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            switches_voluntary: r(&s.switches_voluntary),
            switches_involuntary: r(&s.switches_involuntary),
            spawned: r(&s.spawned),
            exited: r(&s.exited),
            wakeups_local: r(&s.wakeups_local),
            wakeups_remote: r(&s.wakeups_remote),
            idle_waits: r(&s.idle_waits),
            live_threads: self.cpu.nr_live.load(Ordering::Acquire) as u64,
            ticks: r(&s.ticks),
            ticks_late: r(&s.ticks_late),
            ticks_lost: r(&s.ticks_lost),
            ticks_forwarded: crate::irq::TICKS_FORWARDED.load(Ordering::Relaxed),
            preemptions: r(&s.preemptions),
            deferred_atomic: r(&s.deferred_atomic),
            deferred_pc: r(&s.deferred_pc),
            deferred_irq_mask: r(&s.deferred_irq_mask),
            deferred_panicking: r(&s.deferred_panicking),
            deadline_throttled: r(&s.dl_throttled),
            net_interrupts: r(&self.cpu.net.stats.interrupts),
            net_softirq_passes: r(&self.cpu.net.stats.passes),
            net_events: r(&self.cpu.net.stats.events),
            net_ksoftirqd_handoffs: r(&self.cpu.net.stats.handoffs),
        }
    }

    pub(crate) fn cpu(&self) -> &Arc<Cpu> {
        &self.cpu
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if sched::this_cpu().is_some_and(|c| std::ptr::eq(c, &*self.cpu)) {
            // Waiting here for the carrier's threads would wait for ourselves.
            debug::fatal(
                "preempt: a Runtime was dropped by one of its own green threads; \
                 drop it from the thread that built it",
            );
        }
        self.cpu.request_shutdown();
        let done = self.done.get_mut().unwrap_or_else(|e| e.into_inner());
        match done.recv_timeout(self.shutdown_timeout) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(c) = self.carrier.take() {
                    let _ = c.join();
                }
                drop(self.irq_chip.take());
                drop(self.watchdog.take());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let live = self.cpu.nr_live.load(Ordering::Acquire);
                let msg = format!(
                    "preempt: runtime dropped with {live} green thread(s) still running after \
                     the {:?} shutdown timeout; green threads cannot be cancelled, aborting",
                    self.shutdown_timeout
                );
                debug::fatal(&msg);
            }
        }
    }
}

/// Scheduler counters, summed over the runtime's CPUs. See [`Runtime::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Switches because the running thread blocked, slept, yielded or exited.
    pub switches_voluntary: u64,
    /// Switches forced by preemption (always 0 under `Model::None`).
    pub switches_involuntary: u64,
    /// Green threads created.
    pub spawned: u64,
    /// Green threads finished.
    pub exited: u64,
    /// Wakeups made on the woken thread's own CPU (timers, local unparks).
    pub wakeups_local: u64,
    /// Wakeups that came from another OS thread through the wake list.
    pub wakeups_remote: u64,
    /// Times a CPU went idle (waited in epoll).
    pub idle_waits: u64,
    /// Green threads alive now.
    pub live_threads: u64,
    /// Timer interrupts taken by the CPUs (forwarded ones included).
    pub ticks: u64,
    /// Ticks that came over 1.5 periods after the previous one (a loaded host, a
    /// hypervisor stall; `setitimer` loses ticks below ~50 µs on this class of machine).
    pub ticks_late: u64,
    /// Periods that passed without a tick (counted when the late tick arrives).
    pub ticks_lost: u64,
    /// Ticks that landed on a thread that is not a carrier and were forwarded
    /// (process-wide: counts every runtime since the process started).
    pub ticks_forwarded: u64,
    /// Asynchronous preemptions performed (`Full`).
    pub preemptions: u64,
    /// Preemptions deferred because the thread was in atomic context.
    pub deferred_atomic: u64,
    /// Preemptions deferred because the thread was outside the executable's code
    /// (libc, the dynamic loader, the vDSO, another shared object).
    pub deferred_pc: u64,
    /// Ticks latched because the soft irq mask was held.
    pub deferred_irq_mask: u64,
    /// Preemptions deferred because the carrier was panicking.
    pub deferred_panicking: u64,
    /// Times a deadline thread spent its runtime (or ended its job with a yield) and
    /// waited for its next period.
    pub deadline_throttled: u64,
    /// Device interrupts: epoll readiness raised to a busy CPU by the interrupt
    /// controller (and signalled to it, under a model that takes interrupts).
    pub net_interrupts: u64,
    /// Softirq passes over the epoll device (in the scheduler or `ksoftirqd`).
    pub net_softirq_passes: u64,
    /// Events those passes took.
    pub net_events: u64,
    /// Passes that ran out of their NAPI budget and handed the rest to `ksoftirqd`.
    pub net_ksoftirqd_handoffs: u64,
}
