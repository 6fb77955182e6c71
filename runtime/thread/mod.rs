//! Green threads, with std's names: `spawn`, `Builder`, `JoinHandle`, `current`,
//! `park`/`unpark`, `sleep`, `yield_now`, `scope`.
//!
//! Code written against `std::thread` ports by changing the import. The differences:
//! threads are green (they run on the runtime's carrier, not an OS thread of their own);
//! they have a [`Priority`]; and the calls that need a runtime — spawning, sleeping,
//! parking, yielding, `current` — panic when made outside one, naming the call.
//! [`Thread::unpark`] and [`JoinHandle::join`] work from any thread, green or not.
//!
//! ## A thread's life
//!
//! `spawn` takes a stack from its CPU's pool, writes the closure and a
//! [`Packet`](self) for its result at the top of that stack (no allocation for the
//! closure), lays out a first frame that enters `thread_start`, and queues the task.
//! `thread_start` runs the closure under `catch_unwind` — no unwinding ever crosses the
//! assembly — stores the result in the packet, wakes a joiner if one waits, and switches
//! away for the last time; the CPU then takes its stack back.

pub(crate) mod local;
mod scope;

pub use crate::sched::Priority;
pub use crate::task::ThreadId;
pub use local::LocalKey;
pub use scope::{Scope, ScopedJoinHandle, scope};

use crate::arch;
use crate::loom::sync::atomic::{AtomicU8, Ordering};
use crate::rt::Runtime;
use crate::sched::{self, Cpu, Waiter};
use crate::stack;
use crate::task::Task;
use std::cell::UnsafeCell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Configures a green thread before spawning it, like [`std::thread::Builder`].
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    policy: Policy,
    nice: i8,
}

/// How a thread is scheduled: by a fixed priority, or by deadline.
///
/// The classes are stacked as in Linux: deadline threads run before every fixed
/// priority; real-time priorities `1..=99` before the normal class at
/// [`Priority::DEFAULT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// A fixed priority ([`Builder::priority`]).
    Priority(Priority),
    /// The deadline class (the kernel's `SCHED_DEADLINE`): every `period` the thread
    /// may run for `runtime`, and its work of the period is due `deadline` after the
    /// period starts; among deadline threads the earliest deadline runs
    /// (earliest-deadline-first). The thread's first period starts when it is spawned
    /// (and again whenever it wakes too late to fit its budget before its deadline).
    ///
    /// * **Admission**: `spawn` reserves `runtime / period` of the CPU and fails with
    ///   `ResourceBusy` if the CPU's deadline threads would need more than all of it.
    /// * **Throttling**: a thread that runs out of `runtime` within a period stops until
    ///   its next period, whatever it is doing (under the preemptive models; under
    ///   `None` and `Voluntary` the end of the budget takes effect when the thread next
    ///   enters the scheduler, as any preemption does there).
    /// * **End of job**: [`yield_now`] says this period's work is done: the thread
    ///   sleeps until its next period begins, with a fresh budget.
    ///
    /// `spawn` returns `InvalidInput` unless `1 µs ≤ runtime ≤ deadline ≤ period ≤ 10 s`.
    Deadline {
        /// CPU time granted per period.
        runtime: Duration,
        /// When the period's work is due, relative to the period's start.
        deadline: Duration,
        /// The period.
        period: Duration,
    },
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::Priority(Priority::DEFAULT)
    }
}

impl Builder {
    /// A builder with the runtime's defaults: no name, the runtime's stack size,
    /// [`Priority::DEFAULT`].
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the thread (shown in panic messages, overflow reports and traces).
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// The stack size in bytes, rounded up to whole pages; at least
    /// [`min_stack_size()`](crate::min_stack_size).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// The scheduling priority (default [`Priority::DEFAULT`]); the same as
    /// `policy(Policy::Priority(priority))`.
    pub fn priority(mut self, priority: Priority) -> Builder {
        self.policy = Policy::Priority(priority);
        self
    }

    /// The scheduling policy: a fixed priority, or a deadline reservation (see
    /// [`Policy::Deadline`]). Validated (and a deadline admitted) by `spawn`.
    pub fn policy(mut self, policy: Policy) -> Builder {
        self.policy = policy;
        self
    }

