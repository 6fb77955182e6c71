//! The timer interrupt: `SIGALRM` as the hardirq that preempts green threads.
//!
//! The clock-event device (the `tick` module: a per-carrier POSIX timer, or
//! `setitimer`) raises `SIGALRM` every tick while a CPU is busy
//! under a preemptive model (the first tick that finds it idle stops it: tickless
//! idle). The handler,
//! `on_tick`, is the hardirq. It runs on the interrupted green thread's own stack (no
//! `SA_ONSTACK`: a handler that led to a switch must not live on a shared alternate
//! stack) with `SIGALRM` blocked, and it is short: it touches no run queue, timer heap
//! or allocator, only the carrier's `preempt_count`, its soft irq mask and counters.
//!
//! What it decides, in order:
//!
//! 1. not on a carrier (a process-directed `SIGALRM`: the `setitimer` fallback device,
//!    or `kill`; any thread with `SIGALRM` unblocked may take it) → forward it to the
//!    carrier with `tgkill`;
//! 2. the soft irq mask is held ([`save`]) → latch the tick; the mask's release replays
//!    it;
//! 3. the carrier is idle, or the model is `None` → nothing;
//! 4. no queued thread could take the CPU, no remote wakeup waits and no timer is due
//!    → nothing but re-programming the device: stop the tick, keeping a one-shot for
//!    the next timer (read from atomic mirrors the CPU publishes, so a lone thread pays
//!    only for the signal). A timer due within the learned timer advance is waited for
//!    first (`Cpu::arm_timer`). With others queued but none due, a tick finer than
//!    the default relaxes to a backstop period once a computing thread's turn is over
//!    and the running one does not compute (`Cpu::relax_tick`, `Cpu::follow_work`);
//! 5. only the epoll device's deferred poll is due, and the running thread is expected
//!    to switch by itself (picked under 100 µs ago, its bursts shorter, a tick of at
//!    most 1 ms running) → nothing: its switch polls (`Cpu::poll_left_to_switch`);
//! 6. a switch is due (round-robin slices of one tick; due timers are expired by the
//!    scheduler it calls). `Voluntary` → set `NEED_RESCHED`, which
//!    `cond_resched()` and the blocking calls honour. `Full` → preempt now if the
//!    interrupted context is preemptible, else set `NEED_RESCHED` and count the deferral
//!    by reason:
//!    * `preempt_count` non-zero (atomic context; the `enable` that reaches zero
//!      reschedules — invariant 2);
//!    * the interrupted PC outside the executable's own text and the vDSO (libc, the
//!      dynamic loader, other shared objects: their locks and caches are not ours);
//!    * the carrier is panicking (its panic count is shared by every green thread);
//!    * the interrupted PC on the preemption stub's way back (below).
//!
//! To preempt, the handler *redirects* (DESIGN.md §4): it keeps the interrupted RIP in
//! a per-carrier variable, moves RSP below the red zone, points RIP at the assembly
//! stub (`asm/x86_64/preempt.s`) and raises `preempt_count` to the scheduler's offset on
//! the stub's behalf. After sigreturn — so in ordinary context, with `SIGALRM`
//! unblocked again — the stub saves every register and the full XSAVE state, calls
//! `preempt_irq_entry`, which runs `schedule()`, lowers the count (scheduling again if a
//! tick asked meanwhile), restores and returns to the interrupted instruction. The
//! scheduler never runs in signal context, and one preemption's frames never stack up
//! on another's: a tick that lands in the stub finds the count raised, or the PC on
//! the stub's way back, and only defers (past the stub's last look for NEED_RESCHED,
//! asking the device to retry soon).
//!
//! Everything here that the handler reaches is ASYNC-SIGNAL-SAFE: TLS words that are
//! `const`-initialised and `Drop`-free, atomics, and raw system calls.

pub(crate) mod tick;

// Process-wide statics, not protocols loom models: std's atomics (loom's cannot
// initialise a static).
use crate::rt::Model;
use crate::sched::{self, Cpu};
use crate::{arch, debug, preempt, sys};
use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

