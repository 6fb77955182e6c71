//! Tasks: the work the runtime runs.
//!
//! The public part is [`spawn_blocking`], which hands a call that would block the
//! carrier to the helper pool. The rest of this module is the runtime's task control
//! block, one per green thread, documented here for contributors.
//!
//! A `Task` is shared (`Arc`) between the scheduler, [`Thread`](crate::thread::Thread)
//! handles, timers and wake lists. Its fields fall in three groups, by who may touch them:
//!
//! | field | written by | when |
//! |---|---|---|
//! | `id`, `name`, `cpu`, `prio`, `stack_size`, `guard` | spawn | never again |
//! | `state`, `park_token`, `wake_queued` | any thread | atomically, see below |
//! | `wake_next` | the wake list | while `wake_queued` is set |
//! | `se` (context, stack, run-queue links, timer token) | the owning CPU | with preemption disabled |
//! | `locals` (task-local values) | the task itself | while it runs |
//!
//! ## States (`state`)
//!
//! | state | meaning | left by |
//! |---|---|---|
//! | `RUNNING` | on the CPU, on its run queue, or about to be put there by a waker | the task itself (block, exit) |
//! | `BLOCKED` | asked to sleep; off every run queue once it has switched out | exactly one waker's CAS to `RUNNING` |
//! | `DEAD` | returned from its closure; switched out for the last time | never |
//!
//! The current task is never on the run queue: the scheduler dequeues what it picks and
//! re-queues the previous task only if it is still `RUNNING` (a yield).
//!
//! ## Ownership
//!
//! The scheduler holds one strong reference from spawn until the task has switched
//! out as `DEAD` (released in `finish_task_switch`); run queues link tasks by raw
//! pointer under that reference. Anything that can outlive a task's run — a timer entry,
//! a wake-list entry — holds its own `Arc`.

use crate::arch::Context;
use crate::loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8};
use crate::sched::{Cpu, Priority};
use crate::stack::Stack;
use std::cell::UnsafeCell;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicI8, AtomicI64, AtomicU64, Ordering};

/// A green thread's unique identifier, never reused within a process.
///
/// Doubles as the generation tag the synchronisation layer records as a lock owner:
/// because ids are never reused, a stale owner id can never name a newer thread.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ThreadId(NonZeroU64);

impl ThreadId {
    fn next() -> ThreadId {
        // A plain counter, not part of any protocol loom models: std's atomic, which
        // (unlike loom's) can initialise a static.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        use std::sync::atomic::Ordering;
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        ThreadId(NonZeroU64::new(id).expect("thread id counter overflowed"))
    }

    /// The id as a number (unique within the process, starting at 1).
    pub fn as_u64(&self) -> NonZeroU64 {
        self.0
    }
}

pub(crate) const RUNNING: u8 = 0;
pub(crate) const BLOCKED: u8 = 1;
pub(crate) const DEAD: u8 = 2;

pub(crate) const PARK_EMPTY: u8 = 0;
pub(crate) const PARK_NOTIFIED: u8 = 1;

/// The scheduler's per-task data; touched only by the owning CPU, preemption disabled.
pub(crate) struct SchedEntity {
    /// Saved registers while switched out.
    pub(crate) ctx: Context,
    /// The stack; taken back by the CPU once the task is dead.
    pub(crate) stack: Option<Stack>,
    /// Run-queue links (intrusive, so queueing never allocates).
    pub(crate) next: *const Task,
    pub(crate) prev: *const Task,
    pub(crate) on_rq: bool,
    /// Matches the timer entry that may wake this task; older entries are stale.
    pub(crate) timer_token: u64,
    /// The effective priority: the base `Task::prio`, raised by priority inheritance
    /// (`sync::mutex`) to the highest waiter of every mutex the task holds. The run
    /// queue orders by it.
    pub(crate) prio: Priority,
    /// Priority inheritance bookkeeping (`sync::mutex`): the mutex this task waits for
    /// and its wait-queue node, and the head of the list of held mutexes that have
    /// waiters.
    pub(crate) blocked_on: *const crate::sync::RawMutexState,
    pub(crate) waiter: *mut crate::sync::MutexWaiter,
    pub(crate) pi_held: *const crate::sync::RawMutexState,
    /// While the task runs at [`Priority::IRQ`] (woken by the epoll device without NAPI):
    /// the priority it returns to when it blocks. Priority inheritance updates this
    /// instead of `prio` meanwhile.
    pub(crate) irq_saved: Option<Priority>,
    /// The fair class's view of the task (`sched::normal`).
    pub(crate) fair: crate::sched::FairEntity,
    /// A deadline thread's budget and deadline (`sched::deadline`); `None` for the
    /// fixed-priority classes.
    pub(crate) dl: Option<crate::sched::DlEntity>,
    /// When it was last queued and last started running (CPU clock ns), for its stats.
    pub(crate) queued_at: u64,
    pub(crate) ran_at: u64,
    /// Its CPU burst (ns): how long it has run since it last blocked — a preemption
    /// or a yield does not end a burst — and how long its previous burst was. Kept for
    /// every class (the epoll device's deferred poll reads it); the fair class's own
    /// `FairEntity::burst` only feeds its request size.
    pub(crate) burst: u64,
    pub(crate) prev_burst: u64,
    /// Its bursts averaged (each ended burst weighs a quarter; `u64::MAX` until the
    /// first ends), for the tick's period (`Cpu::follow_work`).
    pub(crate) avg_burst: u64,
}