    /// The nice value, −20 (most CPU) ..= 19 (least), default 0: the thread's weight in
    /// the fair class, as in Linux — each step is about 1.25× — so two CPU hogs at nice 0
    /// and 5 share the CPU about 3 : 1. Only threads at [`Priority::DEFAULT`] are
    /// scheduled by weight; a real-time thread keeps the value for when it returns to
    /// the normal class. Validated by `spawn`.
    pub fn nice(mut self, nice: i8) -> Builder {
        self.nice = nice;
        self
    }

    /// Spawns the thread on the caller's runtime.
    ///
    /// # Errors
    /// `InvalidInput` for a stack size below the minimum, a nice value outside −20..=19,
    /// deadline parameters out of order or a name containing NUL; `ResourceBusy` for
    /// a deadline reservation the CPU cannot admit (see [`Policy::Deadline`]);
    /// the OS error (with advice on `vm.max_map_count`) if its stack cannot be mapped.
    ///
    /// # Panics
    /// If called outside a green thread; use [`Builder::spawn_in`] there.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(task) = sched::current_arc() else {
            sched::no_runtime("preempt::thread::Builder::spawn")
        };
        let cpu = task.cpu.clone();
        self.spawn_on(&cpu, f)
    }

    /// Spawns the thread on `rt` from any thread, green or not.
    ///
    /// # Errors
    /// As for [`Builder::spawn`].
    pub fn spawn_in<F, T>(self, rt: &Runtime, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_on(rt.cpu(), f)
    }

    pub(crate) fn spawn_on<F, T>(self, cpu: &Arc<Cpu>, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: F and T are 'static, so nothing they borrow can end before the thread.
        unsafe { self.spawn_unchecked(cpu, f, None) }
    }

    /// Spawns without requiring `'static`.
    ///
    /// # Safety
    /// Everything `f` and its result borrow must outlive the thread; `scope` guarantees
    /// it by waiting for every thread it spawned.
    pub(crate) unsafe fn spawn_unchecked<'a, F, T>(
        self,
        cpu: &Arc<Cpu>,
        f: F,
        scope: Option<Arc<scope::ScopeData>>,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'a,
        T: Send + 'a,
    {
        let name = match self.name {
            Some(n) if n.contains('\0') => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("thread name {n:?} contains a NUL byte"),
                ));
            }
            n => n.map(String::into_boxed_str),
        };
        check_nice(self.nice)?;
        let (priority, dl) = match self.policy {
            Policy::Priority(p) => (p, None),
            Policy::Deadline {
                runtime,
                deadline,
                period,
            } => (
                Priority::DEFAULT,
                Some(sched::DlParams::new(runtime, deadline, period)?),
            ),
        };
        let stack_size = match self.stack_size {
            Some(s) => checked_stack_size(s)?,
            None => cpu.config.default_stack,
        };
        let packet = Arc::new(Packet {
            state: AtomicU8::new(PACKET_RUNNING),
            waiter: UnsafeCell::new(None),
            result: UnsafeCell::new(None),
            scope,
        });
        let start = Start {
            f,
            packet: packet.clone(),
        };
        let spec = sched::Spec {
            name,
            prio: priority,
            nice: self.nice,
            dl,
            stack_size,
        };
        let task = sched::spawn_on(cpu, spec, move |stack| {
            // The start record goes at the top of the stack, the first frame below it.
            let top = stack.top() as usize;
            let align = align_of::<Start<F, T>>().max(16);
            let record = (top - size_of::<Start<F, T>>()) & !(align - 1);
            let bottom = top - stack.size();
            if record.saturating_sub(bottom) < arch::FRAME_SIZE + MIN_ROOM {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the thread's closure ({} bytes) does not fit its {} KiB stack",
                        size_of::<Start<F, T>>(),
                        stack.size() >> 10
                    ),
                ));
            }
            let record = record as *mut Start<F, T>;
            // SAFETY: `record` is aligned for Start and lies inside this new stack, which
            // nothing else uses yet; the first frame goes below it, 16-aligned, with room
            // checked above.
            unsafe {
                record.write(start);
                Ok(arch::init_stack(
                    record.cast::<u8>(),
                    thread_start::<F, T>,
                    record.cast(),
                ))
            }
        })?;
        Ok(JoinHandle {
            thread: Thread { task },
            packet,
        })
    }
}

