//! The wait queue under `Condvar`, `Semaphore`, `RwLock`, `Barrier` and the channels.
//!
//! Waiters are green threads or plain OS threads; each queues a [`Node`] on its own
//! stack, ordered by effective priority (FIFO among equals; OS threads count as
//! `Priority::DEFAULT`). The list is guarded by a `RawSpinLock`, so any thread may
//! wait or notify. A green waiter sleeps through the scheduler (`block_current`); an OS
//! thread parks with `parking_lot_core`, keyed by its node's address.
//!
//! **No lost wakeups (invariant 5).** A notifier, under the lock, unlinks a node and
//! copies what it needs to wake its owner (an `Arc` of the task, or the park key),
//! *then* sets the node's `notified` flag (SeqCst) — after which the node may vanish,
//! so nothing touches it again — and wakes the owner after releasing the lock. A green
//! waiter re-checks `notified` after marking itself blocked (`block_current`'s cancel
//! step); a parked OS thread's `validate` re-checks it under parking_lot's bucket lock.
//! A waiter that times out takes the lock: still queued, it unlinks itself and reports
//! the timeout; already unlinked, a notification won the race and it reports that.
//!
//! Wakeups may be spurious for OS threads (a stale `unpark_one` on a reused address):
//! every sleep loops on `notified`.

use super::RawSpinLock;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sched::{self, Priority};
use crate::task::Task;
use std::cell::Cell;
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

/// Who sleeps on a node, and how to wake it.
enum Sleeper {
    Green(Arc<Task>),
    #[cfg(not(loom))]
    Os,
    /// Under loom, OS threads are the model's threads, parked through loom.
    #[cfg(loom)]
    Os(loom::thread::Thread),
}

/// One waiter, on its own stack while queued.
#[allow(missing_debug_implementations)]
pub struct Node {
    sleeper: Sleeper,
    prio: Priority,
    /// Followed and written only under the queue's lock (shared with the notifier,
    /// hence cells: the waiter holds only `&Node` while queued).
    next: Cell<*const Node>,
    queued: Cell<bool>,
    notified: AtomicBool,
    /// A value the notifier hands over (a semaphore's permits, a channel's flag…).
    token: AtomicUsize,
}

impl Node {
    /// A node for the calling thread.
    pub fn new() -> Node {
        let (sleeper, prio) = match sched::current_arc() {
            Some(t) => {
                // SAFETY: the current task reads its own scheduler entity with
                // preemption disabled.
                let prio = {
                    let _p = crate::preempt::disable();
                    unsafe { t.se().prio }
                };
                (Sleeper::Green(t), prio)
            }
            #[cfg(not(loom))]
            None => (Sleeper::Os, Priority::DEFAULT),
            #[cfg(loom)]
            None => (Sleeper::Os(loom::thread::current()), Priority::DEFAULT),
        };
        Node {
            sleeper,
            prio,
            next: Cell::new(ptr::null()),
            queued: Cell::new(false),
            notified: AtomicBool::new(false),
            token: AtomicUsize::new(0),
        }
    }