thread_local! {
    /// The interrupted RIP of a redirected thread, from the handler to the stub.
    static SAVED_RIP: Cell<usize> = const { Cell::new(0) };
    /// Depth of the soft irq mask ([`save`]).
    static IRQ_MASK: Cell<u32> = const { Cell::new(0) };
    /// A tick arrived while the mask was held.
    static IRQ_PENDING: Cell<bool> = const { Cell::new(false) };
    /// When the previous tick arrived (ns on the CPU's clock), for late/lost accounting.
    static LAST_TICK: Cell<u64> = const { Cell::new(0) };
    /// The accounting clock's raw reading and the carrier's CPU time at the previous
    /// tick, for steal accounting ((0, 0): none).
    static LAST_RUN: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The carrier's kernel thread id, where foreign threads forward ticks (0: none).
static CARRIER_TID: AtomicI32 = AtomicI32::new(0);
/// Ticks taken by threads that are not carriers and forwarded.
pub(crate) static TICKS_FORWARDED: AtomicU64 = AtomicU64::new(0);

/// Installs the `SIGALRM` handler, once per process.
///
/// # Errors
/// `ResourceBusy` if another handler for `SIGALRM` is installed: the runtime owns
/// `SIGALRM` and `ITIMER_REAL` while a preemptive runtime runs.
pub(crate) fn install() -> io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    // SAFETY: querying the current disposition into a zeroed struct.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigaction(libc::SIGALRM, std::ptr::null(), &mut old) };
    let ours = on_tick as *const () as usize;
    if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != ours {
        return Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            "SIGALRM already has a handler: a preemptive preempt runtime needs SIGALRM and \
             ITIMER_REAL for its timer interrupt",
        ));
    }
    ONCE.call_once(|| {
        find_vdso();
        find_allowed_libc();
        // SAFETY: a zeroed sigaction filled with our handler; no SA_ONSTACK (the handler
        // may redirect the thread, so it must run on the thread's own stack), no
        // SA_NODEFER (SIGALRM stays blocked while the handler runs), SA_RESTART so
        // interrupted system calls that can restart do.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ours;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) != 0 {
                result = Err(io::Error::last_os_error());
            }
        }
    });
    result
}

/// Whether the installed `SIGALRM` handler has `SA_ONSTACK` (it must not; H9).
pub fn handler_uses_altstack() -> bool {
    // SAFETY: querying the current disposition into a zeroed struct.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigaction(libc::SIGALRM, std::ptr::null(), &mut old) };
    old.sa_flags & libc::SA_ONSTACK != 0
}

/// Called by the carrier as it starts under a preemptive model: ticks go to it, and it
/// takes them.
pub(crate) fn become_carrier() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    CARRIER_TID.store(tid, Ordering::Release);
    set_sigalrm_blocked(false);
    tick::create_for_current_thread();
}

/// Called by the carrier as it ends. `SIGALRM` is blocked first: an IPI or a forwarded
/// tick that arrived later would run the handler on a carrier whose device is gone.
/// (Pending, it dies with the carrier's OS thread.)
pub(crate) fn leave_carrier() {
    set_sigalrm_blocked(true);
    tick::delete();
    CARRIER_TID.store(0, Ordering::Release);
}

/// The signal set holding only `SIGALRM`.
fn sigalrm_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset initialised with the libc helpers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        set
    }
}

