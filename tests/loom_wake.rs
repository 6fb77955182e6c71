//! Loom models of the wakeup protocol (DESIGN.md invariant 5): the lock-free wake list,
//! the `wake_queued` flag that keeps a task on it at most once, and the doorbell that
//! wakes an idle CPU. Loom threads stand in for the carrier and for foreign OS threads.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_wake`
//! (exhaustive for these two- and three-thread models; no preemption bound needed).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering::SeqCst, fence};
use preempt::__loom::{WakeList, WakeNode};
use std::sync::Arc;

const RUNNING: u8 = 0;
const BLOCKED: u8 = 1;

/// A task as the protocol sees it.
struct Task {
    state: AtomicU8,
    wake_queued: AtomicBool,
    next: AtomicPtr<Task>,
}

impl WakeNode for Task {
    fn wake_next(&self) -> &AtomicPtr<Self> {
        &self.next
    }
}

/// One CPU's shared half: its wake list, idle flag and doorbell (an eventfd's count).
struct Cpu {
    list: WakeList<Task>,
    idle: AtomicBool,
    doorbell: AtomicUsize,
}

fn setup() -> (Arc<Cpu>, Arc<Task>) {
    let cpu = Arc::new(Cpu {
        list: WakeList::new(),
        idle: AtomicBool::new(false),
        doorbell: AtomicUsize::new(0),
    });
    let task = Arc::new(Task {
        state: AtomicU8::new(RUNNING),
        wake_queued: AtomicBool::new(false),
        next: AtomicPtr::new(std::ptr::null_mut()),
    });
    (cpu, task)
}

/// `unpark` from another OS thread: the token first, then the CAS, then list and doorbell
/// (`sched::unpark` → `wake_up` → `Cpu::wake_remote` → `Cpu::kick`).
fn remote_wake(cpu: &Cpu, task: &Arc<Task>, token: &AtomicBool) {
    if token.swap(true, SeqCst) {
        return; // already notified: that unpark owns the wakeup
    }
    if task
        .state
        .compare_exchange(BLOCKED, RUNNING, SeqCst, SeqCst)
        .is_ok()
    {
        if !task.wake_queued.swap(true, SeqCst) {
            cpu.list.push(task.clone());
        }
        fence(SeqCst);
        if cpu.idle.load(SeqCst) && cpu.idle.swap(false, SeqCst) {
            cpu.doorbell.fetch_add(1, SeqCst);
        }
    }
}

/// The carrier's drain (`Cpu::pull_wakeups`): true if it found the task runnable.
fn drain(cpu: &Cpu) -> bool {
    let mut woke = false;
    for t in cpu.list.take_all() {
        t.wake_queued.store(false, SeqCst);
        if t.state.load(SeqCst) == RUNNING {
            woke = true;
        }
    }
    woke
}

#[test]
fn a_remote_wakeup_is_never_lost() {
    loom::model(|| {
        let (cpu, task) = setup();
        let condition = Arc::new(AtomicBool::new(false));
        let waker = {
            let (cpu, task, condition) = (cpu.clone(), task.clone(), condition.clone());
            loom::thread::spawn(move || remote_wake(&cpu, &task, &condition))
        };

        // The sleeper (`park_current` → `block_current`): publish BLOCKED, re-check the
        // token, else schedule.
        task.state.store(BLOCKED, SeqCst);
        let mut woken = false;
        let mut slept = false;
        if condition.swap(false, SeqCst) {
            task.state.store(RUNNING, SeqCst);
            woken = true;
        } else {
            // schedule() → nothing runnable → the idle loop's doorbell protocol.
            woken |= drain(&cpu);
            if !woken {
                cpu.idle.store(true, SeqCst);
                fence(SeqCst);
                if !cpu.list.is_empty() {
                    cpu.idle.store(false, SeqCst);
                    woken |= drain(&cpu);
                } else {
                    slept = true; // waits in epoll until the doorbell rings
                }
            }
        }
        waker.join().unwrap();
        if slept {
            assert_eq!(cpu.doorbell.load(SeqCst), 1, "idle CPU never kicked");
            woken |= drain(&cpu);
        }
        assert!(woken, "wakeup lost");
        // A waker that lost the race with the sleeper's own token check may still have
        // queued an entry; the next drain consumes it and the list is empty again.
        drain(&cpu);
        assert!(cpu.list.is_empty());
        assert!(!task.wake_queued.load(SeqCst));
    });
}

#[test]
fn concurrent_wakers_queue_a_task_once() {
    loom::model(|| {
        let (cpu, task) = setup();
        task.state.store(BLOCKED, SeqCst);
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                // Separate tokens (as for two different wake reasons, e.g. a timer and an
                // unpark), so both reach the state CAS.
                let (cpu, task) = (cpu.clone(), task.clone());
                let token = AtomicBool::new(false);
                loom::thread::spawn(move || remote_wake(&cpu, &task, &token))
            })
            .collect();
        for w in wakers {
            w.join().unwrap();
        }
        // Exactly one entry: one waker won the CAS, and it pushed once.
        let entries = cpu.list.take_all().count();
        assert_eq!(entries, 1);
        assert_eq!(task.state.load(SeqCst), RUNNING);
    });
}

#[test]
fn a_stale_entry_is_dropped_and_a_racing_waker_pushes_again() {
    // The task is woken, then blocks again before the CPU drains: the entry is stale.
    // A second wake racing with the drain must still get the task queued.
    loom::model(|| {
        let (cpu, task) = setup();
        let condition = Arc::new(AtomicBool::new(false));
        task.state.store(BLOCKED, SeqCst);
        remote_wake(&cpu, &task, &condition); // first wake: pushed
        condition.store(false, SeqCst); // the task consumed its token...
        task.state.store(BLOCKED, SeqCst); // ...and blocked again: the entry is stale
        let second = {
            let (cpu, task, condition) = (cpu.clone(), task.clone(), condition.clone());
            loom::thread::spawn(move || remote_wake(&cpu, &task, &condition))
        };
        let mut woke = drain(&cpu);
        second.join().unwrap();
        woke |= drain(&cpu);
        assert!(woke, "second wakeup lost");
    });
}