    /// The notifier's token (valid after a `Notified` wait).
    pub fn token(&self) -> usize {
        self.token.load(Ordering::SeqCst)
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A notifier unlinked the waiter (or its condition already held).
    Notified,
    /// The deadline passed first.
    TimedOut,
}

struct List {
    head: *const Node,
    len: usize,
}

// SAFETY: the raw pointers are only followed under the lock, to nodes whose owners
// wait for the lock's holder to unlink them.
unsafe impl Send for List {}

/// A priority-ordered queue of sleeping threads.
#[allow(missing_debug_implementations)]
pub struct WaitQueue {
    list: RawSpinLock<List>,
}

/// A node unlinked by a notifier, ready to be woken once the lock is released.
#[allow(missing_debug_implementations)]
pub struct Waking(Option<Sleeper>, #[cfg_attr(loom, allow(dead_code))] usize);

impl Waking {
    /// Wakes the sleeper. Call after releasing the queue's lock.
    pub fn wake(self) {
        match self.0 {
            Some(Sleeper::Green(t)) => sched::wake_up(&t),
            #[cfg(loom)]
            Some(Sleeper::Os(t)) => t.unpark(),
            #[cfg(not(loom))]
            Some(Sleeper::Os) => {
                // Preemption off: `unpark_one` holds parking_lot's bucket lock, an OS
                // lock; a green thread preempted inside it would leave the next one of
                // its CPU that wakes an OS thread of that bucket blocked in the kernel
                // for good (H3). A no-op on a plain OS thread.
                let _p = crate::preempt::disable();
                // SAFETY: the key is a node address this module parks on; a stale
                // one at worst wakes a parker spuriously, and parkers loop.
                unsafe {
                    parking_lot_core::unpark_one(self.1, |_| parking_lot_core::DEFAULT_UNPARK_TOKEN)
                };
            }
            None => {}
        }
    }
}

impl WaitQueue {
    crate::loom::const_fn_unless_loom! {
        /// An empty queue.
        pub fn new() -> WaitQueue {
            WaitQueue {
                list: RawSpinLock::new(List {
                    head: ptr::null(),
                    len: 0,
                }),
            }
        }
    }

    /// Queues `node`, runs `release` (still under the queue's lock: the caller drops
    /// its own lock there, so a notifier that takes it after finds the node), and
    /// sleeps until notified or `deadline`. If `ready()` — checked under the lock
    /// first — is already true, returns `Notified` without queueing or releasing.
    ///
    /// `might_sleep` is the caller's job, at the start of its blocking call (outside
    /// every lock).
    pub fn wait(
        &self,
        node: &Node,
        ready: impl FnOnce() -> bool,
        release: impl FnOnce(),
        deadline: Option<Instant>,
    ) -> Wake {
        {
            let mut l = self.list.lock();
            if ready() {
                return Wake::Notified;
            }
            // SAFETY: under the lock; the node outlives its time on the list (we do
            // not return before it is unlinked).
            unsafe { insert(&mut l, node) };
            release();
        }
        loop {
            if node.notified.load(Ordering::SeqCst) {
                return Wake::Notified;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let mut l = self.list.lock();
                if node.queued.get() {
                    // SAFETY: under the lock; the node is on this list.
                    unsafe { unlink(&mut l, node) };
                    return Wake::TimedOut;
                }
                drop(l);
                // A notifier unlinked us: wait for its flag (it is being set).
                while !node.notified.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
                return Wake::Notified;
            }
            Self::park(node, deadline);
        }
    }

    fn park(node: &Node, deadline: Option<Instant>) {
        match &node.sleeper {
            Sleeper::Green(t) => {
                let cpu = &*t.cpu;
                let dl = deadline.map(|d| cpu.instant_to_ns(d));
                let flag = &node.notified;
                sched::block_current(cpu, Arc::as_ptr(t), dl, || flag.load(Ordering::SeqCst));
            }
            #[cfg(loom)]
            Sleeper::Os(_) => {
                let _ = deadline; // the models wait without deadlines
                if !node.notified.load(Ordering::SeqCst) {
                    loom::thread::park();
                }
            }
            #[cfg(not(loom))]
            Sleeper::Os => {
                let key = node as *const Node as usize;
                // SAFETY: our own node's address as the key; validate only reads an
                // atomic, and the callbacks neither panic nor call parking_lot.
                unsafe {
                    parking_lot_core::park(
                        key,
                        || !node.notified.load(Ordering::SeqCst),
                        || {},
                        |_, _| {},
                        parking_lot_core::DEFAULT_PARK_TOKEN,
                        deadline,
                    );
                }
            }
        }
    }

    /// The common wait: queue the caller, release `guard` (the caller's own lock,
    /// dropped under the queue's lock as in [`WaitQueue::wait`]), and sleep until
    /// notified or `deadline`. Returns how it ended and the notifier's token.
    pub fn sleep<G>(&self, guard: G, deadline: Option<Instant>) -> (Wake, usize) {
        let node = Node::new();
        let wake = self.wait(&node, || false, move || drop(guard), deadline);
        (wake, node.token())
    }

    /// Notifies and wakes the first waiter, for a caller that holds no other lock.
    pub fn wake_one(&self) {
        if let Some(w) = self.notify_one(0) {
            w.wake();
        }
    }

    /// Notifies and wakes every waiter, for a caller that holds no other lock.
    pub fn wake_all(&self) {
        for w in self.notify_all(0) {
            w.wake();
        }
    }

    /// Whether anyone waits (a snapshot).
    pub fn has_waiters(&self) -> bool {
        !self.list.lock().head.is_null()
    }

    /// Unlinks the first waiter (highest priority), handing it `token`; wake it with
    /// the returned value after the caller's locks are released.
    pub fn notify_one(&self, token: usize) -> Option<Waking> {
        let mut l = self.list.lock();
        let n = l.head;
        if n.is_null() {
            return None;
        }
        // SAFETY: under the lock; the node is queued, so alive.
        unsafe { Some(take(&mut l, n, token)) }
    }

    /// Unlinks every waiter; wake each after the caller's locks are released.
    pub fn notify_all(&self, token: usize) -> Vec<Waking> {
        let mut l = self.list.lock();
        let mut out = Vec::with_capacity(l.len);
        while !l.head.is_null() {
            let n = l.head;
            // SAFETY: as in notify_one.
            out.push(unsafe { take(&mut l, n, token) });
        }
        out
    }
}

/// Sorted insert: behind every node of the same or higher priority.
///
/// # Safety
/// Under the lock; `node` is not queued and outlives its time on the list.
unsafe fn insert(l: &mut List, node: &Node) {
    node.queued.set(true);
    node.notified.store(false, Ordering::Relaxed);
    // SAFETY: per the contract; every linked node is alive.
    unsafe {
        let mut prev: *const Node = ptr::null();
        let mut cur = l.head;
        while !cur.is_null() && (*cur).prio >= node.prio {
            prev = cur;
            cur = (*cur).next.get();
        }
        node.next.set(cur);
        if prev.is_null() {
            l.head = node;
        } else {
            (*prev).next.set(node);
        }
    }
    l.len += 1;
}

/// # Safety
/// Under the lock; `node` is on the list.
unsafe fn unlink(l: &mut List, node: &Node) {
    // SAFETY: per the contract.
    unsafe {
        let mut prev: *const Node = ptr::null();
        let mut cur = l.head;
        while !ptr::eq(cur, node) {
            prev = cur;
            cur = (*cur).next.get();
        }
        if prev.is_null() {
            l.head = node.next.get();
        } else {
            (*prev).next.set(node.next.get());
        }
    }
    node.next.set(ptr::null());
    node.queued.set(false);
    l.len -= 1;
}

/// Unlinks `n`, copies how to wake it, hands it `token` and sets its flag; `n` must
/// not be touched afterwards.
///
/// # Safety
/// Under the lock; `n` is on the list.
unsafe fn take(l: &mut List, n: *const Node, token: usize) -> Waking {
    // SAFETY: per the contract; the owner waits for `notified` (or for the lock, to
    // see `queued`) before it lets the node go.
    unsafe {
        unlink(l, &*n);
        let sleeper = match &(*n).sleeper {
            Sleeper::Green(t) => Sleeper::Green(t.clone()),
            #[cfg(not(loom))]
            Sleeper::Os => Sleeper::Os,
            #[cfg(loom)]
            Sleeper::Os(t) => Sleeper::Os(t.clone()),
        };
        (*n).token.store(token, Ordering::Relaxed);
        (*n).notified.store(true, Ordering::SeqCst);
        Waking(Some(sleeper), n as usize)
    }
}

/// The list's pointer handling and the wait protocol for plain OS threads, also run
/// under Miri (`.ci/run`); `tests/loom_sync.rs` explores the interleavings.
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The calling (OS) thread's node, at `prio`.
    fn node(prio: u8) -> Node {
        Node {
            prio: Priority::new(prio),
            ..Node::new()
        }
    }

    #[test]
    fn notifiers_take_waiters_by_priority_then_arrival() {
        let q = WaitQueue::new();
        let nodes = [node(0), node(5), node(5), node(1), node(0)];
        for n in &nodes {
            // SAFETY: under the lock; the nodes outlive the queue's use of them.
            unsafe { insert(&mut q.list.lock(), n) };
        }
        // The last one gives up, as a waiter that times out does.
        // SAFETY: under the lock; the node is queued.
        unsafe { unlink(&mut q.list.lock(), &nodes[4]) };
        let mut token = 1;
        while let Some(w) = q.notify_one(token) {
            drop(w); // its owner is this thread, not asleep
            token += 1;
        }
        let order: Vec<_> = nodes
            .iter()
            .map(|n| n.notified.load(Ordering::SeqCst).then(|| n.token()))
            .collect();
        assert_eq!(order, [Some(4), Some(1), Some(2), Some(3), None]);
        assert!(nodes.iter().all(|n| !n.queued.get()));
    }

    #[test]
    fn a_sleeping_thread_wakes_with_its_notifiers_token() {
        let q = Arc::new(WaitQueue::new());
        let sleeper = {
            let q = q.clone();
            std::thread::spawn(move || q.sleep((), None))
        };
        while !q.has_waiters() {
            std::thread::yield_now();
        }
        q.notify_one(42).expect("the sleeper is queued").wake();
        assert_eq!(sleeper.join().unwrap(), (Wake::Notified, 42));
        assert!(!q.has_waiters());
    }

    #[test]
    fn a_waiter_that_times_out_leaves_the_queue() {
        let q = WaitQueue::new();
        let (wake, _) = q.sleep((), Some(Instant::now() + Duration::from_millis(1)));
        assert_eq!(wake, Wake::TimedOut);
        assert!(!q.has_waiters());
        assert!(q.notify_one(1).is_none());
    }

    #[test]
    fn a_notification_racing_a_timeout_is_either_received_or_never_made() {
        let q = Arc::new(WaitQueue::new());
        let gone = Arc::new(AtomicBool::new(false));
        let notifier = {
            let (q, gone) = (q.clone(), gone.clone());
            std::thread::spawn(move || {
                loop {
                    if let Some(w) = q.notify_one(7) {
                        w.wake();
                        return true;
                    }
                    if gone.load(Ordering::SeqCst) {
                        return false;
                    }
                    std::thread::yield_now();
                }
            })
        };
        let (wake, token) = q.sleep((), Some(Instant::now() + Duration::from_millis(2)));
        gone.store(true, Ordering::SeqCst);
        let notified = notifier.join().unwrap();
        assert_eq!(wake == Wake::Notified, notified);
        if notified {
            assert_eq!(token, 7);
        }
        assert!(!q.has_waiters());
    }
}