impl SchedEntity {
    /// Whether it tends to compute for longer than the epoll device's deferred poll may
    /// wait before it blocks: its current or its previous CPU burst did
    /// ([`crate::io::device::DEFER_NS`]).
    pub(crate) fn outlasts_deferred_poll(&self) -> bool {
        self.burst.max(self.prev_burst) >= crate::io::device::DEFER_NS
    }

    /// Whether it computes for `threshold` ns at a time: its current burst has, or its
    /// bursts do on average (a thread that has not blocked yet does).
    pub(crate) fn computes_for(&self, threshold: u64) -> bool {
        self.burst >= threshold || self.avg_burst >= threshold
    }

    /// Its burst ended: it blocks.
    pub(crate) fn end_burst(&mut self) {
        let b = std::mem::take(&mut self.burst);
        self.avg_burst = if self.avg_burst == u64::MAX {
            b
        } else {
            (3 * self.avg_burst + b) / 4
        };
        self.prev_burst = b;
    }
}

/// A task's scheduling statistics: written by its CPU's carrier (plain stores of its
/// own values), readable from anywhere.
/// (Plain `std` atomics: statistics, in no protocol that `loom` checks.)
#[derive(Default)]
pub(crate) struct TaskStats {
    pub(crate) runtime_ns: AtomicU64,
    pub(crate) wait_ns: AtomicU64,
    pub(crate) voluntary: AtomicU64,
    pub(crate) involuntary: AtomicU64,
    pub(crate) lag_ns: AtomicI64,
    pub(crate) nice: AtomicI8,
}