fn check_nice(nice: i8) -> io::Result<()> {
    if (-20..=19).contains(&nice) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("nice value {nice} is outside -20..=19"),
        ))
    }
}

/// Bytes a new thread needs below its start record besides the first frame.
const MIN_ROOM: usize = 4 << 10;

/// Validates a requested stack size and rounds it to pages.
pub(crate) fn checked_stack_size(bytes: usize) -> io::Result<usize> {
    let min = stack::min_stack_size();
    let rounded = stack::round_to_pages(bytes);
    if rounded < min {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "stack size {bytes} bytes is below the minimum of {min} bytes ({} KiB) on this \
                 machine (room for the timer interrupt's signal frame and the thread's entry)",
                min >> 10
            ),
        ));
    }
    Ok(rounded)
}

/// The record a new thread finds at the top of its stack.
struct Start<F, T> {
    f: F,
    packet: Arc<Packet<T>>,
}

/// The first Rust frame of every green thread (called by the entry trampoline).
///
/// # Safety
/// `arg` points to a `Start<F, T>` written by `spawn_unchecked`, read exactly once here.
unsafe extern "sysv64" fn thread_start<F, T>(arg: *mut u8) -> !
where
    F: FnOnce() -> T,
{
    sched::enter_new_thread();
    // SAFETY: per the contract; the record is never read again.
    let Start { f, packet } = unsafe { arg.cast::<Start<F, T>>().read() };
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // Task-locals are dropped here, on their own thread (they need not be Send).
    if panic::catch_unwind(local::drop_all).is_err() {
        crate::debug::fatal("preempt: a task-local destructor panicked");
    }
    // SAFETY: only this thread writes the result, before publishing DONE.
    unsafe { *packet.result.get() = Some(result) };
    packet.complete();
    // Dropping our reference may drop an unjoined result, whose destructor may panic:
    // nothing may unwind out of here.
    if panic::catch_unwind(AssertUnwindSafe(move || drop(packet))).is_err() {
        crate::debug::fatal("preempt: a green thread's result panicked while being dropped");
    }
    sched::exit_current()
}

const PACKET_RUNNING: u8 = 0;
const PACKET_WAITING: u8 = 1;
const PACKET_DONE: u8 = 2;

/// A thread's result slot, shared by the thread and its `JoinHandle`.
///
/// `state`: `RUNNING → WAITING` (the joiner, after storing `waiter`) and
/// `RUNNING | WAITING → DONE` (the thread, after storing `result`; it wakes `waiter` if
/// it saw `WAITING`). After its CAS the joiner never touches `waiter` again; after
/// `DONE` the thread never touches `result` again.
struct Packet<T> {
    state: AtomicU8,
    waiter: UnsafeCell<Option<Waiter>>,
    result: UnsafeCell<Option<std::thread::Result<T>>>,
    scope: Option<Arc<scope::ScopeData>>,
}

// SAFETY: `waiter` and `result` are handed from one side to the other through `state`
// (the protocol above), so they are never accessed concurrently; T: Send is required
// because the result crosses threads.
unsafe impl<T: Send> Sync for Packet<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Packet<T> {}

impl<T> Packet<T> {
    fn complete(&self) {
        if self.state.swap(PACKET_DONE, Ordering::AcqRel) == PACKET_WAITING {
            // SAFETY: the joiner stored `waiter` before its CAS to WAITING (which our
            // swap read) and no longer touches it.
            if let Some(w) = unsafe { (*self.waiter.get()).take() } {
                w.wake();
            }
        }
    }

    fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == PACKET_DONE
    }

    #[track_caller]
    fn join(&self) -> std::thread::Result<T> {
        if !self.is_done() {
            // SAFETY: only the joiner writes `waiter`, before publishing it by the CAS.
            unsafe { *self.waiter.get() = Some(Waiter::current()) };
            if self
                .state
                .compare_exchange(
                    PACKET_RUNNING,
                    PACKET_WAITING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                Waiter::wait_until(|| self.is_done());
            }
        }
        // SAFETY: DONE was observed with Acquire: the thread wrote the result before it
        // and will not touch it again.
        unsafe { (*self.result.get()).take() }.expect("thread result taken twice")
    }
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        let unhandled_panic = matches!(self.result.get_mut(), Some(Err(_)));
        // Drop the result before telling the scope: it may borrow from it.
        if panic::catch_unwind(AssertUnwindSafe(|| *self.result.get_mut() = None)).is_err() {
            crate::debug::fatal("preempt: a green thread's result panicked while being dropped");
        }
        if let Some(scope) = &self.scope {
            scope.decrement_num_running_threads(unhandled_panic);
        }
    }
}

/// An owned permission to join a green thread, like [`std::thread::JoinHandle`].
///
/// Dropping it detaches the thread (it keeps running; the runtime's drop waits for it).
#[derive(Debug)]
pub struct JoinHandle<T> {
    thread: Thread,
    packet: Arc<Packet<T>>,
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to finish and returns its result: `Err(payload)` if it
    /// panicked, like std.
    ///
    /// Works from a green thread (which parks) and from any OS thread (which parks in
    /// the kernel).
    ///
    /// # Panics
    /// If the thread tries to join itself (`ErrorKind::Deadlock`), like std.
    #[track_caller]
    pub fn join(self) -> std::thread::Result<T> {
        check_not_self(&self.thread);
        self.packet.join()
    }

    /// The thread's handle.
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Whether the thread has finished running its closure.
    pub fn is_finished(&self) -> bool {
        self.packet.is_done()
    }
}

impl<T> std::fmt::Debug for Packet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("done", &self.is_done())
            .finish()
    }
}

#[track_caller]
fn check_not_self(t: &Thread) {
    if sched::current_task() == Some(Arc::as_ptr(&t.task)) {
        let e = io::Error::new(
            io::ErrorKind::Deadlock,
            format!("thread '{}' tried to join itself", t.task.display_name()),
        );
        panic!("failed to join thread: {e} ({})", e.kind());
    }
}

/// A handle to a green thread, like [`std::thread::Thread`].
#[derive(Clone)]
pub struct Thread {
    pub(crate) task: Arc<Task>,
}

impl Thread {
    /// The thread's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.task.name.as_deref()
    }

    /// The thread's unique id.
    pub fn id(&self) -> ThreadId {
        self.task.id
    }

    /// The thread's priority ([`Priority::MAX`] for a deadline thread, which runs
    /// before every priority).
    pub fn priority(&self) -> Priority {
        self.task.prio.min(Priority::MAX)
    }

    /// The thread's scheduling policy.
    pub fn policy(&self) -> Policy {
        match self.task.dl {
            Some(p) => Policy::Deadline {
                runtime: Duration::from_nanos(p.runtime),
                deadline: Duration::from_nanos(p.deadline),
                period: Duration::from_nanos(p.period),
            },
            None => Policy::Priority(self.task.prio),
        }
    }

    /// The thread's nice value (see [`Builder::nice`]).
    pub fn nice(&self) -> i8 {
        self.task.stats.nice.load(Relaxed)
    }

    /// The thread's scheduling statistics, as of its last switch. Callable from any
    /// thread.
    pub fn stats(&self) -> ThreadStats {
        let s = &self.task.stats;
        ThreadStats {
            runtime: Duration::from_nanos(s.runtime_ns.load(Relaxed)),
            wait_time: Duration::from_nanos(s.wait_ns.load(Relaxed)),
            voluntary_switches: s.voluntary.load(Relaxed),
            involuntary_switches: s.involuntary.load(Relaxed),
            lag_ns: s.lag_ns.load(Relaxed),
        }
    }

    /// Makes the thread's park token available, waking it if it is parked.
    ///
    /// Callable from any thread, green or not: a wakeup from outside the thread's CPU
    /// goes through that CPU's lock-free wake list and rings its doorbell if it is idle.
    pub fn unpark(&self) {
        sched::unpark(&self.task);
    }
}

impl std::fmt::Debug for Thread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thread")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("priority", &self.priority())
            .finish()
    }
}