/// Blocks or unblocks `SIGALRM` for the calling thread.
pub(crate) fn set_sigalrm_blocked(blocked: bool) {
    let how = if blocked {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: pthread_sigmask on our own thread with a valid set.
    unsafe { libc::pthread_sigmask(how, &sigalrm_set(), std::ptr::null_mut()) };
}

/// Blocks `SIGALRM` on the calling OS thread until dropped, then restores its mask.
pub(crate) struct MaskSigalrm {
    old: libc::sigset_t,
}

impl MaskSigalrm {
    pub(crate) fn new() -> MaskSigalrm {
        // SAFETY: a zeroed sigset the kernel fills with the old mask; pthread_sigmask on
        // our own thread.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &sigalrm_set(), &mut old) };
        MaskSigalrm { old }
    }
}

impl Drop for MaskSigalrm {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new` on this same thread (the guard is
        // created and dropped within one call on one thread).
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// The interval `[start, end)` of the executable's own code: the only place a green
/// thread may be preempted asynchronously.
fn executable_text() -> (usize, usize) {
    unsafe extern "C" {
        // Defined by the linker (GNU ld and lld) for every executable.
        static __executable_start: u8;
        static etext: u8;
    }
    (
        (&raw const __executable_start) as usize,
        (&raw const etext) as usize,
    )
}

/// The vDSO's address range, found once when the handler is installed (0, 0 if none).
static VDSO: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));

/// Reads the vDSO's range from `/proc/self/maps` (not signal context).
fn find_vdso() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines().filter(|l| l.ends_with("[vdso]")) {
        let range = line.split(' ').next().unwrap_or("");
        if let Some((a, b)) = range.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            VDSO.0.store(a, Ordering::Relaxed);
            VDSO.1.store(b, Ordering::Release);
        }
    }
}

/// libc's string routines: pure and lock-free — they touch only their arguments — so a
/// thread may be preempted inside one *when its caller may be*: a long `memcpy` from
/// Rust code stays preemptible, while the one `realloc` makes under the malloc arena's
/// lock does not (preempted there, the next thread to allocate on the carrier would
/// wait for the lock forever). The caller is told by the return address, which a
/// frameless routine keeps at `[rsp]` throughout (`frameless` in `sys::function_at`); glibc's
/// hand-written implementations are. Resolved once with `dlsym` (for IFUNCs, the
/// implementation chosen for this CPU) and sized by libc's unwind table, as an IFUNC's
/// implementation has no dynamic symbol; one that is not frameless stays unpreemptible.
const LEAF_LIBC: [&std::ffi::CStr; 13] = [
    c"memcpy", c"memmove", c"memset", c"memcmp", c"bcmp", c"memchr", c"memrchr", c"strlen",
    c"strnlen", c"strcmp", c"strncmp", c"strchr", c"strrchr",
];
/// libc's clock routines, preemptible wherever they are called from, like the vDSO
/// they read (`preemptible`): they take no lock, and the libc code that calls them
/// with one held (`syslog` stamping a message) is not code a green thread runs.
const CLOCK_LIBC: [&std::ffi::CStr; 3] = [c"clock_gettime", c"gettimeofday", c"time"];

/// The address ranges of [`LEAF_LIBC`] then [`CLOCK_LIBC`]; empty (0, 0) where not found.
static ALLOWED: [(AtomicUsize, AtomicUsize); LEAF_LIBC.len() + CLOCK_LIBC.len()] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; LEAF_LIBC.len() + CLOCK_LIBC.len()];

/// Finds the allowed libc routines' address ranges (not signal context).
fn find_allowed_libc() {
    let names = LEAF_LIBC.iter().map(|n| (n, true));
    let names = names.chain(CLOCK_LIBC.iter().map(|n| (n, false)));
    for ((name, leaf), slot) in names.zip(&ALLOWED) {
        // SAFETY: dlsym with a NUL-terminated name in the default namespace.
        let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
        if let Some(f) = sys::function_at(addr)
            && f.start == addr
            && (f.frameless || !leaf)
        {
            slot.0.store(f.start, Ordering::Relaxed);
            slot.1.store(f.end, Ordering::Release);
        }
    }
}

/// Whether `pc` lies in the executable's own code.
fn in_executable(pc: usize) -> bool {
    let (start, end) = executable_text();
    pc >= start && pc < end
}

/// Whether a thread interrupted at `pc` with stack pointer `sp` may be preempted: the
/// executable's own code, the vDSO — whose clock routines are pure and lock-free (a
/// sequence-count read of a shared page, no per-thread state) — and the allowed libc
/// routines above. Everything else (the rest of libc, the dynamic loader, other shared
/// objects) holds locks and per-thread caches we cannot see. ASYNC-SIGNAL-SAFE.
///
/// # Safety
/// `sp` is the interrupted thread's stack pointer, with its stack mapped above it.
unsafe fn preemptible(pc: usize, sp: usize) -> bool {
    if in_executable(pc) {
        // Except the mutex fast path's window (`asm/x86_64/mutex.s`).
        let (w0, w1) = arch::mutex_trylock_window();
        return !(pc >= w0 && pc < w1);
    }
    let vdso_end = VDSO.1.load(Ordering::Acquire);
    if pc >= VDSO.0.load(Ordering::Relaxed) && pc < vdso_end {
        return true;
    }
    let within = |(s, e): &(AtomicUsize, AtomicUsize)| {
        let end = e.load(Ordering::Acquire);
        pc >= s.load(Ordering::Relaxed) && pc < end
    };
    let (leaves, clocks) = ALLOWED.split_at(LEAF_LIBC.len());
    if clocks.iter().any(within) {
        return true;
    }
    // SAFETY: inside a frameless routine `[sp]` is its return address, on the mapped
    // stack (per the contract).
    leaves.iter().any(within) && in_executable(unsafe { *(sp as *const usize) })
}

/// The `SIGALRM` handler. ASYNC-SIGNAL-SAFE.
extern "C" fn on_tick(_sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; save it so the interrupted code never sees ours.
    let errno = unsafe { *libc::__errno_location() };
    // A `tgkill` from the runtime itself (a remote wakeup's IPI, the epoll device's
    // interrupt) rather than the clock-event device: not a tick.
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
    let ipi = unsafe { (*info).si_code } == libc::SI_TKILL;
    match sched::this_cpu() {
        Some(cpu) => {
            let outer = cpu.irq_time_enter();
            hardirq(cpu, uctx.cast(), ipi);
            if outer {
                cpu.irq_time_exit();
            }
        }
        None => forward(),
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// A tick that landed on a thread that is not a carrier goes to the carrier.
fn forward() {
    let tid = CARRIER_TID.load(Ordering::Acquire);
    if tid != 0 {
        TICKS_FORWARDED.fetch_add(1, Ordering::Relaxed);
        // SAFETY: tgkill with plain integers; a stale tid at worst signals nobody.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGALRM) };
    }
}

fn hardirq(cpu: &Cpu, uctx: *mut libc::ucontext_t, ipi: bool) {
    // irq_enter: the interrupted count, plus HARDIRQ for the handler's duration (so
    // `in_interrupt()` holds and `might_sleep` aborts here); irq_exit restores it.
    let interrupted = preempt::raw();
    preempt::set_raw(interrupted + preempt::HARDIRQ_OFFSET);
    if !ipi {
        tick::expired();
    }
    let redirected = if !ipi && cpu.is_idle() {
        // Tickless idle (the idle loop leaves the device running into its wait): no
        // thread ran, nothing to account or learn.
        cpu.idle_tick();
        restart_tick_accounting();
        false
    } else {
        if !ipi {
            cpu.timer_interrupt();
            account_tick(cpu);
        }
        tick_work(cpu, uctx, interrupted)
    };
    let after = preempt::raw() - preempt::HARDIRQ_OFFSET;
    preempt::set_raw(if redirected {
        // On the stub's behalf (module docs); NEED_RESCHED is consumed by the switch.
        preempt::SCHED_OFFSET
    } else {
        after
    });
}

/// Forgets the previous tick: the device was stopped (tickless idle) or is new.
pub(crate) fn restart_tick_accounting() {
    LAST_TICK.with(|t| t.set(0));
    LAST_RUN.with(|t| t.set((0, 0)));
}

/// Accounts the tick: late when it comes over 1.5 periods after the previous one, and
/// every whole period beyond the first then counts as lost. (One-shots and retries come
/// early on purpose; only lateness is counted.)
///
/// And steal time: the device runs only while the carrier is busy (it stops as the
/// carrier idles, and this accounting restarts with it), so wall time since the
/// previous tick that the carrier's own CPU time does not show was taken from it — the
/// hypervisor stalled the virtual CPU (1–9 ms, a few a second on a busy host; the
/// kernel of the virtual machine leaves that out of thread CPU time), or the host ran
/// something else, or a thread slept in a system call. The accounting clock leaves it
/// out, as the kernel's steal-time accounting leaves it out of task run time. Charged
/// to whichever thread was running, a stall of a millisecond or two put a request
/// handler that far ahead of its share, and fifty siblings each took their turn first
/// (the HTTP bench's `/` under the fair class: waits of up to 240 ms). One system call
/// per tick. ASYNC-SIGNAL-SAFE.
fn account_tick(cpu: &Cpu) {
    let stats = &cpu.stats;
    sched::bump(&stats.ticks);
    let now = cpu.now_ns();
    // Measured on the accounting clock itself, whose time it takes out.
    let (wall, ran) = (cpu.acct_raw(), sys::thread_cpu_time_ns());
    let (prev_wall, prev_ran) = LAST_RUN.with(|t| t.replace((wall, ran)));
    if prev_wall != 0 {
        let elapsed = wall.saturating_sub(prev_wall);
        cpu.steal(elapsed.saturating_sub(ran.saturating_sub(prev_ran)));
    }
    cpu.sync_clocks(now);
    let prev = LAST_TICK.with(|t| t.replace(now));
    let period = cpu.tick_period().as_nanos() as u64;
    if prev != 0 && now - prev > period + period / 2 {
        sched::bump(&stats.ticks_late);
        let lost = (now - prev) / period - 1;
        stats.ticks_lost.store(
            stats.ticks_lost.load(Ordering::Relaxed) + lost,
            Ordering::Relaxed,
        );
    }
}

/// The tick's decisions (module docs, steps 2–6). Returns whether it redirected the
/// thread to the preemption stub. ASYNC-SIGNAL-SAFE.
fn tick_work(cpu: &Cpu, uctx: *mut libc::ucontext_t, raw: u32) -> bool {
    let stats = &cpu.stats;
    if IRQ_MASK.with(Cell::get) != 0 {
        IRQ_PENDING.with(|p| p.set(true));
        sched::bump(&stats.deferred_irq_mask);
        return false;
    }
    let model = cpu.config.model;
    if model == Model::None {
        return false;
    }
    if !cpu.has_current() {
        // The idle loop, or a switch between threads: nothing to preempt. But the idle
        // loop may have looked for work already and be about to resume a thread: work
        // that is due now (a timer) is left to that thread's `enable`, as in atomic
        // context. And this may be a one-shot programmed the timer advance early,
        // consumed here before its timer is due; the device would then stay silent
        // (stopped) or wait for its next tick (periodic) while that thread runs, and
        // the timer would be up to that long late. Program the device again for the
        // earliest event.
        if cpu.switch_wanted() {
            preempt::set_need_resched();
        }
        if tick::is_stopped() {
            cpu.stop_tick_if_alone();
        } else {
            cpu.arm_timer_before_next_tick();
        }
        return false;
    }
    if model >= Model::Full && raw & !preempt::NEED_RESCHED == 0 {
        // A one-shot programmed early for a wakeup (`Cpu::arm_timer`).
        cpu.await_imminent_timer();
    }
    if !cpu.switch_wanted() {
        if cpu.has_contender() {
            // A fair-class peer waits for the running thread's slice to end: the tick
            // keeps going, and an end before the next tick gets a one-shot. A thread
            // that does not compute needs only the backstop period.
            cpu.fine_if_computing();
            cpu.relax_tick();
            cpu.arm_timer_before_next_tick();
            return false;
        }
        // Nothing else to run and no timer due: the tick costs nothing more, and with no
        // timer pending at all it stops (tickless full). A timer due before the next
        // tick (this one came early: `setitimer` counts microseconds) gets a one-shot of
        // its own.
        cpu.stop_tick_if_alone();
        return false;
    }
    if cpu.poll_left_to_switch() {
        // Only a deferred poll, which the running thread's own switch takes in time.
        // Should that thread compute after all, the next tick switches for the poll.
        cpu.relax_tick();
        return false;
    }
    cpu.arm_timer_before_next_tick();
    if model == Model::Voluntary {
        preempt::set_need_resched();
        return false;
    }
    // SAFETY: the kernel passes a valid ucontext to SA_SIGINFO handlers; gregs holds the
    // interrupted thread's registers, which sigreturn will load.
    let gregs = unsafe { &mut (*uctx).uc_mcontext.gregs };
    let pc = gregs[libc::REG_RIP as usize] as usize;
    let (back, checked, end) = arch::irq_stub_return();
    if pc >= back && pc < end {
        // The stub's way back from a preemption: redirecting would stack a second frame
        // of the stub on this one (preempt.s). It looks for NEED_RESCHED as it lowers
        // the count and schedules again; past that look, ask again in a moment, when
        // the thread is back in its own code.
        preempt::set_need_resched();
        sched::bump(&stats.deferred_pc);
        if pc >= checked {
            tick::fire_by(MIN_RETRY, cpu.tick_period());
        }
        return false;
    }
    if raw & !preempt::NEED_RESCHED != 0 {
        // The `enable` that brings the count to zero switches: no retry needed.
        preempt::set_need_resched();
        sched::bump(&stats.deferred_atomic);
        return false;
    }
    if std::thread::panicking() {
        preempt::set_need_resched();
        sched::bump(&stats.deferred_panicking);
        return false;
    }
    // SAFETY: RSP as interrupted, on the thread's own stack (the handler runs there).
    if !unsafe { preemptible(pc, gregs[libc::REG_RSP as usize] as usize) } {
        preempt::set_need_resched();
        sched::bump(&stats.deferred_pc);
        retry_soon_if_urgent(cpu);
        return false;
    }
    // Redirect: after sigreturn the thread runs the stub, below its red zone.
    SAVED_RIP.with(|r| r.set(pc));
    gregs[libc::REG_RSP as usize] -= arch::STUB_RSP_DROP as i64;
    gregs[libc::REG_RIP as usize] = arch::irq_stub() as i64;
    sched::bump(&stats.preemptions);
    true
}

/// After a deferral in foreign code, a sleeper whose timer is due, or the epoll
/// device's interrupt, should not wait a whole tick: ask again after the shortest period
/// the device keeps reliably. So should the device's deferred poll, once per turn, if
/// the thread computes: deferred in a system call, it is likely one that just received
/// its input and is about to compute without entering the scheduler (a `/spin` request
/// handler in `recv` held its siblings' requests up to a tick). The device's interrupt
/// is not urgent while the running thread is expected to switch by itself within
/// 100 µs of its pick and a tick of at most the default period backs that up
/// (`Cpu::switches_soon`): its switch runs the pass, and a retry — a re-programming
/// and an interrupt, some 20 µs here — would gain the pass nothing (an HTTP server's
/// request handlers, caught in `send` by the interrupt, cost 1,500 retries a second at
/// the 1 ms tick). ASYNC-SIGNAL-SAFE.
fn retry_soon_if_urgent(cpu: &Cpu) {
    // (Not more: a request handler that never blocks under load computes too, and sits
    // in its syscalls, where a tick lands most of the time and defers; retrying every
    // 50 µs for it cost an HTTP server a third of its throughput, and retries at
    // doubling delays cost the fair class with fifty handlers about a tenth.)
    let now = cpu.now_ns();
    let urgent = cpu.next_timer.load(Ordering::Relaxed) <= now
        || (cpu.net.interrupt_pending() && !cpu.switches_soon(now))
        || (cpu.net.poll_due() <= now && cpu.take_compute_retry());
    if urgent && cpu.tick_period() > MIN_RETRY {
        tick::oneshot_then_periodic(MIN_RETRY, cpu.tick_period());
    } else if tick::is_stopped() {
        // Whatever the switch is for, a stopped device (a lone thread, tickless) must
        // still interrupt within a period, as a tick would: a thread that lives in
        // system calls never enters the scheduler on its own, and a deferred poll that
        // is due has no one-shot left. (A nearer one-shot — a sleeper's — stays.)
        tick::fire_by(cpu.tick_period(), cpu.tick_period());
    }
}

/// The retry delay after a deferral: `setitimer`'s reliable minimum on this class of
/// machine.
const MIN_RETRY: std::time::Duration = crate::rt::MIN_TICK;

/// Called by the preemption stub, in ordinary context, with `preempt_count` raised to
/// the scheduler's offset by the handler. Switches away; returns, once this thread is
/// resumed, the instruction it was interrupted at, with the count still raised: the
/// stub lowers it, and calls again if a tick asked for a switch meanwhile (the kernel's
/// `preempt_schedule_irq` loop), passing back the `rip` it was given (0 on the first
/// call). No tick redirects the thread before its frame of the stub is gone (preempt.s).
#[unsafe(no_mangle)]
extern "sysv64" fn preempt_irq_entry(rip: usize) -> arch::StubReturn {
    // Read before scheduling: another thread's preemption reuses the variable.
    let rip = if rip == 0 {
        SAVED_RIP.with(Cell::get)
    } else {
        rip
    };
    let Some(cpu) = sched::this_cpu() else {
        debug::fatal("preempt: the preemption stub ran outside a carrier");
    };
    // SAFETY: the current green thread of `cpu`, count == SCHED_OFFSET (set by the
    // handler, or raised again by the stub); its state is RUNNING, so it is re-queued
    // behind its equals.
    unsafe { sched::schedule_involuntary(cpu) };
    debug_assert_eq!(preempt::count(), preempt::SCHED_OFFSET);
    arch::StubReturn {
        rip,
        count: preempt::word(),
    }
}

/// Masks the timer interrupt's effects on this carrier until the guard is dropped: a
/// tick that arrives meanwhile is latched, and replayed when the mask is released (the
/// kernel's `local_irq_save`/`restore`, done with a flag instead of `sigprocmask`).
///
/// Also disables preemption, as masking interrupts does in the kernel.
#[must_use = "the mask is released as soon as the guard is dropped"]
pub fn save() -> IrqGuard {
    let guard = preempt::disable();
    IRQ_MASK.with(|m| m.set(m.get() + 1));
    IrqGuard {
        _preempt: guard,
        _not_send: PhantomData,
    }
}

/// Releases the soft irq mask when dropped; see [`save`].
#[derive(Debug)]
pub struct IrqGuard {
    _preempt: preempt::PreemptGuard,
    _not_send: PhantomData<*const ()>,
}

impl Drop for IrqGuard {
    fn drop(&mut self) {
        let depth = IRQ_MASK.with(|m| {
            let d = m.get() - 1;
            m.set(d);
            d
        });
        if depth == 0 && IRQ_PENDING.with(|p| p.replace(false)) {
            // Replay the latched tick: a switch, if one is due, is taken when
            // preemption is enabled by `_preempt`'s drop right after this.
            if let Some(cpu) = sched::this_cpu()
                && cpu.config.model != Model::None
                && cpu.has_current()
            {
                if cpu.switch_wanted() {
                    preempt::set_need_resched();
                } else {
                    // The latched tick was a timer's one-shot that came early: program
                    // it again, or nothing would interrupt for that timer.
                    cpu.stop_tick_if_alone();
                }
            }
        }
    }
}

/// Runs `f` in hardirq context, as the timer interrupt's handler runs: `preempt_count`
/// raised by `HARDIRQ_OFFSET`, so [`in_interrupt`](crate::in_interrupt) holds and a
/// blocking call is reported and aborts (nothing may unwind out of an interrupt).
///
/// For the runtime's own tests of the hardirq rules; not part of the API.
#[doc(hidden)]
pub fn __run_in_hardirq<R>(f: impl FnOnce() -> R) -> R {
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            preempt::set_raw(preempt::raw() - preempt::HARDIRQ_OFFSET);
        }
    }
    // Like the handler, with the tick's effects masked so no real tick interleaves.
    let _mask = save();
    preempt::set_raw(preempt::raw() + preempt::HARDIRQ_OFFSET);
    let _exit = Exit;
    f()
}

/// Whether the soft irq mask is held on this carrier.
pub fn irqs_disabled() -> bool {
    IRQ_MASK.with(Cell::get) != 0
}