impl TaskStats {
    /// Adds `n` to a counter only the task's carrier writes (a plain load and store).
    #[inline]
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

/// A green thread.
pub(crate) struct Task {
    pub(crate) id: ThreadId,
    pub(crate) name: Option<Box<str>>,
    pub(crate) cpu: Arc<Cpu>,
    pub(crate) prio: Priority,
    /// A deadline thread's reservation (immutable; its state is in `se.dl`).
    pub(crate) dl: Option<crate::sched::DlParams>,
    /// Usable stack bytes (for reports).
    pub(crate) stack_size: usize,
    /// The guard page's address range, for the overflow report.
    pub(crate) guard: (usize, usize),
    pub(crate) state: AtomicU8,
    pub(crate) park_token: AtomicU8,
    /// Set while the task sits on its CPU's wake list (so it is pushed at most once).
    pub(crate) wake_queued: AtomicBool,
    /// The wake list's link.
    pub(crate) wake_next: AtomicPtr<Task>,
    pub(crate) se: UnsafeCell<SchedEntity>,
    pub(crate) stats: TaskStats,
    /// Task-local values; touched only by the task itself (`thread::local`).
    pub(crate) locals: UnsafeCell<crate::thread::local::Locals>,
    /// Mutexes this task holds: locked minus unlocked, changed only by the task itself
    /// (so preemption cannot tear it; the handler never touches it). Non-zero at exit
    /// means a guard was leaked: the task is then kept allocated so the mutexes' owner
    /// pointers stay valid, and their next lockers take over (`sync::mutex`, "owner
    /// died").
    pub(crate) held_mutexes: std::cell::Cell<usize>,
}

// SAFETY: the atomics are shareable; `se` is touched only by the owning CPU with
// preemption disabled (module docs), which serialises every access to it; the immutable
// fields are plain data.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}

impl Task {
    pub(crate) fn new(
        name: Option<Box<str>>,
        cpu: Arc<Cpu>,
        prio: Priority,
        nice: i8,
        dl: Option<crate::sched::DlParams>,
        ctx: Context,
        stack: Stack,
    ) -> Task {
        Task {
            id: ThreadId::next(),
            name,
            cpu,
            prio,
            dl,
            stack_size: stack.size(),
            guard: stack.guard(),
            state: AtomicU8::new(RUNNING),
            park_token: AtomicU8::new(PARK_EMPTY),
            wake_queued: AtomicBool::new(false),
            wake_next: AtomicPtr::new(std::ptr::null_mut()),
            se: UnsafeCell::new(SchedEntity {
                ctx,
                stack: Some(stack),
                next: std::ptr::null(),
                prev: std::ptr::null(),
                on_rq: false,
                timer_token: 0,
                prio,
                blocked_on: std::ptr::null(),
                waiter: std::ptr::null_mut(),
                pi_held: std::ptr::null(),
                irq_saved: None,
                fair: crate::sched::FairEntity::new(nice),
                dl: dl.map(crate::sched::DlEntity::new),
                queued_at: 0,
                ran_at: 0,
                burst: 0,
                prev_burst: 0,
                avg_burst: u64::MAX,
            }),
            stats: TaskStats {
                nice: AtomicI8::new(nice),
                ..TaskStats::default()
            },
            held_mutexes: std::cell::Cell::new(0),
            locals: UnsafeCell::new(Vec::new()),
        }
    }

    /// The name for reports: the thread's name or `<unnamed>`, as std prints it.
    pub(crate) fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("<unnamed>")
    }

    /// The scheduler entity.
    ///
    /// # Safety
    /// The caller runs on the task's CPU with preemption disabled, and holds no other
    /// reference to the entity.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn se(&self) -> &mut SchedEntity {
        // SAFETY: forwarded from the caller: the owning CPU, preemption disabled,
        // serialises all access.
        unsafe { &mut *self.se.get() }
    }
}

impl crate::sched::wake_list::WakeNode for Task {
    fn wake_next(&self) -> &AtomicPtr<Self> {
        &self.wake_next
    }
}

/// Runs `f` on the blocking pool — helper OS threads for calls that would otherwise
/// block the whole carrier: regular-file I/O, `fsync`, name resolution, `waitpid`, a
/// C library's blocking call — and returns a handle whose [`join`](BlockingJoinHandle::join)
/// sleeps the calling green thread (not its carrier) until `f` has returned.
///
/// `f` runs on an OS thread outside the runtime: it must not call green-thread-only
/// functions, and under a preemptive model it is never preempted.
///
/// ```
/// let rt = preempt::Runtime::builder().build()?;
/// let n = rt.block_on(|| {
///     let h = preempt::task::spawn_blocking(|| std::fs::read_dir(".").map(|d| d.count()));
///     h.join().unwrap()
/// })?;
/// assert!(n > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
/// If no helper thread can be started (like `std::thread::spawn`).
pub fn spawn_blocking<T, F>(f: F) -> BlockingJoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rx = crate::io::blocking::spawn(f)
        .unwrap_or_else(|e| panic!("failed to start a blocking-pool thread: {e}"));
    BlockingJoinHandle { rx }
}

/// The result of a [`spawn_blocking`] job.
#[derive(Debug)]
pub struct BlockingJoinHandle<T> {
    rx: crate::sync::mpsc::Receiver<std::thread::Result<T>>,
}

impl<T> BlockingJoinHandle<T> {
    /// Waits for the job: `Ok` with its value, or `Err` with its panic's payload, like
    /// [`std::thread::JoinHandle::join`]. From a green thread, only that thread sleeps.
    pub fn join(self) -> std::thread::Result<T> {
        match self.rx.recv() {
            Ok(r) => r,
            Err(_) => Err(Box::new("the blocking pool dropped the job")),
        }
    }
}