/// A green thread's scheduling statistics (see [`Thread::stats`]), counted at its
/// switches: the time of a thread that is running now is counted up to its last switch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadStats {
    /// CPU time the thread has run.
    pub runtime: Duration,
    /// Time it has spent runnable but waiting for the CPU.
    pub wait_time: Duration,
    /// Times it gave up the CPU itself: blocked, slept, yielded or exited.
    pub voluntary_switches: u64,
    /// Times it was preempted.
    pub involuntary_switches: u64,
    /// Its lag in the fair class, in nanoseconds of CPU at nice 0, as of its last
    /// preemption, block or exit: positive when it is owed CPU, negative when it has had
    /// more than its share (0 under round-robin or for real-time threads that never ran
    /// in the normal class).
    pub lag_ns: i64,
}

/// Sets the calling thread's nice value (see [`Builder::nice`]), keeping its place:
/// its lag and the rest of its current slice are rescaled to the new weight.
///
/// # Errors
/// `InvalidInput` for a value outside −20..=19.
///
/// # Panics
/// Outside a green thread.
#[track_caller]
pub fn set_nice(nice: i8) -> io::Result<()> {
    check_nice(nice)?;
    let (cpu, t) = sched::current_or_panic("preempt::thread::set_nice");
    sched::set_nice_current(cpu, t, nice);
    Ok(())
}

/// Spawns a green thread on the caller's runtime, like [`std::thread::spawn`].
///
/// # Panics
/// Outside a green thread, or if the thread cannot be created (use [`Builder::spawn`]
/// to get the error).
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("failed to spawn green thread: {e}"))
}

/// The calling green thread's handle.
///
/// # Panics
/// Outside a green thread.
#[track_caller]
pub fn current() -> Thread {
    try_current().unwrap_or_else(|| sched::no_runtime("preempt::thread::current"))
}

/// The calling green thread's handle, or `None` on a plain OS thread.
pub fn try_current() -> Option<Thread> {
    sched::current_arc().map(|task| Thread { task })
}

/// Lets the next runnable thread of the same or higher priority run.
///
/// In the fair class ([`Builder::fair`](crate::Builder::fair)) another thread of the
/// class runs next if there is one, even one that has had more than its share.
///
/// A thread that is unwinding (in a destructor during a panic) keeps its CPU: the panic
/// count is per OS thread, shared by the CPU's green threads.
///
/// # Panics
/// Outside a green thread.
#[track_caller]
pub fn yield_now() {
    match sched::this_cpu() {
        Some(_) if std::thread::panicking() => {}
        Some(cpu) if cpu.has_current() => sched::yield_current(cpu),
        _ => sched::no_runtime("preempt::thread::yield_now"),
    }
}

/// Switches to another thread if the timer interrupt has asked for a switch
/// (`NEED_RESCHED`) and the caller is preemptible; otherwise returns at once.
///
/// The preemption points of `Model::Voluntary`: call it in long computations. Cheap
/// when no switch is due (one thread-local read). Outside a green thread it does
/// nothing.
pub fn cond_resched() {
    sched::cond_resched()
}

/// Sleeps for at least `dur`, letting other threads run. Never returns early.
///
/// # Panics
/// Outside a green thread, or in atomic context (the `might_sleep` report).
#[track_caller]
pub fn sleep(dur: Duration) {
    crate::time::sleep(dur)
}

/// Sleeps until `deadline`, letting other threads run. Never returns early.
///
/// # Panics
/// As for [`sleep`].
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    crate::time::sleep_until(deadline)
}

/// Blocks until the thread's park token is available, then consumes it, like
/// [`std::thread::park`]. May return spuriously.
///
/// # Panics
/// As for [`sleep`].
#[track_caller]
pub fn park() {
    crate::preempt::might_sleep();
    let (cpu, t) = sched::current_or_panic("preempt::thread::park");
    sched::park_current(cpu, t, None);
}

/// Like [`park`], returning after `dur` at the latest.
///
/// # Panics
/// As for [`sleep`].
#[track_caller]
pub fn park_timeout(dur: Duration) {
    crate::preempt::might_sleep();
    let (cpu, t) = sched::current_or_panic("preempt::thread::park_timeout");
    let deadline = Instant::now()
        .checked_add(dur)
        .map(|d| cpu.instant_to_ns(d));
    sched::park_current(cpu, t, deadline);
}
